//! docs/reference.md, "req": every field a script sees, and the body parsed by its content type and
//! held to the body limit.
//!
//! The `request` fixture's `echo.rhai` (also at `items/[id]` and `files/[...path]`) answers
//! with the whole `req`; `types.rhai` with the Rhai type of each field of a JSON body;
//! `size.rhai` and `json.rhai` log a line when they run, to prove when they did not.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Response, Server, TestApp};

fn request_app(args: &[&str]) -> (TestApp, Server) {
    let app = TestApp::fixture("request");
    let server = app.serve("dev", args);
    (app, server)
}

/// `req` as the echo route saw it.
fn echo(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let response = server.request(method, path, headers, body);
    assert_eq!(response.status, 200, "{method} {path}: {}", response.text());
    response.json()
}

fn post_body(server: &Server, content_type: &str, body: &[u8]) -> Value {
    echo(
        server,
        "POST",
        "/api/echo",
        &[("content-type", content_type)],
        body,
    )
}

/// Sends `bytes` while reading the answer at the same time, so that a server which answers
/// before reading a large body (413) is heard even if it closes the connection early.
fn send_big(server: &Server, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut writer = stream.try_clone().expect("clone stream");
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _ = writer.write_all(bytes);
        });
        let mut data = Vec::new();
        let _ = stream.read_to_end(&mut data);
        Response::from_bytes(&data)
            .unwrap_or_else(|| panic!("unparseable response: {:?}", String::from_utf8_lossy(&data)))
    })
}

/// A `content-length` POST of `len` bytes of `a` to `/api/size?tag=<tag>`.
fn post_sized(server: &Server, len: usize, tag: &str) -> Response {
    let mut raw = format!(
        "POST /api/size?tag={tag} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: text/plain\r\ncontent-length: {len}\r\n\r\n"
    )
    .into_bytes();
    raw.resize(raw.len() + len, b'a');
    send_big(server, &raw)
}

/// A chunked POST of `chunks` chunks of `size` bytes each to `/api/size?tag=<tag>`.
fn post_chunked(server: &Server, chunks: usize, size: usize, tag: &str) -> Response {
    let mut raw = format!(
        "POST /api/size?tag={tag} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..chunks {
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.resize(raw.len() + size, b'a');
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    send_big(server, &raw)
}

fn assert_accepted(response: &Response, len: usize) {
    assert_eq!(response.status, 200, "{len} bytes: {}", response.text());
    assert_eq!(response.json(), json!({ "type": "string", "len": len }));
}

fn assert_too_large(response: &Response) {
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": "Payload Too Large" }));
}

/// Proves a script did not run for the request tagged `refused`: after a later request
/// tagged `accepted` has run, only that one is in the log.
fn assert_script_skipped(server: &Server, script: &str, refused: &str, accepted: &str) {
    server.wait_for_log(&format!("{script} ran: {accepted}"));
    let log = server.log_text();
    assert!(
        !log.contains(&format!("{script} ran: {refused}")),
        "the script ran for {refused}:\n{log}"
    );
}

#[test]
fn method_is_the_request_method() {
    let (_app, server) = request_app(&[]);
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        assert_eq!(
            echo(&server, method, "/api/echo", &[], b"")["method"],
            json!(method)
        );
    }
}

#[test]
fn url_is_the_raw_path_and_query_and_path_is_decoded() {
    let (_app, server) = request_app(&[]);
    let req = echo(&server, "GET", "/api/items/a%20b?x=%41&y=1+2", &[], b"");
    assert_eq!(req["url"], json!("/api/items/a%20b?x=%41&y=1+2"));
    assert_eq!(req["path"], json!("/api/items/a b"));
    let req = echo(&server, "GET", "/api/echo", &[], b"");
    assert_eq!(req["url"], json!("/api/echo"));
    assert_eq!(req["path"], json!("/api/echo"));
    let req = echo(&server, "GET", "/api/files/%E2%9C%93/b%2Fc", &[], b"");
    assert_eq!(req["url"], json!("/api/files/%E2%9C%93/b%2Fc"));
    assert_eq!(req["params"], json!({ "path": ["✓", "b/c"] }));
}

#[test]
fn query_values_are_decoded() {
    let (_app, server) = request_app(&[]);
    let req = echo(
        &server,
        "GET",
        "/api/echo?a=1&b=x+y&c=%E2%9C%93&plus=%2B&flag&empty=",
        &[],
        b"",
    );
    assert_eq!(
        req["query"],
        json!({ "a": "1", "b": "x y", "c": "✓", "plus": "+", "flag": "", "empty": "" })
    );
    assert_eq!(
        echo(&server, "GET", "/api/echo", &[], b"")["query"],
        json!({})
    );
}

#[test]
fn a_repeated_query_key_gives_an_array() {
    let (_app, server) = request_app(&[]);
    let req = echo(
        &server,
        "GET",
        "/api/echo?tag=a&tag=b&tag=c&one=1",
        &[],
        b"",
    );
    assert_eq!(req["query"], json!({ "tag": ["a", "b", "c"], "one": "1" }));
}

#[test]
fn route_params_are_merged_into_query_and_win() {
    let (_app, server) = request_app(&[]);
    let req = echo(&server, "GET", "/api/items/42?id=evil&q=1", &[], b"");
    assert_eq!(req["query"], json!({ "id": "42", "q": "1" }));
    assert_eq!(req["params"], json!({ "id": "42" }));
    let req = echo(&server, "GET", "/api/files/a/b?path=x&path=y", &[], b"");
    assert_eq!(req["query"], json!({ "path": ["a", "b"] }));
}

#[test]
fn params_are_route_params_only() {
    let (_app, server) = request_app(&[]);
    assert_eq!(
        echo(&server, "GET", "/api/echo?id=1", &[], b"")["params"],
        json!({})
    );
    assert_eq!(
        echo(&server, "GET", "/api/items/7?x=1", &[], b"")["params"],
        json!({ "id": "7" })
    );
    assert_eq!(
        echo(&server, "GET", "/api/files/a/b/c", &[], b"")["params"],
        json!({ "path": ["a", "b", "c"] })
    );
}

#[test]
fn headers_have_lowercase_names() {
    let (_app, server) = request_app(&[]);
    let req = echo(
        &server,
        "GET",
        "/api/echo",
        &[
            ("X-Custom-Thing", "Some Value"),
            ("Accept", "application/json"),
            ("authorization", "Bearer t0k"),
        ],
        b"",
    );
    let headers = &req["headers"];
    assert_eq!(headers["x-custom-thing"], json!("Some Value"));
    assert_eq!(headers["accept"], json!("application/json"));
    assert_eq!(headers["authorization"], json!("Bearer t0k"));
    assert_eq!(headers["host"], json!("127.0.0.1"));
    let names: Vec<&String> = headers.as_object().expect("headers map").keys().collect();
    assert!(names.iter().all(|n| **n == n.to_lowercase()), "{names:?}");
}

#[test]
fn repeated_headers_are_joined_with_comma_space() {
    let (_app, server) = request_app(&[]);
    let req = echo(
        &server,
        "GET",
        "/api/echo",
        &[("x-multi", "a"), ("X-Multi", "b"), ("x-multi", "c")],
        b"",
    );
    assert_eq!(req["headers"]["x-multi"], json!("a, b, c"));
}

#[test]
fn cookies_are_a_map_of_name_to_value() {
    let (_app, server) = request_app(&[]);
    let req = echo(
        &server,
        "GET",
        "/api/echo",
        &[("cookie", "session=abc123; theme=dark; empty=")],
        b"",
    );
    assert_eq!(
        req["cookies"],
        json!({ "session": "abc123", "theme": "dark", "empty": "" })
    );
    assert_eq!(
        echo(&server, "GET", "/api/echo", &[], b"")["cookies"],
        json!({})
    );
}

#[test]
fn ip_is_the_client_address() {
    let (_app, server) = request_app(&[]);
    assert_eq!(
        echo(&server, "GET", "/api/echo", &[], b"")["ip"],
        json!("127.0.0.1")
    );
}

#[test]
fn a_json_body_is_parsed_with_rhai_types() {
    let (_app, server) = request_app(&[]);
    let body = r#"{"i": 1, "neg": -7, "big": 9007199254740993, "f": 1.5, "e": 1e3, "n": null,
                   "s": "x", "b": true, "a": [1, 2.5], "o": {"k": "v"}}"#;
    let response = server.post_json("/api/types", body);
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = response.json();
    assert_eq!(
        answer["types"],
        json!({
            "i": "i64", "neg": "i64", "big": "i64", "f": "f64", "e": "f64", "n": "()",
            "s": "string", "b": "bool", "a": "array", "o": "map"
        })
    );
    assert_eq!(
        answer["body"]["big"],
        json!(9007199254740993_i64),
        "integers stay exact"
    );
    assert_eq!(answer["body"]["a"], json!([1, 2.5]));
    assert_eq!(answer["body"]["o"], json!({ "k": "v" }));
    assert_eq!(answer["body"]["n"], Value::Null);
}

#[test]
fn any_json_value_can_be_the_body() {
    let (_app, server) = request_app(&[]);
    for (body, kind, value) in [
        ("[1, \"two\"]", "array", json!([1, "two"])),
        ("\"text\"", "string", json!("text")),
        ("42", "i64", json!(42)),
        ("null", "()", Value::Null),
    ] {
        let req = post_body(&server, "application/json", body.as_bytes());
        assert_eq!(
            (&req["body_type"], &req["body"]),
            (&json!(kind), &value),
            "{body}"
        );
    }
}

#[test]
fn json_content_types_with_parameters_and_plus_json_are_parsed() {
    let (_app, server) = request_app(&[]);
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
        "application/problem+json; charset=utf-8",
    ] {
        let req = post_body(&server, content_type, br#"{"ok": true}"#);
        assert_eq!(req["body_type"], json!("map"), "{content_type}");
        assert_eq!(req["body"], json!({ "ok": true }), "{content_type}");
    }
}

#[test]
fn invalid_json_is_400_without_running_the_script() {
    let (_app, server) = request_app(&[]);
    for (tag, content_type, body) in [
        ("truncated", "application/json", r#"{"a":"#),
        ("garbage", "application/json", "not json"),
        ("trailing", "application/json", r#"{"a":1} x"#),
        (
            "plusjson",
            "application/vnd.api+json",
            "{'single': 'quotes'}",
        ),
    ] {
        let response = server.request(
            "POST",
            &format!("/api/json?tag={tag}"),
            &[("content-type", content_type)],
            body.as_bytes(),
        );
        assert_eq!(response.status, 400, "{tag}: {}", response.text());
        assert_eq!(
            response.json(),
            json!({ "error": "Invalid JSON body" }),
            "{tag}"
        );
    }
    let response = server.post_json("/api/json?tag=valid", r#"{"a":1}"#);
    assert_eq!(response.json(), json!({ "ran": true, "body": { "a": 1 } }));
    for tag in ["truncated", "garbage", "trailing", "plusjson"] {
        assert_script_skipped(&server, "json.rhai", tag, "valid");
    }
}

#[test]
fn an_empty_body_with_a_json_content_type_is_an_empty_map() {
    let (_app, server) = request_app(&[]);
    let req = post_body(&server, "application/json", b"");
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("map"), &json!({}))
    );
}

#[test]
fn an_empty_body_is_unit() {
    let (_app, server) = request_app(&[]);
    let req = echo(&server, "GET", "/api/echo", &[], b"");
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("()"), &Value::Null)
    );
    let req = post_body(&server, "text/plain", b"");
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("()"), &Value::Null)
    );
}

#[test]
fn a_urlencoded_body_is_a_map_with_arrays_for_repeated_keys() {
    let (_app, server) = request_app(&[]);
    let req = post_body(
        &server,
        "application/x-www-form-urlencoded",
        b"name=Ada+Lovelace&tag=a&tag=b&mark=%E2%9C%93&empty=",
    );
    assert_eq!(req["body_type"], json!("map"));
    assert_eq!(
        req["body"],
        json!({ "name": "Ada Lovelace", "tag": ["a", "b"], "mark": "✓", "empty": "" })
    );
    let req = post_body(
        &server,
        "application/x-www-form-urlencoded; charset=utf-8",
        b"a=1",
    );
    assert_eq!(req["body"], json!({ "a": "1" }));
}

#[test]
fn a_text_body_is_a_string() {
    let (_app, server) = request_app(&[]);
    for content_type in [
        "text/plain",
        "text/plain; charset=utf-8",
        "text/csv",
        "text/html",
    ] {
        let req = post_body(&server, content_type, "héllo,\nwörld".as_bytes());
        assert_eq!(
            (&req["body_type"], &req["body"]),
            (&json!("string"), &json!("héllo,\nwörld")),
            "{content_type}"
        );
    }
}

#[test]
fn another_body_is_a_string_when_valid_utf8() {
    let (_app, server) = request_app(&[]);
    let req = post_body(&server, "application/xml", b"<a>1</a>");
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("string"), &json!("<a>1</a>"))
    );
    let req = echo(&server, "POST", "/api/echo", &[], b"no content type");
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("string"), &json!("no content type"))
    );
}

#[test]
fn another_body_is_a_blob_when_not_utf8() {
    let (_app, server) = request_app(&[]);
    let req = post_body(
        &server,
        "application/octet-stream",
        &[0xff, 0xfe, 0x00, 0x41],
    );
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("blob"), &json!(4))
    );
    let req = post_body(
        &server,
        "image/png",
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0x00],
    );
    assert_eq!(
        (&req["body_type"], &req["body"]),
        (&json!("blob"), &json!(9))
    );
}

#[test]
fn invalid_utf8_in_the_query_is_400() {
    let (_app, server) = request_app(&[]);
    for path in [
        "/api/echo?q=%ff",
        "/api/echo?%c3%28=x",
        "/api/items/1?name=%e2%82",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert!(
            response.json()["error"].is_string(),
            "{path}: {}",
            response.text()
        );
    }
}

#[test]
fn the_default_body_limit_is_one_mebibyte() {
    let (_app, server) = request_app(&[]);
    assert_accepted(&post_sized(&server, 1_048_576, "exact"), 1_048_576);
    assert_too_large(&post_sized(&server, 1_048_577, "over"));
    assert_accepted(&post_sized(&server, 10, "small"), 10);
    assert_script_skipped(&server, "size.rhai", "over", "small");
}

#[test]
fn a_json_body_over_the_limit_is_413_not_400() {
    let (_app, server) = request_app(&["--body-limit", "100"]);
    let body = format!("{{\"pad\": \"{}\"}}", "x".repeat(200));
    let response = server.post_json("/api/json?tag=big", &body);
    assert_too_large(&response);
}

#[test]
fn body_limit_takes_kilobytes() {
    let (_app, server) = request_app(&["--body-limit", "512kb"]);
    assert_accepted(&post_sized(&server, 524_288, "exact"), 524_288);
    assert_too_large(&post_sized(&server, 524_289, "over"));
}

#[test]
fn body_limit_takes_bytes() {
    let (_app, server) = request_app(&["--body-limit", "1000"]);
    assert_accepted(&post_sized(&server, 1000, "exact"), 1000);
    assert_too_large(&post_sized(&server, 1001, "over"));
    assert_accepted(&post_sized(&server, 3, "small"), 3);
    assert_script_skipped(&server, "size.rhai", "over", "small");
}

#[test]
fn body_limit_takes_megabytes() {
    let (_app, server) = request_app(&["--body-limit", "2mb"]);
    assert_accepted(&post_sized(&server, 2 * 1_048_576, "exact"), 2 * 1_048_576);
    assert_too_large(&post_sized(&server, 2 * 1_048_576 + 1, "over"));
}

#[test]
fn a_chunked_body_is_read_whole_within_the_limit() {
    let (_app, server) = request_app(&["--body-limit", "1000"]);
    assert_accepted(&post_chunked(&server, 4, 250, "exact"), 1000);
}

#[test]
fn a_chunked_body_over_the_limit_is_413_without_running_the_script() {
    let (_app, server) = request_app(&["--body-limit", "1000"]);
    assert_too_large(&post_chunked(&server, 2, 600, "over"));
    assert_too_large(&post_chunked(&server, 1001, 1, "many"));
    assert_accepted(&post_chunked(&server, 1, 5, "small"), 5);
    assert_script_skipped(&server, "size.rhai", "over", "small");
    assert_script_skipped(&server, "size.rhai", "many", "small");
}
