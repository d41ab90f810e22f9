//! `db::` to PostgreSQL over TLS, chosen by `sslmode` in `DATABASE_URL`.
//!
//! The test server (`.ci/postgres`) takes TLS with a certificate for localhost and 127.0.0.1
//! from a throw-away CA, whose PEM file `RHAPI_TEST_POSTGRES_CA` names. The tests that need
//! the server are `#[ignore]`d, so a plain `cargo test` reports them as ignored rather than
//! passed; `cargo test --test tests -- --ignored batteries_db_tls::` runs them (`.ci/run` does).

use crate::support;

use serde_json::json;
use support::{Server, TestApp};

/// The test server's URL and its CA file. The tests that need them are `#[ignore]`d
/// (`cargo test -- --ignored` runs them); asked for without a server, they fail.
fn test_server() -> (String, String) {
    let url = std::env::var("RHAPI_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let ca = std::env::var("RHAPI_TEST_POSTGRES_CA")
        .ok()
        .filter(|v| !v.is_empty());
    match (url, ca) {
        (Some(url), Some(ca)) => (url, ca),
        _ => panic!(
            "RHAPI_TEST_POSTGRES_URL or RHAPI_TEST_POSTGRES_CA is unset: start a server with \
             `eval \"$(.ci/postgres start)\"` (see README)"
        ),
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

/// Serves with `database_url`, expects a 200 from `/api/session`, and returns its JSON
/// (`ssl`: whether the app's own connection is encrypted, `version`: the TLS version).
fn session(database_url: &str) -> serde_json::Value {
    let (_app, server) = serve(database_url);
    let response = server.get("/api/session");
    assert_eq!(response.status, 200, "{database_url}: {}", response.text());
    response.json()
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
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn verify_full_with_the_servers_ca_connects_over_tls() {
    let (base, ca) = test_server();
    let session = session(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"));
    assert_eq!(session["ssl"], json!(true), "{session}");
    assert!(
        session["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLSv1.")),
        "{session}"
    );
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn channel_binding_require_works_over_tls() {
    let (base, ca) = test_server();
    // Hosted databases (Neon, for one) hand out URLs with `channel_binding=require`: the
    // login must be bound to the TLS session (SCRAM-SHA-256-PLUS), or fail.
    let url = format!("{base}?sslmode=verify-full&sslrootcert={ca}&channel_binding=require");
    assert_eq!(session(&url)["ssl"], json!(true));
    // Without TLS there is nothing to bind to.
    refused(
        &base,
        "?channel_binding=require",
        "server did not use channel binding",
    );
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn require_and_prefer_check_the_certificate_against_trusted_roots() {
    let (base, _) = test_server();
    // The test CA is in no trusted root set: the connection must be refused, not made
    // (`prefer` as node-postgres reads it: never plain TCP, never an unchecked certificate).
    for query in ["?sslmode=require", "?sslmode=prefer"] {
        let body = refused(&base, query, "cannot connect to the database");
        assert!(body.contains("invalid peer certificate"), "{query}: {body}");
    }
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn verify_full_refuses_a_certificate_for_another_host() {
    let (base, ca) = test_server();
    // The same server, reached at its address but under a name its certificate lacks.
    let (userinfo, rest) = base.split_once('@').expect("user info in the test URL");
    let (host_port, db) = rest.split_once('/').expect("a database in the test URL");
    let (host, port) = host_port.rsplit_once(':').expect("a port in the test URL");
    let renamed = format!("{userinfo}@wrong.invalid:{port}/{db}");
    let body = refused(
        &renamed,
        &format!("?hostaddr={host}&sslmode=verify-full&sslrootcert={ca}"),
        "certificate not valid for name",
    );
    assert!(body.contains("wrong.invalid"), "{body}");
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn prefer_or_a_root_file_alone_connects_over_checked_tls() {
    let (base, ca) = test_server();
    // With the server's CA, both connect, encrypted.
    for query in [
        format!("?sslmode=prefer&sslrootcert={ca}"),
        format!("?sslrootcert={ca}"),
    ] {
        assert_eq!(
            session(&format!("{base}{query}"))["ssl"],
            json!(true),
            "{query}"
        );
    }
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn no_verify_connects_over_tls_without_checking() {
    let (base, _) = test_server();
    assert_eq!(
        session(&format!("{base}?sslmode=no-verify"))["ssl"],
        json!(true)
    );
}

#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL and RHAPI_TEST_POSTGRES_CA (see README)"]
fn without_sslmode_the_connection_is_plain() {
    let (base, _) = test_server();
    assert_eq!(session(&base)["ssl"], json!(false));
}

#[test]
fn a_bad_sslmode_root_file_or_client_certificate_is_named_without_the_url() {
    // Refused before any connection: no server needed (port 1 is never reached).
    let base = "postgres://app:pw-not-shown@127.0.0.1:1/app";
    refused(base, "?sslmode=strict", "DATABASE_URL has sslmode=strict");
    refused(
        base,
        "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "DATABASE_URL sslrootcert /nonexistent/ca.pem",
    );
    refused(
        base,
        "?sslmode=require&sslkey=/client.key",
        "DATABASE_URL has sslkey: client certificates are not supported",
    );
}
