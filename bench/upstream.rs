//! A slow upstream for bench/concurrency.py: answers every HTTP/1.1 request after a fixed delay
//! with a small JSON body, `{"ok":true,"delay_ms":N}`. One task per connection on a
//! single-threaded tokio runtime, keep-alive (requests on one connection are answered in
//! order), so it holds tens of thousands of waiting requests on one core.
//!
//! Run: cargo run --release --example upstream -- --port 9100 --delay-ms 500
//!
//! It raises its own RLIMIT_NOFILE soft limit to the hard limit (through libc's setrlimit,
//! which std links anyway) and listens with a backlog of 65,535 (capped by
//! net.core.somaxconn). It prints `listening on 127.0.0.1:PORT` once it accepts.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest request head (request line + headers) accepted before the connection is dropped.
const MAX_HEAD: usize = 64 * 1024;

#[repr(C)]
struct RLimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn getrlimit(resource: i32, rlim: *mut RLimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const RLimit) -> i32;
}

/// RLIMIT_NOFILE on Linux.
const RLIMIT_NOFILE: i32 = 7;

/// Raises the soft open-files limit to the hard one; returns the limit now in force.
fn raise_nofile() -> u64 {
    let mut lim = RLimit { cur: 0, max: 0 };
    // SAFETY: plain libc calls on a properly laid out struct rlimit (two rlim_t = u64).
    unsafe {
        if getrlimit(RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.cur < lim.max {
            let want = RLimit {
                cur: lim.max,
                max: lim.max,
            };
            if setrlimit(RLIMIT_NOFILE, &want) == 0 {
                return lim.max;
            }
        }
    }
    lim.cur
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of `name` (lowercase) in a request head, if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn serve(mut sock: TcpStream, delay: Duration, body: &'static str) {
    let _ = sock.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until one full request head is buffered.
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let http10 = head
            .split("\r\n")
            .next()
            .is_some_and(|l| l.ends_with("HTTP/1.0"));
        let conn = header(&head, "connection").map(str::to_ascii_lowercase);
        let close =
            conn.as_deref() == Some("close") || (http10 && conn.as_deref() != Some("keep-alive"));
        // Skip a request body, if any (Content-Length only: a stub, not a server).
        let len: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + len);

        tokio::time::sleep(delay).await;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{}",
            body.len(),
            if close { "connection: close\r\n" } else { "" },
            body
        );
        if sock.write_all(resp.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut port: u16 = 9100;
    let mut delay_ms: u64 = 500;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--port" => port = value("--port") as u16,
            "--delay-ms" => delay_ms = value("--delay-ms"),
            other => panic!("unknown argument {other:?} (use --port N --delay-ms MS)"),
        }
    }
    let nofile = raise_nofile();
    let body: &'static str =
        Box::leak(format!("{{\"ok\":true,\"delay_ms\":{delay_ms}}}").into_boxed_str());
    let delay = Duration::from_millis(delay_ms);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let sock = TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(([127, 0, 0, 1], port).into())?;
        let listener = sock.listen(65_535)?;
        println!(
            "listening on {} (delay {delay_ms} ms, open files limit {nofile})",
            listener.local_addr()?
        );
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, delay, body));
                }
                // Out of file descriptors or the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}
