//! The `res` object scripts answer with: `res.status(200).json(...)` and friends.

use std::sync::{Arc, Mutex, MutexGuard};

use http::header::{HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use rhai::{Dynamic, Engine, Map};

use super::ScriptResult;

pub const JSON: &str = "application/json; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const BINARY: &str = "application/octet-stream";
pub const EVENT_STREAM: &str = "text/event-stream";

/// A response a script sent (or, without a body, only shaped with status and headers).
#[derive(Debug, Default)]
pub struct ScriptResponse {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
    /// Content type to set unless the script set its own.
    pub content_type: Option<&'static str>,
    /// Sent with `json`/`send`: gets an `ETag` and may answer 304.
    pub etag: bool,
    /// Sent with `res.subscribe`: the body is the event stream of these publishes.
    pub subscription: Option<crate::realtime::Subscription>,
}

#[derive(Default)]
struct State {
    status: Option<u16>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `Some` once a sender ran.
    sent: Option<(Vec<u8>, Option<&'static str>, bool)>,
    /// A status, header or cookie was set.
    touched: bool,
    /// Where a streamed response is (see `stream.rs`).
    stream: Streaming,
    /// What `res.subscribe` subscribed, until the response goes out.
    subscription: Option<crate::realtime::Subscription>,
}

/// A response's streaming state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Streaming {
    /// Nothing written yet.
    #[default]
    No,
    /// The head and some chunks went out; more may follow.
    Open,
    /// `res.end()` closed it.
    Ended,
}

/// What a run hands out when its sent response leaves before its end: the `Reply`.
pub(super) fn handed_out(res: Res) -> Box<dyn std::any::Any> {
    let reply = res
        .take_sent()
        .map_or(super::run::Reply::Streamed, super::run::Reply::Sent);
    // Still sent for the rest of the run: a second sender, a status or a header after it
    // is the script error it would be before the pause, and an error after it is logged
    // as one after the response.
    res.state().sent = Some((Vec::new(), None, false));
    Box::new(reply)
}

/// The `res` handle. Cloning shares the same response, which is what makes chaining work.
#[derive(Clone, Default)]
pub struct Res(Arc<Mutex<State>>);

impl Res {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the response went out as a stream (`res.write` / `res.event`).
    pub fn is_streaming(&self) -> bool {
        self.state().stream != Streaming::No
    }

    /// The streaming state, and the head to send when the stream is not open yet (it is
    /// marked open: status and headers are fixed from now on).
    pub(super) fn open_stream(
        &self,
        default_headers: &[(&'static str, &'static str)],
        default_type: &'static str,
    ) -> ScriptResult<Option<ScriptResponse>> {
        let mut state = self.state();
        match state.stream {
            Streaming::Open => return Ok(None),
            Streaming::Ended => {
                return Err("res.write(): the stream was ended with res.end()".into())
            }
            Streaming::No => {}
        }
        if state.sent.is_some() {
            return Err("res.write(): a response was already sent".into());
        }
        state.stream = Streaming::Open;
        let mut headers = std::mem::take(&mut state.headers);
        for (name, value) in default_headers {
            let name = HeaderName::from_static(name);
            if !headers.iter().any(|(n, _)| *n == name) {
                headers.push((name, HeaderValue::from_static(value)));
            }
        }
        Ok(Some(ScriptResponse {
            status: state.status.unwrap_or(200),
            headers,
            body: Vec::new(),
            content_type: Some(default_type),
            etag: false,
            subscription: None,
        }))
    }

    /// The response, only if a sender (`json`, `send`, `redirect`, `end`) ran.
    pub fn take_sent(&self) -> Option<ScriptResponse> {
        self.state().sent.as_ref()?;
        self.take()
    }

    /// The response as the script left it; `None` if `res` was never used.
    pub fn take(&self) -> Option<ScriptResponse> {
        let mut state = self.state();
        if !state.touched && state.sent.is_none() {
            return None;
        }
        let (body, content_type, etag) = state.sent.take().unwrap_or_default();
        Some(ScriptResponse {
            status: state.status.unwrap_or(200),
            headers: std::mem::take(&mut state.headers),
            body,
            content_type,
            etag,
            subscription: state.subscription.take(),
        })
    }

    /// The state for a change before sending; after sending, changes are script errors
    /// (the response already sent is the one delivered).
    fn unsent(&self, caller: &str) -> ScriptResult<MutexGuard<'_, State>> {
        let state = self.state();
        if state.stream != Streaming::No {
            return Err(format!(
                "res.{caller}(): the response is streaming; its status and headers went out with the first write"
            )
            .into());
        }
        if state.sent.is_some() {
            return Err(format!(
                "res.{caller}(): the response was already sent; it can no longer change"
            )
            .into());
        }
        Ok(state)
    }

    fn set_status(&self, code: i64) -> ScriptResult<()> {
        if !(200..=999).contains(&code) {
            return Err(format!("res.status({code}): a status must be between 200 and 999").into());
        }
        let mut state = self.unsent("status")?;
        state.status = Some(code as u16);
        state.touched = true;
        Ok(())
    }

    fn add_header(&self, caller: &str, name: &str, value: &str, replace: bool) -> ScriptResult<()> {
        let header = HeaderName::try_from(name)
            .map_err(|_| format!("'{name}' is not a valid header name"))?;
        let value = HeaderValue::try_from(value).map_err(|_| {
            format!("the value of header '{name}' has characters a header cannot carry")
        })?;
        let mut state = self.unsent(caller)?;
        if replace {
            state.headers.retain(|(n, _)| *n != header);
        }
        state.headers.push((header, value));
        state.touched = true;
        Ok(())
    }

    fn set_header(&self, name: &str, value: Dynamic) -> ScriptResult<()> {
        if value.is_array() {
            let values = value.into_array().unwrap_or_default();
            let mut first = true;
            for item in values {
                self.add_header("set_header", name, &item.to_string(), first)?;
                first = false;
            }
            Ok(())
        } else {
            self.add_header("set_header", name, &value.to_string(), true)
        }
    }

    fn finish(
        &self,
        caller: &str,
        body: Vec<u8>,
        content_type: Option<&'static str>,
        etag: bool,
    ) -> ScriptResult<()> {
        let mut state = self.state();
        match state.stream {
            Streaming::No => {}
            Streaming::Open if caller == "end" => {
                state.stream = Streaming::Ended;
                drop(state);
                super::stream::end();
                return Ok(());
            }
            _ => {
                return Err(format!(
                    "res.{caller}(): the response is streaming; use res.write or res.end"
                )
                .into())
            }
        }
        if state.sent.is_some() {
            return Err(format!(
                "res.{caller}(): a response was already sent; only the first one is delivered"
            )
            .into());
        }
        state.sent = Some((body, content_type, etag));
        drop(state);
        // The response goes out at the script's next pause (a wait, or its slice's end),
        // and the code after the sender runs after that; a script that ends first sends
        // it at its end, as before (docs/reference.md, "After the response").
        super::context::sent(self);
        Ok(())
    }

    fn json(&self, value: Dynamic) -> ScriptResult<()> {
        let body = to_json_owned(value)?;
        self.finish("json", body, Some(JSON), true)
    }

    fn send(&self, value: Dynamic) -> ScriptResult<()> {
        let (body, content_type) = encode_value(value)?;
        self.finish("send", body, content_type, true)
    }

    /// `res.subscribe(topics)` once the topics are subscribed: sends an event stream of
    /// their publishes, with `cache-control: no-cache` unless the script set its own.
    pub fn subscribe(&self, subscription: crate::realtime::Subscription) -> ScriptResult<()> {
        {
            let mut state = self.unsent("subscribe")?;
            let cache_control = http::header::CACHE_CONTROL;
            if !state.headers.iter().any(|(name, _)| *name == cache_control) {
                state
                    .headers
                    .push((cache_control, HeaderValue::from_static("no-cache")));
            }
            state.subscription = Some(subscription);
        }
        self.finish("subscribe", Vec::new(), Some(EVENT_STREAM), false)
    }

    fn redirect(&self, status: i64, url: &str) -> ScriptResult<()> {
        if !(300..=399).contains(&status) {
            return Err(
                format!("res.redirect({status}, ...): a redirect status must be 3xx").into(),
            );
        }
        drop(self.unsent("redirect")?);
        self.set_status(status)?;
        self.add_header("redirect", "location", url, true)?;
        self.finish("redirect", Vec::new(), None, false)
    }

    fn cookie(&self, name: &str, value: &str, options: Option<Map>) -> ScriptResult<()> {
        let header = set_cookie(name, value, options.unwrap_or_default())?;
        self.add_header("cookie", "set-cookie", &header, false)
    }

    /// Registers `res` and its methods with the engine.
    pub fn register(engine: &mut Engine) {
        engine.register_type_with_name::<Res>("Response");
        engine
            .register_fn("status", |res: &mut Res, code: i64| -> ScriptResult<Res> {
                res.set_status(code)?;
                Ok(res.clone())
            })
            .register_fn("json", |res: &mut Res, value: Dynamic| res.json(value))
            .register_fn("send", |res: &mut Res, value: Dynamic| res.send(value))
            .register_fn("end", |res: &mut Res| {
                res.finish("end", Vec::new(), None, false)
            })
            .register_fn("redirect", |res: &mut Res, url: &str| {
                res.redirect(307, url)
            })
            .register_fn("redirect", |res: &mut Res, status: i64, url: &str| {
                res.redirect(status, url)
            })
            .register_fn(
                "cookie",
                |res: &mut Res, name: &str, value: &str| -> ScriptResult<Res> {
                    res.cookie(name, value, None)?;
                    Ok(res.clone())
                },
            )
            .register_fn(
                "cookie",
                |res: &mut Res, name: &str, value: &str, options: Map| -> ScriptResult<Res> {
                    res.cookie(name, value, Some(options))?;
                    Ok(res.clone())
                },
            )
            .register_fn("to_string", |_: &mut Res| "res".to_string())
            .register_fn("to_debug", |_: &mut Res| "res".to_string());
        for name in ["set_header", "setHeader"] {
            engine.register_fn(
                name,
                |res: &mut Res, header: &str, value: Dynamic| -> ScriptResult<Res> {
                    res.set_header(header, value)?;
                    Ok(res.clone())
                },
            );
        }
    }
}

/// Serialises a script value to JSON (`()` is `null`).
pub fn to_json(value: &Dynamic) -> ScriptResult<Vec<u8>> {
    // Within the run's memory budget: the text stops growing past what is left of it.
    match write_json_within(value, crate::script::context::memory_left())? {
        Some(text) => Ok(text),
        None => Err(json_over_budget()),
    }
}

/// JSON text over this many bytes is written on the CPU threads (it takes milliseconds),
/// while the run waits.
const JSON_OFF_WORKER: usize = 256 * 1024;

/// [`to_json`] of a value the caller gives up: written here up to [`JSON_OFF_WORKER`]
/// bytes; a longer text is written again, whole, on the CPU threads.
pub fn to_json_owned(value: Dynamic) -> ScriptResult<Vec<u8>> {
    let left = crate::script::context::memory_left();
    if let Some(text) = write_json_within(&value, left.min(JSON_OFF_WORKER))? {
        return Ok(text);
    }
    if left <= JSON_OFF_WORKER {
        return Err(json_over_budget());
    }
    crate::batteries::off_worker(move || write_json_within(&value, left))??
        .ok_or_else(json_over_budget)
}

/// The JSON text of `value` if it takes at most `max` bytes (`None` past it: the writing
/// stops there, so a text over the budget is never held whole).
fn write_json_within(value: &Dynamic, max: usize) -> Result<Option<Vec<u8>>, String> {
    json_within(value, max)
        .map_err(|err| format!("cannot send a {} as JSON: {err}", value.type_name()))
}

/// The JSON text of `value` if it takes at most `max` bytes; `None` past it, where the
/// writing stops. `Err` is the value's own error (a type JSON cannot hold).
pub fn json_within<T: serde::Serialize + ?Sized>(
    value: &T,
    max: usize,
) -> Result<Option<Vec<u8>>, serde_json::Error> {
    struct Within {
        out: Vec<u8>,
        max: usize,
    }
    impl std::io::Write for Within {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_all(buf).map(|()| buf.len())
        }
        // What serde_json calls for each piece of text: one comparison more than a `Vec`.
        #[inline]
        fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
            if self.out.len() + buf.len() > self.max {
                return Err(std::io::ErrorKind::OutOfMemory.into());
            }
            self.out.extend_from_slice(buf);
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut within = Within {
        out: Vec::with_capacity(128),
        max,
    };
    match serde_json::to_writer(&mut within, value) {
        Ok(()) => Ok(Some(within.out)),
        Err(err) if err.is_io() => Ok(None),
        Err(err) => Err(err),
    }
}

fn json_over_budget() -> Box<rhai::EvalAltResult> {
    "Out of memory: the JSON text needs more than is left of the run's memory budget \
     (--max-memory)"
        .into()
}

/// The body and content type of a value: what `res.send(value)` and a returned value
/// answer, and what `http::post(url, value)` sends. Strings as text, blobs as bytes,
/// anything else as JSON; `()` is no body.
pub fn encode_value(value: Dynamic) -> ScriptResult<(Vec<u8>, Option<&'static str>)> {
    if value.is_unit() {
        Ok((Vec::new(), None))
    } else if value.is_string() {
        Ok((
            value.into_string().unwrap_or_default().into_bytes(),
            Some(TEXT),
        ))
    } else if value.is_blob() {
        Ok((value.into_blob().unwrap_or_default(), Some(BINARY)))
    } else {
        Ok((to_json_owned(value)?, Some(JSON)))
    }
}

/// Bytes a cookie value may not carry as they are (RFC 6265 cookie-octet).
const COOKIE_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

fn set_cookie(name: &str, value: &str, options: Map) -> ScriptResult<String> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if !valid_name {
        return Err(format!("res.cookie: '{name}' is not a valid cookie name").into());
    }
    let mut header = format!("{name}={}", utf8_percent_encode(value, COOKIE_VALUE));
    let mut path = Some("/".to_string());
    for (key, option) in options {
        let text = option.to_string();
        let attribute_safe = !text.contains([';', '\r', '\n']);
        match key.as_str() {
            "max_age" | "maxAge" => {
                let seconds = option
                    .as_int()
                    .map_err(|_| "res.cookie: max_age must be a number of seconds")?;
                header.push_str(&format!("; Max-Age={seconds}"));
            }
            "path" if attribute_safe => path = Some(text),
            "domain" if attribute_safe => header.push_str(&format!("; Domain={text}")),
            "secure" => {
                if option.as_bool().unwrap_or(false) {
                    header.push_str("; Secure");
                }
            }
            "http_only" | "httpOnly" => {
                if option.as_bool().unwrap_or(false) {
                    header.push_str("; HttpOnly");
                }
            }
            "same_site" | "sameSite" => {
                let value = match text.to_ascii_lowercase().as_str() {
                    "strict" => "Strict",
                    "lax" => "Lax",
                    "none" => "None",
                    _ => return Err("res.cookie: same_site must be \"Strict\", \"Lax\" or \"None\"".into()),
                };
                header.push_str(&format!("; SameSite={value}"));
            }
            _ => {
                return Err(format!(
                    "res.cookie: unknown or invalid option '{key}' (use max_age, path, domain, secure, http_only, same_site)"
                )
                .into())
            }
        }
    }
    if let Some(path) = path {
        header.push_str(&format!("; Path={path}"));
    }
    Ok(header)
}
