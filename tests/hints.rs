//! docs/reference.md, "check" (hints): a JavaScript habit gets a hint naming the Rhai form,
//! in `rhapi check` (file:line:col, then the hint), in the `dev` error body (a `hint` key)
//! and in the log line; never on the repository's own apps.

use crate::support;

use std::path::Path;

use support::TestApp;

/// Each habit: a file name, a script with it, where `check` points, and a piece of the hint.
const HABITS: &[(&str, &str, &str, &str)] = &[
    (
        "null",
        "fn GET(req) {\n    if req.query.a == null { return 1; }\n    2\n}\n",
        "2:23",
        "nothing is `()`",
    ),
    (
        "undefined",
        "fn GET(req) {\n    let a = undefined;\n    a\n}\n",
        "2:13",
        "nothing is `()`",
    ),
    (
        "object_json",
        "fn GET(req, res) {\n    res.json({ ok: true })\n}\n",
        "2:18",
        "`#{ a: 1 }`",
    ),
    (
        "object_return",
        "fn GET(req) {\n    return { ok: true };\n}\n",
        "2:16",
        "`#{ a: 1 }`",
    ),
    (
        "arrow",
        "fn GET(req) {\n    [1, 2].map(x => x * 2)\n}\n",
        "2:18",
        "`|x| x.id`",
    ),
    (
        "or_default",
        "fn GET(req) {\n    let page = req.query.page || \"1\";\n    page\n}\n",
        "2:34",
        "`a ?? b`",
    ),
    (
        "ternary",
        "fn GET(req) {\n    let s = req.query.big ? \"big\" : \"small\";\n    s\n}\n",
        "2:27",
        "`if a { b } else { c }`",
    ),
    (
        "function",
        "function GET(req) {\n    1\n}\n",
        "1:10",
        "`fn name(params) { ... }`",
    ),
    (
        "export",
        "export default function handler(req, res) {\n    1\n}\n",
        "1:8",
        "`fn handler(req, res)",
    ),
    (
        "c_for",
        "fn GET(req) {\n    for (let i = 0; i < 3; i++) { }\n    1\n}\n",
        "2:10",
        "`for i in 0..n { ... }`",
    ),
    (
        "single_quote",
        "fn GET(req) {\n    let s = 'hello';\n    s\n}\n",
        "2:13",
        "double quotes",
    ),
    (
        "strict_equals",
        "fn GET(req) {\n    if req.query.a === \"1\" { 1 } else { 2 }\n}\n",
        "2:20",
        "use `==` and `!=`",
    ),
    (
        "length",
        "fn GET(req) {\n    let s = \"abc\";\n    s.length\n}\n",
        "3:7",
        "`len()`",
    ),
    (
        "parse_int",
        "fn GET(req) {\n    parseInt(\"42\")\n}\n",
        "2:5",
        "`parse_int(text)`",
    ),
    (
        "lower",
        "fn GET(req) {\n    \"Ada\".toLowerCase()\n}\n",
        "2:11",
        "`to_lower()`",
    ),
    (
        "includes",
        "fn GET(req) {\n    \"a@b\".includes(\"@\")\n}\n",
        "2:11",
        "`contains(x)`",
    ),
    (
        "console",
        "fn GET(req) {\n    console.log(\"hi\");\n    1\n}\n",
        "2:5",
        "`log::info(value)`",
    ),
    (
        "json",
        "fn GET(req) {\n    JSON.stringify(#{ a: 1 })\n}\n",
        "2:5",
        "`parse_json(text)`",
    ),
    (
        "date",
        "fn GET(req) {\n    #{ at: Date.now() }\n}\n",
        "2:12",
        "`time::now()`",
    ),
    (
        "new",
        "fn GET(req) {\n    let at = new Date();\n    at\n}\n",
        "2:14",
        "no classes or `new`",
    ),
    (
        "async",
        "async fn GET(req) {\n    1\n}\n",
        "1:1",
        "no `async` or `await`",
    ),
    (
        "await",
        "fn GET(req) {\n    let r = await http::get(\"http://127.0.0.1:9/\");\n    r\n}\n",
        "2:13",
        "no `async` or `await`",
    ),
    (
        "global_const",
        "const LIMIT = 10;\nfn GET(req) {\n    LIMIT\n}\n",
        "3:5",
        "`global::NAME`",
    ),
    (
        "backtick",
        "fn GET(req) {\n    let name = \"Ada\";\n    `Hi,\\n\\n${name}`\n}\n",
        "3:5",
        "back-ticks keep backslashes",
    ),
];

fn habits_app() -> TestApp {
    let app = TestApp::new();
    for (name, script, _, _) in HABITS {
        app.write(&format!("pages/api/{name}.rhai"), script);
    }
    app
}

#[test]
fn check_names_each_habit_with_file_line_column_and_hint() {
    let app = habits_app();
    let output = app.run("check");
    let text = output.stderr.clone();
    assert_eq!(output.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    for (name, _, at, hint) in HABITS {
        let place = format!("pages/api/{name}.rhai:{at}:");
        let k = lines
            .iter()
            .position(|l| l.contains(&place))
            .unwrap_or_else(|| panic!("{place} missing:\n{text}"));
        let next = lines.get(k + 1).copied().unwrap_or_default();
        assert!(
            next.starts_with("  hint: ") && next.contains(hint),
            "{name}: the hint after {place}: {next}\n{text}"
        );
    }
}

#[test]
fn a_dev_error_body_and_its_log_line_have_the_hint() {
    let app = habits_app();
    let server = app.serve("dev", &[]);
    for (path, hint) in [
        ("/api/null", "nothing is `()`"),
        ("/api/object_json", "`#{ a: 1 }`"),
        ("/api/parse_int", "`parse_int(text)`"),
        ("/api/length", "`len()`"),
        ("/api/console", "`log::info(value)`"),
        ("/api/global_const", "`global::NAME`"),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 500, "{path}: {}", response.text());
        let body = response.json();
        let shown = body["hint"].as_str().unwrap_or_default();
        assert!(shown.contains(hint), "{path}: {body}");
        assert!(body["error"].is_string() && body["file"].is_string() && body["line"].is_number());
        let logged = server.wait_for_log_line(path, |line| {
            line.contains(&format!("GET {path}:")) && line.contains("(hint: ")
        });
        assert!(logged.contains(hint), "{path}: {logged}");
    }
    // An error that is no habit has no hint key.
    app.write("pages/api/plain.rhai", "fn GET(req) {\n    [1][5]\n}\n");
    let response = server.poll_until("/api/plain", |r| r.text().contains("index"));
    assert!(response.json().get("hint").is_none(), "{}", response.text());
}

#[test]
fn a_habit_in_a_module_is_hinted_at_in_the_module() {
    let app = TestApp::new();
    app.write(
        "pages/api/_lib/util.rhai",
        "fn first(items) {\n    if items == null { return (); }\n    items[0]\n}\n",
    );
    app.write(
        "pages/api/_lib/text.rhai",
        "fn low(s) {\n    s.toLowerCase()\n}\n",
    );
    app.write(
        "pages/api/a.rhai",
        "import \"_lib/util\" as util;\nfn GET() { util::first([1]) }\n",
    );
    app.write(
        "pages/api/b.rhai",
        "import \"_lib/text\" as text;\nfn GET() { text::low(\"A\") }\n",
    );
    let output = app.run("check");
    let text = output.stderr;
    assert!(
        text.contains("error: pages/api/_lib/util.rhai:2:17: ")
            && text.contains("  hint: Rhai has no `null`"),
        "{text}"
    );
    assert!(
        text.contains("warning: pages/api/_lib/text.rhai:2:7: JavaScript habit")
            && text.contains("  hint: use `to_lower()`"),
        "{text}"
    );
}

#[test]
fn start_bodies_are_unchanged() {
    let app = TestApp::new();
    app.write(
        "pages/api/p.rhai",
        "fn GET(req) {\n    parseInt(\"1\")\n}\n",
    );
    let server = app.serve("start", &[]);
    let response = server.get("/api/p");
    assert_eq!(response.status, 500);
    assert_eq!(response.text(), r#"{"error":"Internal Server Error"}"#);
    // The log still says what to do.
    let logged = server.wait_for_log_line("/api/p", |line| line.contains("GET /api/p:"));
    assert!(logged.contains("(hint: use `parse_int(text)`"), "{logged}");
}

/// Every app of the repository: `rhapi check` finds nothing to hint at or warn about.
#[test]
fn check_gives_no_false_hint_on_the_repository_apps() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut apps = vec![
        root.to_path_buf(),
        root.join("examples/conduit"),
        root.join("src/scaffold"),
    ];
    let fixtures = std::fs::read_dir(root.join("tests/fixtures")).expect("tests/fixtures");
    apps.extend(
        fixtures
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("pages/api").is_dir()),
    );
    assert!(apps.len() >= 6, "{apps:?}");
    for dir in apps {
        let output = std::process::Command::new(support::bin())
            .arg("check")
            .arg(&dir)
            .output()
            .expect("run rhapi check");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let false_hints: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("hint:") || l.starts_with("warning: pages/"))
            .collect();
        assert!(false_hints.is_empty(), "{}:\n{stderr}", dir.display());
    }
}
