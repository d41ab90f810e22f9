//! docs/reference.md, "res": status, headers, cookies, the senders, sending twice, ETag and 304, and
//! the statuses that never carry a body.

use crate::support;

use serde_json::json;
use support::{Response, Server, TestApp};

/// An app with one route, `/api/<name>`, holding `script`, served by `rhapi dev`.
fn serve_route(name: &str, script: &str) -> (TestApp, Server) {
    let app = TestApp::new();
    app.write(&format!("pages/api/{name}.rhai"), script);
    let server = app.serve("dev", &[]);
    (app, server)
}

/// A route whose `GET` runs `body` (with `req` and `res` in scope), chosen by `?c=`.
fn serve_cases(cases: &[(&str, &str)]) -> (TestApp, Server) {
    let mut script = String::from("fn GET(req, res) {\n    switch req.query.c {\n");
    for (name, body) in cases {
        script.push_str(&format!("        \"{name}\" => {{ {body} }},\n"));
    }
    script.push_str("        _ => throw \"unknown case\"\n    }\n}\n");
    serve_route("r", &script)
}

fn case(server: &Server, name: &str) -> Response {
    server.get(&format!("/api/r?c={name}"))
}

const JSON: &str = "application/json; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

#[test]
fn status_sets_the_status_and_chains() {
    let (_app, server) = serve_cases(&[
        ("created", r#"res.status(201).json(#{ id: 1 });"#),
        ("teapot", r#"res.status(418).send("short and stout");"#),
        (
            "last_wins",
            r#"res.status(500).status(202).json(#{ ok: true });"#,
        ),
        ("high", r#"res.status(999).end();"#),
        ("low", r#"res.status(200).end();"#),
    ]);
    let response = case(&server, "created");
    assert_eq!(
        (response.status, response.json()),
        (201, json!({ "id": 1 }))
    );
    let response = case(&server, "teapot");
    assert_eq!(
        (response.status, response.text()),
        (418, "short and stout".to_string())
    );
    let response = case(&server, "last_wins");
    assert_eq!(
        (response.status, response.json()),
        (202, json!({ "ok": true }))
    );
    assert_eq!(case(&server, "high").status, 999);
    assert_eq!(case(&server, "low").status, 200);
}

#[test]
fn a_status_out_of_range_is_a_script_error() {
    let (_app, server) = serve_cases(&[
        ("199", r#"res.status(199).json(#{ sent: true });"#),
        ("100", r#"res.status(100).json(#{ sent: true });"#),
        ("1000", r#"res.status(1000).json(#{ sent: true });"#),
        ("negative", r#"res.status(-1).json(#{ sent: true });"#),
        ("in_range", r#"res.status(200).json(#{ sent: true });"#),
    ]);
    assert_eq!(case(&server, "in_range").json(), json!({ "sent": true }));
    for name in ["199", "100", "1000", "negative"] {
        let response = case(&server, name);
        assert_eq!(
            response.status,
            500,
            "res.status({name}): {}",
            response.text()
        );
        let body = response.json();
        assert_eq!(body["file"], json!("pages/api/r.rhai"), "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
}

#[test]
fn set_header_and_set_header_alias_set_headers_and_chain() {
    let (_app, server) = serve_cases(&[(
        "both",
        r#"res.set_header("x-one", "1").setHeader("X-Two", "two").set_header("cache-control", "no-store").json(#{});"#,
    )]);
    let response = case(&server, "both");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-one"), Some("1"));
    assert_eq!(response.header("x-two"), Some("two"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[test]
fn set_header_with_an_array_sets_the_header_several_times() {
    let (_app, server) = serve_cases(&[
        (
            "array",
            r#"res.set_header("x-multi", ["a", "b", "c"]).send("ok");"#,
        ),
        (
            "links",
            r#"res.setHeader("link", ["</a>; rel=next", "</b>; rel=prev"]).end();"#,
        ),
    ]);
    let response = case(&server, "array");
    assert_eq!(response.header_all("x-multi"), ["a", "b", "c"]);
    let response = case(&server, "links");
    assert_eq!(
        response.header_all("link"),
        ["</a>; rel=next", "</b>; rel=prev"]
    );
}

#[test]
fn set_header_again_replaces_the_value() {
    let (_app, server) = serve_cases(&[(
        "twice",
        r#"res.set_header("x-v", "old").set_header("x-v", "new").end();"#,
    )]);
    assert_eq!(case(&server, "twice").header_all("x-v"), ["new"]);
}

/// The attributes of a `Set-Cookie` value, lowercased, after `name=value`.
fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[test]
fn cookie_adds_a_set_cookie_header() {
    let (_app, server) = serve_cases(&[
        ("plain", r#"res.cookie("session", "abc123").json(#{});"#),
        ("two", r#"res.cookie("a", "1").cookie("b", "2").end();"#),
    ]);
    let response = case(&server, "plain");
    let cookies = response.header_all("set-cookie");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("session=abc123"), "{cookies:?}");
    let response = case(&server, "two");
    let cookies = response.header_all("set-cookie");
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("a=1")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("b=2")), "{cookies:?}");
}

#[test]
fn cookie_options_become_attributes() {
    let (_app, server) = serve_cases(&[(
        "all",
        r#"res.cookie("token", "t0k", #{ max_age: 3600, path: "/api", domain: "example.com",
                                         secure: true, http_only: true, same_site: "Strict" }).end();"#,
    )]);
    let response = case(&server, "all");
    let cookie = response.header("set-cookie").expect("set-cookie");
    assert!(cookie.starts_with("token=t0k"), "{cookie}");
    let attributes = cookie_attributes(cookie);
    for expected in [
        "max-age=3600",
        "path=/api",
        "domain=example.com",
        "secure",
        "httponly",
        "samesite=strict",
    ] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} missing from {cookie}"
        );
    }
}

#[test]
fn cookie_flags_set_to_false_are_left_out() {
    let (_app, server) = serve_cases(&[(
        "off",
        r#"res.cookie("pref", "x", #{ secure: false, http_only: false, same_site: "Lax" }).end();"#,
    )]);
    let response = case(&server, "off");
    let cookie = response.header("set-cookie").expect("set-cookie");
    let attributes = cookie_attributes(cookie);
    assert!(attributes.iter().any(|a| a == "samesite=lax"), "{cookie}");
    assert!(
        !attributes.iter().any(|a| a == "secure" || a == "httponly"),
        "{cookie}"
    );
}

#[test]
fn json_sends_json_with_charset() {
    let (_app, server) = serve_cases(&[
        (
            "map",
            r#"res.json(#{ message: "Hello from API route!", list: [1, 2.5, true, ()] });"#,
        ),
        ("unit", r#"res.json(());"#),
        ("string", r#"res.json("hi");"#),
        ("number", r#"res.json(7);"#),
    ]);
    let response = case(&server, "map");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(JSON));
    assert_eq!(
        response.json(),
        json!({ "message": "Hello from API route!", "list": [1, 2.5, true, null] })
    );
    let response = case(&server, "unit");
    assert_eq!(response.header("content-type"), Some(JSON));
    assert_eq!(response.text(), "null");
    let response = case(&server, "string");
    assert_eq!(response.header("content-type"), Some(JSON));
    assert_eq!(response.json(), json!("hi"));
    assert_eq!(case(&server, "number").json(), json!(7));
}

#[test]
fn send_picks_the_content_type_from_the_value() {
    let (_app, server) = serve_cases(&[
        ("string", r#"res.send("plain text ✓");"#),
        ("map", r#"res.send(#{ a: 1 });"#),
        ("array", r#"res.send([1, "x"]);"#),
        ("number", r#"res.send(3.5);"#),
        ("bool", r#"res.send(true);"#),
        (
            "blob",
            r#"let b = blob(); b.push(0xff); b.push(0x00); b.push(0x41); res.send(b);"#,
        ),
    ]);
    let response = case(&server, "string");
    assert_eq!(
        (response.header("content-type"), response.text()),
        (Some(TEXT), "plain text ✓".to_string())
    );
    for (name, value) in [
        ("map", json!({ "a": 1 })),
        ("array", json!([1, "x"])),
        ("number", json!(3.5)),
        ("bool", json!(true)),
    ] {
        let response = case(&server, name);
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(response.header("content-type"), Some(JSON), "{name}");
        assert_eq!(response.json(), value, "{name}");
    }
    let response = case(&server, "blob");
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body, [0xff, 0x00, 0x41]);
}

#[test]
fn a_content_type_set_by_the_script_is_kept() {
    let (_app, server) = serve_cases(&[(
        "html",
        r#"res.set_header("content-type", "text/html; charset=utf-8").send("<p>hi</p>");"#,
    )]);
    let response = case(&server, "html");
    assert_eq!(
        response.header_all("content-type"),
        ["text/html; charset=utf-8"]
    );
    assert_eq!(response.text(), "<p>hi</p>");
}

#[test]
fn redirect_defaults_to_307() {
    let (_app, server) = serve_cases(&[
        ("default", r#"res.redirect("/api/elsewhere?x=1");"#),
        (
            "permanent",
            r#"res.redirect(301, "https://example.com/new");"#,
        ),
        ("see_other", r#"res.redirect(303, "/api/done");"#),
    ]);
    let response = case(&server, "default");
    assert_eq!(response.status, 307);
    assert_eq!(response.header("location"), Some("/api/elsewhere?x=1"));
    let response = case(&server, "permanent");
    assert_eq!(response.status, 301);
    assert_eq!(response.header("location"), Some("https://example.com/new"));
    let response = case(&server, "see_other");
    assert_eq!(response.status, 303);
    assert_eq!(response.header("location"), Some("/api/done"));
}

#[test]
fn end_sends_an_empty_body() {
    let (_app, server) = serve_cases(&[
        ("plain", r#"res.end();"#),
        (
            "accepted",
            r#"res.status(202).set_header("x-job", "9").end();"#,
        ),
    ]);
    let response = case(&server, "plain");
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty(), "{:?}", response.text());
    let response = case(&server, "accepted");
    assert_eq!(response.status, 202);
    assert_eq!(response.header("x-job"), Some("9"));
    assert!(response.body.is_empty(), "{:?}", response.text());
}

#[test]
fn sending_twice_delivers_the_first_response_and_logs_the_error() {
    let (_app, server) = serve_route(
        "twice",
        r#"
fn GET(req, res) {
    res.json(#{ first: true });
    res.json(#{ second: true });
}
fn POST(req, res) {
    res.send("first");
    res.end();
}
"#,
    );
    let response = server.get("/api/twice");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({ "first": true }));
    server.wait_for_log("pages/api/twice.rhai:");

    let response = server.request("POST", "/api/twice", &[], b"");
    assert_eq!(
        (response.status, response.text()),
        (200, "first".to_string())
    );
}

#[test]
fn status_and_headers_set_after_sending_do_not_change_the_delivered_response() {
    let (_app, server) = serve_route(
        "late",
        r#"
fn GET(req, res) {
    res.status(201).json(#{ first: true });
    res.status(500).json(#{ second: true });
}
fn POST(req, res) {
    res.status(201).send("first");
    res.set_header("x-late", "1").status(500).end();
}
"#,
    );
    let response = server.get("/api/late");
    assert_eq!(
        (response.status, response.json()),
        (201, json!({ "first": true }))
    );
    let response = server.request("POST", "/api/late", &[], b"");
    assert_eq!(
        (response.status, response.text()),
        (201, "first".to_string())
    );
    assert_eq!(response.header("x-late"), None);
}

#[test]
fn json_and_send_responses_carry_an_etag() {
    let (_app, server) = serve_cases(&[
        ("json", r#"res.json(#{ a: 1 });"#),
        ("send", r#"res.send("text");"#),
        ("other", r#"res.send("other text");"#),
    ]);
    let json_tag = case(&server, "json")
        .header("etag")
        .map(str::to_string)
        .expect("etag on json");
    let send_tag = case(&server, "send")
        .header("etag")
        .map(str::to_string)
        .expect("etag on send");
    let other_tag = case(&server, "other")
        .header("etag")
        .map(str::to_string)
        .expect("etag on send");
    assert_eq!(
        case(&server, "json").header("etag"),
        Some(json_tag.as_str()),
        "same body, same tag"
    );
    assert_ne!(send_tag, other_tag, "different bodies, different tags");
    for tag in [&json_tag, &send_tag] {
        assert!(
            tag.starts_with('"') || tag.starts_with("W/\""),
            "not an entity tag: {tag}"
        );
    }
}

#[test]
fn a_matching_if_none_match_gets_304_without_a_body() {
    let (_app, server) = serve_cases(&[
        ("json", r#"res.json(#{ hello: "world" });"#),
        ("send", r#"res.send("text");"#),
    ]);
    for name in ["json", "send"] {
        let path = format!("/api/r?c={name}");
        let first = server.get(&path);
        let tag = first.header("etag").expect("etag").to_string();
        let cached = server.request("GET", &path, &[("if-none-match", &tag)], b"");
        assert_eq!(cached.status, 304, "{name}: {}", cached.text());
        assert!(cached.body.is_empty(), "{name}: {:?}", cached.text());
        assert_eq!(cached.header("etag"), Some(tag.as_str()), "{name}");

        let listed = server.request(
            "GET",
            &path,
            &[("if-none-match", &format!("\"nope\", {tag}"))],
            b"",
        );
        assert_eq!(listed.status, 304, "{name}: a tag in a list matches");

        let stale = server.request("GET", &path, &[("if-none-match", "\"stale\"")], b"");
        assert_eq!(stale.status, 200, "{name}");
        assert_eq!(stale.body, first.body, "{name}");
    }
}

#[test]
fn a_204_never_carries_a_body() {
    let (_app, server) = serve_cases(&[
        ("json", r#"res.status(204).json(#{ a: 1 });"#),
        ("send", r#"res.status(204).send("text");"#),
        ("end", r#"res.status(204).end();"#),
    ]);
    for name in ["json", "send", "end"] {
        let response = case(&server, name);
        assert_eq!(response.status, 204, "{name}");
        assert!(response.body.is_empty(), "{name}: {:?}", response.text());
        assert!(
            matches!(response.header("content-length"), None | Some("0")),
            "{name}: {:?}",
            response.headers
        );
    }
}

#[test]
fn a_304_never_carries_a_body() {
    let (_app, server) = serve_cases(&[("send", r#"res.status(304).send("text");"#)]);
    let response = case(&server, "send");
    assert_eq!(response.status, 304);
    assert!(response.body.is_empty(), "{:?}", response.text());
}
