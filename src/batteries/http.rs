//! `http::`: outgoing HTTP requests with actix's asynchronous client (`awc`): the run
//! suspends while the request is out, so a slow upstream holds no thread. Any status is a
//! result; timeouts, refused connections and bad URLs are errors. Every request is cut at
//! its timeout (default 10 s) and at the request's budget.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::Method;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use rhai::{Dynamic, Map, Module, NativeCallContext};

use super::{at, budget, script_error, timed_out, ScriptResult};
use crate::executor::{wait, Waited};
use crate::script::response::{encode_value, JSON};

/// Timeout of an outgoing request unless `timeout_ms` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read, in bytes.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

thread_local! {
    /// One client per worker thread (the client is not `Send`), so connections are kept
    /// alive between requests.
    static CLIENT: awc::Client = new_client();
}

/// A client with TLS (the web's roots, rustls with ring), no limit on connections at once
/// (awc's default is 100: requests in flight are bounded by `--max-in-flight` instead), and
/// redirects followed as browsers and `fetch` do.
fn new_client() -> awc::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let connector = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => {
            let config = builder.with_root_certificates(roots).with_no_client_auth();
            awc::Connector::new().rustls_0_23(Arc::new(config))
        }
        Err(_) => awc::Connector::new(),
    };
    awc::Client::builder()
        .connector(connector.limit(0))
        .add_default_header((
            actix_web::http::header::USER_AGENT,
            concat!("rhapi/", env!("CARGO_PKG_VERSION")),
        ))
        .disable_timeout()
        .finish()
}

/// The worker's client inside a run; a client of its own outside one (each such call runs
/// on a runtime of its own, where the worker's connections do not live).
fn client() -> awc::Client {
    if crate::executor::in_run() {
        CLIENT.with(Clone::clone)
    } else {
        new_client()
    }
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
    let (request, bytes) = build_request(method, url, body, opts).map_err(&fail)?;
    let exchange = async move {
        let mut response = request.send_body(bytes).await.map_err(Failure::Send)?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            crate::http::request::insert_header(&mut headers, name.as_str(), &value);
        }
        let data = response
            .body()
            .limit(MAX_RESPONSE)
            .await
            .map_err(Failure::Body)?;
        Ok((status, headers, data.to_vec()))
    };
    match wait(actix_web::rt::time::timeout(timeout, exchange)) {
        Waited::Done(Ok(Ok((status, headers, data)))) => Ok(response_map(status, headers, data)),
        Waited::Done(Ok(Err(failure))) => Err(fail(describe(&failure, url))),
        Waited::Done(Err(_)) if budget < requested => Err(timed_out()),
        Waited::Done(Err(_)) => Err(fail(format!(
            "{}: timed out after {} ms",
            host_of(url),
            timeout.as_millis()
        ))),
        Waited::TimedOut => Err(timed_out()),
    }
}

/// Why an exchange failed.
enum Failure {
    Send(SendRequestError),
    Body(PayloadError),
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
) -> Result<(awc::ClientRequest, Vec<u8>), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "bad URL '{url}': it must start with http:// or https://"
        ));
    }
    let uri = awc::http::Uri::try_from(url).map_err(|_| format!("bad URL '{}'", host_of(url)))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("bad URL '{}'", host_of(url)));
    }
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{method}' is not an HTTP method"))?;
    let mut request = client().request(method, uri);
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
            has_content_type |= name == CONTENT_TYPE;
            request = request.append_header((name, value));
        }
    }
    if let (Some(content_type), false) = (content_type, has_content_type) {
        request = request.insert_header((CONTENT_TYPE, content_type));
    }
    Ok((request, bytes))
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

/// `scheme://host:port` of a URL: what messages name (never the path or query, which may
/// carry a key, nor a password).
fn host_of(url: &str) -> String {
    url.split_once("://")
        .map(|(scheme, rest)| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{authority}")
        })
        .unwrap_or_default()
}

/// What went wrong, naming the host only.
fn describe(failure: &Failure, url: &str) -> String {
    let host = host_of(url);
    match failure {
        Failure::Send(SendRequestError::Connect(err)) => match err {
            ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved => {
                format!("{host}: host not found")
            }
            ConnectError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("{host}: connection refused")
            }
            ConnectError::Timeout => format!("{host}: timed out connecting"),
            _ => format!("{host}: connection failed"),
        },
        Failure::Send(SendRequestError::Url(_) | SendRequestError::Http(_)) => {
            format!("bad URL '{host}'")
        }
        Failure::Send(SendRequestError::Timeout) => format!("{host}: timed out"),
        Failure::Send(other) => format!("{host}: {other}"),
        Failure::Body(PayloadError::Overflow) => {
            format!("{host}: the response is larger than {MAX_RESPONSE} bytes")
        }
        Failure::Body(other) => format!("{host}: {other}"),
    }
}
