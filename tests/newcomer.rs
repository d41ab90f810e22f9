//! The mistakes of a first hour, each answered with what is wrong and what to do: a wrong
//! folder, a busy port, a broken route in `routes`, a migration added while `dev` runs.

use crate::support;

use std::net::TcpListener;
use std::process::Command;

use support::{bin, run_with_deadline, Output, TestApp};

fn printed(output: &Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// Runs `rhapi <args>` (exactly these) until it exits.
fn rhapi(args: &[&str], cwd: &std::path::Path) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(cwd);
    run_with_deadline(cmd)
}

#[test]
fn a_folder_without_pages_api_is_an_error_that_points_at_the_app() {
    let app = TestApp::new();
    app.write("pages/api/hello.rhai", "fn GET() { 1 }\n");
    for command in ["routes", "check", "dev", "start", "test", "openapi"] {
        let output = rhapi(&[command, "pages", "--port", "0"], app.path());
        let output = if output.stderr.contains("unexpected argument") {
            rhapi(&[command, "pages"], app.path())
        } else {
            output
        };
        let text = printed(&output);
        assert_eq!(output.status.code(), Some(1), "{command}: {text}");
        assert!(
            text.contains("no pages/api folder in pages"),
            "{command}: {text}"
        );
        assert!(
            text.contains("did you mean the app folder ."),
            "{command}: {text}"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let output = rhapi(&["check"], empty.path());
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("no pages/api folder in ."), "{text}");
    assert!(text.contains("rhapi new"), "{text}");
}

#[test]
fn a_busy_port_names_the_port_and_the_option() {
    let app = TestApp::new();
    app.write("pages/api/hello.rhai", "fn GET() { 1 }\n");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = app.run_to_exit("dev", &["--port", &port, "--hostname", "127.0.0.1"]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("port {port}")), "{text}");
    assert!(text.contains("Address already in use"), "{text}");
    assert!(text.contains("--port"), "{text}");
}

#[test]
fn check_and_routes_do_not_warn_about_unset_env_example_keys() {
    let app = TestApp::new();
    app.write("pages/api/hello.rhai", "fn GET() { 1 }\n");
    app.write(".env.example", "RHAPI_T_NEVER_SET_KEY=x\n");
    for command in ["check", "routes"] {
        let output = app.run(command);
        let text = printed(&output);
        assert_eq!(output.status.code(), Some(0), "{command}: {text}");
        assert!(!text.contains("RHAPI_T_NEVER_SET_KEY"), "{command}: {text}");
    }
}

#[test]
fn routes_lists_a_broken_route_and_exits_0_while_check_fails() {
    let app = TestApp::new();
    app.write("pages/api/hello.rhai", "fn GET() { 1 }\n");
    app.write("pages/api/bad.rhai", "fn GET() {\n    let x = ;\n}\n");
    let output = app.run("routes");
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
    let line = output
        .stdout
        .lines()
        .find(|l| l.contains("bad.rhai"))
        .unwrap_or_else(|| panic!("{}", output.stdout));
    assert!(line.contains("error"), "{line}");
    assert!(
        output.stderr.contains("pages/api/bad.rhai:2:13"),
        "{}",
        output.stderr
    );
    assert_eq!(app.run("check").status.code(), Some(1));
}

#[test]
fn dev_applies_a_migration_added_while_it_runs() {
    let app = TestApp::new();
    app.write(
        "migrations/001_a.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\n",
    );
    app.write(
        "pages/api/b.rhai",
        "fn GET() { db::query(\"SELECT count(*) AS n FROM b\", []) }\n",
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/b").status, 500);
    app.write(
        "migrations/002_b.sql",
        "CREATE TABLE b (id INTEGER PRIMARY KEY);\n",
    );
    server.wait_for_log("applied migration 002_b.sql");
    let response = server.poll_until("/api/b", |r| r.status == 200);
    assert_eq!(response.json(), serde_json::json!([{ "n": 0 }]));
    // An applied migration edited: said, not re-run.
    app.write(
        "migrations/002_b.sql",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, x TEXT);\n",
    );
    server.wait_for_log("migrations/002_b.sql changed but was applied before");
}

#[test]
fn start_says_rhapi_migrate_applies_a_new_migration() {
    let app = TestApp::new();
    app.write("migrations/001_a.sql", "CREATE TABLE a (id INTEGER);\n");
    app.write("pages/api/hello.rhai", "fn GET() { 1 }\n");
    let server = app.serve("start", &[]);
    app.write("migrations/002_b.sql", "CREATE TABLE b (id INTEGER);\n");
    server.wait_for_log("run `rhapi migrate`");
}

#[test]
fn check_warns_about_a_last_statement_that_drops_its_value() {
    let app = TestApp::new();
    app.write(
        "pages/api/t.rhai",
        "fn GET() {\n    try { #{ ok: true } } catch (e) { #{ ok: false } }\n}\nfn POST(req) {\n    if req.body.x == 1 { #{ one: true } }\n}\n",
    );
    let output = app.run("check");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("ok: 1 routes compiled"), "{text}");
    assert!(
        text.contains("warning: pages/api/t.rhai:2:5: fn GET ends with try/catch")
            && text.contains("use `return` inside it"),
        "{text}"
    );
    assert!(
        text.contains("warning: pages/api/t.rhai:5:5: fn POST ends with an `if` without `else`"),
        "{text}"
    );
    // And it is what the warning says: the try/catch route answers 204.
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/t").status, 204);
}
