//! The request pipeline: route lookup, dispatch decision, body, script run, response,
//! and one log line per request.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::FutureExt;
use rhai::Dynamic;

use super::in_flight::InFlightSlot;
use super::request::{build_req, content_type, parse_body, read_body};
use super::response::{
    log_script_error, respond, script_error_response, server_busy, stream_response,
};
use super::Server;
use crate::app::Route;
use crate::error::{error_response, RequestError};
use crate::executor::Outcome;
use crate::routes::path::{self, RequestPath};
use crate::routes::Params;
use crate::script::{plan, Call, Plan};

/// Largest total size of request headers, as in Node.js (16 KiB); above it: 431.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every request, whatever its path and method, comes here.
pub async fn handle(req: HttpRequest, payload: Payload, server: Data<Server>) -> HttpResponse {
    let started = Instant::now();
    let Some(slot) = server.in_flight.enter() else {
        let response = server_busy();
        log_request(&req, response.status(), started.elapsed());
        return response;
    };
    // A panic must never take a worker down with the connections it serves.
    let response = AssertUnwindSafe(answer(&req, payload, &server, slot))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!(
                "{} {}: internal error (panic) while answering",
                req.method(),
                req.path()
            );
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        });
    log_request(&req, response.status(), started.elapsed());
    response
}

fn header_bytes(req: &HttpRequest) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

fn log_request(req: &HttpRequest, status: StatusCode, took: Duration) {
    crate::logging::request(req.method().as_str(), req.path(), status.as_u16(), took);
}

async fn answer(
    req: &HttpRequest,
    payload: Payload,
    server: &Server,
    slot: InFlightSlot,
) -> HttpResponse {
    if header_bytes(req) > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        );
    }
    let segments = match path::parse(req.path()) {
        RequestPath::Api(segments) => segments,
        RequestPath::NotApi => return not_found(),
        RequestPath::Bad => return RequestError::BadRequest.response(),
        RequestPath::TrailingSlash(target) => return redirect_without_slash(req, target),
    };
    let snapshot = server.app.snapshot();
    let Some((route, params)) = snapshot.routes.lookup(&segments) else {
        return not_found();
    };
    let dev = server.app.settings.is_dev();
    let script = match route {
        Route::Ready(script) => Arc::clone(script),
        Route::Broken(err) => {
            log_script_error(req, err);
            return script_error_response(err, dev);
        }
    };
    let target = match plan(&script, req.method()) {
        Plan::Call(target) => target,
        automatic => return automatic.automatic_response().unwrap_or_else(not_found),
    };
    let body = match read_body(req, payload, server.settings.body_limit).await {
        Ok(body) => body,
        Err(err) => return err.response(),
    };
    let input = ScriptInput {
        req,
        decoded_path: decoded_path(&segments),
        params: &params,
        body: &body,
    };
    let req_value = match input.build() {
        Ok(value) => value,
        Err(err) => return err.response(),
    };
    let limits = &server.app.settings.limits;
    let call = Call {
        engine: Arc::clone(&snapshot.engine),
        script,
        target,
        env: snapshot.env.clone(),
        deadline: Instant::now() + limits.timeout,
        max_memory: limits.max_memory,
    };
    drop(snapshot);
    match crate::executor::run(call, req_value).await {
        Outcome::Reply(reply) => respond(reply, req, dev),
        Outcome::Stream(stream) => stream_response(stream, req, slot),
    }
}

/// What `req` is built from.
struct ScriptInput<'a> {
    req: &'a HttpRequest,
    decoded_path: String,
    params: &'a Params,
    body: &'a [u8],
}

impl ScriptInput<'_> {
    fn build(&self) -> Result<Dynamic, RequestError> {
        let parsed = parse_body(content_type(self.req), self.body)?;
        build_req(self.req, &self.decoded_path, self.params, parsed)
    }
}

/// `/api/` and the decoded segments, joined: `req.path`.
fn decoded_path(segments: &[String]) -> String {
    let mut decoded =
        String::with_capacity(4 + segments.iter().map(|s| s.len() + 1).sum::<usize>());
    decoded.push_str("/api");
    for segment in segments {
        decoded.push('/');
        decoded.push_str(segment);
    }
    decoded
}

fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, "Not Found")
}

/// `/api/hello/` -> 308 `/api/hello`, query kept.
fn redirect_without_slash(req: &HttpRequest, target: String) -> HttpResponse {
    let location = match req.uri().query() {
        Some(query) => format!("{target}?{query}"),
        None => target,
    };
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .finish()
}
