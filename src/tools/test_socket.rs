//! `socket(path)` of `rhapi test`: a WebSocket opened in-process to the app under test,
//! through the same actix app and upgrade as a browser's (docs/reference.md, "Testing").
//! The client side speaks the protocol with actix's own codec in client mode: frames are
//! masked going in and decoded coming out, so what a test sees is what a browser would.

use std::sync::mpsc;
use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{Codec, Frame, Message};
use actix_web::body::MessageBody;
use actix_web::test::TestRequest;
use bytes::{Bytes, BytesMut};
use rhai::{Dynamic, Engine, Map};

use crate::script::ScriptResult;

/// What the test's thread sends to the socket's task on the app's thread.
pub enum ToApp {
    Send(Message),
}

/// What the app sent, as the test sees it: a message, or the close (code, reason).
pub enum FromApp {
    Message(Dynamic),
    Closed(u16, String),
}

/// The test's end of one socket.
#[derive(Clone)]
pub struct TestSocket {
    to_app: tokio::sync::mpsc::UnboundedSender<ToApp>,
    from_app: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<FromApp>>>,
    wait: Duration,
    /// Set once the server's close has been received.
    closed: std::sync::Arc<std::sync::Mutex<Option<(u16, String)>>>,
}

/// The upgrade request for `uri`, with `headers`; its payload is what `frames` yields.
pub fn upgrade_request(
    uri: &str,
    headers: Vec<(
        actix_web::http::header::HeaderName,
        actix_web::http::header::HeaderValue,
    )>,
    frames: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
) -> actix_http::Request {
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut request = TestRequest::get()
        .uri(uri)
        .peer_addr(peer)
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "Upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
    for header in headers {
        request = request.append_header(header);
    }
    let stream = futures_util::stream::unfold(frames, |mut frames| async move {
        frames.recv().await.map(|bytes| (Ok(bytes), frames))
    });
    let stream: actix_http::BoxedPayloadStream = Box::pin(stream);
    request
        .to_request()
        .replace_payload(actix_http::Payload::from(stream))
        .0
}

/// Runs the client side of an accepted upgrade on the app's thread: frames the test sends
/// go in, frames the app sends come out, until either side closes.
pub async fn pump(
    mut body: actix_web::body::BoxBody,
    frames: tokio::sync::mpsc::UnboundedSender<Bytes>,
    mut from_test: tokio::sync::mpsc::UnboundedReceiver<ToApp>,
    to_test: mpsc::Sender<FromApp>,
) {
    let mut codec = Codec::new().client_mode().max_size(usize::MAX >> 1);
    let mut incoming = BytesMut::new();
    let send = |codec: &mut Codec, message: Message| {
        let mut out = BytesMut::new();
        if codec.encode(message, &mut out).is_ok() {
            let _ = frames.send(out.freeze());
        }
    };
    loop {
        tokio::select! {
            asked = from_test.recv() => match asked {
                Some(ToApp::Send(message)) => send(&mut codec, message),
                None => {
                    send(&mut codec, Message::Close(Some(actix_http::ws::CloseCode::Away.into())));
                    return;
                }
            },
            chunk = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)) => {
                let Some(Ok(chunk)) = chunk else {
                    let _ = to_test.send(FromApp::Closed(1006, String::new()));
                    return;
                };
                incoming.extend_from_slice(&chunk);
                while let Ok(Some(frame)) = codec.decode(&mut incoming) {
                    let seen = match frame {
                        Frame::Text(text) => FromApp::Message(Dynamic::from(
                            String::from_utf8_lossy(&text).into_owned(),
                        )),
                        Frame::Binary(bytes) => FromApp::Message(Dynamic::from_blob(bytes.to_vec())),
                        Frame::Ping(payload) => {
                            send(&mut codec, Message::Pong(payload));
                            continue;
                        }
                        Frame::Close(reason) => {
                            let (code, text) = reason.map_or((1005, String::new()), |r| {
                                (u16::from(r.code), r.description.unwrap_or_default())
                            });
                            let _ = to_test.send(FromApp::Closed(code, text));
                            return;
                        }
                        Frame::Pong(_) | Frame::Continuation(_) => continue,
                    };
                    let _ = to_test.send(seen);
                }
            }
        }
    }
}

impl TestSocket {
    pub fn new(
        to_app: tokio::sync::mpsc::UnboundedSender<ToApp>,
        from_app: mpsc::Receiver<FromApp>,
        wait: Duration,
    ) -> TestSocket {
        TestSocket {
            to_app,
            from_app: std::sync::Arc::new(std::sync::Mutex::new(from_app)),
            wait,
            closed: Default::default(),
        }
    }

    fn send(&mut self, value: Dynamic) -> ScriptResult<()> {
        let message = match crate::realtime::Message::from_value(&value)
            .map_err(|e| format!("socket.send: {e}"))?
        {
            crate::realtime::Message::Text(text) => Message::Text(text),
            crate::realtime::Message::Binary(bytes) => Message::Binary(bytes),
        };
        self.to_app
            .send(ToApp::Send(message))
            .map_err(|_| "socket.send: the app has stopped".into())
    }

    /// The next message (a string or a blob), or `#{ close, reason }` once the app closed.
    fn receive(&mut self) -> ScriptResult<Dynamic> {
        if let Some((code, reason)) = self.closed_map() {
            return Ok(close_map(code, reason));
        }
        let received = self
            .from_app
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv_timeout(self.wait);
        match received {
            Ok(FromApp::Message(message)) => Ok(message),
            Ok(FromApp::Closed(code, reason)) => {
                *self.closed.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((code, reason.clone()));
                Ok(close_map(code, reason))
            }
            Err(_) => Err(format!("socket.receive: nothing came within {:?}", self.wait).into()),
        }
    }

    fn closed_map(&self) -> Option<(u16, String)> {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn close(&mut self, code: i64, reason: &str) -> ScriptResult<()> {
        let code =
            u16::try_from(code).map_err(|_| format!("socket.close: {code} is not a close code"))?;
        let reason = actix_http::ws::CloseReason {
            code: code.into(),
            description: (!reason.is_empty()).then(|| reason.to_string()),
        };
        self.to_app
            .send(ToApp::Send(Message::Close(Some(reason))))
            .map_err(|_| "socket.close: the app has stopped".into())
    }

    /// Registers the `TestSocket` type: `.send(value)`, `.receive()`, `.close()`.
    pub fn register(engine: &mut Engine) {
        engine
            .register_type_with_name::<TestSocket>("TestSocket")
            .register_fn("send", |s: &mut TestSocket, value: Dynamic| s.send(value))
            .register_fn("receive", |s: &mut TestSocket| s.receive())
            .register_fn("close", |s: &mut TestSocket| s.close(1000, ""))
            .register_fn("close", |s: &mut TestSocket, code: i64, reason: &str| {
                s.close(code, reason)
            });
    }
}

fn close_map(code: u16, reason: String) -> Dynamic {
    let mut map = Map::new();
    map.insert("close".into(), Dynamic::from(i64::from(code)));
    map.insert("reason".into(), Dynamic::from(reason));
    Dynamic::from_map(map)
}
