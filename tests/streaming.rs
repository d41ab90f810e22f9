//! docs/reference.md, "Streaming": `res.write` sends chunks as the script goes, `res.event`
//! sends Server-Sent Events; status and headers are fixed by the first write; a client
//! that goes away ends the run and frees its place; `HEAD` gets no body; a stream keeps
//! the version of its script through a reload and may finish when the server stops.

use crate::support;

use std::time::{Duration, Instant};

use support::TestApp;

#[test]
fn chunks_arrive_in_order_with_the_head_of_the_first_write() {
    let app = TestApp::new();
    app.write(
        "pages/api/s.rhai",
        r#"fn GET(req, res) {
    res.status(201).set_header("x-kind", "stream");
    res.write("a");
    res.write(#{ n: 1 });
    res.write("c");
}
"#,
    );
    let server = app.serve("dev", &[]);
    let mut stream = server.open_stream("GET", "/api/s");
    assert_eq!(stream.status, 201);
    assert_eq!(stream.header("x-kind"), Some("stream"));
    assert_eq!(stream.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        stream.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(stream.rest(), "a{\"n\":1}\nc");
}

#[test]
fn status_and_headers_after_the_first_write_are_script_errors() {
    let app = TestApp::new();
    app.write(
        "pages/api/late.rhai",
        r#"fn GET(req, res) {
    res.write("a");
    try { res.set_header("x-late", "1"); } catch (err) { res.write("|" + err); }
    res.status(500);
}
"#,
    );
    let server = app.serve("dev", &[]);
    let mut stream = server.open_stream("GET", "/api/late");
    assert_eq!(stream.status, 200);
    assert!(stream.header("x-late").is_none());
    let body = stream.rest();
    assert!(body.starts_with("a|"), "{body}");
    assert!(body.contains("the response is streaming"), "{body}");
    // The uncaught second status ends the run and is logged with its place.
    let line = server.wait_for_log_line("the late status error", |l| {
        l.contains("res.status(): the response is streaming") && l.contains("late.rhai:4")
    });
    assert!(line.contains("after the response was sent"), "{line}");
}

#[test]
fn server_sent_events_in_order() {
    let app = TestApp::new();
    app.write(
        "pages/api/events.rhai",
        r#"fn GET(req, res) {
    for i in 0..3 {
        res.event(#{ id: i, event: "tick", data: "n" + i });
        sleep(5);
    }
    res.event(#{ data: #{ done: true } });
}
"#,
    );
    let server = app.serve("dev", &[]);
    let mut stream = server.open_stream("GET", "/api/events");
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    assert_eq!(
        stream.rest(),
        "event: tick\nid: 0\ndata: n0\n\nevent: tick\nid: 1\ndata: n1\n\n\
         event: tick\nid: 2\ndata: n2\n\ndata: {\"done\":true}\n\n"
    );
}

#[test]
fn a_client_that_goes_away_ends_the_run_and_frees_its_place() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/forever.rhai",
        "fn GET(req, res) {\n    loop {\n        res.write(\"x\");\n        sleep(20);\n    }\n}\n",
    );
    let server = app.serve("start", &["--max-in-flight", "1", "--timeout", "60s"]);
    let mut stream = server.open_stream("GET", "/api/forever");
    assert_eq!(stream.next_chunk().as_deref(), Some(&b"x"[..]));
    // The stream holds the only place.
    assert_eq!(server.get("/api/hello").status, 503);
    drop(stream);
    // Its next write finds the client gone: the run ends and the place is free again.
    let hello = server.poll_until("/api/hello", |r| r.status == 200);
    assert_eq!(hello.status, 200);
    server.sync_log();
    let log = server.log_text();
    assert!(
        !log.contains("ERROR"),
        "a closed client is not a server error:\n{log}"
    );
}

#[test]
fn head_on_a_streaming_route_sends_no_body() {
    let app = TestApp::new();
    app.write(
        "pages/api/s.rhai",
        "fn GET(req, res) {\n    res.write(\"body\");\n    res.write(\"more\");\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.request("HEAD", "/api/s", &[], b"");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty(), "{:?}", response.text());
}

#[test]
fn a_stream_is_bounded_by_its_budget() {
    let app = TestApp::new();
    app.write(
        "pages/api/long.rhai",
        "fn GET(req, res) {\n    loop {\n        res.write(\"tick \");\n        sleep(50);\n    }\n}\n",
    );
    let server = app.serve("start", &["--timeout", "1s"]);
    let mut stream = server.open_stream("GET", "/api/long");
    assert_eq!(stream.status, 200);
    let body = stream.rest();
    assert!(body.starts_with("tick "), "{body}");
    server.wait_for_log_line("the timeout", |l| l.contains("timed out"));
}

#[test]
fn a_reload_during_a_stream_keeps_the_stream_on_its_version() {
    let app = TestApp::new();
    let version = |v: &str| {
        format!(
            "fn GET(req, res) {{\n    for i in 0..400 {{\n        res.write(\"{v} \");\n        sleep(20);\n    }}\n}}\n"
        )
    };
    app.write("pages/api/v.rhai", &version("v1"));
    let server = app.serve("dev", &["--timeout", "60s"]);
    let mut old = server.open_stream("GET", "/api/v");
    assert_eq!(old.next_chunk().as_deref(), Some(&b"v1 "[..]));
    app.write_atomic("pages/api/v.rhai", &version("v2"));
    // A new request runs the new version once the reload is in...
    let started = std::time::Instant::now();
    loop {
        let mut new = server.open_stream("GET", "/api/v");
        if new.next_chunk().as_deref() == Some(&b"v2 "[..]) {
            break;
        }
        assert!(
            started.elapsed() < support::DEADLINE,
            "the reload never came"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...while the stream that started before it goes on with its own.
    for _ in 0..5 {
        assert_eq!(old.next_chunk().as_deref(), Some(&b"v1 "[..]));
    }
}

#[test]
fn sigterm_ends_a_stream_at_its_next_write() {
    let app = TestApp::new();
    app.write(
        "pages/api/s.rhai",
        "fn GET(req, res) {\n    for i in 0..100 {\n        res.write(`${i};`);\n        sleep(100);\n    }\n}\n",
    );
    let server = app.serve("start", &["--timeout", "60s"]);
    let mut stream = server.open_stream("GET", "/api/s");
    assert_eq!(stream.next_chunk().as_deref(), Some(&b"0;"[..]));
    server.signal("TERM");
    // The uncaught "shutting down" ends the run quietly, and the response with it.
    let rest = stream.rest();
    assert!(rest.len() < 6, "the stream went on after SIGTERM: {rest}");
    let log = server.log_text();
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(!log.contains("ERROR"), "stopping is not an error:\n{log}");
}

#[test]
fn sigterm_tells_open_streams_and_exits_when_they_end() {
    let app = TestApp::new();
    app.write(
        "pages/api/events.rhai",
        "fn GET(req, res) {\n    let i = 0;\n    loop {\n        try {\n            res.event(#{ data: i });\n        } catch (e) {\n            log::info(`stream ended: ${e}`);\n            return;\n        }\n        i += 1;\n        sleep(50);\n    }\n}\n",
    );
    let mut server = app.serve("start", &["--timeout", "60s"]);
    let mut stream = server.open_stream("GET", "/api/events");
    assert_eq!(stream.next_chunk().as_deref(), Some(&b"data: 0\n\n"[..]));
    let signalled = Instant::now();
    server.signal("TERM");
    // The client sees the stream end (its last chunk), not a cut connection after the
    // 30 s grace.
    let rest = stream.rest();
    let ended = signalled.elapsed();
    assert!(
        ended < Duration::from_secs(5),
        "the stream ended {ended:?} after SIGTERM: {rest}"
    );
    while !server.has_exited() {
        assert!(
            signalled.elapsed() < support::DEADLINE,
            "still running after SIGTERM:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Once its last connection has ended, the server exits (a few ms here; the 1 s bound
    // is generous, the grace is 30 s).
    let exited = signalled.elapsed();
    assert!(
        exited < Duration::from_secs(1),
        "exited {exited:?} after SIGTERM"
    );
    let log = server.log_text();
    assert!(log.contains("stream ended: shutting down"), "{log}");
    assert!(server.wait_exit().success());
}

#[test]
fn sigterm_ends_a_streams_sleep_between_events() {
    let app = TestApp::new();
    // Events a minute apart: the stream would otherwise hold the exit for the whole grace.
    app.write(
        "pages/api/slow.rhai",
        "fn GET(req, res) {\n    res.event(#{ data: \"first\" });\n    sleep(60000);\n    try {\n        res.event(#{ data: \"second\" });\n    } catch (e) {\n        log::info(`after the sleep: ${e}`);\n    }\n}\n",
    );
    let mut server = app.serve("start", &["--timeout", "120s"]);
    let mut stream = server.open_stream("GET", "/api/slow");
    assert_eq!(
        stream.next_chunk().as_deref(),
        Some(&b"data: first\n\n"[..])
    );
    server.signal("TERM");
    let _ = stream.rest();
    let signalled = Instant::now();
    while !server.has_exited() {
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM (the grace is 30 s):\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let log = server.log_text();
    assert!(log.contains("after the sleep: shutting down"), "{log}");
    assert!(server.wait_exit().success());
}
