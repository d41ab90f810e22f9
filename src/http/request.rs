//! Where an HTTP request becomes the script's `req`: query, headers, cookies, and the body
//! read within its limit and parsed by its content type.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpRequest;
use futures_util::{FutureExt, StreamExt};
use rhai::{Array, Dynamic, ImmutableString, Map};

use crate::encoding::decode_percent;
use crate::error::RequestError;
use crate::routes::{ParamValue, Params};

/// Most of an announced body's size taken before any of it arrived (a client that announces
/// 1 MB and sends nothing must not hold 1 MB).
const PREALLOCATED: usize = 64 * 1024;

/// How long a body may take: no pause over `idle`, all of it within `total` of the start
/// of its reading.
pub struct BodyDeadline {
    pub idle: Duration,
    pub total: Duration,
}

/// Reads the whole body, refusing it with 413 as soon as it passes `limit` bytes (whether
/// announced by `Content-Length` or sent chunked), and with 408 when it pauses past
/// `time.idle` or is not all in within `time.total`.
pub async fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
    time: BodyDeadline,
) -> Result<Bytes, RequestError> {
    let mut payload = payload.into_inner();
    if matches!(payload, actix_web::dev::Payload::None) {
        return Ok(Bytes::new()); // no body (the parser saw none): nothing to wait for
    }
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(RequestError::PayloadTooLarge);
    }
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0).min(PREALLOCATED));
    let mut deadline = None;
    loop {
        // A chunk already here is taken without a timer (the usual small body arrives
        // with its head).
        let next = match payload.next().now_or_never() {
            Some(next) => next,
            None => {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + time.total);
                let wait = time
                    .idle
                    .min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::timeout(wait, payload.next())
                    .await
                    .map_err(|_| RequestError::BodyTimeout)?
            }
        };
        let Some(chunk) = next else {
            break;
        };
        let chunk = chunk.map_err(|_| RequestError::BadRequest)?;
        if body.len() + chunk.len() > limit {
            return Err(RequestError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `Content-Type` header as sent (empty when absent or not text).
pub fn content_type(req: &HttpRequest) -> &str {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type of a `Content-Type` value, lowercase, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `application/json` or any `*/*+json`.
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// Bodies over this size are parsed on the CPU threads ([`crate::cpu`]): parsing 256 KB of
/// JSON takes about a millisecond.
pub const OFF_WORKER_BODY: usize = 256 * 1024;

/// [`parse_body`], on the CPU threads for a body over [`OFF_WORKER_BODY`] (the worker serves
/// other requests meanwhile).
pub async fn parse_body_off_worker(
    content_type: &str,
    body: &[u8],
) -> Result<Dynamic, RequestError> {
    if body.len() <= OFF_WORKER_BODY {
        return parse_body(content_type, body);
    }
    let (content_type, body) = (content_type.to_string(), body.to_vec());
    crate::cpu::run(move || parse_body(&content_type, &body)).await
}

/// `req.body` by its `Content-Type` header (docs/reference.md, "req"): JSON parsed, forms and multipart to
/// maps, text to strings.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<Dynamic, RequestError> {
    let media_type = &media_type(content_type);
    if is_json(media_type) {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Dynamic::from_map(Map::new()));
        }
        return serde_json::from_slice::<Dynamic>(body).map_err(|_| RequestError::InvalidJson);
    }
    if body.is_empty() {
        return Ok(Dynamic::UNIT);
    }
    if media_type == "application/x-www-form-urlencoded" {
        return Ok(Dynamic::from_map(pairs_to_map(parse_form(body)?)));
    }
    if media_type == "multipart/form-data" {
        let boundary = super::multipart::boundary(content_type).ok_or(RequestError::BadRequest)?;
        return Ok(Dynamic::from_map(super::multipart::parse(&boundary, body)?));
    }
    match std::str::from_utf8(body) {
        Ok(text) => Ok(text.to_string().into()),
        Err(_) if media_type.starts_with("text/") => Err(RequestError::BadRequest),
        Err(_) => Ok(Dynamic::from_blob(body.to_vec())),
    }
}

/// Decodes `a=1&b=x+y&flag` strictly: `+` is a space, every escape must be valid, and every
/// key and value valid UTF-8.
pub fn parse_form(raw: &[u8]) -> Result<Vec<(String, String)>, RequestError> {
    let decode = |part: &[u8]| -> Result<String, RequestError> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes = decode_percent(&spaced).ok_or(RequestError::BadRequest)?;
        String::from_utf8(bytes).map_err(|_| RequestError::BadRequest)
    };
    raw.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |&b| b == b'=');
            let key = decode(halves.next().unwrap_or_default())?;
            let value = decode(halves.next().unwrap_or_default())?;
            Ok((key, value))
        })
        .collect()
}

/// Pairs to a map; a repeated key gives an array of its values.
fn pairs_to_map(pairs: Vec<(String, String)>) -> Map {
    let mut map = Map::new();
    for (key, value) in pairs {
        insert_repeated(&mut map, key, Dynamic::from(value));
    }
    map
}

/// Inserts `key`; a key already there becomes an array of its values, in order (query
/// strings, forms and multipart fields alike).
pub fn insert_repeated(map: &mut Map, key: String, value: Dynamic) {
    match map.get_mut(key.as_str()) {
        None => {
            map.insert(key.into(), value);
        }
        Some(existing) if existing.is_array() => {
            if let Some(mut array) = existing.write_lock::<Array>() {
                array.push(value);
            }
        }
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Dynamic::from_array(vec![first, value]);
        }
    }
}

/// Adds a header to a headers map (lowercase names); a repeated header is joined with
/// `", "`, as Node.js does (request headers and `http::` response headers alike).
pub fn insert_header(headers: &mut Map, name: &str, value: &str) {
    match headers.get_mut(name) {
        Some(existing) => {
            let joined = format!("{existing}, {value}");
            *existing = joined.into();
        }
        None => {
            headers.insert(name.into(), value.into());
        }
    }
}

fn param_value(value: &ParamValue) -> Dynamic {
    match value {
        ParamValue::One(text) => text.clone().into(),
        ParamValue::Many(parts) => {
            Dynamic::from_array(parts.iter().map(|p| p.clone().into()).collect())
        }
    }
}

/// Who sent a request and how it reached the server: `req.id`, `req.ip`, `req.protocol`,
/// `req.host` (see `RequestContext`).
pub struct Client {
    pub id: ImmutableString,
    pub ip: Option<IpAddr>,
    pub protocol: ImmutableString,
    pub host: ImmutableString,
}

/// Builds the `req` object map (docs/reference.md, "req"): `body` parsed, `raw` the bytes
/// as received (`req.raw_body`), `locals` empty (each middleware and the route get their own
/// copy with what middleware handed on).
pub fn build_req(
    http: &HttpRequest,
    client: Client,
    decoded_path: &str,
    params: &Params,
    body: Dynamic,
    raw: &[u8],
) -> Result<Dynamic, RequestError> {
    let mut params_map = Map::new();
    for (name, value) in params {
        params_map.insert(name.as_str().into(), param_value(value));
    }
    let mut query = pairs_to_map(parse_form(http.query_string().as_bytes())?);
    for (name, value) in &params_map {
        query.insert(name.clone(), value.clone());
    }

    let mut headers = Map::new();
    for (name, value) in http.headers() {
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| RequestError::BadRequest)?;
        insert_header(&mut headers, name.as_str(), value);
    }

    let url = http.uri().path_and_query().map_or("/", |p| p.as_str());
    let raw_body = if raw.is_empty() {
        Dynamic::UNIT
    } else {
        Dynamic::from_blob(raw.to_vec())
    };
    let ip = client.ip.map(ip_text).unwrap_or_default();
    // In key order: the map is built in one pass, without a search per key.
    let req = Map::from([
        ("body".into(), body),
        ("cookies".into(), Dynamic::from_map(cookies(http))),
        ("headers".into(), Dynamic::from_map(headers)),
        ("host".into(), client.host.into()),
        ("id".into(), client.id.into()),
        ("ip".into(), ip.into()),
        ("locals".into(), Dynamic::from_map(Map::new())),
        ("method".into(), http.method().as_str().into()),
        ("params".into(), Dynamic::from_map(params_map)),
        ("path".into(), decoded_path.into()),
        ("protocol".into(), client.protocol.into()),
        ("query".into(), Dynamic::from_map(query)),
        ("raw_body".into(), raw_body),
        ("url".into(), url.into()),
    ]);
    Ok(Dynamic::from_map(req))
}

/// The client's address as text. An IPv4 address is written by hand: its `Display` goes
/// through the formatting machinery and costs about a fifth of building the rest of `req`.
fn ip_text(ip: IpAddr) -> ImmutableString {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string().into();
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    std::str::from_utf8(&text[..len]).unwrap_or_default().into()
}

/// `Cookie: a=1; b=2` to a map; values are percent-decoded when that is valid UTF-8.
fn cookies(http: &HttpRequest) -> Map {
    let mut map = Map::new();
    for header in http.headers().get_all(actix_web::http::header::COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            if name.is_empty() || map.contains_key(name) {
                continue;
            }
            let value = decode_percent(value.as_bytes())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| value.to_string());
            map.insert(name.into(), value.into());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_client() -> Client {
        Client {
            id: "id".into(),
            ip: None,
            protocol: "http".into(),
            host: "".into(),
        }
    }

    /// `req` has exactly the fields of the one list that `check`, `types` and the docs read.
    #[test]
    fn req_has_the_fields_of_the_shared_list() {
        let http = actix_web::test::TestRequest::get()
            .uri("/api/x")
            .to_http_request();
        let req = build_req(
            &http,
            no_client(),
            "/api/x",
            &Params::default(),
            Dynamic::UNIT,
            b"",
        )
        .unwrap();
        let keys: Vec<String> = req.cast::<Map>().keys().map(|k| k.to_string()).collect();
        let listed: Vec<&str> = crate::script::shapes::REQ_FIELDS
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(keys, listed);
    }

    /// The `req` table of docs/reference.md (which the language server completes from)
    /// names exactly the fields built here.
    #[test]
    fn req_has_the_documented_fields() {
        let http = actix_web::test::TestRequest::default().to_http_request();
        let req = build_req(&http, no_client(), "/", &Vec::new(), Dynamic::UNIT, b"").unwrap();
        let built: Vec<String> = req.cast::<Map>().keys().map(|k| k.to_string()).collect();
        let mut documented: Vec<String> = crate::analysis::api_docs::req_fields()
            .iter()
            .map(|e| e.name.clone())
            .collect();
        documented.sort();
        assert_eq!(built, documented);
    }

    #[test]
    fn ip_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "1.99.100.9",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip).as_str(), ip.to_string());
        }
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(ip_text(v6).as_str(), "::1");
    }

    #[test]
    fn form_decoding_is_strict() {
        assert_eq!(
            parse_form(b"a=1&b=x+y&flag&c=%E2%9C%93").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("flag".into(), "".into()),
                ("c".into(), "✓".into())
            ]
        );
        assert!(parse_form(b"a=%ff").is_err());
        assert!(parse_form(b"a=%zz").is_err());
    }

    #[test]
    fn repeated_keys_make_arrays() {
        let map = pairs_to_map(parse_form(b"t=a&t=b&t=c").unwrap());
        let tags = map["t"].clone().into_array().unwrap();
        assert_eq!(tags.len(), 3);
    }

    #[test]
    fn bodies_by_content_type() {
        assert!(parse_body("application/json", b"").unwrap().is_map());
        assert!(parse_body("application/json", b"{").is_err());
        assert!(parse_body("application/vnd.api+json", b"[1]")
            .unwrap()
            .is_array());
        assert!(parse_body("text/plain", b"").unwrap().is_unit());
        assert!(parse_body("text/plain", b"hi").unwrap().is_string());
        assert!(parse_body("application/octet-stream", &[0xff, 0])
            .unwrap()
            .is_blob());
        assert!(parse_body("text/plain", &[0xff]).is_err());
    }
}
