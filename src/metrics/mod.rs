//! The app's Prometheus metrics (`[metrics] listen`): counters kept in atomics where the
//! request path touches them, and written out in the text exposition format
//! ([`text::render`]) when `/metrics` is scraped. Nothing is counted while metrics are off.
//!
//! Why atomics and not the `prometheus` or `metrics` crates: both find a series by hashing
//! its label values on every observation (a map lookup under a lock, the labels built per
//! call), which costs more than the whole of what is kept here per request: each route's
//! counters are found once, when the snapshot is built ([`Metrics::route`]), and a request
//! adds to three atomics (its method and status slot, its duration's bucket, the sum).
//! Measured in bench/RESULTS.md, part 9.

pub mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;

/// Upper bounds of the duration histogram's buckets, in microseconds (`+Inf` follows):
/// from 0.5 ms (a small route) to 30 s (past the default timeout of 10 s).
pub const BUCKETS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// The same bounds as the `le` labels show them, in seconds.
const BUCKET_LABELS: [&str; 15] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10", "30",
];

/// The methods a series can name; any other is counted as `other` (a client can send any
/// token as a method: the label stays bounded).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// The `route` label of requests no route answered (404s, and requests refused before
/// routing: server busy, a malformed path).
pub const NONE: &str = "none";

/// The `route` label of files served from `public/`.
pub const PUBLIC: &str = "public";

/// Slots for (method, status) pairs per route, found by open addressing without a lock; a
/// route that sees more distinct pairs than this counts the rest under a mutex.
const SLOTS: usize = 32;

/// What a script error was, for `rhapi_script_errors_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A run-time error (a failed call, a thrown string, the memory budget).
    Error,
    /// The time or operations budget ran out.
    Timeout,
    /// rhapi itself panicked while running the script.
    Panic,
    /// The route (or its middleware) failed to load.
    Load,
}

impl ErrorKind {
    const ALL: [ErrorKind; 4] = [
        ErrorKind::Error,
        ErrorKind::Timeout,
        ErrorKind::Panic,
        ErrorKind::Load,
    ];

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Error => "error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Panic => "panic",
            ErrorKind::Load => "load",
        }
    }
}

/// How a job run ended, for `rhapi_jobs_total{state}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobEnd {
    Completed,
    /// Failed with attempts left: it runs again.
    Retried,
    /// Failed for good.
    Failed,
}

impl JobEnd {
    fn label(self) -> &'static str {
        match self {
            JobEnd::Completed => "completed",
            JobEnd::Retried => "retried",
            JobEnd::Failed => "failed",
        }
    }
}

/// One `route` label's counters: requests by method and status, their durations, and
/// script errors by kind.
pub struct RouteMetrics {
    /// Keys are `(method index + 1) << 10 | status` (never 0, which marks a free slot).
    keys: [AtomicU32; SLOTS],
    counts: [AtomicU64; SLOTS],
    overflow: Mutex<BTreeMap<u32, u64>>,
    /// Requests per bucket of [`BUCKETS_US`], the last one past them all (not cumulative:
    /// added up when written out).
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_nanos: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl RouteMetrics {
    fn new() -> RouteMetrics {
        RouteMetrics {
            keys: std::array::from_fn(|_| AtomicU32::new(0)),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn request(&self, method: usize, status: u16, took: Duration) {
        self.count(((method as u32 + 1) << 10) | u32::from(status.min(999)));
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Adds one to the slot of `key`, claiming a free one the first time.
    fn count(&self, key: u32) {
        let start = (key as usize).wrapping_mul(31) % SLOTS;
        for probe in 0..SLOTS {
            let i = (start + probe) % SLOTS;
            let found = self.keys[i].load(Ordering::Acquire);
            let mine = found == key
                || (found == 0
                    && match self.keys[i].compare_exchange(
                        0,
                        key,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(now) => now == key,
                    });
            if mine {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        *overflow.entry(key).or_default() += 1;
    }

    /// Counts a script error of this route.
    pub fn script_error(&self, kind: ErrorKind) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `(method, status, count)` of every pair seen, in key order.
    fn requests(&self) -> Vec<(&'static str, u16, u64)> {
        let mut seen: BTreeMap<u32, u64> = self
            .overflow
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (key, count) in self.keys.iter().zip(&self.counts) {
            let key = key.load(Ordering::Acquire);
            if key != 0 {
                *seen.entry(key).or_default() += count.load(Ordering::Relaxed);
            }
        }
        seen.into_iter()
            .filter(|&(_, count)| count > 0)
            .map(|(key, count)| {
                (
                    METHODS[(key >> 10) as usize - 1],
                    (key & 1023) as u16,
                    count,
                )
            })
            .collect()
    }
}

/// Which counters a request adds to, found as it is routed.
pub enum RouteLabel {
    /// No route: a 404, or refused before routing.
    None,
    /// `public/` (its 404s count as [`RouteLabel::None`]).
    Public,
    /// A route of `pages/api`, by its pattern.
    Route(Arc<RouteMetrics>),
}

/// The metrics of one app (in its [`crate::app_context::AppContext`]).
pub struct Metrics {
    /// Set once the metrics listener is up: until then (and without `[metrics] listen`)
    /// requests count nothing.
    on: AtomicBool,
    /// Each route pattern's counters, kept across reloads (a reload keeps counting where
    /// the last snapshot stopped), with [`NONE`] and [`PUBLIC`].
    routes: Mutex<BTreeMap<String, Arc<RouteMetrics>>>,
    none: Arc<RouteMetrics>,
    public: Arc<RouteMetrics>,
    jobs: Mutex<BTreeMap<(String, JobEnd), u64>>,
    websockets: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let (none, public) = (Arc::new(RouteMetrics::new()), Arc::new(RouteMetrics::new()));
        let routes = BTreeMap::from([
            (NONE.to_string(), Arc::clone(&none)),
            (PUBLIC.to_string(), Arc::clone(&public)),
        ]);
        Metrics {
            on: AtomicBool::new(false),
            routes: Mutex::new(routes),
            none,
            public,
            jobs: Mutex::new(BTreeMap::new()),
            websockets: AtomicI64::new(0),
        }
    }
}

impl Metrics {
    /// Starts counting (the metrics listener is up).
    pub fn turn_on(&self) {
        self.on.store(true, Ordering::Release);
    }

    /// Whether anything is counted.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// The counters of the route `pattern` (`/api/users/[id]`), made on first use; the
    /// loader keeps one per route in the snapshot, so that requests never look them up.
    pub fn route(&self, pattern: &str) -> Arc<RouteMetrics> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            routes
                .entry(pattern.to_string())
                .or_insert_with(|| Arc::new(RouteMetrics::new())),
        )
    }

    /// Counts a request that was answered with `status` after `took`. Inlined, so that with
    /// metrics off a request pays one load and one branch.
    #[inline]
    pub fn request(&self, label: &RouteLabel, method: &Method, status: u16, took: Duration) {
        if self.is_on() {
            self.count_request(label, method, status, took);
        }
    }

    #[inline(never)]
    fn count_request(&self, label: &RouteLabel, method: &Method, status: u16, took: Duration) {
        let route = match label {
            RouteLabel::Route(route) => route,
            RouteLabel::Public if status != 404 => &self.public,
            RouteLabel::Public | RouteLabel::None => &self.none,
        };
        route.request(method_index(method), status, took);
    }

    /// Counts the end of a run of the job `name`.
    pub fn job_ended(&self, name: &str, end: JobEnd) {
        if !self.is_on() {
            return;
        }
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        *jobs.entry((name.to_string(), end)).or_default() += 1;
    }

    /// A WebSocket connection was opened (`rhapi_websocket_connections` goes up by one).
    /// Called by the connection's task; it calls [`Metrics::websocket_closed`] as it ends.
    pub fn websocket_opened(&self) {
        self.websockets.fetch_add(1, Ordering::Relaxed);
    }

    /// A WebSocket connection was closed.
    pub fn websocket_closed(&self) {
        self.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The place of `method` in [`METHODS`].
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_past_the_slots_are_still_counted() {
        let route = RouteMetrics::new();
        for status in 100..300u16 {
            route.request(0, status, Duration::from_millis(1));
            route.request(1, status, Duration::from_millis(1));
        }
        let seen = route.requests();
        assert_eq!(seen.len(), 400);
        assert!(seen.iter().all(|&(_, _, count)| count == 1));
        assert_eq!(seen[0], ("GET", 100, 1));
    }

    #[test]
    fn unknown_methods_are_other() {
        let brew = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(METHODS[method_index(&brew)], "other");
        assert_eq!(METHODS[method_index(&Method::DELETE)], "DELETE");
        assert_eq!(METHODS[method_index(&Method::OPTIONS)], "OPTIONS");
    }

    #[test]
    fn buckets_hold_their_upper_bound() {
        let route = RouteMetrics::new();
        route.request(0, 200, Duration::from_micros(500));
        route.request(0, 200, Duration::from_micros(501));
        route.request(0, 200, Duration::from_secs(60));
        let counts: Vec<u64> = route
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[BUCKETS_US.len()], 1);
    }
}
