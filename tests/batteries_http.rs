//! `http::` against a real local HTTP server (a thread of this test speaking HTTP/1.1).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::{json, Value};
use support::TestApp;

/// A local HTTP server: `/echo` answers with what it received as JSON, `/missing` is a 404
/// with a JSON problem body, `/text` is plain text, `/silent` never answers.
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
