//! docs/reference.md, "CORS": `[cors]` of `rhapi.toml` gives allowed origins their
//! `Access-Control-Allow-*` headers, on every response, and answers preflights before any
//! script runs.

use crate::support;

use support::{Response, Server, TestApp};

fn app(cors: &str) -> TestApp {
    let app = TestApp::new();
    app.write("rhapi.toml", &format!("[cors]\n{cors}"));
    app.write(
        "pages/api/_middleware.rhai",
        "fn middleware(req) { log::info(`middleware ran for ${req.method}`); }\n",
    );
    app.write(
        "pages/api/items.rhai",
        "fn GET() { [1, 2] }\nfn POST() { \"made\" }\n",
    );
    app.write("pages/api/broken.rhai", "fn GET() { throw \"boom\"; }\n");
    app
}

fn preflight(server: &Server, origin: &str, method: &str) -> Response {
    server.request(
        "OPTIONS",
        "/api/items",
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", "content-type"),
        ],
        b"",
    )
}

const APP: &str = "http://app.example:8080";

#[test]
fn allowed_origins_get_their_headers_on_every_response() {
    let app = app(&format!("origins = [\"{APP}\"]\n"));
    app.write("public/file.txt", "file");
    let server = app.serve("start", &[]);
    let ok = server.request("GET", "/api/items", &[("origin", APP)], b"");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(APP));
    assert!(ok.header_all("vary").iter().any(|v| v.contains("Origin")));
    assert_eq!(ok.header("access-control-allow-credentials"), None);
    for path in ["/api/nope", "/api/broken", "/file.txt", "/nope.txt"] {
        let response = server.request("GET", path, &[("origin", APP)], b"");
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some(APP),
            "{path} {}",
            response.status
        );
    }
    let other = server.request(
        "GET",
        "/api/items",
        &[("origin", "http://evil.example")],
        b"",
    );
    assert_eq!(
        other.status, 200,
        "the server answers; the browser withholds it"
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    let none = server.get("/api/items");
    assert_eq!(none.header("access-control-allow-origin"), None);
}

#[test]
fn preflight_is_answered_before_any_script() {
    let app = app(&format!(
        "origins = [\"{APP}\"]\nheaders = [\"content-type\", \"x-key\"]\nmax_age = 120\n"
    ));
    let server = app.serve("start", &[]);
    let response = preflight(&server, APP, "POST");
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, OPTIONS"),
        "the route's own methods"
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("content-type, x-key")
    );
    assert_eq!(response.header("access-control-max-age"), Some("120"));
    assert_eq!(response.header("access-control-allow-credentials"), None);
    server.sync_log();
    assert!(!server.log_text().contains("middleware ran for OPTIONS"));

    for (origin, method) in [("http://evil.example", "POST"), (APP, "DELETE")] {
        let refused = preflight(&server, origin, method);
        assert_eq!(refused.status, 204, "{origin} {method}");
        assert_eq!(refused.header("access-control-allow-origin"), None);
        assert_eq!(refused.header("access-control-allow-methods"), None);
    }
    // A preflight to a missing route is a 404; plain OPTIONS still reaches the route.
    let missing = server.request(
        "OPTIONS",
        "/api/nope",
        &[("origin", APP), ("access-control-request-method", "GET")],
        b"",
    );
    assert_eq!(missing.status, 404);
    let plain = server.request("OPTIONS", "/api/items", &[("origin", APP)], b"");
    assert_eq!(plain.status, 204);
    assert!(plain.header("allow").is_some());
    server.wait_for_log("middleware ran for OPTIONS");
}

#[test]
fn configured_methods_replace_the_routes() {
    let app = app(&format!(
        "origins = [\"{APP}\"]\nmethods = [\"GET\", \"DELETE\"]\n"
    ));
    let server = app.serve("start", &[]);
    let delete = preflight(&server, APP, "DELETE");
    assert_eq!(
        delete.header("access-control-allow-methods"),
        Some("GET, DELETE")
    );
    assert_eq!(
        preflight(&server, APP, "POST").header("access-control-allow-origin"),
        None
    );
}

#[test]
fn credentials_never_with_a_star() {
    let app = app(&format!("origins = [\"{APP}\"]\ncredentials = true\n"));
    let server = app.serve("start", &[]);
    let response = preflight(&server, APP, "GET");
    assert_eq!(response.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    let get = server.request("GET", "/api/items", &[("origin", APP)], b"");
    assert_eq!(get.header("access-control-allow-credentials"), Some("true"));

    // Any origin with cookies would let every site make signed-in requests: refused at load
    // (tests/config.rs has the error itself).
    let any = app_with_star(true);
    let start = any.run_to_exit("start", &["--port", "0"]);
    assert_eq!(start.status.code(), Some(1), "{}", start.stderr);
    assert!(
        start.stderr.contains("cors.credentials"),
        "{}",
        start.stderr
    );
}

fn app_with_star(credentials: bool) -> TestApp {
    app(&format!("origins = [\"*\"]\ncredentials = {credentials}\n"))
}

#[test]
fn star_allows_any_origin() {
    let app = app_with_star(false);
    let server = app.serve("start", &[]);
    let response = server.request("GET", "/api/items", &[("origin", "http://x.example")], b"");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let pre = preflight(&server, "http://y.example", "GET");
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert_eq!(pre.header("access-control-allow-credentials"), None);
}

#[test]
fn without_cors_no_headers() {
    let app = TestApp::new();
    app.write("pages/api/items.rhai", "fn GET() { [1] }\n");
    let server = app.serve("start", &[]);
    let response = server.request("GET", "/api/items", &[("origin", APP)], b"");
    assert_eq!(response.header("access-control-allow-origin"), None);
    let pre = preflight(&server, APP, "GET");
    assert_eq!(pre.status, 204, "the route's automatic OPTIONS");
    assert_eq!(pre.header("access-control-allow-origin"), None);
}
