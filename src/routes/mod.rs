//! File-based routing: turn the route files of `pages/api/` (found by
//! [`AppFiles::scan`]) into a table, and match a request path to a route.

pub mod path;
pub mod pattern;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::app_files::{AppFiles, Kind, Scan};

// Moved to `crate::app_files` with the scan; named here still by its callers.
pub use crate::app_files::display_path;
pub use pattern::{ParamValue, Params, Pattern, Segment};

/// One `.rhai` file under `pages/api/` that is a route (not private).
#[derive(Clone, Debug)]
pub struct RouteFile {
    /// Path shown to users, relative to the app dir: `pages/api/users/[id].rhai`.
    pub display: String,
    /// Absolute path on disk.
    pub path: PathBuf,
    /// The URL pattern, or why the file name is not a valid route.
    pub pattern: Result<Pattern, String>,
}

/// The route files of `scan` with their URL patterns, sorted by path.
pub fn route_files(files: &AppFiles, scan: &Scan) -> Vec<RouteFile> {
    let api = files.api_dir();
    scan.of(Kind::Route)
        .map(|file| RouteFile {
            display: file.display.clone(),
            path: file.path.clone(),
            pattern: pattern_of(file.path.strip_prefix(&api).unwrap_or(&file.path)),
        })
        .collect()
}

/// The pattern of the route file at `relative` (to `pages/api`): its folders, then its
/// name without `.rhai`.
fn pattern_of(relative: &Path) -> Result<Pattern, String> {
    let names: Vec<String> = relative
        .iter()
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    let Some((file, folders)) = names.split_last() else {
        return Pattern::from_file_segments(&[]);
    };
    let stem = file.strip_suffix(".rhai").unwrap_or(file);
    let segments: Vec<&str> = folders.iter().map(String::as_str).chain([stem]).collect();
    Pattern::from_file_segments(&segments)
}

/// Pairs of indexes into `patterns` whose files claim the same URLs.
pub fn conflicts(patterns: &[&Pattern]) -> Vec<(usize, usize)> {
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut pairs = Vec::new();
    // Exact claims first, so that `a.rhai` + `a/index.rhai` is reported as such.
    for (i, pattern) in patterns.iter().enumerate() {
        let key = &pattern.claim_keys()[0];
        match owner.get(key) {
            Some(&first) => pairs.push((first, i)),
            None => {
                owner.insert(key.clone(), i);
            }
        }
    }
    for (i, pattern) in patterns.iter().enumerate() {
        for key in pattern.claim_keys().iter().skip(1) {
            if let Some(&other) = owner.get(key) {
                if other != i {
                    pairs.push((other, i));
                }
            }
        }
    }
    pairs
}

/// The in-memory route table: a static path is one hash lookup; dynamic patterns are tried
/// from the most specific to the least, so the first match wins.
#[derive(Debug)]
pub struct RouteTable<T> {
    entries: Vec<(Pattern, T)>,
    statics: HashMap<String, usize>,
    dynamic: Vec<usize>,
}

impl<T> RouteTable<T> {
    /// Builds the table. Patterns must not conflict (see [`conflicts`]); a later duplicate
    /// is ignored.
    pub fn new(entries: Vec<(Pattern, T)>) -> Self {
        let mut statics = HashMap::new();
        let mut dynamic = Vec::new();
        for (i, (pattern, _)) in entries.iter().enumerate() {
            if pattern.is_static() {
                statics.entry(static_key(pattern)).or_insert(i);
            } else {
                dynamic.push(i);
            }
        }
        dynamic.sort_by(|&a, &b| entries[a].0.rank().cmp(&entries[b].0.rank()));
        RouteTable {
            entries,
            statics,
            dynamic,
        }
    }

    /// Finds the most specific route for decoded path segments (those after `/api`), with
    /// its place in the order given to [`RouteTable::new`] (what a list kept beside the
    /// table is indexed by).
    pub fn lookup_at(&self, segments: &[String]) -> Option<(usize, &T, Params)> {
        if segments.iter().any(String::is_empty) {
            return None;
        }
        if let Some(&i) = self.statics.get(&segments.join("\0")) {
            return Some((i, &self.entries[i].1, Params::new()));
        }
        self.dynamic.iter().find_map(|&i| {
            let (pattern, value) = &self.entries[i];
            pattern.matches(segments).map(|params| (i, value, params))
        })
    }

    /// Every route, in the order given to [`RouteTable::new`].
    pub fn iter(&self) -> impl Iterator<Item = &(Pattern, T)> {
        self.entries.iter()
    }
}

// NUL never survives path decoding, so it cannot collide with a segment's text.
fn static_key(pattern: &Pattern) -> String {
    pattern
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Static(text) => text.as_str(),
            _ => unreachable!("static_key is only called on static patterns"),
        })
        .collect::<Vec<_>>()
        .join("\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(files: &[&str]) -> RouteTable<String> {
        let entries = files
            .iter()
            .map(|f| {
                let parts: Vec<&str> = f.split('/').collect();
                (Pattern::from_file_segments(&parts).unwrap(), f.to_string())
            })
            .collect();
        RouteTable::new(entries)
    }

    fn find(t: &RouteTable<String>, path: &str) -> Option<String> {
        let segments: Vec<String> = path.split('/').skip(1).map(String::from).collect();
        t.lookup_at(&segments).map(|(_, v, _)| v.clone())
    }

    #[test]
    fn most_specific_wins() {
        let t = table(&[
            "c/[...all]",
            "c/[id]/deep",
            "c/[id]",
            "c/new",
            "[[...rest]]",
        ]);
        assert_eq!(find(&t, "/c/new").as_deref(), Some("c/new"));
        assert_eq!(find(&t, "/c/1").as_deref(), Some("c/[id]"));
        assert_eq!(find(&t, "/c/1/deep").as_deref(), Some("c/[id]/deep"));
        assert_eq!(find(&t, "/c/1/x").as_deref(), Some("c/[...all]"));
        assert_eq!(find(&t, "/other").as_deref(), Some("[[...rest]]"));
        assert_eq!(find(&t, "").as_deref(), Some("[[...rest]]"));
    }

    #[test]
    fn empty_segment_matches_nothing() {
        let t = table(&["a/b", "[x]/b", "f/[...all]"]);
        assert_eq!(find(&t, "/a//b"), None);
        assert_eq!(find(&t, "//b"), None);
        assert_eq!(find(&t, "/f/x//y"), None);
    }

    #[test]
    fn decoded_slash_is_not_a_separator() {
        let t = table(&["a/b"]);
        let segments = vec!["a/b".to_string()];
        assert!(t.lookup_at(&segments).is_none());
    }

    #[test]
    fn conflicting_files_are_found() {
        let p = |f: &str| {
            let parts: Vec<&str> = f.split('/').collect();
            Pattern::from_file_segments(&parts).unwrap()
        };
        let (a, b) = (p("a"), p("a/index"));
        assert_eq!(conflicts(&[&a, &b]), vec![(0, 1)]);
        let (a, b) = (p("u/[id]"), p("u/[slug]"));
        assert_eq!(conflicts(&[&a, &b]), vec![(0, 1)]);
        let (a, b) = (p("d/index"), p("d/[[...slug]]"));
        assert_eq!(conflicts(&[&a, &b]), vec![(0, 1)]);
        let (a, b) = (p("u/[id]"), p("u/[...all]"));
        assert!(conflicts(&[&a, &b]).is_empty());
    }
}
