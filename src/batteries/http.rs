//! `http::`: outgoing HTTP requests with actix's asynchronous client (`awc`): the run
//! suspends while the request is out, so a slow upstream holds no thread. Any status is a
//! result; timeouts, refused connections and bad URLs are errors. Every request is cut at
//! its timeout (default 10 s) and at the request's budget. Redirects are followed here, not
//! by the client, so that what goes to another origin is decided in one place.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use awc::error::{ConnectError, PayloadError, SendRequestError};
use rhai::{Dynamic, Map, Module, NativeCallContext};

use super::{at, budget, script_error, timed_out, ScriptResult};
use crate::executor::{wait, Waited};
use crate::script::res::{encode_value, JSON};

/// Timeout of an outgoing request unless `timeout_ms` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read, in bytes.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Redirects one call follows at most (docs/batteries.md, "Redirects").
const MAX_REDIRECTS: usize = 5;

thread_local! {
    /// One client per worker thread (the client is not `Send`), so connections are kept
    /// alive between requests.
    static CLIENT: awc::Client = new_client();
}

/// A client with TLS (the web's roots, rustls with ring), no limit on connections at once
/// (awc's default is 100: requests in flight are bounded by `--max-in-flight` instead), and
/// no redirects of its own ([`Outgoing::redirect`] follows them).
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
        .disable_redirects()
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

/// Sends one request, following redirects; `opts` may hold `headers` (a map) and
/// `timeout_ms`.
fn send(call: &str, method: &str, url: &str, body: &Dynamic, opts: &Map) -> ScriptResult<Map> {
    let fail = |message: String| script_error(format!("{call}: {message}"));
    let budget = budget()?;
    let requested = requested_timeout(opts).map_err(&fail)?;
    let timeout = requested.min(budget);
    let outgoing = build_request(method, url, body, opts).map_err(&fail)?;
    // The body is read off the run (its allocations are not counted as it arrives), then
    // copied and parsed: at most a quarter of what is left of the run's memory budget.
    let limit = MAX_RESPONSE.min(crate::script::context::memory_left() / 4);
    let client = client();
    let exchange = async move {
        let mut response = outgoing.follow(&client).await?;
        let status = response.status().as_u16();
        let mut headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            crate::http::request::insert_header(&mut headers, name.as_str(), &value);
        }
        let data = response
            .body()
            .limit(limit)
            .await
            .map_err(|err| match err {
                PayloadError::Overflow => Failure::TooLarge(limit),
                other => Failure::Body(other),
            })?;
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
    /// A body over this many bytes.
    TooLarge(usize),
    /// A redirect the call cannot follow (what it points to is not an http(s) URL).
    Redirect(String),
    /// More than [`MAX_REDIRECTS`] in a row.
    TooManyRedirects,
}

/// An outgoing request as it is sent, and as each redirect changes it.
struct Outgoing {
    method: Method,
    url: url::Url,
    /// The script's headers (the client adds its own, `User-Agent`, to each request).
    headers: HeaderMap,
    body: Bytes,
}

/// Headers that describe a body, dropped with the body when a redirect turns the request
/// into a `GET` (as `fetch` does).
const BODY_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LOCATION,
];

impl Outgoing {
    /// Sends the request and follows the redirects it gets, up to [`MAX_REDIRECTS`]: the
    /// final response.
    async fn follow(mut self, client: &awc::Client) -> Result<awc::ClientResponse, Failure> {
        let mut followed = 0;
        loop {
            let mut request = client.request(self.method.clone(), self.url.as_str());
            for (name, value) in &self.headers {
                request.headers_mut().append(name.clone(), value.clone());
            }
            let response = request
                .send_body(self.body.clone())
                .await
                .map_err(Failure::Send)?;
            let Some(location) = redirect_location(&response) else {
                return Ok(response);
            };
            if followed == MAX_REDIRECTS {
                return Err(Failure::TooManyRedirects);
            }
            followed += 1;
            self.redirect(response.status(), &location)?;
        }
    }

    /// Becomes the request a redirect asks for, as browsers and `fetch` make it: `303`
    /// (and `301`/`302` after a `POST`) is a `GET` without a body, `307`/`308` keep the
    /// method and body. Going to another origin drops `Authorization`, `Cookie` and every
    /// header whose value holds a secret of the environment.
    fn redirect(&mut self, status: StatusCode, location: &str) -> Result<(), Failure> {
        let next = self
            .url
            .join(location)
            .ok()
            .filter(|next| matches!(next.scheme(), "http" | "https"))
            .ok_or_else(|| Failure::Redirect("a redirect to a URL that is not http(s)".into()))?;
        let to_get = match status {
            StatusCode::SEE_OTHER => self.method != Method::GET && self.method != Method::HEAD,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => self.method == Method::POST,
            _ => false,
        };
        if to_get {
            self.method = Method::GET;
            self.body = Bytes::new();
            for name in &BODY_HEADERS {
                self.headers.remove(name);
            }
        }
        if next.origin() != self.url.origin() {
            self.headers.remove(header::AUTHORIZATION);
            self.headers.remove(header::PROXY_AUTHORIZATION);
            self.headers.remove(header::COOKIE);
            let secret: Vec<HeaderName> = self
                .headers
                .iter()
                .filter(|(_, value)| {
                    crate::env::holds_secret(&String::from_utf8_lossy(value.as_bytes()))
                })
                .map(|(name, _)| name.clone())
                .collect();
            for name in secret {
                self.headers.remove(name);
            }
        }
        self.url = next;
        Ok(())
    }
}

/// Where a redirect response points, if it is one (a redirect status with a `Location`).
fn redirect_location(response: &awc::ClientResponse) -> Option<String> {
    let redirect = matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    let location = response.headers().get(header::LOCATION)?;
    redirect.then(|| String::from_utf8_lossy(location.as_bytes()).into_owned())
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
fn build_request(method: &str, url: &str, body: &Dynamic, opts: &Map) -> Result<Outgoing, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "bad URL '{url}': it must start with http:// or https://"
        ));
    }
    let uri = awc::http::Uri::try_from(url).map_err(|_| format!("bad URL '{}'", host_of(url)))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("bad URL '{}'", host_of(url)));
    }
    let url = url::Url::parse(url).map_err(|_| format!("bad URL '{}'", host_of(url)))?;
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{method}' is not an HTTP method"))?;
    let (bytes, content_type) = encode_body(body)?;
    let mut headers = HeaderMap::new();
    if let Some(given) = opts.get("headers").filter(|h| !h.is_unit()) {
        let given = given
            .read_lock::<Map>()
            .ok_or_else(|| "headers must be a map".to_string())?;
        for (name, value) in given.iter() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("'{name}' is not a valid header name"))?;
            let value = HeaderValue::from_str(&value.to_string())
                .map_err(|_| format!("the value of header '{name}' is not valid"))?;
            headers.append(name, value);
        }
    }
    if let (Some(content_type), false) = (content_type, headers.contains_key(CONTENT_TYPE)) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    Ok(Outgoing {
        method,
        url,
        headers,
        body: Bytes::from(bytes),
    })
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
        Failure::TooLarge(limit) if *limit < MAX_RESPONSE => format!(
            "{host}: the response is larger than {limit} bytes, a quarter of what is left of \
             the run's memory budget (--max-memory)"
        ),
        Failure::TooLarge(_) => {
            format!("{host}: the response is larger than {MAX_RESPONSE} bytes")
        }
        Failure::Body(other) => format!("{host}: {other}"),
        Failure::Redirect(why) => format!("{host}: {why}"),
        Failure::TooManyRedirects => {
            format!("{host}: more than {MAX_REDIRECTS} redirects (the most http:: follows)")
        }
    }
}
