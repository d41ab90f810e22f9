use crate::support;

use support::TestApp;

#[test]
fn hello_answers_json() {
    let app = TestApp::fixture("basic");
    let server = app.serve("dev", &[]);
    let response = server.get("/api/hello");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        response.json(),
        serde_json::json!({ "message": "Hello from API route!" })
    );
}

/// The server keeps its heap on small pages (docs/design.md, "Memory budget"): with huge
/// pages an idle server held 10 MiB more. Linux (6.x) reports the per-process switch in
/// /proc/<pid>/status.
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let app = TestApp::fixture("basic");
    let server = app.serve("start", &[]);
    assert_eq!(server.get("/api/hello").status, 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("this kernel shows no THP_enabled line in /proc/<pid>/status");
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
}
