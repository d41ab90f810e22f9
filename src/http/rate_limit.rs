//! The HTTP side of rate limits (docs/reference.md, "Rate limits"): which counters a
//! request is counted by, the counting (on the database threads when the counters are in
//! PostgreSQL), and the 429 and the `RateLimit-Policy`/`RateLimit` headers
//! (draft-ietf-httpapi-ratelimit-headers-08). The stage that calls it is
//! `handler::limit_rate`; the counting itself is [`crate::rate_limit`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::app::App;
use crate::db::{Database, DbError};
use crate::error::error_response;
use crate::rate_limit::{Ask, By, Decision, Limit, Rule, StoreError};
use crate::script::route_config::RouteRate;

/// One counter a request is counted by, owned (it may go to another thread).
pub struct Counted {
    scope: Arc<str>,
    key: Vec<u8>,
    limit: Limit,
}

/// The counters of a request: each `[[rate_limit]]` rule its path matches, then its
/// route's `CONFIG.rate_limit`. `client` is the client's address
/// (`RequestContext::client_ip`).
pub fn counters(
    req: &HttpRequest,
    client: Option<IpAddr>,
    rules: &[Rule],
    route: Option<&RouteRate>,
    segments: &[String],
) -> Vec<Counted> {
    let mut counted = Vec::new();
    for rule in rules.iter().filter(|rule| rule.matches(segments)) {
        let key = match &rule.by {
            By::Shared => Vec::new(),
            By::Ip => ip_key(client),
            // Requests without the header share one counter.
            By::Header(name) => req
                .headers()
                .get(name.as_str())
                .map_or_else(Vec::new, |v| v.as_bytes().to_vec()),
        };
        counted.push(Counted {
            scope: Arc::clone(&rule.scope),
            key,
            limit: rule.limit,
        });
    }
    if let Some(route) = route {
        counted.push(Counted {
            scope: Arc::clone(&route.scope),
            key: ip_key(client),
            limit: route.limit,
        });
    }
    counted
}

/// An address as a counter's key: the same for an IPv4 client seen through IPv6. An IPv6
/// client counts by its /64: one subscriber usually holds a whole /64, and counting each
/// address would give it 2^64 counters.
fn ip_key(client: Option<IpAddr>) -> Vec<u8> {
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(ip)) => ip.octets().to_vec(),
        Some(IpAddr::V6(ip)) => ip.octets()[..8].to_vec(),
        None => Vec::new(),
    }
}

/// Where a request's counts are taken: already here, in the process, or in the app's
/// PostgreSQL (then [`take_in_database`], awaited).
pub enum Taken {
    Done(Result<Option<Decision>, StoreError>),
    InDatabase(Arc<Database>),
}

/// Counts the request against `counted` in the process (see
/// [`crate::rate_limit::RateLimiter::take_all`]), unless its counters are in the database.
pub fn take(app: &App, counted: &[Counted], budget: Duration) -> Taken {
    let context = &app.context;
    let now = context.clock.now_ms();
    if context.rate.wants_database() {
        let db = crate::db::Target::from_env(&app.dir, &context.env())
            .and_then(|target| context.databases.open(&target));
        match db {
            Ok(db) if context.rate.uses(Some(&db)) => return Taken::InDatabase(db),
            Ok(_) => {}
            Err(err) => return Taken::Done(Err(err.into())),
        }
    }
    Taken::Done(context.rate.take_all(&asks(counted), now, None, budget))
}

/// Counts the request against `counted` in `db`, on the database threads.
pub async fn take_in_database(
    app: &App,
    counted: Vec<Counted>,
    db: Arc<Database>,
    budget: Duration,
) -> Result<Option<Decision>, StoreError> {
    let context = Arc::clone(&app.context);
    let now = context.clock.now_ms();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let work: crate::cpu::Task = Box::new(move || {
        let taken = context
            .rate
            .take_all(&asks(&counted), now, Some(&db), budget);
        let _ = reply.send(taken);
    });
    let gone = || StoreError(DbError::Connect("the database threads are gone".into()));
    crate::db::threads().send(work).map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

fn asks(counted: &[Counted]) -> Vec<Ask<'_>> {
    counted
        .iter()
        .map(|c| Ask {
            scope: &c.scope,
            key: &c.key,
            limit: c.limit,
        })
        .collect()
}

/// The 429 of a refused request.
pub fn refused(decision: &Decision) -> HttpResponse {
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from(decision.reset));
    add_headers(&mut response, decision);
    response
}

/// `RateLimit-Policy: 10;w=60` and `RateLimit: limit=10, remaining=9, reset=42`. Written
/// with `itoa`, not `format!`: on a limited hello, `format!` was 3,300 instructions of the
/// 5,300 a rule cost.
pub fn add_headers(response: &mut HttpResponse, decision: &Decision) {
    let mut digits = itoa::Buffer::new();
    let mut policy = Vec::with_capacity(32);
    policy.extend_from_slice(digits.format(decision.limit).as_bytes());
    policy.extend_from_slice(b";w=");
    policy.extend_from_slice(digits.format(decision.window).as_bytes());
    let mut state = Vec::with_capacity(64);
    for (name, n) in [
        (&b"limit="[..], decision.limit),
        (b", remaining=", decision.remaining),
        (b", reset=", decision.reset),
    ] {
        state.extend_from_slice(name);
        state.extend_from_slice(digits.format(n).as_bytes());
    }
    let headers = response.headers_mut();
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let key = |text: &str| ip_key(Some(text.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
    }
}
