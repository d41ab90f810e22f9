//! Turning the raw request path into decoded route segments, strictly.
//!
//! Nothing here touches the file system: the result is only ever looked up in the
//! in-memory route table.

/// What a raw request path means for routing.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestPath {
    /// Not under `/api`: no route can match (`public/` may have a file).
    NotApi,
    /// Ends in `/`: redirect permanently to this path (without the query).
    TrailingSlash(String),
    /// Malformed: `.`/`..` segment, NUL, bad percent-encoding or invalid UTF-8.
    Bad,
    /// The decoded segments after `/api` (an empty segment is kept, and matches nothing).
    Api(Vec<String>),
}

/// Splits and decodes a raw (still percent-encoded) request path.
pub fn parse(raw: &str) -> RequestPath {
    // Only `/api` paths lose a trailing slash; elsewhere `/dir/` is a folder of `public/`.
    let api = raw == "/api" || raw.starts_with("/api/");
    if api && raw.ends_with('/') {
        let trimmed = raw.trim_end_matches('/');
        return RequestPath::TrailingSlash(if trimmed.is_empty() {
            "/".to_string()
        } else {
            trimmed.to_string()
        });
    }
    let mut segments = Vec::new();
    for raw_segment in raw.split('/').skip(1) {
        match decode_segment(raw_segment) {
            Some(segment) => segments.push(segment),
            None => return RequestPath::Bad,
        }
    }
    if segments.first().map(String::as_str) != Some("api") {
        return RequestPath::NotApi;
    }
    segments.remove(0);
    RequestPath::Api(segments)
}

/// Strict percent-decoding of one segment: every `%` must start a two-digit hex escape,
/// the bytes must be UTF-8 without NUL, and `.`/`..` are refused (raw or encoded).
pub fn decode_segment(raw: &str) -> Option<String> {
    let bytes = crate::encoding::decode_percent(raw.as_bytes())?;
    let text = String::from_utf8(bytes).ok()?;
    if text == "." || text == ".." || text.contains('\0') {
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(segments: &[&str]) -> RequestPath {
        RequestPath::Api(segments.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn splits_and_decodes() {
        assert_eq!(parse("/api/hello"), api(&["hello"]));
        assert_eq!(parse("/api"), api(&[]));
        assert_eq!(parse("/api/a%20b/%E2%9C%93"), api(&["a b", "✓"]));
        assert_eq!(parse("/api/a%2Fb"), api(&["a/b"]));
        assert_eq!(parse("/api//x"), api(&["", "x"]));
    }

    #[test]
    fn other_paths_are_not_api() {
        assert_eq!(parse("/"), RequestPath::NotApi);
        assert_eq!(parse("/apix"), RequestPath::NotApi);
        assert_eq!(parse("/index.html"), RequestPath::NotApi);
    }

    #[test]
    fn trailing_slash_redirects() {
        assert_eq!(
            parse("/api/hello/"),
            RequestPath::TrailingSlash("/api/hello".into())
        );
        assert_eq!(parse("/api//"), RequestPath::TrailingSlash("/api".into()));
    }

    #[test]
    fn malformed_is_bad() {
        for bad in [
            "/api/%zz",
            "/api/%4",
            "/api/%",
            "/api/..",
            "/api/.",
            "/api/%2e%2e",
            "/api/%00",
            "/api/%ff",
            "/../api",
        ] {
            assert_eq!(parse(bad), RequestPath::Bad, "{bad}");
        }
    }
}
