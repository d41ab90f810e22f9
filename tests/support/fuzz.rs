//! The request fuzzer of `tests/bad_input.rs`: a deterministic generator of malformed
//! (or merely odd) requests, and the check of how the server answered each.

use std::time::Duration;

use super::server::{Exchange, Server};

/// xorshift64*: a tiny deterministic generator, so a failing case can be replayed.
pub struct Rng(pub u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// Characters that stress a parser: delimiters, escapes, controls, non-ASCII.
    fn nasty_text(&mut self, len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"a",
            b"z",
            b"0",
            b"9",
            b"-",
            b"_",
            b".",
            b"..",
            b"/",
            b"//",
            b"%",
            b"%2",
            b"%2e",
            b"%2F",
            b"%00",
            b"%ff",
            b"%c3%28",
            b"%e2%9c%93",
            b"%zz",
            b"?",
            b"&",
            b"=",
            b"+",
            b"#",
            b";",
            b":",
            b"@",
            b"[",
            b"]",
            b"{",
            b"}",
            b"\"",
            b"'",
            b"\\",
            b"~",
            b" ",
            b"\t",
            b"\0",
            b"\r",
            b"\n",
            b"\xff",
            b"\xc3",
            b"\x80",
            "✓".as_bytes(),
            b"api",
            b"hello",
            b"items",
            b"files",
            b"echo",
        ];
        let mut out = Vec::new();
        while out.len() < len {
            out.extend_from_slice(PIECES[self.below(PIECES.len())]);
        }
        out
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "BREW", "G ET", "",
];
const ROUTES: &[&str] = &[
    "/api/hello",
    "/api/echo",
    "/api/items/7",
    "/api/files/a/b",
    "/api/nope",
    "/",
    "*",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/plain; charset=latin1",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "application/octet-stream",
    "application/vnd.x+json",
    ";;;",
    "\u{1}",
];

/// Bytes a mutation inserts.
const INSERTED: &[u8] = b"\r\n :\0%";

/// Requests every HTTP parser has opinions about.
const CANNED: &[&[u8]] = &[
    b"GET /api/hello HTTP/1.1\nhost: x\n\n",
    b"GET /api/hello\r\n\r\n",
    b"GET /api/hello HTTP/1.1\r\nhost: x\r\n",
    b"GET /api/hello HTTP/1.1\r\nhost x\r\n\r\n",
    b"GET /api/hello HTTP/1.1\r\n: empty-name\r\n\r\n",
    b"GET  /api/hello  HTTP/1.1\r\n\r\n",
    b"\r\n\r\n\r\n",
    b"GET http://127.0.0.1/api/hello HTTP/1.1\r\nhost: x\r\n\r\n",
    b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nhost: x\r\n\r\n",
    b"GET /api/hello HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 10\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
];

fn valid_request(rng: &mut Rng) -> Vec<u8> {
    let method = rng.pick(&["GET", "POST", "PUT", "HEAD"]);
    let route = rng.pick(ROUTES);
    let body = if method == "GET" || method == "HEAD" {
        Vec::new()
    } else {
        {
            let len = rng.below(64);
            rng.nasty_text(len)
        }
    };
    let content_type = rng.pick(CONTENT_TYPES);
    let mut raw = format!(
        "{method} {route} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// One malformed (or merely odd) request, from one of several families.
pub fn fuzz_request(rng: &mut Rng) -> Vec<u8> {
    match rng.below(7) {
        // Random path.
        0 => {
            let mut raw = format!("{} /api/", rng.pick(METHODS)).into_bytes();
            let len = rng.below(80);
            raw.extend(rng.nasty_text(len));
            raw.extend_from_slice(b" HTTP/1.1\r\nhost: x\r\n\r\n");
            raw
        }
        // Random headers, sometimes huge or many.
        1 => {
            let mut raw = format!("GET {} HTTP/1.1\r\nhost: x\r\n", rng.pick(ROUTES)).into_bytes();
            let count = if rng.chance(20) {
                100 + rng.below(100)
            } else {
                rng.below(12)
            };
            for _ in 0..count {
                let name_len = 1 + rng.below(20);
                let name = if rng.chance(3) {
                    rng.nasty_text(name_len)
                } else {
                    b"x-fuzz".to_vec()
                };
                let value_len = if rng.chance(30) {
                    10_000 + rng.below(30_000)
                } else {
                    rng.below(60)
                };
                raw.extend(name);
                raw.extend_from_slice(b": ");
                raw.extend(rng.nasty_text(value_len));
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            raw
        }
        // Random bodies under random content types, framed correctly.
        2 => {
            let body = if rng.chance(2) {
                let len = rng.below(300);
                rng.bytes(len)
            } else {
                let len = rng.below(300);
                rng.nasty_text(len)
            };
            let mut raw = format!(
                "POST {} HTTP/1.1\r\nhost: x\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
                rng.pick(&["/api/echo", "/api/hello", "/api/items/1"]),
                rng.pick(CONTENT_TYPES),
                body.len()
            )
            .into_bytes();
            raw.extend(body);
            raw
        }
        // Broken framing.
        3 => {
            let len = rng.below(100);
            let body = rng.nasty_text(len);
            let framing = rng.pick(&[
                "content-length: 5\r\ncontent-length: 6\r\n",
                "content-length: -1\r\n",
                "content-length: 1e3\r\n",
                "content-length: 99999999999999999999999\r\n",
                "content-length: 1000\r\n",
                "content-length: 0\r\n",
                "transfer-encoding: chunked\r\n",
                "transfer-encoding: chunked\r\ncontent-length: 3\r\n",
                "transfer-encoding: gzip\r\n",
                "transfer-encoding: chunked, chunked\r\n",
                "transfer-encoding: identity\r\n",
                "",
            ]);
            let version = rng.pick(&[
                "HTTP/1.1",
                "HTTP/1.0",
                "HTTP/2.0",
                "HTTP/1.1 extra",
                "http/1.1",
                "HTTP/9",
            ]);
            let mut raw = format!(
                "POST /api/echo {version}\r\nhost: x\r\ncontent-type: text/plain\r\n{framing}\r\n"
            )
            .into_bytes();
            if framing.starts_with("transfer-encoding: chunked") && rng.chance(2) {
                let size = rng.pick(&["5", "ffffffffffffffffff", "-1", "z", "3;ext=1", ""]);
                raw.extend_from_slice(format!("{size}\r\n").as_bytes());
            }
            raw.extend(body);
            raw
        }
        // Pure noise.
        4 => {
            let len = rng.below(512);
            rng.bytes(len)
        }
        // A valid request with a few random bytes changed, inserted or removed.
        5 => {
            let mut raw = valid_request(rng);
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(raw.len());
                match rng.below(3) {
                    0 => raw[at] = rng.next() as u8,
                    1 => raw.insert(at, INSERTED[rng.below(INSERTED.len())]),
                    _ => {
                        raw.remove(at);
                    }
                }
            }
            raw
        }
        // Bare LF line endings, HTTP/0.9, truncated heads.
        _ => CANNED[rng.below(CANNED.len())].to_vec(),
    }
}

/// How one fuzzed exchange went; panics on anything a client must never see.
pub fn check_exchange(server: &Server, raw: &[u8], case: usize) -> bool {
    match server.exchange(raw, Duration::from_secs(10)) {
        Exchange::Answered(response) => {
            assert!(
                (100..500).contains(&response.status),
                "case {case}: {} for {:?}: {}",
                response.status,
                String::from_utf8_lossy(raw),
                response.text()
            );
            let json_body = response
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"));
            if response.status >= 400 && !response.body.is_empty() && json_body {
                let body = response.json();
                assert!(body["error"].is_string(), "case {case}: {body}");
            }
            true
        }
        Exchange::Closed(_) => false,
        Exchange::Hung(data) => panic!(
            "case {case}: no answer and no close for {:?} (got {:?})",
            String::from_utf8_lossy(raw),
            String::from_utf8_lossy(&data)
        ),
        Exchange::Refused => panic!("case {case}: connection refused: the server is down"),
    }
}
