//! Durable jobs: `jobs/NAME.rhai` files, run by the server from a queue in the app's own
//! database (docs/reference.md, "Jobs"; docs/design.md, "A job run").
//!
//! - here: a compiled job ([`JobScript`], [`Job`]) and what the app keeps for its queue
//!   across reloads ([`Queue`]: the job names `jobs::enqueue` accepts, the local wake-up);
//! - `config.rs`, `schedule.rs`: a job file's `CONFIG` and `SCHEDULE`;
//! - `queue.rs`: the tables and every statement on them (enqueue, claim, finish, list);
//! - `runner.rs`: the server's loop that claims due jobs and runs each as a script run on
//!   an HTTP worker, and enqueues scheduled ticks.

pub mod config;
pub mod queue;
pub mod runner;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::error::ScriptError;
use crate::script::RouteScript;

pub use config::JobConfig;

/// A compiled job file, ready to run.
pub struct JobScript {
    /// The compiled file (run like a route's, through its `fn run`).
    pub script: Arc<RouteScript>,
    /// How many of `payload`, `env` its `fn run` declares.
    pub arity: usize,
    pub config: JobConfig,
}

impl JobScript {
    /// The job of a compiled file: it must define `fn run` with at most two
    /// parameters, and its `CONFIG` and `SCHEDULE` must be valid.
    pub fn new(script: Arc<RouteScript>) -> Result<JobScript, ScriptError> {
        let display = script.file.to_string();
        let run = script.ast.iter_fn_def().find(|f| f.name == "run");
        let Some(run) = run else {
            return Err(ScriptError::in_file(
                &display,
                "a job file defines fn run(payload, env): the function each job runs",
            ));
        };
        let arity = run.params.len();
        if arity > 2 {
            return Err(ScriptError::in_file(
                &display,
                format!("fn run takes at most 2 parameters (payload, env), not {arity}"),
            ));
        }
        let config = config::read(&script.ast, &display)?;
        Ok(JobScript {
            script,
            arity,
            config,
        })
    }
}

/// A job in the snapshot: ready, or a file that failed to load (its queued jobs wait).
pub enum Job {
    Ready(Arc<JobScript>),
    Broken(ScriptError),
}

/// The jobs of one snapshot, by name.
pub type JobTable = BTreeMap<String, Job>;

/// What an app keeps for its queue across reloads (part of its
/// [`crate::app_context::AppContext`]).
#[derive(Default)]
pub struct Queue {
    /// Every job file's name, loaded or not: what `jobs::enqueue` accepts.
    names: ArcSwap<BTreeSet<String>>,
    /// Wakes this process's runner (an enqueue on SQLite, which has no notifications).
    wake: Notify,
    /// The tables exist (created once per process).
    tables_ready: AtomicBool,
}

impl Queue {
    /// The job names after a load.
    pub fn set_names(&self, names: BTreeSet<String>) {
        self.names.store(Arc::new(names));
    }

    /// Whether a job file of that name exists (loaded or not).
    pub fn knows(&self, name: &str) -> bool {
        self.names.load().contains(name)
    }

    /// Tells this process's runner to look at the queue now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for [`Queue::wake`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    pub fn tables_ready(&self) -> bool {
        self.tables_ready.load(Ordering::Acquire)
    }

    pub fn mark_tables_ready(&self) {
        self.tables_ready.store(true, Ordering::Release);
    }
}
