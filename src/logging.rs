//! Log output: one line per request must not mean one `write` system call per request.
//!
//! Lines from every thread go into one buffer; a flusher thread writes it to stderr every
//! [`FLUSH_EVERY`] (and a writer flushes at once when the buffer is large). Under load that
//! turns a system call per request (a third of the server's calls on a small route) into a
//! few per second; a line waits at most [`FLUSH_EVERY`].

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest time a log line waits in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Buffer size that triggers an immediate write.
const FLUSH_AT: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Wakes the flusher when a line arrives in an empty buffer (an idle server never wakes).
static PENDING: Condvar = Condvar::new();

fn buffer() -> MutexGuard<'static, Vec<u8>> {
    BUFFER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes out whatever is buffered.
pub fn flush() {
    let pending = std::mem::take(&mut *buffer());
    if !pending.is_empty() {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(&pending);
        let _ = stderr.flush();
    }
}

/// Sets up `tracing` to write through the buffer, and starts the flusher thread.
pub fn init() {
    let _ = std::thread::Builder::new()
        .name("rhapi-log".into())
        .spawn(|| loop {
            drop(PENDING.wait_while(buffer(), |b| b.is_empty()));
            // Let the lines of the next few milliseconds join this write.
            std::thread::sleep(FLUSH_EVERY);
            flush();
        });
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        // Colours for a terminal only: escape codes in a log file or a pipe are noise.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(Buffered)
        .init();
}

/// The `tracing` writer: appends to the shared buffer.
struct Buffered;

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut buffer = buffer();
            if buffer.is_empty() {
                PENDING.notify_one();
            }
            buffer.extend_from_slice(bytes);
            buffer.len() >= FLUSH_AT
        };
        if full {
            flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Buffered;

    fn make_writer(&'a self) -> Self::Writer {
        Buffered
    }
}
