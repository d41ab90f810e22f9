//! Test certificates (tests/fixtures/tls, made by its `make.sh`): a CA, and two server
//! certificates it signed for `localhost` and `127.0.0.1`, for tests that serve or trust
//! TLS. Committed, so that no test needs openssl.

use std::path::PathBuf;

/// The folder of the test certificates.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

/// The CA that signed both server certificates (PEM).
pub fn ca() -> PathBuf {
    dir().join("ca.pem")
}

/// A server certificate and its key (PEM): `"server"` or `"other"` (for a swap).
pub fn server(name: &str) -> (PathBuf, PathBuf) {
    (
        dir().join(format!("{name}-cert.pem")),
        dir().join(format!("{name}-key.pem")),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

    #[test]
    fn the_test_certificates_are_valid_for_localhost_and_their_keys_match() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(super::ca()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .unwrap();
        for name in ["server", "other"] {
            let (cert, key) = super::server(name);
            let cert = CertificateDer::from_pem_file(cert).unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            for host in ["localhost", "127.0.0.1"] {
                verifier
                    .verify_server_cert(
                        &cert,
                        &[],
                        &ServerName::try_from(host).unwrap(),
                        &[],
                        UnixTime::now(),
                    )
                    .unwrap_or_else(|e| panic!("{name} for {host}: {e}"));
            }
            // The key is the certificate's: a server can be configured with the pair.
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
