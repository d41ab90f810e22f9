//! `ws`, the WebSocket a route's `on_open`, `on_message` and `on_close` get
//! (docs/reference.md, "WebSockets"). A script's `ws.send` and `ws.close` are queued here;
//! the connection's task (`http/websocket.rs`) sends them. Its `state` lives here too, with
//! the connection, between events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{Dynamic, Engine, ImmutableString, Map};

use super::ScriptResult;
use crate::realtime::{Message, Subscriber};

/// The close codes a script may send (RFC 6455 7.4): a normal close, going away, and the
/// ranges for libraries (3000-3999) and applications (4000-4999).
fn allowed_close_code(code: i64) -> bool {
    code == 1000 || code == 1001 || (3000..=4999).contains(&code)
}

/// Longest close reason: a close frame's payload is at most 125 bytes, two of them the code.
const MAX_REASON: usize = 123;

/// The `ws` of one connection; clones share it.
#[derive(Clone)]
pub struct Socket(Arc<Shared>);

struct Shared {
    id: ImmutableString,
    state: Mutex<Map>,
    out: Mutex<Outgoing>,
    /// Woken when a script queues something for the connection's task.
    queued: tokio::sync::Notify,
    /// Messages that may wait for a client that does not read (`[realtime] send_queue`).
    send_queue: usize,
    /// The connection's place in the app's publish/subscribe hub.
    subscriber: Subscriber,
}

/// What the scripts asked the connection to send, not sent yet.
#[derive(Default)]
pub struct Outgoing {
    pub messages: VecDeque<Message>,
    /// `ws.close(code, reason)`: the first one counts.
    pub close: Option<(u16, String)>,
    /// The connection is closing or closed: later sends are dropped.
    pub closed: bool,
}

impl Socket {
    /// The `ws` of a new connection.
    pub fn new(id: &str, send_queue: usize, subscriber: Subscriber) -> Socket {
        Socket(Arc::new(Shared {
            id: id.into(),
            state: Mutex::default(),
            out: Mutex::default(),
            queued: tokio::sync::Notify::new(),
            send_queue,
            subscriber,
        }))
    }

    /// What the scripts queued, for the connection's task to send (it marks the socket
    /// closed itself when it closes).
    pub fn outgoing(&self) -> MutexGuard<'_, Outgoing> {
        self.0.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether more messages wait than a client that does not read may keep waiting.
    pub fn backed_up(&self) -> bool {
        self.outgoing().messages.len() >= self.0.send_queue
    }

    /// Completes when a script has queued something since the last call.
    pub async fn queued(&self) {
        self.0.queued.notified().await;
    }

    /// The connection is closing: sends from now on (an `on_close` that sends) are dropped.
    pub fn mark_closed(&self) {
        self.outgoing().closed = true;
    }

    fn state(&self) -> MutexGuard<'_, Map> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, value: Dynamic) -> ScriptResult<()> {
        let message = Message::from_value(&value).map_err(|e| format!("ws.send: {e}"))?;
        let mut out = self.outgoing();
        if out.closed || out.close.is_some() {
            return Ok(());
        }
        // Not bounded here: one event may send more than `send_queue` (what it queues
        // counts against the run's memory budget). A client that does not read while
        // `send_queue` messages wait is closed by the connection's task.
        out.messages.push_back(message);
        drop(out);
        self.0.queued.notify_one();
        Ok(())
    }

    fn close(&self, code: i64, reason: &str) -> ScriptResult<()> {
        if !allowed_close_code(code) {
            return Err(format!(
                "ws.close: {code} is not a close code a script may send (1000, 1001, or 3000-4999)"
            )
            .into());
        }
        if reason.len() > MAX_REASON {
            return Err(format!(
                "ws.close: the reason is {} bytes; a close frame holds at most {MAX_REASON}",
                reason.len()
            )
            .into());
        }
        let mut out = self.outgoing();
        if out.close.is_none() && !out.closed {
            out.close = Some((code as u16, reason.to_string()));
        }
        drop(out);
        self.0.queued.notify_one();
        Ok(())
    }

    /// Registers the `WebSocket` type: `ws.id`, `ws.state`, `ws.send`, `ws.close`,
    /// `ws.subscribe`, `ws.unsubscribe`.
    pub fn register(engine: &mut Engine) {
        engine
            .register_type_with_name::<Socket>("WebSocket")
            .register_get("id", |ws: &mut Socket| ws.0.id.clone())
            .register_get("state", |ws: &mut Socket| ws.state().clone())
            .register_set("state", |ws: &mut Socket, state: Map| *ws.state() = state)
            .register_fn("send", |ws: &mut Socket, value: Dynamic| ws.send(value))
            .register_fn("close", |ws: &mut Socket| ws.close(1000, ""))
            .register_fn("close", |ws: &mut Socket, code: i64| ws.close(code, ""))
            .register_fn("close", |ws: &mut Socket, code: i64, reason: &str| {
                ws.close(code, reason)
            })
            .register_fn(
                "subscribe",
                |ws: &mut Socket, topic: &str| -> ScriptResult<()> {
                    ws.0.subscriber
                        .subscribe(topic)
                        .map_err(|e| format!("ws.{e}").into())
                },
            )
            .register_fn("unsubscribe", |ws: &mut Socket, topic: &str| {
                ws.0.subscriber.unsubscribe(topic)
            })
            .register_fn("to_string", |ws: &mut Socket| format!("ws {}", ws.0.id))
            .register_fn("to_debug", |ws: &mut Socket| format!("ws {}", ws.0.id));
    }
}

/// A message from the client as `on_message` gets it: text as a string, binary as a blob.
pub fn incoming(text: Option<&str>, binary: &[u8]) -> Dynamic {
    match text {
        Some(text) => Dynamic::from(text.to_string()),
        None => Dynamic::from_blob(binary.to_vec()),
    }
}
