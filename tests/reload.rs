//! docs/reference.md, "Reload": edit, add, delete and rename scripts while the server runs; the next requests
//! see the change, without a restart. A script that stops compiling is reported (`dev`) or
//! kept at its last good version (`start`), and the rest of the app keeps working.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::json;
use support::{Response, TestApp, DEADLINE};

/// A route that answers `text/plain` with `text`.
fn text_route(text: &str) -> String {
    format!("fn GET(req, res) {{\n    res.send(\"{text}\");\n}}\n")
}

fn is_text(response: &Response, text: &str) -> bool {
    response.status == 200 && response.text() == text
}

#[test]
fn edited_script_serves_the_new_version_in_dev() {
    let app = TestApp::new();
    app.write("pages/api/version.rhai", &text_route("v1"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/version"), "v1"));

    app.write("pages/api/version.rhai", &text_route("v2"));
    server.poll_until("/api/version", |r| is_text(r, "v2"));
    // Once the new version shows, it stays.
    for _ in 0..5 {
        assert!(is_text(&server.get("/api/version"), "v2"));
    }
}

#[test]
fn edited_script_serves_the_new_version_in_start() {
    let app = TestApp::new();
    app.write("pages/api/version.rhai", &text_route("v1"));
    let server = app.serve("start", &[]);
    assert!(is_text(&server.get("/api/version"), "v1"));

    app.write("pages/api/version.rhai", &text_route("v2"));
    server.poll_until("/api/version", |r| is_text(r, "v2"));
}

#[test]
fn a_new_route_file_is_served() {
    let app = TestApp::fixture("basic");
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/fresh").status, 404);

    app.write("pages/api/fresh.rhai", &text_route("fresh"));
    server.poll_until("/api/fresh", |r| is_text(r, "fresh"));

    // New folders too.
    app.write(
        "pages/api/deep/er/[id].rhai",
        "fn GET(req) { req.params.id }\n",
    );
    server.poll_until("/api/deep/er/42", |r| is_text(r, "42"));
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn a_deleted_route_answers_404() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/doomed.rhai", &text_route("here"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/doomed"), "here"));

    app.remove("pages/api/doomed.rhai");
    let gone = server.poll_until("/api/doomed", |r| r.status == 404);
    assert_eq!(gone.json(), json!({ "error": "Not Found" }));
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn a_renamed_file_moves_its_route() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/before.rhai", &text_route("moving"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/before"), "moving"));

    app.rename("pages/api/before.rhai", "pages/api/after.rhai");
    server.poll_until("/api/after", |r| is_text(r, "moving"));
    server.poll_until("/api/before", |r| r.status == 404);
}

#[test]
fn a_renamed_folder_moves_its_routes() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/old/item.rhai", &text_route("item"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/old/item"), "item"));

    app.rename("pages/api/old", "pages/api/new");
    server.poll_until("/api/new/item", |r| is_text(r, "item"));
    server.poll_until("/api/old/item", |r| r.status == 404);
}

#[test]
fn an_editor_save_by_rename_is_picked_up() {
    let app = TestApp::new();
    app.write("pages/api/saved.rhai", &text_route("first"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/saved"), "first"));

    app.write_atomic("pages/api/saved.rhai", &text_route("second"));
    server.poll_until("/api/saved", |r| is_text(r, "second"));
    app.write_atomic("pages/api/saved.rhai", &text_route("third"));
    server.poll_until("/api/saved", |r| is_text(r, "third"));
    // The editor's temp file is not a route.
    assert_eq!(server.get("/api/saved.rhai.tmp~").status, 404);
}

#[test]
fn a_burst_of_writes_ends_on_the_last_version() {
    let app = TestApp::new();
    app.write("pages/api/burst.rhai", &text_route("v0"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/burst"), "v0"));

    for i in 1..=30 {
        app.write("pages/api/burst.rhai", &text_route(&format!("v{i}")));
    }
    server.poll_until("/api/burst", |r| is_text(r, "v30"));
    for _ in 0..5 {
        assert!(is_text(&server.get("/api/burst"), "v30"));
    }
}

/// Line 3 of this script has a statement the parser refuses (`let = 5`).
const BROKEN: &str = "fn GET(req, res) {\n    let x = 1;\n    let = 5;\n}\n";

#[test]
fn dev_answers_a_script_that_stops_compiling_with_the_error() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/fragile.rhai", &text_route("good"));
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/fragile"), "good"));

    app.write("pages/api/fragile.rhai", BROKEN);
    let broken = server.poll_until("/api/fragile", |r| r.status == 500);
    assert_eq!(
        broken.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = broken.json();
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["file"], "pages/api/fragile.rhai", "{body}");
    assert_eq!(body["line"], 3, "{body}");
    assert!(body["column"].as_u64().is_some(), "{body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "only error, file, line, column: {body}");

    // The rest of the app keeps working.
    assert_eq!(server.get("/api/hello").status, 200);

    // Fixing the file brings the route back.
    app.write("pages/api/fragile.rhai", &text_route("fixed"));
    server.poll_until("/api/fragile", |r| is_text(r, "fixed"));
}

#[test]
fn start_keeps_the_last_good_version_of_a_script_that_stops_compiling() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/fragile.rhai", &text_route("good"));
    let server = app.serve("start", &[]);
    assert!(is_text(&server.get("/api/fragile"), "good"));

    app.write("pages/api/fragile.rhai", BROKEN);
    // The error is logged with the file and line...
    server.wait_for_log_line("with the compile error", |l| {
        l.contains("pages/api/fragile.rhai:3")
    });
    // ...and the route keeps answering with the last good version.
    for _ in 0..5 {
        assert!(is_text(&server.get("/api/fragile"), "good"));
    }
    assert_eq!(server.get("/api/hello").status, 200);

    app.write("pages/api/fragile.rhai", &text_route("fixed"));
    server.poll_until("/api/fragile", |r| is_text(r, "fixed"));
}

#[test]
fn dev_starts_with_a_broken_script_and_recovers_when_it_is_fixed() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/fragile.rhai", BROKEN);
    let server = app.serve("dev", &[]);
    let broken = server.get("/api/fragile");
    assert_eq!(broken.status, 500);
    assert_eq!(broken.json()["file"], "pages/api/fragile.rhai");
    assert_eq!(server.get("/api/hello").status, 200);

    app.write("pages/api/fragile.rhai", &text_route("fixed"));
    server.poll_until("/api/fragile", |r| is_text(r, "fixed"));
}

#[test]
fn a_reload_logs_a_line_naming_the_changed_file() {
    let app = TestApp::fixture("basic");
    let server = app.serve("dev", &[]);
    app.write("pages/api/hello.rhai", &text_route("changed"));
    server.poll_until("/api/hello", |r| is_text(r, "changed"));
    server.wait_for_log_line("about the reload of pages/api/hello.rhai", |l| {
        l.contains("reload") && l.contains("pages/api/hello.rhai")
    });
}

#[test]
fn a_running_request_finishes_on_the_version_it_started_with() {
    let app = TestApp::new();
    // `?slow=1` runs for a while (by the clock, not a counted loop) before answering.
    let slow = |version: &str| {
        format!(
            "fn GET(req) {{\n    if req.query.slow == \"1\" {{\n        print(\"slow {version} running\");\n        let t = timestamp();\n        while t.elapsed < 3.0 {{}}\n    }}\n    \"{version}\"\n}}\n"
        )
    };
    app.write("pages/api/slow.rhai", &slow("v1"));
    let server = app.serve("dev", &["--max-operations", "1000000000000"]);
    std::thread::scope(|scope| {
        let running = scope.spawn(|| server.get("/api/slow?slow=1"));
        server.wait_for_log("slow v1 running");
        app.write("pages/api/slow.rhai", &slow("v2"));
        server.poll_until("/api/slow", |r| is_text(r, "v2"));
        let finished = running.join().unwrap();
        assert!(
            is_text(&finished, "v1"),
            "{} {}",
            finished.status,
            finished.text()
        );
    });
}

/// Every response while a script is rewritten again and again is one of its versions:
/// never an error, a 404 or a half-loaded route, never a version older than one already
/// seen, never one not yet written.
fn rewrites_never_fail_a_request(mode: &str) {
    const VERSIONS: usize = 200;
    let app = TestApp::fixture("basic");
    let version =
        |n: usize| format!("fn GET(req, res) {{\n    res.json(#{{ version: {n} }});\n}}\n");
    app.write("pages/api/flip.rhai", &version(0));
    let server = app.serve(mode, &[]);
    assert_eq!(server.get("/api/flip").json(), json!({ "version": 0 }));

    let written = AtomicUsize::new(0);
    let seen = AtomicUsize::new(0);
    let writer_done = AtomicBool::new(false);
    let total = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for n in 1..VERSIONS {
                written.store(n, Ordering::SeqCst);
                app.write_atomic("pages/api/flip.rhai", &version(n));
                // Wait (with a deadline) until the reader saw this version, so that every
                // version is served while requests keep coming.
                let started = Instant::now();
                while seen.load(Ordering::SeqCst) < n {
                    if started.elapsed() > DEADLINE {
                        writer_done.store(true, Ordering::SeqCst);
                        return Err(format!("version {n} never showed"));
                    }
                    std::thread::yield_now();
                }
            }
            writer_done.store(true, Ordering::SeqCst);
            Ok(())
        });
        let mut total = 0;
        let mut after_done = 0;
        // Bounded: each version needs one reload; a few more requests run once the writer
        // is done.
        while total < 200_000 && after_done < 50 {
            if writer_done.load(Ordering::SeqCst) {
                after_done += 1;
            }
            let response = server.get("/api/flip");
            assert_eq!(
                response.status,
                200,
                "request {total}: {}\n{}",
                response.text(),
                server.log_text()
            );
            let body = response.json();
            let n = body["version"]
                .as_u64()
                .unwrap_or_else(|| panic!("request {total}: {body}")) as usize;
            let (before, newest) = (seen.load(Ordering::SeqCst), written.load(Ordering::SeqCst));
            assert!(
                n >= before,
                "request {total}: version {n} after version {before} was served"
            );
            assert!(
                n <= newest,
                "request {total}: version {n} before it was written"
            );
            seen.store(n, Ordering::SeqCst);
            total += 1;
        }
        writer
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
        total
    });
    assert!(total >= VERSIONS);
    assert_eq!(
        server.get("/api/flip").json(),
        json!({ "version": VERSIONS - 1 })
    );
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn rewrites_never_fail_a_request_in_dev() {
    rewrites_never_fail_a_request("dev");
}

#[test]
fn rewrites_never_fail_a_request_in_start() {
    rewrites_never_fail_a_request("start");
}

#[test]
fn start_no_watch_ignores_changes() {
    let app = TestApp::new();
    app.write("pages/api/version.rhai", &text_route("v1"));
    let server = app.serve("start", &["--no-watch"]);
    app.write("pages/api/version.rhai", &text_route("v2"));
    // No reload happens, however long we look; probe a bounded number of times.
    for _ in 0..20 {
        assert!(is_text(&server.get("/api/version"), "v1"));
    }
    server.sync_log();
    assert!(
        !server.log_text().contains("reload"),
        "{}",
        server.log_text()
    );
}
