//! The starter app's commented admin guard (`src/scaffold/pages/api/_middleware.rhai`), once
//! uncommented: it refuses every request under /api/admin while `ADMIN_KEY` is unset, and
//! lets in only the header that equals the key.

use crate::support;

use std::path::Path;

use support::TestApp;

/// The starter's middleware with the guard's comment marks taken off.
fn uncommented_guard() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("src/scaffold/pages/api/_middleware.rhai"))
        .expect("the starter middleware");
    let mut out = String::new();
    let mut in_guard = false;
    for line in text.lines() {
        in_guard |= line.contains("// if req.path.starts_with(\"/api/admin\")");
        match line.strip_prefix("    // ") {
            Some(code) if in_guard => out.push_str(&format!("    {code}\n")),
            _ => out.push_str(&format!("{line}\n")),
        }
    }
    assert!(out.contains("\n    if req.path.starts_with"), "{out}");
    out
}

fn guarded_app() -> TestApp {
    let app = TestApp::new();
    app.write("pages/api/_middleware.rhai", &uncommented_guard());
    app.write(
        "pages/api/admin/stats.rhai",
        "fn GET() { #{ secret: 42 } }\n",
    );
    app.write("pages/api/open.rhai", "fn GET() { #{ open: true } }\n");
    app
}

#[test]
fn without_the_key_nobody_gets_in() {
    let app = guarded_app();
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/admin/stats").status, 401);
    for given in ["", "anything"] {
        let response = server.request("GET", "/api/admin/stats", &[("x-api-key", given)], b"");
        assert_eq!(response.status, 401, "{given:?}: {}", response.text());
    }
    assert_eq!(server.get("/api/open").status, 200);
}

#[test]
fn with_the_key_only_the_key_gets_in() {
    let app = guarded_app();
    app.write(".env", "ADMIN_KEY=the-admin-key-1234\n");
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/admin/stats").status, 401);
    let wrong = server.request(
        "GET",
        "/api/admin/stats",
        &[("x-api-key", "the-admin-key-123")],
        b"",
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let right = server.request(
        "GET",
        "/api/admin/stats",
        &[("x-api-key", "the-admin-key-1234")],
        b"",
    );
    assert_eq!(right.status, 200, "{}", right.text());
    assert_eq!(right.json()["secret"], 42);
}
