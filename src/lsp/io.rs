//! JSON-RPC messages over a byte stream, framed by `Content-Length` headers (LSP's base
//! protocol). Unlike `lsp_server`'s own reader, a malformed or oversized message is not the
//! end of the stream: it becomes an [`Frame::Invalid`] the server answers with an error,
//! and reading goes on with the next message. A message is never read into memory past
//! [`MAX_MESSAGE`] bytes, whatever its header announces.

use std::io::{self, BufRead, Read, Write};

use lsp_server::Message;
use serde_json::{json, Value};

/// The largest message read: a whole source file in a `didOpen` fits many times over.
pub const MAX_MESSAGE: usize = 32 << 20;

/// The longest header line kept; a longer one is malformed.
const MAX_HEADER_LINE: u64 = 1024;

/// JSON-RPC's code for a body that is not JSON.
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC's code for JSON that is not a request, response or notification.
pub const INVALID_REQUEST: i32 = -32600;

/// One framed message, or why it could not be read.
#[derive(Debug)]
pub enum Frame {
    Message(Message),
    /// Answered with an error of `code`; `id` is the request's when it could be read.
    Invalid {
        code: i32,
        message: String,
        id: Option<Value>,
    },
}

impl Frame {
    fn invalid(code: i32, message: impl Into<String>) -> Frame {
        Frame::Invalid {
            code,
            message: message.into(),
            id: None,
        }
    }
}

/// The next frame of `input`; `None` at the end of the stream.
pub fn read_frame(input: &mut impl BufRead) -> io::Result<Option<Frame>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut saw_header = false;
    loop {
        let mut line = String::new();
        let read = input.by_ref().take(MAX_HEADER_LINE).read_line(&mut line);
        let read = match read {
            Ok(read) => read,
            // Not UTF-8: the line's bytes are consumed; the header is malformed.
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                return Ok(Some(Frame::invalid(PARSE_ERROR, "malformed header")));
            }
            Err(err) => return Err(err),
        };
        if read == 0 {
            return Ok(saw_header.then(|| Frame::invalid(PARSE_ERROR, "end of input in a header")));
        }
        saw_header = true;
        if !line.ends_with('\n') {
            return Ok(Some(Frame::invalid(PARSE_ERROR, "header line too long")));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse().map_err(|_| value.trim().to_string()));
            }
        }
    }
    let length = match length {
        None => {
            return Ok(Some(Frame::invalid(
                PARSE_ERROR,
                "no Content-Length header",
            )))
        }
        Some(Err(value)) => {
            let message = format!("Content-Length is not a number: {value:.40}");
            return Ok(Some(Frame::invalid(PARSE_ERROR, message)));
        }
        Some(Ok(length)) => length,
    };
    if length > MAX_MESSAGE {
        // Skipped unread, so the next message is found after it.
        let skipped = io::copy(&mut input.by_ref().take(length as u64), &mut io::sink())?;
        let message = format!("message of {length} bytes: the limit is {MAX_MESSAGE}");
        return Ok((skipped == length as u64).then(|| Frame::invalid(INVALID_REQUEST, message)));
    }
    let mut body = vec![0; length];
    match input.read_exact(&mut body) {
        Ok(()) => Ok(Some(parse(&body))),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

/// A message from a body: JSON, and a request, response or notification.
fn parse(body: &[u8]) -> Frame {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(err) => return Frame::invalid(PARSE_ERROR, format!("not JSON: {err}")),
    };
    let id = value.get("id").cloned();
    match serde_json::from_value::<Message>(value) {
        Ok(message) => Frame::Message(message),
        Err(err) => Frame::Invalid {
            code: INVALID_REQUEST,
            message: format!("not a JSON-RPC request or notification: {err}"),
            id,
        },
    }
}

/// Writes `message` with its header.
pub fn write_message(output: &mut impl Write, message: &Message) -> io::Result<()> {
    message.write(output)
}

/// Writes an error response to `id` (`null` when the request's id is unknown).
pub fn write_error(
    output: &mut impl Write,
    id: Option<Value>,
    code: i32,
    message: &str,
) -> io::Result<()> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id.unwrap_or(Value::Null),
        "error": { "code": code, "message": message },
    })
    .to_string();
    write!(output, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut reader = io::BufReader::new(input);
        std::iter::from_fn(|| read_frame(&mut reader).unwrap()).collect()
    }

    fn framed(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn messages_and_bad_frames_in_one_stream() {
        let good = framed(r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#);
        let input = [
            framed("{not json"),
            framed(r#"{"jsonrpc":"2.0","id":7}"#),
            "Content-Length: 99999999999\r\n\r\n".to_string(),
        ]
        .concat();
        // The huge one swallows what follows (it is short of its announced length).
        let found = frames(input.as_bytes());
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(matches!(
            &found[0],
            Frame::Invalid {
                code: PARSE_ERROR,
                ..
            }
        ));
        assert!(
            matches!(&found[1], Frame::Invalid { code: INVALID_REQUEST, id: Some(id), .. } if id == 7)
        );

        let too_big = format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1);
        let mut input = too_big.into_bytes();
        input.resize(input.len() + MAX_MESSAGE + 1, b'x');
        input.extend_from_slice(framed("[]").as_bytes());
        input.extend_from_slice(b"X-Nothing: 1\r\n\r\n");
        input.extend_from_slice(good.as_bytes());
        let found = frames(&input);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(matches!(
            &found[0],
            Frame::Invalid {
                code: INVALID_REQUEST,
                ..
            }
        ));
        assert!(matches!(
            &found[1],
            Frame::Invalid {
                code: INVALID_REQUEST,
                ..
            }
        ));
        assert!(matches!(
            &found[2],
            Frame::Invalid {
                code: PARSE_ERROR,
                ..
            }
        ));
        assert!(matches!(&found[3], Frame::Message(Message::Request(r)) if r.method == "shutdown"));
    }

    #[test]
    fn error_responses_are_framed() {
        let mut out = Vec::new();
        write_error(&mut out, None, PARSE_ERROR, "bad").unwrap();
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(head, format!("Content-Length: {}", body.len()));
        let value: Value = serde_json::from_str(body).unwrap();
        assert_eq!(value["id"], Value::Null);
        assert_eq!(value["error"]["code"], PARSE_ERROR);
    }
}
