//! PostgreSQL `LISTEN`: one connection of its own, driven all the time by a task on a
//! thread and runtime of its own (the pooled connections are polled only inside a call, so
//! a notification would wait there until the next call), delivering each notification
//! through a channel.
//!
//! When the connection is lost, the listener reconnects (waiting longer after each failed
//! attempt, up to [`RECONNECT_MAX`]) and listens again on every channel. Notifications
//! sent while it is disconnected are lost: PostgreSQL keeps none for a session that is not
//! there. A consumer that must not miss an event reads the state it cares about again
//! after a reconnect, or keeps events in a table (a job queue) and uses notifications only
//! as a wake-up.

use std::collections::BTreeSet;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio_postgres::Client;

use super::postgres::PgManager;
use super::{DbError, Target};

/// How the listener's session shows in `pg_stat_activity`.
pub(super) const APPLICATION_NAME: &str = "rhapi listener";

/// The time a connection attempt, and a `LISTEN` or `UNLISTEN`, may take.
const ROUND_TRIP: Duration = Duration::from_secs(10);

/// The wait before the second attempt to reconnect; it doubles up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(250);

/// The longest wait between two attempts to reconnect.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// A notification: a `NOTIFY channel, 'payload'` (or `pg_notify`) on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The channel it was sent on.
    pub channel: String,
    /// Its payload (empty when none was given).
    pub payload: String,
}

/// Listens on PostgreSQL channels; notifications arrive through [`Listener::recv`].
/// Dropping it closes its connection and ends its thread.
pub struct Listener {
    commands: UnboundedSender<Command>,
    notifications: UnboundedReceiver<Notification>,
}

/// `LISTEN` (or `UNLISTEN`) `channel`, answered on `done`.
struct Command {
    channel: String,
    listen: bool,
    done: SyncSender<Result<(), DbError>>,
}

impl Listener {
    /// Starts listening on the PostgreSQL database `target` names (on no channel yet);
    /// [`DbError::Unsupported`] for SQLite. It connects in the background: a server that is
    /// down is retried, not an error.
    pub fn open(target: &Target) -> Result<Listener, DbError> {
        let Target::Postgres(url) = target else {
            return Err(DbError::Unsupported(
                "LISTEN needs PostgreSQL; SQLite has no notifications",
            ));
        };
        let manager = PgManager::new(url)?;
        let (commands, command_queue) = unbounded_channel();
        let (sender, notifications) = unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| DbError::Connect(format!("cannot start a client runtime: {err}")))?;
        std::thread::Builder::new()
            .name("rhapi-listen".into())
            .spawn(move || runtime.block_on(run(manager, command_queue, sender)))
            .map_err(|err| DbError::Connect(format!("cannot start a thread: {err}")))?;
        Ok(Listener {
            commands,
            notifications,
        })
    }

    /// `LISTEN channel` (the name as given, case kept). Blocks this thread for the round
    /// trip (at most 10 s); while disconnected it only records the channel, which is
    /// listened on when the connection is back.
    pub fn listen(&self, channel: &str) -> Result<(), DbError> {
        self.command(channel, true)
    }

    /// `UNLISTEN channel`.
    pub fn unlisten(&self, channel: &str) -> Result<(), DbError> {
        self.command(channel, false)
    }

    fn command(&self, channel: &str, listen: bool) -> Result<(), DbError> {
        let (done, answer) = sync_channel(1);
        let command = Command {
            channel: channel.to_string(),
            listen,
            done,
        };
        let stopped = || DbError::Connect("the listener's thread stopped".into());
        self.commands.send(command).map_err(|_| stopped())?;
        // A little over the listener's own bound on the round trip.
        match answer.recv_timeout(ROUND_TRIP + Duration::from_secs(1)) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(DbError::Timeout("waiting for LISTEN".into()))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(stopped()),
        }
    }

    /// The next notification, in the order the server sent them; `None` once the
    /// listener's thread has stopped.
    pub async fn recv(&mut self) -> Option<Notification> {
        self.notifications.recv().await
    }

    /// A notification already received, if any.
    pub fn try_recv(&mut self) -> Option<Notification> {
        self.notifications.try_recv().ok()
    }
}

/// The listener's task: connects, listens, serves commands, and reconnects when the
/// connection ends; returns once the [`Listener`] is dropped.
async fn run(
    manager: PgManager,
    mut commands: UnboundedReceiver<Command>,
    notifications: UnboundedSender<Notification>,
) {
    let mut channels = BTreeSet::new();
    let mut pause = RECONNECT_FIRST;
    loop {
        let (client, mut driver) = match connect(&manager, &notifications, &channels).await {
            Ok(connected) => connected,
            Err(err) => {
                tracing::warn!("LISTEN connection: {err}; trying again in {pause:?}");
                if !offline(&mut commands, &mut channels, pause).await {
                    return;
                }
                pause = (pause * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        pause = RECONNECT_FIRST;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => serve(&manager, &client, &mut channels, command).await,
                    None => return,
                },
                _ = &mut driver => break,
            }
        }
        tracing::warn!("LISTEN connection lost; reconnecting (notifications meanwhile are lost)");
    }
}

/// Connects and listens on every channel (after a reconnect); the connection's driver
/// ends when the connection does.
async fn connect(
    manager: &PgManager,
    notifications: &UnboundedSender<Notification>,
    channels: &BTreeSet<String>,
) -> Result<(Client, tokio::task::JoinHandle<()>), DbError> {
    let (client, driver) = manager
        .connect_listening(ROUND_TRIP, notifications.clone())
        .await?;
    listen_all(manager, &client, channels).await?;
    Ok((client, driver))
}

/// `LISTEN` on every channel.
async fn listen_all(
    manager: &PgManager,
    client: &Client,
    channels: &BTreeSet<String>,
) -> Result<(), DbError> {
    if channels.is_empty() {
        return Ok(());
    }
    let sql: String = channels.iter().map(|c| statement(c, true)).collect();
    round_trip(manager, client, &sql).await
}

/// Serves one command on a live connection.
async fn serve(
    manager: &PgManager,
    client: &Client,
    channels: &mut BTreeSet<String>,
    command: Command,
) {
    let result = round_trip(
        manager,
        client,
        &statement(&command.channel, command.listen),
    )
    .await;
    // Kept on a lost connection too: the reconnect listens on it.
    if command.listen && (result.is_ok() || client.is_closed()) {
        channels.insert(command.channel);
    } else if !command.listen {
        channels.remove(&command.channel);
    }
    let _ = command.done.send(result);
}

/// Waits `pause` while disconnected, recording commands meanwhile; `false` once the
/// [`Listener`] is dropped.
async fn offline(
    commands: &mut UnboundedReceiver<Command>,
    channels: &mut BTreeSet<String>,
    pause: Duration,
) -> bool {
    let sleep = tokio::time::sleep(pause);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            command = commands.recv() => {
                let Some(command) = command else { return false };
                if command.listen {
                    channels.insert(command.channel);
                } else {
                    channels.remove(&command.channel);
                }
                let _ = command.done.send(Ok(()));
            }
        }
    }
}

/// Runs `sql` on the listener's connection, bounded by [`ROUND_TRIP`].
async fn round_trip(manager: &PgManager, client: &Client, sql: &str) -> Result<(), DbError> {
    match tokio::time::timeout(ROUND_TRIP, client.batch_execute(sql)).await {
        Ok(result) => result.map_err(|err| manager.error(&err)),
        Err(_) => Err(DbError::Timeout("waiting for PostgreSQL".into())),
    }
}

/// `LISTEN "channel";` (or `UNLISTEN`), the name quoted so that it is taken as given.
fn statement(channel: &str, listen: bool) -> String {
    let verb = if listen { "LISTEN" } else { "UNLISTEN" };
    format!("{verb} \"{}\";", channel.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::db::Databases;

    /// The test server, as tests/batteries_db.rs finds it.
    fn postgres() -> Target {
        match std::env::var("RHAPI_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Target::Postgres(url),
            _ => panic!(
                "RHAPI_TEST_POSTGRES_URL is unset: start a server with `eval \"$(.ci/postgres start)\"` (see README)"
            ),
        }
    }

    /// The next notification within `wait`, if one comes.
    fn next(listener: &mut Listener, wait: Duration) -> Option<Notification> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The timer must be made inside the runtime.
        runtime
            .block_on(async { tokio::time::timeout(wait, listener.recv()).await })
            .ok()
            .flatten()
    }

    #[test]
    #[ignore = "needs RHAPI_TEST_POSTGRES_URL (see README)"]
    fn notifications_arrive_and_keep_arriving_after_a_reconnect() {
        let target = postgres();
        let db = Databases::default().open(&target).expect("opens");
        let mut listener = Listener::open(&target).expect("listens");
        let channel = "rhapi unit \"Listen\"";
        listener.listen(channel).expect("LISTEN");
        db.notify(channel, "one").expect("NOTIFY");
        let got = next(&mut listener, Duration::from_secs(10)).expect("a notification");
        assert_eq!(
            (got.channel.as_str(), got.payload.as_str()),
            (channel, "one")
        );

        // A notification inside a transaction is sent when it commits.
        db.transaction(|tx| tx.notify(channel, "two"))
            .expect("commits");
        let got = next(&mut listener, Duration::from_secs(10)).expect("a notification");
        assert_eq!(got.payload, "two");

        // End the listener's session from another: it reconnects and listens again.
        let ended = db
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
                &[APPLICATION_NAME.into()],
            )
            .expect("terminates");
        assert!(ended.rows_affected >= 1);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Those sent while it reconnects are lost: send until one arrives.
            db.notify(channel, "three").expect("NOTIFY");
            if let Some(got) = next(&mut listener, Duration::from_millis(500)) {
                assert_eq!(got.payload, "three");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no notification after the reconnect"
            );
        }

        listener.unlisten(channel).expect("UNLISTEN");
        while listener.try_recv().is_some() {}
        db.notify(channel, "four").expect("NOTIFY");
        assert_eq!(next(&mut listener, Duration::from_millis(500)), None);
    }
}
