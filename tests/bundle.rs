//! `rhapi bundle`: one executable holding rhapi and the app, run from a folder that holds
//! nothing of the app; what it must never carry (`.env`, `data/`); damaged bundles.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{bin, run_with_deadline, Output, Server, TestApp};

/// A value only the source app's `.env` holds: it must never be in a bundle.
const ENV_SECRET: &str = "sk-live-bundle-test-9f31c7a2";
const LOCAL_SECRET: &str = "local-only-bundle-test-77b2";
const TEST_SECRET: &str = "test-only-bundle-test-41aa";
const DATA_MARKER: &str = "data-folder-bundle-test-05e1";
const TESTS_MARKER: &str = "tests-folder-bundle-test-c3d9";

/// Where this module's bundle and its source app live (target/tmp, rewritten each run).
fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bundle-tests")
}

/// An app with a route that reads env and the database, a module, middleware, a job, a
/// migration, public files, rhapi.toml and .env.example, and beside them the files a
/// bundle must leave out.
fn write_source_app(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let files: &[(&str, String)] = &[
        (
            "pages/api/hello.rhai",
            r#"import "../lib/words" as words;
fn GET(req, res, env) { #{ greeting: words::greet(env.GREETING ?? "none"), secret_set: env.API_KEY != () } }"#
                .into(),
        ),
        (
            "pages/lib/words.rhai",
            r#"fn greet(word) { `${word}, from the bundle` }"#.into(),
        ),
        (
            "pages/api/notes.rhai",
            r#"fn POST(req, res) { db::execute("INSERT INTO notes (text) VALUES (?)", [req.body.text]); res.status(201).json(#{ count: db::query_one("SELECT count(*) AS n FROM notes", []).n }) }"#
                .into(),
        ),
        (
            "pages/api/_middleware.rhai",
            r#"fn middleware(req, res) { res.set_header("x-bundled-middleware", "yes"); #{ seen: true } }"#
                .into(),
        ),
        ("jobs/tidy.rhai", "fn run(payload) { }".into()),
        (
            "migrations/001_notes.sql",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);".into(),
        ),
        ("public/index.html", "<h1>bundled home</h1>".into()),
        ("public/css/site.css", "body { color: teal }".into()),
        ("public/.hidden", "never served".into()),
        ("rhapi.toml", "[server]\nbody_limit = \"64kb\"\n".into()),
        (".env.example", "GREETING=example-value\nAPI_KEY=\n".into()),
        (".env", format!("GREETING=from-source\nAPI_KEY={ENV_SECRET}\n")),
        (".env.local", format!("LOCAL_KEY={LOCAL_SECRET}\n")),
        (".env.test", format!("TEST_KEY={TEST_SECRET}\n")),
        ("data/notes.txt", DATA_MARKER.into()),
        (
            "tests/hello.test.rhai",
            format!("// {TESTS_MARKER}\nfn test_x() {{ }}\n"),
        ),
    ];
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    // A link out of the public folder is never served, so never bundled.
    std::os::unix::fs::symlink("../.env", dir.join("public/leak.txt")).unwrap();
}

/// The bundle of the source app, built once for the whole module.
fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let work = work_dir();
        let source = work.join("source");
        write_source_app(&source);
        let out = work.join("app.bin");
        let mut cmd = Command::new(bin());
        cmd.arg("bundle").arg(&source).arg("-o").arg(&out);
        let output = run_with_deadline(cmd);
        assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
        assert!(
            output.stdout.contains("pages/api/hello.rhai"),
            "{}",
            output.stdout
        );
        out
    })
}

fn printed(output: &Output) -> String {
    format!("{}\n{}", output.stdout, output.stderr)
}

/// Runs `program args...` in `cwd` to its end.
fn run_in(program: &Path, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    run_with_deadline(cmd)
}

/// A copy of the bundle in a new empty folder, with only `files` beside it.
fn copied(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("app");
    std::fs::copy(bundle(), &copy).unwrap();
    for (rel, text) in files {
        std::fs::write(dir.path().join(rel), text).unwrap();
    }
    (dir, copy)
}

#[test]
fn a_bundle_serves_its_app_from_a_folder_without_it() {
    let (dir, copy) = copied(&[(".env", "GREETING=from-here\n")]);
    let server = Server::start_program(&copy, Some(dir.path()), &["start"], &[], &[]);
    let hello = server.get("/api/hello");
    assert_eq!(hello.status, 200, "{}", hello.text());
    // The module came from the bundle, GREETING from the .env where it runs; the source
    // app's .env (which sets API_KEY) is nowhere.
    assert_eq!(hello.json()["greeting"], "from-here, from the bundle");
    assert_eq!(hello.json()["secret_set"], false);
    assert_eq!(hello.header("x-bundled-middleware"), Some("yes"));
    let css = server.get("/css/site.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.text(), "body { color: teal }");
    assert_eq!(server.get("/").text(), "<h1>bundled home</h1>");
    assert_eq!(server.get("/.hidden").status, 404);
    assert_eq!(server.get("/leak.txt").status, 404);
    // The migration ran against data/ of this folder.
    let note = server.post_json("/api/notes", r#"{"text":"hi"}"#);
    assert_eq!(note.status, 201, "{}", note.text());
    assert_eq!(note.json()["count"], 1);
    assert!(dir.path().join("data/app.db").is_file());
    // rhapi.toml came along: a body over 64kb is refused.
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000));
    assert_eq!(server.post_json("/api/notes", &big).status, 413);
    // The app's files were never written here.
    assert!(!dir.path().join("pages").exists() && !dir.path().join("public").exists());
    let log = server.log_text();
    assert!(!log.contains(ENV_SECRET), "{log}");
    server.terminate();
}

#[test]
fn secrets_state_and_tests_stay_out_of_the_bundle() {
    let bytes = std::fs::read(bundle()).unwrap();
    let program = std::fs::metadata(bin()).unwrap().len() as usize;
    let archive = &bytes[program..];
    let holds = |text: &str| archive.windows(text.len()).any(|w| w == text.as_bytes());
    // What it must carry (so the search below can fail).
    assert!(holds("from the bundle") && holds("body { color: teal }"));
    assert!(holds("GREETING=example-value"), ".env.example is bundled");
    for absent in [
        ENV_SECRET,
        LOCAL_SECRET,
        TEST_SECRET,
        DATA_MARKER,
        TESTS_MARKER,
        "never served",
    ] {
        assert!(!holds(absent), "{absent} is in the bundle");
    }
    // The program part is rhapi's own bytes.
    assert_eq!(&bytes[..program], &std::fs::read(bin()).unwrap()[..]);
}

#[test]
fn routes_and_check_read_the_bundled_app() {
    // Run where it is, from an empty folder (the serving test runs a copy).
    let (dir, copy) = (tempfile::tempdir().unwrap(), bundle());
    let routes = run_in(copy, dir.path(), &["routes"]);
    assert_eq!(routes.status.code(), Some(0), "{}", printed(&routes));
    for line in [
        "/api/hello",
        "/api/notes",
        "job tidy",
        "pages/api/hello.rhai",
    ] {
        assert!(routes.stdout.contains(line), "{line}:\n{}", routes.stdout);
    }
    let check = run_in(copy, dir.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", printed(&check));
    assert!(
        check.stdout.contains("ok: 2 routes, 1 job(s) compiled"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_bundle_refuses_dev_and_the_commands_of_an_app_folder() {
    let (dir, copy) = (tempfile::tempdir().unwrap(), bundle());
    let dev = run_in(copy, dir.path(), &["dev"]);
    assert_eq!(dev.status.code(), Some(1));
    assert!(
        dev.stderr.contains("bundled app") && dev.stderr.contains("`start`"),
        "{}",
        dev.stderr
    );
    for args in [&["test"][..], &["types"], &["bundle", "-o", "x"]] {
        let refused = run_in(copy, dir.path(), args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(
            refused.stderr.contains("bundled app"),
            "{args:?}: {}",
            refused.stderr
        );
    }
    let test = run_in(copy, dir.path(), &["test"]);
    assert!(
        test.stderr.contains("run `rhapi test` in the app's folder"),
        "{}",
        test.stderr
    );
    assert!(!dir.path().join("x").exists());
}

#[test]
fn a_damaged_bundle_says_so_and_exits_1() {
    let bytes = std::fs::read(bundle()).unwrap();
    let program = std::fs::metadata(bin()).unwrap().len() as usize;
    let dir = tempfile::tempdir().unwrap();
    let mut changed = bytes.clone();
    changed[program + 40] ^= 0x01;
    let cases = [
        (
            "cut in its files",
            bytes[..program + (bytes.len() - program) / 2].to_vec(),
            "damaged",
        ),
        (
            "cut by one byte",
            bytes[..bytes.len() - 1].to_vec(),
            "damaged",
        ),
        ("one byte changed", changed, "checksum"),
    ];
    for (what, damaged, expected) in cases {
        let path = dir.path().join("app");
        std::fs::write(&path, &damaged).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for command in ["start", "routes"] {
            let output = run_in(&path, dir.path(), &[command]);
            let text = printed(&output);
            assert_eq!(output.status.code(), Some(1), "{what}, {command}: {text}");
            assert!(
                text.contains(expected) && text.contains("bundle"),
                "{what}: {text}"
            );
            assert!(!text.contains("panicked"), "{what}: {text}");
        }
    }
}

#[test]
fn a_folder_that_is_not_an_app_or_a_broken_app_is_not_bundled() {
    let empty = tempfile::tempdir().unwrap();
    let out = empty.path().join("app.bin");
    let mut cmd = Command::new(bin());
    cmd.arg("bundle").arg(empty.path()).arg("-o").arg(&out);
    let output = run_with_deadline(cmd);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stderr.contains("no pages/api folder"),
        "{}",
        output.stderr
    );
    assert!(!out.exists());

    let app = TestApp::new();
    app.write("pages/api/ok.rhai", "fn GET(req, res) { 1 }");
    app.write("pages/api/broken.rhai", "fn GET(req, res) { let x = ; }");
    let out = app.path().join("app.bin");
    let output = app.run_to_exit("bundle", &["-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", printed(&output));
    assert!(
        output.stderr.contains("pages/api/broken.rhai"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("nothing written"),
        "{}",
        output.stderr
    );
    assert!(!out.exists());
}

/// The starter app bundles under the name its Dockerfile copies, and the bundle passes
/// `check` from a folder that holds nothing else.
#[test]
fn a_new_app_bundles_as_its_dockerfile_expects() {
    let parent = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["new", "my-app"]).current_dir(parent.path());
    assert_eq!(run_with_deadline(cmd).status.code(), Some(0));
    let app = parent.path().join("my-app");
    let dockerfile = std::fs::read_to_string(app.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("COPY --chmod=0755 my-app.bundle "),
        "{dockerfile}"
    );
    let mut cmd = Command::new(bin());
    cmd.args(["bundle", "-o", "my-app.bundle"])
        .current_dir(&app);
    let output = run_with_deadline(cmd);
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
    let elsewhere = tempfile::tempdir().unwrap();
    let check = run_in(&app.join("my-app.bundle"), elsewhere.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", printed(&check));
    assert!(
        check.stdout.contains("ok: 1 routes, 2 job(s) compiled"),
        "{}",
        check.stdout
    );
    // Bundling again leaves the first bundle out of the second.
    let mut cmd = Command::new(bin());
    cmd.args(["bundle", "-o", "my-app.bundle"])
        .current_dir(&app);
    assert_eq!(run_with_deadline(cmd).status.code(), Some(0));
    let size = std::fs::metadata(app.join("my-app.bundle")).unwrap().len();
    assert!(
        size < std::fs::metadata(bin()).unwrap().len() + 1_000_000,
        "{size}"
    );
}
