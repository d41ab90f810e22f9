//! docs/reference.md, "rhapi.toml": every key, mistakes as load errors naming file, key
//! and line, the command line winning over the file, and reload.

use crate::support;

use serde_json::json;
use support::TestApp;

/// What `/api/echo` answers to a POST of `hi`.
fn echo_hi(server: &support::Server) -> String {
    server
        .request(
            "POST",
            "/api/echo",
            &[("content-type", "text/plain")],
            b"hi",
        )
        .text()
}

fn app(toml: &str) -> TestApp {
    let app = TestApp::new();
    app.write("rhapi.toml", toml);
    app.write("pages/api/echo.rhai", "fn POST(req) { req.body }\n");
    app.write(
        "pages/api/spin.rhai",
        "fn GET() { let t = 0; for i in 0..100000000 { t += 1; } t }\n",
    );
    app
}

#[test]
fn server_keys_set_the_limits() {
    let app = app("[server]\nbody_limit = \"10kb\"\ntimeout = \"300ms\"\nmax_in_flight = 50\n");
    let server = app.serve("start", &[]);
    let small = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        &[b'a'; 10 * 1024],
    );
    assert_eq!(small.status, 200);
    let big = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        &[b'a'; 10 * 1024 + 1],
    );
    assert_eq!(big.status, 413);
    let started = std::time::Instant::now();
    assert_eq!(server.get("/api/spin").status, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn max_operations_from_the_file() {
    let app = app("[server]\nmax_operations = 1000\n");
    let server = app.serve("start", &[]);
    let response = server.get("/api/spin");
    assert_eq!(
        (response.status, response.json()),
        (504, json!({ "error": "Script timed out" }))
    );
}

#[test]
fn the_command_line_wins() {
    let app = app("[server]\nbody_limit = \"1kb\"\n");
    let server = app.serve("start", &["--body-limit", "4kb"]);
    let response = server.request(
        "POST",
        "/api/echo",
        &[("content-type", "text/plain")],
        &[b'a'; 3000],
    );
    assert_eq!(response.status, 200);
}

#[test]
fn mistakes_are_load_errors_with_key_and_line() {
    for (toml, key, line) in [
        (
            "[server]\ntimeout = \"2s\"\nbodylimit = \"1mb\"\n",
            "server.bodylimit",
            3,
        ),
        (
            "# settings\n\n[server]\nbody_limit = \"1 parsec\"\n",
            "server.body_limit",
            4,
        ),
        ("[server]\ntimeout = \"soon\"\n", "server.timeout", 2),
        (
            "[server]\nmax_operations = \"many\"\n",
            "server.max_operations",
            2,
        ),
        ("[public]\nspa = \"yes\"\n", "public.spa", 2),
        ("[cors]\norigins = [\"not an origin\"]\n", "cors.origins", 2),
        (
            "[cors]\norigins = []\ncredentails = true\n",
            "cors.credentails",
            3,
        ),
        ("[servr]\n", "[servr]", 1),
        ("[server\n", "[server", 1),
    ] {
        let app = app(toml);
        let check = app.run("check");
        assert_eq!(check.status.code(), Some(1), "{toml}");
        let expected = format!("rhapi.toml:{line}:");
        assert!(check.stderr.contains(&expected), "{toml}: {}", check.stderr);
        assert!(
            check.stderr.contains(key),
            "{toml}: {key} in {}",
            check.stderr
        );
        let start = app.run_to_exit("start", &["--port", "0"]);
        assert_eq!(start.status.code(), Some(1), "{toml}");
        assert!(start.stderr.contains(&expected), "{}", start.stderr);
    }
}

#[test]
fn dev_logs_a_mistake_and_keeps_the_last_good_settings() {
    let app = app("[server]\nbody_limit = \"1kb\"\n");
    let server = app.serve("dev", &[]);
    let post = |n: usize| {
        server
            .request(
                "POST",
                "/api/echo",
                &[("content-type", "text/plain")],
                &vec![b'a'; n],
            )
            .status
    };
    assert_eq!(post(2000), 413);

    app.write("rhapi.toml", "[server]\nbody_limit = \"4kb\"\n");
    let started = std::time::Instant::now();
    while post(2000) != 200 {
        assert!(
            started.elapsed() < support::DEADLINE,
            "reload of rhapi.toml never showed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    app.write(
        "rhapi.toml",
        "[server]\nbody_limit = \"4kb\"\nbody_limt = 1\n",
    );
    server.wait_for_log("rhapi.toml:3");
    assert_eq!(post(2000), 200, "the last good settings stay");
    assert_eq!(post(5000), 413);

    app.remove("rhapi.toml");
    let started = std::time::Instant::now();
    while post(5000) != 200 {
        assert!(
            started.elapsed() < support::DEADLINE,
            "defaults never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn dev_starts_with_a_broken_file() {
    let app = app("[server]\nnope = 1\n");
    let server = app.serve("dev", &[]);
    server.wait_for_log("rhapi.toml:2");
    assert_eq!(echo_hi(&server), "hi");
}

/// `check` and `start` refuse `toml`: exit 1, the error names `rhapi.toml:line`, the key
/// and `reason`.
fn refused(app: &TestApp, line: usize, key: &str, reason: &str) {
    let check = app.run("check");
    assert_eq!(check.status.code(), Some(1), "check: {}", check.stderr);
    let expected = format!("rhapi.toml:{line}: {key}: ");
    let error = check
        .stderr
        .lines()
        .find(|l| l.contains(&expected))
        .unwrap_or_else(|| panic!("no {expected:?} in {}", check.stderr));
    assert!(error.contains(reason), "{reason:?} in {error}");
    let start = app.run_to_exit("start", &["--port", "0"]);
    assert_eq!(start.status.code(), Some(1), "start: {}", start.stderr);
    assert!(start.stderr.contains(reason), "{}", start.stderr);
}

#[test]
fn a_public_dir_that_would_serve_the_app_is_refused() {
    let a = app("[public]\ndir = \".\"\n");
    refused(&a, 2, "public.dir", "is the app folder itself");

    // The database (data/app.db unless DATABASE_URL), wherever DATABASE_URL puts it.
    let a = app("[public]\ndir = \"data\"\n");
    a.write("data/app.db", "");
    refused(&a, 2, "public.dir", "holds the database (data/app.db)");
    let a = app("\n[public]\ndir = \"static\"\n");
    a.write("static/logo.txt", "logo");
    a.write(".env", "DATABASE_URL=sqlite:static/db/notes.db\n");
    refused(
        &a,
        3,
        "public.dir",
        "holds the database (static/db/notes.db)",
    );

    let a = app("[public]\ndir = \"pages\"\n");
    refused(&a, 2, "public.dir", "is inside pages/");

    // Another app folder inside this one: its routes, settings and secrets.
    for file in ["pages/api/hello.rhai", "rhapi.toml", ".env"] {
        let a = app("[public]\ndir = \"site\"\n");
        a.write(&format!("site/{file}"), "x");
        let holds = file.strip_suffix("/hello.rhai").unwrap_or(file);
        refused(&a, 2, "public.dir", &format!("holds {holds}"));
    }

    // A symlink that leads to a folder above the app.
    let a = app("[public]\ndir = \"up\"\n");
    std::os::unix::fs::symlink(a.path().parent().unwrap(), a.path().join("up")).unwrap();
    refused(&a, 2, "public.dir", "contains the app folder");
}

#[test]
fn dev_refuses_a_public_dir_that_would_serve_the_app_and_serves_public() {
    let a = app("[public]\ndir = \".\"\n");
    a.write("public/hello.txt", "hello");
    let server = a.serve("dev", &[]);
    server.wait_for_log("rhapi.toml:2: public.dir: '.' is the app folder itself");
    for path in ["/rhapi.toml", "/pages/api/echo.rhai"] {
        assert_eq!(server.get(path).status, 404, "{path}");
    }
    assert_eq!(server.get("/hello.txt").text(), "hello");
}

#[test]
fn a_public_dir_of_its_own_is_fine() {
    // A static site may have a pages/ folder of HTML: only an app's pages/api is refused.
    let a = app("[public]\ndir = \"static\"\n");
    a.write("static/pages/about.html", "<p>about</p>");
    a.write("data/app.db", "");
    let check = a.run("check");
    assert_eq!(check.status.code(), Some(0), "{}", check.stderr);
    let server = a.serve("start", &[]);
    assert_eq!(server.get("/pages/about.html").text(), "<p>about</p>");
}

#[test]
fn cors_foot_guns_are_refused() {
    let a = app("[cors]\norigins = [\"*\"]\ncredentials = true\n");
    refused(
        &a,
        3,
        "cors.credentials",
        "would let every site make signed-in requests",
    );
    for (origin, reason) in [
        ("http://*.example", "has a * inside it"),
        ("https://*", "has a * inside it"),
        ("https://App.Example", "browsers send it lowercase"),
        (
            "https://app.example:443",
            "browsers leave the default port out",
        ),
        ("http://app.example:port", "port that is not a number"),
    ] {
        let a = app(&format!(
            "[cors]\norigins = [\"https://ok.example\", \"{origin}\"]\n"
        ));
        refused(&a, 2, "cors.origins", reason);
    }
}

#[test]
fn the_file_sets_where_to_listen() {
    let port = support::free_port();
    let a = app(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {port}\nworkers = 1\n"
    ));
    let server = a.serve_exact("start", &[], &[], port);
    assert_eq!(echo_hi(&server), "hi");
}

#[test]
fn the_command_line_and_port_win_over_the_files_port() {
    let file_port = support::free_port();
    let a = app(&format!(
        "[server]\nhost = \"127.0.0.1\"\nport = {file_port}\n"
    ));
    let port = support::free_port();
    let server = a.serve_exact("start", &["--port", &port.to_string()], &[], port);
    assert_eq!(server.port, port);
    drop(server);
    let port = support::free_port();
    let server = a.serve_exact("start", &[], &[("PORT", &port.to_string())], port);
    assert_eq!(server.port, port);
}

#[test]
fn bad_listening_values_name_key_and_line() {
    let a = app("[server]\ntimeout = \"2s\"\nport = 70000\n");
    refused(&a, 3, "server.port", "70000 is not a port");
    let a = app("[server]\nworkers = 0\n");
    refused(&a, 2, "server.workers", "must be at least 1");
    let a = app("[server]\nhost = \"\"\n");
    refused(&a, 2, "server.host", "must not be empty");
}

#[test]
fn a_new_port_while_running_needs_a_restart() {
    let port = support::free_port();
    let a = app(&format!("[server]\nport = {port}\n"));
    let server = a.serve_exact("dev", &[], &[], port);
    a.write(
        "rhapi.toml",
        &format!(
            "[server]\nport = {}\nbody_limit = \"1kb\"\n",
            support::free_port()
        ),
    );
    server.wait_for_log("rhapi.toml: server.port changed: it is read at start only");
    // The rest of the file applies; the server still listens where it started.
    let started = std::time::Instant::now();
    while server
        .request(
            "POST",
            "/api/echo",
            &[("content-type", "text/plain")],
            &[b'a'; 2000],
        )
        .status
        != 413
    {
        assert!(
            started.elapsed() < support::DEADLINE,
            "body_limit never applied"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
