//! Where scripts run.
//!
//! A script that does no I/O starts inline on the HTTP worker that received the request:
//! that is the fastest place (measured in docs/design.md, "Where scripts run"). It gets a short time
//! slice there. A run that outlasts its slice is abandoned and started again on the script
//! pool, and its route is marked heavy so that its next requests go to the pool directly:
//! a slow or looping script can hold an HTTP worker for one slice at most, never for its
//! whole budget. Restarting is safe because such a script has no effect outside its run
//! (its `res` and log lines are discarded). Routes that do I/O (`db::`, `http::`, `mail::`)
//! always run on the pool, since they block.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use rhai::Dynamic;
use tokio::sync::oneshot;

use crate::error::ScriptError;
use crate::script::{Call, Reply};

/// How long a script may hold an HTTP worker before it moves to the pool.
pub const INLINE_SLICE: Duration = Duration::from_millis(2);

/// Runs waiting for a pool thread before new ones are refused with 503.
const QUEUE_LEN: usize = 4096;

struct Job {
    call: Call,
    req: Dynamic,
    reply: oneshot::Sender<Reply>,
}

/// Where runs go. Only [`Placement::Hybrid`] is for use; the others exist so that
/// `bench/run.py` can measure the designs side by side (`RHAPI_EXECUTOR=inline|pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Inline with a slice, then the pool (the design described above).
    Hybrid,
    /// Always on the HTTP worker, for the whole budget.
    Inline,
    /// Always on the pool.
    Pool,
}

impl Placement {
    /// From `RHAPI_EXECUTOR` (benchmarks only); hybrid when unset or unknown.
    pub fn from_env() -> Placement {
        match std::env::var("RHAPI_EXECUTOR").as_deref() {
            Ok("inline") => Placement::Inline,
            Ok("pool") => Placement::Pool,
            _ => Placement::Hybrid,
        }
    }
}

/// How [`Executor::run_inline`] ended.
pub enum Inline {
    /// The run finished on this thread.
    Done(Reply),
    /// The route must run on the pool: here is its `req` back, for [`Executor::run_pooled`].
    NotHere(Dynamic),
    /// The run outran its slice and was abandoned; its route is now heavy, and the pool
    /// needs a fresh `req` (the first run consumed it).
    Overran,
}

/// Runs route calls inline or on the script pool.
pub struct Executor {
    jobs: Sender<Job>,
    placement: Placement,
}

impl Executor {
    /// Starts a pool of `threads` script threads.
    pub fn new(threads: usize, placement: Placement) -> std::io::Result<Executor> {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(QUEUE_LEN);
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("rhapi-script-{i}"))
                .stack_size(8 * 1024 * 1024)
                .spawn(move || {
                    for job in queue {
                        let started = Instant::now();
                        let reply = run_caught(&job.call, job.req, None);
                        if started.elapsed() < INLINE_SLICE / 2 {
                            job.call.script.heavy.store(false, Ordering::Relaxed);
                        }
                        let _ = job.reply.send(reply);
                    }
                })?;
        }
        Ok(Executor { jobs, placement })
    }

    /// Runs `call` on this (HTTP worker) thread when its route may run here.
    pub fn run_inline(&self, call: &Call, req: Dynamic) -> Inline {
        let pooled = match self.placement {
            Placement::Hybrid => call.script.does_io || call.script.heavy.load(Ordering::Relaxed),
            Placement::Inline => false,
            Placement::Pool => true,
        };
        if pooled {
            return Inline::NotHere(req);
        }
        let slice_end = match self.placement {
            Placement::Inline => None,
            _ => Some((Instant::now() + INLINE_SLICE).min(call.deadline)),
        };
        match run_caught(call, req, slice_end) {
            Reply::SliceOver => {
                call.script.heavy.store(true, Ordering::Relaxed);
                Inline::Overran
            }
            reply => Inline::Done(reply),
        }
    }

    /// Runs `call` on the script pool.
    pub async fn run_pooled(&self, call: Call, req: Dynamic) -> Reply {
        let (reply, receive) = oneshot::channel();
        match self.jobs.try_send(Job { call, req, reply }) {
            Ok(()) => receive.await.unwrap_or(Reply::Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Reply::Busy,
        }
    }
}

/// Runs a call; a panic anywhere inside becomes a 500, never a dead thread.
fn run_caught(call: &Call, req: Dynamic, slice_end: Option<Instant>) -> Reply {
    catch_unwind(AssertUnwindSafe(|| call.run(req, slice_end))).unwrap_or_else(|_| {
        Reply::Failed(ScriptError::in_file(
            &call.script.file,
            "internal error while running the script (a panic; see the server log)",
        ))
    })
}
