//! Whether the app is ready for traffic (`GET /_rhapi/ready`): loaded, its migrations
//! applied, its database answering, and not stopping. The database is asked with a cheap
//! `SELECT 1` under a short timeout, at most once per [`CHECK_EVERY`]: probes in between get
//! the last answer, so a load balancer probing often cannot hammer the database.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::db::{Databases, DbError, Target};
use crate::env::EnvVars;

/// How long a database answer is reused.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Time the database has to answer `SELECT 1` (a connection from the pool, or a new one,
/// included).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the app is not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// SIGTERM or SIGINT arrived: the server is finishing what it runs.
    Stopping,
    /// The last attempt to apply the migrations failed (`rhapi dev` serves on).
    Migrations,
    /// The database did not answer in time, or refused.
    Database,
}

impl NotReady {
    /// What `/_rhapi/ready` says (never the database's own message: it can name hosts).
    pub fn reason(self) -> &'static str {
        match self {
            NotReady::Stopping => "stopping",
            NotReady::Migrations => "migrations failed",
            NotReady::Database => "database unavailable",
        }
    }
}

/// One app's readiness (in its [`crate::app_context::AppContext`]).
#[derive(Default)]
pub struct Readiness {
    stopping: AtomicBool,
    migrations_failed: AtomicBool,
    /// The last database answer and when it came; held while a check runs, so that
    /// probes arriving meanwhile wait for that one instead of starting their own.
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
    /// Whether the last check failed (its failure and its recovery are logged once).
    failing: AtomicBool,
}

impl Readiness {
    /// The server is stopping: not ready from now on.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Whether the last attempt to apply the migrations succeeded.
    pub fn migrations_applied(&self, applied: bool) {
        self.migrations_failed.store(!applied, Ordering::Release);
    }

    /// `Ok` when ready. `env` is the app's current environment (`DATABASE_URL`).
    pub async fn check(
        &self,
        dir: &Path,
        env: &EnvVars,
        databases: &Databases,
        redact: impl Fn(&str) -> String,
    ) -> Result<(), NotReady> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(NotReady::Stopping);
        }
        if self.migrations_failed.load(Ordering::Acquire) {
            return Err(NotReady::Migrations);
        }
        let mut last = self.last.lock().await;
        let answered = match *last {
            Some((at, answered)) if at.elapsed() < CHECK_EVERY => answered,
            _ => {
                let result = database_answers(dir, env, databases).await;
                self.log_change(&result, redact);
                let answered = result.is_ok();
                *last = Some((Instant::now(), answered));
                answered
            }
        };
        if answered {
            Ok(())
        } else {
            Err(NotReady::Database)
        }
    }

    fn log_change(&self, result: &Result<(), String>, redact: impl Fn(&str) -> String) {
        let failing = result.is_err();
        if self.failing.swap(failing, Ordering::AcqRel) == failing {
            return;
        }
        match result {
            Err(err) => tracing::warn!(
                "not ready: the database does not answer: {}",
                crate::logging::escape(&redact(err))
            ),
            Ok(()) => tracing::info!("ready: the database answers again"),
        }
    }
}

/// Whether the app has a database to check: `DATABASE_URL` is set, or it has migrations
/// (on the default `data/app.db`). An app without either is never made to create one.
fn has_database(dir: &Path, env: &EnvVars) -> bool {
    env.get("DATABASE_URL")
        .is_some_and(|url| !url.trim().is_empty())
        || dir.join("migrations").is_dir()
}

/// `SELECT 1` on the app's database, on a blocking thread, within [`CHECK_TIMEOUT`].
async fn database_answers(dir: &Path, env: &EnvVars, databases: &Databases) -> Result<(), String> {
    if !has_database(dir, env) {
        return Ok(());
    }
    let target = Target::from_env(dir, env).map_err(|err| err.to_string())?;
    let db = databases.open(&target).map_err(|err| err.to_string())?;
    let ask = tokio::task::spawn_blocking(move || -> Result<(), DbError> {
        let mut conn = db.get(CHECK_TIMEOUT)?;
        conn.as_dyn().batch("SELECT 1", CHECK_TIMEOUT)
    });
    // The thread may outlive the wait (a connect that hangs): it ends within its own
    // timeout; the answer is "not ready" now.
    match tokio::time::timeout(CHECK_TIMEOUT + Duration::from_millis(500), ask).await {
        Ok(Ok(answered)) => answered.map_err(|err| err.to_string()),
        Ok(Err(err)) => Err(format!("the check failed: {err}")),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}
