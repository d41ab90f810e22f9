//! docs/reference.md, "Middleware": `_middleware.rhai` runs before every route of its folder
//! and below, outermost first; it may answer, hand values on in `req.locals`, and keep
//! headers for the final response.

use crate::support;

use serde_json::json;
use support::TestApp;

/// Three nested folders, each with a middleware that records its name.
fn nested() -> TestApp {
    let app = TestApp::new();
    for (folder, name) in [("", "root"), ("a/", "a"), ("a/b/", "b")] {
        app.write(
            &format!("pages/api/{folder}_middleware.rhai"),
            &format!(
                "fn middleware(req, res) {{\n    let seen = req.locals.seen ?? [];\n    seen.push(\"{name}\");\n    res.set_header(\"x-{name}\", \"1\");\n    #{{ seen: seen }}\n}}\n"
            ),
        );
    }
    app.write("pages/api/a/b/deep.rhai", "fn GET(req) { req.locals }\n");
    app.write("pages/api/a/mid.rhai", "fn GET(req) { req.locals }\n");
    app.write("pages/api/top.rhai", "fn GET(req) { req.locals }\n");
    app
}

#[test]
fn outermost_first_and_locals_merge() {
    let app = nested();
    let server = app.serve("dev", &[]);
    let deep = server.get("/api/a/b/deep");
    assert_eq!(deep.status, 200, "{}", deep.text());
    assert_eq!(deep.json(), json!({ "seen": ["root", "a", "b"] }));
    for header in ["x-root", "x-a", "x-b"] {
        assert_eq!(deep.header(header), Some("1"), "{header}");
    }
    assert_eq!(
        server.get("/api/a/mid").json(),
        json!({ "seen": ["root", "a"] })
    );
    let top = server.get("/api/top");
    assert_eq!(top.json(), json!({ "seen": ["root"] }));
    assert_eq!(top.header("x-a"), None);
    // Not for 404s.
    let missing = server.get("/api/a/nope");
    assert_eq!((missing.status, missing.header("x-root")), (404, None));
}

#[test]
fn routes_lists_the_middleware_of_each_route() {
    let app = nested();
    let routes = app.run("routes");
    assert!(routes.status.success(), "{}", routes.stderr);
    let line = |pattern: &str| {
        routes
            .stdout
            .lines()
            .find(|l| l.starts_with(pattern))
            .unwrap_or_else(|| panic!("no {pattern}: {}", routes.stdout))
            .to_string()
    };
    assert!(line("/api/a/b/deep").ends_with(
        "(middleware: pages/api/_middleware.rhai, pages/api/a/_middleware.rhai, pages/api/a/b/_middleware.rhai)"
    ));
    assert!(line("/api/top").ends_with("(middleware: pages/api/_middleware.rhai)"));
}

#[test]
fn an_early_answer_stops_the_rest() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req, res) {\n    res.set_header(\"x-outer\", \"yes\");\n    if req.query.key != \"open\" {\n        res.status(401).json(#{ error: \"sign in first\" });\n    }\n}\n",
    );
    app.write(
        "pages/api/private/_middleware.rhai",
        "fn middleware(req) {\n    if req.query.fail == \"1\" { throw #{ status: 403, error: \"no\" }; }\n    #{ inner: true }\n}\n",
    );
    app.write(
        "pages/api/private/data.rhai",
        "fn GET(req) { log::info(\"route ran\"); #{ inner: req.locals.inner } }\n",
    );
    let server = app.serve("dev", &[]);
    let refused = server.get("/api/private/data");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json(), json!({ "error": "sign in first" }));
    assert_eq!(refused.header("x-outer"), Some("yes"));
    let thrown = server.get("/api/private/data?key=open&fail=1");
    assert_eq!(
        (thrown.status, thrown.json()),
        (403, json!({ "status": 403, "error": "no" }))
    );
    assert_eq!(
        thrown.header("x-outer"),
        Some("yes"),
        "headers of the outer one are kept"
    );
    server.sync_log();
    assert!(!server.log_text().contains("route ran"));
    let open = server.get("/api/private/data?key=open");
    assert_eq!((open.status, open.json()), (200, json!({ "inner": true })));
}

#[test]
fn the_routes_own_headers_and_cookies_win() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req, res) {\n    res.set_header(\"x-who\", \"middleware\").set_header(\"x-only-mw\", \"1\");\n    res.cookie(\"a\", \"mw\").cookie(\"b\", \"mw\");\n}\n",
    );
    app.write(
        "pages/api/x.rhai",
        "fn GET(req, res) {\n    res.set_header(\"x-who\", \"route\").cookie(\"a\", \"route\").json(#{ locals: req.locals });\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/x");
    assert_eq!(
        response.json(),
        json!({ "locals": {} }),
        "locals is #{{}} when nothing was set"
    );
    assert_eq!(response.header_all("x-who"), vec!["route"]);
    assert_eq!(response.header("x-only-mw"), Some("1"));
    let mut cookies: Vec<&str> = response
        .header_all("set-cookie")
        .into_iter()
        .map(|c| c.split(';').next().unwrap())
        .collect();
    cookies.sort();
    assert_eq!(cookies, vec!["a=route", "b=mw"]);
}

#[test]
fn runs_for_automatic_answers_and_every_method() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req, res) { res.set_header(\"x-method\", req.method); }\n",
    );
    app.write("pages/api/only-get.rhai", "fn GET() { \"got\" }\n");
    let server = app.serve("dev", &[]);
    for (method, status) in [
        ("GET", 200),
        ("HEAD", 200),
        ("OPTIONS", 204),
        ("POST", 405),
        ("DELETE", 405),
    ] {
        let response = server.request(method, "/api/only-get", &[], b"");
        assert_eq!(response.status, status, "{method}");
        assert_eq!(response.header("x-method"), Some(method), "{method}");
    }
}

#[test]
fn a_throwing_middleware_shows_its_own_file_and_line_in_dev_only() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req) {\n    let x = 1;\n    x.no_such_method();\n}\n",
    );
    app.write("pages/api/x.rhai", "fn GET() { \"x\" }\n");
    let dev = app.serve("dev", &[]);
    let response = dev.get("/api/x");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert_eq!(body["file"], "pages/api/_middleware.rhai");
    assert_eq!(body["line"], 3);
    drop(dev);
    let start = app.serve("start", &[]);
    let response = start.get("/api/x");
    assert_eq!(
        (response.status, response.json()),
        (500, json!({ "error": "Internal Server Error" }))
    );
    start.wait_for_log("pages/api/_middleware.rhai:3");
}

#[test]
fn a_compile_error_in_a_middleware_and_its_fix_in_dev() {
    let app = TestApp::new();
    app.write(
        "pages/api/notes/_middleware.rhai",
        "fn middleware(req) { #{ ok: 1 } }\n",
    );
    app.write("pages/api/notes/list.rhai", "fn GET(req) { req.locals }\n");
    app.write("pages/api/free.rhai", "fn GET() { \"free\" }\n");
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/notes/list").json(), json!({ "ok": 1 }));

    app.write(
        "pages/api/notes/_middleware.rhai",
        "fn middleware(req) {\n    let = ;\n}\n",
    );
    let broken = server.poll_until("/api/notes/list", |r| r.status == 500);
    assert_eq!(broken.json()["file"], "pages/api/notes/_middleware.rhai");
    assert_eq!(broken.json()["line"], 2);
    assert_eq!(
        server.get("/api/free").text(),
        "free",
        "the rest of the app works"
    );

    app.write(
        "pages/api/notes/_middleware.rhai",
        "fn middleware(req) { #{ ok: 2 } }\n",
    );
    server.poll_until("/api/notes/list", |r| {
        r.status == 200 && r.json() == json!({ "ok": 2 })
    });
}

#[test]
fn start_keeps_the_last_good_middleware_and_refuses_a_broken_one_at_start() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware() { #{ v: 1 } }\n",
    );
    app.write("pages/api/x.rhai", "fn GET(req) { req.locals }\n");
    let server = app.serve("start", &[]);
    app.write("pages/api/_middleware.rhai", "fn middleware( {\n");
    server.wait_for_log("pages/api/_middleware.rhai");
    assert_eq!(server.get("/api/x").json(), json!({ "v": 1 }));
    drop(server);
    let refused = app.run_to_exit("start", &["--port", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        refused.stderr.contains("pages/api/_middleware.rhai"),
        "{}",
        refused.stderr
    );
    app.write("pages/api/_middleware.rhai", "fn other() {}\n");
    let check = app.run("check");
    assert!(!check.status.success());
    assert!(
        check.stderr.contains("must define fn middleware"),
        "{}",
        check.stderr
    );
}

#[test]
fn one_budget_for_middleware_and_route() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware() { let t = 0; for i in 0..1000000000 { t += 1; } }\n",
    );
    app.write("pages/api/x.rhai", "fn GET() { \"x\" }\n");
    let server = app.serve("dev", &["--timeout", "300ms"]);
    let response = server.get("/api/x");
    assert_eq!(response.status, 504);
    assert_eq!(response.json(), json!({ "error": "Script timed out" }));
}

#[test]
fn headers_set_before_a_throw_are_kept_on_its_answer() {
    let app = TestApp::new();
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req, res) {\n    res.set_header(\"x-request-id\", \"r1\");\n    if req.query.key != \"open\" {\n        res.set_header(\"www-authenticate\", \"Bearer realm=\\\"api\\\"\");\n        throw #{ status: 401, error: \"sign in first\" };\n    }\n}\n",
    );
    app.write(
        "pages/api/limited.rhai",
        "fn GET(req, res) {\n    res.set_header(\"retry-after\", \"41\").set_header(\"content-type\", \"text/html\").cookie(\"seen\", \"1\");\n    throw #{ status: 429, error: \"slow down\" };\n}\n",
    );
    let server = app.serve("start", &[]);

    let refused = server.get("/api/limited");
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.json(),
        json!({ "status": 401, "error": "sign in first" })
    );
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(refused.header("x-request-id"), Some("r1"));

    let limited = server.get("/api/limited?key=open");
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json(),
        json!({ "status": 429, "error": "slow down" })
    );
    assert_eq!(limited.header("retry-after"), Some("41"));
    assert_eq!(
        limited.header("x-request-id"),
        Some("r1"),
        "the middleware's"
    );
    assert!(
        limited
            .header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("seen=1")),
        "{:?}",
        limited.header_all("set-cookie")
    );
    // The body is the thrown map: JSON, whatever type the route had set.
    assert_eq!(
        limited.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}
