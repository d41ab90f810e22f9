//! docs/reference.md, "env": secrets from `.env` reach scripts through `env::NAME`, `env::get` and the
//! third handler parameter, in the documented load order, and never reach clients or logs.

use crate::support;

use serde_json::json;
use support::{Response, Server, TestApp};

/// A route answering JSON with what it reads from the environment.
const READER: &str = r#"
fn GET(req, res) {
    res.json(#{
        greeting: env::RHAPI_T_GREETING,
        via_get: env::get("RHAPI_T_GREETING"),
        unset_via_get: env::get("RHAPI_T_NEVER_SET"),
    });
}
"#;

fn json_of(response: &Response) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn env_module_reads_values_from_dot_env() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=hello-there\n");
    app.write("pages/api/read.rhai", READER);
    let server = app.serve("dev", &[]);
    assert_eq!(
        json_of(&server.get("/api/read")),
        json!({ "greeting": "hello-there", "via_get": "hello-there", "unset_via_get": null })
    );
}

#[test]
fn third_handler_parameter_is_the_environment_as_a_map() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=hello-there\n");
    app.write(
        "pages/api/read.rhai",
        r#"
fn GET(req, res, env) {
    res.json(#{
        dot: env.RHAPI_T_GREETING,
        index: env["RHAPI_T_GREETING"],
        unset_dot: env.RHAPI_T_NEVER_SET,
        unset_index: env["RHAPI_T_NEVER_SET"],
    });
}
"#,
    );
    app.write(
        "pages/api/legacy.rhai",
        "fn handler(req, res, env) {\n    res.send(env.RHAPI_T_GREETING);\n}\n",
    );
    let server = app.serve("dev", &[]);
    assert_eq!(
        json_of(&server.get("/api/read")),
        json!({ "dot": "hello-there", "index": "hello-there", "unset_dot": null, "unset_index": null })
    );
    let legacy = server.get("/api/legacy");
    assert_eq!(
        (legacy.status, legacy.text()),
        (200, "hello-there".to_string())
    );
}

#[test]
fn the_env_map_is_read_only() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=hello-there\n");
    app.write(
        "pages/api/write.rhai",
        "fn GET(req, res, env) {\n    env[\"RHAPI_T_GREETING\"] = \"changed\";\n    res.send(\"wrote\");\n}\n",
    );
    app.write("pages/api/read.rhai", READER);
    let server = app.serve("dev", &[]);
    let write = server.get("/api/write");
    assert_eq!(
        write.status,
        500,
        "writing to env must be a script error: {}",
        write.text()
    );
    assert_eq!(json_of(&server.get("/api/read"))["greeting"], "hello-there");
}

#[test]
fn an_unset_env_name_is_a_runtime_error_naming_the_key() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=hello-there\n");
    app.write(
        "pages/api/missing.rhai",
        "fn GET(req, res) {\n    res.send(env::RHAPI_T_NOT_THERE);\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/missing");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("RHAPI_T_NOT_THERE"),
        "{body}"
    );
    assert_eq!(body["file"], "pages/api/missing.rhai");
    assert_eq!(body["line"], 2, "{body}");
    server.wait_for_log_line("naming the key", |l| {
        l.contains("RHAPI_T_NOT_THERE") && l.contains("pages/api/missing.rhai")
    });
    server.sync_log();
    assert!(!server.log_text().contains("hello-there"));
}

#[test]
fn process_env_wins_over_env_local_which_wins_over_env() {
    let app = TestApp::new();
    app.write(
        ".env",
        "RHAPI_T_A=from-env\nRHAPI_T_B=from-env\nRHAPI_T_C=from-env\n",
    );
    app.write(".env.local", "RHAPI_T_A=from-local\nRHAPI_T_B=from-local\n");
    app.write(
        "pages/api/order.rhai",
        "fn GET() {\n    #{ a: env::RHAPI_T_A, b: env::RHAPI_T_B, c: env::RHAPI_T_C }\n}\n",
    );
    let server = app.serve_with_env("dev", &[], &[("RHAPI_T_A", "from-process")]);
    assert_eq!(
        json_of(&server.get("/api/order")),
        json!({ "a": "from-process", "b": "from-local", "c": "from-env" })
    );
}

#[test]
fn dotenv_syntax_quotes_export_comments_and_expansion() {
    let app = TestApp::new();
    app.write(
        ".env",
        concat!(
            "# a comment line\n",
            "\n",
            "RHAPI_T_PLAIN=plain-value\n",
            "export RHAPI_T_EXPORTED=exported-value\n",
            "RHAPI_T_DOUBLE=\"double quoted # not a comment\"\n",
            "RHAPI_T_SINGLE='single ${RHAPI_T_PLAIN}'\n",
            "RHAPI_T_SPACED = spaced-value\n",
            "RHAPI_T_INLINE=inline-value # trailing comment\n",
            "RHAPI_T_HOST=db.internal\n",
            "RHAPI_T_URL=postgres://${RHAPI_T_HOST}:5432/app\n",
            "RHAPI_T_ESCAPED=\"line1\\nline2\"\n",
        ),
    );
    app.write(
        "pages/api/syntax.rhai",
        r#"
fn GET() {
    #{
        plain: env::RHAPI_T_PLAIN,
        exported: env::RHAPI_T_EXPORTED,
        double: env::RHAPI_T_DOUBLE,
        single: env::RHAPI_T_SINGLE,
        spaced: env::RHAPI_T_SPACED,
        inline: env::RHAPI_T_INLINE,
        url: env::RHAPI_T_URL,
        escaped: env::RHAPI_T_ESCAPED,
    }
}
"#,
    );
    let server = app.serve("dev", &[]);
    assert_eq!(
        json_of(&server.get("/api/syntax")),
        json!({
            "plain": "plain-value",
            "exported": "exported-value",
            "double": "double quoted # not a comment",
            "single": "single ${RHAPI_T_PLAIN}",
            "spaced": "spaced-value",
            "inline": "inline-value",
            "url": "postgres://db.internal:5432/app",
            "escaped": "line1\nline2",
        })
    );
}

#[test]
fn expansion_sees_the_process_environment() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_URL=https://${RHAPI_T_DOMAIN}/v1\n");
    app.write("pages/api/url.rhai", "fn GET() { env::RHAPI_T_URL }\n");
    let server = app.serve_with_env("dev", &[], &[("RHAPI_T_DOMAIN", "example.test")]);
    let response = server.get("/api/url");
    assert_eq!(
        (response.status, response.text()),
        (200, "https://example.test/v1".to_string())
    );
}

const EXAMPLE: &str = "RHAPI_T_API_KEY=dummy-key\nRHAPI_T_REGION=dummy-region\n";

const EXAMPLE_READER: &str = r#"
fn GET() {
    #{ key: env::get("RHAPI_T_API_KEY"), region: env::get("RHAPI_T_REGION") }
}
"#;

#[test]
fn dev_without_dot_env_falls_back_to_env_example_and_warns() {
    let app = TestApp::new();
    app.write(".env.example", EXAMPLE);
    app.write("pages/api/keys.rhai", EXAMPLE_READER);
    let server = app.serve("dev", &[]);
    assert_eq!(
        json_of(&server.get("/api/keys")),
        json!({ "key": "dummy-key", "region": "dummy-region" })
    );
    let warning = server.wait_for_log_line("warning about the .env.example fallback", |l| {
        l.contains(".env.example") && l.contains("RHAPI_T_API_KEY")
    });
    assert!(warning.contains("RHAPI_T_REGION"), "{warning}");
    assert!(warning.contains("WARN"), "a warning: {warning}");
    server.sync_log();
    assert!(
        !server.log_text().contains("dummy-key"),
        "{}",
        server.log_text()
    );
}

#[test]
fn dev_with_dot_env_does_not_use_env_example() {
    let app = TestApp::new();
    app.write(".env.example", EXAMPLE);
    app.write(".env", "RHAPI_T_API_KEY=real-key\n");
    app.write("pages/api/keys.rhai", EXAMPLE_READER);
    let server = app.serve("dev", &[]);
    assert_eq!(
        json_of(&server.get("/api/keys")),
        json!({ "key": "real-key", "region": null })
    );
}

#[test]
fn start_never_falls_back_and_warns_about_unset_example_keys() {
    let app = TestApp::new();
    app.write(".env.example", EXAMPLE);
    app.write(".env", "RHAPI_T_API_KEY=real-key\n");
    app.write("pages/api/keys.rhai", EXAMPLE_READER);
    let server = app.serve("start", &[]);
    assert_eq!(
        json_of(&server.get("/api/keys")),
        json!({ "key": "real-key", "region": null })
    );
    let warning =
        server.wait_for_log_line("warning about unset keys", |l| l.contains("RHAPI_T_REGION"));
    assert!(
        !warning.contains("RHAPI_T_API_KEY"),
        "the set key is not reported as unset: {warning}"
    );
    server.sync_log();
    assert!(!server.log_text().contains("real-key"));
}

#[test]
fn start_without_dot_env_ignores_env_example() {
    let app = TestApp::new();
    app.write(".env.example", EXAMPLE);
    app.write("pages/api/keys.rhai", EXAMPLE_READER);
    let server = app.serve("start", &[]);
    assert_eq!(
        json_of(&server.get("/api/keys")),
        json!({ "key": null, "region": null })
    );
    let warning =
        server.wait_for_log_line("warning about unset keys", |l| l.contains("RHAPI_T_REGION"));
    assert!(warning.contains("RHAPI_T_API_KEY"), "{warning}");
}

#[test]
fn editing_dot_env_reloads_it_for_the_next_request() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=first-value\n");
    app.write("pages/api/read.rhai", READER);
    let server = app.serve("dev", &[]);
    assert_eq!(json_of(&server.get("/api/read"))["greeting"], "first-value");

    app.write(".env", "RHAPI_T_GREETING=second-value\n");
    server.poll_until("/api/read", |r| {
        r.status == 200 && r.json()["greeting"] == "second-value"
    });

    // A new .env.local overrides it, and removing it goes back.
    app.write(".env.local", "RHAPI_T_GREETING=local-value\n");
    server.poll_until("/api/read", |r| {
        r.status == 200 && r.json()["greeting"] == "local-value"
    });
    app.remove(".env.local");
    server.poll_until("/api/read", |r| {
        r.status == 200 && r.json()["greeting"] == "second-value"
    });
}

#[test]
fn editing_dot_env_reloads_it_in_start_too() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=first-value\n");
    app.write("pages/api/read.rhai", READER);
    let server = app.serve("start", &[]);
    assert_eq!(json_of(&server.get("/api/read"))["greeting"], "first-value");
    app.write(".env", "RHAPI_T_GREETING=second-value\n");
    server.poll_until("/api/read", |r| {
        r.status == 200 && r.json()["greeting"] == "second-value"
    });
}

/// Secrets that error messages would otherwise print.
const SECRET_ENV: &str = "RHAPI_T_SECRET=s3cr3t-from-dot-env\nRHAPI_T_SHORT=abc\n";
const SECRET_LOCAL: &str = "RHAPI_T_LOCAL_SECRET=l0cal-s3cret-value\n";

fn secret_app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write(".env", SECRET_ENV);
    app.write(".env.local", SECRET_LOCAL);
    app.write(
        "pages/api/leak.rhai",
        "fn GET(req, res) {\n    throw \"cannot connect with \" + env::RHAPI_T_SECRET + \" and \" + env::RHAPI_T_LOCAL_SECRET;\n}\n",
    );
    app.write(
        "pages/api/leak_value.rhai",
        "fn GET(req, res) {\n    let n = parse_int(env::RHAPI_T_SECRET);\n    res.json(n);\n}\n",
    );
    app.write(
        "pages/api/print.rhai",
        "fn GET(req, res) {\n    print(\"token is \" + env::RHAPI_T_SECRET);\n    debug(env::RHAPI_T_LOCAL_SECRET);\n    res.send(\"printed\");\n}\n",
    );
    app.write(
        "pages/api/echo.rhai",
        "fn handler(req, res) {\n    res.json(req);\n}\n",
    );
    app
}

const SECRETS: [&str; 2] = ["s3cr3t-from-dot-env", "l0cal-s3cret-value"];

#[test]
fn dev_error_bodies_redact_env_values() {
    let app = secret_app();
    let server = app.serve("dev", &[]);
    let response = server.get("/api/leak");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert_eq!(
        body["error"], "cannot connect with [redacted] and [redacted]",
        "{body}"
    );
    assert_eq!(body["file"], "pages/api/leak.rhai");

    // A message Rhai itself builds from the value.
    let response = server.get("/api/leak_value");
    assert_eq!(response.status, 500);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("[redacted]"),
        "{}",
        response.text()
    );
    for secret in SECRETS {
        assert!(!response.text().contains(secret), "{}", response.text());
    }

    let printed = server.get("/api/print");
    assert_eq!(printed.text(), "printed");
    server.wait_for_log("token is [redacted]");

    assert_no_secret_in_log(&server);
}

#[test]
fn start_logs_redact_env_values() {
    let app = secret_app();
    let server = app.serve("start", &[]);
    let response = server.get("/api/leak");
    assert_eq!(response.status, 500);
    assert_eq!(response.json(), json!({ "error": "Internal Server Error" }));
    server.wait_for_log_line("the error of GET /api/leak", |l| {
        l.contains("GET /api/leak") && l.contains("[redacted]")
    });
    assert_eq!(server.get("/api/print").text(), "printed");
    server.wait_for_log("token is [redacted]");
    assert_no_secret_in_log(&server);
}

#[test]
fn env_example_fallback_values_are_redacted_too() {
    let app = TestApp::new();
    app.write(".env.example", "RHAPI_T_EXAMPLE_SECRET=example-s3cret\n");
    app.write(
        "pages/api/leak.rhai",
        "fn GET() {\n    throw \"bad key \" + env::RHAPI_T_EXAMPLE_SECRET;\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/leak");
    assert_eq!(response.status, 500);
    assert_eq!(response.json()["error"], "bad key [redacted]");
    server.sync_log();
    assert!(
        !server.log_text().contains("example-s3cret"),
        "{}",
        server.log_text()
    );
}

#[test]
fn env_values_never_appear_in_req() {
    let app = secret_app();
    let server = app.serve_with_env("dev", &[], &[("RHAPI_T_PROCESS_SECRET", "pr0cess-s3cret")]);
    let response = server.request(
        "POST",
        "/api/echo?q=1",
        &[("content-type", "application/json"), ("cookie", "a=b")],
        br#"{"x": 1}"#,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    assert!(text.contains("\"x\":1"), "the echo works: {text}");
    for secret in SECRETS.iter().chain(&["pr0cess-s3cret"]) {
        assert!(!text.contains(secret), "{secret} in req: {text}");
    }
    let req = response.json();
    let keys: Vec<&String> = req.as_object().unwrap().keys().collect();
    for key in &keys {
        assert!(
            [
                "method", "url", "path", "query", "params", "headers", "cookies", "body",
                "raw_body", "locals", "ip", "id", "protocol", "host"
            ]
            .contains(&key.as_str()),
            "unexpected field {key} in req"
        );
    }
}

#[test]
fn the_env_map_does_not_print_its_values() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_GREETING=hello-there-secret\n");
    app.write(
        "pages/api/show.rhai",
        "fn GET(req, res, env) {\n    throw `env is ${env}`;\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/show");
    assert_eq!(response.status, 500);
    assert!(
        !response.text().contains("hello-there-secret"),
        "{}",
        response.text()
    );
    server.sync_log();
    assert!(!server.log_text().contains("hello-there-secret"));
}

/// No value of [`SECRETS`] in anything the server logged up to now.
fn assert_no_secret_in_log(server: &Server) {
    server.sync_log();
    for secret in SECRETS {
        assert!(
            !server.log_text().contains(secret),
            "{secret} in the log:\n{}",
            server.log_text()
        );
    }
}
