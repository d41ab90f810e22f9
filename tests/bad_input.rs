//! docs/reference.md, "Errors and limits": bad input never crashes the server and never reaches a script half-parsed.
//! Malformed paths, encodings, headers, bodies and framing get a 4xx (with a JSON error
//! wherever the server itself answers), and the server keeps serving.
//!
//! Some answers come from actix-web's HTTP/1 parser before the server sees a request: a
//! request line or header block it cannot parse gets `400` with an empty body, and a head
//! with more than 96 headers or over 128 KiB gets `431` with an empty body. Tests accept
//! those without a body and say so where they occur.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::fuzz::{check_exchange, fuzz_request, Rng};
use support::{Exchange, Response, Server, TestApp};

fn app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/echo.rhai",
        r#"fn handler(req, res) {
    print("echo ran");
    res.json(#{ method: req.method, path: req.path, query: req.query, body_type: type_of(req.body) });
}
"#,
    );
    app.write(
        "pages/api/items/[id].rhai",
        "fn GET(req) {\n    print(\"item ran\");\n    #{ id: req.params.id }\n}\n",
    );
    app.write(
        "pages/api/files/[...path].rhai",
        "fn GET(req) {\n    print(\"files ran\");\n    #{ path: req.params.path }\n}\n",
    );
    app
}

fn assert_json_error(response: &Response, status: u16, error: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{what}"
    );
    assert_eq!(response.json(), json!({ "error": error }), "{what}");
}

fn assert_no_script_ran(server: &Server) {
    server.sync_log();
    let log = server.log_text();
    for marker in ["echo ran", "item ran", "files ran"] {
        assert!(
            !log.contains(marker),
            "a script ran on bad input ({marker}):\n{log}"
        );
    }
}

/// Every GET of `paths` answers 400 JSON, no script runs, and the server serves on.
fn assert_gets_are_bad_requests(server: &Server, paths: &[&str]) {
    for path in paths {
        assert_json_error(&server.get(path), 400, "Bad Request", path);
    }
    assert_no_script_ran(server);
    assert_still_serving(server);
}

fn assert_still_serving(server: &Server) {
    let hello = server.get("/api/hello");
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.json(), json!({ "message": "Hello from API route!" }));
}

#[test]
fn malformed_paths_answer_400_json() {
    let app = app();
    let server = app.serve("dev", &[]);
    assert_gets_are_bad_requests(
        &server,
        &[
            "/api/items/%zz",
            "/api/items/%",
            "/api/items/%4",
            "/api/items/%g0",
            "/api/items/..",
            "/api/items/.",
            "/api/items/%2e%2e",
            "/api/items/%2E",
            "/api/items/%00",
            "/api/items/a%00b",
            "/api/items/%ff",
            "/api/items/%c3%28",
            "/api/items/%e2%82",
            "/api/files/a/%zz/b",
            "/api/files/../../etc/passwd",
            "/api/../api/hello",
            "/api/%2e%2e/api/hello",
        ],
    );
}

#[test]
fn well_formed_odd_paths_are_routed_normally() {
    let app = app();
    let server = app.serve("dev", &[]);
    // Encoded slash and spaces stay inside one segment.
    assert_eq!(
        server.get("/api/items/a%2Fb").json(),
        json!({ "id": "a/b" })
    );
    assert_eq!(
        server.get("/api/items/%E2%9C%93%20x").json(),
        json!({ "id": "✓ x" })
    );
    // An empty segment matches no route.
    assert_json_error(&server.get("/api//hello"), 404, "Not Found", "//");
    assert_json_error(&server.get("/api/files/a//b"), 404, "Not Found", "a//b");
    // A very long path is just an unknown route.
    let long = format!("/api/{}", "x".repeat(8000));
    assert_json_error(&server.get(&long), 404, "Not Found", "long path");
}

#[test]
fn invalid_utf8_or_malformed_query_answers_400_json() {
    let app = app();
    let server = app.serve("dev", &[]);
    assert_gets_are_bad_requests(
        &server,
        &[
            "/api/echo?x=%ff",
            "/api/echo?%c3%28=1",
            "/api/echo?x=%zz",
            "/api/echo?x=%",
            "/api/items/1?a=%fe%ff",
        ],
    );
}

#[test]
fn raw_non_ascii_bytes_in_the_request_line_are_refused() {
    let app = app();
    let server = app.serve("dev", &[]);
    for raw in [
        &b"GET /api/echo?x=\xff HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"[..],
        &b"GET /api/items/\xc3\x28 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"[..],
        &b"GET /api/items/a\x00b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"[..],
    ] {
        match server.exchange(raw, Duration::from_secs(10)) {
            // May come from the HTTP parser (400, no body) or from the server (400 JSON).
            Exchange::Answered(response) => {
                assert_eq!(
                    response.status,
                    400,
                    "{:?}: {}",
                    String::from_utf8_lossy(raw),
                    response.text()
                );
                if !response.body.is_empty() {
                    assert_eq!(response.json(), json!({ "error": "Bad Request" }));
                }
            }
            Exchange::Closed(_) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
        }
    }
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn invalid_utf8_bodies_answer_400_json() {
    let app = app();
    let server = app.serve("dev", &[]);
    let bad = b"caf\xc3\x28 \xff";
    for (content_type, error) in [
        ("text/plain", "Bad Request"),
        ("text/plain; charset=utf-8", "Bad Request"),
        ("application/json", "Invalid JSON body"),
        ("application/x-www-form-urlencoded", "Bad Request"),
    ] {
        let response = server.request("POST", "/api/echo", &[("content-type", content_type)], bad);
        assert_json_error(&response, 400, error, content_type);
    }
    let form = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"name=%ff%fe",
    );
    assert_json_error(
        &form,
        400,
        "Bad Request",
        "form with an escaped invalid byte",
    );
    assert_no_script_ran(&server);
    // Binary with a binary content type is fine: it is a blob.
    let blob = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "application/octet-stream")],
        bad,
    );
    assert_eq!(blob.status, 200, "{}", blob.text());
    assert_eq!(blob.json()["body_type"], "blob");
}

#[test]
fn invalid_json_answers_400_without_running_the_script() {
    let app = app();
    let server = app.serve("dev", &[]);
    for body in [
        "{",
        "{\"a\": }",
        "[1, 2",
        "nul",
        "{\"a\": 1} trailing",
        "'single'",
        "\u{0}",
    ] {
        let response = server.request(
            "POST",
            "/api/echo",
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_json_error(&response, 400, "Invalid JSON body", body);
        let response = server.request(
            "POST",
            "/api/echo",
            &[("content-type", "application/problem+json")],
            body.as_bytes(),
        );
        assert_json_error(&response, 400, "Invalid JSON body", body);
    }
    // Deeply nested JSON is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let response = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "application/json")],
        deep.as_bytes(),
    );
    assert_eq!(response.status, 400, "{}", response.text());
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn wrong_content_types_never_half_parse() {
    let app = app();
    let server = app.serve("dev", &[]);
    // JSON sent as text is text.
    let text = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        br#"{"a":1}"#,
    );
    assert_eq!(text.status, 200);
    assert_eq!(text.json()["body_type"], "string");
    // A nonsense content type with a UTF-8 body is a string.
    let odd = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "not a/type;;;=")],
        b"hello",
    );
    assert_eq!(odd.status, 200);
    assert_eq!(odd.json()["body_type"], "string");
    // A form sent as JSON is invalid JSON.
    let form = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "application/json")],
        b"a=1&b=2",
    );
    assert_json_error(&form, 400, "Invalid JSON body", "form as JSON");
    assert_still_serving(&server);
}

#[test]
fn a_malformed_multipart_body_answers_400() {
    let app = app();
    let server = app.serve("dev", &[]);
    // A multipart body without its boundary, or with a broken one, is a bad request.
    for (content_type, body) in [
        (
            "multipart/form-data",
            &b"--x\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n"[..],
        ),
        (
            "multipart/form-data; boundary=x",
            &b"garbage without any boundary"[..],
        ),
        (
            "multipart/form-data; boundary=x",
            &b"--x\r\nno headers end"[..],
        ),
    ] {
        let response = server.request("POST", "/api/echo", &[("content-type", content_type)], body);
        assert_json_error(
            &response,
            400,
            "Bad Request",
            &format!("{content_type}: {}", String::from_utf8_lossy(body)),
        );
    }
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn a_huge_header_answers_431_json() {
    let app = app();
    let server = app.serve("dev", &[]);
    // Over the server's 16 KiB limit but within what the HTTP parser buffers: the server
    // answers with its JSON error.
    let big = "v".repeat(20 * 1024);
    let response = server.request("GET", "/api/echo", &[("x-big", &big)], b"");
    assert_json_error(
        &response,
        431,
        "Request Header Fields Too Large",
        "one 20 KiB header",
    );
    // Many medium headers adding up past the limit.
    let medium = "m".repeat(1000);
    let headers: Vec<(String, String)> = (0..40)
        .map(|i| (format!("x-h{i}"), medium.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let response = server.request("GET", "/api/echo", &refs, b"");
    assert_json_error(
        &response,
        431,
        "Request Header Fields Too Large",
        "40 KB of headers",
    );
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn a_head_too_big_for_the_parser_answers_431() {
    let app = app();
    let server = app.serve("dev", &[]);
    // Over 128 KiB: actix-web's parser answers 431 itself, with an empty body.
    let huge = "h".repeat(200 * 1024);
    let raw =
        format!("GET /api/echo HTTP/1.1\r\nhost: x\r\nx-huge: {huge}\r\nconnection: close\r\n\r\n");
    match server.exchange(raw.as_bytes(), Duration::from_secs(10)) {
        Exchange::Answered(response) => assert_eq!(response.status, 431, "{}", response.text()),
        other => panic!("no answer to a 200 KiB header: {other:?}"),
    }
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn too_many_headers_answer_431() {
    let app = app();
    let server = app.serve("dev", &[]);
    // 200 small headers: actix-web's parser holds at most 96, and answers 431 itself (no body).
    let mut raw = String::from("GET /api/echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for i in 0..200 {
        raw.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    raw.push_str("\r\n");
    match server.exchange(raw.as_bytes(), Duration::from_secs(10)) {
        Exchange::Answered(response) => {
            assert_eq!(response.status, 431, "{}", response.text());
            if !response.body.is_empty() {
                assert_eq!(response.json()["error"], "Request Header Fields Too Large");
            }
        }
        other => panic!("no answer to 200 headers: {other:?}"),
    }
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn a_body_over_the_limit_answers_413_with_content_length() {
    let app = app();
    let server = app.serve("dev", &["--body-limit", "1kb"]);
    let at_limit = vec![b'a'; 1024];
    let ok = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        &at_limit,
    );
    assert_eq!(
        ok.status,
        200,
        "exactly the limit is accepted: {}",
        ok.text()
    );
    let over = vec![b'a'; 1025];
    let response = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        &over,
    );
    assert_json_error(&response, 413, "Payload Too Large", "1025 bytes");
    // Announced too big, whatever is sent.
    let raw = b"POST /api/echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 99999999999\r\n\r\nabc";
    match server.exchange(raw, Duration::from_secs(10)) {
        Exchange::Answered(response) => {
            assert_json_error(&response, 413, "Payload Too Large", "announced")
        }
        other => panic!("no answer to an announced huge body: {other:?}"),
    }
    server.sync_log();
    assert_eq!(
        server.log_text().matches("echo ran").count(),
        1,
        "{}",
        server.log_text()
    );
    assert_still_serving(&server);
}

fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut raw = b"POST /api/echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(chunk) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[test]
fn a_chunked_body_over_the_limit_answers_413() {
    let app = app();
    let server = app.serve("dev", &["--body-limit", "1kb"]);
    let ok = server.raw(&chunked(&[b'a'; 1000], 100));
    assert_eq!(
        ok.status,
        200,
        "a chunked body under the limit is read: {}",
        ok.text()
    );
    assert_eq!(ok.json()["body_type"], "string");
    let response = server.raw(&chunked(&[b'a'; 3000], 100));
    assert_json_error(&response, 413, "Payload Too Large", "3000 bytes chunked");
    // One chunk announcing more than the limit.
    let response = server.raw(&chunked(&[b'b'; 2000], 2000));
    assert_json_error(&response, 413, "Payload Too Large", "one 2000-byte chunk");
    server.sync_log();
    assert_eq!(
        server.log_text().matches("echo ran").count(),
        1,
        "{}",
        server.log_text()
    );
    assert_still_serving(&server);
}

#[test]
fn a_truncated_body_never_reaches_the_script() {
    let app = app();
    let server = app.serve("dev", &[]);
    // Announces 100 bytes, sends 10, then closes its side.
    let raw = b"POST /api/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"a\": 1, ";
    match server.exchange(raw, Duration::from_secs(10)) {
        Exchange::Answered(response) => {
            assert!((400..500).contains(&response.status), "{}", response.status)
        }
        Exchange::Closed(_) => {}
        other => panic!("{other:?}"),
    }
    // A broken chunked body.
    let raw = b"POST /api/echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
    match server.exchange(raw, Duration::from_secs(10)) {
        Exchange::Answered(response) => {
            assert!((400..500).contains(&response.status), "{}", response.status)
        }
        Exchange::Closed(_) => {}
        other => panic!("{other:?}"),
    }
    assert_no_script_ran(&server);
    assert_still_serving(&server);
}

#[test]
fn a_slow_client_is_timed_out_and_others_are_served_meanwhile() {
    let app = app();
    let server = app.serve("dev", &[]);
    std::thread::scope(|scope| {
        // Sends half a request head and then nothing: the server must give up on it.
        let slow = scope.spawn(|| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            use std::io::{Read, Write};
            stream
                .write_all(b"GET /api/hello HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .unwrap();
            stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
            let mut data = Vec::new();
            let result = stream.read_to_end(&mut data);
            (result.map_err(|e| e.kind()), data)
        });
        for _ in 0..20 {
            assert_still_serving(&server);
        }
        let (result, data) = slow.join().unwrap();
        assert!(
            !matches!(
                result,
                Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ),
            "the server kept a stalled request open for {:?}",
            support::DEADLINE
        );
        if let Some(response) = Response::from_bytes(&data) {
            assert_eq!(response.status, 408, "{}", response.text());
        }
    });
    assert_still_serving(&server);
}

#[test]
fn thousands_of_fuzzed_requests_never_hang_or_crash_the_server() {
    const THREADS: u64 = 4;
    const PER_THREAD: usize = 1250;
    let app = app();
    let mut server = app.serve("start", &["--body-limit", "16kb"]);
    let answered: usize = std::thread::scope(|scope| {
        let server = &server;
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng =
                        Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                    let mut answered = 0;
                    for i in 0..PER_THREAD {
                        let raw = fuzz_request(&mut rng);
                        if check_exchange(server, &raw, t as usize * PER_THREAD + i) {
                            answered += 1;
                        }
                    }
                    answered
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    // Most malformed requests get an answer rather than a silent close.
    assert!(
        answered > (THREADS as usize * PER_THREAD) / 2,
        "only {answered} answered"
    );

    assert!(
        !server.has_exited(),
        "the server died:\n{}",
        server.log_text()
    );
    assert_still_serving(&server);
    let echo = server.post_json("/api/echo", r#"{"still": "fine"}"#);
    assert_eq!(echo.status, 200);
    assert_eq!(echo.json()["body_type"], "map");
    server.sync_log();
    let log = server.log_text();
    assert!(!log.contains("panicked"), "a panic:\n{log}");
}
