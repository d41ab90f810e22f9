//! The app's wall clock: milliseconds since the Unix epoch, as `time::now()` gives it.
//! Everything that compares against "now" in the app's own terms (job delays and
//! schedules, cache ttls, rate-limit windows) reads it here, so that `rhapi test`'s
//! `set_time(ms)` freezes all of them at once (docs/reference.md, "Time and cache").
//! Budgets and deadlines are not wall-clock time and keep using `Instant`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Not frozen.
const RUNNING: i64 = i64::MIN;

/// One app's clock: the system's, unless a test froze it.
#[derive(Debug)]
pub struct Clock {
    frozen: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            frozen: AtomicI64::new(RUNNING),
        }
    }
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self.frozen.load(Ordering::Relaxed) {
            RUNNING => system_now_ms(),
            frozen => frozen,
        }
    }

    #[allow(dead_code, reason = "set_time lands with the time:: battery")]
    /// Stops the clock at `ms` (`rhapi test`'s `set_time`); `None` lets it run again.
    pub fn freeze(&self, ms: Option<i64>) {
        self.frozen.store(ms.unwrap_or(RUNNING), Ordering::Relaxed);
    }

    #[allow(dead_code, reason = "set_time lands with the time:: battery")]
    /// Whether a test has stopped this clock.
    #[allow(dead_code)] // for the job runner, which lands after time:: and cache::
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed) != RUNNING
    }
}

/// The system's wall clock, in milliseconds since the Unix epoch (0 before it).
pub fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_stays_until_released() {
        let clock = Clock::default();
        let before = system_now_ms();
        assert!(clock.now_ms() >= before);
        clock.freeze(Some(1_000));
        assert_eq!((clock.now_ms(), clock.is_frozen()), (1_000, true));
        clock.freeze(None);
        assert!(clock.now_ms() >= before && !clock.is_frozen());
    }
}
