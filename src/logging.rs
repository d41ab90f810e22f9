//! Log output: one line per request must not mean one `write` system call per request.
//!
//! Lines from every thread go into one buffer; a flusher thread writes it to stderr every
//! [`FLUSH_EVERY`] (and a writer flushes at once when the buffer is large). Under load that
//! turns a system call per request (a third of the server's calls on a small route) into a
//! few per second; a line waits at most [`FLUSH_EVERY`].

use std::borrow::Cow;
use std::cell::Cell;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rhai::ImmutableString;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;

mod json;

/// Longest time a log line waits in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Buffer size that triggers an immediate write.
const FLUSH_AT: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Whether lines carry colour codes (set once by [`init`]).
static ANSI: AtomicBool = AtomicBool::new(false);
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
    // Colours for a terminal only: escape codes in a log file or a pipe are noise.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    ANSI.store(ansi, Ordering::Relaxed);
    tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_writer(Buffered)
        .event_format(json::Lines {
            plain: tracing_subscriber::fmt::format().with_target(false),
        })
        .init();
}

/// Whether lines are JSON (`[log] format = "json"`); plain until the app's settings say.
static JSON: AtomicBool = AtomicBool::new(false);

/// Writes the lines from now on in `format`.
pub fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// Whether lines are written as JSON now.
pub fn is_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

thread_local! {
    /// The id of the request being worked on on this thread, outside its script runs (see
    /// [`RequestScope`]).
    static REQUEST_ID: std::cell::RefCell<Option<ImmutableString>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes `id` the request id of the lines this thread logs until dropped: a request's
/// handler holds one for each poll of its future, so that its error lines carry its id.
/// (A script run carries its own, which wins: see [`current_request_id`].)
pub struct RequestScope(Option<ImmutableString>);

impl RequestScope {
    pub fn enter(id: &ImmutableString) -> RequestScope {
        RequestScope(REQUEST_ID.with(|cell| cell.replace(Some(id.clone()))))
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        let before = self.0.take();
        REQUEST_ID.with(|cell| *cell.borrow_mut() = before);
    }
}

/// The request id of a line logged here and now: the running script's request, else the
/// request whose handler is being polled.
fn current_request_id() -> Option<ImmutableString> {
    crate::script::context::request_id().or_else(|| REQUEST_ID.with(|cell| cell.borrow().clone()))
}

/// Off in `rhapi test`: its requests are the test's, and its output says how they went.
static REQUEST_LINES: AtomicBool = AtomicBool::new(true);

/// Turns the per-request log lines of [`request`] off (or back on).
pub fn set_request_lines(on: bool) {
    REQUEST_LINES.store(on, Ordering::Relaxed);
}

/// What the log line of one answered request says.
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// As the client sent it (not decoded).
    pub path: &'a str,
    pub status: u16,
    pub took: Duration,
    /// The request's id (`req.id`).
    pub id: &'a str,
    /// The client's address (behind trusted proxies, the client's).
    pub ip: Option<IpAddr>,
    /// The body's size, when known before it is sent (not for a stream).
    pub bytes: Option<u64>,
}

/// Logs the line of one answered request: `GET /api/hello 200 0.1ms`, in the layout of
/// `tracing`'s lines, or a JSON object with every field of `line`.
///
/// Written by hand because it is on every request: through `tracing` it cost about a tenth
/// of a small route's instructions (event dispatch, field visitors, escaping, a calendar
/// computation per timestamp); here the timestamp's date and time are computed once a second.
pub fn request(line: &RequestLine) {
    if !REQUEST_LINES.load(Ordering::Relaxed) {
        return;
    }
    if is_json() {
        append(&json::request(line));
        return;
    }
    let RequestLine {
        method,
        path,
        status,
        took,
        ..
    } = *line;
    let mut line = Vec::with_capacity(80 + path.len());
    let ansi = ANSI.load(Ordering::Relaxed);
    if ansi {
        line.extend_from_slice(b"\x1b[2m");
    }
    timestamp(&mut line, SystemTime::now());
    line.extend_from_slice(if ansi {
        b"\x1b[0m \x1b[32m INFO\x1b[0m "
    } else {
        b"  INFO "
    });
    // `{method} {path} {status} {ms:.1}ms`, without the formatting machinery (a tenth of the
    // line's cost): tenths of a millisecond, rounded as `{:.1}` would.
    let tenths = (took.as_micros() + 50) / 100;
    let mut digits = itoa::Buffer::new();
    // The path as the client sent it: HTTP parsers refuse control bytes there, but a log
    // line must not depend on that.
    let path = escape(path);
    for part in [method, " ", &path, " ", digits.format(status), " "] {
        line.extend_from_slice(part.as_bytes());
    }
    line.extend_from_slice(digits.format(tenths / 10).as_bytes());
    line.push(b'.');
    line.extend_from_slice(digits.format(tenths % 10).as_bytes());
    line.extend_from_slice(b"ms\n");
    append(&line);
}

/// Writes a script's JSON log line (`log::info` and its kin): its message, the file and line
/// it logged from, and the request it ran for. False in the plain format, which goes
/// through `tracing` as before.
pub fn script_line(level: &str, file: &str, line: Option<usize>, msg: &str) -> bool {
    if !is_json() {
        return false;
    }
    let mut out = json::Line::open(160 + msg.len(), level, msg);
    out.field("file", file);
    if let Some(line) = line {
        out.number("line", line as u64);
    }
    if let Some(id) = current_request_id() {
        out.field("request_id", &id);
    }
    let out = out.close();
    append(&out);
    true
}

/// What the server logs of text that scripts, clients or errors made: the environment's
/// secrets redacted first (so a multi-line secret is matched as it is), then control
/// characters escaped ([`escape`]).
pub fn clean(text: &str) -> String {
    escape(&crate::env::redact(text)).into_owned()
}

/// `text` with its control characters escaped (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`), so that
/// what a script or a client wrote stays inside one log line and cannot forge another, nor
/// drive a terminal. Borrowed as it is when there is none (the usual case: one pass over the
/// bytes).
pub fn escape(text: &str) -> Cow<'_, str> {
    // Printable ASCII, the usual case, in one comparison a byte.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Cow::Borrowed(text);
    }
    // 0xC2 leads the UTF-8 of U+0080..U+00BF, where the C1 controls are.
    if !text.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ =
                    std::fmt::Write::write_fmt(&mut escaped, format_args!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let _ =
                    std::fmt::Write::write_fmt(&mut escaped, format_args!("\\u{{{:x}}}", c as u32));
            }
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// Writes `2026-11-26T23:37:29.123456Z` (RFC 3339 in UTC, microseconds), as `tracing` does.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        /// The last second formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS.`.
        static SECOND: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
    }
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (cached, mut prefix) = SECOND.get();
    if cached != seconds {
        let at = i64::try_from(seconds)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        match <[u8; 20]>::try_from(text.as_bytes()) {
            Ok(bytes) => {
                prefix = bytes;
                SECOND.set((seconds, prefix));
            }
            // A year past 9999 (when `time` has large dates): not cached, written as it is.
            Err(_) => {
                let _ = write!(out, "{text}{:06}Z", since_epoch.subsec_micros());
                return;
            }
        }
    }
    out.extend_from_slice(&prefix);
    let _ = write!(out, "{:06}Z", since_epoch.subsec_micros());
}

/// Appends a finished line (or lines) to the shared buffer.
fn append(bytes: &[u8]) {
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
}

/// The `tracing` writer: appends to the shared buffer.
struct Buffered;

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        append(bytes);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(secs: u64, micros: u32) -> String {
        let mut out = Vec::new();
        let at = SystemTime::UNIX_EPOCH + Duration::new(secs, micros * 1000);
        timestamp(&mut out, at);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(escape("GET /api/a?b=c d"), Cow::Borrowed(_)));
        assert!(matches!(escape("café"), Cow::Borrowed(_)));
        assert_eq!(
            escape("x\n2026 INFO\r\t\x1b[31m\x07\x7f\u{85}\u{9b}é"),
            "x\\n2026 INFO\\r\\t\\x1b[31m\\x07\\x7f\\u{85}\\u{9b}é"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        assert_eq!(stamp(1_764_200_249, 123_456), "2025-11-26T23:37:29.123456Z");
        // The same second again (cached), then the next one.
        assert_eq!(stamp(1_764_200_249, 7), "2025-11-26T23:37:29.000007Z");
        assert_eq!(stamp(1_764_200_250, 0), "2025-11-26T23:37:30.000000Z");
        assert_eq!(stamp(0, 0), "1970-01-01T00:00:00.000000Z");
    }
}
