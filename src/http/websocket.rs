//! WebSockets (docs/reference.md, "WebSockets"): the upgrade of a route that defines
//! `on_open`, `on_message` or `on_close`, and the task that holds each connection. The task
//! owns the socket, its `ws.state` and its topics; every event is a short run of the route
//! on this worker, awaited by the task, so one connection's events stay in order while
//! other connections' events interleave. No script runs while a connection is idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::Payload;
use actix_web::{HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use futures_util::SinkExt;
use rhai::{Dynamic, Engine};

use super::context::RequestContext;
use super::handler::{Resolved, Runs};
use super::response::{keep_headers, respond};
use crate::analysis::route_shape::EVENTS;
use crate::app_context::AppContext;
use crate::env::EnvMap;
use crate::error::error_response;
use crate::executor::Ran;
use crate::realtime::{Inbox, Message};
use crate::script::methods::Target;
use crate::script::socket::{incoming, Socket};
use crate::script::{Call, Outcome, RouteScript};

/// Whether `req` asks to become a WebSocket (`GET` with `Upgrade: websocket`).
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
            })
}

/// 426 for a plain request to a route that only speaks WebSocket.
pub fn upgrade_required() -> HttpResponse {
    let mut response = error_response(StatusCode::UPGRADE_REQUIRED, "Upgrade Required");
    response.headers_mut().insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    response
}

/// The upgrade: `req` (no body), the route's middleware (one that answers refuses the
/// upgrade with its answer), then the handshake (101) and the connection's task.
pub async fn upgrade(
    req: &HttpRequest,
    payload: Payload,
    context: RequestContext,
    resolved: Resolved,
    runs: Runs,
    req_value: Dynamic,
    app: Arc<AppContext>,
) -> HttpResponse {
    let settings = Arc::clone(&context.snapshot.settings);
    drop(context);
    let dev = settings.is_dev();
    let (req_value, kept) = match runs.passed_middleware(&resolved.chain, req_value).await {
        Ok(passed) => passed,
        Err((Outcome::Reply(answered), kept)) => {
            return keep_headers(respond(answered, req, dev, &runs.env.0), kept)
        }
        // A middleware that starts streaming refuses the upgrade; the stream is dropped.
        Err((Outcome::Stream(_), _)) => {
            return error_response(StatusCode::BAD_REQUEST, "Bad Request")
        }
    };
    let realtime = &settings.realtime;
    let (response, session, stream) = match actix_ws::handle(req, payload) {
        Ok(handshake) => handshake,
        Err(err) => return err.error_response(),
    };
    let stream = stream
        .max_frame_size(realtime.max_message)
        .aggregate_continuations()
        .max_continuation_size(realtime.max_message);
    let (subscriber, inbox) = app.hub.subscriber(realtime.send_queue);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let connection = Connection {
        _open: Open::count(app),
        socket: Socket::new(&id, realtime.send_queue, subscriber),
        session,
        inbox,
        script: resolved.script,
        engine: runs.engine,
        env: runs.env,
        timeout: runs.timeout,
        max_memory: runs.max_memory,
        ping_interval: realtime.ping_interval,
        pong_timeout: realtime.pong_timeout,
    };
    // `on_open` has run when the client learns the socket is open: its subscriptions are
    // in place and its sends come first.
    let opened = match connection.event(0, vec![req_value]) {
        Some(run) => run.await,
        None => Ok(()),
    };
    actix_web::rt::spawn(connection.serve(stream, opened));
    keep_headers(response, kept)
}

/// One open connection, owned by its task.
struct Connection {
    /// Counted in `rhapi_websocket_connections` while the task lives.
    _open: Open,
    socket: Socket,
    session: Session,
    inbox: Inbox,
    script: Arc<RouteScript>,
    engine: Arc<Engine>,
    env: EnvMap,
    /// Each event's time budget (the route's).
    timeout: Duration,
    max_memory: usize,
    ping_interval: Duration,
    pong_timeout: Duration,
}

/// A connection as `rhapi_websocket_connections` counts it, from the handshake to the
/// end of its task, whichever way it ends.
struct Open(Arc<AppContext>);

impl Open {
    fn count(app: Arc<AppContext>) -> Open {
        app.metrics.websocket_opened();
        Open(app)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.websocket_closed();
    }
}

/// How a connection ended: the code and reason `on_close` gets, and whether a close frame
/// is still to be sent.
struct Ended {
    code: u16,
    reason: String,
    send_close: bool,
}

impl Ended {
    fn by_server(code: u16, reason: &str) -> Ended {
        Ended {
            code,
            reason: reason.into(),
            send_close: true,
        }
    }

    /// The TCP connection dropped (or stopped answering pings): 1006, nothing to send.
    fn dropped() -> Ended {
        Ended {
            code: 1006,
            reason: String::new(),
            send_close: false,
        }
    }
}

/// How long the close frame may wait for room in a client's queue.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// An event run in progress; `Err` when it failed (the connection closes with 1011).
type EventRun = Pin<Box<dyn Future<Output = Result<(), ()>>>>;

/// How long a send may wait on a client that does not read before its queues are
/// looked at again.
const STALL_CHECK: Duration = Duration::from_millis(50);

impl Connection {
    /// The connection's life after `on_open` (`opened`: how that ended).
    async fn serve(mut self, mut stream: AggregatedMessageStream, opened: Result<(), ()>) {
        let mut running: Option<EventRun> = None;
        if opened.is_err() {
            return self.close(Ended::by_server(1011, ""), None).await;
        }
        let start = tokio::time::Instant::now() + self.ping_interval;
        let mut ping = tokio::time::interval_at(start, self.ping_interval);
        let mut heard = Instant::now();
        let shutdown = crate::script::stream::until_shutdown();
        tokio::pin!(shutdown);
        let ended = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break Ended::by_server(1001, "server shutting down"),
                ran = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                    running = None;
                    if ran.is_err() {
                        break Ended::by_server(1011, "");
                    }
                }
                () = self.socket.queued() => {
                    if let Err(ended) = self.flush().await {
                        break ended;
                    }
                }
                published = self.inbox.next() => {
                    let Some(published) = published else {
                        break Ended::by_server(1008, "too slow to receive");
                    };
                    if let Err(ended) = self.deliver(published.message.clone()).await {
                        break ended;
                    }
                }
                item = stream.recv(), if running.is_none() => {
                    heard = Instant::now();
                    match self.received(item).await {
                        Ok(run) => running = run,
                        Err(ended) => break ended,
                    }
                }
                _ = ping.tick() => {
                    if heard.elapsed() > self.pong_timeout {
                        break Ended::dropped();
                    }
                    if let Err(ended) = self.send_frame(actix_ws::Message::Ping(Default::default())).await {
                        break ended;
                    }
                }
            }
        };
        self.close(ended, running).await;
    }

    /// What the client sent: `Ok` with the event run it starts, if any; `Err` when the
    /// connection ends.
    async fn received(
        &mut self,
        item: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<Option<EventRun>, Ended> {
        let message = match item {
            None => return Err(Ended::dropped()),
            Some(Err(err)) => return Err(protocol_error(&err)),
            Some(Ok(message)) => message,
        };
        let msg = match message {
            AggregatedMessage::Text(text) => incoming(Some(&text), &[]),
            AggregatedMessage::Binary(bytes) => incoming(None, &bytes),
            AggregatedMessage::Ping(bytes) => {
                self.send_frame(actix_ws::Message::Pong(bytes)).await?;
                return Ok(None);
            }
            AggregatedMessage::Pong(_) => return Ok(None),
            AggregatedMessage::Close(reason) => {
                let (code, reason) = match reason {
                    Some(reason) => (
                        u16::from(reason.code),
                        reason.description.unwrap_or_default(),
                    ),
                    // A close frame without a code (RFC 6455 7.1.5).
                    None => (1005, String::new()),
                };
                return Err(Ended {
                    code,
                    reason,
                    send_close: true,
                });
            }
        };
        Ok(self.event(1, vec![msg]))
    }

    /// Starts event `index` of [`EVENTS`] with `args` (`ws` goes first, `env` last when
    /// the function declares them); `None` when the route does not define it.
    fn event(&self, index: usize, args: Vec<Dynamic>) -> Option<EventRun> {
        let arity = self.script.events[index]?;
        let call = Call {
            engine: Arc::clone(&self.engine),
            script: Arc::clone(&self.script),
            target: Target {
                function: EVENTS[index],
                arity,
                handler: false,
                middleware: false,
            },
            env: self.env.clone(),
            deadline: Instant::now() + self.timeout,
            max_memory: self.max_memory,
            hold: None,
        };
        let env = Arc::clone(&self.env.0);
        let file = Arc::clone(&self.script.file);
        let mut full = Vec::with_capacity(args.len() + 2);
        full.push(Dynamic::from(self.socket.clone()));
        full.extend(args);
        let deadline = call.deadline;
        Some(Box::pin(async move {
            let ran = crate::executor::run::<crate::script::context::Saved, _>(
                deadline,
                move || call.run_event(full),
                |_| {},
            )
            .await;
            let err = match ran {
                Ran::Finished(Ok(())) => return Ok(()),
                Ran::Finished(Err(err)) => err.to_string(),
                Ran::NoRoom => format!("{file}: no room to run the event (server busy)"),
                Ran::Panicked | Ran::HandedOut(_) => {
                    format!("{file}: internal error (a panic; see the server log)")
                }
            };
            tracing::error!(
                "{} (in {}; the socket is closed with 1011)",
                crate::logging::escape(&env.redact(&err)),
                EVENTS[index]
            );
            Err(())
        }))
    }

    /// Sends what the scripts queued; `Err` when that ends the connection (a close asked
    /// for, or a client too slow to receive).
    async fn flush(&mut self) -> Result<(), Ended> {
        loop {
            let next = {
                let mut out = self.socket.outgoing();
                match out.messages.pop_front() {
                    Some(message) => Ok(message),
                    None => Err(out.close.take()),
                }
            };
            match next {
                Ok(message) => self.deliver(message).await?,
                Err(Some((code, reason))) => return Err(Ended::by_server(code, &reason)),
                Err(None) => return Ok(()),
            }
        }
    }

    /// Hands one message to the connection.
    async fn deliver(&mut self, message: Message) -> Result<(), Ended> {
        let frame = match message {
            Message::Text(text) => actix_ws::Message::Text(text),
            Message::Binary(bytes) => actix_ws::Message::Binary(bytes),
        };
        self.send_frame(frame).await
    }

    /// Hands one frame to the connection. A client that does not read makes this wait;
    /// meanwhile its queues fill, and a full one closes it with 1008. It never waits past
    /// shutdown, nor longer than `pong_timeout` (the client counts as gone).
    async fn send_frame(&mut self, frame: actix_ws::Message) -> Result<(), Ended> {
        let stalled = Instant::now();
        loop {
            let ready = futures_util::future::poll_fn(|cx| self.session.poll_ready_unpin(cx));
            tokio::select! {
                biased;
                ready = ready => {
                    ready.map_err(|_| Ended::dropped())?;
                    return self.session.start_send_unpin(frame).map_err(|_| Ended::dropped());
                }
                () = tokio::time::sleep(STALL_CHECK) => {
                    if self.inbox.is_cut_off() || self.socket.backed_up() {
                        return Err(Ended::by_server(1008, "too slow to receive"));
                    }
                    if crate::script::stream::shutting_down() {
                        return Err(Ended { send_close: false, ..Ended::by_server(1001, "server shutting down") });
                    }
                    if stalled.elapsed() > self.pong_timeout {
                        return Err(Ended::dropped());
                    }
                }
            }
        }
    }

    /// Sends the close frame (when one is due), then runs `on_close` (once the event
    /// in progress, if any, has ended).
    async fn close(self, ended: Ended, running: Option<EventRun>) {
        self.socket.mark_closed();
        if ended.send_close {
            let reason = CloseReason {
                code: CloseCode::from(ended.code),
                description: (!ended.reason.is_empty()).then(|| ended.reason.clone()),
            };
            // 1005 and 1006 are never sent (RFC 6455 7.4.1): an empty close frame.
            let reason = (ended.code != 1005 && ended.code != 1006).then_some(reason);
            // A client that does not read cannot take it either: not waited for long.
            let close = self.session.clone().close(reason);
            let _ = tokio::time::timeout(CLOSE_WAIT, close).await;
        }
        if let Some(run) = running {
            let _ = run.await;
        }
        let args = vec![
            Dynamic::from(i64::from(ended.code)),
            Dynamic::from(ended.reason),
        ];
        if let Some(run) = self.event(2, args) {
            let _ = run.await;
        }
    }
}

/// How a protocol error closes the connection (RFC 6455 7.4.1): 1009 for a message over
/// `max_message`, 1007 for text that is not UTF-8, 1002 for anything else.
fn protocol_error(err: &actix_ws::ProtocolError) -> Ended {
    use actix_ws::ProtocolError;
    match err {
        ProtocolError::Overflow => Ended::by_server(1009, "message too big"),
        ProtocolError::Io(io) if io.to_string().contains("maximum continuation size") => {
            Ended::by_server(1009, "message too big")
        }
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            Ended::by_server(1007, "text is not UTF-8")
        }
        ProtocolError::Io(_) => Ended::dropped(),
        _ => Ended::by_server(1002, "protocol error"),
    }
}
