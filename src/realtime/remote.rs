//! Publishes across instances, through PostgreSQL's `LISTEN`/`NOTIFY` (docs/reference.md,
//! "Publish and subscribe"). Each serving process runs one forwarder task ([`start`]):
//! while the app's database is PostgreSQL it holds one `LISTEN` connection
//! ([`crate::db::Listener`]), sends this instance's publishes as notifications (in the
//! order they were made, a batch per transaction), and hands the other instances'
//! notifications to the local hub.
//!
//! A notification's payload is `<instance> <seq> <kind> <topic length> <topic><body>`: the
//! instance id lets each process skip its own publishes (delivered locally at once), the
//! sequence number keeps two equal publishes of one transaction from being folded into one
//! by PostgreSQL, `kind` is `t` (text), `b` (binary, base64) or `r` (a row of
//! `_rhapi_messages`, for a message whose payload would be over PostgreSQL's limit of 8000
//! bytes, or that holds a NUL byte, which a notification cannot carry). Delivery is at most
//! once: notifications sent while a listener reconnects are lost, and so are publishes
//! made while the database cannot be reached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use bytestring::ByteString;
use rhai::Dynamic;
use tokio::sync::mpsc;

use super::{Hub, Message};
use crate::app::App;
use crate::db::{Conn, Database, DbError, Dialect, Listener, Notification, Target};

/// Publishes waiting for the database at most (each up to `max_message`); past it, a
/// publish reaches this instance's subscribers only.
const OUTBOX: usize = 1024;

/// Publishes sent in one transaction at most.
const BATCH: usize = 64;

/// PostgreSQL refuses a notification payload of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7999;

/// Time one database call of the forwarder may take.
const DB_BUDGET: Duration = Duration::from_secs(10);

/// How often the forwarder looks whether `DATABASE_URL` changed, and deletes old rows.
const TICK: Duration = Duration::from_secs(5);

/// Rows of `_rhapi_messages` older than this are deleted: every instance has read them.
const KEEP_ROWS_MS: i64 = 60_000;

const TABLE: &str = "CREATE TABLE IF NOT EXISTS _rhapi_messages (
  id BIGSERIAL PRIMARY KEY,
  topic BYTEA NOT NULL,
  is_binary BOOLEAN NOT NULL,
  body BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS _rhapi_messages_created ON _rhapi_messages (created_at);";

/// A publish on its way to the other instances.
pub struct Outgoing {
    topic: String,
    message: Message,
}

/// Where a hub's publishes go to the other instances: the channel of the forwarder while
/// it is connected to PostgreSQL, else nowhere.
#[derive(Default)]
pub struct Remote {
    outbox: arc_swap::ArcSwapOption<mpsc::Sender<Outgoing>>,
    /// Publishes not sent to the other instances because the outbox was full.
    dropped: AtomicU64,
}

impl Remote {
    /// Hands a publish to the forwarder, if any; never waits (a full outbox drops it, with a
    /// warning now and then: delivery across instances is at most once).
    pub fn send(&self, topic: &str, message: &Message) {
        let outbox = self.outbox.load();
        let Some(outbox) = outbox.as_ref() else {
            return;
        };
        let outgoing = Outgoing {
            topic: topic.to_string(),
            message: message.clone(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = outbox.try_send(outgoing) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    "realtime: {dropped} publishes could not wait for the database and reached this instance only"
                );
            }
        }
    }
}

/// Starts the forwarder of `app` on this thread's runtime.
pub fn start(app: Arc<App>) {
    actix_web::rt::spawn(Forwarder::new(app).run());
}

/// This process's id among the instances, and the next sequence number of its payloads.
struct Instance {
    id: String,
    seq: u64,
}

struct Forwarder {
    app: Arc<App>,
    instance: Instance,
    connected: Option<Connected>,
    outbox: mpsc::Receiver<Outgoing>,
    sender: mpsc::Sender<Outgoing>,
}

/// A PostgreSQL database the forwarder shares publishes through.
struct Connected {
    target: Target,
    db: Arc<Database>,
    listener: Listener,
    channel: Arc<str>,
}

impl Forwarder {
    fn new(app: Arc<App>) -> Forwarder {
        let mut id = [0u8; 8];
        if getrandom::fill(&mut id).is_err() {
            id = std::process::id()
                .to_le_bytes()
                .repeat(2)
                .try_into()
                .unwrap_or_default();
        }
        let (sender, outbox) = mpsc::channel(OUTBOX);
        Forwarder {
            app,
            instance: Instance {
                id: crate::encoding::hex(&id),
                seq: 0,
            },
            connected: None,
            outbox,
            sender,
        }
    }

    fn hub(&self) -> &Hub {
        &self.app.context.hub
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            let listening = async {
                match self.connected.as_mut() {
                    Some(connected) => connected.listener.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => self.look().await,
                Some(first) = self.outbox.recv() => self.send(first).await,
                Some(notification) = listening => self.receive(notification).await,
            }
        }
    }

    /// Connects when the app's database became PostgreSQL (or another one), disconnects
    /// when it no longer is; deletes old rows.
    async fn look(&mut self) {
        let target = Target::from_env(&self.app.dir, &self.app.snapshot().env.0).ok();
        let current = self.connected.as_ref().map(|c| &c.target);
        if target.as_ref() != current {
            self.hub().remote.outbox.store(None);
            self.connected = None;
            if let Some(target @ Target::Postgres(_)) = target {
                self.connect(target).await;
            }
            return;
        }
        if let Some(connected) = &self.connected {
            let before = self.app.context.clock.now_ms() - KEEP_ROWS_MS;
            let deleted = blocking(&connected.db, move |conn| {
                conn.as_dyn().execute(
                    "DELETE FROM _rhapi_messages WHERE created_at < ?",
                    &[before.into()],
                    DB_BUDGET,
                )
            })
            .await;
            if let Err(err) = deleted {
                self.warn("cannot delete old messages", &err);
            }
        }
    }

    async fn connect(&mut self, target: Target) {
        let (app, opening) = (Arc::clone(&self.app), target.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let db = app.context.databases.open(&opening)?;
            let mut conn = db.get(DB_BUDGET)?;
            if conn.dialect() != Dialect::Postgres {
                return Err(DbError::Unsupported("not PostgreSQL"));
            }
            let schema = conn
                .as_dyn()
                .query("SELECT current_schema() AS name", &[], DB_BUDGET)?
                .first()
                .and_then(|row| row.get("name").map(|v| v.to_string()))
                .unwrap_or_default();
            let sql = format!("SELECT pg_advisory_xact_lock(7228373160913251663);\n{TABLE}");
            conn.as_dyn().batch(&sql, DB_BUDGET)?;
            let channel = channel(&schema);
            let listener = Listener::open(&opening)?;
            listener.listen(&channel)?;
            Ok((db, listener, channel))
        })
        .await
        .unwrap_or_else(|err| {
            Err(DbError::Sql(format!(
                "the realtime forwarder's call failed: {err}"
            )))
        });
        match opened {
            Ok((db, listener, channel)) => {
                tracing::info!(
                    "realtime: sharing publishes with the other instances through PostgreSQL (channel {channel})"
                );
                self.connected = Some(Connected {
                    target,
                    db,
                    listener,
                    channel: channel.into(),
                });
                self.hub()
                    .remote
                    .outbox
                    .store(Some(Arc::new(self.sender.clone())));
            }
            // Tried again at the next tick.
            Err(err) => self.warn("cannot listen for the other instances' publishes", &err),
        }
    }

    /// Sends `first` and the publishes waiting behind it, in order, in one transaction.
    async fn send(&mut self, first: Outgoing) {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match self.outbox.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let Some(connected) = &self.connected else {
            return;
        };
        let now = self.app.context.clock.now_ms();
        let channel = Arc::clone(&connected.channel);
        let notifications: Vec<Payload> = batch
            .into_iter()
            .map(|out| {
                self.instance.seq += 1;
                Payload::of(&self.instance, &out.topic, out.message)
            })
            .collect();
        let count = notifications.len();
        let sent = blocking(&connected.db, move |conn| {
            if count == 1 {
                send_all(conn, &channel, &notifications, now)
            } else {
                crate::db::in_transaction(conn, DB_BUDGET, |conn| {
                    send_all(conn, &channel, &notifications, now)
                })
            }
        })
        .await;
        if let Err(err) = sent {
            self.warn(
                &format!("{count} publishes did not reach the other instances"),
                &err,
            );
        }
    }

    /// Hands another instance's publish to the local hub.
    async fn receive(&mut self, notification: Notification) {
        let Some(connected) = &self.connected else {
            return;
        };
        let (topic, body) = match decode(&notification.payload, &self.instance.id) {
            Decoded::Own | Decoded::Malformed => return,
            Decoded::Message(topic, message) => (topic, message),
            Decoded::Row(id) => {
                let read = blocking(&connected.db, move |conn| read_row(conn, id)).await;
                match read {
                    Ok(Some(found)) => found,
                    // Deleted already: lost, as the documentation says.
                    Ok(None) => return,
                    Err(err) => {
                        self.warn("cannot read another instance's message", &err);
                        return;
                    }
                }
            }
        };
        self.hub().deliver(&topic, body);
    }

    fn warn(&self, what: &str, err: &DbError) {
        tracing::warn!(
            "realtime: {what}: {}",
            self.app.context.redact(&err.to_string())
        );
    }
}

/// The channel of the app's schema: instances of one app share it, apps in other schemas
/// of the same database do not hear each other.
fn channel(schema: &str) -> String {
    if schema == "public" || schema.is_empty() {
        return "rhapi_realtime".into();
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(schema.as_bytes());
    format!("rhapi_realtime_{}", crate::encoding::hex(&digest[..8]))
}

/// What one publish becomes on the wire.
enum Payload {
    /// The whole notification.
    Inline(String),
    /// A row to insert, and the notification's text before the row's id.
    Row {
        head: String,
        topic: Vec<u8>,
        binary: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    fn of(instance: &Instance, topic: &str, message: Message) -> Payload {
        let head = format!("{} {} ", instance.id, instance.seq);
        let (kind, text) = match &message {
            Message::Text(_) => ('t', None),
            Message::Binary(bytes) => ('b', Some(STANDARD.encode(bytes))),
        };
        let body: &str = match (&message, &text) {
            (Message::Text(t), _) => t,
            (_, Some(encoded)) => encoded,
            _ => "",
        };
        let inline = format!("{head}{kind} {} {topic}{body}", topic.len());
        if inline.len() <= MAX_PAYLOAD && !inline.contains('\0') {
            return Payload::Inline(inline);
        }
        let (binary, body) = match message {
            Message::Text(text) => (false, text.as_bytes().to_vec()),
            Message::Binary(bytes) => (true, bytes.to_vec()),
        };
        Payload::Row {
            head: format!("{head}r "),
            topic: topic.as_bytes().to_vec(),
            binary,
            body,
        }
    }
}

/// Sends each notification, in order, on `conn`.
fn send_all(conn: &mut Conn, channel: &str, payloads: &[Payload], now: i64) -> Result<(), DbError> {
    for payload in payloads {
        match payload {
            Payload::Inline(text) => {
                conn.as_dyn().execute(
                    "SELECT pg_notify(?, ?)",
                    &[channel.into(), text.as_str().into()],
                    DB_BUDGET,
                )?;
            }
            Payload::Row {
                head,
                topic,
                binary,
                body,
            } => {
                conn.as_dyn().execute(
                    "WITH m AS (INSERT INTO _rhapi_messages (topic, is_binary, body, created_at) \
                     VALUES (?, ?, ?, ?) RETURNING id) \
                     SELECT pg_notify(?::text, ?::text || m.id::text) FROM m",
                    &[
                        Dynamic::from_blob(topic.clone()),
                        (*binary).into(),
                        Dynamic::from_blob(body.clone()),
                        now.into(),
                        channel.into(),
                        head.as_str().into(),
                    ],
                    DB_BUDGET,
                )?;
            }
        }
    }
    Ok(())
}

/// The publish stored in row `id` of `_rhapi_messages`; `None` once it was deleted.
fn read_row(conn: &mut Conn, id: i64) -> Result<Option<(String, Message)>, DbError> {
    let rows = conn.as_dyn().query(
        "SELECT topic, is_binary, body FROM _rhapi_messages WHERE id = ?",
        &[id.into()],
        DB_BUDGET,
    )?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let blob = |name: &str| {
        row.get(name)
            .and_then(|v| v.clone().into_blob().ok())
            .unwrap_or_default()
    };
    let topic = String::from_utf8_lossy(&blob("topic")).into_owned();
    let body = blob("body");
    let binary = row.get("is_binary").and_then(|v| v.as_bool().ok()) == Some(true);
    let message = if binary {
        Message::Binary(Bytes::from(body))
    } else {
        match ByteString::try_from(body) {
            Ok(text) => Message::Text(text),
            Err(_) => return Ok(None),
        }
    };
    Ok(Some((topic, message)))
}

/// What a notification holds.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    /// Sent by this instance: delivered locally already.
    Own,
    Message(String, Message),
    /// In this row of `_rhapi_messages`.
    Row(i64),
    /// Not a payload of ours (another program on the channel).
    Malformed,
}

fn decode(payload: &str, own: &str) -> Decoded {
    let mut parts = payload.splitn(4, ' ');
    let (Some(instance), Some(_seq), Some(kind), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Decoded::Malformed;
    };
    if instance == own {
        return Decoded::Own;
    }
    if kind == "r" {
        return rest.parse().map_or(Decoded::Malformed, Decoded::Row);
    }
    let Some((len, rest)) = rest.split_once(' ') else {
        return Decoded::Malformed;
    };
    let Some((topic, body)) = len
        .parse::<usize>()
        .ok()
        .and_then(|len| Some((rest.get(..len)?, rest.get(len..)?)))
    else {
        return Decoded::Malformed;
    };
    let message = match kind {
        "t" => Message::Text(ByteString::from(body)),
        "b" => match STANDARD.decode(body) {
            Ok(bytes) => Message::Binary(Bytes::from(bytes)),
            Err(_) => return Decoded::Malformed,
        },
        _ => return Decoded::Malformed,
    };
    Decoded::Message(topic.to_string(), message)
}

/// Runs `f` on a connection of `db`, on a blocking thread.
async fn blocking<T: Send + 'static>(
    db: &Arc<Database>,
    f: impl FnOnce(&mut Conn) -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || {
        let mut conn = db.get(DB_BUDGET)?;
        f(&mut conn)
    })
    .await
    .unwrap_or_else(|err| {
        Err(DbError::Sql(format!(
            "the realtime forwarder's call failed: {err}"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Instance {
        Instance {
            id: "abc".into(),
            seq: 7,
        }
    }

    fn round_trip(topic: &str, message: Message) -> Decoded {
        match Payload::of(&instance(), topic, message) {
            Payload::Inline(text) => decode(&text, "other"),
            Payload::Row { head, .. } => decode(&format!("{head}42"), "other"),
        }
    }

    #[test]
    fn payloads_carry_topic_and_message_and_skip_their_sender() {
        let text = Message::Text("héllo wörld\nline".into());
        assert_eq!(
            round_trip("a topic with spaces", text.clone()),
            Decoded::Message("a topic with spaces".into(), text)
        );
        let binary = Message::Binary(Bytes::from_static(&[0, 1, 255]));
        assert_eq!(
            round_trip("t", binary.clone()),
            Decoded::Message("t".into(), binary)
        );
        let Payload::Inline(own) = Payload::of(&instance(), "t", Message::Text("x".into())) else {
            panic!("inline")
        };
        assert_eq!(decode(&own, "abc"), Decoded::Own);
        assert_eq!(decode("garbage", "abc"), Decoded::Malformed);
        assert_eq!(decode("x 1 t 99 short", "abc"), Decoded::Malformed);
    }

    #[test]
    fn a_long_message_or_a_nul_goes_through_a_row() {
        let long = Message::Text("x".repeat(MAX_PAYLOAD).into());
        assert_eq!(round_trip("t", long), Decoded::Row(42));
        let nul = Message::Text("a\0b".into());
        assert_eq!(round_trip("t", nul), Decoded::Row(42));
        let fits = Message::Text("x".repeat(MAX_PAYLOAD - 20).into());
        assert!(matches!(round_trip("t", fits), Decoded::Message(..)));
    }

    #[test]
    fn each_schema_has_its_channel() {
        assert_eq!(channel("public"), "rhapi_realtime");
        assert_ne!(channel("t1_0"), channel("t1_1"));
        assert!(channel(&"s".repeat(200)).len() <= 63);
    }
}
