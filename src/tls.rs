//! HTTPS (`[tls]` of `rhapi.toml`, docs/reference.md "HTTPS"): the certificate chain and
//! private key read from PEM files, checked to belong together, and served through a
//! resolver whose pair is swapped when the files change on disk (a renewal needs no
//! restart). Knows rustls, not actix: `http::serve` hands [`Certificates::server_config`]
//! to the listener.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::settings::TlsSettings;

/// How often the files' sizes and times are looked at. A change is loaded once two looks
/// in a row agree (a renewal that writes the certificate, then the key, is read whole):
/// between one and two of these after the last write.
const POLL: Duration = Duration::from_millis(500);

/// Larger than this, a file is no certificate or key (a chain is a few KB): refused before
/// it is read whole.
const MAX_FILE: u64 = 1024 * 1024;

/// A certificate or key that cannot be served; names the file as `rhapi.toml` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tls: {file}: {message}")]
pub struct TlsError {
    /// The file as written in `rhapi.toml` (`tls.cert` or `tls.key`).
    pub file: String,
    pub message: String,
}

/// One file of the pair: its name as written in `rhapi.toml`, and where it is.
#[derive(Debug, Clone)]
struct PemFile {
    name: String,
    path: PathBuf,
}

impl PemFile {
    fn new(app_dir: &Path, name: &str) -> PemFile {
        PemFile {
            name: name.to_string(),
            path: app_dir.join(name),
        }
    }

    fn error(&self, message: impl Into<String>) -> TlsError {
        TlsError {
            file: self.name.clone(),
            message: message.into(),
        }
    }

    /// The bytes of the file, within [`MAX_FILE`].
    fn read(&self) -> Result<Vec<u8>, TlsError> {
        use std::io::Read;
        let file = std::fs::File::open(&self.path)
            .map_err(|err| self.error(format!("cannot be read: {err}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| self.error(format!("cannot be read: {err}")))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(self.error("is larger than 1 MB: not a PEM certificate or key"));
        }
        Ok(bytes)
    }

    /// What changes when the file is written or replaced (a renamed-over file or a moved
    /// symlink has a new inode); `None` while it cannot be looked at.
    fn stamp(&self) -> Option<(SystemTime, u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len(), meta.ino()))
    }
}

/// The files of `[tls]`, resolved against the app folder.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    cert: PemFile,
    key: PemFile,
}

impl TlsFiles {
    /// The files `settings` names, relative to `app_dir` (or absolute); `None` without
    /// `[tls]`.
    pub fn of(app_dir: &Path, settings: &TlsSettings) -> Option<TlsFiles> {
        let (cert, key) = (settings.cert.as_deref()?, settings.key.as_deref()?);
        Some(TlsFiles {
            cert: PemFile::new(app_dir, cert),
            key: PemFile::new(app_dir, key),
        })
    }

    /// Reads and checks the pair: a certificate chain (end-entity first), a private key
    /// (PKCS#8, RSA or EC) the provider can sign with, and the key the certificate's.
    pub fn load(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let cert_pem = self.cert.read()?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                self.cert
                    .error(format!("not a PEM certificate chain: {err}"))
            })?;
        if chain.is_empty() {
            return Err(self
                .cert
                .error("holds no certificate (-----BEGIN CERTIFICATE-----)"));
        }
        let key_pem = self.key.read()?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            self.key.error(format!(
                "holds no private key (PKCS#8, RSA or EC, PEM): {err}"
            ))
        })?;
        let signer = provider.key_provider.load_private_key(key).map_err(|err| {
            self.key
                .error(format!("is not a usable private key: {err}"))
        })?;
        let pair = CertifiedKey::new(chain, signer);
        match pair.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(Arc::new(pair))
            }
            Err(rustls::Error::InconsistentKeys(_)) => Err(self.key.error(format!(
                "does not match the certificate in {}",
                self.cert.name
            ))),
            Err(err) => Err(self
                .cert
                .error(format!("its first certificate cannot be read: {err}"))),
        }
    }

    fn stamps(&self) -> Stamps {
        (self.cert.stamp(), self.key.stamp())
    }
}

type Stamps = (
    Option<(SystemTime, u64, u64)>,
    Option<(SystemTime, u64, u64)>,
);

/// The pair being served, swapped whole when the files change.
#[derive(Debug)]
pub struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl Certificates {
    /// Loads the pair `files` names: an error (naming the file) when it cannot be served.
    pub fn load(files: TlsFiles) -> Result<Arc<Certificates>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = files.load(&provider)?;
        Ok(Arc::new(Certificates {
            files,
            provider,
            current: ArcSwap::new(pair),
        }))
    }

    /// A server configuration that serves the current pair to each new connection (TLS 1.2
    /// and 1.3, no client certificates). The listener adds its ALPN protocols.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| self.files.cert.error(err.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        Ok(config)
    }

    /// Looks at the files every [`POLL`] (on a thread of its own, for as long as these
    /// certificates are served) and swaps a changed pair in; a pair that cannot be served
    /// keeps the one before it, and the error names the file.
    pub fn reload_on_change(self: &Arc<Self>) -> std::io::Result<()> {
        let certificates = Arc::downgrade(self);
        let files = self.files.clone();
        std::thread::Builder::new()
            .name("rhapi-tls".into())
            .spawn(move || poll(&certificates, &files))
            .map(drop)
    }

    /// Loads the files again and swaps the pair in; the error leaves the served pair alone.
    fn reload(&self) -> Result<(), TlsError> {
        let pair = self.files.load(&self.provider)?;
        self.current.store(pair);
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The reload loop of [`Certificates::reload_on_change`]; ends when the certificates are
/// no longer served.
fn poll(certificates: &Weak<Certificates>, files: &TlsFiles) {
    let mut loaded = files.stamps();
    let mut seen = loaded;
    loop {
        std::thread::sleep(POLL);
        let Some(certificates) = certificates.upgrade() else {
            return;
        };
        let now = files.stamps();
        // Changed since the last load (or failed attempt), and settled since the last look.
        if now != loaded && now == seen {
            loaded = now;
            match certificates.reload() {
                Ok(()) => tracing::info!(
                    "tls: {} and {} changed: serving the new certificate",
                    files.cert.name,
                    files.key.name
                ),
                Err(err) => {
                    tracing::error!("{err}; still serving the certificate loaded before")
                }
            }
        }
        seen = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
    }

    fn files(cert: &str, key: &str) -> TlsFiles {
        let settings = TlsSettings {
            cert: Some(cert.into()),
            key: Some(key.into()),
        };
        TlsFiles::of(&fixtures(), &settings).unwrap()
    }

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    #[test]
    fn a_matching_pair_loads() {
        let pair = files("server-cert.pem", "server-key.pem")
            .load(&provider())
            .unwrap();
        assert_eq!(pair.cert.len(), 1);
    }

    #[test]
    fn each_mistake_names_its_file() {
        let err = |cert: &str, key: &str| files(cert, key).load(&provider()).unwrap_err();
        let mismatch = err("server-cert.pem", "other-key.pem");
        assert_eq!(mismatch.file, "other-key.pem");
        assert!(
            mismatch
                .message
                .contains("does not match the certificate in server-cert.pem"),
            "{mismatch}"
        );
        let missing = err("nope.pem", "server-key.pem");
        assert_eq!(missing.file, "nope.pem");
        assert!(missing.message.starts_with("cannot be read"), "{missing}");
        // A key file given as the certificate: no certificate in it.
        let no_cert = err("server-key.pem", "server-key.pem");
        assert!(no_cert.message.contains("no certificate"), "{no_cert}");
        // A certificate given as the key: no key in it.
        let no_key = err("server-cert.pem", "server-cert.pem");
        assert!(no_key.message.contains("no private key"), "{no_key}");
        assert_eq!(
            no_key.to_string(),
            format!("tls: server-cert.pem: {}", no_key.message)
        );
    }

    #[test]
    fn a_huge_file_is_refused_before_it_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; (MAX_FILE + 1) as usize]).unwrap();
        let settings = TlsSettings {
            cert: Some(big.to_string_lossy().into_owned()),
            key: Some("server-key.pem".into()),
        };
        let err = TlsFiles::of(&fixtures(), &settings)
            .unwrap()
            .load(&provider())
            .unwrap_err();
        assert!(err.message.contains("larger than 1 MB"), "{err}");
    }
}
