//! docs/reference.md, "Errors and limits": script errors answer 500 (details only in `dev`) and are logged with where they
//! happened and which request hit them; `throw #{status}` picks the status; budgets and
//! size limits stop runaway scripts without hurting the server.

use crate::support;

use serde_json::json;
use support::{Server, TestApp};

/// Line 4 calls a function that does not exist; `missing_fn` starts at column 13.
const BOOM: &str = "fn GET(req, res) {\n    let a = 1;\n    let b = 2;\n    let c = missing_fn(a, b);\n    res.json(c);\n}\n";

fn boom_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write("pages/api/boom.rhai", BOOM);
    app
}

/// Waits for the log line of the script error of `method path` and returns it.
fn error_log_line(server: &Server, method: &str, path: &str, location: &str) -> String {
    let request = format!("{method} {path}");
    server.wait_for_log_line(&format!("with {request} and {location}"), |l| {
        l.contains(&request) && l.contains(location)
    })
}

#[test]
fn dev_runtime_error_shows_message_file_line_and_column() {
    let app = boom_app();
    let server = app.serve("dev", &[]);
    let response = server.get("/api/boom");
    assert_eq!(response.status, 500);
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = response.json();
    assert_eq!(body["file"], "pages/api/boom.rhai", "{body}");
    assert_eq!(body["line"], 4, "{body}");
    assert_eq!(body["column"], 13, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("missing_fn"),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");

    let line = error_log_line(&server, "GET", "/api/boom", "pages/api/boom.rhai:4:13");
    assert!(line.contains("missing_fn"), "{line}");
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn start_runtime_error_hides_details_but_logs_them() {
    let app = boom_app();
    let server = app.serve("start", &[]);
    let response = server.request("POST", "/api/boom?x=1", &[], b"");
    // POST is not defined: 405, not an error. GET is.
    assert_eq!(response.status, 405);
    let response = server.get("/api/boom?x=1");
    assert_eq!(response.status, 500);
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(response.json(), json!({ "error": "Internal Server Error" }));
    let line = error_log_line(&server, "GET", "/api/boom", "pages/api/boom.rhai:4:13");
    assert!(line.contains("missing_fn"), "{line}");
}

#[test]
fn a_thrown_string_is_a_500_at_the_throw() {
    let app = TestApp::new();
    app.write(
        "pages/api/throws.rhai",
        "fn POST(req) {\n    if true {\n        throw \"nope\";\n    }\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.request("POST", "/api/throws", &[], b"");
    assert_eq!(response.status, 500);
    assert_eq!(
        response.json(),
        json!({ "error": "nope", "file": "pages/api/throws.rhai", "line": 3, "column": 9 })
    );
    error_log_line(&server, "POST", "/api/throws", "pages/api/throws.rhai:3:9");
}

#[test]
fn errors_inside_a_module_report_the_module_file() {
    let app = TestApp::new();
    app.write(
        "pages/api/_lib/checks.rhai",
        "fn must_be_positive(n) {\n    if n <= 0 {\n        throw \"not positive: \" + n;\n    }\n    n\n}\n",
    );
    app.write(
        "pages/api/check.rhai",
        "import \"_lib/checks\" as checks;\n\nfn GET(req) {\n    checks::must_be_positive(parse_int(req.query.n))\n}\n",
    );
    for mode in ["dev", "start"] {
        let server = app.serve(mode, &[]);
        assert_eq!(server.get("/api/check?n=5").text(), "5");
        let response = server.get("/api/check?n=-1");
        assert_eq!(response.status, 500);
        if mode == "dev" {
            assert_eq!(
                response.json(),
                json!({ "error": "not positive: -1", "file": "pages/api/_lib/checks.rhai", "line": 3, "column": 9 })
            );
        }
        error_log_line(
            &server,
            "GET",
            "/api/check",
            "pages/api/_lib/checks.rhai:3:9",
        );
    }
}

#[test]
fn throw_with_a_status_answers_that_status_and_the_map() {
    let app = TestApp::new();
    app.write(
        "pages/api/validate.rhai",
        r#"
fn POST(req) {
    if req.body.name == () {
        throw #{ status: 422, error: "name is required", field: "name" };
    }
    #{ ok: true }
}
"#,
    );
    app.write(
        "pages/api/teapot.rhai",
        "fn GET() { throw #{ status: 503, error: \"down\" }; }\n",
    );
    app.write(
        "pages/api/bad_status.rhai",
        "fn GET() { throw #{ status: 200, error: \"not an error status\" }; }\n",
    );
    app.write(
        "pages/api/text_status.rhai",
        "fn GET() { throw #{ status: \"422\", error: \"not an integer\" }; }\n",
    );
    for mode in ["dev", "start"] {
        let server = app.serve(mode, &[]);
        let response = server.post_json("/api/validate", "{}");
        assert_eq!(response.status, 422, "{mode}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            response.json(),
            json!({ "status": 422, "error": "name is required", "field": "name" })
        );
        assert_eq!(
            server.post_json("/api/validate", r#"{"name":"x"}"#).json(),
            json!({ "ok": true })
        );
        let response = server.get("/api/teapot");
        assert_eq!(
            (response.status, response.json()),
            (503, json!({ "status": 503, "error": "down" }))
        );
        // Outside 400..=599, or not an integer: a plain error.
        for path in ["/api/bad_status", "/api/text_status"] {
            let response = server.get(path);
            assert_eq!(response.status, 500, "{mode} {path}");
            if mode == "start" {
                assert_eq!(response.json(), json!({ "error": "Internal Server Error" }));
            }
        }
    }
}

#[test]
fn an_endless_loop_times_out_with_504() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/spin.rhai", "fn GET() {\n    loop {}\n}\n");
    for mode in ["dev", "start"] {
        let server = app.serve(mode, &["--timeout", "500ms"]);
        let response = server.get("/api/spin");
        assert_eq!(response.status, 504, "{mode}: {}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(response.json(), json!({ "error": "Script timed out" }));
        server.wait_for_log_line("about the timeout", |l| {
            l.contains("GET /api/spin") && l.contains("pages/api/spin.rhai")
        });
        assert_eq!(server.get("/api/hello").status, 200);
        // A second timeout of the same route behaves the same.
        assert_eq!(server.get("/api/spin").status, 504);
    }
}

#[test]
fn the_operations_budget_stops_a_long_loop_with_504() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/count.rhai",
        "fn GET(req) {\n    let n = parse_int(req.query.n);\n    let total = 0;\n    for i in 0..n {\n        total += i;\n    }\n    total\n}\n",
    );
    let server = app.serve("dev", &["--max-operations", "1000"]);
    // A short loop fits in the budget...
    let small = server.get("/api/count?n=10");
    assert_eq!((small.status, small.text()), (200, "45".to_string()));
    // ...a long one does not (and would not reach the default 10 s timeout first).
    let big = server.get("/api/count?n=100000000");
    assert_eq!(big.status, 504);
    assert_eq!(big.json(), json!({ "error": "Script timed out" }));
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn the_default_operations_budget_is_ten_million() {
    let app = TestApp::new();
    app.write(
        "pages/api/count.rhai",
        "fn GET(req) {\n    let n = parse_int(req.query.n);\n    let total = 0;\n    for i in 0..n {\n        total += i;\n    }\n    total\n}\n",
    );
    let server = app.serve("start", &[]);
    // A loop of 10,000 runs in well under 10 million operations; one of a billion cannot.
    assert_eq!(server.get("/api/count?n=10000").text(), "49995000");
    let big = server.get("/api/count?n=1000000000");
    assert_eq!(big.status, 504);
    assert_eq!(big.json(), json!({ "error": "Script timed out" }));
}

/// Routes that grow a string, an array and a map past their limits, and recurse too deep.
fn size_limit_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/big_string.rhai",
        "fn GET() {\n    let s = \"x\";\n    loop {\n        s += s;\n    }\n}\n",
    );
    app.write(
        "pages/api/big_array.rhai",
        "fn GET() {\n    let a = [1];\n    loop {\n        a += a;\n    }\n}\n",
    );
    app.write(
        "pages/api/big_map.rhai",
        "fn GET() {\n    let m = #{};\n    for i in 0..2000 {\n        m[`k${i}`] = i;\n    }\n    m.len()\n}\n",
    );
    app.write(
        "pages/api/deep.rhai",
        "fn down(n) {\n    down(n + 1)\n}\n\nfn GET() {\n    down(0)\n}\n",
    );
    app
}

#[test]
fn size_limits_are_runtime_errors_and_the_server_carries_on() {
    let app = size_limit_app();
    let server = app.serve("dev", &["--max-map-size", "1000"]);
    for (path, file) in [
        ("/api/big_string", "pages/api/big_string.rhai"),
        ("/api/big_array", "pages/api/big_array.rhai"),
        ("/api/big_map", "pages/api/big_map.rhai"),
        ("/api/deep", "pages/api/deep.rhai"),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 500, "{path}: {}", response.text());
        let body = response.json();
        assert_eq!(body["file"], file, "{path}: {body}");
        assert_eq!(server.get("/api/hello").status, 200, "after {path}");
    }
}

#[test]
fn size_limit_errors_say_where_they_happened() {
    let app = size_limit_app();
    let server = app.serve("dev", &["--max-map-size", "1000"]);
    let mut unlocated = Vec::new();
    for path in [
        "/api/big_string",
        "/api/big_array",
        "/api/big_map",
        "/api/deep",
    ] {
        let body = server.get(path).json();
        if !body["line"].is_u64() || !body["column"].is_u64() {
            unlocated.push(format!("{path}: {body}"));
        }
    }
    assert!(
        unlocated.is_empty(),
        "errors without their line:column:\n{}",
        unlocated.join("\n")
    );
}

#[test]
fn size_limit_errors_in_start_are_plain_500s() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/big_string.rhai",
        "fn GET() {\n    let s = \"x\";\n    loop {\n        s += s;\n    }\n}\n",
    );
    let server = app.serve("start", &[]);
    let response = server.get("/api/big_string");
    assert_eq!(response.status, 500);
    assert_eq!(response.json(), json!({ "error": "Internal Server Error" }));
    error_log_line(
        &server,
        "GET",
        "/api/big_string",
        "pages/api/big_string.rhai:",
    );
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn sending_twice_is_logged_and_the_first_response_wins() {
    let app = TestApp::new();
    app.write(
        "pages/api/twice.rhai",
        "fn GET(req, res) {\n    res.json(#{ first: true });\n    res.json(#{ second: true });\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/twice");
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({ "first": true }));
    server.wait_for_log_line("about sending twice", |l| {
        l.contains("pages/api/twice.rhai")
    });
}

#[test]
fn the_memory_budget_stops_a_script_that_holds_too_much() {
    let app = TestApp::fixture("basic");
    // About 2 MB of strings kept alive: over a 1 MB budget, far under the default 64 MB.
    app.write(
        "pages/api/hoard.rhai",
        "fn GET() {\n    let kept = [];\n    for i in 0..2000 {\n        let s = \"\";\n        s.pad(1000, \"y\");\n        kept.push(s);\n    }\n    kept.len()\n}\n",
    );
    let small = app.serve("dev", &["--max-memory", "1mb"]);
    let response = small.get("/api/hoard");
    assert_eq!(response.status, 500, "{}", response.text());
    let body = response.json();
    assert!(
        body["error"].as_str().unwrap_or("").contains("memory"),
        "{body}"
    );
    assert_eq!(body["file"], "pages/api/hoard.rhai");
    assert_eq!(small.get("/api/hello").status, 200);

    let roomy = app.serve("dev", &[]);
    let response = roomy.get("/api/hoard");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!(2000));
}

#[test]
fn rhai_size_limits_apply_when_asked_for() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/list.rhai",
        "fn GET() {\n    let a = [];\n    for i in 0..20 {\n        a.push(i);\n    }\n    a.len()\n}\n",
    );
    let limited = app.serve("dev", &["--max-array-size", "10"]);
    let response = limited.get("/api/list");
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("array"),
        "{}",
        response.text()
    );
    let unlimited = app.serve("dev", &[]);
    assert_eq!(unlimited.get("/api/list").json(), json!(20));
}

/// A forged line: a newline, then what looks like the log line of another request.
const FORGED: &str =
    "x%0A2026-01-01T00:00:00.000000Z%20%20INFO%20GET%20/api/admin/delete-all%20200%0D%1B[31m";

#[test]
fn control_characters_from_clients_never_forge_a_log_line() {
    let app = TestApp::new();
    app.write(
        "pages/api/say.rhai",
        "fn GET(req) {\n    log::info(req.query.m);\n    log::warn(#{ m: req.query.m });\n    print(req.query.m);\n    if req.query.fail == \"1\" { throw \"bad: \" + req.query.m; }\n    \"ok\"\n}\n",
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get(&format!("/api/say?m={FORGED}")).text(), "ok");
    assert_eq!(
        server.get(&format!("/api/say?fail=1&m={FORGED}")).status,
        500
    );
    server.sync_log();
    let log = server.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01")),
        "a forged line:\n{log}"
    );
    let escaped = r"x\n2026-01-01T00:00:00.000000Z  INFO GET /api/admin/delete-all 200\r\x1b[31m";
    // log::info, print, the error line of the uncaught throw; each once per request.
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(escaped)).collect();
    assert!(lines.len() >= 5, "{lines:#?}\n{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ERROR") && l.contains("bad: x")),
        "{lines:#?}"
    );
}
