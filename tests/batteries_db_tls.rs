//! `db::` to PostgreSQL over TLS, chosen by `sslmode` in `DATABASE_URL`.
//!
//! The test server (`.ci/postgres`) takes TLS with a certificate for localhost and 127.0.0.1
//! from a throw-away CA, whose PEM file `RHAPI_TEST_POSTGRES_CA` names. Outside CI unset
//! variables skip these tests with a note; under `CI=true` they fail.

mod support;

use serde_json::json;
use support::{Server, TestApp};

/// The test server's URL and its CA file, when there is a test server.
fn test_server() -> Option<(String, String)> {
    let url = std::env::var("RHAPI_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let ca = std::env::var("RHAPI_TEST_POSTGRES_CA")
        .ok()
        .filter(|v| !v.is_empty());
    match (url, ca) {
        (Some(url), Some(ca)) => Some((url, ca)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "RHAPI_TEST_POSTGRES_URL or RHAPI_TEST_POSTGRES_CA is unset under CI: \
             .ci/run must start PostgreSQL"
        ),
        _ => {
            eprintln!("RHAPI_TEST_POSTGRES_URL/_CA unset: PostgreSQL TLS tests skipped");
            None
        }
    }
}

/// An app whose `/api/session` tells how its own database connection is secured, served.
fn serve(database_url: &str) -> (TestApp, Server) {
    let app = TestApp::new();
    app.write(
        "pages/api/session.rhai",
        r#"
fn GET() {
    db::query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", [])
}
"#,
    );
    let server = app.serve_with_env("dev", &[], &[("DATABASE_URL", database_url)]);
    (app, server)
}

/// Serves with `base` + `query` as `DATABASE_URL`, expects a 500 whose body says `expected`
/// and not the password, and returns the body.
fn refused(base: &str, query: &str, expected: &str) -> String {
    let (_app, server) = serve(&format!("{base}{query}"));
    let response = server.get("/api/session");
    let body = response.text();
    assert_eq!(response.status, 500, "{query}: {body}");
    assert!(body.contains(expected), "{query}: {body}");
    assert!(!body.contains(password_of(base)), "{query}: {body}");
    body
}

fn password_of(url: &str) -> &str {
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map_or("", |(userinfo, _)| userinfo);
    userinfo
        .split_once(':')
        .map_or("", |(_, password)| password)
}

#[test]
fn verify_full_with_the_servers_ca_connects_over_tls() {
    let Some((base, ca)) = test_server() else {
        return;
    };
    let (_app, server) = serve(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"));
    let response = server.get("/api/session");
    assert_eq!(response.status, 200, "{}", response.text());
    let session = response.json();
    assert_eq!(session["ssl"], json!(true), "{session}");
    assert!(
        session["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{session}"
    );
}

#[test]
fn channel_binding_require_works_over_tls() {
    let Some((base, ca)) = test_server() else {
        return;
    };
    // Hosted databases (Neon, for one) hand out URLs with `channel_binding=require`: the
    // login must be bound to the TLS session (SCRAM-SHA-256-PLUS), or fail.
    let (_app, server) = serve(&format!(
        "{base}?sslmode=verify-full&sslrootcert={ca}&channel_binding=require"
    ));
    let response = server.get("/api/session");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["ssl"], json!(true));
    // Without TLS there is nothing to bind to.
    refused(
        &base,
        "?channel_binding=require",
        "server did not use channel binding",
    );
}

#[test]
fn require_checks_the_certificate_against_trusted_roots() {
    let Some((base, _)) = test_server() else {
        return;
    };
    // The test CA is in no trusted root set: the connection must be refused, not made.
    let body = refused(&base, "?sslmode=require", "cannot connect to the database");
    assert!(body.contains("invalid peer certificate"), "{body}");
}

#[test]
fn no_verify_connects_over_tls_without_checking() {
    let Some((base, _)) = test_server() else {
        return;
    };
    let (_app, server) = serve(&format!("{base}?sslmode=no-verify"));
    let response = server.get("/api/session");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["ssl"], json!(true));
}

#[test]
fn without_sslmode_the_connection_is_plain() {
    let Some((base, _)) = test_server() else {
        return;
    };
    let (_app, server) = serve(&base);
    let response = server.get("/api/session");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["ssl"], json!(false));
}

#[test]
fn a_bad_sslmode_or_root_file_is_named_without_the_url() {
    let Some((base, _)) = test_server() else {
        return;
    };
    refused(&base, "?sslmode=strict", "DATABASE_URL has sslmode=strict");
    refused(
        &base,
        "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "DATABASE_URL sslrootcert /nonexistent/ca.pem",
    );
}
