//! The app's in-process cache, what `cache::` reads and writes (docs/reference.md, "Time and
//! cache"): one per app (its [`crate::app_context::AppContext`]), shared by every route and
//! every worker thread, bounded by `[cache] max` bytes, least recently used out first.
//!
//! Entries hold JSON text, not script values: a value is copied in when it is written and
//! parsed anew for every read, so no run ever holds a value another run can change, and an
//! entry's size is the length of its text, which is what the bound counts. Expiry is read
//! on the app's clock, in milliseconds, so a frozen test clock freezes it too.

use std::collections::hash_map::RandomState;
use std::sync::{Arc, Mutex, MutexGuard};

use hashlink::LruCache;

/// What an entry costs besides its key and its text (the map's node, the bookkeeping).
pub const ENTRY_OVERHEAD: usize = 64;

/// The default of `[cache] max`.
pub const DEFAULT_MAX: usize = 32 * 1024 * 1024;

/// One cached value.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The value as JSON text.
    pub json: Arc<str>,
    /// About how many bytes the value takes again as a script value (reserved from the
    /// reading run's budget before it is parsed).
    pub footprint: usize,
    /// Milliseconds since the epoch, on the app's clock, from which the entry is gone.
    pub expires: Option<i64>,
}

/// The cache of one app.
pub struct Cache {
    store: Mutex<Store>,
}

struct Store {
    // SipHash, randomly keyed: keys may come from clients.
    entries: LruCache<String, Entry, RandomState>,
    /// Bytes the entries count for (keys, texts, [`ENTRY_OVERHEAD`] each).
    used: usize,
    max: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Cache::new(DEFAULT_MAX)
    }
}

/// Bytes an entry under `key` with `json` counts for.
pub fn entry_size(key: &str, json: &str) -> usize {
    key.len()
        .saturating_add(json.len())
        .saturating_add(ENTRY_OVERHEAD)
}

impl Cache {
    /// An empty cache holding at most `max` bytes.
    pub fn new(max: usize) -> Cache {
        Cache {
            store: Mutex::new(Store {
                entries: LruCache::with_hasher(usize::MAX, RandomState::new()),
                used: 0,
                max,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // Nothing under the lock can panic halfway through a change; a poisoned lock
        // still holds a consistent store.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bound, in bytes.
    pub fn max(&self) -> usize {
        self.lock().max
    }

    /// A new bound (`rhapi.toml` was saved): entries past it are evicted at once.
    pub fn set_max(&self, max: usize) {
        let mut store = self.lock();
        store.max = max;
        store.evict_to(max);
    }

    /// The entry under `key`, unless missing or expired at `now` (an expired one is
    /// removed); a hit makes it the most recently used.
    pub fn get(&self, key: &str, now: i64) -> Option<Entry> {
        let mut store = self.lock();
        let expired = store
            .entries
            .get(key)
            .map(|entry| entry.expires.is_some_and(|at| now >= at))?;
        if expired {
            store.remove(key);
            return None;
        }
        store.entries.get(key).cloned()
    }

    /// Keeps `entry` under `key`, evicting the least recently used entries to make room,
    /// and says whether it was kept. An entry larger than the bound is not kept and evicts
    /// nothing; any older value under `key` is removed either way.
    pub fn put(&self, key: String, entry: Entry) -> bool {
        let size = entry_size(&key, &entry.json);
        let mut store = self.lock();
        store.remove(&key);
        if size > store.max {
            return false;
        }
        let room = store.max - size;
        store.evict_to(room);
        store.used += size;
        store.entries.insert(key, entry);
        true
    }

    /// Removes the entry under `key`; whether there was one.
    pub fn delete(&self, key: &str) -> bool {
        self.lock().remove(key)
    }

    /// How many entries, and the bytes they count for.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let store = self.lock();
        (store.entries.len(), store.used)
    }
}

impl Store {
    fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                self.used -= entry_size(key, &entry.json);
                true
            }
            None => false,
        }
    }

    /// Evicts least recently used entries until at most `bytes` are used.
    fn evict_to(&mut self, bytes: usize) {
        while self.used > bytes {
            let Some((key, entry)) = self.entries.remove_lru() else {
                break;
            };
            self.used -= entry_size(&key, &entry.json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str, expires: Option<i64>) -> Entry {
        Entry {
            json: json.into(),
            footprint: json.len(),
            expires,
        }
    }

    fn json(cache: &Cache, key: &str, now: i64) -> Option<String> {
        cache.get(key, now).map(|e| e.json.to_string())
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bound_holds() {
        let one = entry_size("a", "1");
        let cache = Cache::new(3 * one);
        for key in ["a", "b", "c"] {
            assert!(cache.put(key.into(), entry("1", None)));
        }
        assert_eq!(cache.usage(), (3, 3 * one));
        // Reading `a` makes `b` the least recently used.
        assert!(json(&cache, "a", 0).is_some());
        assert!(cache.put("d".into(), entry("1", None)));
        assert_eq!(json(&cache, "b", 0), None);
        assert!(["a", "c", "d"].iter().all(|k| json(&cache, k, 0).is_some()));
        assert_eq!(cache.usage(), (3, 3 * one));
    }

    #[test]
    fn a_value_larger_than_the_bound_is_not_kept_and_evicts_nothing() {
        let cache = Cache::new(200);
        assert!(cache.put("a".into(), entry("1", None)));
        assert!(cache.put("big".into(), entry("old", None)));
        assert!(!cache.put("big".into(), entry(&"x".repeat(200), None)));
        assert_eq!(json(&cache, "a", 0).as_deref(), Some("1"));
        assert_eq!(json(&cache, "big", 0), None, "the older value is gone too");
        assert_eq!(cache.usage(), (1, entry_size("a", "1")));
    }

    #[test]
    fn expired_entries_are_misses_and_replacing_counts_once() {
        let cache = Cache::default();
        cache.put("k".into(), entry("1", Some(1_000)));
        assert_eq!(json(&cache, "k", 999).as_deref(), Some("1"));
        assert_eq!(json(&cache, "k", 1_000), None);
        assert_eq!(cache.usage(), (0, 0));
        cache.put("k".into(), entry("1", None));
        cache.put("k".into(), entry("22", None));
        assert_eq!(cache.usage(), (1, entry_size("k", "22")));
        assert!(cache.delete("k") && !cache.delete("k"));
        assert_eq!(cache.usage(), (0, 0));
    }

    #[test]
    fn a_smaller_bound_evicts_at_once() {
        let cache = Cache::new(1 << 20);
        for i in 0..100 {
            cache.put(format!("k{i:03}"), entry("[1,2,3]", None));
        }
        let each = entry_size("k000", "[1,2,3]");
        cache.set_max(10 * each);
        assert_eq!(cache.usage(), (10, 10 * each));
        assert!(json(&cache, "k099", 0).is_some() && json(&cache, "k089", 0).is_none());
    }
}
