//! `rhapi openapi`: an OpenAPI 3.1 description of the routes, checked for content here and
//! for validity with `openapi-spec-validator` (from PyPI; `.ci/run` installs it).

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use support::{bin, run_with_deadline, TestApp};

fn describe(dir: &Path) -> Value {
    let mut cmd = Command::new(bin());
    cmd.arg("openapi").arg(dir);
    let output = run_with_deadline(cmd);
    assert_eq!(output.status.code(), Some(0), "{}", output.stderr);
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", output.stdout))
}

#[test]
fn paths_parameters_operations_docs_and_thrown_statuses() {
    let app = TestApp::fixture("openapi");
    let doc = describe(app.path());
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "/api/docs",
            "/api/docs/{slug}",
            "/api/files/{path}",
            "/api/items/{id}",
            "/api/legacy",
            "/api/notes"
        ]
    );

    let item = &paths["/api/items/{id}"];
    assert_eq!(item["parameters"][0]["name"], "id");
    assert_eq!(item["parameters"][0]["in"], "path");
    assert_eq!(item["parameters"][0]["required"], true);
    assert_eq!(item["get"]["summary"], "One item by id.");
    assert!(item["get"]["description"]
        .as_str()
        .unwrap()
        .starts_with("Answers 404 when there is no such item."));
    let responses = item["get"]["responses"].as_object().unwrap();
    assert!(responses.contains_key("200"), "{responses:?}");
    assert_eq!(responses["404"]["description"], "no such item");
    // Thrown by the module function it calls.
    assert_eq!(responses["401"]["description"], "sign in first");
    assert!(
        item["delete"].get("summary").is_none(),
        "{}",
        item["delete"]
    );
    assert!(item["delete"]["responses"]["401"].is_object());
    // `DELETE` ends in `;` and sends nothing: 204, not 200.
    let statuses = |operation: &Value| -> Vec<String> {
        let mut keys: Vec<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(statuses(&item["delete"]), ["204", "401"]);
    assert_eq!(statuses(&item["get"]), ["200", "401", "404"]);

    let files = &paths["/api/files/{path}"];
    assert!(files["parameters"][0]["description"]
        .as_str()
        .unwrap()
        .contains("catch-all"));
    assert!(paths["/api/docs"].get("parameters").is_none());
    assert_eq!(paths["/api/docs/{slug}"]["parameters"][0]["name"], "slug");

    let legacy = paths["/api/legacy"].as_object().unwrap();
    for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
        assert!(
            legacy.contains_key(method),
            "handler route without {method}"
        );
    }
    assert_eq!(
        legacy["get"]["summary"],
        json!("Every method, Next.js style.")
    );
}

/// Statuses read from the code: `res.status(N)`, a function that returns nothing, and the
/// `throw` of the middleware in front of the route.
#[test]
fn statuses_from_res_status_empty_returns_and_middleware() {
    let app = TestApp::fixture("openapi");
    let doc = describe(app.path());
    let notes = &doc["paths"]["/api/notes"];
    let statuses = |method: &str| -> Vec<String> {
        let mut keys: Vec<String> = notes[method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("no {method} in {notes}"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    // 201 set outside any block replaces 200; 422 set in a branch is one more.
    assert_eq!(statuses("post"), ["201", "401", "422"]);
    assert_eq!(
        notes["post"]["responses"]["401"]["description"],
        "missing token"
    );
    assert_eq!(
        notes["post"]["responses"]["201"]["description"],
        "set with `res.status(201)`"
    );
    assert_eq!(statuses("get"), ["200", "401"]);
    assert_eq!(statuses("delete"), ["204", "401"]);
    // The middleware covers notes/ only.
    assert!(doc["paths"]["/api/legacy"]["get"]["responses"]
        .get("401")
        .is_none());
}

/// Runs openapi-spec-validator on `doc`; `None` when it is not installed.
fn validate(doc: &Value) -> Option<Result<(), String>> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(file.path())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if text.contains("No module named") {
        return None;
    }
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(text)
    })
}

#[test]
fn the_description_is_valid_openapi_3_1() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = TestApp::fixture("openapi");
    for dir in [root, fixture.path()] {
        let doc = describe(dir);
        match validate(&doc) {
            Some(Ok(())) => {}
            Some(Err(text)) => panic!("{}: invalid OpenAPI:\n{text}", dir.display()),
            None if std::env::var_os("CI").is_some() => {
                panic!("openapi-spec-validator is missing under CI: .ci/run must install it (pip)")
            }
            None => {
                eprintln!(
                    "openapi-spec-validator missing (pip install openapi-spec-validator): validity not checked"
                );
                return;
            }
        }
    }
}

#[test]
fn rate_limited_routes_document_429() {
    let app = TestApp::new();
    app.write(
        "rhapi.toml",
        "[[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 5\nper = \"1m\"\n",
    );
    app.write("pages/api/auth/login.rhai", "fn POST() { #{ ok: true } }\n");
    app.write(
        "pages/api/search.rhai",
        "const CONFIG = #{ rate_limit: #{ limit: 10, per: \"1m\" } };\nfn GET() { [] }\n",
    );
    app.write("pages/api/free.rhai", "fn GET() { [] }\n");
    let doc = describe(app.path());
    let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
    assert!(
        responses("/api/auth/login", "post").get("429").is_some(),
        "{doc}"
    );
    assert!(
        responses("/api/search", "get").get("429").is_some(),
        "{doc}"
    );
    assert!(responses("/api/free", "get").get("429").is_none(), "{doc}");
}
