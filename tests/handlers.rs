//! docs/reference.md, "Handlers": which function answers a request, and how its return value becomes the response.

use crate::support;

use serde_json::json;
use support::{allow_set, Server, TestApp};

/// An app with one route, `/api/t`, holding `script`, served by `rhapi <command>`.
fn serve_route(command: &str, script: &str) -> (TestApp, Server) {
    let app = TestApp::new();
    app.write("pages/api/t.rhai", script);
    let server = app.serve(command, &[]);
    (app, server)
}

fn call(server: &Server, method: &str) -> support::Response {
    server.request(method, "/api/t", &[], b"")
}

fn assert_method_not_allowed(response: &support::Response) {
    assert_eq!(response.status, 405, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": "Method Not Allowed" }));
}

#[test]
fn method_functions_take_zero_to_three_parameters() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET() { "no parameters" }
fn POST(req) { "req: " + req.method }
fn PUT(req, res) { res.send("req, res: " + req.method); }
fn PATCH(req, res, env) { res.send("req, res, env: " + req.method + " " + type_of(env.NO_SUCH_KEY_IN_ENV)); }
"#,
    );
    let expected = [
        ("GET", "no parameters"),
        ("POST", "req: POST"),
        ("PUT", "req, res: PUT"),
        ("PATCH", "req, res, env: PATCH ()"),
    ];
    for (method, body) in expected {
        let response = call(&server, method);
        assert_eq!(response.status, 200, "{method}: {}", response.text());
        assert_eq!(response.text(), body, "{method}");
    }
}

#[test]
fn every_method_name_can_have_its_own_function() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET(req, res) { res.set_header("x-fn", "GET").end(); }
fn POST(req, res) { res.set_header("x-fn", "POST").end(); }
fn PUT(req, res) { res.set_header("x-fn", "PUT").end(); }
fn PATCH(req, res) { res.set_header("x-fn", "PATCH").end(); }
fn DELETE(req, res) { res.set_header("x-fn", "DELETE").end(); }
fn HEAD(req, res) { res.set_header("x-fn", "HEAD").end(); }
fn OPTIONS(req, res) { res.set_header("x-fn", "OPTIONS").end(); }
"#,
    );
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        let response = call(&server, method);
        assert_eq!(response.status, 200, "{method}: {}", response.text());
        assert_eq!(response.header("x-fn"), Some(method));
    }
}

#[test]
fn a_method_function_wins_over_handler_and_handler_takes_the_rest() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET(req) { #{ by: "GET", method: req.method } }
fn handler(req) { #{ by: "handler", method: req.method } }
"#,
    );
    assert_eq!(
        call(&server, "GET").json(),
        json!({ "by": "GET", "method": "GET" })
    );
    for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let response = call(&server, method);
        assert_eq!(response.status, 200, "{method}");
        assert_eq!(
            response.json(),
            json!({ "by": "handler", "method": method })
        );
    }
}

#[test]
fn a_handler_only_route_gets_every_method_including_head_and_options() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn handler(req, res) {
    res.set_header("x-method", req.method).json(#{ method: req.method });
}
"#,
    );
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let response = call(&server, method);
        assert_eq!(response.status, 200, "{method}");
        assert_eq!(response.json(), json!({ "method": method }));
    }
    let head = call(&server, "HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-method"), Some("HEAD"));
    assert!(
        head.body.is_empty(),
        "a HEAD response never carries a body: {:?}",
        head.text()
    );
}

#[test]
fn a_handler_like_the_next_js_legacy_example_answers_405_for_missing_branches() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn handler(req, res) {
    if req.method == "GET" {
        res.status(200).json(#{ greeting: "Hello from backend!" });
    }
}
"#,
    );
    let response = call(&server, "GET");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({ "greeting": "Hello from backend!" })
    );
    for method in ["POST", "PUT", "DELETE"] {
        let response = call(&server, method);
        assert_method_not_allowed(&response);
        assert_eq!(
            response.header("allow"),
            None,
            "a handler-only route's 405 has no Allow"
        );
    }
}

#[test]
fn a_route_without_the_method_or_handler_answers_405_with_allow() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET() { "get" }
fn POST() { "post" }
"#,
    );
    for method in ["PUT", "PATCH", "DELETE"] {
        let response = call(&server, method);
        assert_method_not_allowed(&response);
        assert_eq!(
            allow_set(response.header("allow")),
            ["GET", "HEAD", "OPTIONS", "POST"],
            "{method}: Allow was {:?}",
            response.header("allow")
        );
    }
}

#[test]
fn allow_lists_head_only_when_get_exists() {
    let (_app, server) = serve_route(
        "dev",
        "fn POST() { \"post\" }\nfn DELETE() { \"deleted\" }\n",
    );
    let response = call(&server, "GET");
    assert_method_not_allowed(&response);
    assert_eq!(
        allow_set(response.header("allow")),
        ["DELETE", "OPTIONS", "POST"]
    );
    let response = call(&server, "HEAD");
    assert_eq!(response.status, 405);
    assert_eq!(
        allow_set(response.header("allow")),
        ["DELETE", "OPTIONS", "POST"]
    );
}

#[test]
fn a_405_from_the_handler_of_a_route_with_method_functions_carries_allow() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET() { "get" }
fn handler(req) { if req.method == "PUT" { return "put"; } }
"#,
    );
    assert_eq!(call(&server, "PUT").text(), "put");
    let response = call(&server, "DELETE");
    assert_method_not_allowed(&response);
    assert_eq!(
        allow_set(response.header("allow")),
        ["GET", "HEAD", "OPTIONS"]
    );
}

#[test]
fn head_runs_get_and_drops_the_body_but_keeps_the_headers() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET(req, res) {
    res.set_header("x-seen-method", req.method).json(#{ message: "Hello from API route!", n: 12345 });
}
"#,
    );
    let get = call(&server, "GET");
    assert_eq!(get.status, 200);
    assert_eq!(get.header("x-seen-method"), Some("GET"));
    let get_length = get.body.len().to_string();
    assert_eq!(get.header("content-length"), Some(get_length.as_str()));

    let head = call(&server, "HEAD");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD body: {:?}", head.text());
    assert_eq!(
        head.header("x-seen-method"),
        Some("HEAD"),
        "GET sees req.method == \"HEAD\""
    );
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert_eq!(head.header("content-length"), Some(get_length.as_str()));
    assert_eq!(head.header("etag"), get.header("etag"));
}

#[test]
fn head_of_a_get_returning_a_value_keeps_its_content_length() {
    let (_app, server) = serve_route("dev", "fn GET() { \"twelve chars\" }\n");
    let head = call(&server, "HEAD");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("12"));
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn options_without_its_own_function_answers_204_with_allow() {
    let (_app, server) = serve_route("dev", "fn GET() { \"get\" }\nfn PATCH() { \"patch\" }\n");
    let response = call(&server, "OPTIONS");
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty(), "{:?}", response.text());
    assert_eq!(
        allow_set(response.header("allow")),
        ["GET", "HEAD", "OPTIONS", "PATCH"]
    );
}

#[test]
fn options_goes_to_its_own_function_or_to_handler_when_defined() {
    let (_app, server) = serve_route(
        "dev",
        "fn GET() { \"get\" }\nfn OPTIONS() { \"own options\" }\n",
    );
    let response = call(&server, "OPTIONS");
    assert_eq!(
        (response.status, response.text()),
        (200, "own options".to_string())
    );

    let (_app, server) = serve_route(
        "dev",
        "fn GET() { \"get\" }\nfn handler(req) { \"handler: \" + req.method }\n",
    );
    let response = call(&server, "OPTIONS");
    assert_eq!(
        (response.status, response.text()),
        (200, "handler: OPTIONS".to_string())
    );
}

#[test]
fn a_handler_returning_unit_is_405() {
    let (_app, server) = serve_route("dev", "fn handler(req) { let x = 1; }\n");
    for method in ["GET", "POST"] {
        let response = call(&server, method);
        assert_method_not_allowed(&response);
        assert_eq!(response.header("allow"), None);
    }
}

#[test]
fn a_method_function_returning_unit_is_204() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn DELETE(req) { let x = 1; }
fn POST(req) {
    let total = 0;
    total += 1;
}
fn PUT() { }
"#,
    );
    for method in ["DELETE", "POST", "PUT"] {
        let response = call(&server, method);
        assert_eq!(response.status, 204, "{method}: {}", response.text());
        assert!(response.body.is_empty(), "{method}: {:?}", response.text());
    }
}

/// A template string with `${...}` before the end used to hide the trailing `;`: the
/// function answered 200 with the value of its last statement.
#[test]
fn a_trailing_semicolon_after_a_template_string_still_returns_nothing() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn DELETE(req) { let s = `a ${1}`; parse_int("8"); }
fn PUT(req) { let s = `a ${ `b ${ "}" }` }`; parse_int("8") }
"#,
    );
    let response = call(&server, "DELETE");
    assert_eq!(response.status, 204, "{}", response.text());
    assert!(response.body.is_empty(), "{:?}", response.text());
    // Without the `;`, the last value is the answer.
    let response = call(&server, "PUT");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!(8));
}

#[test]
fn returning_a_map_or_an_array_answers_200_json() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET() { #{ name: "Ada", tags: ["x", "y"], nested: #{ ok: true } } }
fn POST() { [1, "two", 3.5, ()] }
"#,
    );
    let response = call(&server, "GET");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        response.json(),
        json!({ "name": "Ada", "tags": ["x", "y"], "nested": { "ok": true } })
    );
    let response = call(&server, "POST");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(response.json(), json!([1, "two", 3.5, null]));
}

#[test]
fn returning_a_string_answers_200_text() {
    let (_app, server) = serve_route("dev", "fn GET() { \"héllo\" }\n");
    let response = call(&server, "GET");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), "héllo");
}

#[test]
fn returning_a_number_or_bool_answers_200_json() {
    let (_app, server) = serve_route(
        "dev",
        "fn GET() { 42 }\nfn POST() { 2.5 }\nfn PUT() { true }\nfn PATCH() { false }\n",
    );
    for (method, expected) in [
        ("GET", json!(42)),
        ("POST", json!(2.5)),
        ("PUT", json!(true)),
        ("PATCH", json!(false)),
    ] {
        let response = call(&server, method);
        assert_eq!(response.status, 200, "{method}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{method}"
        );
        assert_eq!(response.json(), expected, "{method}");
    }
}

#[test]
fn the_handler_fallback_follows_the_same_return_rules() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn handler(req) {
    switch req.method {
        "GET" => #{ kind: "map" },
        "POST" => "text",
        "PUT" => 7,
        _ => ()
    }
}
"#,
    );
    let response = call(&server, "GET");
    assert_eq!(
        (response.status, response.json()),
        (200, json!({ "kind": "map" }))
    );
    let response = call(&server, "POST");
    assert_eq!(
        (response.status, response.text()),
        (200, "text".to_string())
    );
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let response = call(&server, "PUT");
    assert_eq!((response.status, response.json()), (200, json!(7)));
    assert_method_not_allowed(&call(&server, "DELETE"));
}

#[test]
fn a_handler_that_used_res_has_its_return_value_ignored() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET(req, res) {
    res.status(201).json(#{ sent: true });
    #{ returned: true }
}
fn handler(req, res) {
    res.send("sent");
    "returned"
}
"#,
    );
    let response = call(&server, "GET");
    assert_eq!(
        (response.status, response.json()),
        (201, json!({ "sent": true }))
    );
    let response = call(&server, "POST");
    assert_eq!(
        (response.status, response.text()),
        (200, "sent".to_string())
    );
}

#[test]
fn a_status_set_without_a_body_answers_that_status_with_an_empty_body() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn GET(req, res) { res.status(201); }
fn POST(req, res) { res.status(202).set_header("x-job", "7"); }
fn DELETE(req, res) { res.status(404); }
fn handler(req, res) { res.status(418); }
"#,
    );
    for (method, status) in [("GET", 201), ("POST", 202), ("DELETE", 404), ("PUT", 418)] {
        let response = call(&server, method);
        assert_eq!(response.status, status, "{method}: {}", response.text());
        assert!(response.body.is_empty(), "{method}: {:?}", response.text());
    }
    assert_eq!(call(&server, "POST").header("x-job"), Some("7"));
}

#[test]
fn throwing_a_map_with_a_status_answers_that_status_and_the_whole_map() {
    let (_app, server) = serve_route(
        "dev",
        r#"
fn POST(req) {
    if req.body.name == () {
        throw #{ status: 400, error: "name is required" };
    }
    #{ hello: req.body.name }
}
fn PUT(req) { throw #{ status: 422, error: "invalid", fields: ["email"] }; }
fn DELETE(req) { throw #{ status: 599, error: "edge" }; }
"#,
    );
    let response = server.post_json("/api/t", "{}");
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({ "status": 400, "error": "name is required" })
    );
    let response = server.post_json("/api/t", r#"{"name":"Ada"}"#);
    assert_eq!(
        (response.status, response.json()),
        (200, json!({ "hello": "Ada" }))
    );
    let response = call(&server, "PUT");
    assert_eq!(response.status, 422);
    assert_eq!(
        response.json(),
        json!({ "status": 422, "error": "invalid", "fields": ["email"] })
    );
    let response = call(&server, "DELETE");
    assert_eq!(response.status, 599);
    assert_eq!(response.json(), json!({ "status": 599, "error": "edge" }));
}

#[test]
fn throwing_a_map_with_a_status_works_in_start_too() {
    let (_app, server) = serve_route(
        "start",
        "fn GET() { throw #{ status: 403, error: \"forbidden\" }; }\n",
    );
    let response = call(&server, "GET");
    assert_eq!(response.status, 403);
    assert_eq!(
        response.json(),
        json!({ "status": 403, "error": "forbidden" })
    );
}

#[test]
fn other_thrown_values_are_500() {
    let script = r#"
fn handler(req) {
    switch req.query.kind {
        "string" => throw "boom",
        "low" => throw #{ status: 200, error: "not an error status" },
        "redirect" => throw #{ status: 302, error: "not an error status" },
        "high" => throw #{ status: 600, error: "too high" },
        "text" => throw #{ status: "400", error: "not an integer" },
        "none" => throw #{ error: "no status" },
        _ => throw 42
    }
}
"#;
    let (_app, server) = serve_route("start", script);
    for kind in [
        "string", "low", "redirect", "high", "text", "none", "number",
    ] {
        let response = server.get(&format!("/api/t?kind={kind}"));
        assert_eq!(response.status, 500, "{kind}: {}", response.text());
        assert_eq!(
            response.json(),
            json!({ "error": "Internal Server Error" }),
            "{kind}"
        );
    }
}

#[test]
fn a_runtime_error_in_dev_answers_500_with_message_file_line_and_column() {
    let (_app, server) = serve_route(
        "dev",
        "fn GET(req) {\n    let list = [1, 2];\n    let x = no_such_function(list);\n    x\n}\n",
    );
    let response = call(&server, "GET");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no_such_function")),
        "{body}"
    );
    assert_eq!(body["file"], json!("pages/api/t.rhai"), "{body}");
    assert_eq!(body["line"], json!(3), "{body}");
    assert!(body["column"].as_u64().is_some_and(|c| c > 0), "{body}");
}

#[test]
fn a_thrown_string_in_dev_answers_500_with_the_message() {
    let (_app, server) = serve_route("dev", "fn GET() {\n    throw \"the sky fell\";\n}\n");
    let response = call(&server, "GET");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("the sky fell")),
        "{body}"
    );
    assert_eq!(body["file"], json!("pages/api/t.rhai"));
    assert_eq!(body["line"], json!(2), "{body}");
    assert!(body["column"].is_u64(), "{body}");
}

#[test]
fn a_runtime_error_in_start_answers_a_generic_500() {
    let (_app, server) = serve_route("start", "fn GET() {\n    let x = 1 / 0;\n    x\n}\n");
    let response = call(&server, "GET");
    assert_eq!(response.status, 500);
    assert_eq!(response.json(), json!({ "error": "Internal Server Error" }));
}

#[test]
fn top_level_constants_are_visible_as_global() {
    let (_app, server) = serve_route(
        "dev",
        r#"
const GREETING = "Hello";
const LIMITS = #{ max: 3 };

fn GET(req) { #{ greeting: global::GREETING, max: global::LIMITS.max } }
"#,
    );
    let response = call(&server, "GET");
    assert_eq!(
        (response.status, response.json()),
        (200, json!({ "greeting": "Hello", "max": 3 }))
    );
}

#[test]
fn no_state_survives_between_requests() {
    let (_app, server) = serve_route(
        "dev",
        r#"
const SEEN = [];

fn GET(req, res) {
    let seen = global::SEEN;
    seen.push(req.query.n);
    if req.query.n == "1" {
        res.set_header("x-first", "yes").cookie("first", "yes");
    }
    res.json(#{ seen: seen });
}
"#,
    );
    let first = server.get("/api/t?n=1");
    assert_eq!(first.json(), json!({ "seen": ["1"] }));
    assert_eq!(first.header("x-first"), Some("yes"));
    for n in ["2", "3", "4"] {
        let response = server.get(&format!("/api/t?n={n}"));
        assert_eq!(response.status, 200);
        assert_eq!(response.json(), json!({ "seen": [n] }));
        assert_eq!(
            response.header("x-first"),
            None,
            "a header of an earlier request leaked"
        );
        assert_eq!(
            response.header("set-cookie"),
            None,
            "a cookie of an earlier request leaked"
        );
    }
}
