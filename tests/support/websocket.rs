//! A raw WebSocket client (RFC 6455) for the tests: the handshake, frames as a browser
//! sends them (masked), and the frames a broken client might send (unmasked, fragmented,
//! oversized), read back frame by frame.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Frame opcodes.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame the server sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The code of a close frame (1005 when it has none).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        if self.payload.len() < 2 {
            return 1005;
        }
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }

    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// An open WebSocket connection, or the HTTP answer that refused it.
pub struct Socket {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// What a handshake got: the socket, or the status line and body of the refusal.
pub enum Opened {
    Socket(Socket),
    Refused {
        status: u16,
        head: String,
        body: String,
    },
}

impl Opened {
    pub fn socket(self) -> Socket {
        match self {
            Opened::Socket(socket) => socket,
            Opened::Refused { status, head, body } => {
                panic!("upgrade refused with {status}:\n{head}\n{body}")
            }
        }
    }

    pub fn refused(self) -> (u16, String, String) {
        match self {
            Opened::Refused { status, head, body } => (status, head, body),
            Opened::Socket(_) => panic!("upgrade accepted, refusal expected"),
        }
    }
}

/// Opens a WebSocket to `path` on `port` with extra request headers.
pub fn connect_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Opened {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(super::DEADLINE))
        .expect("timeout");
    let key = base64::engine::general_purpose::STANDARD.encode(rand_bytes::<16>());
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send handshake");
    let mut buffer = Vec::new();
    let end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("read handshake");
        assert!(n > 0, "connection closed during the handshake");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    if status != 101 {
        let response = super::Response::from_bytes(&read_to_end(stream, buffer)).expect("answer");
        return Opened::Refused {
            status,
            head,
            body: response.text(),
        };
    }
    Opened::Socket(Socket {
        stream,
        buffer: buffer[end..].to_vec(),
    })
}

/// Opens a WebSocket to `path` on `port`; panics if refused.
pub fn connect(port: u16, path: &str) -> Socket {
    connect_with(port, path, &[]).socket()
}

/// What is left of a refused upgrade's answer (it has a Content-Length or closes).
fn read_to_end(mut stream: TcpStream, mut buffer: Vec<u8>) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if super::Response::from_bytes(&buffer).is_some() {
            break;
        }
    }
    buffer
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("random");
    bytes
}

/// A frame as a client writes it: masked unless `masked` is false.
pub fn encode(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = rand_bytes::<4>();
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

impl Socket {
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send_raw(&encode(fin, opcode, payload, true));
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, TEXT, text.as_bytes());
    }

    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.send_frame(true, BINARY, bytes);
    }

    /// A close frame with `code` and `reason`.
    pub fn send_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send_frame(true, CLOSE, &payload);
    }

    /// The next frame, or `None` when the connection closed first (or nothing came
    /// within the test deadline).
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.next_frame_within(super::DEADLINE)
    }

    pub fn next_frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some((frame, used)) = parse(&self.buffer) {
                self.buffer.drain(..used);
                return Some(frame);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next data frame's text, answering pings on the way.
    pub fn receive_text(&mut self) -> String {
        loop {
            let frame = self.next_frame().expect("a frame from the server");
            match frame.opcode {
                PING => self.send_frame(true, PONG, &frame.payload),
                TEXT => return frame.text(),
                _ => panic!("expected a text frame, got {frame:?}"),
            }
        }
    }

    /// The server's close frame (skipping data and pings before it).
    pub fn receive_close(&mut self) -> Frame {
        loop {
            let frame = self.next_frame().expect("a close frame from the server");
            if frame.opcode == CLOSE {
                return frame;
            }
        }
    }

    /// Whether the server closed the TCP connection (reads end) within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            self.stream.set_read_timeout(Some(left)).ok();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sets the size of the kernel's receive buffer (a client that reads slowly).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// One server frame from the start of `bytes`, with the bytes it took.
fn parse(bytes: &[u8]) -> Option<(Frame, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    let fin = bytes[0] & 0x80 != 0;
    let opcode = bytes[0] & 0x0F;
    assert_eq!(bytes[1] & 0x80, 0, "a server frame must not be masked");
    let (len, start) = match bytes[1] & 0x7F {
        126 => (
            u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = bytes.get(start..start + len)?.to_vec();
    Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        start + len,
    ))
}
