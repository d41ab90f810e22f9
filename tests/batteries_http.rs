//! `http::` against a real local HTTP server (a thread of this test speaking HTTP/1.1).

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::{json, Value};
use support::TestApp;

/// A local HTTP server: `/echo` answers with what it received as JSON, `/missing` is a 404
/// with a JSON problem body, `/text` is plain text, `/silent` never answers,
/// `/redirect/<status>?to=<url>` redirects there with that status, and `/hops/<n>` is `n`
/// redirects (each a relative `Location`) before an echo.
struct Upstream {
    port: u16,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        Upstream { port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = serde_json::Map::new();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim().split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "content-length" {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.insert(name, Value::String(value.trim().to_string()));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    if let Some((status, location)) = redirect_of(&path) {
        let response = format!(
            "HTTP/1.1 {status} X\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut stream = stream;
        let _ = stream.write_all(response.as_bytes());
        return;
    }
    let (status, content_type, extra, payload) = match path.as_str() {
        "/silent" => {
            // Hold the connection open without a word until the client gives up.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
            return;
        }
        "/missing" => (
            404,
            "application/problem+json",
            "",
            json!({ "title": "nope" }).to_string(),
        ),
        "/text" => (
            200,
            "text/plain",
            "X-Multi: a\r\nX-Multi: b\r\n",
            "just text".to_string(),
        ),
        _ => (
            200,
            "application/json",
            "X-Upstream: yes\r\n",
            json!({
                "method": method,
                "path": path,
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            })
            .to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

/// The status and `Location` the upstream answers `path` with, if it is a redirect.
fn redirect_of(path: &str) -> Option<(u16, String)> {
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let (status, to) = rest.split_once("?to=")?;
        return Some((status.parse().ok()?, to.to_string()));
    }
    let left: u32 = path.strip_prefix("/hops/")?.parse().ok()?;
    // Relative to /hops/<n>: /hops/<n - 1>, then the echo.
    (left > 0).then(|| (302, (left - 1).to_string()))
}

#[test]
fn get_parses_json_and_lowercases_headers() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    app.write(
        "pages/api/proxy.rhai",
        &format!(
            r#"fn GET() {{
                let r = http::get("{}", #{{ headers: #{{ "X-Api-Key": "k123" }} }});
                #{{ status: r.status, upstream: r.headers["x-upstream"], type: r.headers["content-type"],
                   json: r.json, body_is_string: type_of(r.body) == "string" }}
            }}"#,
            upstream.url("/echo?q=1")
        ),
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/proxy");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["status"], 200);
    assert_eq!(body["upstream"], "yes");
    assert_eq!(body["type"], "application/json");
    assert_eq!(body["body_is_string"], true);
    assert_eq!(body["json"]["method"], "GET");
    assert_eq!(body["json"]["path"], "/echo?q=1");
    assert_eq!(body["json"]["headers"]["x-api-key"], "k123");
}

#[test]
fn post_sends_maps_as_json_and_strings_as_text() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    app.write(
        "pages/api/send.rhai",
        &format!(
            r#"fn GET() {{
                let a = http::post("{url}", #{{ name: "Ada", n: 1 }});
                let b = http::post("{url}", "plain words", #{{ headers: #{{ authorization: "Bearer t" }} }});
                let c = http::request(#{{ method: "put", url: "{url}", body: [1, 2], timeout_ms: 5000 }});
                #{{ a: a.json, b: b.json, c: c.json }}
            }}"#,
            url = upstream.url("/echo")
        ),
    );
    let server = app.serve("dev", &[]);
    let body = server.get("/api/send").json();
    assert_eq!(body["a"]["method"], "POST");
    assert_eq!(body["a"]["headers"]["content-type"], "application/json");
    let sent: Value = serde_json::from_str(body["a"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({ "name": "Ada", "n": 1 }));
    assert_eq!(body["b"]["body"], "plain words");
    assert_eq!(
        body["b"]["headers"]["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(body["b"]["headers"]["authorization"], "Bearer t");
    assert_eq!(body["c"]["method"], "PUT");
    assert_eq!(body["c"]["body"], "[1,2]");
}

#[test]
fn any_status_is_a_result() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    app.write(
        "pages/api/s.rhai",
        &format!(
            r#"fn GET() {{
                let missing = http::get("{missing}");
                let text = http::get("{text}");
                #{{ status: missing.status, problem: missing.json, text: text.body, text_json: text.json,
                   multi: text.headers["x-multi"] }}
            }}"#,
            missing = upstream.url("/missing"),
            text = upstream.url("/text")
        ),
    );
    let server = app.serve("dev", &[]);
    assert_eq!(
        server.get("/api/s").json(),
        json!({ "status": 404, "problem": { "title": "nope" }, "text": "just text", "text_json": null,
                "multi": "a, b" })
    );
}

#[test]
fn timeouts_refusals_and_bad_urls_are_catchable_errors() {
    let upstream = Upstream::start();
    let closed = support::free_port();
    let app = TestApp::new();
    app.write(".env", "WEATHER_KEY=very-secret-key\n");
    app.write(
        "pages/api/e.rhai",
        &format!(
            r#"fn GET() {{
                let errors = [];
                for url in ["{silent}", "http://127.0.0.1:{closed}/x?key=" + env::WEATHER_KEY, "ftp://example.com/", "http://"] {{
                    try {{ http::get(url, #{{ timeout_ms: 300 }}); errors.push("no error"); }}
                    catch (err) {{ errors.push(err); }}
                }}
                errors
            }}"#,
            silent = upstream.url("/silent")
        ),
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/e");
    assert_eq!(response.status, 200, "{}", response.text());
    let errors: Vec<String> = serde_json::from_value(response.json()).unwrap();
    assert!(
        errors[0].starts_with("http::get: ") && errors[0].contains("timed out"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("connection refused") || errors[1].contains("connection failed"),
        "{errors:?}"
    );
    assert!(!errors[1].contains("very-secret-key"), "{errors:?}");
    assert!(errors[2].contains("bad URL"), "{errors:?}");
    assert!(
        errors[3].contains("bad URL") || errors[3].contains("http://"),
        "{errors:?}"
    );
    server.sync_log();
    assert!(!server.log_text().contains("very-secret-key"));
}

#[test]
fn an_upstream_slower_than_the_budget_is_a_504() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    app.write(
        "pages/api/slow.rhai",
        &format!(r#"fn GET() {{ http::get("{}") }}"#, upstream.url("/silent")),
    );
    // The default outgoing timeout is 10 s; the request's budget of 1 s wins.
    let server = app.serve("start", &["--timeout", "1s"]);
    let response = server.get("/api/slow");
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": "Script timed out" }));
}

#[test]
fn a_redirect_to_another_origin_drops_credentials_and_secret_headers() {
    let first = Upstream::start();
    let second = Upstream::start();
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_API_KEY=sk-live-0123456789\n");
    app.write(
        "pages/api/go.rhai",
        &format!(
            r#"fn GET() {{
                let headers = #{{ authorization: "Bearer t0ken-abc", cookie: "sid=s1",
                                 "x-api-key": env::RHAPI_T_API_KEY, "x-trace": "kept-along" }};
                let other = http::request(#{{ method: "POST", url: "{other}", headers: headers, body: #{{ n: 1 }} }});
                let same = http::request(#{{ method: "POST", url: "{same}", headers: headers, body: #{{ n: 1 }} }});
                #{{ other: other.json, same: same.json }}
            }}"#,
            other = first.url(&format!("/redirect/307?to={}", second.url("/echo"))),
            same = first.url(&format!("/redirect/307?to={}", first.url("/echo"))),
        ),
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/go");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();

    // What the second origin received: the method and body (307), no credentials.
    let other = &body["other"];
    assert_eq!(
        other["headers"]["host"],
        format!("127.0.0.1:{}", second.port)
    );
    assert_eq!(other["method"], "POST");
    assert_eq!(other["body"], r#"{"n":1}"#);
    assert_eq!(other["headers"]["x-trace"], "kept-along");
    assert_eq!(other["headers"]["content-type"], "application/json");
    for dropped in ["authorization", "cookie", "x-api-key"] {
        assert!(
            other["headers"].get(dropped).is_none(),
            "{dropped}: {other}"
        );
    }

    // The same origin gets them all.
    let same = &body["same"];
    assert_eq!(same["headers"]["host"], format!("127.0.0.1:{}", first.port));
    assert_eq!(same["headers"]["authorization"], "Bearer t0ken-abc");
    assert_eq!(same["headers"]["cookie"], "sid=s1");
    assert_eq!(same["headers"]["x-api-key"], "sk-live-0123456789");
}

#[test]
fn redirects_change_the_method_as_fetch_does() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    let to = |status: u16| upstream.url(&format!("/redirect/{status}?to=/echo"));
    app.write(
        "pages/api/methods.rhai",
        &format!(
            r#"fn GET() {{
                let seen = [];
                for pair in [["POST", "{s303}"], ["POST", "{s302}"], ["POST", "{s301}"],
                             ["PUT", "{s302}"], ["PUT", "{s308}"], ["DELETE", "{s307}"]] {{
                    let r = http::request(#{{ method: pair[0], url: pair[1], body: "data" }});
                    seen.push(`${{pair[0]}} -> ${{r.json.method}} '${{r.json.body}}' ${{r.json.headers["content-type"]}}`);
                }}
                seen
            }}"#,
            s303 = to(303),
            s302 = to(302),
            s301 = to(301),
            s308 = to(308),
            s307 = to(307),
        ),
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/methods");
    assert_eq!(response.status, 200, "{}", response.text());
    let text = "text/plain; charset=utf-8";
    assert_eq!(
        response.json(),
        json!([
            "POST -> GET '' ",
            "POST -> GET '' ",
            "POST -> GET '' ",
            format!("PUT -> PUT 'data' {text}"),
            format!("PUT -> PUT 'data' {text}"),
            format!("DELETE -> DELETE 'data' {text}"),
        ])
    );
}

#[test]
fn at_most_five_redirects_are_followed() {
    let upstream = Upstream::start();
    let app = TestApp::new();
    app.write(
        "pages/api/hops.rhai",
        &format!(
            r#"fn GET() {{
                let five = http::get("{five}");
                let error = "no error";
                try {{ http::get("{six}"); }} catch (err) {{ error = err; }}
                #{{ status: five.status, path: five.json.path, error: error }}
            }}"#,
            five = upstream.url("/hops/5"),
            six = upstream.url("/hops/6"),
        ),
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/hops");
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["status"], 200);
    assert_eq!(body["path"], "/hops/0");
    assert_eq!(
        body["error"],
        format!(
            "http::get: http://127.0.0.1:{}: more than 5 redirects (the most http:: follows)",
            upstream.port
        )
    );
}
