//! The request pipeline: route lookup, dispatch decision, body, script run, response,
//! and one log line per request.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::FutureExt;

use super::request::{build_req, content_type, parse_body, read_body};
use super::response::{log_script_error, method_not_allowed, respond, script_error_response};
use super::Server;
use crate::app::Route;
use crate::error::{error_response, RequestError};
use crate::routes::path::{self, RequestPath};
use crate::script::{plan, Call, Plan};

/// Largest total size of request headers, as in Node.js (16 KiB); above it: 431.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every request, whatever its path and method, comes here.
pub async fn handle(req: HttpRequest, payload: Payload, server: Data<Server>) -> HttpResponse {
    let started = Instant::now();
    // A panic must never take a worker down with the connections it serves.
    let response = AssertUnwindSafe(answer(&req, payload, &server))
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

async fn answer(req: &HttpRequest, payload: Payload, server: &Server) -> HttpResponse {
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
    let (function, params_count, handler) = match plan(&script, req.method()) {
        Plan::Call {
            function,
            params,
            handler,
        } => (function, params, handler),
        Plan::NotAllowed(allow) => return method_not_allowed(allow),
        Plan::Options(allow) => {
            let mut response = HttpResponse::NoContent().finish();
            if let Ok(allow) = HeaderValue::try_from(allow) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return response;
        }
    };

    let settings = &server.app.settings;
    let body = match read_body(req, payload, settings.body_limit).await {
        Ok(body) => body,
        Err(err) => return err.response(),
    };
    let mut decoded_path = String::with_capacity(req.path().len());
    decoded_path.push_str("/api");
    for segment in &segments {
        decoded_path.push('/');
        decoded_path.push_str(segment);
    }
    let make_req = || -> Result<_, RequestError> {
        let parsed = parse_body(content_type(req), &body)?;
        build_req(req, &decoded_path, &params, parsed)
    };
    let req_value = match make_req() {
        Ok(value) => value,
        Err(err) => return err.response(),
    };
    let call = Call {
        engine: Arc::clone(&snapshot.engine),
        script,
        function,
        params: params_count,
        handler,
        env: snapshot.env.clone(),
        deadline: Instant::now() + settings.limits.timeout,
        max_memory: settings.limits.max_memory,
    };
    drop(snapshot);
    let reply = match server.executor.run_inline(&call, req_value) {
        Ok(reply) => reply,
        Err(Some(req_value)) => server.executor.run_pooled(call, req_value).await,
        // Moved off this worker: the first run consumed its `req`; the body is still here.
        Err(None) => match make_req() {
            Ok(req_value) => server.executor.run_pooled(call, req_value).await,
            Err(err) => return err.response(),
        },
    };
    respond(reply, req, dev)
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
