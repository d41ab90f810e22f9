//! `http::`: outgoing HTTP requests with a small blocking client (scripts that use it run on
//! the script pool). Any status is a result; timeouts, refused connections and bad URLs are
//! errors. Every request is cut at its timeout (default 10 s) and at the request's budget.

use std::sync::OnceLock;
use std::time::Duration;

use rhai::{Dynamic, Map, Module, NativeCallContext};
use ureq::http::{HeaderName, HeaderValue, Method, Request};
use ureq::Agent;

use super::{at, budget, script_error, timed_out, ScriptResult};
use crate::script::response::{encode_value, JSON};

/// Timeout of an outgoing request unless `timeout_ms` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read, in bytes.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// One client for the process, so connections are kept alive between requests.
fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("rhapi/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
}

/// The `http` module.
pub fn module() -> Module {
    let mut module = Module::new();
    module.set_native_fn("get", |ctx: NativeCallContext, url: &str| {
        at(
            &ctx,
            send("http::get", "GET", url, &Dynamic::UNIT, &Map::new()),
        )
    });
    module.set_native_fn("get", |ctx: NativeCallContext, url: &str, opts: Map| {
        at(&ctx, send("http::get", "GET", url, &Dynamic::UNIT, &opts))
    });
    module.set_native_fn(
        "post",
        |ctx: NativeCallContext, url: &str, body: Dynamic| {
            at(&ctx, send("http::post", "POST", url, &body, &Map::new()))
        },
    );
    module.set_native_fn(
        "post",
        |ctx: NativeCallContext, url: &str, body: Dynamic, opts: Map| {
            at(&ctx, send("http::post", "POST", url, &body, &opts))
        },
    );
    module.set_native_fn("request", |ctx: NativeCallContext, spec: Map| {
        let text = |key: &str| spec.get(key).and_then(|v| v.clone().into_string().ok());
        let method = text("method").unwrap_or_else(|| "GET".into());
        let Some(url) = text("url") else {
            return at(
                &ctx,
                Err(script_error("http::request: url is required (a string)")),
            );
        };
        let body = spec.get("body").cloned().unwrap_or(Dynamic::UNIT);
        at(&ctx, send("http::request", &method, &url, &body, &spec))
    });
    module
}

/// Sends one request; `opts` may hold `headers` (a map) and `timeout_ms`.
fn send(call: &str, method: &str, url: &str, body: &Dynamic, opts: &Map) -> ScriptResult<Map> {
    let fail = |message: String| script_error(format!("{call}: {message}"));
    let budget = budget()?;
    let requested = requested_timeout(opts).map_err(&fail)?;
    let timeout = requested.min(budget);
    let request = build_request(method, url, body, opts).map_err(&fail)?;
    let request = agent()
        .configure_request(request)
        .timeout_global(Some(timeout))
        .build();
    match agent().run(request).and_then(read_response) {
        Ok((status, headers, data)) => Ok(response_map(status, headers, data)),
        Err(ureq::Error::Timeout(_)) if budget < requested => Err(timed_out()),
        Err(err) => Err(fail(describe(&err, url, timeout))),
    }
}

/// `timeout_ms` of the options, or the default.
fn requested_timeout(opts: &Map) -> Result<Duration, String> {
    match opts.get("timeout_ms") {
        None => Ok(DEFAULT_TIMEOUT),
        Some(v) if v.is_unit() => Ok(DEFAULT_TIMEOUT),
        Some(v) => match v.as_int() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms as u64)),
            _ => Err("timeout_ms must be a positive integer".into()),
        },
    }
}

/// The request: method, URL, the script's headers, and the body with its default type.
fn build_request(
    method: &str,
    url: &str,
    body: &Dynamic,
    opts: &Map,
) -> Result<Request<Vec<u8>>, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "bad URL '{url}': it must start with http:// or https://"
        ));
    }
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{method}' is not an HTTP method"))?;
    let mut request = Request::builder().method(method).uri(url);
    let (bytes, content_type) = encode_body(body)?;
    let mut has_content_type = false;
    if let Some(headers) = opts.get("headers").filter(|h| !h.is_unit()) {
        let headers = headers
            .read_lock::<Map>()
            .ok_or_else(|| "headers must be a map".to_string())?;
        for (name, value) in headers.iter() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("'{name}' is not a valid header name"))?;
            let value = HeaderValue::from_str(&value.to_string())
                .map_err(|_| format!("the value of header '{name}' is not valid"))?;
            has_content_type |= name == ureq::http::header::CONTENT_TYPE;
            request = request.header(name, value);
        }
    }
    if let (Some(content_type), false) = (content_type, has_content_type) {
        request = request.header(ureq::http::header::CONTENT_TYPE, content_type);
    }
    request.body(bytes).map_err(|_| format!("bad URL '{url}'"))
}

/// Status, headers (lowercase names, repeats joined) and the body within its limit.
fn read_response(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<(u16, Map, Vec<u8>), ureq::Error> {
    let status = response.status().as_u16();
    let mut headers = Map::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        crate::http::request::insert_header(&mut headers, name.as_str(), &value);
    }
    let data = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()?;
    Ok((status, headers, data))
}

/// `#{ status, headers, body, json }`: `body` a string when UTF-8 (else a blob), `json`
/// parsed for JSON content types.
fn response_map(status: u16, headers: Map, data: Vec<u8>) -> Map {
    let is_json = headers
        .get("content-type")
        .map(|v| crate::http::request::media_type(&v.to_string()))
        .is_some_and(|media| crate::http::request::is_json(&media));
    let json = if is_json {
        serde_json::from_slice::<Dynamic>(&data).unwrap_or(Dynamic::UNIT)
    } else {
        Dynamic::UNIT
    };
    let body = match String::from_utf8(data) {
        Ok(text) => text.into(),
        Err(err) => Dynamic::from_blob(err.into_bytes()),
    };
    let mut map = Map::new();
    map.insert("status".into(), Dynamic::from_int(status.into()));
    map.insert("headers".into(), Dynamic::from_map(headers));
    map.insert("body".into(), body);
    map.insert("json".into(), json);
    map
}

/// The bytes to send and their default content type, as `res.send` encodes a value. JSON
/// goes out as plain `application/json`: the type has no charset parameter (RFC 8259).
fn encode_body(body: &Dynamic) -> Result<(Vec<u8>, Option<&'static str>), String> {
    let (bytes, content_type) = encode_value(body.clone()).map_err(|err| err.to_string())?;
    let content_type = content_type.map(|t| if t == JSON { "application/json" } else { t });
    Ok((bytes, content_type))
}

/// What went wrong, naming the host (never the path or query, which may carry a key).
fn describe(err: &ureq::Error, url: &str, timeout: Duration) -> String {
    let host = url
        .split_once("://")
        .map(|(scheme, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{authority}")
        })
        .unwrap_or_default();
    match err {
        ureq::Error::Timeout(_) => format!("{host}: timed out after {} ms", timeout.as_millis()),
        ureq::Error::HostNotFound => format!("{host}: host not found"),
        ureq::Error::ConnectionFailed => format!("{host}: connection failed"),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("{host}: connection refused")
        }
        ureq::Error::Io(io) => format!("{host}: {io}"),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => format!("bad URL '{host}'"),
        ureq::Error::BodyExceedsLimit(_) => {
            format!("{host}: the response is larger than {MAX_RESPONSE} bytes")
        }
        other => format!("{host}: {other}"),
    }
}
