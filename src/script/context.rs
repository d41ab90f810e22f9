//! What the engine's callbacks need to know about the run in progress on this thread:
//! its budget, its route file, and (for runs that may be restarted) its buffered log lines.
//!
//! The engine is shared by every thread, so per-run state lives in thread-locals that
//! [`RunGuard`] sets before a script runs and clears after.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use rhai::Dynamic;

/// Thrown by the progress callback when the request's time budget is spent.
pub const TIMEOUT_TOKEN: &str = "rhapi:timeout";
/// Thrown by the progress callback when an inline run must move to the script pool.
pub const SLICE_TOKEN: &str = "rhapi:slice";
/// Thrown by the progress callback when the run holds more memory than its budget.
pub const MEMORY_TOKEN: &str = "rhapi:memory";

#[derive(Default)]
struct RunContext {
    deadline: Option<Instant>,
    slice_end: Option<Instant>,
    file: Option<Arc<str>>,
    /// `Some` while log lines must wait for the run to finish (an inline run may be
    /// abandoned and restarted on the pool; its lines must not appear twice).
    buffered: Option<Vec<(LogLevel, String)>>,
}

thread_local! {
    static CONTEXT: RefCell<RunContext> = RefCell::new(RunContext::default());
    /// The allocation count (see [`crate::memory`]) above which the run is stopped; kept
    /// apart from the context because it is read on every operation.
    static MEMORY_CEILING: Cell<isize> = const { Cell::new(isize::MAX) };
}

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
    /// Starts a run of `file` that must end by `deadline`; `slice_end` (inline runs only)
    /// is when to give the thread back and move the run to the pool.
    pub fn enter(
        file: Arc<str>,
        deadline: Instant,
        slice_end: Option<Instant>,
        max_memory: usize,
    ) -> RunGuard {
        let ceiling = crate::memory::thread_allocated()
            .saturating_add(isize::try_from(max_memory).unwrap_or(isize::MAX));
        MEMORY_CEILING.with(|c| c.set(ceiling));
        CONTEXT.with(|c| {
            *c.borrow_mut() = RunContext {
                deadline: Some(deadline),
                slice_end,
                file: Some(file),
                buffered: slice_end.map(|_| Vec::new()),
            }
        });
        RunGuard(())
    }

    /// Writes the buffered log lines (the run is final).
    pub fn flush_logs(&self) {
        let lines = CONTEXT.with(|c| c.borrow_mut().buffered.take());
        let file = current_file();
        for (level, line) in lines.into_iter().flatten() {
            emit(level, &file, &line);
        }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        MEMORY_CEILING.with(|c| c.set(isize::MAX));
        CONTEXT.with(|c| *c.borrow_mut() = RunContext::default());
    }
}

/// The engine's progress callback. Memory is checked on every operation (a string that
/// doubles each time must be stopped within one step); the clock only every 256 operations,
/// since a clock read per operation costs about a third of a heavy script's time.
pub fn progress(ops: u64) -> Option<Dynamic> {
    if crate::memory::thread_allocated() > MEMORY_CEILING.with(Cell::get) {
        return Some(Dynamic::from(MEMORY_TOKEN));
    }
    if ops & 0xFF != 0 {
        return None;
    }
    CONTEXT.with(|c| {
        let c = c.borrow();
        let now = Instant::now();
        if c.deadline.is_some_and(|d| now >= d) {
            Some(Dynamic::from(TIMEOUT_TOKEN))
        } else if c.slice_end.is_some_and(|s| now >= s) {
            Some(Dynamic::from(SLICE_TOKEN))
        } else {
            None
        }
    })
}

/// Time left in this run's budget (`None` outside a run).
pub fn remaining() -> Option<std::time::Duration> {
    CONTEXT.with(|c| {
        c.borrow()
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    })
}

fn current_file() -> Arc<str> {
    CONTEXT
        .with(|c| c.borrow().file.clone())
        .unwrap_or_else(|| Arc::from("script"))
}

/// Logs a line from a script, tagged with its file (and line, when known).
pub fn log(level: LogLevel, line: String) {
    let buffered = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        match c.buffered.as_mut() {
            Some(buffer) => {
                buffer.push((level, line.clone()));
                true
            }
            None => false,
        }
    });
    if !buffered {
        emit(level, &current_file(), &line);
    }
}

fn emit(level: LogLevel, file: &str, line: &str) {
    let line = crate::env::redact(line);
    match level {
        LogLevel::Info => tracing::info!(target: "script", "[{file}] {line}"),
        LogLevel::Warn => tracing::warn!(target: "script", "[{file}] {line}"),
        LogLevel::Error => tracing::error!(target: "script", "[{file}] {line}"),
        LogLevel::Debug => tracing::info!(target: "script", "[{file}] debug: {line}"),
    }
}
