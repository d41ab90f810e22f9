//! Rate limits (docs/reference.md, "Rate limits"): the `[[rate_limit]]` rules of
//! `rhapi.toml`, a route's `CONFIG.rate_limit` and `rate::check` all count here, in a
//! sliding window per rule and key ([`window`]), in the process ([`memory`]) or, with
//! `[rate_limits] store = "database"` on PostgreSQL, in the app's database ([`database`]).
//!
//! The counters belong to the app (its [`crate::app_context::AppContext`]) and run on its
//! clock, so `rhapi test`'s `set_time` moves the windows. Nothing here knows HTTP: the
//! request stage that asks and answers 429 is in `http/handler.rs`.

pub mod database;
pub mod memory;
pub mod rules;
pub mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use self::rules::{By, Rule};
pub use self::window::{Decision, Limit};
use crate::db::{Database, DbError, Dialect};
use crate::settings::{RateLimitsSettings, RateStore};

/// Keys kept in the process at most, unless `[rate_limits] max_keys` says otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// One counter to ask: its limit, the scope it belongs to (a rule, a route, a script's
/// window) and the key within it.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub scope: &'a str,
    pub key: &'a [u8],
    pub limit: Limit,
}

/// What a database call could not do.
#[derive(Debug, thiserror::Error)]
#[error("rate limit counters: {0}")]
pub struct StoreError(#[from] pub DbError);

/// An app's rate-limit counters.
pub struct RateLimiter {
    counters: memory::Counters,
    hasher: ahash::RandomState,
    /// `[rate_limits] store = "database"` (read again on each load of `rhapi.toml`).
    in_database: AtomicBool,
    database: database::DatabaseStore,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(DEFAULT_MAX_KEYS)
    }
}

impl RateLimiter {
    /// Counters keeping at most about `max_keys` keys in the process.
    pub fn new(max_keys: usize) -> RateLimiter {
        RateLimiter {
            counters: memory::Counters::new(max_keys),
            hasher: ahash::RandomState::new(),
            in_database: AtomicBool::new(false),
            database: database::DatabaseStore::default(),
        }
    }

    /// `[rate_limits]` as `rhapi.toml` says now.
    pub fn configure(&self, settings: &RateLimitsSettings) {
        let in_database = settings.store == RateStore::Database;
        self.in_database.store(in_database, Ordering::Relaxed);
        self.counters.set_capacity(settings.max_keys);
    }

    /// Whether `db` holds the counters: `store = "database"` and PostgreSQL (a SQLite
    /// file serves one machine; its counters stay in the process).
    pub fn uses(&self, db: Option<&Database>) -> bool {
        self.in_database.load(Ordering::Relaxed)
            && db.is_some_and(|db| db.dialect() == Dialect::Postgres)
    }

    /// Whether the database store is chosen (then [`RateLimiter::take_all`] needs the
    /// app's database).
    pub fn wants_database(&self) -> bool {
        self.in_database.load(Ordering::Relaxed)
    }

    /// Counts one request against every counter of `asks` at `now`; refused when any of
    /// them refuses, and then none of them counts it. The decision returned is the one the
    /// headers show: the refusal, or the counter with the fewest requests left. Blocks on
    /// `db` when it holds the counters ([`RateLimiter::uses`]).
    pub fn take_all(
        &self,
        asks: &[Ask],
        now: i64,
        db: Option<&Database>,
        budget: Duration,
    ) -> Result<Option<Decision>, StoreError> {
        let db = db.filter(|db| self.uses(Some(db)));
        let mut shown: Option<Decision> = None;
        for (i, ask) in asks.iter().enumerate() {
            let decision = self.take(ask, now, db, budget)?;
            if !decision.allowed {
                for taken in &asks[..i] {
                    self.give_back(taken, now, db, budget)?;
                }
                return Ok(Some(decision));
            }
            if shown.is_none_or(|s| decision.remaining < s.remaining) {
                shown = Some(decision);
            }
        }
        Ok(shown)
    }

    fn take(
        &self,
        ask: &Ask,
        now: i64,
        db: Option<&Database>,
        budget: Duration,
    ) -> Result<Decision, StoreError> {
        Ok(match db {
            Some(db) => {
                let key = database::row_key(ask.scope, ask.key);
                self.database.take(db, &key, ask.limit, now, budget)?
            }
            None => self.counters.take(self.hash(ask), ask.limit, now),
        })
    }

    fn give_back(
        &self,
        ask: &Ask,
        now: i64,
        db: Option<&Database>,
        budget: Duration,
    ) -> Result<(), StoreError> {
        match db {
            Some(db) => {
                let key = database::row_key(ask.scope, ask.key);
                self.database.give_back(db, &key, ask.limit, now, budget)?
            }
            None => self.counters.give_back(self.hash(ask), ask.limit, now),
        }
        Ok(())
    }

    fn hash(&self, ask: &Ask) -> u64 {
        self.hasher.hash_one((ask.scope, ask.key))
    }

    /// Keys held in the process now.
    #[cfg(test)]
    pub fn keys_in_memory(&self) -> usize {
        self.counters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_refused_by_one_counter_counts_in_none() {
        let limiter = RateLimiter::default();
        let wide = Ask {
            scope: "wide",
            key: b"",
            limit: Limit {
                limit: 10,
                per_ms: 60_000,
            },
        };
        let narrow = Ask {
            scope: "narrow",
            limit: Limit {
                limit: 2,
                per_ms: 60_000,
            },
            ..wide
        };
        let both = [wide, narrow];
        for left in [1, 0] {
            let shown = limiter.take_all(&both, 0, None, Duration::ZERO).unwrap();
            assert_eq!(shown.map(|d| (d.allowed, d.remaining)), Some((true, left)));
        }
        let refused = limiter.take_all(&both, 0, None, Duration::ZERO).unwrap();
        assert!(!refused.unwrap().allowed);
        // The wide counter was given back its count: 8 left after two.
        let d = limiter.take_all(&[wide], 0, None, Duration::ZERO).unwrap();
        assert_eq!(d.map(|d| d.remaining), Some(7));
        assert_eq!(limiter.keys_in_memory(), 2);
    }
}
