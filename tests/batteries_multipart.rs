//! `multipart/form-data` bodies: fields, files as blobs, repeated names, malformed bodies.

use crate::support;

use serde_json::json;
use support::{Server, TestApp};

const BOUNDARY: &str = "----rhapiTestBoundary7MA4YWxk";

/// One part: name, filename (file parts), content type, content.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A multipart body made of `parts`.
fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, filename, content_type, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(filename) = filename {
            disposition.push_str(&format!("; filename=\"{filename}\""));
        }
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn post(server: &Server, path: &str, body: &[u8]) -> support::Response {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    server.request("POST", path, &[("content-type", &content_type)], body)
}

fn upload_app() -> TestApp {
    let app = TestApp::new();
    app.write(
        "pages/api/upload.rhai",
        r#"fn POST(req) {
            let f = req.body.avatar;
            #{ name: req.body.name, tags: req.body.tags,
               file: #{ filename: f.filename, content_type: f.content_type, size: f.size,
                        is_blob: type_of(f.data) == "blob", first: f.data[0], last: f.data[-1] } }
        }"#,
    );
    app
}

#[test]
fn fields_files_and_repeated_names() {
    let app = upload_app();
    let server = app.serve("dev", &[]);
    let png: &[u8] = &[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0xff];
    let body = multipart(&[
        ("name", None, None, "Zoë".as_bytes()),
        ("tags", None, None, b"a"),
        ("tags", None, None, b"b"),
        ("avatar", Some("me.png"), Some("image/png"), png),
    ]);
    let response = post(&server, "/api/upload", &body);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({
            "name": "Zoë",
            "tags": ["a", "b"],
            "file": { "filename": "me.png", "content_type": "image/png", "size": 10,
                      "is_blob": true, "first": 0x89, "last": 0xff }
        })
    );
}

#[test]
fn an_uploaded_file_can_be_stored_and_sent_back() {
    let app = TestApp::new();
    app.write(
        "pages/api/files.rhai",
        r#"
fn POST(req) {
    db::execute("CREATE TABLE IF NOT EXISTS files (name TEXT, data BLOB)", []);
    db::execute("INSERT INTO files VALUES (?, ?)", [req.body.file.filename, req.body.file.data]);
    #{ stored: req.body.file.size }
}
fn GET(req, res) {
    let row = db::query_one("SELECT data FROM files WHERE name = ?", [req.query.name]);
    res.set_header("content-type", "application/octet-stream").send(row.data);
}
"#,
    );
    let server = app.serve("dev", &[]);
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let body = multipart(&[("file", Some("bytes.bin"), None, &data)]);
    let response = post(&server, "/api/files", &body);
    assert_eq!(
        response.json(),
        json!({ "stored": 3000 }),
        "{}",
        response.text()
    );
    let back = server.get("/api/files?name=bytes.bin");
    assert_eq!(back.status, 200);
    assert_eq!(back.body, data);
}

#[test]
fn malformed_multipart_is_a_400() {
    let app = upload_app();
    let server = app.serve("dev", &[]);
    let good = multipart(&[("name", None, None, b"x")]);
    let cases: Vec<(String, Vec<u8>)> = vec![
        // No closing delimiter.
        (
            format!("multipart/form-data; boundary={BOUNDARY}"),
            good[..good.len() - 12].to_vec(),
        ),
        // No boundary parameter.
        ("multipart/form-data".into(), good.clone()),
        // A boundary that is not in the body.
        ("multipart/form-data; boundary=other".into(), good.clone()),
        // A part without Content-Disposition.
        (
            format!("multipart/form-data; boundary={BOUNDARY}"),
            format!("--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n")
                .into_bytes(),
        ),
        // A text field that is not UTF-8.
        (
            format!("multipart/form-data; boundary={BOUNDARY}"),
            multipart(&[("name", None, None, &[0xff, 0xfe])]),
        ),
    ];
    for (content_type, body) in cases {
        let response = server.request(
            "POST",
            "/api/upload",
            &[("content-type", &content_type)],
            &body,
        );
        assert_eq!(response.status, 400, "{content_type}: {}", response.text());
        assert_eq!(response.json(), json!({ "error": "Bad Request" }));
    }
    server.sync_log();
    assert!(
        !server.log_text().contains("pages/api/upload.rhai:"),
        "the script never ran"
    );
}

#[test]
fn multipart_bodies_obey_the_body_limit() {
    let app = upload_app();
    let server = app.serve("dev", &["--body-limit", "1kb"]);
    let big = vec![b'x'; 2048];
    let body = multipart(&[("avatar", Some("big.txt"), Some("text/plain"), &big)]);
    let response = post(&server, "/api/upload", &body);
    assert_eq!(response.status, 413);
    assert_eq!(response.json(), json!({ "error": "Payload Too Large" }));
}
