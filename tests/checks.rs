//! `rhapi check`'s static checks (unknown functions, `req`/`res` properties, thrown-away
//! values) and `rhapi types`.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{bin, run_with_deadline, TestApp};

/// The codes of the static checks.
const CODES: [&str; 3] = [
    "[unknown-function]",
    "[unknown-property]",
    "[discarded-value]",
];

/// Every app of the repository: the root app, the examples, the starter and the test
/// fixtures.
fn repository_apps() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut apps = vec![root.to_path_buf(), root.join("src/scaffold")];
    for parent in ["examples", "tests/fixtures"] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap() {
            let path = entry.unwrap().path();
            if path.join("pages/api").is_dir() {
                apps.push(path);
            }
        }
    }
    apps
}

/// No false positives: the apps of the repository get no warning of the static checks.
#[test]
fn the_repository_s_apps_get_no_static_check_warnings() {
    let apps = repository_apps();
    assert!(apps.len() >= 6, "{apps:?}");
    for app in apps {
        let mut cmd = Command::new(bin());
        cmd.arg("check").arg(&app);
        let output = run_with_deadline(cmd);
        let found: Vec<&str> = output
            .stderr
            .lines()
            .filter(|line| CODES.iter().any(|code| line.contains(code)))
            .collect();
        assert!(found.is_empty(), "{}:\n{}", app.display(), found.join("\n"));
    }
}

/// The three mistakes of a JavaScript developer, found before any request, each with its
/// did-you-mean; `check` still exits 0 (they are warnings).
#[test]
fn check_finds_misspelt_calls_properties_and_thrown_away_values() {
    let app = TestApp::new();
    app.write(
        "pages/api/_lib/auth.rhai",
        "/// The signed-in user.\nfn user(req) { req.headers.authorization }\n",
    );
    app.write(
        "pages/api/signup.rhai",
        r#"import "_lib/auth" as auth;

fn POST(req, res) {
    let email = req.boby.email;
    email.to_lower();
    let user = auth::usr(req);
    let rows = db::qurey("SELECT 1");
    res.josn(rows);
}
"#,
    );
    let output = app.run_to_exit("check", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", output.stderr);
    let expected = [
        "warning: pages/api/signup.rhai:4:21: `req` has no field `boby`",
        "  hint: did you mean `req.body`?",
        "warning: pages/api/signup.rhai:5:5: the value of `to_lower` is thrown away",
        "  hint: keep the value: `email = email.to_lower();`, or change it in place: `email.make_lower();`",
        "warning: pages/api/signup.rhai:6:16: `auth` has no function `usr` [unknown-function]",
        "  hint: did you mean `auth::user`?",
        "warning: pages/api/signup.rhai:7:16: `db` has no function `qurey` [unknown-function]",
        "  hint: did you mean `db::query`?",
        "warning: pages/api/signup.rhai:8:9: `res` has no method `josn` [unknown-property]",
        "  hint: did you mean `res.json(...)`?",
    ];
    let mut at = 0;
    for line in expected {
        let found = output.stderr[at..]
            .find(line)
            .unwrap_or_else(|| panic!("missing, or out of order: {line}\n{}", output.stderr));
        at += found + line.len();
    }
    // One warning each: `res.josn` is reported once, as a property of `res`.
    assert_eq!(
        output.stderr.matches("warning:").count(),
        5,
        "{}",
        output.stderr
    );
}

/// `rhapi types` on the example app: the files, `db::query`'s signature and doc, `req`'s
/// fields, the keys of `.env.example`, and never a value of `.env`.
#[test]
fn types_writes_definition_files_without_env_values() {
    let app = TestApp::new();
    support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conduit"),
        app.path(),
    );
    app.write(
        ".env",
        "JWT_SECRET=a-real-secret-value-7f3a9c\nLOCAL_ONLY=another-secret-4b2e\n",
    );
    let output = app.run_to_exit("types", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", output.stderr);
    let dir = app.path().join(".rhapi/types");
    assert!(
        output.stdout.contains("definition files to"),
        "{}",
        output.stdout
    );
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let db = read("db.d.rhai");
    assert!(db.starts_with("module db;"), "{db}");
    assert!(
        db.contains("/// Runs a query with parameters (`?` or `$1`); an array of row maps")
            && db.contains("fn query(sql: string, params: array) -> array;"),
        "{db}"
    );
    let shapes = read("rhapi.d.rhai");
    for field in [
        "body", "query", "params", "headers", "cookies", "raw_body", "locals",
    ] {
        assert!(
            shapes.contains(&format!("fn get${field}(req: Request)")),
            "{field}"
        );
    }
    assert!(shapes.contains("fn status(res: Response, code: int) -> Response;"));
    assert!(shapes.contains("fn subscribe(ws: WebSocket, topic: string) -> ();"));
    assert!(
        !shapes.contains("not served yet"),
        "WebSockets are served: {shapes}"
    );
    let env = read("env.d.rhai");
    assert!(env.contains("const JWT_SECRET: string;"), "{env}");
    assert!(!env.contains("LOCAL_ONLY"), "{env}");
    assert!(read("__static__.d.rhai").contains("fn to_lower(_: string) -> ?;"));
    assert!(read("__builtin__.d.rhai").contains("fn type_of(data: ?) -> String;"));
    assert!(read("app/api/_lib/auth.d.rhai").contains("fn user(req: ?) -> ?;"));
    // No value of `.env` (or `.env.example`) in any file.
    let mut files = 0;
    for file in walk(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for value in [
            "a-real-secret-value-7f3a9c",
            "another-secret-4b2e",
            "dev-only-secret",
        ] {
            assert!(!text.contains(value), "{} holds {value}", file.display());
        }
        files += 1;
    }
    assert!(files >= 12, "{files}");

    // `--out`, and a second run replaces the first's files.
    let out = tempfile::tempdir().unwrap();
    let output = app.run_to_exit("types", &["--out", out.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", output.stderr);
    assert!(out.path().join("db.d.rhai").is_file());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
