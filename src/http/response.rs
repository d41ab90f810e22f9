//! Where a script's reply becomes an HTTP response: status, headers, `ETag` and 304, and the
//! error bodies of each mode.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;

use super::in_flight::InFlightSlot;
use crate::env::EnvVars;
use crate::error::{error_response, json_response, ScriptError};
use crate::realtime::Subscription;
use crate::script::res::{ScriptResponse, EVENT_STREAM, JSON};
use crate::script::stream::Stream;
use crate::script::{Plan, Reply};

/// Builds the response to `req` from a script's reply; errors are logged here, once.
/// Messages are redacted of the secrets of `env`, the request's environment.
pub fn respond(reply: Reply, req: &HttpRequest, dev: bool, env: &EnvVars) -> HttpResponse {
    match reply {
        Reply::Sent(sent) => sent_response(sent, req),
        Reply::NotAllowed(allow) => method_not_allowed(allow),
        Reply::Thrown {
            status,
            body,
            headers,
        } => thrown_response(status, body, headers),
        Reply::Timeout(err) => {
            log_script_error(req, &err, env);
            error_response(StatusCode::GATEWAY_TIMEOUT, "Script timed out")
        }
        Reply::Failed(err) => {
            log_script_error(req, &err, env);
            script_error_response(&err, dev, env)
        }
        Reply::Busy => {
            tracing::error!("{} {}: no room for another run", req.method(), req.path());
            server_busy()
        }
        // A streamed run's answer went out through `stream_response`, and a middleware
        // that passed goes on in the pipeline: neither reaches a client here.
        Reply::Streamed | Reply::Passed(_) => {
            tracing::error!(
                "{} {}: a run ended without an answer",
                req.method(),
                req.path()
            );
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The answer to `throw #{ status, ... }`: the map as JSON, with the headers and cookies
/// the script set before throwing (its own `Content-Type` does not fit the JSON body).
fn thrown_response(
    status: u16,
    body: Vec<u8>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
) -> HttpResponse {
    let mut builder = HttpResponse::build(status_code(status));
    for (name, value) in headers {
        if name != header::CONTENT_TYPE {
            builder.append_header((name, value));
        }
    }
    builder.content_type(JSON).body(body)
}

/// 503 `{"error":"Server busy"}` with `Retry-After: 1`: over `--max-in-flight`, or no
/// memory for another run.
pub fn server_busy() -> HttpResponse {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "Server busy");
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// What an idle event stream sends every `[realtime] keep_alive`: a comment line, which
/// clients ignore, whose failed write tells the server that its client has gone.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The builder of a streamed response with `head`'s status and headers (and its default
/// content type unless it set one); whether that type is an event stream.
fn stream_head(head: ScriptResponse) -> (actix_web::HttpResponseBuilder, bool) {
    let mut builder = HttpResponse::build(status_code(head.status));
    let mut content_type = None;
    for (name, value) in head.headers {
        if name == header::CONTENT_TYPE {
            content_type = Some(value.clone());
        }
        builder.append_header((name, value));
    }
    if let (Some(default), None) = (head.content_type, &content_type) {
        content_type = Some(HeaderValue::from_static(default));
        builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(default)));
    }
    let event_stream = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(EVENT_STREAM));
    (builder, event_stream)
}

/// The response of a run that streams: its head now, its chunks as the script writes them;
/// an event stream idle for `keep_alive` sends a keep-alive comment. The in-flight slot is
/// held until the stream ends. A `HEAD` request gets the head alone (the script's next
/// write finds the client gone).
pub fn stream_response(
    stream: Stream,
    req: &HttpRequest,
    slot: Arc<InFlightSlot>,
    keep_alive: Duration,
) -> HttpResponse {
    let Stream { head, chunks } = stream;
    let (mut builder, event_stream) = stream_head(head);
    if req.method() == Method::HEAD {
        drop(chunks);
        return builder.finish();
    }
    let idle = event_stream.then_some(keep_alive);
    let body = futures_util::stream::unfold((chunks, slot), move |(mut chunks, slot)| async move {
        let chunk = match idle {
            Some(idle) => tokio::select! {
                chunk = chunks.recv() => chunk?,
                () = tokio::time::sleep(idle) => Bytes::from_static(KEEP_ALIVE),
            },
            None => chunks.recv().await?,
        };
        Some((Ok::<_, std::convert::Infallible>(chunk), (chunks, slot)))
    });
    builder.streaming(body)
}

/// The response of `res.subscribe`: its head now, then each publish its inbox receives as
/// an event, a keep-alive comment after each `keep_alive` of silence. No script runs for
/// it, and it holds no in-flight place: it ends when the client goes, when the subscriber
/// is cut off (its queue full), or at shutdown.
fn subscribed_response(
    head: ScriptResponse,
    subscription: Subscription,
    req: &HttpRequest,
) -> HttpResponse {
    let (mut builder, _) = stream_head(head);
    let Subscription { inbox, keep_alive } = subscription;
    if req.method() == Method::HEAD {
        drop(inbox);
        return builder.finish();
    }
    let body = futures_util::stream::unfold(inbox, move |mut inbox| async move {
        let chunk = tokio::select! {
            biased;
            () = crate::script::stream::until_shutdown() => return None,
            published = inbox.next() => published?.sse_event(),
            () = tokio::time::sleep(keep_alive) => Bytes::from_static(KEEP_ALIVE),
        };
        Some((Ok::<_, std::convert::Infallible>(chunk), inbox))
    });
    builder.streaming(body)
}

/// 500 for a script that failed to load or run: details in `dev`, nothing in `start`.
pub fn script_error_response(err: &ScriptError, dev: bool, env: &EnvVars) -> HttpResponse {
    if dev {
        let mut body = err.to_json();
        body["error"] = env.redact(&err.message).into();
        json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
    } else {
        error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
}

/// Logs a script error with where it happened and which request hit it. The message may
/// hold what the client sent (a thrown string, a value): escaped to stay one line.
pub fn log_script_error(req: &HttpRequest, err: &ScriptError, env: &EnvVars) {
    let line = format!(
        "{} {}: {}",
        req.method(),
        req.path(),
        env.redact(&err.to_string())
    );
    tracing::error!("{}", crate::logging::escape(&line));
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn sent_response(mut sent: ScriptResponse, req: &HttpRequest) -> HttpResponse {
    if let Some(subscription) = sent.subscription.take() {
        return subscribed_response(sent, subscription, req);
    }
    let status = status_code(sent.status);
    let mut builder = HttpResponse::build(status);
    let mut has_type = false;
    for (name, value) in sent.headers {
        has_type |= name == header::CONTENT_TYPE;
        builder.append_header((name, value));
    }
    let no_body = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    if no_body {
        return builder.finish();
    }
    if let (Some(content_type), false) = (sent.content_type, has_type) {
        builder.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)));
    }
    if sent.etag && status == StatusCode::OK {
        let tag = etag(&sent.body);
        let cacheable = matches!(*req.method(), Method::GET | Method::HEAD);
        let fresh = cacheable && if_none_match(req).is_some_and(|list| etag_matches(list, &tag));
        builder.insert_header((header::ETAG, tag));
        if fresh {
            builder.status(StatusCode::NOT_MODIFIED);
            return builder.finish();
        }
    }
    // actix drops the body of a HEAD response and keeps its content-length.
    builder.body(sent.body)
}

fn if_none_match(req: &HttpRequest) -> Option<&str> {
    req.headers().get(header::IF_NONE_MATCH)?.to_str().ok()
}

/// A strong validator of the body: its length and a 64-bit hash. aHash (already used by
/// Rhai) with fixed seeds hashes several bytes per cycle; a bytewise FNV cost microseconds
/// on an 8 KB body, on every request.
fn etag(body: &[u8]) -> String {
    let hash = ahash::RandomState::with_seeds(0x7268, 0x6170, 0x6920, 0x6574).hash_one(body);
    let mut tag = String::with_capacity(36);
    tag.push('"');
    crate::encoding::push_hex(&mut tag, body.len() as u64, 1);
    tag.push('-');
    crate::encoding::push_hex(&mut tag, hash, 16);
    tag.push('"');
    tag
}

/// `If-None-Match` uses the weak comparison: `W/` prefixes are ignored; `*` matches.
fn etag_matches(list: &str, tag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag)
}

/// The response of an automatic answer (`None` for [`Plan::Call`]): `OPTIONS` 204 with
/// `Allow`, or 405.
pub fn automatic_response(plan: &Plan) -> Option<HttpResponse> {
    match plan {
        Plan::Call(_) => None,
        Plan::Options(allow) => Some(with_allow(
            HttpResponse::NoContent().finish(),
            Some(allow.clone()),
        )),
        Plan::NotAllowed(allow) => Some(method_not_allowed(allow.clone())),
    }
}

/// 405 `{"error":"Method Not Allowed"}`, with `Allow` when known.
pub fn method_not_allowed(allow: Option<String>) -> HttpResponse {
    with_allow(
        error_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        allow,
    )
}

fn with_allow(mut response: HttpResponse, allow: Option<String>) -> HttpResponse {
    if let Some(allow) = allow.and_then(|a| HeaderValue::try_from(a).ok()) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Adds the headers middleware kept to the final response; the response's own win: a
/// header it already has, or a cookie of the same name it sets.
pub fn keep_headers(
    mut response: HttpResponse,
    kept: Vec<(HeaderName, HeaderValue)>,
) -> HttpResponse {
    if kept.is_empty() {
        return response;
    }
    let own_cookies: Vec<String> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok())
        .map(|v| cookie_name(v).to_string())
        .collect();
    let own: Vec<HeaderName> = response.headers().keys().cloned().collect();
    let headers = response.headers_mut();
    for (name, value) in kept {
        let clash = if name == header::SET_COOKIE {
            let cookie = value.to_str().map(cookie_name).unwrap_or("");
            own_cookies.iter().any(|c| c == cookie)
        } else {
            own.contains(&name)
        };
        if !clash {
            headers.append(name, value);
        }
    }
    response
}

fn cookie_name(set_cookie: &str) -> &str {
    set_cookie.split('=').next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_length_and_hash_in_hex() {
        for body in [&b""[..], b"x", &[7u8; 4096]] {
            let hash =
                ahash::RandomState::with_seeds(0x7268, 0x6170, 0x6920, 0x6574).hash_one(body);
            assert_eq!(etag(body), format!("\"{:x}-{hash:016x}\"", body.len()));
        }
    }

    #[test]
    fn etags_compare_weakly() {
        let tag = etag(b"hello");
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"other\"", &tag));
        assert_ne!(etag(b"hello"), etag(b"hellp"));
    }
}
