//! docs/reference.md, "Routing": how a request path finds its route file.
//!
//! The `routing` fixture holds one small script per route; each answers
//! `{"file": <its route>, "params": req.params}`, so a test can see which file answered.

use crate::support;

use serde_json::{json, Value};
use support::{Server, TestApp};

/// The `routing` fixture served by `rhapi dev`.
fn routing_app() -> (TestApp, Server) {
    let app = TestApp::fixture("routing");
    let server = app.serve("dev", &[]);
    (app, server)
}

/// GETs `path` and returns which route file answered, and its params.
fn route_of(server: &Server, path: &str) -> (String, Value) {
    let response = server.get(path);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    let body = response.json();
    let file = body["file"]
        .as_str()
        .unwrap_or_else(|| panic!("GET {path}: {body}"))
        .to_string();
    (file, body["params"].clone())
}

fn assert_not_found(server: &Server, path: &str) {
    let response = server.get(path);
    assert_eq!(response.status, 404, "GET {path}: {}", response.text());
    assert_eq!(
        response.json(),
        json!({ "error": "Not Found" }),
        "GET {path}"
    );
}

fn assert_bad_request(server: &Server, path: &str) {
    let response = server.get(path);
    assert_eq!(response.status, 400, "GET {path}: {}", response.text());
    assert_eq!(
        response.json(),
        json!({ "error": "Bad Request" }),
        "GET {path}"
    );
}

#[test]
fn static_files_and_index_files_are_routes() {
    let (_app, server) = routing_app();
    assert_eq!(route_of(&server, "/api/hello"), ("hello".into(), json!({})));
    assert_eq!(
        route_of(&server, "/api/users"),
        ("users/index".into(), json!({}))
    );
    assert_eq!(route_of(&server, "/api"), ("index".into(), json!({})));
}

#[test]
fn a_param_segment_matches_one_segment() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/users/42"),
        ("users/[id]".into(), json!({ "id": "42" }))
    );
    assert_eq!(
        route_of(&server, "/api/users/42/posts"),
        ("users/[id]/posts".into(), json!({ "id": "42" }))
    );
    assert_not_found(&server, "/api/users/42/comments");
}

#[test]
fn a_catch_all_matches_one_or_more_segments() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/files/a"),
        ("files/[...path]".into(), json!({ "path": ["a"] }))
    );
    assert_eq!(
        route_of(&server, "/api/files/a/b/c.txt"),
        (
            "files/[...path]".into(),
            json!({ "path": ["a", "b", "c.txt"] })
        )
    );
    // Zero segments is not enough for `[...path]`.
    assert_not_found(&server, "/api/files");
}

#[test]
fn an_optional_catch_all_matches_zero_or_more_segments() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/docs"),
        ("docs/[[...slug]]".into(), json!({ "slug": [] }))
    );
    assert_eq!(
        route_of(&server, "/api/docs/x"),
        ("docs/[[...slug]]".into(), json!({ "slug": ["x"] }))
    );
    assert_eq!(
        route_of(&server, "/api/docs/x/y/z"),
        (
            "docs/[[...slug]]".into(),
            json!({ "slug": ["x", "y", "z"] })
        )
    );
}

#[test]
fn a_static_segment_beats_a_param() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/users/me"),
        ("users/me".into(), json!({}))
    );
    assert_eq!(
        route_of(&server, "/api/users/mee"),
        ("users/[id]".into(), json!({ "id": "mee" }))
    );
    assert_eq!(
        route_of(&server, "/api/mix/static"),
        ("mix/static".into(), json!({}))
    );
}

#[test]
fn a_param_beats_a_catch_all() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/mix/1"),
        ("mix/[id]".into(), json!({ "id": "1" }))
    );
    assert_eq!(
        route_of(&server, "/api/mix/1/2"),
        ("mix/[...rest]".into(), json!({ "rest": ["1", "2"] }))
    );
    assert_eq!(
        route_of(&server, "/api/mix/static/2"),
        ("mix/[...rest]".into(), json!({ "rest": ["static", "2"] }))
    );
}

#[test]
fn a_param_beats_an_optional_catch_all() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/opt"),
        ("opt/[[...o]]".into(), json!({ "o": [] }))
    );
    assert_eq!(
        route_of(&server, "/api/opt/1"),
        ("opt/[id]".into(), json!({ "id": "1" }))
    );
    assert_eq!(
        route_of(&server, "/api/opt/1/2"),
        ("opt/[[...o]]".into(), json!({ "o": ["1", "2"] }))
    );
}

#[test]
fn precedence_is_decided_segment_by_segment_from_the_left() {
    let (_app, server) = routing_app();
    // `p/s/[b]` has a static second segment, `p/[a]/x` a static third: the left one wins.
    assert_eq!(
        route_of(&server, "/api/p/s/x"),
        ("p/s/[b]".into(), json!({ "b": "x" }))
    );
    assert_eq!(
        route_of(&server, "/api/p/t/x"),
        ("p/[a]/x".into(), json!({ "a": "t" }))
    );
}

#[test]
fn a_more_specific_file_that_does_not_match_the_whole_path_falls_back_to_a_catch_all() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/c/1/deep"),
        ("c/[id]/deep".into(), json!({ "id": "1" }))
    );
    assert_eq!(
        route_of(&server, "/api/c/1/x"),
        ("c/[...all]".into(), json!({ "all": ["1", "x"] }))
    );
    assert_eq!(
        route_of(&server, "/api/c/1"),
        ("c/[...all]".into(), json!({ "all": ["1"] }))
    );
}

#[test]
fn names_starting_with_underscore_or_dot_are_never_routes() {
    let (_app, server) = routing_app();
    for path in [
        "/api/_private",
        "/api/.hidden",
        "/api/_lib/util",
        "/api/_dir/y",
        "/api/.cache/x",
    ] {
        assert_not_found(&server, path);
    }
    // `users/_draft.rhai` is not a route, so the path falls to `users/[id]`.
    assert_eq!(
        route_of(&server, "/api/users/_draft"),
        ("users/[id]".into(), json!({ "id": "_draft" }))
    );
}

#[test]
fn private_files_are_not_listed_as_routes() {
    let app = TestApp::fixture("routing");
    let output = app.run("routes");
    assert!(
        output.status.success(),
        "{}{}",
        output.stdout,
        output.stderr
    );
    assert!(
        output.stdout.contains("pages/api/hello.rhai"),
        "{}",
        output.stdout
    );
    for private in ["_private", ".hidden", "_lib", "_dir", ".cache", "_draft"] {
        assert!(
            !output.stdout.contains(private),
            "{private} listed:\n{}",
            output.stdout
        );
    }
}

#[test]
fn the_file_system_is_never_read_by_request_path() {
    let (_app, server) = routing_app();
    for path in [
        "/api/hello.rhai",
        "/api/Mixed.rhai",
        "/pages/api/hello.rhai",
        "/api/_lib/util.rhai",
    ] {
        assert_not_found(&server, path);
    }
}

#[test]
fn unknown_paths_under_api_are_404_json() {
    let (_app, server) = routing_app();
    for path in [
        "/api/nope",
        "/api/hello/world",
        "/api/users/1/posts/2",
        "/api/p/t/y",
    ] {
        assert_not_found(&server, path);
    }
    let response = server.request(
        "POST",
        "/api/nope",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(response.status, 404);
    assert_eq!(response.json(), json!({ "error": "Not Found" }));
}

#[test]
fn paths_outside_api_are_404_json() {
    let (_app, server) = routing_app();
    for path in [
        "/",
        "/hello",
        "/index.html",
        "/apix",
        "/apihello",
        "/public/x.txt",
        "/API/hello",
    ] {
        assert_not_found(&server, path);
    }
}

#[test]
fn a_trailing_slash_redirects_permanently_for_every_method() {
    let (_app, server) = routing_app();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        let response = server.request(method, "/api/hello/", &[], b"");
        assert_eq!(
            response.status,
            308,
            "{method} /api/hello/: {}",
            response.text()
        );
        assert_eq!(response.header("location"), Some("/api/hello"), "{method}");
    }
    let response = server.get("/api/users/42/");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("/api/users/42"));
}

#[test]
fn a_trailing_slash_redirect_keeps_the_query() {
    let (_app, server) = routing_app();
    let response = server.get("/api/hello/?a=1&b=x%20y");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("/api/hello?a=1&b=x%20y"));
    let response = server.request("POST", "/api/docs/x/?q=", &[], b"");
    assert_eq!(response.status, 308);
    assert_eq!(response.header("location"), Some("/api/docs/x?q="));
}

#[test]
fn segments_are_percent_decoded_before_matching() {
    let (_app, server) = routing_app();
    assert_eq!(
        route_of(&server, "/api/h%65llo"),
        ("hello".into(), json!({}))
    );
    assert_eq!(
        route_of(&server, "/api/users/m%65"),
        ("users/me".into(), json!({}))
    );
    assert_eq!(
        route_of(&server, "/api/users/a%20b"),
        ("users/[id]".into(), json!({ "id": "a b" }))
    );
    assert_eq!(
        route_of(&server, "/api/users/%E2%9C%93"),
        ("users/[id]".into(), json!({ "id": "✓" }))
    );
    // An encoded slash stays inside its segment.
    assert_eq!(
        route_of(&server, "/api/users/a%2Fb"),
        ("users/[id]".into(), json!({ "id": "a/b" }))
    );
    assert_eq!(
        route_of(&server, "/api/files/a%2Fb/c"),
        ("files/[...path]".into(), json!({ "path": ["a/b", "c"] }))
    );
}

#[test]
fn matching_is_case_sensitive() {
    let (_app, server) = routing_app();
    assert_eq!(route_of(&server, "/api/Mixed"), ("Mixed".into(), json!({})));
    for path in [
        "/api/mixed",
        "/api/MIXED",
        "/api/Hello",
        "/api/HELLO",
        "/Api/hello",
    ] {
        assert_not_found(&server, path);
    }
    assert_eq!(
        route_of(&server, "/api/users/ME"),
        ("users/[id]".into(), json!({ "id": "ME" }))
    );
}

#[test]
fn dot_segments_are_bad_requests() {
    let (_app, server) = routing_app();
    for path in [
        "/api/./hello",
        "/api/users/..",
        "/api/../api/hello",
        "/api/files/a/../b",
        "/api/files/./a",
        "/api/%2e%2e/hello",
        "/api/files/%2E",
        "/api/files/.%2e",
    ] {
        assert_bad_request(&server, path);
    }
}

#[test]
fn a_nul_in_the_path_is_a_bad_request() {
    let (_app, server) = routing_app();
    assert_bad_request(&server, "/api/users/a%00b");
    assert_bad_request(&server, "/api/hello%00");
}

#[test]
fn malformed_percent_encoding_is_a_bad_request() {
    let (_app, server) = routing_app();
    for path in [
        "/api/users/%zz",
        "/api/users/%4",
        "/api/users/%",
        "/api/files/a/%g1/b",
        "/api/hello%",
    ] {
        assert_bad_request(&server, path);
    }
}

#[test]
fn an_empty_segment_matches_no_route() {
    let (_app, server) = routing_app();
    for path in [
        "/api//hello",
        "/api/users//posts",
        "/api/files/a//b",
        "/api/docs//x",
        "/api/c//deep",
    ] {
        assert_not_found(&server, path);
    }
}

/// Writes `a` and `b` (both claiming one route) next to a good `ok.rhai`.
fn conflicting_app(a: &str, b: &str) -> TestApp {
    let app = TestApp::new();
    app.write("pages/api/ok.rhai", "fn GET() { \"ok\" }\n");
    app.write(a, "fn GET() { \"a\" }\n");
    app.write(b, "fn GET() { \"b\" }\n");
    app
}

const CONFLICTS: [(&str, &str, &str); 3] = [
    ("pages/api/a.rhai", "pages/api/a/index.rhai", "/api/a"),
    (
        "pages/api/x/[id].rhai",
        "pages/api/x/[slug].rhai",
        "/api/x/1",
    ),
    (
        "pages/api/d/index.rhai",
        "pages/api/d/[[...slug]].rhai",
        "/api/d",
    ),
];

#[test]
fn conflicting_files_fail_check_naming_both() {
    for (a, b, _) in CONFLICTS {
        let app = conflicting_app(a, b);
        let output = app.run("check");
        let printed = format!("{}{}", output.stdout, output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "check with {a} and {b}:\n{printed}"
        );
        assert!(
            printed.contains(a) && printed.contains(b),
            "check should name {a} and {b}:\n{printed}"
        );
    }
}

#[test]
fn conflicting_files_stop_start() {
    for (a, b, _) in CONFLICTS {
        let app = conflicting_app(a, b);
        let output = app.run_to_exit("start", &["--port", &support::free_port().to_string()]);
        let printed = format!("{}{}", output.stdout, output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "start with {a} and {b}:\n{printed}"
        );
        assert!(
            printed.contains(a) && printed.contains(b),
            "start should name {a} and {b}:\n{printed}"
        );
    }
}

#[test]
fn conflicting_files_make_dev_answer_500_naming_both() {
    for (a, b, path) in CONFLICTS {
        let app = conflicting_app(a, b);
        let server = app.serve("dev", &[]);
        let response = server.get(path);
        assert_eq!(
            response.status,
            500,
            "GET {path} with {a} and {b}: {}",
            response.text()
        );
        let error = response.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains(a) && error.contains(b),
            "the error should name {a} and {b}: {}",
            response.text()
        );
        // The rest of the app keeps working.
        let ok = server.get("/api/ok");
        assert_eq!((ok.status, ok.text()), (200, "ok".to_string()));
    }
}
