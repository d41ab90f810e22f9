//! What the engine's callbacks need to know about the run in progress on this thread:
//! its budget, its route file, its memory allowance and its log lines.
//!
//! The engine is shared by every thread, so per-run state lives in thread-locals that
//! [`RunGuard`] sets when a run starts and clears when it ends. Runs take turns on a thread
//! (see [`crate::executor`]): a run that suspends takes its state with it ([`Saved`]) and
//! puts it back when it resumes, so that each run only ever sees its own.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, ImmutableString};

use crate::env::EnvVars;

/// Thrown by the progress callback when the request's time budget is spent.
pub const TIMEOUT_TOKEN: &str = "rhapi:timeout";
/// Thrown by the progress callback when the run holds more memory than its budget.
pub const MEMORY_TOKEN: &str = "rhapi:memory";
/// Thrown by the progress callback when the run nested a value too deep (Rhai cut it).
pub const DEPTH_TOKEN: &str = "rhapi:depth";

#[derive(Default)]
struct RunContext {
    deadline: Option<Instant>,
    /// When the current slice is over (see [`crate::executor::SLICE`]).
    slice_end: Option<Instant>,
    file: Option<Arc<str>>,
    /// Why the run must end at its next operation, found outside the progress callback.
    tripped: Option<&'static str>,
    /// The run's environment: the secrets its messages are redacted of.
    env: Option<Arc<EnvVars>>,
    /// A response sent and not handed out yet: it leaves at the run's next pause.
    sent: Option<super::res::Res>,
    /// The id of the request the run serves, for its log lines.
    request_id: Option<ImmutableString>,
}

thread_local! {
    static CONTEXT: RefCell<RunContext> = RefCell::new(RunContext::default());
    /// The allocation count (see [`crate::memory`]) above which the run is stopped; kept
    /// apart from the context because it is read on every operation.
    static MEMORY_CEILING: Cell<isize> = const { Cell::new(isize::MAX) };
    /// Calls back into the engine from native functions (see [`tick`]).
    static TICKS: Cell<u32> = const { Cell::new(0) };
}

/// A reservation this large reads the clock: calls that each allocate megabytes can take
/// milliseconds each, and the progress callback reads it only every 256 operations.
const CLOCK_EVERY_BYTES: usize = 1024 * 1024;

/// Severity of a script's log line.
#[derive(Clone, Copy, Debug)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
    Debug,
}

/// Sets the run context of this thread until dropped.
pub struct RunGuard(());

impl RunGuard {
    /// Starts a run of `file` with `env` that must end by `deadline` and may keep
    /// `max_memory` bytes, for the request `request_id` (`None`: a job).
    pub fn enter(
        file: Arc<str>,
        env: &Arc<EnvVars>,
        deadline: Instant,
        max_memory: usize,
        request_id: Option<ImmutableString>,
    ) -> RunGuard {
        let ceiling = crate::memory::thread_allocated()
            .saturating_add(isize::try_from(max_memory).unwrap_or(isize::MAX));
        MEMORY_CEILING.with(|c| c.set(ceiling));
        CONTEXT.with(|c| {
            *c.borrow_mut() = RunContext {
                deadline: Some(deadline),
                slice_end: Some(Instant::now() + crate::executor::SLICE),
                file: Some(file),
                tripped: None,
                env: Some(Arc::clone(env)),
                sent: None,
                request_id,
            }
        });
        RunGuard(())
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        MEMORY_CEILING.with(|c| c.set(isize::MAX));
        CONTEXT.with(|c| *c.borrow_mut() = RunContext::default());
    }
}

/// A suspended run's state, kept aside by the executor while other runs use the thread.
pub struct Saved {
    context: RunContext,
    /// Bytes the run may still allocate (hugely negative when it was tripped).
    memory_left: isize,
}

impl crate::executor::RunState for Saved {
    /// Takes this thread's run state out (the run suspended).
    fn take() -> Saved {
        let ceiling = MEMORY_CEILING.with(|c| c.replace(isize::MAX));
        Saved {
            context: CONTEXT.with(|c| std::mem::take(&mut *c.borrow_mut())),
            memory_left: ceiling.saturating_sub(crate::memory::thread_allocated()),
        }
    }

    /// The response the run sent before this pause (see [`sent`]).
    fn hand_out_at_pause(&mut self) -> Option<Box<dyn std::any::Any>> {
        self.context.sent.take().map(super::res::handed_out)
    }

    /// Puts the state back (the run resumes), with a fresh (shorter) slice.
    fn restore(self) {
        let Saved {
            mut context,
            memory_left,
        } = self;
        context.slice_end = Some(Instant::now() + crate::executor::RESUMED_SLICE);
        CONTEXT.with(|c| *c.borrow_mut() = context);
        MEMORY_CEILING
            .with(|c| c.set(crate::memory::thread_allocated().saturating_add(memory_left)));
    }
}

/// A sender ran in the run on this thread: its response leaves at the run's next pause
/// (a wait, the end of its slice), or with the run's end if that comes first.
pub fn sent(res: &super::res::Res) {
    CONTEXT.with(|c| c.borrow_mut().sent = Some(res.clone()));
}

/// The engine's progress callback. Memory is checked on every operation (a string that
/// doubles each time must be stopped within one step); the clock only every 256 operations,
/// since a clock read per operation costs about a third of a heavy script's time.
pub fn progress(ops: u64) -> Option<Dynamic> {
    // One comparison per operation: a run tripped elsewhere (see [`trip`]) has its ceiling
    // set below any count, so it is stopped here too, with the reason it was tripped for.
    if crate::memory::thread_allocated() > MEMORY_CEILING.with(Cell::get) {
        let tripped = CONTEXT.with(|c| c.borrow_mut().tripped.take());
        return Some(Dynamic::from(tripped.unwrap_or(MEMORY_TOKEN)));
    }
    if ops & 0xFF != 0 {
        return None;
    }
    let now = Instant::now();
    let (timed_out, slice_over) = CONTEXT.with(|c| {
        let c = c.borrow();
        (
            c.deadline.is_some_and(|d| now >= d),
            c.slice_end.is_some_and(|s| now >= s),
        )
    });
    if timed_out {
        return Some(Dynamic::from(TIMEOUT_TOKEN));
    }
    if slice_over {
        crate::executor::end_slice();
    }
    None
}

/// The check made before a built-in allocates in proportion to its input (Rhai's packages
/// through vendor/rhai patch 10, and rhapi's batteries): `Err` with the message of the
/// script error when `bytes` more would take the run past its memory budget. The check is
/// made before the memory is taken, so a refused call allocates nothing and the process
/// never has to abort on an allocation. Outside a run every size is allowed.
pub fn reserve(bytes: usize) -> Result<(), String> {
    let ceiling = MEMORY_CEILING.with(Cell::get);
    if ceiling == isize::MAX {
        return Ok(());
    }
    if bytes >= CLOCK_EVERY_BYTES && past_deadline() {
        trip(TIMEOUT_TOKEN);
    }
    let after = crate::memory::thread_allocated()
        .saturating_add(isize::try_from(bytes).unwrap_or(isize::MAX));
    if after <= ceiling {
        return Ok(());
    }
    Err(format!(
        "Out of memory: this call needs {}, more than is left of the run's memory budget \
         (--max-memory)",
        crate::memory::human_size(bytes)
    ))
}

/// Ends the run in progress at its next operation, with `token` as the reason (a place
/// that is not the progress callback found it: a clone cut for depth, a deadline passed
/// inside a call). Outside a run, nothing.
fn trip(token: &'static str) {
    if MEMORY_CEILING.with(Cell::get) == isize::MAX {
        return;
    }
    CONTEXT.with(|c| c.borrow_mut().tripped = Some(token));
    MEMORY_CEILING.with(|c| c.set(isize::MIN));
}

/// Rhai cut a clone at its nesting limit (vendor/rhai patch 10): the run ends.
pub fn too_deep() {
    trip(DEPTH_TOKEN);
}

fn past_deadline() -> bool {
    CONTEXT.with(|c| c.borrow().deadline.is_some_and(|d| Instant::now() >= d))
}

/// Bytes this run may still allocate (`usize::MAX` outside a run), for work done on other
/// threads, whose allocations the run's counter does not see.
pub fn memory_left() -> usize {
    let ceiling = MEMORY_CEILING.with(Cell::get);
    if ceiling == isize::MAX {
        return usize::MAX;
    }
    usize::try_from(ceiling.saturating_sub(crate::memory::thread_allocated())).unwrap_or(0)
}

/// Rhai's check on each call a native function makes back into the engine (vendor/rhai
/// patch 10): every 64th such call is checked as an operation is, clock included, so a
/// loop inside one built-in (`index_of` over a large array) still ends at its budget and
/// takes turns with other requests.
pub fn tick() -> Option<Dynamic> {
    let n = TICKS.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n
    });
    if !n.is_multiple_of(64) || CONTEXT.with(|c| c.borrow().deadline.is_none()) {
        return None;
    }
    progress(0)
}

/// Makes `env` the environment of this thread's work outside runs until dropped: what
/// messages are redacted of while an app loads (a module's top level may log) or while
/// `rhapi test` calls a test function. A run sets its own ([`RunGuard`]).
pub struct EnvGuard(Option<Arc<EnvVars>>);

impl EnvGuard {
    pub fn enter(env: &Arc<EnvVars>) -> EnvGuard {
        EnvGuard(CONTEXT.with(|c| c.borrow_mut().env.replace(Arc::clone(env))))
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        let before = self.0.take();
        CONTEXT.with(|c| c.borrow_mut().env = before);
    }
}

/// The environment of the run on this thread (or of an [`EnvGuard`]; `None` otherwise).
pub fn env() -> Option<Arc<EnvVars>> {
    CONTEXT.with(|c| c.borrow().env.clone())
}

/// Time left in this run's budget (`None` outside a run).
pub fn remaining() -> Option<std::time::Duration> {
    CONTEXT.with(|c| {
        c.borrow()
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    })
}

/// Logs a line from a script at once, tagged with its file (and `line`, when known), and in
/// the JSON log with the id of the request it runs for. Each line is written whole, so
/// lines of runs that take turns on a thread never mix.
pub fn log(level: LogLevel, line: Option<usize>, text: String) {
    let file = CONTEXT
        .with(|c| c.borrow().file.clone())
        .unwrap_or_else(|| Arc::from("script"));
    let name = match level {
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::Debug => "debug",
    };
    if crate::logging::script_line(name, &file, line, &text) {
        return;
    }
    let text = match line {
        Some(line) => format!("line {line}: {text}"),
        None => text,
    };
    emit(level, &file, &text);
}

/// The id of the request this thread's run serves (`None` outside a run, and in a job's).
pub fn request_id() -> Option<ImmutableString> {
    CONTEXT.with(|c| c.borrow().request_id.clone())
}

fn emit(level: LogLevel, file: &str, line: &str) {
    let line = crate::logging::clean(line);
    match level {
        LogLevel::Info => tracing::info!(target: "script", "[{file}] {line}"),
        LogLevel::Warn => tracing::warn!(target: "script", "[{file}] {line}"),
        LogLevel::Error => tracing::error!(target: "script", "[{file}] {line}"),
        LogLevel::Debug => tracing::info!(target: "script", "[{file}] debug: {line}"),
    }
}
