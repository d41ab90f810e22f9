//! TLS to PostgreSQL, chosen by the URL's `sslmode` as node-postgres reads it.
//!
//! | URL | connection |
//! |---|---|
//! | no `sslmode`, or `disable` | plain TCP |
//! | `prefer`, `require`, `verify-ca`, `verify-full`, or `sslrootcert` alone | TLS; the certificate must chain to a trusted root and name the host |
//! | `no-verify` | TLS; the certificate is not checked (a server with a self-signed certificate) |
//!
//! Trusted roots are the Mozilla set (webpki-roots) or, with `sslrootcert=/path/ca.pem`, the
//! certificates in that file (a private CA, such as a cloud provider's bundle).
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`, and no `sslrootcert`,
//! so both are taken out of the URL here before it parses the rest. Client certificates
//! (`sslcert`, `sslkey`) are not supported and are named as such.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls_improved::MakeRustlsConnect;

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Off,
    /// TLS with the certificate checked, against the roots in this file or the Mozilla set.
    Verified(Option<PathBuf>),
    /// TLS without checking the certificate.
    Unverified,
}

/// Libpq parameters for client certificates and revocation lists, which rhapi does not do.
const UNSUPPORTED: [&str; 4] = ["sslcert", "sslkey", "sslpassword", "sslcrl"];

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL: the URL left for
/// tokio-postgres, and the TLS mode they ask for. The error never quotes the URL.
pub fn split_url(url: &str) -> Result<(String, TlsMode), String> {
    // The query starts after the user info: tokio-postgres reads a password up to the `@`.
    let authority_start = url.find('@').map_or(0, |at| at + 1);
    let Some(mark) = url[authority_start..]
        .find('?')
        .map(|i| authority_start + i)
    else {
        return Ok((url.to_string(), TlsMode::Off));
    };
    let (base, query) = (&url[..mark], &url[mark + 1..]);
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value).decode_utf8_lossy();
        match key {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" => root_cert = Some(value.into_owned()),
            _ if UNSUPPORTED.contains(&key) => {
                return Err(format!(
                    "has {key}: client certificates are not supported (sslmode and sslrootcert are)"
                ))
            }
            _ => kept.push(pair),
        }
    }
    let mode = match mode.as_deref() {
        None if root_cert.is_none() => TlsMode::Off,
        Some("disable") => TlsMode::Off,
        // As node-postgres: `prefer` checks the certificate like `require`, and a root
        // certificate file alone asks for TLS.
        None | Some("prefer" | "require" | "verify-ca" | "verify-full") => {
            TlsMode::Verified(root_cert.filter(|p| p != "system").map(PathBuf::from))
        }
        Some("no-verify") => TlsMode::Unverified,
        Some(other) => {
            return Err(format!(
                "has sslmode={other}; use disable, prefer, require, verify-ca, verify-full or no-verify"
            ))
        }
    };
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

/// The TLS connector for `mode` (`None` for plain TCP). Reads `sslrootcert` now, so that a
/// missing or empty file is reported once, as a configuration error.
pub fn connector(mode: &TlsMode) -> Result<Option<MakeRustlsConnect>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("cannot set up TLS: {err}"))
    };
    let config = match mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Verified(root_file) => builder()?
            .with_root_certificates(roots(root_file.as_deref())?)
            .with_no_client_auth(),
        TlsMode::Unverified => builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::clone(&provider))))
            .with_no_client_auth(),
    };
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn roots(file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let Some(file) = file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let unreadable = |err: &dyn std::fmt::Display| format!("sslrootcert {}: {err}", file.display());
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| unreadable(&e))? {
        let cert = cert.map_err(|e| unreadable(&e))?;
        roots.add(cert).map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"holds no PEM certificate"));
    }
    Ok(roots)
}

/// `sslmode=no-verify`: any certificate is accepted (the handshake's signatures are still
/// checked, so the session is encrypted to whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out() {
        let split = |url: &str| split_url(url).unwrap();
        assert_eq!(
            split("postgres://u@h/db"),
            ("postgres://u@h/db".into(), TlsMode::Off)
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=require&connect_timeout=5"),
            (
                "postgres://u@h/db?connect_timeout=5".into(),
                TlsMode::Verified(None)
            )
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"),
            (
                "postgres://u@h/db".into(),
                TlsMode::Verified(Some("/etc/ca.pem".into()))
            )
        );
        assert_eq!(
            split("postgres://u@h/db?sslrootcert=system&sslmode=verify-ca"),
            ("postgres://u@h/db".into(), TlsMode::Verified(None))
        );
        assert_eq!(
            split("postgres://u@h/db?sslmode=no-verify").1,
            TlsMode::Unverified
        );
        assert_eq!(split("postgres://u@h/db?sslmode=disable").1, TlsMode::Off);
        assert_eq!(
            split("postgres://u@h/db?sslmode=prefer").1,
            TlsMode::Verified(None)
        );
        assert_eq!(
            split("postgres://u@h/db?sslrootcert=/ca.pem"),
            (
                "postgres://u@h/db".into(),
                TlsMode::Verified(Some("/ca.pem".into()))
            )
        );
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        assert_eq!(
            split_url("postgres://u:p?w@h/db?sslmode=no-verify").unwrap(),
            ("postgres://u:p?w@h/db".into(), TlsMode::Unverified)
        );
        assert_eq!(
            split_url("postgres://u:p?w@h/db").unwrap(),
            ("postgres://u:p?w@h/db".into(), TlsMode::Off)
        );
    }

    #[test]
    fn client_certificates_are_named_as_unsupported() {
        let err = split_url("postgres://u:secret@h/db?sslmode=require&sslcert=/c.pem").unwrap_err();
        assert!(
            err.contains("has sslcert: client certificates are not supported"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn an_unknown_sslmode_is_named_without_the_url() {
        let err = split_url("postgres://u:secret@h/db?sslmode=strict").unwrap_err();
        assert!(err.contains("sslmode=strict"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn a_root_file_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let err = connector(&TlsMode::Verified(Some(file))).err().unwrap();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        let err = connector(&TlsMode::Verified(Some(dir.path().join("missing.pem"))))
            .err()
            .unwrap();
        assert!(err.contains("missing.pem"), "{err}");
    }
}
