//! Counters kept in the process: a map from a key's hash to its [`Window`], in shards so
//! that workers rarely wait on each other, and bounded: a shard that is full first drops
//! the keys idle for two windows (nothing of them counts any more), then, if that is not
//! enough, the least recently counted half. A client sending a million distinct keys
//! therefore costs at most [`Counters::capacity`] entries of 48 bytes, never more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::window::{Decision, Limit, Window};

const SHARDS: usize = 16;

/// One key's counter and when it was last counted.
#[derive(Clone, Copy)]
struct Entry {
    window: Window,
    per_ms: i64,
    touched: i64,
}

impl Entry {
    /// Nothing of it counts any more at `now`: both its buckets have slid out.
    fn idle(&self, now: i64) -> bool {
        now >= self
            .window
            .start
            .saturating_add(self.per_ms.saturating_mul(2))
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry>,
}

impl Shard {
    /// Room for one more key: idle keys out first, then the older half.
    fn make_room(&mut self, now: i64, max: usize) {
        if self.entries.len() < max {
            return;
        }
        self.entries.retain(|_, e| !e.idle(now));
        if self.entries.len() < max * 3 / 4 {
            return;
        }
        let mut touched: Vec<i64> = self.entries.values().map(|e| e.touched).collect();
        let middle = touched.len() / 2;
        let (_, median, _) = touched.select_nth_unstable(middle);
        let median = *median;
        // At most half stays (all of them go when all were counted in one millisecond).
        self.entries.retain(|_, e| e.touched > median);
    }
}

/// An app's in-process counters.
pub struct Counters {
    shards: Box<[Mutex<Shard>]>,
    per_shard: AtomicUsize,
}

impl Counters {
    /// Counters holding at most about `capacity` keys.
    pub fn new(capacity: usize) -> Counters {
        Counters {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: AtomicUsize::new(per_shard(capacity)),
        }
    }

    /// Keeps at most about `capacity` keys from now on (a smaller one applies as shards
    /// fill).
    pub fn set_capacity(&self, capacity: usize) {
        self.per_shard.store(per_shard(capacity), Ordering::Relaxed);
    }

    /// The most keys kept at once.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.per_shard.load(Ordering::Relaxed) * SHARDS
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        let shard = &self.shards[(key >> 60) as usize % SHARDS];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request of `key` at `now` if `limit` allows it.
    pub fn take(&self, key: u64, limit: Limit, now: i64) -> Decision {
        let mut shard = self.shard(key);
        if !shard.entries.contains_key(&key) {
            shard.make_room(now, self.per_shard.load(Ordering::Relaxed));
        }
        let entry = shard.entries.entry(key).or_insert(Entry {
            window: Window::default(),
            per_ms: limit.per_ms,
            touched: now,
        });
        if entry.per_ms != limit.per_ms {
            // Another window for the same key: its counts mean nothing in this one.
            entry.window = Window::default();
            entry.per_ms = limit.per_ms;
        }
        entry.window = entry.window.at(now, limit.per_ms);
        entry.touched = now;
        entry.window.take(now, limit)
    }

    /// Undoes an allowed [`Counters::take`] of `key` at `now`.
    pub fn give_back(&self, key: u64, limit: Limit, now: i64) {
        if let Some(entry) = self.shard(key).entries.get_mut(&key) {
            entry.window.give_back(now, limit.per_ms);
        }
    }

    /// Keys held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).entries.len())
            .sum()
    }
}

fn per_shard(capacity: usize) -> usize {
    capacity.div_ceil(SHARDS).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_distinct_keys_stay_within_the_capacity() {
        let counters = Counters::new(10_000);
        let limit = Limit {
            limit: 5,
            per_ms: 60_000,
        };
        let mut most = 0;
        for i in 0..1_000_000u64 {
            // Spread as a hash would be.
            let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert!(counters.take(key, limit, 1_000 + i as i64 / 1000).allowed);
            if i % 10_000 == 0 {
                most = most.max(counters.len());
            }
        }
        most = most.max(counters.len());
        assert!(most <= counters.capacity(), "{most}");
        assert!(counters.capacity() <= 10_016);
    }

    #[test]
    fn a_busy_key_survives_a_flood_of_new_ones() {
        let counters = Counters::new(1_000);
        let limit = Limit {
            limit: 2,
            per_ms: 60_000,
        };
        let busy = 42u64 << 60;
        assert!(counters.take(busy, limit, 0).allowed);
        assert!(counters.take(busy, limit, 0).allowed);
        for i in 1..5_000u64 {
            counters.take(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), limit, 1);
            // The busy client keeps trying: refused, and still remembered.
            assert!(!counters.take(busy, limit, 2).allowed, "{i}");
        }
    }

    #[test]
    fn idle_keys_go_first() {
        // Four keys a shard; these five are all in the first shard.
        let counters = Counters::new(64);
        let second = Limit {
            limit: 1,
            per_ms: 1_000,
        };
        let minute = Limit {
            limit: 1,
            per_ms: 60_000,
        };
        counters.take(1, second, 0);
        counters.take(2, second, 0);
        assert!(counters.take(3, minute, 0).allowed);
        // Two seconds on, keys 1 and 2 are idle; the full shard drops them, not key 3,
        // although key 3 was counted as long ago.
        counters.take(4, second, 2_500);
        counters.take(5, second, 2_500);
        assert_eq!(counters.len(), 3);
        assert!(!counters.take(3, minute, 2_500).allowed);
    }
}
