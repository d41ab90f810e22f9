//! `rhapi test` and `rhapi new`: the tests of an app run in-process against its routes, and
//! a new app passes its own tests.

use crate::support;

use std::process::Command;

use support::{bin, run_with_deadline, Output, TestApp};

fn printed(output: &Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// `rhapi test <app> <args...>`.
fn rhapi_test(app: &TestApp, args: &[&str]) -> Output {
    app.run_to_exit("test", args)
}

/// An app with one route that echoes, counts in the database, loops on PUT.
fn app_with_route() -> TestApp {
    let app = TestApp::new();
    app.write(
        "pages/api/items.rhai",
        r#"
fn GET(req) { #{ name: req.query.name ?? "none", cookie: req.cookies.c ?? "", header: req.headers["x-h"] ?? "" } }
fn POST(req, res) {
    db::execute("INSERT INTO items (name) VALUES (?)", [req.body.name]);
    res.status(201).cookie("made", "yes").json(db::query("SELECT name FROM items", []));
}
fn PUT() { loop {} }
"#,
    );
    app.write(
        "migrations/001_items.sql",
        "CREATE TABLE items (name TEXT);\n",
    );
    app
}

#[test]
fn passing_tests_print_ok_lines_and_the_totals() {
    let app = app_with_route();
    app.write(
        "tests/items.test.rhai",
        r#"
fn test_get_with_headers_and_cookies() {
    let r = request("GET", "/api/items?name=a", #{ headers: #{ "x-h": "v" }, cookies: #{ c: "k" } });
    assert_eq(r.status, 200);
    assert_eq(r.json, #{ name: "a", cookie: "k", header: "v" });
    assert(r.headers["content-type"].contains("json"));
}
fn test_post_uses_a_fresh_database() {
    let r = request("POST", "/api/items", #{ body: #{ name: "x" } });
    assert_eq(r.status, 201);
    assert_eq(r.json, [#{ name: "x" }]);
    assert_eq(r.cookies.made, "yes");
    assert_ne(r.body, "");
}
fn helper_is_not_a_test() { assert(false); }
"#,
    );
    // A second file gets a database of its own: one row again, not two.
    app.write(
        "tests/more/again.test.rhai",
        r#"fn test_post_again() { assert_eq(request("POST", "/api/items", #{ body: #{ name: "y" } }).json, [#{ name: "y" }]); }"#,
    );
    let output = rhapi_test(&app, &[]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(0), &text);
    for line in [
        "ok    tests/items.test.rhai  test_get_with_headers_and_cookies",
        "ok    tests/items.test.rhai  test_post_uses_a_fresh_database",
        "ok    tests/more/again.test.rhai  test_post_again",
        "3 passed, 0 failed",
    ] {
        assert!(output.stdout.contains(line), "{line} missing:\n{text}");
    }
    assert!(!text.contains("helper_is_not_a_test"), "{text}");
}

fn assert_exit(left: Option<i32>, right: Option<i32>, text: &str) {
    assert!(left == right, "exit {left:?}, expected {right:?}:\n{text}");
}

#[test]
fn a_failing_assert_shows_file_line_and_both_values() {
    let app = app_with_route();
    app.write(
        "tests/fail.test.rhai",
        "fn test_ok() { assert(true); }\n\nfn test_wrong_status() {\n    let r = request(\"GET\", \"/api/items\");\n    assert_eq(r.status, 201);\n}\nfn test_message() { assert(1 > 2, \"one is not above two\"); }\nfn test_ne() { assert_ne(#{ a: 1 }, #{ a: 1 }); }\n",
    );
    let output = rhapi_test(&app, &[]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(1), &text);
    assert!(
        text.contains("FAIL  tests/fail.test.rhai:5:5  test_wrong_status: assert_eq failed"),
        "{text}"
    );
    assert!(text.contains("left:  200"), "{text}");
    assert!(text.contains("right: 201"), "{text}");
    assert!(
        text.contains("tests/fail.test.rhai:7:")
            && text.contains("assertion failed: one is not above two"),
        "{text}"
    );
    assert!(text.contains("assert_ne failed"), "{text}");
    assert!(text.contains("1 passed, 3 failed"), "{text}");
}

#[test]
fn a_syntax_error_in_a_test_file_is_reported_with_file_line_and_column() {
    let app = app_with_route();
    app.write("tests/ok.test.rhai", "fn test_fine() { assert(true); }\n");
    app.write(
        "tests/broken.test.rhai",
        "fn test_a() {\n    let x = ;\n}\n",
    );
    let output = rhapi_test(&app, &[]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(1), &text);
    assert!(text.contains("FAIL  tests/broken.test.rhai:2:13"), "{text}");
    assert!(text.contains("1 passed, 1 failed"), "{text}");
}

#[test]
fn a_test_over_its_budget_fails_with_504() {
    let app = app_with_route();
    app.write(
        "tests/slow.test.rhai",
        "fn test_spins() {\n    let t = timestamp();\n    while t.elapsed < 30.0 {}\n}\nfn test_route_spins() {\n    let r = request(\"PUT\", \"/api/items\");\n    assert_eq(r.status, 200);\n}\n",
    );
    let started = std::time::Instant::now();
    let output = rhapi_test(&app, &["--timeout", "300ms"]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(1), &text);
    assert!(started.elapsed().as_secs() < 15, "{text}");
    let spins = text
        .lines()
        .find(|l| l.contains("test_spins"))
        .unwrap_or_default();
    assert!(spins.starts_with("FAIL") && spins.contains("504"), "{text}");
    let route = text
        .lines()
        .find(|l| l.contains("test_route_spins"))
        .unwrap_or_default();
    assert!(route.starts_with("FAIL"), "{text}");
    assert!(text.contains("left:  504"), "{text}");
}

#[test]
fn filter_runs_only_the_tests_whose_name_contains_it() {
    let app = app_with_route();
    app.write(
        "tests/a.test.rhai",
        "fn test_login_works() { assert(true); }\nfn test_logout_works() { assert(true); }\nfn test_other() { assert(false); }\n",
    );
    let output = rhapi_test(&app, &["log"]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(0), &text);
    assert!(text.contains("test_login_works") && text.contains("test_logout_works"));
    assert!(!text.contains("test_other"), "{text}");
    assert!(text.contains("2 passed, 0 failed"), "{text}");
    // Without the app folder: the one argument is the filter.
    let mut cmd = Command::new(bin());
    cmd.args(["test", "login"]).current_dir(app.path());
    let output = run_with_deadline(cmd);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(0), &text);
    assert!(text.contains("1 passed, 0 failed"), "{text}");
    // A filter that matches nothing ran nothing: a failure.
    let output = rhapi_test(&app, &["nothing-matches"]);
    assert_exit(output.status.code(), Some(1), &printed(&output));
}

#[test]
fn no_tests_is_a_failure() {
    let app = app_with_route();
    let output = rhapi_test(&app, &[]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(1), &text);
    assert!(text.contains("no test files"), "{text}");
    assert!(text.contains("0 passed, 0 failed"), "{text}");
}

#[test]
fn tests_read_env_test_before_env_example_and_never_env() {
    let app = TestApp::new();
    app.write(
        "pages/api/env.rhai",
        "fn GET(req, res, env) { #{ a: env.RHAPI_T_A, b: env.RHAPI_T_B, secret: env.RHAPI_T_SECRET } }\n",
    );
    app.write(".env.example", "RHAPI_T_A=example\nRHAPI_T_B=example\n");
    app.write(".env.test", "RHAPI_T_A=test\n");
    app.write(".env", "RHAPI_T_SECRET=real-secret\n");
    app.write(
        "tests/env.test.rhai",
        "fn test_env() { assert_eq(request(\"GET\", \"/api/env\").json, #{ a: \"test\", b: \"example\", secret: () }); }\n",
    );
    let output = rhapi_test(&app, &[]);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(0), &text);
}

#[test]
fn new_creates_an_app_that_passes_its_tests_and_serves() {
    let parent = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["new", "my-app"]).current_dir(parent.path());
    let output = run_with_deadline(cmd);
    assert_exit(output.status.code(), Some(0), &printed(&output));
    let dir = parent.path().join("my-app");
    for file in [
        "pages/api/hello.rhai",
        "pages/api/_middleware.rhai",
        "public/index.html",
        "migrations/001_messages.sql",
        "tests/hello.test.rhai",
        ".env.example",
        ".gitignore",
        "rhapi.toml",
        "README.md",
        "deploy/rhapi.service",
        "Dockerfile",
        ".dockerignore",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let unit = std::fs::read_to_string(dir.join("deploy/rhapi.service")).unwrap();
    assert!(unit.contains("User=my-app\n"), "{unit}");
    assert!(unit.contains("WorkingDirectory=/srv/my-app\n"), "{unit}");
    let docker = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert!(
        docker.contains("COPY --chmod=0755 my-app.bundle "),
        "{docker}"
    );
    let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    for line in [".env", ".env.local", "data/", "*.bundle"] {
        assert!(gitignore.lines().any(|l| l == line), "{gitignore}");
    }
    let toml = std::fs::read_to_string(dir.join("rhapi.toml")).unwrap();
    for key in [
        "[server]",
        "body_limit",
        "timeout",
        "max_operations",
        "max_in_flight",
        "[public]",
        "dir",
        "spa",
        "[cors]",
        "origins",
        "methods",
        "headers",
        "credentials",
        "max_age",
    ] {
        assert!(toml.contains(key), "{key} missing from rhapi.toml");
    }

    let mut cmd = Command::new(bin());
    cmd.arg("test").current_dir(&dir);
    let output = run_with_deadline(cmd);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(0), &text);
    assert!(text.contains("5 passed, 0 failed"), "{text}");

    let mut cmd = Command::new(bin());
    cmd.arg("check").current_dir(&dir);
    assert_exit(run_with_deadline(cmd).status.code(), Some(0), "check");

    // `cd DIR && rhapi dev` serves it.
    let port = support::free_port();
    let mut cmd = Command::new(bin());
    cmd.args(["dev", "--port", &port.to_string()])
        .current_dir(&dir);
    let server = support::Server::launch_in(cmd, port);
    let response = server.get("/api/hello?name=Ada");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["message"], "Hello, Ada!");
}

#[test]
fn new_refuses_a_folder_that_is_not_empty_and_writes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("taken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("new").arg(&dir);
    let output = run_with_deadline(cmd);
    let text = printed(&output);
    assert_exit(output.status.code(), Some(1), &text);
    assert!(text.contains("is not empty"), "{text}");
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "something was written");
    // An empty folder is fine.
    let empty = parent.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("new").arg(&empty);
    assert_exit(
        run_with_deadline(cmd).status.code(),
        Some(0),
        "new into an empty folder",
    );
}
