//! What is known of a request before anything about it is decided, read once, first: when
//! it arrived, its id, who sent it (the client behind trusted proxies, and the scheme and
//! host it asked for), and the snapshot of the app that answers it (its settings, routes
//! and engines agree for the whole request). Every later stage reads it from here; none
//! reads the connection again.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::HttpRequest;
use rhai::ImmutableString;

use super::proxy::{self, Origin};
use super::request_id::RequestId;
use crate::app::{App, Snapshot};

pub struct RequestContext {
    /// When the request reached the handler (its log line's duration starts here).
    pub started: Instant,
    /// `req.id` (the handler keeps the `X-Request-Id` header that goes with it).
    pub id: ImmutableString,
    /// The client, and how it asked when a trusted proxy said so.
    origin: Origin,
    /// The app as it was when the request arrived.
    pub snapshot: Arc<Snapshot>,
}

impl RequestContext {
    pub fn new(req: &HttpRequest, app: &App, id: &RequestId) -> RequestContext {
        let snapshot = app.snapshot();
        let peer = req.peer_addr().map(|addr| addr.ip());
        RequestContext {
            started: Instant::now(),
            id: id.text.clone(),
            origin: proxy::origin(peer, req.headers(), &snapshot.settings.trusted_proxies),
            snapshot,
        }
    }

    /// The client's address, as `req.ip` shows it, the log writes it and `by = "ip"` rate
    /// limits count it: the connection's peer, or the client a trusted proxy names.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.origin.ip
    }

    /// `req.protocol`: what a trusted proxy says the client used, else the connection's.
    pub fn protocol(&self, req: &HttpRequest) -> ImmutableString {
        thread_local! {
            // Shared strings: one per worker, not one per request.
            static SCHEMES: (ImmutableString, ImmutableString) = ("http".into(), "https".into());
        }
        let https = match self.origin.forwarded.as_ref().and_then(|f| f.proto) {
            Some(proto) => proto == "https",
            None => req.app_config().secure(),
        };
        SCHEMES.with(|(http, tls)| if https { tls.clone() } else { http.clone() })
    }

    /// `req.host`: what a trusted proxy says the client asked for, else the `Host` header
    /// (HTTP/2: the request's authority); `""` without either.
    pub fn host(&self, req: &HttpRequest) -> ImmutableString {
        if let Some(host) = self
            .origin
            .forwarded
            .as_ref()
            .and_then(|f| f.host.as_deref())
        {
            return host.into();
        }
        thread_local! {
            /// The last `Host` of this worker and its string: a keep-alive client (or a
            /// proxy) sends the same one every time, which then costs no allocation.
            static LAST: std::cell::RefCell<(Vec<u8>, ImmutableString)> =
                std::cell::RefCell::new((Vec::new(), ImmutableString::new()));
        }
        let bytes = match req.headers().get(header::HOST) {
            Some(host) => host.as_bytes(),
            None => req
                .uri()
                .authority()
                .map_or(&b""[..], |a| a.as_str().as_bytes()),
        };
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != bytes {
                last.1 = String::from_utf8_lossy(bytes).as_ref().into();
                last.0.clear();
                last.0.extend_from_slice(bytes);
            }
            last.1.clone()
        })
    }
}
