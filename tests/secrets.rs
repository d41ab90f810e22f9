//! docs/reference.md, "env" ("Secrets stay secret"): secret values never reach a client or a
//! log line, whether they come from `.env` or from the process environment, as they are or
//! escaped (`debug`, printed inside a map, JSON), and not through a caught error either;
//! short values and `PUBLIC_` keys are left alone.

use crate::support;

use support::{Server, TestApp};

/// A PEM-like secret with the characters that escaping changes: newlines, a quote and a
/// backslash. In `.env` syntax (double quotes, escapes) and as the value scripts see.
const PEM_IN_DOTENV: &str =
    r#""-----BEGIN TEST KEY-----\nMIIEvQIBADANq\"uote\\slash\n-----END TEST KEY-----""#;
/// A part of the PEM found in no other text: its presence in any form is a leak.
const PEM_BODY: &str = "MIIEvQIBADAN";

/// Panics if `needle` appears anywhere in the server's log so far.
fn assert_not_logged(server: &Server, needle: &str) {
    server.sync_log();
    let log = server.log_text();
    assert!(!log.contains(needle), "{needle} in the log:\n{log}");
}

#[test]
fn values_of_listed_keys_from_the_process_environment_are_redacted() {
    let app = TestApp::new();
    // Listed with a placeholder, set for real by the process environment (as Docker,
    // systemd and Kubernetes do).
    app.write(".env.example", "RHAPI_T_API_TOKEN=changeme\n");
    app.write(".env", "RHAPI_T_OTHER=from-the-dot-env-file\n");
    app.write(
        "pages/api/leak.rhai",
        "fn GET() {\n    print(\"token \" + env::RHAPI_T_API_TOKEN);\n    throw \"cannot call with \" + env::RHAPI_T_API_TOKEN + \" \" + env::RHAPI_T_UNLISTED;\n}\n",
    );
    let env = [
        ("RHAPI_T_API_TOKEN", "pr0cess-env-t0ken"),
        ("RHAPI_T_UNLISTED", "not-a-listed-key"),
    ];
    for mode in ["dev", "start"] {
        let server = app.serve_with_env(mode, &[], &env);
        let response = server.get("/api/leak");
        assert_eq!(response.status, 500, "{mode}: {}", response.text());
        assert!(!response.text().contains("pr0cess-env-t0ken"), "{mode}");
        if mode == "dev" {
            // Only keys the app lists are its secrets; the rest of the process environment
            // (PATH, HOME, ...) is not.
            assert_eq!(
                response.json()["error"],
                "cannot call with [redacted] not-a-listed-key"
            );
        }
        server.wait_for_log("token [redacted]");
        assert_not_logged(&server, "pr0cess-env-t0ken");
    }
}

#[test]
fn escaped_forms_of_a_multi_line_secret_are_redacted() {
    let app = TestApp::new();
    app.write(".env", &format!("RHAPI_T_PEM={PEM_IN_DOTENV}\n"));
    app.write(
        "pages/api/shape.rhai",
        "fn GET() {\n    let k = env::RHAPI_T_PEM;\n    #{ newline: k.contains('\\n'), quote: k.contains('\"'), backslash: k.contains('\\\\') }\n}\n",
    );
    app.write(
        "pages/api/print.rhai",
        r#"fn GET() {
    debug(env::RHAPI_T_PEM);
    print(#{ key: env::RHAPI_T_PEM });
    log::info(#{ nested: [env::RHAPI_T_PEM] });
    log::warn(#{ key: env::RHAPI_T_PEM }.to_json());
    "printed"
}
"#,
    );
    app.write(
        "pages/api/json.rhai",
        "fn GET() {\n    throw #{ key: env::RHAPI_T_PEM }.to_json();\n}\n",
    );
    for mode in ["dev", "start"] {
        let server = app.serve(mode, &[]);
        let shape = server.get("/api/shape").json();
        assert_eq!(
            shape,
            serde_json::json!({ "newline": true, "quote": true, "backslash": true }),
            "the value has every character escaping changes"
        );
        assert_eq!(server.get("/api/print").text(), "printed");
        server.wait_for_log("[pages/api/print.rhai] line 5: {\"key\":\"[redacted]\"}");
        let log = server.log_text();
        assert!(log.contains("debug: line 2: \"[redacted]\""), "{log}");
        assert!(log.contains("line 3: #{\"key\": \"[redacted]\"}"), "{log}");
        assert!(
            log.contains("line 4: #{\"nested\": [\"[redacted]\"]}"),
            "{log}"
        );

        // A message holding the JSON text, sent to the client as JSON again.
        let response = server.get("/api/json");
        assert_eq!(response.status, 500);
        assert!(!response.text().contains(PEM_BODY), "{}", response.text());
        if mode == "dev" {
            assert_eq!(response.json()["error"], "{\"key\":\"[redacted]\"}");
        }
        assert_not_logged(&server, PEM_BODY);
    }
}

#[test]
fn a_caught_error_cannot_carry_a_secret_to_the_client() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_SECRET=s3cr3t-not-a-number\n");
    app.write(
        "pages/api/rethrow.rhai",
        "fn GET() {\n    try { parse_int(env::RHAPI_T_SECRET) } catch (e) { throw #{ status: 400, error: e } }\n}\n",
    );
    app.write(
        "pages/api/message.rhai",
        "fn GET() {\n    let message = ();\n    try { parse_int(env::RHAPI_T_SECRET); } catch (e) { message = e.message; }\n    #{ message: message }\n}\n",
    );
    app.write(
        "pages/api/nested.rhai",
        "fn parse(s) { parse_int(s) }\nfn GET() {\n    let caught = ();\n    try { parse(env::RHAPI_T_SECRET); } catch (e) { caught = e; }\n    #{ e: caught }\n}\n",
    );
    for mode in ["dev", "start"] {
        let server = app.serve(mode, &[]);
        let response = server.get("/api/rethrow");
        assert_eq!(response.status, 400, "{mode}: {}", response.text());
        let message = response.json()["error"]["message"].clone();
        assert!(
            message.as_str().unwrap().contains("[redacted]"),
            "{mode}: {message}"
        );
        for path in ["/api/rethrow", "/api/message", "/api/nested"] {
            let response = server.get(path);
            assert!(
                response.text().contains("[redacted]"),
                "{mode} {path}: {}",
                response.text()
            );
            assert!(
                !response.text().contains("s3cr3t"),
                "{mode} {path}: {}",
                response.text()
            );
        }
    }
}

#[test]
fn short_values_and_public_keys_are_not_redacted() {
    let app = TestApp::new();
    app.write(
        ".env",
        "RHAPI_T_SEVEN=seven77\nRHAPI_T_EIGHT=eight888\nPUBLIC_RHAPI_T_SITE=https://site.example/public\n",
    );
    app.write(
        "pages/api/show.rhai",
        "fn GET() {\n    throw `${env::RHAPI_T_SEVEN} ${env::RHAPI_T_EIGHT} ${env::PUBLIC_RHAPI_T_SITE}`;\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/show");
    assert_eq!(response.status, 500);
    assert_eq!(
        response.json()["error"],
        "seven77 [redacted] https://site.example/public"
    );
}

/// A module's top level runs while the app loads, before any request, and may log; a
/// `rhapi test` test function runs outside any request too. Their lines are redacted all
/// the same.
#[test]
fn lines_logged_while_loading_and_by_test_functions_are_redacted() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_KEY=sk-load-time-secret\n");
    app.write(".env.test", "RHAPI_T_KEY=sk-test-time-secret\n");
    app.write(
        "pages/_lib/config.rhai",
        "print(\"key \" + env::RHAPI_T_KEY);\nexport const READY = true;\n",
    );
    app.write(
        "pages/api/ping.rhai",
        "import \"../_lib/config\" as config;\nfn GET() { config::READY }\n",
    );
    let server = app.serve("start", &[]);
    assert_eq!(server.get("/api/ping").text(), "true");
    assert_not_logged(&server, "sk-load-time-secret");
    assert!(
        server.log_text().contains("key [redacted]"),
        "{}",
        server.log_text()
    );

    app.write(
        "tests/key.test.rhai",
        "fn test_prints_the_key() {\n    print(\"key \" + env::RHAPI_T_KEY);\n    log::warn(\"again \" + env::RHAPI_T_KEY);\n}\n",
    );
    let out = app.run_to_exit("test", &[]);
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(out.status.success(), "{printed}");
    assert!(!printed.contains("sk-test-time-secret"), "{printed}");
    assert!(printed.contains("key [redacted]"), "{printed}");
}
