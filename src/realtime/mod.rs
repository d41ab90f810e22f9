//! Publish and subscribe (docs/reference.md, "Publish and subscribe"): `realtime::publish`
//! from any run sends a value to every subscriber of a topic, WebSockets and event streams
//! (`res.subscribe`) alike. The [`Hub`] of an app (in its `AppContext`) keeps the local
//! subscribers per topic, as Phoenix PubSub keeps its local registry; a message is encoded
//! once ([`Message`], [`Published`]) and shared by every subscriber, each of which has a
//! bounded queue of its own ([`Inbox`]): one that does not read is cut off, the others are
//! never delayed. Across instances on PostgreSQL, `remote.rs` carries each publish to the
//! other instances' hubs.

mod hub;
pub mod remote;

pub use hub::{check_topic, Hub, Inbox, Subscriber};
use remote::Remote;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use bytestring::ByteString;
use rhai::Dynamic;

/// Longest topic name, in bytes.
pub const MAX_TOPIC: usize = 256;

/// Topics one subscriber may follow at once.
pub const MAX_TOPICS: usize = 1_000;

/// What `res.subscribe` answers with: an event stream of the publishes `inbox` receives,
/// with a `: keep-alive` comment after each `keep_alive` of silence.
pub struct Subscription {
    pub inbox: Inbox,
    pub keep_alive: std::time::Duration,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subscriber", &self.inbox.subscriber().id())
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// A published message, encoded once, shared by every subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Text(ByteString),
    Binary(Bytes),
}

impl Message {
    /// What `ws.send(value)` and `realtime::publish` send: a string as text, a blob as
    /// binary, anything else (map, array, number, bool, `()`) as JSON text. Err: a message
    /// for the script (a value JSON cannot hold, or a text over the run's memory budget).
    pub fn from_value(value: &Dynamic) -> Result<Message, String> {
        Message::from_value_within(value, crate::script::context::memory_left())?.ok_or_else(|| {
            "Out of memory: the message needs more than is left of the run's memory budget \
             (--max-memory)"
                .to_string()
        })
    }

    /// [`Message::from_value`], `None` when the message would take more than `max` bytes
    /// (its JSON text stops being written there, so an oversized value is never held whole).
    pub fn from_value_within(value: &Dynamic, max: usize) -> Result<Option<Message>, String> {
        if value.is_string() {
            let text = value.clone().into_immutable_string().unwrap_or_default();
            return Ok((text.len() <= max).then(|| Message::Text(ByteString::from(text.as_str()))));
        }
        if value.is_blob() {
            let blob = value.read_lock::<rhai::Blob>();
            let len = blob.as_ref().map_or(0, |b| b.len());
            return Ok((len <= max).then(|| {
                Message::Binary(blob.map_or_else(Bytes::new, |b| Bytes::copy_from_slice(&b)))
            }));
        }
        match crate::script::res::json_within(value, max) {
            Ok(Some(json)) => Ok(Some(Message::Text(
                // serde_json writes UTF-8 only.
                ByteString::try_from(json).unwrap_or_default(),
            ))),
            Ok(None) => Ok(None),
            Err(err) => Err(format!(
                "cannot send a {} as JSON: {err}",
                value.type_name()
            )),
        }
    }

    /// Its size in bytes (text or binary).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether it has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One publish as subscribers receive it.
#[derive(Debug)]
pub struct Published {
    pub topic: Arc<str>,
    pub message: Message,
    /// Its Server-Sent Event, written by the first event stream that sends it.
    sse: OnceLock<Bytes>,
}

impl Published {
    /// A publish of `message` on `topic`.
    pub fn new(topic: Arc<str>, message: Message) -> Published {
        Published {
            topic,
            message,
            sse: OnceLock::new(),
        }
    }

    /// The message as one Server-Sent Event (`data: ...` lines and a blank line), as
    /// `res.event(#{ data: value })` writes it: a text line by line, a blob as base64 (an
    /// event stream carries text only). Encoded once for every event stream.
    pub fn sse_event(&self) -> Bytes {
        self.sse
            .get_or_init(|| {
                let mut out = Vec::with_capacity(self.message.len() + 16);
                match &self.message {
                    Message::Text(text) => {
                        for line in text.split('\n') {
                            out.extend_from_slice(b"data: ");
                            out.extend_from_slice(
                                line.strip_suffix('\r').unwrap_or(line).as_bytes(),
                            );
                            out.push(b'\n');
                        }
                    }
                    Message::Binary(bytes) => {
                        use base64::Engine as _;
                        out.extend_from_slice(b"data: ");
                        out.extend_from_slice(
                            base64::engine::general_purpose::STANDARD
                                .encode(bytes)
                                .as_bytes(),
                        );
                        out.push(b'\n');
                    }
                }
                out.push(b'\n');
                Bytes::from(out)
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_text_binary_or_json() {
        assert_eq!(
            Message::from_value(&Dynamic::from("héllo")).unwrap(),
            Message::Text("héllo".into())
        );
        let blob: rhai::Blob = vec![0, 255, 7];
        assert_eq!(
            Message::from_value(&Dynamic::from_blob(blob)).unwrap(),
            Message::Binary(Bytes::from_static(&[0, 255, 7]))
        );
        let mut map = rhai::Map::new();
        map.insert("n".into(), Dynamic::from_int(1));
        assert_eq!(
            Message::from_value(&Dynamic::from_map(map)).unwrap(),
            Message::Text("{\"n\":1}".into())
        );
        assert_eq!(
            Message::from_value(&Dynamic::UNIT).unwrap(),
            Message::Text("null".into())
        );
        assert_eq!(Message::from_value(&Dynamic::from("")).unwrap().len(), 0);
    }

    #[test]
    fn a_value_over_the_bound_is_refused_before_it_is_written_whole() {
        let array: rhai::Array = (0..1000).map(Dynamic::from_int).collect();
        let value = Dynamic::from_array(array);
        assert_eq!(Message::from_value_within(&value, 100).unwrap(), None);
        assert!(Message::from_value_within(&value, 10_000)
            .unwrap()
            .is_some());
        assert_eq!(
            Message::from_value_within(&Dynamic::from("abc"), 2).unwrap(),
            None
        );
    }

    #[test]
    fn server_sent_events_like_res_event() {
        let text = Published::new("t".into(), Message::Text("a\nb\r\nc".into()));
        assert_eq!(&text.sse_event()[..], b"data: a\ndata: b\ndata: c\n\n");
        let empty = Published::new("t".into(), Message::Text("".into()));
        assert_eq!(&empty.sse_event()[..], b"data: \n\n");
        let blob = Published::new("t".into(), Message::Binary(Bytes::from_static(b"\x00\xff")));
        assert_eq!(&blob.sse_event()[..], b"data: AP8=\n\n");
    }
}
