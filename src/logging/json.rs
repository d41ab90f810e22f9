//! `[log] format = "json"`: one JSON object a line (docs/reference.md, "Behind a proxy,
//! request ids and logs"). Every line has `time`, `level` and `msg`; a request's line adds
//! what it was and how it went, a script's line where it logged from; both carry the
//! request's id. Each string is redacted of the app's secrets and escaped here, so that a
//! line is valid JSON whatever a client, a script or an error put in it.

use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as Timer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::RequestLine;

/// A JSON line under construction: its bytes, and the environment whose secrets every
/// string of it is redacted of (looked up once a line).
pub struct Line {
    pub out: Vec<u8>,
    env: Option<std::sync::Arc<crate::env::EnvVars>>,
}

impl Line {
    /// A line's opening: `{"time":"...","level":"info","msg":"..."`; the caller adds its
    /// fields and [`Line::close`]s it.
    pub fn open(capacity: usize, level: &str, msg: &str) -> Line {
        let mut line = Line {
            out: Vec::with_capacity(capacity),
            env: crate::env::current(),
        };
        line.out.extend_from_slice(b"{\"time\":\"");
        super::timestamp(&mut line.out, SystemTime::now());
        line.out.extend_from_slice(b"\",\"level\":\"");
        line.out.extend_from_slice(level.as_bytes());
        line.out.extend_from_slice(b"\",\"msg\":");
        line.text(msg);
        line
    }

    /// `"text"`, redacted and escaped.
    fn text(&mut self, text: &str) {
        match &self.env {
            Some(env) => string(&mut self.out, &env.redact(text)),
            None => string(&mut self.out, text),
        }
    }

    /// `,"name":"value"`, `value` redacted and escaped.
    pub fn field(&mut self, name: &str, value: &str) {
        self.out.push(b',');
        string(&mut self.out, name);
        self.out.push(b':');
        self.text(value);
    }

    /// `,"name":n`.
    pub fn number(&mut self, name: &str, n: u64) {
        number(&mut self.out, name, n);
    }

    /// Ends the line.
    pub fn close(mut self) -> Vec<u8> {
        self.out.extend_from_slice(b"}\n");
        self.out
    }
}

/// `,"name":n`.
fn number(out: &mut Vec<u8>, name: &str, n: u64) {
    out.push(b',');
    string(out, name);
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// The JSON line of one answered request.
pub fn request(line: &RequestLine) -> Vec<u8> {
    let micros = line.took.as_micros();
    let mut digits = itoa::Buffer::new();
    let mut msg = String::with_capacity(32 + line.path.len());
    for part in [line.method, " ", line.path, " ", digits.format(line.status)] {
        msg.push_str(part);
    }
    let mut out = Line::open(256 + 2 * line.path.len(), "info", &msg);
    out.field("request_id", line.id);
    out.field("method", line.method);
    out.field("path", line.path);
    out.number("status", u64::from(line.status));
    // Milliseconds with microsecond digits, `0.153`, without the formatting machinery.
    let fraction = micros % 1000;
    out.out.extend_from_slice(b",\"duration_ms\":");
    out.out
        .extend_from_slice(digits.format(micros / 1000).as_bytes());
    out.out.push(b'.');
    for digit in [fraction / 100, fraction / 10 % 10, fraction % 10] {
        out.out.push(b'0' + digit as u8);
    }
    match line.bytes {
        Some(bytes) => out.number("bytes", bytes),
        None => out.out.extend_from_slice(b",\"bytes\":null"),
    }
    match line.ip {
        Some(ip) => out.field("ip", &ip_text(ip)),
        None => out.out.extend_from_slice(b",\"ip\":null"),
    }
    out.close()
}

fn ip_text(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// `text` as a JSON string. Besides what JSON requires (`"`, `\`, control characters), DEL,
/// the C1 controls and the line and paragraph separators are escaped too: a line stays one
/// line, and never drives a terminal it is shown on.
pub fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.extend_from_slice(text.as_bytes());
    } else {
        for c in text.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let mut utf8 = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

/// How `tracing`'s events are written: as today in the plain format, as JSON in the other.
pub struct Lines {
    pub plain: Format<Full, Timer>,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !super::is_json() {
            return self.plain.format_event(ctx, writer, event);
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = level_name(*event.metadata().level());
        let mut line = Line::open(128 + fields.message.len(), level, &fields.message);
        for (name, value) in &fields.others {
            line.field(name, value);
        }
        if let Some(id) = super::current_request_id() {
            line.field("request_id", &id);
        }
        writer.write_str(&String::from_utf8_lossy(&line.close()))
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// An event's message and other fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    others: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.others.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.others.push((field.name(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_valid_json_whatever_they_hold() {
        for text in [
            "plain",
            "quote \" backslash \\ newline \n tab \t",
            "\u{0}\u{1f}\u{7f}\u{85}\u{9b}\u{2028}é✓",
            "\u{1b}[31mred",
        ] {
            let json = quoted(text);
            assert!(!json.contains('\n') && !json.contains('\u{1b}'), "{json}");
            let back: String = serde_json::from_str(&json).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn a_request_line_has_every_field() {
        let line = request(&RequestLine {
            method: "GET",
            path: "/api/\"x\"\n",
            status: 404,
            took: std::time::Duration::from_micros(1234),
            id: "abc",
            ip: Some("::ffff:10.0.0.1".parse().unwrap()),
            bytes: Some(21),
        });
        let text = String::from_utf8(line).unwrap();
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["path"], "/api/\"x\"\n");
        assert_eq!(value["status"], 404);
        assert_eq!(value["duration_ms"], 1.234);
        assert_eq!(value["bytes"], 21);
        assert_eq!(value["ip"], "10.0.0.1");
        assert_eq!(value["request_id"], "abc");
        assert_eq!(value["level"], "info");
        assert!(value["time"].as_str().unwrap().ends_with('Z'));
    }
}
