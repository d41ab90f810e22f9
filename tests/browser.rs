//! A real browser against a real server: headless Chromium, driven over the DevTools
//! protocol by `tests/browser/drive.py` (Python standard library only), uses the example
//! app's page from `public/` served by `rhapi start` (sign up, log in, add and list a
//! note, all through the page's buttons), and shows that a page of another origin can
//! read the API only with `[cors]` in `rhapi.toml`.
//!
//! Chromium is `$RHAPI_CHROMIUM` or `/usr/bin/chromium` (Debian's `chromium` package; CI
//! installs it). Without it the test fails under CI (`CI` set) and otherwise prints a loud
//! SKIPPED line: a missing browser must never look like a pass in CI.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{copy_tree, TestApp};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("RHAPI_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    path.is_file().then_some(path)
}

/// `Some(chromium)`, or `None` after saying loudly why the test does not run.
fn browser_or_skip() -> Option<PathBuf> {
    match chromium() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but there is no chromium (set RHAPI_CHROMIUM or apt-get install -y chromium)")
        }
        None => {
            eprintln!("\n*** SKIPPED: no chromium at /usr/bin/chromium or $RHAPI_CHROMIUM; apt-get install -y chromium to run tests/browser.rs ***\n");
            None
        }
    }
}

fn drive(chromium: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/drive.py");
    let output = Command::new("python3")
        .arg(script)
        .arg("--chromium")
        .arg(chromium)
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("PASS"),
        "drive.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The repo's example app: pages, migrations, public.
fn example_app() -> TestApp {
    let app = TestApp::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["pages", "migrations", "public"] {
        copy_tree(&root.join(folder), &app.path().join(folder));
    }
    app.write(".env", "JWT_SECRET=browser-test-secret-0123456789abcdef\n");
    app
}

#[test]
fn the_example_page_signs_up_logs_in_and_keeps_notes() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let app = example_app();
    let server = app.serve("start", &[]);
    drive(
        &chromium,
        &["notes", &format!("http://127.0.0.1:{}/", server.port)],
    );
}

/// A page that calls `?api=...` with fetch and shows `ok: <body>` or `error: <message>`.
const CORS_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<p id="result"></p>
<script>
const api = new URLSearchParams(location.search).get("api");
fetch(api + "/api/hello", { headers: { "content-type": "application/json" } })
  .then((r) => r.text())
  .then((text) => { document.getElementById("result").textContent = "ok:" + text; })
  .catch((err) => { document.getElementById("result").textContent = "error:" + err; });
</script>
"#;

#[test]
fn another_origin_reads_the_api_only_with_cors() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let other = TestApp::new();
    other.write("public/cors.html", CORS_PAGE);
    let other_server = other.serve("start", &[]);
    let origin = format!("http://127.0.0.1:{}", other_server.port);

    let app = example_app();
    app.write("rhapi.toml", &format!("[cors]\norigins = [\"{origin}\"]\n"));
    let server = app.serve("start", &[]);
    let page = format!("{origin}/cors.html?api=http://127.0.0.1:{}", server.port);
    drive(&chromium, &["cors", &page, "allowed"]);

    // The same call without [cors]: rhapi.toml reloads, and the browser refuses.
    app.write("rhapi.toml", "");
    let started = std::time::Instant::now();
    while server
        .request("GET", "/api/hello", &[("origin", &origin)], b"")
        .header("access-control-allow-origin")
        .is_some()
    {
        assert!(
            started.elapsed() < support::DEADLINE,
            "rhapi.toml never reloaded"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drive(&chromium, &["cors", &page, "refused"]);
}
