//! The archive a bundle carries after the rhapi binary: the app's files and its public
//! folder, by name. A format of its own, not tar: a bundle needs names and bytes only, and
//! everything else tar carries (owners, modes, times, links, long-name extensions) would be
//! something to ignore or to refuse. The whole archive is checked against its SHA-256 (in
//! the trailer, `super`) before it is read, and reading checks every length against what is
//! left, so a damaged archive is an error, never a panic.
//!
//! ```text
//! "RHAPIARC" | count: u32 | count x (section: u8 | name length: u32 | name | length: u64 | bytes)
//! ```
//!
//! Integers are little-endian; a name is UTF-8, relative, `/`-separated, with no empty, `.`
//! or `..` part (it is joined to a folder when the public files are written out).

use std::collections::BTreeMap;

/// The first bytes of every archive (also how a bundle whose trailer is gone is told from a
/// plain binary).
pub const MAGIC: &[u8; 8] = b"RHAPIARC";

/// A file of the app: its path relative to the app folder.
const APP: u8 = 0;
/// A file of the public folder: its path relative to that folder.
const PUBLIC: u8 = 1;

/// Longest name accepted when reading (Linux's `PATH_MAX`).
const MAX_NAME: usize = 4096;

/// The files a bundle holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Archive {
    /// Scripts, job files, migrations, `rhapi.toml` and `.env.example`, by their path in the
    /// app folder (`pages/api/hello.rhai`).
    pub app: BTreeMap<String, Vec<u8>>,
    /// The public folder's files, by their path in it (`css/site.css`).
    pub public: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    /// The archive as bytes.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .app
            .iter()
            .chain(&self.public)
            .map(|(name, bytes)| 13 + name.len() + bytes.len())
            .sum();
        let mut out = Vec::with_capacity(12 + size);
        out.extend_from_slice(MAGIC);
        let count = self.app.len() + self.public.len();
        out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
        let sections = [(APP, &self.app), (PUBLIC, &self.public)];
        for (section, files) in sections {
            for (name, bytes) in files {
                out.push(section);
                out.extend_from_slice(&(name.len() as u32).to_le_bytes());
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Reads an archive; the error says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Archive, String> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len())? != MAGIC {
            return Err("it does not start as a rhapi archive".into());
        }
        let count = reader.u32()?;
        let mut archive = Archive::default();
        for _ in 0..count {
            let section = reader.take(1)?[0];
            let name_len = reader.u32()? as usize;
            if name_len > MAX_NAME {
                return Err(format!("a file name of {name_len} bytes"));
            }
            let name = std::str::from_utf8(reader.take(name_len)?)
                .map_err(|_| "a file name that is not UTF-8".to_string())?;
            if !valid_name(name) {
                return Err(format!("the file name {name:?}"));
            }
            let len = usize::try_from(reader.u64()?).map_err(|_| "a file too large")?;
            let data = reader.take(len)?.to_vec();
            let files = match section {
                APP => &mut archive.app,
                PUBLIC => &mut archive.public,
                other => return Err(format!("an unknown section {other}")),
            };
            if files.insert(name.to_string(), data).is_some() {
                return Err(format!("the file {name} twice"));
            }
        }
        if reader.at != bytes.len() {
            return Err("bytes after its last file".into());
        }
        Ok(archive)
    }
}

/// Whether `name` can name a file in an archive: relative, `/`-separated, no empty, `.` or
/// `..` part, no NUL.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Reads integers and byte runs, each checked against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| "it ends in the middle of a file".to_string())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let mut archive = Archive::default();
        archive
            .app
            .insert("pages/api/hello.rhai".into(), b"res.send(1)".to_vec());
        archive.app.insert("rhapi.toml".into(), Vec::new());
        archive
            .public
            .insert("css/site.css".into(), b"body{}".to_vec());
        archive
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same() {
        let archive = sample();
        assert_eq!(Archive::decode(&archive.encode()), Ok(archive));
        let empty = Archive::default();
        assert_eq!(Archive::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn every_cut_and_every_changed_byte_is_an_error_or_a_different_archive() {
        let archive = sample();
        let bytes = archive.encode();
        for len in 0..bytes.len() {
            assert!(Archive::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Archive::decode(&longer).is_err());
        // The trailer's hash catches changed bytes; reading them must still never panic.
        for at in 0..bytes.len() {
            for value in [0u8, 0xff, 0x7f] {
                let mut changed = bytes.clone();
                changed[at] = value;
                let _ = Archive::decode(&changed);
            }
        }
    }

    #[test]
    fn names_that_leave_their_folder_are_refused() {
        for name in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            "a\0b",
        ] {
            assert!(!valid_name(name), "{name:?}");
            let mut archive = Archive::default();
            archive.public.insert(name.to_string(), vec![1]);
            assert!(Archive::decode(&archive.encode()).is_err(), "{name:?}");
        }
        assert!(valid_name("a/b.c/..d"));
    }

    #[test]
    fn a_huge_length_is_an_error_not_an_allocation() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(APP);
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(b'a');
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(Archive::decode(&bytes).is_err());
    }
}
