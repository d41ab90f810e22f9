//! Request ids (docs/reference.md, "Behind a proxy, request ids and logs"): the client's or
//! proxy's `X-Request-Id` when it is a sensible one, else a new one. Each request's id is
//! `req.id`, its response's `X-Request-Id` header and the `request_id` of its log lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use rhai::ImmutableString;

/// The header it comes in and goes out with.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a request.
const MAX_LEN: usize = 128;

/// A request's id, as text for scripts and logs and as the response header's value.
#[derive(Clone)]
pub struct RequestId {
    pub text: ImmutableString,
    pub header: HeaderValue,
}

impl RequestId {
    /// The incoming `X-Request-Id` when it is 1 to 128 characters of `A-Za-z0-9-_.:`, else a
    /// new id.
    pub fn of(headers: &HeaderMap) -> RequestId {
        if let Some(value) = headers.get(HEADER) {
            if let Ok(text) = std::str::from_utf8(value.as_bytes()) {
                if is_valid(text) {
                    return RequestId {
                        text: text.into(),
                        header: value.clone(),
                    };
                }
            }
        }
        RequestId::new()
    }

    /// A new id: a random prefix drawn once per process, then a counter, `3f9a0c1b77e2-1041`.
    /// Unique within the process by the counter, and across processes and restarts by the
    /// prefix (48 random bits). Cheap on purpose: it is made for every request.
    pub fn new() -> RequestId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 12 + 1 + 20];
        id[..12].copy_from_slice(prefix());
        id[12] = b'-';
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        id[13..13 + digits.len()].copy_from_slice(digits);
        let id = &id[..13 + digits.len()];
        RequestId {
            // Hex digits, a dash and decimal digits: always UTF-8 and a valid header value.
            text: std::str::from_utf8(id).unwrap_or_default().into(),
            header: HeaderValue::from_bytes(id).unwrap_or(HeaderValue::from_static("-")),
        }
    }
}

fn is_valid(text: &str) -> bool {
    (1..=MAX_LEN).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// This process's 12 hex digits.
fn prefix() -> &'static [u8; 12] {
    static PREFIX: OnceLock<[u8; 12]> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut random = [0u8; 6];
        if getrandom::fill(&mut random).is_err() {
            // No random source: the time and the process id still differ between runs.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let mixed = now ^ (u64::from(std::process::id()) << 32);
            random.copy_from_slice(&mixed.to_le_bytes()[..6]);
        }
        let mut hex = [0u8; 12];
        for (i, byte) in random.iter().enumerate() {
            hex[2 * i] = b"0123456789abcdef"[usize::from(byte >> 4)];
            hex[2 * i + 1] = b"0123456789abcdef"[usize::from(byte & 15)];
        }
        hex
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(value: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_str(value).unwrap());
        RequestId::of(&headers).text.to_string()
    }

    #[test]
    fn incoming_ids_are_kept_when_sensible() {
        assert_eq!(id_for("abc-123_x.y:z"), "abc-123_x.y:z");
        let longest = "a".repeat(128);
        assert_eq!(id_for(&longest), longest);
        for bad in ["", "a b", "a/b", "é", &"a".repeat(129), "a\"b"] {
            let got = id_for(bad);
            assert_ne!(got, bad);
            assert!(is_valid(&got), "{got}");
        }
    }

    #[test]
    fn new_ids_differ_and_are_valid() {
        let a = RequestId::new();
        let b = RequestId::new();
        assert_ne!(a.text, b.text);
        assert!(is_valid(&a.text));
        assert_eq!(a.header.as_bytes(), a.text.as_bytes());
    }
}
