//! docs/reference.md, "Errors and limits": the memory budget holds inside built-in calls
//! (a call that would pass it fails before the memory is taken, as a catchable error), and a
//! request body that stalls is answered 408 without holding the server's in-flight slots.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{TestApp, DEADLINE};

/// A route that runs one hostile call, chosen by `?call=`, with the size `?n=`; it catches
/// the error and answers it, so the test sees what a script's `catch` sees.
const HOSTILE: &str = r#"
fn GET(req) {
    let n = parse_int(req.query.n);
    let which = req.query.fn_name;
    let caught = ();
    let size = 0;
    try {
        if which == "array_pad" { let a = []; a.pad(n, 0); size = a.len(); }
        if which == "string_pad" { let s = ""; s.pad(n, 'x'); size = s.len(); }
        if which == "string_pad_text" { let s = ""; s.pad(n, "ab"); size = s.len(); }
        if which == "blob" { let b = blob(n); size = b.len(); }
        if which == "split_chars" { let s = ""; s.pad(n, 'x'); size = s.split("").len(); }
        if which == "replace" { let s = ""; s.pad(n, 'x'); s.replace("x", "yyyyyyyyyyyyyyyy"); size = s.len(); }
        if which == "concat" { let s = ""; s.pad(n, 'x'); let t = s + s; size = t.len(); }
        if which == "array_pad_of_arrays" { let a = []; a.pad(n, [1, 2, 3, 4, 5, 6, 7, 8]); size = a.len(); }
    } catch (e) {
        caught = e;
    }
    #{ caught: caught, size: size }
}
"#;

fn hostile_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write("pages/api/hostile.rhai", HOSTILE);
    app.write(
        "pages/api/uncaught.rhai",
        "fn GET(req) { let a = []; a.pad(parse_int(req.query.n), 0); a.len() }\n",
    );
    app
}

#[test]
fn a_call_past_the_memory_budget_fails_before_taking_the_memory() {
    let app = hostile_app();
    let server = app.serve("dev", &["--max-memory", "64mb"]);
    let before = server.rss_mib();
    // Each of these asked for gigabytes (up to a terabyte) of one allocation before.
    let cases = [
        ("array_pad", "200000000"),
        ("array_pad", "1000000000000"),
        ("string_pad", "1000000000"),
        ("string_pad_text", "1000000000"),
        ("blob", "1099511627776"),
        ("split_chars", "10000000"),
        ("replace", "10000000"),
        ("concat", "40000000"),
        ("array_pad_of_arrays", "10000000"),
    ];
    for (call, n) in cases {
        let r = server.get(&format!("/api/hostile?fn_name={call}&n={n}"));
        assert_eq!(r.status, 200, "{call}: {}", r.text());
        let caught = r.json()["caught"].as_str().unwrap_or_default().to_string();
        assert!(
            caught.contains("memory budget") && caught.contains("--max-memory"),
            "{call}({n}) was not refused by the memory budget: {}",
            r.text()
        );
        let rss = server.rss_mib();
        assert!(
            rss < before + 150,
            "{call}({n}) took the memory: RSS {before} MiB -> {rss} MiB"
        );
        let hello = server.get("/api/hello");
        assert_eq!(hello.status, 200);
    }
    // Below the budget the same calls still work.
    let r = server.get("/api/hostile?fn_name=array_pad&n=1000");
    assert_eq!(r.json(), json!({ "caught": null, "size": 1000 }));
    let r = server.get("/api/hostile?fn_name=split_chars&n=1000");
    assert_eq!(r.json(), json!({ "caught": null, "size": 1002 }));
}

#[test]
fn an_uncaught_memory_error_is_a_500_that_names_the_budget() {
    let app = hostile_app();
    let server = app.serve("dev", &[]);
    let r = server.get("/api/uncaught?n=200000000");
    assert_eq!(r.status, 500, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("memory budget"), "{}", r.text());
    assert!(r.text().contains("uncaught.rhai"), "{}", r.text());
    // In production the body stays generic.
    let server = app.serve("start", &[]);
    let r = server.get("/api/uncaught?n=200000000");
    assert_eq!(r.status, 500);
    assert_eq!(r.json(), json!({ "error": "Internal Server Error" }));
}

#[test]
fn database_rows_count_against_the_memory_budget() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/rows.rhai",
        r#"
fn GET(req) {
    let n = parse_int(req.query.n);
    let answer = ();
    try {
        let rows = db::query("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) SELECT i, printf('%.200c', 'x') AS pad FROM c", [n]);
        answer = #{ rows: rows.len() };
    } catch (e) {
        answer = #{ caught: e };
    }
    answer
}
"#,
    );
    let server = app.serve("dev", &["--max-memory", "16mb"]);
    let r = server.get("/api/rows?n=100");
    assert_eq!(r.json(), json!({ "rows": 100 }), "{}", r.text());
    let r = server.get("/api/rows?n=2000000");
    let caught = r.json()["caught"].as_str().unwrap_or_default().to_string();
    assert!(
        caught.contains("memory budget") && caught.contains("LIMIT"),
        "{}",
        r.text()
    );
}

/// Opens a connection and sends the head of a POST that announces `len` bytes of body and
/// `sent` of them.
fn stalled_upload(port: u16, len: usize, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream
}

fn echo_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/echo.rhai",
        "fn POST(req) { #{ got: req.body.len() } }\n",
    );
    app
}

#[test]
fn a_stalled_body_is_answered_408_and_the_connection_closed() {
    let app = echo_app();
    let server = app.serve("dev", &["--body-timeout", "1s"]);
    let mut stream = stalled_upload(server.port, 1_000_000, b"ab");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    // The server answers and closes: read_to_end returns (a hang would hit the deadline).
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    // A body that keeps arriving, slowly but with no pause as long as the limit, is read.
    let mut stream = stalled_upload(server.port, 6, b"ab");
    for piece in [b"cd", b"ef"] {
        std::thread::sleep(Duration::from_millis(400));
        stream.write_all(piece).unwrap();
    }
    let mut answer = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"got\"") {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#"{"got":6}"#), "{text}");
}

#[test]
fn a_body_must_arrive_within_the_routes_time_budget() {
    let app = echo_app();
    let server = app.serve("dev", &["--body-timeout", "5s", "--timeout", "1s"]);
    let mut stream = stalled_upload(server.port, 100, b"a");
    // Never a pause of 5 s, but the whole body takes longer than the 1 s budget.
    let mut answer = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let _ = stream.write_all(b"b");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !answer.is_empty() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[test]
fn stalled_uploads_do_not_lock_the_server_out() {
    let app = echo_app();
    let server = app.serve("dev", &["--max-in-flight", "20", "--body-timeout", "10s"]);
    let before = server.rss_mib();
    // Stalled uploads until the server refuses one: then every slot is held by a stalled
    // upload (nothing else is sent meanwhile). A loaded server may take a while to reach
    // the ones already sent, so an upload not refused at once is kept as a holder.
    let mut stalled = Vec::new();
    let refused = loop {
        assert!(stalled.len() < 200, "no upload was ever refused");
        let mut stream = stalled_upload(server.port, 1_000_000, b"ab");
        if stalled.len() < 20 {
            stalled.push(stream);
            continue;
        }
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut head = [0u8; 64];
        match stream.read(&mut head) {
            Ok(n) if n > 0 => break String::from_utf8_lossy(&head[..n]).into_owned(),
            _ => stalled.push(stream),
        }
    };
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // While they hold every slot, new requests are refused too ...
    assert_eq!(server.get("/api/hello").status, 503);
    // ... and once their bodies time out, new requests get their normal answers again,
    // while the stalled sockets are still open.
    let hello = server.poll_until("/api/hello", |r| r.status == 200);
    assert_eq!(hello.json(), json!({ "message": "Hello from API route!" }));
    // The announced megabytes were never taken.
    assert!(
        server.rss_mib() < before + 15,
        "RSS grew with announced sizes"
    );
    drop(stalled);
}

#[test]
fn announced_sizes_are_not_taken_before_the_body_arrives() {
    let app = echo_app();
    let server = app.serve("dev", &["--body-timeout", "30s"]);
    let before = server.rss_mib();
    let stalled: Vec<TcpStream> = (0..300)
        .map(|_| stalled_upload(server.port, 1_000_000, b"ab"))
        .collect();
    // Every one of them reached the server (each is one request in flight, waiting).
    let started = Instant::now();
    let mut hello = server.get("/api/hello");
    while started.elapsed() < Duration::from_secs(2) {
        hello = server.get("/api/hello");
    }
    assert_eq!(hello.status, 200);
    let rss = server.rss_mib();
    assert!(
        rss < before + 100,
        "300 stalled 1 MB uploads took {} MiB",
        rss - before
    );
    drop(stalled);
}

/// Serves `body_len` bytes of JSON-less text to every connection, until the test ends.
fn big_upstream(body_len: usize) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                let body = vec![b'x'; body_len];
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {body_len}\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

#[test]
fn http_response_bodies_count_against_the_memory_budget() {
    let port = big_upstream(6 * 1024 * 1024);
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/fetch.rhai",
        &format!(
            r#"
fn GET() {{
    let answer = ();
    try {{
        let r = http::get("http://127.0.0.1:{port}/big");
        answer = #{{ bytes: r.body.len() }};
    }} catch (e) {{
        answer = #{{ caught: e }};
    }}
    answer
}}
"#
        ),
    );
    // 6 MB is a quarter of what is left of 64 MB: read.
    let server = app.serve("dev", &[]);
    let r = server.get("/api/fetch");
    assert_eq!(
        r.json(),
        json!({ "bytes": 6 * 1024 * 1024 }),
        "{}",
        r.text()
    );
    // Not of 16 MB: refused while it arrives, naming the budget.
    let server = app.serve("dev", &["--max-memory", "16mb"]);
    let r = server.get("/api/fetch");
    let caught = r.json()["caught"].as_str().unwrap_or_default().to_string();
    assert!(caught.contains("memory budget"), "{}", r.text());
}

#[test]
fn a_value_nested_past_the_limit_ends_its_run_and_nothing_else() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/deep.rhai",
        "fn GET(req) { let a = []; for i in 0..parse_int(req.query.n) { a = [a]; } a = 0; #{ ok: true } }\n",
    );
    let server = app.serve("dev", &[]);
    let r = server.get("/api/deep?n=200");
    assert_eq!(r.json(), json!({ "ok": true }));
    // 100,000 levels overflowed the run's stack when the value was freed, and the process
    // died with every request it held.
    let r = server.get("/api/deep?n=100000");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("deeper than 256 levels"), "{}", r.text());
    assert_eq!(server.get("/api/hello").status, 200);
}

/// A wait's own bookkeeping is freed outside the run: a run that waits in a loop (a stream
/// that sleeps between events, for hours) is not charged for it (it ran out of a 512 KB
/// budget after about 2,000 waits).
#[test]
fn a_run_that_waits_in_a_loop_is_not_charged_for_its_waits() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/naps.rhai",
        "fn GET() { for i in 0..2000 { sleep(0); } \"ok\" }\n",
    );
    let server = app.serve("dev", &["--max-memory", "512kb", "--timeout", "60s"]);
    let response = server.get("/api/naps");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "ok");
}
