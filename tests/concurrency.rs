//! docs/reference.md, "Concurrency": a script that waits holds no thread, so requests in
//! flight are bounded by `--max-in-flight`, not by threads; over it, 503 with
//! `Retry-After`. Concurrency is shown with counts (requests open at once at a stub
//! upstream), never with a clock.

use crate::support;

use serde_json::json;
use support::upstream::Gate;
use support::TestApp;

/// An app whose `/api/call` calls the gate upstream and returns its JSON.
fn calling_app(gate: &Gate) -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(".env", &format!("UPSTREAM={}\n", gate.url()));
    app.write(
        "pages/api/call.rhai",
        "fn GET() {\n    http::get(env::UPSTREAM + \"/x\").json\n}\n",
    );
    app
}

#[test]
fn three_hundred_waiting_requests_are_in_flight_at_once_on_one_worker() {
    const CLIENTS: usize = 300;
    let gate = Gate::start(CLIENTS);
    let app = calling_app(&gate);
    let server = app.serve("start", &["--workers", "1", "--timeout", "60s"]);
    let answers: Vec<_> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| scope.spawn(|| server.get("/api/call")))
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for response in &answers {
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json(), json!({ "ok": true }));
    }
    // The upstream let them go only when all 300 were open together.
    assert_eq!(gate.most_open(), CLIENTS);
}

#[test]
fn over_max_in_flight_is_a_503_with_retry_after_and_nothing_breaks() {
    let gate = Gate::start(usize::MAX);
    let app = calling_app(&gate);
    let server = app.serve("start", &["--max-in-flight", "2", "--timeout", "60s"]);
    std::thread::scope(|scope| {
        let held: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| server.get("/api/call")))
            .collect();
        gate.wait_open(2);
        let busy = server.get("/api/hello");
        assert_eq!(busy.status, 503, "{}", busy.text());
        assert_eq!(busy.header("retry-after"), Some("1"));
        assert_eq!(busy.json(), json!({ "error": "Server busy" }));
        gate.release();
        for response in held {
            let response = response.join().unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
        }
    });
    let hello = server.get("/api/hello");
    assert_eq!(hello.status, 200, "{}", hello.text());
}

#[test]
fn sleep_waits_within_the_budget() {
    let app = TestApp::new();
    app.write(
        "pages/api/nap.rhai",
        "fn GET(req) {\n    sleep(parse_int(req.query.ms));\n    \"rested\"\n}\n",
    );
    app.write(
        "pages/api/bad.rhai",
        "fn GET() {\n    try { sleep(-1); \"no error\" } catch (err) { return err; }\n}\n",
    );
    let server = app.serve("start", &["--timeout", "1s"]);
    let rested = server.get("/api/nap?ms=20");
    assert_eq!(rested.status, 200, "{}", rested.text());
    assert_eq!(rested.text(), "rested");
    let bad = server.get("/api/bad");
    assert_eq!(bad.status, 200, "{}", bad.text());
    assert!(
        bad.text().contains("0 or more milliseconds"),
        "{}",
        bad.text()
    );
    let too_long = server.get("/api/nap?ms=60000");
    assert_eq!(too_long.status, 504, "{}", too_long.text());
    assert_eq!(too_long.json(), json!({ "error": "Script timed out" }));
}

#[test]
fn each_waiting_run_has_its_own_memory_budget() {
    // Two runs on one worker each build about 48 MiB at their peak and hold 32 MiB while
    // they wait together at the upstream; with a 64 MiB budget each, both must succeed:
    // one run's allocations never count against the other.
    let gate = Gate::start(2);
    let app = TestApp::new();
    app.write(".env", &format!("UPSTREAM={}\n", gate.url()));
    app.write(
        "pages/api/big.rhai",
        "fn GET() {\n    let s = \"x\";\n    for i in 0..25 { s += s; }\n    http::get(env::UPSTREAM + \"/x\");\n    s.len()\n}\n",
    );
    let server = app.serve(
        "start",
        &["--workers", "1", "--max-memory", "64mb", "--timeout", "60s"],
    );
    let answers: Vec<_> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| server.get("/api/big")))
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for response in answers {
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json(), json!(1 << 25));
    }
    assert_eq!(gate.most_open(), 2);
}
