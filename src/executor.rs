//! Where scripts run: each request's script runs on a coroutine of its own (a small stack
//! of its own, `corosensei`), on the HTTP worker thread that received the request.
//!
//! A script never blocks that thread. When it waits (`http::`, `sleep`, `db::`, `mail::`, a
//! streamed write), the battery hands a future to the worker's async runtime and the
//! coroutine suspends ([`wait`]); the runtime serves other requests meanwhile and resumes
//! the coroutine with the result. A script that computes without waiting is suspended when
//! its 2 ms slice is over ([`SLICE`]); after its first slice it takes turns with the other
//! long runs of the worker, one slice each, with every other ready request served between
//! two turns. So a runaway loop delays its neighbours by one slice at most, and thousands of
//! waiting requests cost memory (their stacks), not threads. See docs/design.md, "Where
//! scripts run".
//!
//! Per-run state the engine's callbacks read (budget, file, log lines, memory allowance, an
//! open transaction) is kept in thread-locals while the run is on the thread and saved on
//! its own stack while it is suspended ([`crate::script::context::Saved`]).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use rhai::Dynamic;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::cpu::Job;
use crate::error::ScriptError;
use crate::script::context;
use crate::script::response::Sent;
use crate::script::{Call, Reply};

/// How long a run may compute before other requests on its worker get their turn.
pub const SLICE: Duration = Duration::from_millis(2);

/// The slice of a run after it was suspended: shorter, so that when several long runs take
/// turns, a new request waits for one short turn at most.
pub const RESUMED_SLICE: Duration = Duration::from_millis(1);

/// Stack of one run. Only touched pages take memory; the rest is address space. Rhai's
/// interpreter is recursive, and unoptimised builds use several times the stack of release
/// builds, so this leaves room for the deepest call nesting the limits allow.
const STACK_SIZE: usize = 8 * 1024 * 1024;

/// Finished runs' stacks kept per worker for the next runs. A stack keeps the pages its runs
/// touched (about 12 KiB for a route that waits on I/O), so a thousand cost about 12 MiB,
/// and save a mapping and an unmapping per request under a burst of waiting requests.
const POOLED_STACKS: usize = 1024;

/// Chunks a streamed response may hold before `res.write` waits for the client.
const STREAM_BUFFER: usize = 16;

/// A future a run waits on, with its output type erased.
type LocalFuture = Pin<Box<dyn Future<Output = Box<dyn Any>>>>;

/// Why a run gave its thread back.
enum Suspend {
    /// Its slice is over.
    Slice,
    /// It waits for this future.
    Wait(LocalFuture),
    /// Its first `res.write`: the status and headers, and the first chunk.
    StartStream(Sent, Bytes),
    /// A later chunk of its streamed response.
    Chunk(Bytes),
    /// `res.end()` on a streamed response.
    EndStream,
}

/// What a suspended run is resumed with.
enum Resume {
    /// Go on.
    Go,
    /// The output of the future it waited for.
    Value(Box<dyn Any>),
    /// Its budget ran out while it waited.
    TimedOut,
    /// Whether the chunk reached the client's connection (`false`: the client is gone).
    Delivered(bool),
}

type RunYielder = Yielder<Resume, Suspend>;

thread_local! {
    /// The yielder of the run on this thread right now (null outside runs).
    static YIELDER: Cell<*const RunYielder> = const { Cell::new(std::ptr::null()) };
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    /// The turn of long runs: one slice at a time per worker.
    static TURN: Arc<Semaphore> = Arc::new(Semaphore::new(1));
}

/// A streamed response: its head, and its chunks as they come.
pub struct Stream {
    pub head: Sent,
    pub chunks: mpsc::Receiver<Bytes>,
}

/// How a run ended for the HTTP side.
pub enum Outcome {
    /// A whole response (or an error) to deliver.
    Reply(Reply),
    /// A response streamed while the script goes on.
    Stream(Stream),
}

/// Runs one route call on a coroutine of this worker.
pub async fn run(call: Call, req: Dynamic) -> Outcome {
    let mut run = match Run::start(call, req) {
        Ok(run) => run,
        Err(reply) => return Outcome::Reply(reply),
    };
    match run.drive(None).await {
        Step::Done(reply) => Outcome::Reply(reply),
        Step::StartStream(head, first) => {
            let (chunks_tx, chunks) = mpsc::channel(STREAM_BUFFER);
            // Room for one chunk: this never fails.
            let _ = chunks_tx.try_send(first);
            actix_web::rt::spawn(async move {
                run.input = Resume::Delivered(true);
                if let Step::Done(reply) = run.drive(Some(chunks_tx)).await {
                    log_after_stream(reply);
                }
            });
            Outcome::Stream(Stream { head, chunks })
        }
    }
}

/// What a run ended with after its stream started: only errors matter (they are logged).
fn log_after_stream(reply: Reply) {
    match reply {
        Reply::Failed(err) | Reply::Timeout(err) => tracing::error!(
            "{} (after the response started streaming)",
            crate::logging::clean(&err.to_string())
        ),
        _ => {}
    }
}

enum Step {
    Done(Reply),
    StartStream(Sent, Bytes),
}

/// One run: its coroutine, and its turn among long runs once it has one.
struct Run {
    /// `None` only while the run is dropped.
    coroutine: Option<Coroutine<Resume, Suspend, Reply, DefaultStack>>,
    deadline: Instant,
    input: Resume,
    turn: Option<OwnedSemaphorePermit>,
}

impl Run {
    fn start(call: Call, req: Dynamic) -> Result<Run, Reply> {
        let stack = match STACKS.with(|s| s.borrow_mut().pop()) {
            Some(stack) => stack,
            None => DefaultStack::new(STACK_SIZE).map_err(|err| {
                tracing::error!("cannot allocate a script stack: {err}");
                Reply::Busy
            })?,
        };
        let deadline = call.deadline;
        let coroutine = Coroutine::with_stack(stack, move |yielder: &RunYielder, _: Resume| {
            YIELDER.with(|y| y.set(yielder));
            run_caught(&call, req)
        });
        Ok(Run {
            coroutine: Some(coroutine),
            deadline,
            input: Resume::Go,
            turn: None,
        })
    }

    /// Resumes the run until it ends or (without `stream`) starts streaming.
    async fn drive(&mut self, mut stream: Option<mpsc::Sender<Bytes>>) -> Step {
        loop {
            let input = std::mem::replace(&mut self.input, Resume::Go);
            let Some(coroutine) = self.coroutine.as_mut() else {
                return Step::Done(Reply::Busy);
            };
            let step = coroutine.resume(input);
            YIELDER.with(|y| y.set(std::ptr::null()));
            match step {
                CoroutineResult::Return(reply) => return Step::Done(reply),
                CoroutineResult::Yield(Suspend::Slice) => self.take_turn().await,
                CoroutineResult::Yield(Suspend::Wait(future)) => {
                    // A long run gives its turn back while it waits.
                    self.turn = None;
                    let left = self.deadline.saturating_duration_since(Instant::now());
                    self.input = match tokio::time::timeout(left, future).await {
                        Ok(value) => Resume::Value(value),
                        Err(_) => Resume::TimedOut,
                    };
                }
                CoroutineResult::Yield(Suspend::StartStream(head, first)) => {
                    if stream.is_none() {
                        return Step::StartStream(head, first);
                    }
                    // Only the first write starts a stream (see `Res`).
                    self.input = Resume::Delivered(false);
                }
                CoroutineResult::Yield(Suspend::Chunk(chunk)) => {
                    let delivered = match &stream {
                        Some(sender) => sender.send(chunk).await.is_ok(),
                        None => false,
                    };
                    self.input = Resume::Delivered(delivered);
                }
                CoroutineResult::Yield(Suspend::EndStream) => stream = None,
            }
        }
    }

    /// After a slice: let every ready request run, then wait for this worker's turn of
    /// long runs (the turn held until now goes to the next long run first).
    async fn take_turn(&mut self) {
        let turn = TURN.with(Arc::clone);
        self.turn = None;
        tokio::task::yield_now().await;
        self.turn = turn.acquire_owned().await.ok();
        // The turn is handed over by a direct wake, which would let long runs follow one
        // another without the runtime polling its sockets; yielding once more (tokio defers
        // a yield until the I/O driver has run) lets new requests in between two turns.
        tokio::task::yield_now().await;
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let Some(mut coroutine) = self.coroutine.take() else {
            return;
        };
        // A run dropped while suspended (its client went away, the server stops) unwinds
        // its stack, so that what it holds (connections, transactions) is released.
        if coroutine.started() && !coroutine.done() {
            coroutine.force_unwind();
            YIELDER.with(|y| y.set(std::ptr::null()));
        }
        let stack = coroutine.into_stack();
        STACKS.with(|s| {
            let mut stacks = s.borrow_mut();
            if stacks.len() < POOLED_STACKS {
                stacks.push(stack);
            }
        });
    }
}

/// Runs a call; a panic anywhere inside becomes a 500, never a dead worker. The forced
/// unwind of a dropped run passes through.
fn run_caught(call: &Call, req: Dynamic) -> Reply {
    match catch_unwind(AssertUnwindSafe(|| call.run(req))) {
        Ok(reply) => reply,
        Err(payload) if is_forced_unwind(&*payload) => std::panic::resume_unwind(payload),
        Err(_) => Reply::Failed(ScriptError::in_file(
            &call.script.file,
            "internal error while running the script (a panic; see the server log)",
        )),
    }
}

/// Whether a panic payload is corosensei's forced unwind of a dropped coroutine (its type
/// is private: every panic rhapi or a library raises carries a string).
fn is_forced_unwind(payload: &(dyn Any + Send)) -> bool {
    !(payload.is::<&'static str>() || payload.is::<String>())
}

/// Suspends the run on this thread with `why`; `None` outside a run.
fn suspend(why: Suspend) -> Option<Resume> {
    let yielder = YIELDER.with(Cell::get);
    if yielder.is_null() {
        return None;
    }
    let saved = context::Saved::take();
    // SAFETY: the pointer is set by the coroutine's own body and cleared whenever it is not
    // running; this code runs on that coroutine, so the yielder (on its stack) is alive.
    let resumed = unsafe { &*yielder }.suspend(why);
    YIELDER.with(|y| y.set(yielder));
    saved.restore();
    Some(resumed)
}

/// Whether this thread is running a script's coroutine right now.
pub fn in_run() -> bool {
    !YIELDER.with(Cell::get).is_null()
}

/// Gives the thread to other requests for a while (the slice is over).
pub fn end_slice() {
    suspend(Suspend::Slice);
}

/// The outcome of [`wait`].
pub enum Waited<T> {
    Done(T),
    /// The request's budget ran out first (the future was dropped).
    TimedOut,
}

/// Waits for `future` without holding the thread: in a run, the coroutine suspends and the
/// worker's runtime polls the future; outside one (migrations at start, `rhapi migrate`),
/// it runs on a runtime of its own. Bounded by the run's budget.
pub fn wait<F>(future: F) -> Waited<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if !in_run() {
        return Waited::Done(block_on(future));
    }
    let erased: LocalFuture = Box::pin(async move { Box::new(future.await) as Box<dyn Any> });
    match suspend(Suspend::Wait(erased)) {
        Some(Resume::Value(value)) => match value.downcast::<F::Output>() {
            Ok(value) => Waited::Done(*value),
            Err(_) => unreachable!("a wait is resumed with its own future's output"),
        },
        _ => Waited::TimedOut,
    }
}

/// Threads that run the database's blocking calls (SQLite, and PostgreSQL's connections,
/// which are driven synchronously): as many as a database pool has connections, since a
/// call waits for a connection first.
const DATABASE_THREADS: usize = 16;

/// The queue of the database threads, started on first use.
fn database_threads() -> &'static crossbeam_channel::Sender<Job> {
    static QUEUE: std::sync::OnceLock<crossbeam_channel::Sender<Job>> = std::sync::OnceLock::new();
    QUEUE.get_or_init(|| crate::cpu::pool("rhapi-db", DATABASE_THREADS))
}

/// Runs a blocking database call on the database threads, waiting for it as [`wait`] does
/// (the worker serves other requests meanwhile). A panic inside it panics here, in the run.
/// A queue of dedicated threads costs a few µs less per call than tokio's `spawn_blocking`
/// (which is kept for SMTP: [`blocking_spawned`]).
pub fn blocking<T, F>(work: F) -> Waited<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !in_run() {
        return Waited::Done(work());
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(catch_unwind(AssertUnwindSafe(work)));
    });
    if database_threads().send(job).is_err() {
        return Waited::TimedOut;
    }
    match wait(answer) {
        Waited::Done(Ok(Ok(value))) => Waited::Done(value),
        Waited::Done(Ok(Err(payload))) => std::panic::resume_unwind(payload),
        Waited::Done(Err(_)) | Waited::TimedOut => Waited::TimedOut,
    }
}

/// Runs blocking work that may wait for seconds (an SMTP exchange) on tokio's blocking
/// threads (up to 512), so that it never holds a database thread.
pub fn blocking_spawned<T, F>(work: F) -> Waited<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !in_run() {
        return Waited::Done(work());
    }
    match wait(tokio::task::spawn_blocking(work)) {
        Waited::Done(Ok(value)) => Waited::Done(value),
        Waited::Done(Err(err)) => match err.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(_) => Waited::TimedOut,
        },
        Waited::TimedOut => Waited::TimedOut,
    }
}

/// Runs a future to completion on a runtime of its own (an actix system, so that actix's
/// HTTP client works there too).
fn block_on<F: Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// Sends the first chunk of a streamed response with its head; `false` when the client is
/// gone (or outside a run, where nothing can be streamed).
pub fn start_stream(head: Sent, first: Bytes) -> bool {
    context::set_streaming();
    matches!(
        suspend(Suspend::StartStream(head, first)),
        Some(Resume::Delivered(true))
    )
}

/// Sends a later chunk; `false` when the client is gone.
pub fn send_chunk(chunk: Bytes) -> bool {
    matches!(
        suspend(Suspend::Chunk(chunk)),
        Some(Resume::Delivered(true))
    )
}

/// Ends a streamed response now (the run may go on).
pub fn end_stream() {
    suspend(Suspend::EndStream);
}
