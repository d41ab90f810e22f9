//! docs/reference.md, "Behind a proxy, request ids and logs": who `req.ip` is behind a
//! trusted proxy (and that an untrusted peer cannot say), `req.id` and `X-Request-Id`, and
//! the JSON log.

use crate::support;

use std::collections::HashSet;

use serde_json::Value;
use support::{Response, Server, TestApp};

/// A route that answers what the request knows of its sender, and logs a line.
const WHO: &str = r#"
fn GET(req) {
    log::info("who asked");
    #{ id: req.id, ip: req.ip, protocol: req.protocol, host: req.host }
}
"#;

fn app(toml: &str) -> TestApp {
    let app = TestApp::fixture("basic");
    app.write("pages/api/who.rhai", WHO);
    app.write("rhapi.toml", toml);
    app
}

fn who(server: &Server, headers: &[(&str, &str)]) -> Value {
    let response = server.request("GET", "/api/who", headers, b"");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn a_trusted_proxy_names_the_client_from_the_right() {
    let app = app("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\n");
    let server = app.serve("start", &[]);
    // The client, then proxies; the leftmost entry is whatever the client claimed.
    let got = who(
        &server,
        &[
            (
                "x-forwarded-for",
                "6.6.6.6, 203.0.113.9, 10.0.0.2, 10.1.1.1",
            ),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example"),
        ],
    );
    assert_eq!(got["ip"], "203.0.113.9");
    assert_eq!(got["protocol"], "https");
    assert_eq!(got["host"], "shop.example");
    // A chain split over two header lines reads as one list.
    let got = who(
        &server,
        &[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.9.9.9"),
        ],
    );
    assert_eq!(got["ip"], "198.51.100.7");
    // IPv6 clients and trusted IPv6 ranges.
    let got = who(&server, &[("x-forwarded-for", "2001:db8::7, fd00::1")]);
    assert_eq!(got["ip"], "2001:db8::7");
    // The standard header, with its quoting; proto and host from the hop that saw the client.
    let got = who(
        &server,
        &[(
            "forwarded",
            "for=6.6.6.6;proto=http, for=\"[2001:db8::9]:4711\";proto=https;host=api.example, for=10.0.0.3;proto=http",
        )],
    );
    assert_eq!(got["ip"], "2001:db8::9");
    assert_eq!(got["protocol"], "https");
    assert_eq!(got["host"], "api.example");
    // No forwarding headers: the peer itself, and the connection's scheme and Host.
    let got = who(&server, &[]);
    assert_eq!(got["ip"], "127.0.0.1");
    assert_eq!(got["protocol"], "http");
    assert_eq!(got["host"], "127.0.0.1");
}

#[test]
fn an_untrusted_peer_cannot_forge_its_address() {
    let limited = "[[rate_limit]]\npath = \"/api/*\"\nlimit = 1\nper = \"1m\"\nby = \"ip\"\n";
    // Nothing trusted (the default), then a list the peer (127.0.0.1) is not on.
    for toml in [
        limited.to_string(),
        format!("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\n{limited}"),
    ] {
        let app = app(&toml);
        let server = app.serve("start", &[]);
        let forged = [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            (
                "forwarded",
                "for=198.51.100.1;proto=https;host=evil.example",
            ),
        ];
        let got = who(&server, &forged);
        assert_eq!(got["ip"], "127.0.0.1", "{toml}");
        assert_eq!(got["protocol"], "http");
        assert_eq!(got["host"], "127.0.0.1");
        // A new forged address is no new counter: the peer's one is spent.
        let again = server.request(
            "GET",
            "/api/who",
            &[("x-forwarded-for", "203.0.113.10")],
            b"",
        );
        assert_eq!(again.status, 429, "{toml}");
    }
}

#[test]
fn rate_limits_count_the_client_behind_the_proxy() {
    let app = app(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[[rate_limit]]\npath = \"/api/*\"\nlimit = 1\nper = \"1m\"\nby = \"ip\"\n",
    );
    let server = app.serve("start", &[]);
    let from = |client: &str| {
        server
            .request("GET", "/api/who", &[("x-forwarded-for", client)], b"")
            .status
    };
    assert_eq!(from("203.0.113.1"), 200);
    assert_eq!(from("203.0.113.2"), 200);
    assert_eq!(from("203.0.113.1"), 429);
    // IPv6 clients count by their /64: another address of the same /64 is the same client.
    assert_eq!(from("2001:db8:1:2::1"), 200);
    assert_eq!(from("2001:db8:1:2:ffff::2"), 429);
    assert_eq!(from("2001:db8:1:3::1"), 200);
}

#[test]
fn a_bad_trusted_proxy_is_a_load_error_naming_it() {
    let app = app("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/33\"]\n");
    let check = app.run("check");
    assert_eq!(check.status.code(), Some(1), "{}", check.stderr);
    assert!(check.stderr.contains("'10.0.0.0/33'"), "{}", check.stderr);
    assert!(
        check.stderr.contains("server.trusted_proxies"),
        "{}",
        check.stderr
    );
    let start = app.run_to_exit("start", &["--port", "0"]);
    assert_eq!(start.status.code(), Some(1), "{}", start.stderr);
    let app = app_with_proxies("[\"proxy.internal\"]");
    let check = app.run("check");
    assert!(
        check.stderr.contains("'proxy.internal'"),
        "{}",
        check.stderr
    );
}

fn app_with_proxies(list: &str) -> TestApp {
    app(&format!("[server]\ntrusted_proxies = {list}\n"))
}

fn id_of(response: &Response) -> String {
    response
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id: {response:?}"))
        .to_string()
}

#[test]
fn request_ids_are_echoed_when_sensible_and_made_otherwise() {
    let app = app("");
    app.write("public/hello.txt", "hello\n");
    app.write(
        "pages/api/broken.rhai",
        "fn GET(req) { undefined_function() }\n",
    );
    let server = app.serve("start", &[]);
    let sent = "trace-42_a.b:c";
    let response = server.request("GET", "/api/who", &[("x-request-id", sent)], b"");
    assert_eq!(id_of(&response), sent);
    assert_eq!(response.json()["id"], sent);
    let longest = "x".repeat(128);
    let response = server.request("GET", "/api/who", &[("x-request-id", &longest)], b"");
    assert_eq!(id_of(&response), longest);
    // Too long, characters outside the set, empty: replaced by a new id.
    for bad in [
        "y".repeat(129),
        "a/b".into(),
        "a\"b".into(),
        "".into(),
        "ü".into(),
    ] {
        let response = server.request("GET", "/api/who", &[("x-request-id", &bad)], b"");
        let id = id_of(&response);
        assert_ne!(id, bad);
        assert_eq!(response.json()["id"], id.as_str());
        assert!(!id.is_empty() && id.len() <= 128, "{id}");
    }
    // Absent: a new one each time.
    let ids: HashSet<String> = (0..50)
        .map(|_| {
            let response = server.get("/api/who");
            let id = id_of(&response);
            assert_eq!(response.json()["id"], id.as_str());
            id
        })
        .collect();
    assert_eq!(ids.len(), 50);
    // Every response carries one: a 404, a public file, a script error, a bad path.
    for path in [
        "/api/nope",
        "/nope.txt",
        "/hello.txt",
        "/api/broken",
        "/api/who/",
    ] {
        let response = server.request("GET", path, &[("x-request-id", "mine")], b"");
        assert_eq!(id_of(&response), "mine", "{path}: {}", response.status);
        assert!(id_of(&server.get(path)).len() > 4, "{path}");
    }
}

/// Every line `server` logged, each parsed as JSON (a line that is not fails the test).
fn json_lines(server: &Server) -> Vec<Value> {
    server
        .log_text()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line:?}\n{}", server.log_text()))
        })
        .collect()
}

#[test]
fn the_json_log_has_a_valid_object_a_line() {
    let secret = "sk_live_0123456789abcdef";
    let app = app("[log]\nformat = \"json\"\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    app.write(".env", &format!("API_SECRET={secret}\n"));
    app.write(
        "pages/api/noisy.rhai",
        r#"
fn GET(req) {
    log::warn("key " + env::API_SECRET + " \"quoted\" \\ back\nnew line \x01 \u2028 é");
    throw "failed with " + env::API_SECRET;
}
"#,
    );
    let server = app.serve("start", &[]);
    let response = server.request(
        "GET",
        "/api/who",
        &[
            ("x-request-id", "json-test-1"),
            ("x-forwarded-for", "203.0.113.5"),
        ],
        b"",
    );
    assert_eq!(response.status, 200);
    assert_eq!(server.get("/api/noisy").status, 500);
    // Odd paths: quotes, percent escapes of invalid UTF-8, the secret itself.
    server.get("/api/%ff%22%0a");
    server.get(&format!("/api/{secret}"));
    server.raw(b"GET /api/\"quoted\" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    server.request("GET", "/api/who", &[("x-request-id", secret)], b"");
    server.sync_log();
    let lines = json_lines(&server);
    assert!(
        lines
            .iter()
            .any(|l| l["msg"].as_str().unwrap().starts_with("loaded")),
        "start-up lines are JSON too: {lines:?}"
    );
    for line in &lines {
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(
            line["level"].is_string() && line["msg"].is_string(),
            "{line}"
        );
    }
    let request = lines
        .iter()
        .find(|l| l["request_id"] == "json-test-1" && l.get("status").is_some())
        .unwrap_or_else(|| panic!("no request line: {lines:?}"));
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/api/who");
    assert_eq!(request["status"], 200);
    assert_eq!(request["ip"], "203.0.113.5");
    assert_eq!(request["level"], "info");
    assert!(request["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(request["bytes"], response.body.len());
    let script = lines
        .iter()
        .find(|l| l["msg"] == "who asked")
        .unwrap_or_else(|| panic!("no script line: {lines:?}"));
    assert_eq!(script["file"], "pages/api/who.rhai");
    assert_eq!(script["line"], 3);
    assert_eq!(script["request_id"], id_of(&response).as_str());
    let warned = lines
        .iter()
        .find(|l| l["level"] == "warn" && l["file"] == "pages/api/noisy.rhai")
        .unwrap_or_else(|| panic!("no warn line: {lines:?}"));
    let text = warned["msg"].as_str().unwrap();
    assert!(
        text.contains("\"quoted\" \\ back\nnew line \u{1} \u{2028} é"),
        "{text}"
    );
    // The error line carries the id of the request that failed.
    let failed = lines
        .iter()
        .find(|l| l["level"] == "error" && l["msg"].as_str().unwrap().contains("noisy"))
        .unwrap_or_else(|| panic!("no error line: {lines:?}"));
    assert_eq!(failed["request_id"], warned["request_id"]);
    assert!(failed["request_id"].as_str().unwrap().len() > 4);
    assert!(!server.log_text().contains(secret), "{}", server.log_text());
    assert!(
        !server.log_text().contains("sk_live"),
        "{}",
        server.log_text()
    );
}

#[test]
fn the_plain_log_is_unchanged() {
    let app = app("");
    let server = app.serve("start", &[]);
    server.request("GET", "/api/who", &[("x-request-id", "plain-1")], b"");
    server.sync_log();
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("GET /api/who 200 "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.ends_with("ms"), "{line}");
    assert!(!log.contains("plain-1"), "{log}");
}

#[test]
fn bytes_that_are_not_text_in_x_forwarded_for_cannot_hide_it() {
    let app = app(
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n[log]\nformat = \"json\"\n",
    );
    let server = app.serve("start", &[]);
    // As a proxy appends the address it saw to what the client sent: the client's
    // unreadable entry, then 10.0.0.2. `Forwarded` is the client's own.
    let response = server.raw(
        b"GET /api/who HTTP/1.1\r\nhost: x\r\nx-forwarded-for: \x80\xff, 10.0.0.2\r\nforwarded: for=9.9.9.9\r\nconnection: close\r\n\r\n",
    );
    // A header that is not text is refused before any script; the log names the client
    // the trusted proxy vouched for, never the address the client wrote.
    assert_eq!(response.status, 400, "{}", response.text());
    server.sync_log();
    let line = json_lines(&server)
        .into_iter()
        .find(|l| l["path"] == "/api/who")
        .expect("the request's log line");
    assert_eq!(line["ip"], "10.0.0.2", "{line}");
}
