//! What rhapi answers itself for the people who run it: `/_rhapi/health` and
//! `/_rhapi/ready` on the app's port (before admission, scripts and middleware), and
//! `/metrics` on a listener of its own (`[metrics] listen`), never on the app's port.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use super::Shared;
use crate::app::App;
use crate::error::{error_response, json_response};
use crate::metrics::text::{self, Gauges};

/// The paths rhapi keeps for itself on the app's port (a file under `public/_rhapi/` is
/// never served).
pub const PREFIX: &str = "/_rhapi/";

/// Answers `/_rhapi/...`: `health` (200 while the process serves), `ready` (200 or 503),
/// 404 for anything else; GET and HEAD only.
pub async fn answer(req: &HttpRequest, app: &App) -> HttpResponse {
    let path = &req.path()[PREFIX.len()..];
    if path != "health" && path != "ready" {
        return error_response(StatusCode::NOT_FOUND, "Not Found");
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_allowed();
    }
    let mut response = if path == "health" {
        json_response(StatusCode::OK, &json!({ "status": "ok" }))
    } else {
        ready(app).await
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn ready(app: &App) -> HttpResponse {
    let snapshot = app.snapshot();
    let context = &app.context;
    let checked = context
        .readiness
        .check(&app.dir, &snapshot.env.0, &context.databases, |text| {
            context.redact(text)
        })
        .await;
    match checked {
        Ok(()) => json_response(StatusCode::OK, &json!({ "status": "ready" })),
        Err(why) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "not ready", "reason": why.reason() }),
        ),
    }
}

fn not_allowed() -> HttpResponse {
    let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Starts the metrics listener on `addr` (one worker of its own, in the running actix
/// system), and turns the app's metrics on.
pub fn metrics_server(
    addr: &str,
    shared: web::Data<Shared>,
) -> std::io::Result<actix_web::dev::Server> {
    let metrics_of = shared.clone();
    let bound = HttpServer::new(move || {
        actix_web::App::new()
            .app_data(metrics_of.clone())
            .default_service(web::to(scrape))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)
    .map_err(|err| {
        // Not `AddrInUse`: the command line would name the app's port.
        std::io::Error::other(format!("[metrics] listen = \"{addr}\": {err}"))
    })?;
    for addr in bound.addrs() {
        tracing::info!("metrics on http://{addr}/metrics");
    }
    shared.app.context.metrics.turn_on();
    Ok(bound.run())
}

/// `GET /metrics`: the text exposition format.
async fn scrape(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if req.path() != "/metrics" {
        return error_response(StatusCode::NOT_FOUND, "Not Found");
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return not_allowed();
    }
    let context = &shared.app.context;
    let (pool_idle, pool_busy) = context.databases.pool_counts();
    let gauges = Gauges {
        in_flight: shared.in_flight.count(),
        pool_idle,
        pool_busy,
        resident_bytes: text::resident_memory(),
    };
    HttpResponse::Ok()
        .content_type(text::CONTENT_TYPE)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text::render(&context.metrics, &gauges))
}
