//! `mail::send` through a real SMTP exchange with a local sink (a thread of this test that
//! speaks SMTP and keeps what it receives).

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver};

use serde_json::json;
use support::TestApp;

/// What the sink received in one SMTP session.
#[derive(Debug, Default)]
struct Received {
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

/// Accepts SMTP sessions on a free port; each finished session is sent on the channel.
fn smtp_sink() -> (u16, Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut got = Received::default();
                let mut say = |line: &str| {
                    let _ = writer.write_all(format!("{line}\r\n").as_bytes());
                };
                say("220 sink.test ESMTP ready");
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    let command = line.trim_end().to_string();
                    line.clear();
                    let upper = command.to_ascii_uppercase();
                    if upper.starts_with("EHLO") {
                        say("250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME");
                    } else if upper.starts_with("AUTH PLAIN") {
                        got.auth = command.split_whitespace().nth(2).map(str::to_string);
                        say("235 2.7.0 Authentication successful");
                    } else if upper.starts_with("MAIL FROM:") {
                        got.mail_from = command[10..].trim().to_string();
                        say("250 OK");
                    } else if upper.starts_with("RCPT TO:") {
                        got.rcpt_to.push(command[8..].trim().to_string());
                        say("250 OK");
                    } else if upper == "DATA" {
                        say("354 End data with <CR><LF>.<CR><LF>");
                        let mut data = String::new();
                        loop {
                            let mut data_line = String::new();
                            if reader.read_line(&mut data_line).unwrap_or(0) == 0
                                || data_line == ".\r\n"
                            {
                                break;
                            }
                            data.push_str(&data_line);
                        }
                        got.data = data;
                        say("250 OK queued");
                    } else if upper == "QUIT" {
                        say("221 bye");
                        break;
                    } else {
                        say("250 OK");
                    }
                }
                let _ = sender.send(got);
            });
        }
    });
    (port, receiver)
}

#[test]
fn sends_a_multipart_alternative_message_with_credentials() {
    let (port, received) = smtp_sink();
    let app = TestApp::new();
    app.write(
        ".env",
        &format!("SMTP_URL=smtp://mailer:s3cret-pass@127.0.0.1:{port}\n"),
    );
    app.write(
        "pages/api/contact.rhai",
        r#"fn POST(req) {
            mail::send(#{
                to: ["ada@example.com", "Bob <bob@example.com>"],
                from: "Site <noreply@example.com>",
                subject: "Hello " + req.body.name,
                text: "Plain body",
                html: "<p>HTML body</p>",
            });
            #{ sent: true }
        }"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.post_json("/api/contact", r#"{"name":"Ada"}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({ "sent": true }));

    let got = received
        .recv_timeout(support::DEADLINE)
        .expect("an SMTP session");
    assert_eq!(got.mail_from, "<noreply@example.com>");
    assert_eq!(got.rcpt_to, vec!["<ada@example.com>", "<bob@example.com>"]);
    // AUTH PLAIN carries "\0user\0password", base64.
    assert_eq!(got.auth.as_deref(), Some("AG1haWxlcgBzM2NyZXQtcGFzcw=="));
    let data = &got.data;
    assert!(data.contains("Subject: Hello Ada\r\n"), "{data}");
    assert!(
        data.contains("From: Site <noreply@example.com>\r\n"),
        "{data}"
    );
    assert!(
        data.contains("To: ada@example.com, Bob <bob@example.com>\r\n"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: multipart/alternative;"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/html; charset=utf-8"),
        "{data}"
    );
    assert!(data.contains("Plain body"), "{data}");
    assert!(data.contains("<p>HTML body</p>"), "{data}");
}

#[test]
fn a_text_only_message_is_a_single_part() {
    let (port, received) = smtp_sink();
    let app = TestApp::new();
    app.write(
        "pages/api/m.rhai",
        r#"fn GET() { mail::send(#{ to: "ada@example.com", from: "a@example.com", subject: "S", text: "only text" }); }"#,
    );
    let server = app.serve_with_env(
        "dev",
        &[],
        &[("SMTP_URL", &format!("smtp://127.0.0.1:{port}"))],
    );
    assert_eq!(server.get("/api/m").status, 204);
    let got = received
        .recv_timeout(support::DEADLINE)
        .expect("an SMTP session");
    assert_eq!(got.auth, None);
    assert!(
        got.data.contains("Content-Type: text/plain; charset=utf-8"),
        "{}",
        got.data
    );
    assert!(!got.data.contains("multipart"), "{}", got.data);
}

#[test]
fn mistakes_and_failures_are_catchable_and_keep_the_password_out() {
    let closed = support::free_port();
    let app = TestApp::new();
    app.write(
        ".env",
        &format!("SMTP_URL=smtp://mailer:s3cret-pass@127.0.0.1:{closed}\n"),
    );
    app.write(
        "pages/api/m.rhai",
        r#"fn GET() {
            let errors = [];
            for mail in [
                #{ to: "ada@example.com", from: "a@example.com", subject: "S", text: "x" },
                #{ to: "not an address", from: "a@example.com", text: "x" },
                #{ from: "a@example.com", text: "x" },
                #{ to: "ada@example.com", from: "a@example.com" },
            ] {
                try { mail::send(mail); errors.push("sent"); } catch (err) { errors.push(err); }
            }
            errors
        }"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/m");
    assert_eq!(response.status, 200, "{}", response.text());
    let errors: Vec<String> = serde_json::from_value(response.json()).unwrap();
    assert!(
        errors.iter().all(|e| e.starts_with("mail::send: ")),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("'not an address' is not an email address"),
        "{errors:?}"
    );
    assert!(errors[2].contains("to is required"), "{errors:?}");
    assert!(errors[3].contains("text or html is required"), "{errors:?}");
    let all = format!("{errors:?}\n{}", server.log_text());
    assert!(!all.contains("s3cret-pass"), "{all}");
}

#[test]
fn without_smtp_url_sending_is_an_error_that_says_so() {
    let app = TestApp::new();
    app.write(
        "pages/api/m.rhai",
        r#"fn GET() { mail::send(#{ to: "a@example.com", from: "b@example.com", text: "x" }); }"#,
    );
    let server = app.serve_with_env("dev", &[], &[("SMTP_URL", "")]);
    let response = server.get("/api/m");
    assert_eq!(response.status, 500);
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("SMTP_URL is not set"));
}
