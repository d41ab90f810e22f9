//! The `[[rate_limit]]` rules of `rhapi.toml`, compiled: which paths each applies to and
//! what its requests are counted by.

use std::sync::Arc;

use super::window::Limit;
use crate::settings::RateLimitRule;

/// One segment of a rule's path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// This text exactly.
    Text(String),
    /// Any one segment (`[id]` or `:id`, as in a route).
    Any,
    /// Whatever follows, also nothing (`*`, last).
    Rest,
}

/// What a rule's requests are counted by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum By {
    /// One counter for every request of the rule.
    Shared,
    /// The client's address.
    Ip,
    /// A request header's value (lowercase name); requests without it share one counter.
    Header(String),
}

/// A rule ready to match requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    segments: Vec<Segment>,
    pub limit: Limit,
    pub by: By,
    /// What its counters are told apart by: the path, window and `by` (a reload that
    /// changes only the limit keeps the counts).
    pub scope: Arc<str>,
}

impl Rule {
    /// `rule` checked; the error names the key that is wrong (`path`, `by`).
    pub fn compile(rule: &RateLimitRule) -> Result<Rule, (&'static str, String)> {
        let rest = match rule.path.strip_prefix("/api") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => {
                return Err((
                    "path",
                    format!(
                        "'{}' is not a route path: it must start with /api/, e.g. \"/api/auth/*\"",
                        rule.path
                    ),
                ))
            }
        };
        let parts: Vec<&str> = rest.split('/').skip(1).collect();
        let mut segments = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            segments.push(match *part {
                "*" if i + 1 == parts.len() => Segment::Rest,
                p if p.contains('*') => {
                    return Err(("path", format!(
                        "'{}': * stands for the rest of the path, alone and last, e.g. \"/api/auth/*\"",
                        rule.path
                    )))
                }
                "" => return Err(("path", format!("'{}' has an empty segment", rule.path))),
                p if p.starts_with(':') || (p.starts_with('[') && p.ends_with(']')) => Segment::Any,
                p => Segment::Text(p.to_string()),
            });
        }
        let by = match rule.by.as_deref() {
            None => By::Shared,
            Some("ip") => By::Ip,
            Some(other) => match other.strip_prefix("header:") {
                Some(name) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
                    By::Header(name.to_ascii_lowercase())
                }
                _ => {
                    return Err((
                        "by",
                        format!(
                            "'{other}': use \"ip\" or \"header:NAME\", e.g. \"header:x-api-key\""
                        ),
                    ))
                }
            },
        };
        let per_ms = i64::try_from(rule.per.as_millis()).unwrap_or(i64::MAX);
        Ok(Rule {
            segments,
            limit: Limit {
                limit: rule.limit,
                per_ms,
            },
            scope: format!("rule {} {per_ms} {:?}", rule.path, by).into(),
            by,
        })
    }

    /// Whether the request path `/api/<segments>` is one this rule limits.
    pub fn matches(&self, path: &[String]) -> bool {
        let mut path = path.iter();
        for segment in &self.segments {
            match (segment, path.next()) {
                (Segment::Rest, _) => return true,
                (Segment::Any, Some(_)) => {}
                (Segment::Text(text), Some(got)) if text == got => {}
                _ => return false,
            }
        }
        path.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, by: Option<&str>) -> Result<Rule, (&'static str, String)> {
        Rule::compile(&RateLimitRule {
            path: path.into(),
            limit: 1,
            per: std::time::Duration::from_secs(60),
            by: by.map(str::to_string),
        })
    }

    fn path(p: &str) -> Vec<String> {
        p.split('/').skip(2).map(str::to_string).collect()
    }

    #[test]
    fn patterns() {
        let auth = rule("/api/auth/*", None).unwrap();
        for p in ["/api/auth", "/api/auth/login", "/api/auth/a/b"] {
            assert!(auth.matches(&path(p)), "{p}");
        }
        for p in ["/api/authx", "/api/users", "/api"] {
            assert!(!auth.matches(&path(p)), "{p}");
        }
        let user = rule("/api/users/[id]", None).unwrap();
        assert!(user.matches(&path("/api/users/7")));
        assert!(!user.matches(&path("/api/users/7/posts")));
        assert!(!user.matches(&path("/api/users")));
        assert!(rule("/api/users/:id", Some("ip"))
            .unwrap()
            .matches(&path("/api/users/7")));
        let all = rule("/api/*", Some("header:X-Key")).unwrap();
        assert!(all.matches(&path("/api/anything")));
        assert_eq!(all.by, By::Header("x-key".into()));
    }

    #[test]
    fn mistakes() {
        for (p, by, key) in [
            ("/auth/*", None, "path"),
            ("/apix", None, "path"),
            ("/api/*/x", None, "path"),
            ("/api/a*", None, "path"),
            ("/api//x", None, "path"),
            ("/api/x", Some("cookie"), "by"),
            ("/api/x", Some("header:bad name"), "by"),
        ] {
            assert_eq!(rule(p, by).unwrap_err().0, key, "{p} {by:?}");
        }
    }
}
