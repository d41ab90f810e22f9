//! docs/reference.md, "Command line": SIGINT and SIGTERM stop accepting connections, let running requests finish with
//! their normal answer, and exit 0.

use crate::support;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Exchange, Response, Server, TestApp, DEADLINE};

/// `/api/slow` runs for `seconds` by the clock (not a counted loop: the operations budget is
/// raised out of the way), then answers normally.
fn slow_app(seconds: f64) -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/slow.rhai",
        &format!(
            "fn GET(req, res) {{\n    print(\"slow: running\");\n    let t = timestamp();\n    while t.elapsed < {seconds:.1} {{}}\n    res.json(#{{ done: true }});\n}}\n"
        ),
    );
    app
}

/// GET `/api/slow`; panics with a clear message when the server drops the connection.
fn slow_request(server: &Server) -> Response {
    let raw = b"GET /api/slow HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    match server.exchange(raw, Duration::from_secs(60)) {
        Exchange::Answered(response) => response,
        other => panic!(
            "the running request got no answer: {other:?}\n{}",
            server.log_text()
        ),
    }
}

fn serve_slow(app: &TestApp) -> Server {
    app.serve(
        "start",
        &["--max-operations", "1000000000000", "--timeout", "30s"],
    )
}

/// Starts `/api/slow` (running for `seconds`), sends `signal` once it runs, then calls
/// `meanwhile` with a flag that turns true when the slow request has its answer. Checks that
/// the slow request still gets its normal answer and that the process exits 0.
fn signal_during_slow_request(
    signal: &str,
    seconds: f64,
    meanwhile: impl FnOnce(&Server, &AtomicBool),
) {
    let app = slow_app(seconds);
    let server = serve_slow(&app);
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let response = slow_request(&server);
            finished.store(true, Ordering::SeqCst);
            response
        });
        server.wait_for_log("slow: running");
        server.signal(signal);
        meanwhile(&server, &finished);
        let response = slow.join().unwrap();
        assert_eq!(
            response.status,
            200,
            "SIG{signal}: {}\n{}",
            response.text(),
            server.log_text()
        );
        assert_eq!(response.json(), json!({ "done": true }));
    });
    assert!(finished.load(Ordering::SeqCst));
    let status = server.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIG{signal}: {status}"
    );
}

fn running_request_finishes_after(signal: &str) {
    signal_during_slow_request(signal, 1.5, |_, _| {});
}

#[test]
fn sigterm_lets_a_running_request_finish_and_exits_0() {
    running_request_finishes_after("TERM");
}

#[test]
fn sigint_lets_a_running_request_finish_and_exits_0() {
    running_request_finishes_after("INT");
}

#[test]
fn idle_server_exits_0_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let app = TestApp::fixture("basic");
        let server = app.serve("dev", &[]);
        assert_eq!(server.get("/api/hello").status, 200);
        server.signal(signal);
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
    }
}

/// After the signal, new connections are refused while the running request is still
/// finishing.
fn new_connections_refused_after(signal: &str) {
    // Long enough that the refusal shows well before the request ends.
    signal_during_slow_request(signal, 5.0, |server, finished| {
        let started = Instant::now();
        let refused_while_running = loop {
            if TcpStream::connect(("127.0.0.1", server.port)).is_err() {
                break !finished.load(Ordering::SeqCst);
            }
            assert!(
                started.elapsed() < DEADLINE,
                "still accepting connections after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(
            refused_while_running,
            "connections were accepted until the running request ended"
        );
    });
}

#[test]
fn new_connections_are_refused_once_sigterm_arrives() {
    new_connections_refused_after("TERM");
}

#[test]
fn new_connections_are_refused_once_sigint_arrives() {
    new_connections_refused_after("INT");
}

/// Sends `signal` and returns how long the process took to exit (polled every 5 ms).
fn time_to_exit(mut server: Server, signal: &str) -> Duration {
    let started = Instant::now();
    server.signal(signal);
    while !server.has_exited() {
        assert!(
            started.elapsed() < DEADLINE,
            "rhapi did not exit:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    started.elapsed()
}

/// docs/reference.md, "Command line": an idle server exits at once, even with a keep-alive
/// connection open (closed by the server as it stops). The stopping server no longer waits
/// for actix's once-a-second look at its connections (see tests/streaming.rs for a stream).
#[test]
fn an_idle_server_exits_promptly() {
    let app = TestApp::fixture("basic");
    for command in ["start", "dev"] {
        let server = app.serve(command, &[]);
        assert_eq!(server.get("/api/hello").status, 200);
        // A client that keeps its connection open between requests (as browsers do).
        let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        std::io::Write::write_all(&mut idle, b"GET /api/hello HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        std::io::Read::read_exact(&mut idle, &mut head).unwrap();
        let took = time_to_exit(server, "TERM");
        eprintln!("{command}: exited {took:?} after SIGTERM");
        assert!(
            took < Duration::from_secs(1),
            "{command}: exited {took:?} after SIGTERM"
        );
    }
}
