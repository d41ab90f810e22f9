//! What is known of a request before anything about it is decided, read once, first: when
//! it arrived, the client's address, and the snapshot of the app that answers it (its
//! settings, routes and engines agree for the whole request). Every later stage reads it
//! from here; none reads the connection again. Trusted proxies (the client behind them) and
//! the request id belong here too when they come.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::HttpRequest;

use crate::app::{App, Snapshot};

pub struct RequestContext {
    /// When the request reached the handler (its log line's duration starts here).
    pub started: Instant,
    /// The address of the connection's peer (see [`RequestContext::client_ip`]).
    peer: Option<IpAddr>,
    /// The app as it was when the request arrived.
    pub snapshot: Arc<Snapshot>,
}

impl RequestContext {
    pub fn new(req: &HttpRequest, app: &App) -> RequestContext {
        RequestContext {
            started: Instant::now(),
            peer: req.peer_addr().map(|addr| addr.ip()),
            snapshot: app.snapshot(),
        }
    }

    /// The client's address, as `req.ip` shows it and `by = "ip"` rate limits count it:
    /// the connection's peer (trusted proxies will put the client behind them here).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.peer
    }
}
