mod support;

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
