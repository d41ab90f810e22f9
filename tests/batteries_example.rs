//! The repo's own example app (pages/api, migrations) as a user walks through it: sign up,
//! log in, notes only their owner can touch, the contact form, the weather route.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use serde_json::json;
use support::{copy_tree, Response, Server, TestApp};

/// The example app, with `.env` lines of the test's choosing.
fn example_app(env: &str) -> TestApp {
    let app = TestApp::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(&root.join("pages"), &app.path().join("pages"));
    copy_tree(&root.join("migrations"), &app.path().join("migrations"));
    copy_tree(&root.join("public"), &app.path().join("public"));
    copy_tree(&root.join("jobs"), &app.path().join("jobs"));
    app.write(
        ".env",
        &format!("JWT_SECRET=test-secret-0123456789abcdef\n{env}"),
    );
    app
}

/// The `name=value` of the `Set-Cookie` for `name`.
fn cookie(response: &Response, name: &str) -> String {
    response
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie: {:?}", response.headers))
}

fn send(server: &Server, method: &str, path: &str, session: &str, body: &str) -> Response {
    let mut headers = vec![("content-type", "application/json")];
    if !session.is_empty() {
        headers.push(("cookie", session));
    }
    server.request(method, path, &headers, body.as_bytes())
}

#[test]
fn sign_up_log_in_and_notes_only_their_owner_can_touch() {
    let app = example_app("");
    let server = app.serve("dev", &[]);

    let ada = send(
        &server,
        "POST",
        "/api/auth/signup",
        "",
        r#"{"email":"Ada@example.com","password":"correct horse"}"#,
    );
    assert_eq!(ada.status, 201, "{}", ada.text());
    assert_eq!(ada.json()["email"], "ada@example.com");
    let set_cookie = ada.header_all("set-cookie").join("\n");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    let again = send(
        &server,
        "POST",
        "/api/auth/signup",
        "",
        r#"{"email":"ada@example.com","password":"another one"}"#,
    );
    assert_eq!(again.status, 409);

    let wrong = send(
        &server,
        "POST",
        "/api/auth/login",
        "",
        r#"{"email":"ada@example.com","password":"nope nope"}"#,
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "wrong email or password");
    let login = send(
        &server,
        "POST",
        "/api/auth/login",
        "",
        r#"{"email":"ada@example.com","password":"correct horse"}"#,
    );
    assert_eq!(login.status, 200, "{}", login.text());
    let ada_session = cookie(&login, "session");
    assert_eq!(
        send(&server, "GET", "/api/auth/me", &ada_session, "").json()["email"],
        "ada@example.com"
    );

    assert_eq!(send(&server, "GET", "/api/notes", "", "").status, 401);
    let created = send(
        &server,
        "POST",
        "/api/notes",
        &ada_session,
        r#"{"title":"Groceries","body":"milk"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let note = created.json();
    assert_eq!(note["title"], "Groceries");
    let url = format!("/api/notes/{}", note["id"]);

    let updated = send(
        &server,
        "PUT",
        &url,
        &ada_session,
        r#"{"body":"milk, eggs"}"#,
    );
    assert_eq!(updated.json()["body"], "milk, eggs", "{}", updated.text());
    assert_eq!(updated.json()["title"], "Groceries");

    // Bob cannot see, change or delete Ada's note.
    let bob = send(
        &server,
        "POST",
        "/api/auth/signup",
        "",
        r#"{"email":"bob@example.com","password":"hunter2hunter2"}"#,
    );
    let bob_session = cookie(&bob, "session");
    assert_eq!(
        send(&server, "GET", "/api/notes", &bob_session, "").json(),
        json!([])
    );
    for method in ["GET", "PUT", "DELETE"] {
        let response = send(&server, method, &url, &bob_session, "{}");
        assert_eq!(response.status, 404, "{method}: {}", response.text());
    }
    // A tampered session is no session.
    let tampered = format!("{}x", ada_session);
    assert_eq!(
        send(&server, "GET", "/api/notes", &tampered, "").status,
        401
    );

    assert_eq!(send(&server, "DELETE", &url, &ada_session, "").status, 204);
    assert_eq!(send(&server, "GET", &url, &ada_session, "").status, 404);
    let logout = send(&server, "POST", "/api/auth/logout", &ada_session, "");
    assert_eq!(logout.status, 204);
    assert!(cookie(&logout, "session").ends_with('='));
}

/// A one-message SMTP sink on `listener`: the DATA of the first message it gets (empty if
/// none comes within the test deadline).
fn smtp_sink(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let started = std::time::Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if started.elapsed() < support::DEADLINE => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(_) => return String::new(),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut data = String::new();
        let _ = writer.write_all(b"220 sink ESMTP\r\n");
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let command = line.trim_end().to_ascii_uppercase();
            line.clear();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250 sink\r\n"
            } else if command == "DATA" {
                let _ = writer.write_all(b"354 go\r\n");
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                b"250 queued\r\n"
            } else if command == "QUIT" {
                let _ = writer.write_all(b"221 bye\r\n");
                break;
            } else {
                b"250 ok\r\n"
            };
            let _ = writer.write_all(reply);
        }
        data
    })
}

fn contact_app(port: u16) -> TestApp {
    example_app(&format!(
        "SMTP_URL=smtp://127.0.0.1:{port}\nMAIL_FROM=\"Site <noreply@example.com>\"\nCONTACT_TO=team@example.com\n"
    ))
}

const CONTACT: &str = r#"{"name":"Ada <script>","email":"ada@example.com","message":"Hi & bye"}"#;

#[test]
fn the_contact_form_answers_at_once_and_a_job_sends_the_mail() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = smtp_sink(listener);
    let app = contact_app(port);
    let server = app.serve("dev", &[]);
    let response = send(&server, "POST", "/api/contact", "", CONTACT);
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(response.json(), json!({ "queued": true }));
    let data = sink.join().unwrap();
    assert!(data.contains("To: team@example.com"), "{data}");
    assert!(data.contains("Reply-To: ada@example.com"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Ada &lt;script&gt;"), "{data}");
}

#[test]
fn the_contact_mail_is_retried_until_smtp_is_back() {
    // A port with nothing listening: the first attempt is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = contact_app(port);
    let server = app.serve("dev", &[]);
    let response = send(&server, "POST", "/api/contact", "", CONTACT);
    assert_eq!(response.status, 202, "{}", response.text());
    server.wait_for_log_line("the failed attempt", |l| {
        l.contains("job send_mail") && l.contains("will retry")
    });
    // SMTP is back: a later attempt delivers the mail.
    let sink = smtp_sink(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let data = sink.join().unwrap();
    assert!(data.contains("To: team@example.com"), "{data}");
}

#[test]
fn the_weather_route_calls_the_api_with_the_key_from_env() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let body =
            r#"{"name":"Paris","main":{"temp":21.5},"weather":[{"description":"clear sky"}]}"#;
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        String::from_utf8_lossy(&head).into_owned()
    });
    let app = example_app(&format!(
        "WEATHER_API_KEY=weather-key-123\nWEATHER_API_URL=http://127.0.0.1:{port}\n"
    ));
    let server = app.serve("dev", &[]);
    let response = server.get("/api/weather?city=Paris");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({ "city": "Paris", "temp_c": 21.5, "description": "clear sky" })
    );
    let request = upstream.join().unwrap();
    assert!(
        request.starts_with("GET /data/2.5/weather?units=metric&q=Paris&appid=weather-key-123 "),
        "{request}"
    );
    assert_eq!(server.get("/api/weather?city=a%26b").status, 400);
}

/// Signs up `email` and returns the `session=...` cookie.
fn signed_up(server: &Server, email: &str) -> String {
    let body = format!(r#"{{"email":"{email}","password":"correct horse"}}"#);
    let response = send(server, "POST", "/api/auth/signup", "", &body);
    assert_eq!(response.status, 201, "{}", response.text());
    cookie(&response, "session")
}

fn assert_client_error(response: &Response, status: u16, error: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    let body = response.json();
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains(error)),
        "{what}: {body}"
    );
}

#[test]
fn ordinary_bad_input_is_a_4xx_with_a_message() {
    let app = example_app("WEATHER_API_KEY=k\nWEATHER_API_URL=http://127.0.0.1:1\n");
    let server = app.serve("dev", &[]);
    let no_body = |method: &str, path: &str| server.request(method, path, &[], b"");

    for id in ["abc", "0", "-3", "99999999999999999999", "4.5"] {
        let path = format!("/api/users/{id}");
        let what = format!("GET {path}");
        assert_client_error(&no_body("GET", &path), 400, "not a positive integer", &what);
    }
    // The README's promise: a DELETE that returns nothing is a 204.
    let response = no_body("DELETE", "/api/users/42");
    assert_eq!(response.status, 204, "{}", response.text());
    assert!(response.body.is_empty());

    for path in ["/api/auth/signup", "/api/auth/login", "/api/contact"] {
        let what = format!("POST {path} without a body");
        assert_client_error(&no_body("POST", path), 400, "JSON object body", &what);
        let response = server.request("POST", path, &[("content-type", "text/plain")], b"hi");
        assert_client_error(&response, 400, "JSON object body", &what);
        let response = send(&server, "POST", path, "", "[1, 2]");
        assert_client_error(&response, 400, "JSON object body", &what);
        let response = send(&server, "POST", path, "", "{}");
        assert_client_error(&response, 400, "is required", &what);
    }
    let response = send(
        &server,
        "POST",
        "/api/auth/signup",
        "",
        r#"{"email":5,"password":"correct horse"}"#,
    );
    assert_client_error(&response, 422, "email must be a string", "signup, email 5");
    let response = send(
        &server,
        "POST",
        "/api/auth/login",
        "",
        r#"{"email":"a@example.com","password":["x"]}"#,
    );
    assert_client_error(
        &response,
        422,
        "password must be a string",
        "login, password [x]",
    );

    assert_client_error(&server.get("/api/greet"), 400, "name is required", "greet");
    let response = server.get("/api/greet?name=a&name=b");
    assert_client_error(&response, 422, "name must be a string", "greet twice");

    let session = signed_up(&server, "ada@example.com");
    let response = send(&server, "POST", "/api/notes", &session, "");
    assert_client_error(&response, 400, "title is required", "a note without a body");
    let response = send(&server, "POST", "/api/notes", &session, r#"{"title":5}"#);
    assert_client_error(&response, 422, "title must be a string", "a note titled 5");
    let created = send(&server, "POST", "/api/notes", &session, r#"{"title":"t"}"#);
    assert_eq!(created.status, 201, "{}", created.text());
    let url = format!("/api/notes/{}", created.json()["id"]);
    let response = server.request("PUT", &url, &[("cookie", &session)], b"");
    assert_client_error(&response, 400, "JSON object body", "PUT without a body");
    let response = send(&server, "PUT", &url, &session, r#"{"body":{"a":1}}"#);
    assert_client_error(&response, 422, "body must be a string", "PUT body a map");
    let response = send(&server, "GET", "/api/notes/abc", &session, "");
    assert_client_error(
        &response,
        400,
        "not a positive integer",
        "GET /api/notes/abc",
    );

    let response = server.get("/api/weather?city=a&city=b");
    assert_client_error(&response, 400, "give one city", "two cities");
    let response = server.get("/api/weather?city=Paris");
    assert_client_error(&response, 502, "did not answer", "weather service down");
}

/// Every example route, every method, odd bodies, with and without a session: never a 500
/// (the weather route may say 502: its service is down in this test).
#[test]
fn no_example_route_answers_500_to_odd_input() {
    let app = example_app("WEATHER_API_KEY=k\nWEATHER_API_URL=http://127.0.0.1:1\n");
    let server = app.serve("start", &[]);
    let session = signed_up(&server, "sweep@example.com");
    let paths = [
        "/api/hello",
        "/api/echo",
        "/api/users/abc",
        "/api/users/7",
        "/api/files/a/b",
        "/api/legacy",
        "/api/greet?name=x",
        "/api/greet?name=",
        "/api/auth/signup",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/notes",
        "/api/notes/abc",
        "/api/notes/1",
        "/api/contact",
        "/api/weather?city=",
        "/api/weather",
    ];
    let bodies: [(&str, &str); 9] = [
        ("", ""),
        ("application/json", ""),
        ("application/json", "null"),
        ("application/json", "[]"),
        ("application/json", "5"),
        ("application/json", "{}"),
        (
            "application/json",
            r#"{"email":5,"password":5,"title":5,"body":5,"name":5,"message":5}"#,
        ),
        ("text/plain", "hello"),
        ("application/x-www-form-urlencoded", "title=a&title=b"),
    ];
    for path in paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            for (content_type, body) in bodies {
                for cookie in ["", session.as_str()] {
                    let mut headers = Vec::new();
                    if !content_type.is_empty() {
                        headers.push(("content-type", content_type));
                    }
                    if !cookie.is_empty() {
                        headers.push(("cookie", cookie));
                    }
                    let response = server.request(method, path, &headers, body.as_bytes());
                    let allowed = response.status < 500
                        || (path.starts_with("/api/weather") && response.status == 502);
                    assert!(
                        allowed,
                        "{method} {path} ({content_type} {body:?}, session: {}): {} {}\n{}",
                        !cookie.is_empty(),
                        response.status,
                        response.text(),
                        server.log_text()
                    );
                }
            }
        }
    }
}

#[test]
fn the_page_is_served_and_bad_input_is_a_4xx_never_a_500() {
    let app = example_app("");
    let server = app.serve("start", &[]);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("<button id=\"signup\""),
        "{}",
        page.text()
    );
    let signup = send(
        &server,
        "POST",
        "/api/auth/signup",
        "",
        r#"{"email":"ada@example.com","password":"correct horse"}"#,
    );
    let session = cookie(&signup, "session");
    for (method, path, body) in [
        ("POST", "/api/notes", r#""just a string""#),
        ("POST", "/api/notes", "[1, 2]"),
        ("POST", "/api/notes", r#"{"title": 5}"#),
        ("POST", "/api/notes", r#"{"title": "ok", "body": [1]}"#),
        ("POST", "/api/notes", "{}"),
        ("GET", "/api/notes/abc", ""),
        ("GET", "/api/notes/-1", ""),
        ("GET", "/api/notes/99999999999999999999999", ""),
        ("PUT", "/api/notes/1", r#""text""#),
        ("POST", "/api/auth/login", "[]"),
        ("POST", "/api/auth/signup", r#"{"email": 1, "password": 2}"#),
        ("POST", "/api/notes", "{not json"),
    ] {
        let response = send(&server, method, path, &session, body);
        assert!(
            (400..500).contains(&response.status),
            "{method} {path} {body}: {} {}",
            response.status,
            response.text()
        );
    }
    // The middleware lets nobody without a session through, whatever the method.
    for method in ["GET", "POST", "PUT", "DELETE"] {
        assert_eq!(
            send(&server, method, "/api/notes/1", "", "{}").status,
            401,
            "{method}"
        );
    }
}

fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[test]
fn the_webhook_checks_the_signature_over_the_raw_body() {
    let app = example_app("WEBHOOK_SECRET=whsec-test-0123456789\n");
    let server = app.serve("start", &[]);
    // Odd spacing on purpose: the signature is over these bytes, not a re-encoding.
    let body = br#"{ "event" : "paid",  "amount": 12 }"#;
    let good = signature("whsec-test-0123456789", body);
    let post = |headers: &[(&str, &str)], body: &[u8]| {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        server.request("POST", "/api/webhook", &all, body)
    };
    let ok = post(&[("x-signature", &good)], body);
    assert_eq!((ok.status, ok.json()), (200, json!({ "received": "paid" })));
    let wrong = post(&[("x-signature", &signature("other", body))], body);
    assert_eq!(wrong.status, 401);
    let tampered = post(
        &[("x-signature", &good)],
        br#"{ "event" : "paid",  "amount": 99 }"#,
    );
    assert_eq!(tampered.status, 401);
    assert_eq!(post(&[], body).status, 400);
    let not_an_event = br#"[1,2]"#;
    let signed = signature("whsec-test-0123456789", not_an_event);
    assert_eq!(post(&[("x-signature", &signed)], not_an_event).status, 422);
    assert_eq!(post(&[("x-signature", &good)], b"{nope").status, 400);
}
