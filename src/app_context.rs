//! What one app owns that its engine, its runs and its server reach: the secrets to redact
//! (its current environment), its databases, its clock, its cache, its job queue, its
//! publish/subscribe hub, its metrics and its readiness. One per [`crate::app::App`], handed to the
//! engine builder and the loader, as axum hands a router its state: two apps in one
//! process (`rhapi test` loads one per test file, in parallel) share nothing here.
//!
//! What stays process-wide, on purpose: the database threads and the CPU threads (threads
//! are the process's to spend, and an app each would multiply them), and the log (one
//! stderr, batched; `logging.rs`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::batteries::mail::Outbox;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::db::Databases;
use crate::env::EnvVars;
use crate::rate_limit::RateLimiter;

pub struct AppContext {
    /// The app's environment as last loaded: the secrets its messages are redacted of.
    secrets: ArcSwap<EnvVars>,
    /// The app's open databases and their pools, kept across reloads.
    pub databases: Databases,
    /// The app's wall clock (`time::now()`, job delays, ttls, rate windows); `rhapi test`
    /// freezes it.
    pub clock: Clock,
    /// `cache::`, shared by every route; its bound follows `[cache] max`.
    pub cache: Cache,
    /// Under `rhapi test` only: where `mail::send` puts mail instead of sending it.
    pub outbox: Option<Outbox>,
    /// The job names `jobs::enqueue` accepts and the wake-up of the job runner.
    pub jobs: crate::jobs::Queue,
    /// The app's rate-limit counters (`[[rate_limit]]`, a route's `CONFIG`, `rate::check`).
    pub rate: RateLimiter,
    /// Publish and subscribe (`realtime::publish`, `res.subscribe`, WebSockets): the
    /// app's local subscribers by topic.
    pub hub: Arc<crate::realtime::Hub>,
    /// The app's Prometheus metrics (`[metrics] listen`); they count only while on.
    pub metrics: crate::metrics::Metrics,
    /// What `/_rhapi/ready` answers from: migrations, the database, stopping.
    pub readiness: crate::readiness::Readiness,
}

impl AppContext {
    pub fn new(env: &Arc<EnvVars>) -> Arc<AppContext> {
        Arc::new(AppContext::with_outbox(env, None))
    }

    /// The context of an app under `rhapi test`: its mail goes to an outbox.
    pub fn for_tests(env: &Arc<EnvVars>) -> Arc<AppContext> {
        Arc::new(AppContext::with_outbox(env, Some(Outbox::default())))
    }

    fn with_outbox(env: &Arc<EnvVars>, outbox: Option<Outbox>) -> AppContext {
        AppContext {
            secrets: ArcSwap::new(Arc::clone(env)),
            databases: Databases::default(),
            clock: Clock::default(),
            cache: Cache::default(),
            outbox,
            jobs: crate::jobs::Queue::default(),
            rate: RateLimiter::default(),
            hub: Arc::default(),
            metrics: crate::metrics::Metrics::default(),
            readiness: crate::readiness::Readiness::default(),
        }
    }

    /// The environment changed (`.env` was edited): redact its values from now on.
    pub fn set_env(&self, env: &Arc<EnvVars>) {
        self.secrets.store(Arc::clone(env));
    }

    /// `text` with the app's secret values replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.load().redact(text)
    }

    /// The environment the app's secrets come from.
    pub fn env(&self) -> Arc<EnvVars> {
        self.secrets.load_full()
    }
}
