//! docs/reference.md, "Command line": the command line: `routes`, `check`, `start` refusing a broken app, the port,
//! request log lines, `--help`, and stopping on a signal.

use crate::support;

use std::process::Command;

use serde_json::json;
use support::{bin, free_port, run_with_deadline, Output, Server, TestApp};

/// A small good app: a GET/POST route, a dynamic GET/DELETE route, a handler-only route, an
/// optional catch-all, and a module that is not a route.
fn good_app() -> TestApp {
    let app = TestApp::new();
    app.write(
        "pages/api/hello.rhai",
        "fn GET(req, res) { res.json(#{ message: \"hi\" }); }\nfn POST(req) { req.body }\n",
    );
    app.write(
        "pages/api/users/[id].rhai",
        "fn GET(req) { req.params }\nfn DELETE(req) { }\n",
    );
    app.write(
        "pages/api/legacy.rhai",
        "fn handler(req, res) { res.send(req.method); }\n",
    );
    app.write(
        "pages/api/docs/[[...slug]].rhai",
        "fn GET(req) { req.params.slug }\n",
    );
    app.write("pages/api/_lib/util.rhai", "fn helper() { 1 }\n");
    app
}

/// `good_app` plus `pages/api/bad.rhai` with a syntax error at line 2, column 13 (the `;`).
fn app_with_compile_error() -> TestApp {
    let app = good_app();
    app.write(
        "pages/api/bad.rhai",
        "fn GET() {\n    let x = ;\n    x\n}\n",
    );
    app
}

fn printed(output: &Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// Runs `rhapi <args>` in `dir` (no app dir argument) until it exits.
fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    run_with_deadline(cmd)
}

/// `12ms`, `0.4ms`, `1.2s`, `830µs`: a duration as a log line would print it.
fn is_duration(token: &str) -> bool {
    let digits_end = token
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(token.len());
    let (number, unit) = token.split_at(digits_end);
    number.parse::<f64>().is_ok() && ["ns", "µs", "us", "ms", "s"].contains(&unit)
}

/// Waits for the log line of one request: method, path, status and a duration.
fn wait_for_request_line(server: &Server, method: &str, path: &str, status: u16) -> String {
    let status = status.to_string();
    server.wait_for_log_line(&format!("for {method} {path} {status}"), |line| {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        tokens.contains(&method)
            && tokens.contains(&path)
            && tokens.contains(&status.as_str())
            && tokens.iter().any(|t| is_duration(t))
    })
}

#[test]
fn routes_prints_one_line_per_route_with_pattern_methods_and_file() {
    let app = good_app();
    let output = app.run("routes");
    assert!(output.status.success(), "{}", printed(&output));
    let lines: Vec<&str> = output
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 4, "one line per route:\n{}", output.stdout);
    let line_of = |file: &str| {
        *lines
            .iter()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no line for {file}:\n{}", output.stdout))
    };
    let hello = line_of("pages/api/hello.rhai");
    assert!(
        hello.contains("/api/hello") && hello.contains("GET") && hello.contains("POST"),
        "{hello}"
    );
    let user = line_of("pages/api/users/[id].rhai");
    assert!(
        user.contains("/api/users/[id]") && user.contains("GET") && user.contains("DELETE"),
        "{user}"
    );
    assert!(!user.contains("POST"), "{user}");
    let docs = line_of("pages/api/docs/[[...slug]].rhai");
    assert!(
        docs.contains("/api/docs/[[...slug]]") && docs.contains("GET"),
        "{docs}"
    );
    let legacy = line_of("pages/api/legacy.rhai");
    assert!(legacy.contains("/api/legacy"), "{legacy}");
    assert!(
        !output.stdout.contains("_lib"),
        "a module is not a route:\n{}",
        output.stdout
    );
}

#[test]
fn routes_and_check_default_to_the_current_directory() {
    let app = good_app();
    let output = run_in(app.path(), &["routes"]);
    assert!(output.status.success(), "{}", printed(&output));
    assert!(
        output.stdout.contains("pages/api/hello.rhai"),
        "{}",
        output.stdout
    );
    let output = run_in(app.path(), &["check"]);
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));

    let broken = app_with_compile_error();
    let output = run_in(broken.path(), &["check"]);
    assert_eq!(output.status.code(), Some(1), "{}", printed(&output));
}

#[test]
fn check_passes_a_good_app() {
    let app = good_app();
    let output = app.run("check");
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
}

#[test]
fn check_fails_on_a_compile_error_naming_file_line_and_column() {
    let app = app_with_compile_error();
    let output = app.run("check");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("pages/api/bad.rhai:2:13"),
        "file:line:col missing:\n{text}"
    );
    assert!(
        text.contains("Unexpected ';'"),
        "the compile message missing:\n{text}"
    );
}

#[test]
fn check_reports_every_broken_file() {
    let app = app_with_compile_error();
    app.write(
        "pages/api/worse.rhai",
        "fn POST(req) {\n    req.body +\n}\n",
    );
    app.write("pages/api/nested/bad.rhai", "fn GET( { }\n");
    let output = app.run("check");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for file in [
        "pages/api/bad.rhai:2:13",
        "pages/api/worse.rhai:",
        "pages/api/nested/bad.rhai:",
    ] {
        assert!(text.contains(file), "{file} missing:\n{text}");
    }
}

/// A JavaScript habit, `'hello'` for a string: a bad character literal in Rhai. `check`
/// used to panic reading it for its warnings; it reports the compile error instead.
#[test]
fn check_reports_a_single_quoted_string_without_a_panic() {
    let app = TestApp::new();
    app.write("pages/api/quote.rhai", "fn GET() { 'hello' }\n");
    let output = app.run("check");
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("pages/api/quote.rhai:1:12"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn start_refuses_an_app_with_a_compile_error() {
    let app = app_with_compile_error();
    let output = app.run_to_exit("start", &["--port", &free_port().to_string()]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("pages/api/bad.rhai:2:13"), "{text}");
}

#[test]
fn dev_starts_despite_a_compile_error_and_reports_it_on_its_route() {
    let app = app_with_compile_error();
    let server = app.serve("dev", &[]);
    let response = server.get("/api/bad");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert_eq!(
        (&body["file"], &body["line"], &body["column"]),
        (&json!("pages/api/bad.rhai"), &json!(2), &json!(13))
    );
    assert_eq!(server.get("/api/hello").json(), json!({ "message": "hi" }));
}

#[test]
fn port_flag_wins_over_the_port_variable() {
    let app = good_app();
    let unused = free_port();
    let server = app.serve_with_env("dev", &[], &[("PORT", &unused.to_string())]);
    assert_eq!(server.get("/api/hello").json(), json!({ "message": "hi" }));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", unused)).is_err(),
        "the server should not listen on PORT when --port is given"
    );
}

#[test]
fn port_variable_is_used_without_port_flag() {
    let app = good_app();
    let port = free_port();
    let server = app.serve_exact(
        "dev",
        &["--hostname", "127.0.0.1"],
        &[("PORT", &port.to_string())],
        port,
    );
    assert_eq!(server.get("/api/hello").json(), json!({ "message": "hi" }));
}

/// docs/reference.md, "A socket handed over": systemd's socket activation names the process
/// the socket is for in `LISTEN_PID`; a `LISTEN_FDS` meant for another process is not taken,
/// and rhapi listens where `--port` says. (Every other server of these tests is started with
/// a socket handed over, see `support::Server`.)
#[test]
fn a_socket_handed_to_another_process_is_not_taken() {
    let app = good_app();
    let port = free_port();
    let server = app.serve_exact(
        "dev",
        &["--hostname", "127.0.0.1", "--port", &port.to_string()],
        &[("LISTEN_PID", "1"), ("LISTEN_FDS", "1")],
        port,
    );
    assert_eq!(server.get("/api/hello").json(), json!({ "message": "hi" }));
}

#[test]
fn dev_logs_each_request_with_method_path_status_and_duration() {
    let app = good_app();
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/hello").status, 200);
    wait_for_request_line(&server, "GET", "/api/hello", 200);
    assert_eq!(
        server.request("DELETE", "/api/users/7", &[], b"").status,
        204
    );
    wait_for_request_line(&server, "DELETE", "/api/users/7", 204);
    assert_eq!(server.get("/api/nope").status, 404);
    wait_for_request_line(&server, "GET", "/api/nope", 404);
    assert_eq!(server.request("PUT", "/api/hello", &[], b"").status, 405);
    wait_for_request_line(&server, "PUT", "/api/hello", 405);
}

#[test]
fn start_logs_each_request_too() {
    let app = good_app();
    let server = app.serve("start", &[]);
    assert_eq!(server.post_json("/api/hello", "{\"a\":1}").status, 200);
    wait_for_request_line(&server, "POST", "/api/hello", 200);
}

#[test]
fn help_lists_the_commands() {
    let output = run_with_deadline({
        let mut cmd = Command::new(bin());
        cmd.arg("--help");
        cmd
    });
    assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
    for command in ["dev", "start", "routes", "check"] {
        assert!(
            output.stdout.contains(command),
            "{command} missing:\n{}",
            output.stdout
        );
    }
}

#[test]
fn serve_help_lists_the_options() {
    for (command, extra) in [("dev", None), ("start", Some("--no-watch"))] {
        let output = run_with_deadline({
            let mut cmd = Command::new(bin());
            cmd.args([command, "--help"]);
            cmd
        });
        assert_eq!(output.status.code(), Some(0), "{}", printed(&output));
        let options = [
            "--port",
            "--hostname",
            "--body-limit",
            "--timeout",
            "--max-operations",
            "--workers",
        ];
        for option in options.into_iter().chain(extra) {
            assert!(
                output.stdout.contains(option),
                "{command} --help lacks {option}:\n{}",
                output.stdout
            );
        }
    }
}

#[test]
fn every_serve_option_is_accepted() {
    let app = good_app();
    let args = [
        "--body-limit",
        "2mb",
        "--timeout",
        "500ms",
        "--max-operations",
        "100000",
        "--workers",
        "1",
    ];
    let server = app.serve("start", &[&args[..], &["--no-watch"]].concat());
    assert_eq!(server.get("/api/hello").json(), json!({ "message": "hi" }));
    let server = app.serve("dev", &["--timeout", "2", "--body-limit", "4096"]);
    assert_eq!(server.get("/api/docs/a/b").json(), json!(["a", "b"]));
}

#[test]
fn an_unknown_command_or_option_is_refused() {
    let app = good_app();
    let output = app.run("serve");
    assert_ne!(output.status.code(), Some(0), "{}", printed(&output));
    let output = app.run_to_exit("dev", &["--no-such-option"]);
    assert_ne!(output.status.code(), Some(0), "{}", printed(&output));
}

#[test]
fn sigterm_and_sigint_stop_the_server_with_exit_code_zero() {
    let app = good_app();
    let server = app.serve("start", &[]);
    assert_eq!(server.get("/api/hello").status, 200);
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM: {status}");

    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/hello").status, 200);
    server.signal("INT");
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "SIGINT: {status}");
}
