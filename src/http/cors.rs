//! Cross-origin requests from `[cors]` of `rhapi.toml` (docs/reference.md, "CORS"): the
//! `Access-Control-Allow-*` headers of every response to an allowed `Origin`, and the
//! preflight `OPTIONS`, answered before any middleware or route runs.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};

use super::compress::add_vary;
use crate::analysis::METHODS;
use crate::settings::CorsSettings;

/// The value of `Access-Control-Allow-Origin` for this request, if its origin is allowed:
/// `*` when any origin is (never with cookies: `rhapi.toml` refuses `["*"]` with
/// `credentials`), else the origin itself.
fn allowed_origin(req: &HttpRequest, cors: &CorsSettings) -> Option<HeaderValue> {
    if !cors.enabled() {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    if cors.origins.iter().any(|o| o == "*") {
        return (!cors.credentials).then(|| HeaderValue::from_static("*"));
    }
    cors.origins
        .iter()
        .any(|o| o == text)
        .then(|| origin.clone())
}

/// Whether a WebSocket upgrade may go on, by its `Origin` (docs/reference.md,
/// "WebSockets"): browsers send their cookies with an upgrade from any page, so one from a
/// page of another origin (Cross-Site WebSocket Hijacking) is refused unless `[cors]`
/// allows that origin. Clients that are not browsers send no `Origin` and pass.
pub fn socket_origin_allowed(req: &HttpRequest, cors: &CorsSettings) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let same_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .zip(
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok()),
        )
        .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
    same_host || allowed_origin(req, cors).is_some()
}

/// Adds the CORS headers to any response (routes, files, 404s, errors) for an allowed
/// origin.
pub fn apply(req: &HttpRequest, cors: &CorsSettings, response: &mut HttpResponse) {
    // A preflight's 204 carries exactly what [`preflight`] decided.
    let answered_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && response.status() == actix_web::http::StatusCode::NO_CONTENT;
    if !cors.enabled() || answered_preflight {
        return;
    }
    add_vary(response, "Origin");
    let Some(origin) = allowed_origin(req, cors) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if cors.credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`) to a route
/// whose methods are `allow` (`None`: a `handler` route, any method): 204, with the
/// `Access-Control-Allow-*` headers only when origin and method are allowed. `None` when
/// the request is no preflight or CORS is off.
pub fn preflight(
    req: &HttpRequest,
    cors: &CorsSettings,
    allow: impl FnOnce() -> Option<String>,
) -> Option<HttpResponse> {
    if !cors.enabled() || req.method() != Method::OPTIONS {
        return None;
    }
    // Only now: the route's methods are worked out for preflights alone.
    let allow = allow();
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)?
        .to_str()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut response = HttpResponse::NoContent().finish();
    let methods: Vec<String> = match (&cors.methods, allow) {
        (Some(methods), _) => methods.clone(),
        (None, Some(allow)) => allow.split(", ").map(str::to_string).collect(),
        (None, None) => METHODS.iter().map(|m| m.to_string()).collect(),
    };
    let Some(origin) = allowed_origin(req, cors) else {
        add_vary(&mut response, "Origin");
        return Some(response);
    };
    if !methods.contains(&requested) {
        add_vary(&mut response, "Origin");
        return Some(response);
    }
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    let mut insert = |name, value: String| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    };
    insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods.join(", "));
    if !cors.headers.is_empty() {
        insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            cors.headers.join(", "),
        );
    }
    insert(header::ACCESS_CONTROL_MAX_AGE, cors.max_age.to_string());
    if cors.credentials {
        insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true".into());
    }
    add_vary(&mut response, "Origin");
    Some(response)
}
