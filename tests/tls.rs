//! docs/reference.md, "HTTPS": `[tls]` serves HTTPS with HTTP/2 and HTTP/1.1 by ALPN on
//! the same port (on the socket handed over, as every test server is, and on a port rhapi
//! binds itself), reloads the certificate when its files change, keeps the last good pair
//! on a bad change, and refuses to start (or pass `check`) with a bad file.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConnection, StreamOwned};

use crate::support;
use support::{Exchange, Response, Server, TestApp, DEADLINE};

const TLS_TOML: &str = "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";

/// An app with a hello route and `[tls]` naming `cert.pem` and `key.pem`, which hold the
/// test pair `name` ("server" or "other").
fn tls_app(name: &str) -> TestApp {
    let app = TestApp::new();
    app.write(
        "pages/api/hello.rhai",
        "fn GET(req) { \"hello over tls\" }\n",
    );
    app.write("rhapi.toml", TLS_TOML);
    install(&app, name, name);
    app
}

/// Copies the test certificate `cert` and the key of `key` into the app's `cert.pem` and
/// `key.pem` (in place, as a renewal that rewrites the files does).
fn install(app: &TestApp, cert: &str, key: &str) {
    app.write("cert.pem", &pem(&support::tls::server(cert).0));
    app.write("key.pem", &pem(&support::tls::server(key).1));
}

fn pem(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("test certificate")
}

/// The DER of test certificate `name`, to compare with what a server presents.
fn certificate(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(support::tls::server(name).0).expect("test certificate")
}

/// A client that trusts the test CA and offers `alpn`.
fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(support::tls::ca()).expect("test CA"))
        .expect("test CA");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A new connection to `port`, handshake done (the server's certificate verified against
/// the test CA for `localhost`).
fn connect(port: u16, alpn: &[&[u8]]) -> Tls {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).ok();
    let name = ServerName::try_from("localhost").expect("server name");
    let mut conn = ClientConnection::new(client_config(alpn), name).expect("client");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("TLS handshake");
    }
    StreamOwned::new(conn, tcp)
}

/// The certificate a new connection to `port` is served.
fn served_certificate(port: u16) -> CertificateDer<'static> {
    let tls = connect(port, &[b"http/1.1"]);
    tls.conn.peer_certificates().expect("a certificate")[0].clone()
}

/// `GET path` over HTTPS and HTTP/1.1 on a new connection.
fn https_get(port: u16, path: &str) -> Response {
    let mut tls = connect(port, &[b"http/1.1"]);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut data = Vec::new();
    // A server that closes without close_notify ends the read with an error: the bytes
    // read so far are the response.
    let _ = tls.read_to_end(&mut data);
    Response::from_bytes(&data)
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&data)))
}

/// Polls new connections until one is served `expected`; panics with the log after
/// [`DEADLINE`].
fn wait_for_certificate(server: &Server, expected: &CertificateDer<'_>) {
    let started = Instant::now();
    while served_certificate(server.port) != *expected {
        assert!(
            started.elapsed() < DEADLINE,
            "the new certificate was never served:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn https_answers_over_http_1_1_and_http_2() {
    let app = tls_app("server");
    let server = app.serve("start", &[]);
    server.wait_for_log(&format!("ready on https://127.0.0.1:{}", server.port));
    let hello = https_get(server.port, "/api/hello");
    assert_eq!((hello.status, hello.text()), (200, "hello over tls".into()));
    assert_eq!(served_certificate(server.port), certificate("server"));
    // A client offering both gets HTTP/2.
    let both = connect(server.port, &[b"h2", b"http/1.1"]);
    assert_eq!(both.conn.alpn_protocol(), Some(&b"h2"[..]));
    drop(both);
    let (version, status, body) = http2_get(server.port, "/api/hello");
    assert_eq!(version, actix_web::http::Version::HTTP_2);
    assert_eq!((status, body.as_str()), (200, "hello over tls"));
    server.wait_for_log("GET /api/hello 200");
}

/// `GET path` with awc over HTTPS, offering only h2: the version, status and body.
fn http2_get(port: u16, path: &str) -> (actix_web::http::Version, u16, String) {
    actix_rt::System::new().block_on(async move {
        let connector = awc::Connector::new().rustls_0_23(client_config(&[b"h2"]));
        let client = awc::Client::builder().connector(connector).finish();
        let mut response = client
            .get(format!("https://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("HTTP/2 request");
        let body = response.body().await.expect("body");
        (
            response.version(),
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    })
}

#[test]
fn https_on_a_port_rhapi_binds_itself() {
    let app = tls_app("server");
    let port = support::free_port();
    let server = app.serve_exact(
        "start",
        &["--port", &port.to_string(), "--hostname", "127.0.0.1"],
        &[],
        port,
    );
    server.wait_for_log(&format!("ready on https://127.0.0.1:{port}"));
    let hello = https_get(port, "/api/hello");
    assert_eq!((hello.status, hello.text()), (200, "hello over tls".into()));
}

#[test]
fn plain_http_and_stalled_handshakes_are_closed() {
    let app = tls_app("server");
    let server = app.serve("start", &[]);
    let plain = b"GET /api/hello HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n";
    match server.exchange(plain, DEADLINE) {
        Exchange::Closed(bytes) => assert!(
            !bytes.starts_with(b"HTTP/"),
            "plain HTTP got an HTTP answer: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
        other => panic!("plain HTTP to the HTTPS port: {other:?}"),
    }
    // Garbage that looks like the start of a TLS record, then nothing more.
    let mut stalled = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stalled.set_read_timeout(Some(DEADLINE)).ok();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x40, 0x00])
        .expect("send");
    let mut buf = [0u8; 64];
    let closed = match stalled.read(&mut buf) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(closed, "a stalled handshake was kept open for {DEADLINE:?}");
    // The server goes on serving.
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let app = tls_app("server");
    let server = app.serve("start", &[]);
    assert_eq!(served_certificate(server.port), certificate("server"));
    // An open connection keeps going while the files change.
    let mut kept = connect(server.port, &[b"http/1.1"]);
    install(&app, "other", "other");
    wait_for_certificate(&server, &certificate("other"));
    server.wait_for_log("tls: cert.pem and key.pem changed: serving the new certificate");
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
    write!(
        kept,
        "GET /api/hello HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n"
    )
    .expect("send");
    let mut data = Vec::new();
    let _ = kept.read_to_end(&mut data);
    assert_eq!(Response::from_bytes(&data).map(|r| r.status), Some(200));
}

#[test]
fn a_key_that_does_not_match_keeps_the_certificate_before() {
    let app = tls_app("server");
    let server = app.serve("start", &[]);
    // The other certificate's key beside this certificate.
    app.write("key.pem", &pem(&support::tls::server("other").1));
    let line = server.wait_for_log_line("about the key", |l| l.contains("tls: key.pem"));
    assert!(
        line.contains("does not match the certificate in cert.pem")
            && line.contains("still serving the certificate loaded before"),
        "{line}"
    );
    assert_eq!(served_certificate(server.port), certificate("server"));
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
    // Its certificate arrives: the pair is whole again and served.
    app.write("cert.pem", &pem(&support::tls::server("other").0));
    wait_for_certificate(&server, &certificate("other"));
}

#[test]
fn a_bad_or_missing_file_at_reload_keeps_the_certificate_before() {
    let app = tls_app("server");
    let server = app.serve("dev", &[]);
    app.write("cert.pem", "not a certificate\n");
    let line = server.wait_for_log_line("about the cert", |l| l.contains("tls: cert.pem"));
    assert!(line.contains("holds no certificate"), "{line}");
    assert_eq!(served_certificate(server.port), certificate("server"));
    app.remove("key.pem");
    app.write("cert.pem", &pem(&support::tls::server("server").0));
    let line = server.wait_for_log_line("about the key", |l| l.contains("tls: key.pem"));
    assert!(line.contains("cannot be read"), "{line}");
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
}

#[test]
fn a_bad_file_at_start_is_an_error_naming_it() {
    let missing = tls_app("server");
    missing.remove("cert.pem");
    let mismatched = tls_app("server");
    mismatched.write("key.pem", &pem(&support::tls::server("other").1));
    let garbage = tls_app("server");
    garbage.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n",
    );
    for (app, message) in [
        (&missing, "tls: cert.pem: cannot be read"),
        (
            &mismatched,
            "tls: key.pem: does not match the certificate in cert.pem",
        ),
        (&garbage, "tls: key.pem: is not a usable private key"),
    ] {
        let check = app.run("check");
        assert_eq!(check.status.code(), Some(1), "check: {}", check.stderr);
        assert!(check.stderr.contains(message), "check: {}", check.stderr);
        for command in ["start", "dev"] {
            let out = app.run_to_exit(command, &["--port", "0"]);
            assert_eq!(out.status.code(), Some(1), "{command}: {}", out.stderr);
            assert!(
                out.stderr.contains(message) && out.stderr.contains("fix it and start again"),
                "{command}: {}",
                out.stderr
            );
        }
    }
    let good = tls_app("server");
    let check = good.run("check");
    assert_eq!(check.status.code(), Some(0), "{}", check.stderr);
}

#[test]
fn tls_settings_are_read_at_start_only() {
    let app = tls_app("server");
    let server = app.serve("dev", &[]);
    app.write(
        "rhapi.toml",
        "[tls]\ncert = \"elsewhere.pem\"\nkey = \"key.pem\"\n",
    );
    server.wait_for_log("tls.cert changed: it is read at start only");
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
}

#[test]
fn a_renewal_that_moves_a_symlink_is_served() {
    // As certbot renews: `live/` points at the files of the new issue.
    let app = TestApp::new();
    app.write(
        "pages/api/hello.rhai",
        "fn GET(req) { \"hello over tls\" }\n",
    );
    app.write(
        "rhapi.toml",
        "[tls]\ncert = \"live/cert.pem\"\nkey = \"live/key.pem\"\n",
    );
    for (dir, name) in [("issue1", "server"), ("issue2", "other")] {
        let (cert, key) = support::tls::server(name);
        app.write(&format!("{dir}/cert.pem"), &pem(&cert));
        app.write(&format!("{dir}/key.pem"), &pem(&key));
    }
    std::os::unix::fs::symlink("issue1", app.path().join("live")).expect("symlink");
    let server = app.serve("start", &["--no-watch"]);
    assert_eq!(served_certificate(server.port), certificate("server"));
    // Replaced in one step, as `ln -sfn` does: a new link renamed over the old one.
    std::os::unix::fs::symlink("issue2", app.path().join("live.new")).expect("symlink");
    app.rename("live.new", "live");
    wait_for_certificate(&server, &certificate("other"));
    assert_eq!(https_get(server.port, "/api/hello").status, 200);
}
