//! docs/reference.md, "Errors and limits": a script stuck in a loop never stalls other requests; scripts run off the HTTP
//! event loop. Assertions count answers, never time them.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, TestApp, DEADLINE};

fn looping_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/forever.rhai",
        "fn GET() {\n    print(\"forever: looping\");\n    loop {}\n}\n",
    );
    app
}

/// Sends `loopers` requests to the looping route, waits until they run, then calls
/// `/api/hello` over and over until they all time out. Returns how many hello answers came
/// while every looping request was still pending.
fn hellos_while_looping(server: &Server, loopers: usize) -> usize {
    let pending = AtomicUsize::new(loopers);
    let all_started = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..loopers {
            scope.spawn(|| {
                let response = server.get("/api/forever");
                assert_eq!(response.status, 504, "{}", response.text());
                assert_eq!(response.json(), json!({ "error": "Script timed out" }));
                pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // The loops are running once each has printed (a run moved off a worker prints
        // as it goes).
        let started = Instant::now();
        while server.log_text().matches("forever: looping").count() < loopers {
            assert!(
                started.elapsed() < DEADLINE,
                "the loops never started:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        all_started.store(true, Ordering::SeqCst);
        let mut answered_while_pending = 0;
        // Bounded: the loops end at their 3 s deadline; this many hellos is far more than
        // needed to see them end.
        for _ in 0..100_000 {
            let still_pending = pending.load(Ordering::SeqCst) == loopers;
            let hello = server.get("/api/hello");
            assert_eq!(hello.status, 200, "{}", hello.text());
            assert_eq!(hello.json(), json!({ "message": "Hello from API route!" }));
            // Counted only if the loops were pending before this hello was sent and after
            // it was answered.
            if still_pending && pending.load(Ordering::SeqCst) == loopers {
                answered_while_pending += 1;
            }
            if pending.load(Ordering::SeqCst) == 0 {
                break;
            }
        }
        assert!(all_started.load(Ordering::SeqCst));
        answered_while_pending
    })
}

#[test]
fn a_looping_route_does_not_stall_other_routes() {
    let app = looping_app();
    let server = app.serve(
        "dev",
        &["--timeout", "3s", "--max-operations", "1000000000000"],
    );
    let answered = hellos_while_looping(&server, 1);
    assert!(
        answered >= 20,
        "only {answered} hello answers while the loop ran"
    );
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn more_loops_than_http_workers_do_not_stall_other_routes() {
    let app = looping_app();
    let server = app.serve(
        "start",
        &[
            "--timeout",
            "3s",
            "--max-operations",
            "1000000000000",
            "--workers",
            "1",
        ],
    );
    let answered = hellos_while_looping(&server, 3);
    assert!(
        answered >= 20,
        "only {answered} hello answers while the loops ran"
    );
    assert_eq!(server.get("/api/hello").status, 200);
}
