//! Compressed forms of `public/` files, kept while the file is unchanged, so that a large
//! text file is compressed once, not on every request (docs/reference.md, "Compression").
//! An entry is found by the file's path and coding, and used only while the file's inode,
//! length and modification time are those it was made from; the least recently used
//! entries go first when the total passes [`CAPACITY`].

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use actix_web::web::Bytes;

use super::compress::Coding;

/// Most bytes of compressed forms kept at once, across every file and coding.
pub const CAPACITY: usize = 32 * 1024 * 1024;

/// Which content of a file an entry was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Version {
    /// The version of the file `meta` describes.
    pub fn of(meta: &Metadata) -> Version {
        Version {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

type Key = (PathBuf, Coding);

struct Entry {
    version: Version,
    bytes: Bytes,
    /// When it was last used (a tick of [`Lru::clock`]), its key in `Lru::order`.
    used: u64,
}

/// The entries, and their keys by last use.
#[derive(Default)]
struct Lru {
    entries: HashMap<Key, Entry>,
    order: BTreeMap<u64, Key>,
    clock: u64,
    total: usize,
}

impl Lru {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.used);
            self.total -= entry.bytes.len();
        }
    }
}

fn lru() -> &'static Mutex<Lru> {
    static LRU: OnceLock<Mutex<Lru>> = OnceLock::new();
    LRU.get_or_init(Mutex::default)
}

/// The compressed form of `path` with `coding`, if one was made from `version`.
pub fn get(path: &Path, coding: Coding, version: Version) -> Option<Bytes> {
    let mut lru = lru()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (path.to_path_buf(), coding);
    let entry = lru.entries.get(&key)?;
    if entry.version != version {
        lru.remove(&key);
        return None;
    }
    let (old, bytes) = (entry.used, entry.bytes.clone());
    let used = lru.tick();
    lru.order.remove(&old);
    lru.order.insert(used, key.clone());
    if let Some(entry) = lru.entries.get_mut(&key) {
        entry.used = used;
    }
    Some(bytes)
}

/// Keeps `bytes`, the compressed form of `path` at `version` with `coding`, dropping the
/// least recently used entries past [`CAPACITY`].
pub fn put(path: &Path, coding: Coding, version: Version, bytes: Bytes) {
    if bytes.len() > CAPACITY {
        return;
    }
    let mut lru = lru()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (path.to_path_buf(), coding);
    lru.remove(&key);
    lru.total += bytes.len();
    let used = lru.tick();
    lru.order.insert(used, key.clone());
    lru.entries.insert(
        key,
        Entry {
            version,
            bytes,
            used,
        },
    );
    while lru.total > CAPACITY {
        let Some((_, oldest)) = lru.order.pop_first() else {
            break;
        };
        if let Some(entry) = lru.entries.remove(&oldest) {
            lru.total -= entry.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(len: u64) -> Version {
        Version {
            inode: 1,
            len,
            modified: None,
        }
    }

    #[test]
    fn kept_while_unchanged_least_recently_used_go_first() {
        let dir = Path::new("/file-cache-test");
        let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
        let third = Bytes::from(vec![0u8; CAPACITY / 3 + 1]);
        put(&a, Coding::Brotli, version(1), third.clone());
        put(&b, Coding::Brotli, version(1), third.clone());
        assert!(get(&a, Coding::Brotli, version(1)).is_some());
        assert!(get(&a, Coding::Gzip, version(1)).is_none());
        // A third entry passes the capacity: `b`, used least recently, goes.
        put(&c, Coding::Brotli, version(1), third);
        assert!(get(&b, Coding::Brotli, version(1)).is_none());
        assert!(get(&a, Coding::Brotli, version(1)).is_some());
        // A changed file does not get its old form.
        assert!(get(&c, Coding::Brotli, version(2)).is_none());
        assert!(get(&c, Coding::Brotli, version(1)).is_none());
    }
}
