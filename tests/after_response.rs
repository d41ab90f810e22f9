//! docs/reference.md, "After the response": a sender (`res.json`, `res.send`, `res.end`,
//! `res.redirect`) sends the response at the script's next pause; the code after it runs
//! after the client has its answer, within the same budget, and its errors are logged, never
//! sent. A middleware that sends stops the chain but finishes its own code. The response's
//! bytes and its log line are what they would be without the code after it.

use crate::support;

use support::upstream::Gate;
use support::TestApp;

/// An app whose routes call the gate upstream after answering.
fn app_with_gate(gate: &Gate) -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(".env", &format!("UPSTREAM={}\n", gate.url()));
    app
}

#[test]
fn the_client_has_its_answer_while_the_code_after_the_sender_still_waits() {
    let gate = Gate::start(usize::MAX);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/signup.rhai",
        r#"fn POST(req, res, env) {
    res.status(202).json(#{ queued: req.body.email });
    let answer = http::get(env.UPSTREAM + "/mail");
    log::info(`mail sent: ${answer.status}`);
}
"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.post_json("/api/signup", r#"{"email":"a@b.c"}"#);
    // The gate holds the script's call: the answer came before the script could end.
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.text(), r#"{"queued":"a@b.c"}"#);
    gate.wait_open(1);
    // The request's log line is written with the response, before the script ends.
    server.wait_for_log_line("the request's log line", |l| {
        l.contains("POST /api/signup") && l.contains("202")
    });
    assert!(!server.log_text().contains("mail sent"));
    gate.release();
    server.wait_for_log_line("the code after the response", |l| {
        l.contains("mail sent: 200")
    });
}

#[test]
fn an_error_after_the_response_is_logged_with_its_place_and_never_sent() {
    let gate = Gate::start(1);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/late.rhai",
        r#"fn GET(req, res, env) {
    res.json(#{ ok: true });
    http::get(env.UPSTREAM);
    let n = no_such_function(1);
}
"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/late");
    assert_eq!(
        (response.status, response.text()),
        (200, r#"{"ok":true}"#.into())
    );
    let line = server.wait_for_log_line("the late error", |l| {
        l.contains("no_such_function") && l.contains("late.rhai:4")
    });
    assert!(line.contains("after the response was sent"), "{line}");
    // The next request is answered as usual.
    assert_eq!(server.get("/api/late").status, 200);
}

#[test]
fn a_middleware_that_sends_stops_the_chain_and_finishes_its_own_code() {
    let gate = Gate::start(usize::MAX);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/_middleware.rhai",
        r#"fn middleware(req, res, env) {
    if req.headers["x-key"] != "k" {
        res.status(401).json(#{ error: "no key" });
        http::get(env.UPSTREAM + "/audit");
        log::info("refusal audited");
    }
}
"#,
    );
    app.write(
        "pages/api/secret.rhai",
        "fn GET() { log::info(\"route ran\"); #{ secret: 1 } }\n",
    );
    let server = app.serve("dev", &[]);
    let refused = server.get("/api/secret");
    assert_eq!(
        (refused.status, refused.text()),
        (401, r#"{"error":"no key"}"#.into())
    );
    gate.wait_open(1);
    gate.release();
    server.wait_for_log_line("the middleware's own code", |l| {
        l.contains("refusal audited")
    });
    let allowed = server.request("GET", "/api/secret", &[("x-key", "k")], b"");
    assert_eq!(allowed.status, 200);
    server.wait_for_log_line("the route", |l| l.contains("route ran"));
    // Exactly once: the refused request never reached the route.
    assert_eq!(server.log_text().matches("route ran").count(), 1);
}

#[test]
fn the_bytes_are_those_of_a_response_sent_at_the_end() {
    let gate = Gate::start(1);
    let app = app_with_gate(&gate);
    let body = r#"let items = []; for i in 0..2000 { items.push(#{ id: i, name: "item " + i }); }"#;
    app.write(
        "pages/api/early.rhai",
        &format!("fn GET(req, res, env) {{ {body} res.json(items); http::get(env.UPSTREAM); }}\n"),
    );
    app.write(
        "pages/api/end.rhai",
        &format!("fn GET(req, res) {{ {body} res.json(items); }}\n"),
    );
    let server = app.serve("dev", &[]);
    let gzip = [("accept-encoding", "gzip")];
    let early = server.request("GET", "/api/early", &gzip, b"");
    let end = server.request("GET", "/api/end", &gzip, b"");
    assert_eq!((early.status, end.status), (200, 200));
    assert_eq!(early.header("content-encoding"), Some("gzip"));
    assert_eq!(early.header("etag"), end.header("etag"));
    assert!(early.header("etag").is_some());
    assert_eq!(early.body, end.body);
    // The ETag answers 304 just the same.
    let etag = early.header("etag").unwrap().to_string();
    let again = server.request(
        "GET",
        "/api/early",
        &[("if-none-match", etag.as_str())],
        b"",
    );
    assert_eq!(again.status, 304);
}

#[test]
fn rhapi_test_request_returns_when_the_whole_run_has_ended() {
    let app = TestApp::new();
    app.write(
        "migrations/001_events.sql",
        "CREATE TABLE events (name TEXT);\n",
    );
    app.write(
        "pages/api/events.rhai",
        r#"fn POST(req, res) {
    res.status(202).json(#{ queued: true });
    sleep(30);
    db::execute("INSERT INTO events (name) VALUES (?)", [req.body.name]);
}
fn GET() { db::query("SELECT name FROM events", []) }
"#,
    );
    app.write(
        "tests/events.test.rhai",
        r#"fn test_the_work_after_the_response_is_done_when_request_returns() {
    assert_eq(request("POST", "/api/events", #{ body: #{ name: "a" } }).status, 202);
    assert_eq(request("GET", "/api/events").json, [#{ name: "a" }]);
}
"#,
    );
    let output = app.run_to_exit("test", &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        output.stdout,
        output.stderr
    );
    assert!(
        output.stdout.contains("1 passed, 0 failed"),
        "{}",
        output.stdout
    );
}

#[test]
fn shutdown_lets_the_code_after_the_response_finish() {
    let gate = Gate::start(usize::MAX);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/late.rhai",
        r#"fn POST(req, res, env) {
    res.status(202).json(#{ queued: true });
    let answer = http::get(env.UPSTREAM + "/mail");
    log::info(`mail sent: ${answer.status}`);
}
"#,
    );
    let mut server = app.serve("start", &[]);
    assert_eq!(server.post_json("/api/late", "{}").status, 202);
    gate.wait_open(1);
    server.signal("TERM");
    server.wait_for_log_line("the shutdown", |l| l.contains("SIGTERM"));
    // Held by the gate, the code after the response keeps the server up.
    assert!(!server.has_exited());
    gate.release();
    server.wait_for_log_line("the code after the response", |l| {
        l.contains("mail sent: 200")
    });
    assert!(server.wait_exit().success());
}

#[test]
fn code_after_the_response_keeps_its_place_in_max_in_flight() {
    let gate = Gate::start(usize::MAX);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/late.rhai",
        r#"fn POST(req, res, env) {
    res.status(202).json(#{ queued: true });
    http::get(env.UPSTREAM);
}
"#,
    );
    let server = app.serve("start", &["--max-in-flight", "2", "--timeout", "60s"]);
    assert_eq!(server.post_json("/api/late", "{}").status, 202);
    assert_eq!(server.post_json("/api/late", "{}").status, 202);
    gate.wait_open(2);
    // Both answered, both still running: no room for a third request.
    let refused = server.get("/api/hello");
    assert_eq!(refused.status, 503, "{}", refused.text());
    gate.release();
    server.poll_until("/api/hello", |r| r.status == 200);
}

#[test]
fn after_a_pause_the_response_is_still_sent_for_the_script() {
    let gate = Gate::start(1);
    let app = app_with_gate(&gate);
    app.write(
        "pages/api/twice.rhai",
        r#"fn GET(req, res, env) {
    res.json(#{ first: true });
    http::get(env.UPSTREAM);
    try { res.json(#{ second: true }); } catch (err) { log::info(`second send: ${err}`); }
    try { res.set_header("x-late", "1"); } catch (err) { log::info(`late header: ${err}`); }
    throw "late failure";
}
"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/twice");
    assert_eq!(
        (response.status, response.text()),
        (200, r#"{"first":true}"#.into())
    );
    assert!(response.header("x-late").is_none());
    server.wait_for_log_line("the second send refused", |l| {
        l.contains("second send") && l.contains("already sent")
    });
    server.wait_for_log_line("the late header refused", |l| {
        l.contains("late header") && l.contains("already sent")
    });
    let line = server.wait_for_log_line("the late throw", |l| l.contains("late failure"));
    assert!(line.contains("after the response was sent"), "{line}");
}
