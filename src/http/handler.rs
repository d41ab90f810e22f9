//! The request pipeline: `public/` or a route; its preflight, middleware, body, script
//! runs and response; CORS and compression; one log line per request.

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::FutureExt;
use rhai::{Dynamic, Map};
use std::future::Future;

use super::context::RequestContext;
use super::in_flight::InFlightSlot;
use super::request::{
    build_req, content_type, parse_body_off_worker, read_body, BodyDeadline, Client,
};
use super::request_id::{self, RequestId};
use super::response::{
    automatic_response, keep_headers, log_script_error, respond, script_error_response,
    server_busy, stream_response,
};
use super::{cors, ops, public, rate_limit, Shared};
use crate::app::{App, Route, Snapshot};
use crate::env::EnvMap;
use crate::error::{error_response, RequestError};
use crate::metrics::{ErrorKind, RouteLabel};
use crate::rate_limit::Decision;
use crate::routes::path::{self, RequestPath};
use crate::routes::Params;
use crate::script::methods::Target;
use crate::script::middleware::Middleware;
use crate::script::{methods, plan, Call, Outcome, Plan, Reply, RouteScript};

/// Largest total size of request headers, as in Node.js (16 KiB); above it: 431.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Every request, whatever its path and method, comes here. The stages, in order: the
/// request's context (read once, first); admission (`--max-in-flight`); the header size;
/// then by path: a route under `/api` ([`api`]: resolve, admit, run), or `public/`; CORS
/// and compression on the way out; one log line, and the request counted in the metrics
/// under its route's pattern. `/_rhapi/` (health, readiness) is answered first, by
/// [`ops::answer`]: outside admission, scripts and middleware, never counted or logged.
pub async fn handle(req: HttpRequest, payload: Payload, server: Data<Shared>) -> HttpResponse {
    if req.path().starts_with(ops::PREFIX) {
        return ops::answer(&req, &server.app).await;
    }
    let id = RequestId::of(req.headers());
    let context = RequestContext::new(&req, &server.app, &id);
    let started = context.started;
    let client = context.client_ip();
    let metrics = &server.app.context.metrics;
    let Some(slot) = server
        .in_flight
        .enter(context.snapshot.settings.max_in_flight)
    else {
        let mut response = server_busy();
        let took = finish(&req, &mut response, started, id, client);
        metrics.request(&RouteLabel::None, req.method(), 503, took);
        return response;
    };
    let mut label = RouteLabel::None;
    let mut response = {
        let mut answering =
            std::pin::pin!(answer(&req, payload, &server, context, slot, &mut label));
        // Each poll under the request's id: the lines logged while it is answered carry it.
        let answering = std::future::poll_fn(|cx| {
            let _scope = crate::logging::RequestScope::enter(&id.text);
            answering.as_mut().poll(cx)
        });
        // A panic must never take a worker down with the connections it serves.
        AssertUnwindSafe(answering)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                let _scope = crate::logging::RequestScope::enter(&id.text);
                tracing::error!(
                    "{} {}: internal error (panic) while answering",
                    req.method(),
                    req.path()
                );
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            })
    };
    let took = finish(&req, &mut response, started, id, client);
    metrics.request(&label, req.method(), response.status().as_u16(), took);
    response
}

/// Every response leaves with its request's id (unless a script set one); then the
/// request's log line. Returns how long the request took.
fn finish(
    req: &HttpRequest,
    response: &mut HttpResponse,
    started: Instant,
    id: RequestId,
    client: Option<IpAddr>,
) -> Duration {
    let took = started.elapsed();
    let RequestId { text, header } = id;
    // A script that set its own `X-Request-Id` keeps it.
    let headers = response.headers_mut();
    if !headers.contains_key(request_id::HEADER) {
        // Moved, not cloned: a clone of a new id's bytes would allocate.
        headers.insert(request_id::HEADER, header);
    }
    crate::logging::request(&crate::logging::RequestLine {
        method: req.method().as_str(),
        path: req.path(),
        status: response.status().as_u16(),
        took,
        id: &text,
        ip: client,
        bytes: match actix_web::body::MessageBody::size(response.body()) {
            actix_web::body::BodySize::Sized(n) => Some(n),
            _ => None,
        },
    });
    took
}

fn header_bytes(req: &HttpRequest) -> usize {
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

async fn answer(
    req: &HttpRequest,
    payload: Payload,
    server: &Shared,
    context: RequestContext,
    slot: InFlightSlot,
    label: &mut RouteLabel,
) -> HttpResponse {
    if header_bytes(req) > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request Header Fields Too Large",
        );
    }
    let settings = Arc::clone(&context.snapshot.settings);
    let mut response = match path::parse(req.path()) {
        RequestPath::Api(segments) => {
            let response = api(req, payload, &server.app, context, &segments, slot, label).await;
            super::compress::apply(req, response).await
        }
        // (`/_rhapi/`, which rhapi answers itself, went to `ops` before admission.)
        RequestPath::NotApi => {
            *label = RouteLabel::Public;
            drop(context);
            public::serve(req, &server.app.dir, &settings.public).await
        }
        RequestPath::Bad => RequestError::BadRequest.response(),
        RequestPath::TrailingSlash(target) => redirect_without_slash(req, target),
    };
    cors::apply(req, &settings.cors, &mut response);
    response
}

/// A request under `/api`, in four stages: [`resolve`] (the route, its preflight, its
/// middleware), [`limit_rate`] (its rate limits), [`admit`] (the method's plan, the body,
/// `req`), [`run`] (the middleware, then the route's function). Each stage may answer on
/// its own.
async fn api(
    req: &HttpRequest,
    payload: Payload,
    app: &App,
    context: RequestContext,
    segments: &[String],
    slot: InFlightSlot,
    label: &mut RouteLabel,
) -> HttpResponse {
    let resolved = match resolve(req, &context.snapshot, segments, label) {
        Ok(resolved) => resolved,
        Err(response) => return *response,
    };
    let limited = match limit_rate(req, app, &context, &resolved.script, segments).await {
        Ok(limited) => limited,
        Err(response) => return *response,
    };
    if resolved.script.accepts_sockets() {
        if super::websocket::is_upgrade(req) {
            let host = context.host(req);
            if !cors::socket_origin_allowed(req, &host, &context.snapshot.settings.cors) {
                return error_response(StatusCode::FORBIDDEN, "Forbidden");
            }
            let prepared = prepare(
                req,
                &context,
                &resolved.script,
                &resolved.params,
                segments,
                &[],
            );
            return match prepared.await {
                Ok((runs, req_value)) => {
                    let app = Arc::clone(&app.context);
                    super::websocket::upgrade(req, payload, context, resolved, runs, req_value, app)
                        .await
                }
                Err(response) => *response,
            };
        }
        if req.method() == actix_web::http::Method::GET
            && !matches!(plan(&resolved.script, req.method()), Plan::Call(_))
        {
            return super::websocket::upgrade_required();
        }
    }
    let mut response = match admit(req, payload, &context, resolved, segments).await {
        Ok(admitted) => {
            // The snapshot is not held while scripts run: a reload frees the old one sooner.
            drop(context);
            run(req, admitted, slot, label).await
        }
        Err(response) => *response,
    };
    if let Some(decision) = limited {
        rate_limit::add_headers(&mut response, &decision);
    }
    response
}

/// The request's rate limits: the `[[rate_limit]]` rules its path matches and its route's
/// `CONFIG.rate_limit`, counted before the body is read or any script runs. `Ok(None)`:
/// none applies; `Ok(Some)`: allowed, with what its headers show; `Err`: the 429 (or a 500
/// when the counters' database failed).
async fn limit_rate(
    req: &HttpRequest,
    app: &App,
    context: &RequestContext,
    script: &RouteScript,
    segments: &[String],
) -> Result<Option<Decision>, Box<HttpResponse>> {
    let settings = &context.snapshot.settings;
    let route = script.config.rate_limit.as_ref();
    if settings.rate_limits.is_empty() && route.is_none() {
        return Ok(None);
    }
    let counted = rate_limit::counters(
        req,
        context.client_ip(),
        &settings.rate_limits,
        route,
        segments,
    );
    if counted.is_empty() {
        return Ok(None);
    }
    let budget = settings.limits.timeout;
    let taken = match rate_limit::take(app, &counted, budget) {
        rate_limit::Taken::Done(taken) => taken,
        // Boxed: the requests that never wait on a database keep a small future.
        rate_limit::Taken::InDatabase(db) => {
            Box::pin(rate_limit::take_in_database(app, counted, db, budget)).await
        }
    };
    match taken {
        Ok(Some(decision)) if !decision.allowed => Err(Box::new(rate_limit::refused(&decision))),
        Ok(decision) => Ok(decision),
        Err(err) => {
            tracing::error!(
                "{} {}: {}",
                req.method(),
                req.path(),
                app.context.redact(&err.to_string())
            );
            Err(Box::new(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            )))
        }
    }
}

/// A request ready to run: `req`, the budget its runs share, what they call.
struct Admitted {
    script: Arc<RouteScript>,
    plan: Plan,
    chain: Vec<Arc<Middleware>>,
    req_value: Dynamic,
    runs: Runs,
    dev: bool,
    /// `[realtime] keep_alive`: how often an idle event stream sends a comment.
    keep_alive: Duration,
}

/// The method's plan, then the body (its size limit and deadline), then `req`. Answers
/// itself an automatic `OPTIONS`/405 without middleware, a body too large or too slow, or
/// a body that does not parse.
async fn admit(
    req: &HttpRequest,
    payload: Payload,
    context: &RequestContext,
    resolved: Resolved,
    segments: &[String],
) -> Result<Admitted, Box<HttpResponse>> {
    let Resolved {
        script,
        params,
        chain,
    } = resolved;
    let snapshot = &context.snapshot;
    let settings = &snapshot.settings;
    let plan = plan(&script, req.method());
    if chain.is_empty() && !matches!(plan, Plan::Call(_)) {
        return Err(Box::new(
            automatic_response(&plan).unwrap_or_else(not_found),
        ));
    }
    let timeout = script.config.timeout.unwrap_or(settings.limits.timeout);
    let body_time = BodyDeadline {
        idle: settings.body_timeout,
        // The whole body within the route's time budget too.
        total: timeout,
    };
    let body_limit = script.config.body_limit.unwrap_or(settings.body_limit);
    // A WebSocket upgrade's payload is the rest of the connection: its body is empty. (Only
    // that one: actix reads the body of any other `Connection: upgrade` request as usual.)
    let body = if req.head().upgrade() && super::websocket::asks_websocket(req) {
        Default::default()
    } else {
        read_body(req, payload, body_limit, body_time)
            .await
            .map_err(|err| Box::new(err.response()))?
    };
    let (runs, req_value) = prepare(req, context, &script, &params, segments, &body).await?;
    Ok(Admitted {
        script,
        plan,
        chain,
        req_value,
        runs,
        dev: settings.is_dev(),
        keep_alive: settings.realtime.keep_alive,
    })
}

/// `req` (from `body`, read already) and what the request's runs share.
async fn prepare(
    req: &HttpRequest,
    context: &RequestContext,
    script: &RouteScript,
    params: &Params,
    segments: &[String],
    body: &[u8],
) -> Result<(Runs, Dynamic), Box<HttpResponse>> {
    let snapshot = &context.snapshot;
    let limits = &snapshot.settings.limits;
    let timeout = script.config.timeout.unwrap_or(limits.timeout);
    let input = ScriptInput {
        req,
        client: Client {
            id: context.id.clone(),
            ip: context.client_ip(),
            protocol: context.protocol(req),
            host: context.host(req),
        },
        decoded_path: decoded_path(segments),
        params,
        body,
    };
    let req_value = input
        .build()
        .await
        .map_err(|err| Box::new(err.response()))?;
    let runs = Runs {
        engine: Arc::clone(snapshot.engine_for(script)),
        env: snapshot.env.clone(),
        // One budget for the whole request: its middleware and its route.
        deadline: Instant::now() + timeout,
        timeout,
        max_memory: limits.max_memory,
        slot: None,
        request_id: context.id.clone(),
    };
    Ok((runs, req_value))
}

/// The middleware chain, outermost first, then the route's function (or its automatic
/// answer); the headers middleware kept go on the response.
async fn run(
    req: &HttpRequest,
    admitted: Admitted,
    slot: InFlightSlot,
    label: &RouteLabel,
) -> HttpResponse {
    // Held by the response (its stream) and by every run until its very end.
    let slot = Arc::new(slot);
    let Admitted {
        script,
        plan,
        chain,
        req_value,
        runs,
        dev,
        keep_alive,
    } = admitted;
    let runs = Runs {
        slot: Some(Arc::clone(&slot)),
        ..runs
    };
    let (req_value, kept) = match runs.passed_middleware(&chain, req_value).await {
        Ok(passed) => passed,
        Err((Outcome::Reply(answered), kept)) => {
            count_error(&answered, label);
            return keep_headers(respond(answered, req, dev, &runs.env.0), kept);
        }
        Err((Outcome::Stream(stream), kept)) => {
            return keep_headers(stream_response(stream, req, slot, keep_alive), kept)
        }
    };
    let response = match plan {
        Plan::Call(target) => match runs.call(script, target).start(req_value).await {
            Outcome::Reply(reply) => {
                count_error(&reply, label);
                respond(reply, req, dev, &runs.env.0)
            }
            Outcome::Stream(stream) => stream_response(stream, req, slot, keep_alive),
        },
        automatic => automatic_response(&automatic).unwrap_or_else(not_found),
    };
    keep_headers(response, kept)
}

/// Counts a run's error in the route's metrics (when they are on).
fn count_error(reply: &Reply, label: &RouteLabel) {
    let RouteLabel::Route(metrics) = label else {
        return;
    };
    let kind = match reply {
        Reply::Timeout(_) => ErrorKind::Timeout,
        Reply::Failed(err) if crate::script::run::is_panic(err) => ErrorKind::Panic,
        Reply::Failed(_) => ErrorKind::Error,
        _ => return,
    };
    metrics.script_error(kind);
}

/// What every run of one request shares: the engine, `env`, the deadline, the memory budget.
pub(super) struct Runs {
    pub engine: Arc<rhai::Engine>,
    pub env: EnvMap,
    deadline: Instant,
    /// The route's time budget (the deadline is the request's; a socket's events get
    /// one each).
    pub timeout: Duration,
    pub max_memory: usize,
    /// The request's in-flight place, held by each run until it has ended.
    slot: Option<Arc<InFlightSlot>>,
    /// `req.id`, which the runs' log lines carry.
    pub request_id: rhai::ImmutableString,
}

impl Runs {
    fn call(&self, script: Arc<RouteScript>, target: Target) -> Call {
        Call {
            engine: Arc::clone(&self.engine),
            script,
            target,
            env: self.env.clone(),
            deadline: self.deadline,
            max_memory: self.max_memory,
            hold: self
                .slot
                .clone()
                .map(|slot| slot as Arc<dyn std::any::Any + Send + Sync>),
            request_id: Some(self.request_id.clone()),
        }
    }

    /// Runs the middleware chain; `Ok`: all of them passed, with `req` as the route gets
    /// it (`req.locals` filled) and the headers they keep.
    pub async fn passed_middleware(
        &self,
        chain: &[Arc<Middleware>],
        req_value: Dynamic,
    ) -> Result<(Dynamic, Vec<(HeaderName, HeaderValue)>), (Outcome, Vec<(HeaderName, HeaderValue)>)>
    {
        let mut locals = Map::new();
        let kept = self.middleware(chain, &req_value, &mut locals).await?;
        let req_value = if chain.is_empty() {
            req_value
        } else {
            with_locals(&req_value, &locals)
        };
        Ok((req_value, kept))
    }

    /// Runs the middleware chain, outermost first, each a coroutine of this worker. `Ok`:
    /// all of them passed, with the headers they keep (`locals` holds what they handed
    /// on); `Err`: the one that answered, with the headers kept before it.
    async fn middleware(
        &self,
        chain: &[Arc<Middleware>],
        req_value: &Dynamic,
        locals: &mut Map,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, (Outcome, Vec<(HeaderName, HeaderValue)>)> {
        let mut kept = Vec::new();
        for middleware in chain {
            let req_value = with_locals(req_value, locals);
            let call = self.call(Arc::clone(&middleware.script), middleware.target());
            match call.start(req_value).await {
                Outcome::Reply(Reply::Passed(passed)) => {
                    if let Some(more) = passed.locals {
                        locals.extend(more);
                    }
                    kept.extend(passed.headers);
                }
                answered => return Err((answered, kept)),
            }
        }
        Ok(kept)
    }
}

/// What an `/api` request runs: its route, the route's parameters, its middleware chain.
pub(super) struct Resolved {
    pub script: Arc<RouteScript>,
    params: Params,
    pub chain: Vec<Arc<Middleware>>,
}

/// The route of an `/api` request (and its metrics, in `label`); or the answer when there
/// is none to run (404, a preflight, a route or middleware that fails to load).
fn resolve(
    req: &HttpRequest,
    snapshot: &Snapshot,
    segments: &[String],
    label: &mut RouteLabel,
) -> Result<Resolved, Box<HttpResponse>> {
    let Some((at, route, params)) = snapshot.routes.lookup_at(segments) else {
        return Err(Box::new(not_found()));
    };
    if let Some(metrics) = snapshot.route_metrics.get(at) {
        *label = RouteLabel::Route(Arc::clone(metrics));
    }
    let settings = &snapshot.settings;
    let script = match route {
        Route::Ready(script) => Arc::clone(script),
        Route::Broken(err) => {
            if let Some(preflight) = cors::preflight(req, &settings.cors, || None) {
                return Err(Box::new(preflight));
            }
            log_script_error(req, err, &snapshot.env.0);
            count_load_error(label);
            return Err(Box::new(script_error_response(
                err,
                settings.is_dev(),
                &snapshot.env.0,
            )));
        }
    };
    if let Some(preflight) = cors::preflight(req, &settings.cors, || methods::allow(&script)) {
        return Err(Box::new(preflight));
    }
    let mut chain = Vec::new();
    for slot in snapshot.middleware_of(&script.file) {
        match slot {
            Ok(middleware) => chain.push(Arc::clone(middleware)),
            Err(err) => {
                log_script_error(req, err, &snapshot.env.0);
                count_load_error(label);
                return Err(Box::new(script_error_response(
                    err,
                    settings.is_dev(),
                    &snapshot.env.0,
                )));
            }
        }
    }
    Ok(Resolved {
        script,
        params,
        chain,
    })
}

/// Counts a route or middleware that failed to load, in the route's metrics.
fn count_load_error(label: &RouteLabel) {
    if let RouteLabel::Route(metrics) = label {
        metrics.script_error(ErrorKind::Load);
    }
}

/// `req` with `req.locals` replaced (each middleware and the route get their own copy).
fn with_locals(req: &Dynamic, locals: &Map) -> Dynamic {
    let mut map = req.clone_cast::<Map>();
    map.insert("locals".into(), Dynamic::from_map(locals.clone()));
    Dynamic::from_map(map)
}

/// What `req` is built from.
struct ScriptInput<'a> {
    req: &'a HttpRequest,
    client: Client,
    decoded_path: String,
    params: &'a Params,
    body: &'a [u8],
}

impl ScriptInput<'_> {
    async fn build(self) -> Result<Dynamic, RequestError> {
        let parsed = parse_body_off_worker(content_type(self.req), self.body).await?;
        build_req(
            self.req,
            self.client,
            &self.decoded_path,
            self.params,
            parsed,
            self.body,
        )
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
