//! Native work that computes for more than a moment (hashing a password, compressing a large
//! body or file, parsing a large body, sorting a large array) runs on threads of its own,
//! one per core, while the request that asked for it waits: an HTTP worker never computes
//! such work itself, so its other requests are answered meanwhile (docs/reference.md,
//! "Concurrency").
//!
//! A fixed number of threads, not tokio's blocking pool (up to 512 threads): the work is CPU
//! bound, so more threads than cores only share the same cores, and each argon2 hash holds
//! 19 MiB while it runs. Jobs past the threads wait in a queue.

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::executor::Waited;

/// A job for a pool of threads.
pub type Task = Box<dyn FnOnce() + Send>;

/// Starts `threads` threads named `name-N` that run the jobs sent to the returned queue, in
/// order. A thread that cannot be started is logged; with none started, the queue's jobs
/// are dropped (sending fails), which callers treat as "do it yourself".
pub fn pool(name: &str, threads: usize) -> crossbeam_channel::Sender<Task> {
    let (queue, jobs) = crossbeam_channel::unbounded::<Task>();
    for i in 0..threads {
        let jobs = jobs.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || {
                for job in jobs {
                    job();
                }
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start a {name} thread: {err}");
        }
    }
    queue
}

/// The queue of the CPU threads, started on first use.
fn queue() -> &'static crossbeam_channel::Sender<Task> {
    static QUEUE: OnceLock<crossbeam_channel::Sender<Task>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        pool("rhapi-cpu", threads)
    })
}

/// `work` done on the CPU threads; a panic inside it is returned, not raised.
async fn run_caught<T, F>(work: F) -> Result<T, Box<dyn Any + Send>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Task = Box::new(move || {
        let _ = reply.send(catch_unwind(AssertUnwindSafe(work)));
    });
    if let Err(unsent) = queue().send(job) {
        (unsent.into_inner())();
    }
    answer
        .await
        .unwrap_or_else(|_| Err(Box::new("a CPU thread dropped its job")))
}

/// Does `work` on the CPU threads while this task waits (the worker serves its other
/// requests meanwhile). A panic inside `work` panics here.
pub async fn run<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    run_caught(work)
        .await
        .unwrap_or_else(|panic| resume_unwind(panic))
}

/// From a script's run: `work` on the CPU threads while the run waits, within the run's
/// time budget (past it the run ends as a timeout; the work finishes unseen). Outside a
/// run (`rhapi migrate`, tests of the engine), `work` is done here.
pub fn wait<T, F>(work: F) -> Waited<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !crate::executor::in_run() {
        return Waited::Done(work());
    }
    match crate::executor::wait(run_caught(work)) {
        Waited::Done(Ok(value)) => Waited::Done(value),
        Waited::Done(Err(panic)) => resume_unwind(panic),
        Waited::TimedOut => Waited::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_done_on_another_thread_and_panics_come_back() {
        let here = std::thread::current().id();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let there = runtime.block_on(run(|| std::thread::current().id()));
        assert_ne!(here, there);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(run(|| -> u8 { panic!("inside") }))
        }));
        assert!(caught.is_err());
        // Outside a script's run, `wait` does the work where it is.
        assert!(matches!(wait(|| 7), Waited::Done(7)));
    }
}
