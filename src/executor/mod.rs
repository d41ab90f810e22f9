//! The run host: each run (a route's script, a middleware, and later a job or a socket
//! event) is a budgeted closure on a coroutine of its own (a small stack of its own,
//! `corosensei`), on the worker thread that started it. It knows nothing of HTTP or of
//! scripts: what a run computes, and what it hands out on the way ([`hand_out`]), is its
//! caller's business.
//!
//! A run never blocks its thread. When it waits (`http::`, `sleep`, `db::`, `mail::`, a
//! streamed write), the code waiting hands a future to the worker's async runtime and the
//! coroutine suspends ([`wait`]); the runtime serves other requests meanwhile and resumes
//! the coroutine with the result. A run that computes without waiting is suspended when its
//! 2 ms slice is over ([`SLICE`], [`end_slice`]); after its first slice it takes turns with
//! the other long runs of the worker, one slice each, with every other ready request served
//! between two turns. So a runaway loop delays its neighbours by one slice at most, and
//! thousands of waiting requests cost memory (their stacks), not threads. See
//! docs/design.md, "Where scripts run".
//!
//! Per-run state lives in thread-locals while the run is on its thread and is put aside
//! while it is suspended: the caller's hot state through [`RunState`] (for scripts, the
//! budget and memory ceiling of `script::context`), and any value a module keeps per run
//! through a [`RunLocal`] (a stream's sender, an open transaction).

mod local;

pub use local::RunLocal;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cpu::Task;
use local::Locals;

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

/// A future a run waits on, with its output type erased.
type LocalFuture = Pin<Box<dyn Future<Output = Box<dyn Any>>>>;

/// Why a run gave its thread back.
enum Suspend {
    /// Its slice is over.
    Slice,
    /// It waits for this future.
    Wait(LocalFuture),
    /// It hands this value to whoever awaits [`run`], and goes on detached.
    HandOut(Box<dyn Any>),
}

/// What a suspended run is resumed with.
enum Resume {
    /// Go on.
    Go,
    /// The output of the future it waited for.
    Value(Box<dyn Any>),
    /// Its budget ran out while it waited.
    TimedOut,
    /// Whether a value it handed out was taken (`false`: nobody awaits the run any more).
    HandedOut(bool),
}

type RunYielder = Yielder<Resume, Suspend>;

thread_local! {
    /// The yielder of the run on this thread right now (null outside runs).
    static YIELDER: Cell<*const RunYielder> = const { Cell::new(std::ptr::null()) };
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    /// The turn of long runs: one slice at a time per worker.
    static TURN: Arc<Semaphore> = Arc::new(Semaphore::new(1));
    /// Runs of this worker that handed a value out and go on detached.
    static DETACHED: Cell<usize> = const { Cell::new(0) };
}

/// The hot per-run state of a kind of run, kept in the caller's own thread-locals while the
/// run is on its thread: taken out when it suspends, put back (with a fresh slice) when it
/// resumes. `()` for runs that keep none.
pub trait RunState: 'static {
    /// Takes this thread's state out (the run just suspended).
    fn take() -> Self;
    /// Puts it back (the run is about to resume).
    fn restore(self);
    /// A value to hand out, as [`hand_out`] would, at this pause of the run (its state was
    /// just taken): how a sent response leaves at the script's next pause, as Node flushes
    /// a written response at the next `await`. Asked at every pause; an awaited run hands
    /// it out and goes on detached, any other drops it.
    fn hand_out_at_pause(&mut self) -> Option<Box<dyn Any>> {
        None
    }
}

impl RunState for () {
    fn take() {}
    fn restore(self) {}
}

/// How a run ended, or what it handed out first.
pub enum Ran<T> {
    /// The run ended with this value.
    Finished(T),
    /// The run called [`hand_out`] with this value; it goes on, detached, on this worker.
    HandedOut(Box<dyn Any>),
    /// No stack could be allocated for it: it never started.
    NoRoom,
    /// It panicked (the worker is fine; the panic is the caller's to report).
    Panicked,
}

/// Runs `body` on a coroutine of this worker, with its waits bounded by `deadline`, and
/// returns when it ends or hands a value out. A run that handed a value out goes on as a
/// task of this worker, and `after` gets what it ends with (`None`: it panicked).
pub async fn run<S, T>(
    deadline: Instant,
    body: impl FnOnce() -> T + 'static,
    after: impl FnOnce(Option<T>) + 'static,
) -> Ran<T>
where
    S: RunState,
    T: 'static,
{
    let mut run = match Run::<S, T>::start(deadline, body) {
        Some(run) => run,
        None => return Ran::NoRoom,
    };
    match run.drive(true).await {
        Step::Done(Some(value)) => Ran::Finished(value),
        Step::Done(None) => Ran::Panicked,
        Step::HandedOut(value) => {
            let detached = Detached::count();
            actix_web::rt::spawn(async move {
                if run.parked.is_none() {
                    run.input = Resume::HandedOut(true);
                }
                if let Step::Done(value) = run.drive(false).await {
                    after(value);
                }
                drop(detached);
            });
            Ran::HandedOut(value)
        }
    }
}

/// Detached runs of every worker (shutdown waits for them).
static DETACHED_ALL: AtomicUsize = AtomicUsize::new(0);

/// Counts a detached run, on its worker and in the process, while it lives.
struct Detached;

impl Detached {
    fn count() -> Detached {
        DETACHED.with(|d| d.set(d.get() + 1));
        DETACHED_ALL.fetch_add(1, Ordering::Relaxed);
        Detached
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        DETACHED.with(|d| d.set(d.get() - 1));
        DETACHED_ALL.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many runs of any worker handed a value out and have not ended yet (the server's
/// shutdown lets them finish, within its grace).
pub fn detached_runs_in_process() -> usize {
    DETACHED_ALL.load(Ordering::Relaxed)
}

/// How many runs of this worker handed a value out and have not ended yet (`rhapi test`
/// waits for them: its `request()` returns when the whole run has ended).
pub fn detached_runs() -> usize {
    DETACHED.with(Cell::get)
}

/// Starts `body` as a run of its own on this worker, awaited by nobody; `after` gets what
/// it ends with (`None`: it panicked, or no stack could be allocated). Anything it hands out
/// is dropped. For work that outlives any request (a job, a socket event).
pub fn spawn<S, T>(
    deadline: Instant,
    body: impl FnOnce() -> T + 'static,
    after: impl FnOnce(Option<T>) + 'static,
) where
    S: RunState,
    T: 'static,
{
    actix_web::rt::spawn(async move {
        let Some(mut run) = Run::<S, T>::start(deadline, body) else {
            return after(None);
        };
        if let Step::Done(value) = run.drive(false).await {
            after(value);
        }
    });
}

enum Step<T> {
    /// `None`: the run panicked.
    Done(Option<T>),
    HandedOut(Box<dyn Any>),
}

/// One run: its coroutine, its state while suspended, and its turn among long runs once it
/// has one.
struct Run<S, T> {
    /// `None` only while the run is dropped.
    coroutine: Option<Coroutine<Resume, Suspend, Option<T>, DefaultStack>>,
    deadline: Instant,
    input: Resume,
    /// The run's state while it is suspended.
    saved: Option<(S, Locals)>,
    /// A suspension not acted on yet: the run handed a value out at that pause first.
    parked: Option<Suspend>,
    turn: Option<OwnedSemaphorePermit>,
}

impl<S: RunState, T: 'static> Run<S, T> {
    fn start(deadline: Instant, body: impl FnOnce() -> T + 'static) -> Option<Run<S, T>> {
        let stack = match STACKS.with(|s| s.borrow_mut().pop()) {
            Some(stack) => stack,
            None => match DefaultStack::new(STACK_SIZE) {
                Ok(stack) => stack,
                Err(err) => {
                    tracing::error!("cannot allocate a run's stack: {err}");
                    return None;
                }
            },
        };
        let coroutine = Coroutine::with_stack(stack, move |yielder: &RunYielder, _: Resume| {
            YIELDER.with(|y| y.set(yielder));
            run_caught(body)
        });
        Some(Run {
            coroutine: Some(coroutine),
            deadline,
            input: Resume::Go,
            saved: None,
            parked: None,
            turn: None,
        })
    }

    /// Resumes the run until it ends or (when `awaited`) hands a value out.
    async fn drive(&mut self, awaited: bool) -> Step<T> {
        loop {
            let suspended = match self.parked.take() {
                Some(suspended) => suspended,
                None => match self.resume() {
                    Ok(suspended) => suspended,
                    Err(value) => return Step::Done(value),
                },
            };
            // A value to hand out at this pause goes first; the pause itself is acted on
            // when the run is driven again, detached.
            let handed = self.saved.as_mut().and_then(|(s, _)| s.hand_out_at_pause());
            if let (Some(value), true) = (handed, awaited) {
                self.parked = Some(suspended);
                return Step::HandedOut(value);
            }
            match suspended {
                Suspend::Slice => self.take_turn().await,
                Suspend::Wait(future) => {
                    // A long run gives its turn back while it waits.
                    self.turn = None;
                    let left = self.deadline.saturating_duration_since(Instant::now());
                    self.input = match tokio::time::timeout(left, future).await {
                        Ok(value) => Resume::Value(value),
                        Err(_) => Resume::TimedOut,
                    };
                }
                Suspend::HandOut(value) if awaited => return Step::HandedOut(value),
                Suspend::HandOut(_) => self.input = Resume::HandedOut(false),
            }
        }
    }

    /// Puts the run back on this thread until it pauses (`Ok`, its state put aside) or ends
    /// (`Err`: its value; `None` if it panicked).
    fn resume(&mut self) -> Result<Suspend, Option<T>> {
        let input = std::mem::replace(&mut self.input, Resume::Go);
        let Some(coroutine) = self.coroutine.as_mut() else {
            return Err(None);
        };
        match self.saved.take() {
            Some((state, locals)) => {
                state.restore();
                locals.restore();
            }
            // A new run starts with no per-run values, whatever code outside runs left.
            None => drop(Locals::take()),
        }
        let step = coroutine.resume(input);
        YIELDER.with(|y| y.set(std::ptr::null()));
        match step {
            CoroutineResult::Return(value) => {
                // What the run kept per run ends with it.
                drop(Locals::take());
                Err(value)
            }
            CoroutineResult::Yield(suspended) => {
                self.saved = Some((S::take(), Locals::take()));
                Ok(suspended)
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

impl<S, T> Drop for Run<S, T> {
    fn drop(&mut self) {
        let Some(mut coroutine) = self.coroutine.take() else {
            return;
        };
        // A run dropped while suspended (its client went away, the server stops) unwinds
        // its stack, so that what it holds (connections, transactions) is released; its
        // per-run values are dropped after that, on this thread.
        if coroutine.started() && !coroutine.done() {
            coroutine.force_unwind();
            YIELDER.with(|y| y.set(std::ptr::null()));
        }
        drop(self.saved.take());
        let stack = coroutine.into_stack();
        STACKS.with(|s| {
            let mut stacks = s.borrow_mut();
            if stacks.len() < POOLED_STACKS {
                stacks.push(stack);
            }
        });
    }
}

/// Runs `body`; a panic anywhere inside is `None`, never a dead worker. The forced unwind
/// of a dropped run passes through.
fn run_caught<T>(body: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => Some(value),
        Err(payload) if is_forced_unwind(&*payload) => std::panic::resume_unwind(payload),
        Err(_) => None,
    }
}

/// Whether a panic payload is corosensei's forced unwind of a dropped coroutine (its type
/// is private: every panic rhapi or a library raises carries a string).
fn is_forced_unwind(payload: &(dyn Any + Send)) -> bool {
    !(payload.is::<&'static str>() || payload.is::<String>())
}

/// Suspends the run on this thread with `why`; `None` outside a run. The driver puts the
/// run's state aside and back around the suspension.
fn suspend(why: Suspend) -> Option<Resume> {
    let yielder = YIELDER.with(Cell::get);
    if yielder.is_null() {
        return None;
    }
    // SAFETY: the pointer is set by the coroutine's own body and cleared whenever it is not
    // running; this code runs on that coroutine, so the yielder (on its stack) is alive.
    let resumed = unsafe { &*yielder }.suspend(why);
    YIELDER.with(|y| y.set(yielder));
    Some(resumed)
}

/// Hands `value` to whoever awaits the run on this thread ([`run`] returns
/// [`Ran::HandedOut`]), and goes on detached. `false` when nobody awaits it any more (it
/// handed something out before, or was spawned), or outside a run.
pub fn hand_out(value: Box<dyn Any>) -> bool {
    matches!(
        suspend(Suspend::HandOut(value)),
        Some(Resume::HandedOut(true))
    )
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
    // Freed by the executor, outside the run: not the run's to carry (`memory::uncounted`).
    let erased: LocalFuture = crate::memory::uncounted(|| {
        Box::pin(async move { Box::new(future.await) as Box<dyn Any> })
    });
    match suspend(Suspend::Wait(erased)) {
        Some(Resume::Value(value)) => match value.downcast::<F::Output>() {
            Ok(value) => Waited::Done(*value),
            Err(_) => unreachable!("a wait is resumed with its own future's output"),
        },
        _ => Waited::TimedOut,
    }
}

/// Runs blocking work on the threads of `queue` (see [`crate::cpu::pool`]; the database's
/// threads), waiting for it as [`wait`] does (the worker serves other requests meanwhile).
/// A panic inside it panics here, in the run. A queue of dedicated threads costs a few µs
/// less per call than tokio's `spawn_blocking` (which is kept for SMTP:
/// [`blocking_spawned`]).
pub fn blocking_on<T, F>(queue: &crossbeam_channel::Sender<Task>, work: F) -> Waited<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !in_run() {
        return Waited::Done(work());
    }
    // Both are freed outside the run (the job on another thread): not the run's to carry.
    let (reply, answer) = crate::memory::uncounted(tokio::sync::oneshot::channel);
    let job: Task = crate::memory::uncounted(|| {
        Box::new(move || {
            let _ = reply.send(catch_unwind(AssertUnwindSafe(work)));
        })
    });
    if queue.send(job).is_err() {
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
    match wait(crate::memory::uncounted(|| {
        tokio::task::spawn_blocking(work)
    })) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn in_a_worker<F: Future>(test: F) -> F::Output {
        actix_web::rt::System::new().block_on(test)
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn a_run_hands_out_a_value_and_goes_on_detached() {
        in_a_worker(async {
            let (ended, end) = tokio::sync::oneshot::channel();
            let body = || {
                assert!(hand_out(Box::new("head")));
                match wait(async { 2 }) {
                    Waited::Done(n) => n + 1,
                    Waited::TimedOut => 0,
                }
            };
            let ran = run::<(), u32>(far(), body, move |value| {
                let _ = ended.send(value);
            });
            match ran.await {
                Ran::HandedOut(value) => assert_eq!(value.downcast_ref::<&str>(), Some(&"head")),
                _ => panic!("the run did not hand its value out"),
            }
            assert_eq!(end.await.unwrap(), Some(3));
        });
    }

    #[test]
    fn a_spawned_run_is_awaited_by_nobody() {
        in_a_worker(async {
            let (ended, end) = tokio::sync::oneshot::channel();
            let body = || {
                assert!(!hand_out(Box::new(1)), "nobody takes what it hands out");
                in_run()
            };
            spawn::<(), bool>(far(), body, move |value| {
                let _ = ended.send(value);
            });
            assert_eq!(end.await.unwrap(), Some(true));
        });
    }

    #[test]
    fn a_wait_ends_at_the_deadline_and_a_panic_is_reported() {
        in_a_worker(async {
            let soon = Instant::now() + Duration::from_millis(20);
            let long_wait = || matches!(wait(std::future::pending::<()>()), Waited::TimedOut);
            let ran = run::<(), bool>(soon, long_wait, |_| {}).await;
            assert!(matches!(ran, Ran::Finished(true)));
            let ran = run::<(), ()>(far(), || panic!("a bug"), |_| {}).await;
            assert!(matches!(ran, Ran::Panicked));
        });
    }
}
