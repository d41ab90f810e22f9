//! One file to deploy (docs/deploy.md, "One file"): `rhapi bundle` writes the rhapi binary
//! with the app's files appended as an [`Archive`], then a trailer. At start, [`detect`]
//! looks at the end of the running executable: a plain binary has no trailer (three small
//! reads, nothing more), a bundle hands its archive to [`install`], and from then on every
//! [`crate::app_files::AppFiles`] of the process reads the app from memory through the same
//! seam the loader always used. `.env` and `data/` stay where the bundle runs; the public
//! folder, which actix-files serves from files, is written to a private temporary folder at
//! start ([`extract_public`]).
//!
//! Trailer (the last 64 bytes):
//!
//! ```text
//! SHA-256 of the archive (32) | archive offset: u64 | archive length: u64 | "rhapi bundle v1\n"
//! ```

pub mod archive;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use archive::Archive;
use sha2::{Digest, Sha256};

/// The last bytes of every bundle.
const TRAILER_MAGIC: &[u8; 16] = b"rhapi bundle v1\n";
/// Hash, offset, length, magic.
const TRAILER_LEN: u64 = 32 + 8 + 8 + 16;

/// The bundle this process serves, once [`install`]ed.
static BUNDLE: OnceLock<Arc<Archive>> = OnceLock::new();
/// The bundle's public files until [`extract_public`] writes them out (then freed).
static PENDING_PUBLIC: Mutex<Option<BTreeMap<String, Vec<u8>>>> = Mutex::new(None);
/// Where [`extract_public`] wrote the public folder.
static PUBLIC_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Why the running executable cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read this executable to look for a bundled app: {0}")]
    Unreadable(#[from] std::io::Error),
    #[error(
        "this bundle is damaged ({0}): it was cut short or changed after `rhapi bundle` \
         wrote it; copy it again, or bundle the app again"
    )]
    Damaged(String),
}

/// The archive the running executable carries, if it is a bundle.
pub fn detect() -> Result<Option<Archive>, BundleError> {
    let file = File::open("/proc/self/exe").or_else(|_| File::open(std::env::current_exe()?))?;
    find(&file)
}

/// The archive at the end of `file`: `None` for a plain rhapi binary, an error for a bundle
/// that lost bytes or had some changed.
pub fn find(file: &File) -> Result<Option<Archive>, BundleError> {
    let len = file.metadata()?.len();
    let damaged = |why: &str| BundleError::Damaged(why.to_string());
    if len >= TRAILER_LEN {
        let mut trailer = [0u8; TRAILER_LEN as usize];
        file.read_exact_at(&mut trailer, len - TRAILER_LEN)?;
        if trailer[48..] == TRAILER_MAGIC[..] {
            let word = |at: usize| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&trailer[at..at + 8]);
                u64::from_le_bytes(bytes)
            };
            let (offset, size) = (word(32), word(40));
            let fits = offset
                .checked_add(size)
                .is_some_and(|end| end == len - TRAILER_LEN);
            if !fits {
                return Err(damaged("its trailer does not match its size"));
            }
            let size = usize::try_from(size).map_err(|_| damaged("too large"))?;
            let mut bytes = vec![0u8; size];
            file.read_exact_at(&mut bytes, offset)?;
            if Sha256::digest(&bytes)[..] != trailer[..32] {
                return Err(damaged("its files do not match their checksum"));
            }
            return Archive::decode(&bytes)
                .map(Some)
                .map_err(|why| damaged(&why));
        }
    }
    match elf_end(file)? {
        // The trailer is gone, but an archive follows the binary: a bundle cut short.
        Some(end) if end < len && starts_with(file, end, archive::MAGIC)? => {
            Err(damaged("its end is missing"))
        }
        Some(end) if end > len => Err(damaged("the program itself is cut short")),
        _ => Ok(None),
    }
}

/// Where the ELF file ends: after its section header table, which linkers write last.
/// `None` when `file` is not a little-endian ELF file.
fn elf_end(file: &File) -> std::io::Result<Option<u64>> {
    let mut header = [0u8; 64];
    if file.read_exact_at(&mut header, 0).is_err() || header[..4] != *b"\x7fELF" || header[5] != 1 {
        return Ok(None);
    }
    let u16_at = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
    let (offset, entry_size, count) = match header[4] {
        // 64-bit: e_shoff at 0x28, e_shentsize at 0x3a, e_shnum at 0x3c.
        2 => {
            let mut word = [0u8; 8];
            word.copy_from_slice(&header[0x28..0x30]);
            (u64::from_le_bytes(word), u16_at(0x3a), u16_at(0x3c))
        }
        // 32-bit: e_shoff at 0x20, e_shentsize at 0x2e, e_shnum at 0x30.
        1 => {
            let mut word = [0u8; 4];
            word.copy_from_slice(&header[0x20..0x24]);
            (
                u64::from(u32::from_le_bytes(word)),
                u16_at(0x2e),
                u16_at(0x30),
            )
        }
        _ => return Ok(None),
    };
    // No table, or more sections than e_shnum holds: not worth reading further.
    if offset == 0 || count == 0 {
        return Ok(None);
    }
    Ok(offset.checked_add(entry_size * count))
}

fn starts_with(file: &File, at: u64, magic: &[u8]) -> std::io::Result<bool> {
    let mut bytes = vec![0u8; magic.len()];
    Ok(file.read_exact_at(&mut bytes, at).is_ok() && bytes == magic)
}

/// `program` (a plain rhapi binary) with `archive` and its trailer after it.
pub fn assemble(program: &[u8], archive: &Archive) -> Vec<u8> {
    let encoded = archive.encode();
    let mut out = Vec::with_capacity(program.len() + encoded.len() + TRAILER_LEN as usize);
    out.extend_from_slice(program);
    out.extend_from_slice(&encoded);
    out.extend_from_slice(&Sha256::digest(&encoded));
    out.extend_from_slice(&(program.len() as u64).to_le_bytes());
    out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
    out.extend_from_slice(TRAILER_MAGIC);
    out
}

/// Makes `archive` the app of this process: every `AppFiles` reads it from now on. Once per
/// process (a second call is ignored). Its public files wait for [`extract_public`].
pub fn install(mut archive: Archive) {
    let public = std::mem::take(&mut archive.public);
    if BUNDLE.set(Arc::new(archive)).is_ok() {
        *PENDING_PUBLIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(public);
    }
}

/// The bundle this process serves, if any.
pub fn current() -> Option<Arc<Archive>> {
    BUNDLE.get().cloned()
}

/// Writes the bundle's public files to a new private folder (mode 0700, under `TMPDIR`),
/// where the public file server reads them; [`remove_public`] deletes it at exit.
pub fn extract_public() -> std::io::Result<()> {
    let pending = PENDING_PUBLIC
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    // No public files, no folder (a read-only /tmp is then no obstacle).
    let Some(public) = pending.filter(|public| !public.is_empty()) else {
        return Ok(());
    };
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|err| std::io::Error::other(err.to_string()))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let root = std::env::temp_dir().join(format!("rhapi-public-{}-{suffix}", std::process::id()));
    // `create`, not `create_dir_all`: a folder someone made there first is an error.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&root)
        .map_err(|err| in_folder(&root, err))?;
    let _ = PUBLIC_DIR.set(root.clone());
    for (name, bytes) in &public {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| in_folder(parent, err))?;
        }
        std::fs::write(&path, bytes).map_err(|err| in_folder(&path, err))?;
    }
    Ok(())
}

fn in_folder(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        err.kind(),
        format!("cannot write the public files to {}: {err}", path.display()),
    )
}

/// The folder [`extract_public`] wrote, if it ran.
pub fn public_dir() -> Option<&'static Path> {
    PUBLIC_DIR.get().map(PathBuf::as_path)
}

/// Deletes the folder of [`extract_public`] (at exit).
pub fn remove_public() {
    if let Some(dir) = PUBLIC_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A stand-in for the rhapi binary: an ELF header whose section table ends at byte 200.
    fn program() -> Vec<u8> {
        let mut bytes = vec![0u8; 200];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[0x28..0x30].copy_from_slice(&72u64.to_le_bytes());
        bytes[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        bytes[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
        bytes
    }

    fn file_of(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn found(bytes: &[u8]) -> Result<Option<Archive>, BundleError> {
        find(file_of(bytes).as_file())
    }

    fn sample() -> Archive {
        let mut archive = Archive::default();
        archive
            .app
            .insert("pages/api/a.rhai".into(), b"res.send(1)".to_vec());
        archive.public.insert("index.html".into(), b"<p>".to_vec());
        archive
    }

    /// A real binary (this test's, as the linker wrote it) ends where its ELF header says.
    #[test]
    fn this_test_binary_is_no_bundle() {
        let file = File::open("/proc/self/exe").unwrap();
        let len = file.metadata().unwrap().len();
        assert_eq!(elf_end(&file).unwrap(), Some(len));
        assert!(detect().unwrap().is_none());
    }

    #[test]
    fn a_plain_binary_has_no_bundle_and_a_bundle_has_its_archive() {
        assert!(found(&program()).unwrap().is_none());
        assert!(found(b"").unwrap().is_none());
        let bundle = assemble(&program(), &sample());
        assert_eq!(found(&bundle).unwrap(), Some(sample()));
    }

    #[test]
    fn a_bundle_cut_anywhere_after_its_program_is_damaged() {
        let bundle = assemble(&program(), &sample());
        for len in program().len() + archive::MAGIC.len()..bundle.len() {
            let err = found(&bundle[..len]).expect_err(&format!("cut at {len}"));
            assert!(err.to_string().contains("damaged"), "{err}");
        }
        let err = found(&program()[..150]).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
    }

    #[test]
    fn a_changed_byte_is_caught_by_the_checksum() {
        let bundle = assemble(&program(), &sample());
        let start = program().len();
        for at in start..bundle.len() - TRAILER_LEN as usize {
            let mut changed = bundle.clone();
            changed[at] ^= 0x20;
            let err = found(&changed).expect_err(&format!("byte {at}"));
            assert!(err.to_string().contains("checksum"), "{err}");
        }
    }
}
