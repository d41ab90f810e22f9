//! A route pattern: what a file name under `pages/api/` says about the URLs it serves.

use std::fmt;

/// One segment of a route pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// `users`: matches exactly this text.
    Static(String),
    /// `[id]`: matches any one segment.
    Param(String),
    /// `[...path]`: matches one or more segments.
    CatchAll(String),
    /// `[[...slug]]`: matches zero or more segments.
    OptionalCatchAll(String),
}

impl Segment {
    /// Specificity rank: lower wins (static > param > catch-all > optional catch-all).
    fn rank(&self) -> u8 {
        match self {
            Segment::Static(_) => 0,
            Segment::Param(_) => 1,
            Segment::CatchAll(_) => 2,
            Segment::OptionalCatchAll(_) => 3,
        }
    }

    fn is_catch_all(&self) -> bool {
        matches!(self, Segment::CatchAll(_) | Segment::OptionalCatchAll(_))
    }
}

/// The value of one route parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamValue {
    /// From `[name]`.
    One(String),
    /// From `[...name]` or `[[...name]]`.
    Many(Vec<String>),
}

/// Route parameters in pattern order.
pub type Params = Vec<(String, ParamValue)>;

/// The URL pattern of one route file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Builds the pattern of a file from its path segments under `pages/api/`, without the
    /// `.rhai` extension (`["users", "[id]"]`). A final `index` names its folder.
    pub fn from_file_segments(parts: &[&str]) -> Result<Pattern, String> {
        let mut parts = parts.to_vec();
        if parts.last() == Some(&"index") {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = parse_segment(part)?;
            if segment.is_catch_all() && i + 1 != parts.len() {
                return Err(format!(
                    "'{part}' must be the last part of the path: a catch-all takes the rest of the URL"
                ));
            }
            segments.push(segment);
        }
        Ok(Pattern { segments })
    }

    /// The segments of this pattern.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// True when the pattern has no parameters, so one exact path matches it.
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Static(_)))
    }

    /// Specificity, compared from the left: the smaller vector is the more specific route.
    pub fn rank(&self) -> Vec<u8> {
        self.segments.iter().map(Segment::rank).collect()
    }

    /// Keys of the URLs this pattern claims, for finding two files that claim the same route:
    /// parameter names do not matter, and an optional catch-all also claims its folder.
    pub fn claim_keys(&self) -> Vec<String> {
        let key = |segments: &[Segment]| -> String {
            segments
                .iter()
                .map(|s| match s {
                    Segment::Static(text) => format!("/s:{text}"),
                    Segment::Param(_) => "/p".to_string(),
                    Segment::CatchAll(_) => "/c".to_string(),
                    Segment::OptionalCatchAll(_) => "/o".to_string(),
                })
                .collect()
        };
        let mut keys = vec![key(&self.segments)];
        if let Some(Segment::OptionalCatchAll(_)) = self.segments.last() {
            keys.push(key(&self.segments[..self.segments.len() - 1]));
        }
        keys
    }

    /// Matches decoded path segments (those after `/api`), returning the parameters.
    pub fn matches(&self, path: &[String]) -> Option<Params> {
        let mut params = Params::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Static(text) => {
                    if path.get(i) != Some(text) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    params.push((name.clone(), ParamValue::One(path.get(i)?.clone())));
                }
                Segment::CatchAll(name) | Segment::OptionalCatchAll(name) => {
                    let rest = path.get(i..).unwrap_or_default();
                    if rest.is_empty() && matches!(segment, Segment::CatchAll(_)) {
                        return None;
                    }
                    params.push((name.clone(), ParamValue::Many(rest.to_vec())));
                    return Some(params);
                }
            }
        }
        (path.len() == self.segments.len()).then_some(params)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("/api")?;
        for segment in &self.segments {
            match segment {
                Segment::Static(text) => write!(f, "/{text}")?,
                Segment::Param(name) => write!(f, "/[{name}]")?,
                Segment::CatchAll(name) => write!(f, "/[...{name}]")?,
                Segment::OptionalCatchAll(name) => write!(f, "/[[...{name}]]")?,
            }
        }
        Ok(())
    }
}

fn parse_segment(part: &str) -> Result<Segment, String> {
    let bracketed = |inner: &str| -> Result<String, String> {
        let valid = !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(inner.to_string())
        } else {
            Err(format!(
                "'{part}' is not a valid parameter name: use letters, digits, '_' or '-'"
            ))
        }
    };
    if let Some(inner) = part
        .strip_prefix("[[...")
        .and_then(|s| s.strip_suffix("]]"))
    {
        Ok(Segment::OptionalCatchAll(bracketed(inner)?))
    } else if let Some(inner) = part.strip_prefix("[...").and_then(|s| s.strip_suffix(']')) {
        Ok(Segment::CatchAll(bracketed(inner)?))
    } else if let Some(inner) = part.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Ok(Segment::Param(bracketed(inner)?))
    } else if part.contains(['[', ']']) {
        Err(format!(
            "'{part}' mixes brackets with text: a dynamic segment is a whole name like [id]"
        ))
    } else {
        Ok(Segment::Static(part.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(file: &str) -> Pattern {
        let parts: Vec<&str> = file.split('/').collect();
        Pattern::from_file_segments(&parts).expect("valid pattern")
    }

    fn path(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn index_names_its_folder() {
        assert_eq!(pattern("users/index").to_string(), "/api/users");
        assert_eq!(pattern("index").to_string(), "/api");
    }

    #[test]
    fn param_matches_one_segment() {
        let p = pattern("users/[id]");
        assert_eq!(
            p.matches(&path("users/42")),
            Some(vec![("id".into(), ParamValue::One("42".into()))])
        );
        assert_eq!(p.matches(&path("users")), None);
        assert_eq!(p.matches(&path("users/42/x")), None);
    }

    #[test]
    fn catch_all_needs_one_segment() {
        let p = pattern("files/[...path]");
        assert_eq!(
            p.matches(&path("files/a/b")),
            Some(vec![(
                "path".into(),
                ParamValue::Many(vec!["a".into(), "b".into()])
            )])
        );
        assert_eq!(p.matches(&path("files")), None);
    }

    #[test]
    fn optional_catch_all_matches_folder() {
        let p = pattern("docs/[[...slug]]");
        assert_eq!(
            p.matches(&path("docs")),
            Some(vec![("slug".into(), ParamValue::Many(vec![]))])
        );
        assert_eq!(
            p.matches(&path("docs/x")),
            Some(vec![("slug".into(), ParamValue::Many(vec!["x".into()]))])
        );
    }

    #[test]
    fn rank_orders_static_param_catch_optional() {
        assert!(pattern("a/b").rank() < pattern("a/[x]").rank());
        assert!(pattern("a/[x]").rank() < pattern("a/[...x]").rank());
        assert!(pattern("a/[...x]").rank() < pattern("a/[[...x]]").rank());
        assert!(pattern("[x]/[...y]").rank() < pattern("[...y]").rank());
    }

    #[test]
    fn catch_all_must_be_last() {
        assert!(Pattern::from_file_segments(&["[...a]", "b"]).is_err());
        assert!(Pattern::from_file_segments(&["a[b]"]).is_err());
        assert!(Pattern::from_file_segments(&["[]"]).is_err());
    }

    #[test]
    fn claims_ignore_param_names() {
        assert_eq!(pattern("[id]").claim_keys(), pattern("[slug]").claim_keys());
        assert!(pattern("docs/[[...s]]")
            .claim_keys()
            .contains(&pattern("docs/index").claim_keys()[0]));
    }
}
