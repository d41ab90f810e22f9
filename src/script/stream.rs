//! Streamed responses: `res.write(value)` sends a chunk and keeps the response open,
//! `res.event(#{ event, data, id, retry })` sends one Server-Sent Event. The first one
//! sends the status and headers (fixed from then on); `res.end()` or returning finishes.
//! When the client has gone, the next write is the catchable error [`CLIENT_CLOSED`]; once
//! the server is stopping, [`SHUTTING_DOWN`]. See docs/reference.md, "Streaming".

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rhai::{Dynamic, Engine, Map};
use tokio::sync::mpsc;

use super::res::{to_json, Res, ScriptResponse, BINARY, EVENT_STREAM, TEXT};
use super::ScriptResult;
use crate::executor::{RunLocal, Waited};

/// Chunks a streamed response may hold before `res.write` waits for the client.
const STREAM_BUFFER: usize = 16;

/// A streamed response, as its run hands it out at its first write ([`crate::executor::
/// hand_out`]): its head, and its chunks as they come. The run goes on, detached.
pub struct Stream {
    pub head: ScriptResponse,
    pub chunks: mpsc::Receiver<Bytes>,
}

/// The chunks' way out, kept by a streaming run (`None` once `res.end()` closed it).
struct Open(Option<mpsc::Sender<Bytes>>);

static OPEN: RunLocal<Open> = RunLocal::new();

/// Whether the run on this thread streams its response.
pub fn is_streaming() -> bool {
    OPEN.with(|open| open.is_some())
}

/// The error of a write whose client has gone (a run that does not catch it ends quietly).
pub const CLIENT_CLOSED: &str = "client closed";

/// The error of a write once the server is stopping (a run that does not catch it ends
/// quietly), so that a stream that would run for ever ends and lets the server exit.
pub const SHUTTING_DOWN: &str = "shutting down";

/// Set once SIGINT or SIGTERM arrived.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Wakes the streams' waits at shutdown (see [`until_shutdown`]).
fn stopping() -> &'static tokio::sync::Notify {
    static STOPPING_NOW: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    STOPPING_NOW.get_or_init(tokio::sync::Notify::new)
}

/// Makes every later `res.write`/`res.event` fail with [`SHUTTING_DOWN`], and ends the
/// waits of streaming runs (a stream that sleeps between events learns of it at once).
pub fn shut_down() {
    STOPPING.store(true, Ordering::Relaxed);
    stopping().notify_waiters();
}

/// Whether the server has begun shutting down.
pub fn shutting_down() -> bool {
    STOPPING.load(Ordering::Relaxed)
}

/// Completes when the server starts shutting down (at once if it has).
pub async fn until_shutdown() {
    let notified = stopping().notified();
    tokio::pin!(notified);
    // Registered before the flag is read, so a shutdown between the two is not missed.
    notified.as_mut().enable();
    if STOPPING.load(Ordering::Relaxed) {
        return;
    }
    notified.await;
}

/// Completes when the client of this run's stream has gone (the server dropped the
/// response: the connection closed, noticed at the latest by an event stream's keep-alive);
/// never when the run does not stream.
pub fn client_gone() -> impl std::future::Future<Output = ()> + Send + 'static {
    let chunks = OPEN.with(|open| open.and_then(|o| o.0.clone()));
    async move {
        match chunks {
            Some(chunks) => chunks.closed().await,
            None => std::future::pending().await,
        }
    }
}

/// Content type of a stream whose first chunk is a map or an array: one JSON value a line.
const NDJSON: &str = "application/x-ndjson";

/// Registers `res.write` and `res.event`.
pub fn register(engine: &mut Engine) {
    engine
        .register_fn(
            "write",
            |res: &mut Res, value: Dynamic| -> ScriptResult<Res> {
                let default_type = if value.is_blob() {
                    BINARY
                } else if value.is_map() || value.is_array() {
                    NDJSON
                } else {
                    TEXT
                };
                let chunk = chunk_of(value)?;
                write(res, chunk, &[], default_type)?;
                Ok(res.clone())
            },
        )
        .register_fn("event", |res: &mut Res, event: Map| -> ScriptResult<Res> {
            let chunk = event_text(&event)?;
            write(
                res,
                chunk.into_bytes(),
                &[("cache-control", "no-cache")],
                EVENT_STREAM,
            )?;
            Ok(res.clone())
        });
}

/// Sends one chunk, opening the stream with its head first when needed.
fn write(
    res: &Res,
    chunk: Vec<u8>,
    default_headers: &[(&'static str, &'static str)],
    default_type: &'static str,
) -> ScriptResult<()> {
    if STOPPING.load(Ordering::Relaxed) {
        return Err(SHUTTING_DOWN.into());
    }
    let delivered = match res.open_stream(default_headers, default_type)? {
        Some(head) => start(head, Bytes::from(chunk)),
        None => send(Bytes::from(chunk))?,
    };
    if delivered {
        Ok(())
    } else {
        Err(CLIENT_CLOSED.into())
    }
}

/// Hands the stream out with its first chunk; `false` when nobody awaits the run (only a
/// run's first write starts a stream).
fn start(head: ScriptResponse, first: Bytes) -> bool {
    let (chunks_tx, chunks) = mpsc::channel(STREAM_BUFFER);
    // Room for one chunk: this never fails.
    let _ = chunks_tx.try_send(first);
    OPEN.set(Open(Some(chunks_tx)));
    let taken = crate::executor::hand_out(Box::new(Stream { head, chunks }));
    if !taken {
        end();
    }
    taken
}

/// Sends a later chunk, waiting while the client's buffer is full; `false` when the client
/// is gone (or the stream was ended).
fn send(chunk: Bytes) -> ScriptResult<bool> {
    let Some(chunks) = OPEN.with(|open| open.and_then(|o| o.0.clone())) else {
        return Ok(false);
    };
    match crate::executor::wait(async move { chunks.send(chunk).await.is_ok() }) {
        Waited::Done(delivered) => Ok(delivered),
        Waited::TimedOut => Err(crate::batteries::timed_out()),
    }
}

/// Ends a streamed response now (`res.end()`; the run may go on).
pub fn end() {
    OPEN.with(|open| {
        if let Some(open) = open {
            open.0 = None;
        }
    });
}

/// A chunk's bytes: strings and blobs as they are, maps and arrays as a JSON line.
fn chunk_of(value: Dynamic) -> ScriptResult<Vec<u8>> {
    if value.is_blob() {
        return Ok(value.into_blob().unwrap_or_default());
    }
    if value.is_map() || value.is_array() {
        let mut line = to_json(&value)?;
        line.push(b'\n');
        return Ok(line);
    }
    Ok(value.to_string().into_bytes())
}

/// One event in the `text/event-stream` format: `event:`, `id:`, `retry:` fields, then the
/// data (a string as its lines, any other value as JSON), then a blank line.
fn event_text(event: &Map) -> ScriptResult<String> {
    let mut text = String::new();
    for key in event.keys() {
        if !matches!(key.as_str(), "event" | "data" | "id" | "retry") {
            return Err(
                format!("res.event: unknown field '{key}' (use event, data, id, retry)").into(),
            );
        }
    }
    for field in ["event", "id"] {
        if let Some(value) = event.get(field).filter(|v| !v.is_unit()) {
            let value = value.to_string();
            if value.contains(['\n', '\r']) {
                return Err(format!("res.event: {field} must be one line").into());
            }
            text.push_str(&format!("{field}: {value}\n"));
        }
    }
    if let Some(retry) = event.get("retry").filter(|v| !v.is_unit()) {
        let ms = retry
            .as_int()
            .map_err(|_| "res.event: retry must be a number of milliseconds")?;
        text.push_str(&format!("retry: {ms}\n"));
    }
    let data = match event.get("data") {
        None => String::new(),
        Some(value) if value.is_string() => value.to_string(),
        Some(value) => String::from_utf8(to_json(value)?).unwrap_or_default(),
    };
    for line in data.split('\n') {
        text.push_str("data: ");
        text.push_str(line.strip_suffix('\r').unwrap_or(line));
        text.push('\n');
    }
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn events_in_the_event_stream_format() {
        let event = map(&[
            ("event", "tick".into()),
            ("id", Dynamic::from_int(3)),
            ("data", "a\nb".into()),
        ]);
        assert_eq!(
            event_text(&event).unwrap(),
            "event: tick\nid: 3\ndata: a\ndata: b\n\n"
        );
        let json = map(&[(
            "data",
            Dynamic::from_map(map(&[("n", Dynamic::from_int(1))])),
        )]);
        assert_eq!(event_text(&json).unwrap(), "data: {\"n\":1}\n\n");
        assert!(event_text(&map(&[("typo", "x".into())])).is_err());
        assert!(event_text(&map(&[("id", "a\nb".into())])).is_err());
    }
}
