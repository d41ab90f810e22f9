//! A WebSocket load client for bench/realtime.py: the client side of RFC 6455 by hand (the
//! handshake, masked frames, unmasked frames read back, pings answered), on one
//! single-threaded tokio runtime, so 10,000 sockets cost a task each and one core. Each
//! subcommand prints one line of JSON.
//!
//! ```text
//! ws-load idle   --port P --path /api/echo --conns 10000 --hold-secs 30
//! ws-load echo   --port P --path /api/echo --conns 100 --window 1 --secs 10 --size 32
//! ws-load fanout --port P --path '/api/sub?topic=t' --conns 10000 --publishes 50
//!                --publish-port P2 --publish-path '/api/publish?topic=t'
//! ws-load storm  --port P --path '/api/sub?topic=t' --conns 10000 --secs 10 --every-ms 1
//!                --publish-path '/api/publish?topic=t'
//! ws-load hello  --port P --path /api/hello --secs 10 --every-ms 5
//! ```
//!
//! `idle` prints `{"opened":N,...}` once every socket is open, then holds them `--hold-secs`
//! without reading. `echo`, `fanout` and `storm` print `{"ready":N}` once their sockets are
//! open, before the load. `fanout` publishes with `POST --publish-path` (text/plain body: the
//! publish's number) one at a time, each after the previous one reached every subscriber,
//! and times each delivery from the moment the POST was written. It raises its own
//! open-files soft limit to the hard limit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        let want = RLimit {
            cur: lim.max,
            max: lim.max,
        };
        if lim.cur < lim.max && setrlimit(RLIMIT_NOFILE, &want) == 0 {
            return lim.max;
        }
    }
    lim.cur
}

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Handshakes in flight at once while opening many sockets (the server's accept backlog).
const OPEN_BATCH: usize = 500;

/// A client frame: FIN set, masked with a fixed key (the server must unmask; any key will do).
fn encode(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

/// One open WebSocket: the stream and what was read past the last frame.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// `(opcode, payload, bytes used)` of the first whole frame in `buf`.
fn parse(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (len, at) = match buf[1] & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?;
    Some((buf[0] & 0x0f, payload, at + len))
}

impl Ws {
    async fn open(port: u16, path: &str) -> std::io::Result<Ws> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return Err(std::io::Error::other(format!("refused: {head}")));
        }
        buf.drain(..end);
        Ok(Ws { stream, buf })
    }

    /// The next text or binary message's payload, answering pings; `None` on close or EOF.
    async fn next(&mut self) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some((opcode, payload, used)) = parse(&self.buf) {
                let payload = payload.to_vec();
                self.buf.drain(..used);
                match opcode {
                    PING => self.stream.write_all(&encode(PONG, &payload)).await.ok()?,
                    CLOSE => return None,
                    PONG => {}
                    _ => return Some(payload),
                }
                continue;
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Opens `conns` sockets, `OPEN_BATCH` handshakes at a time; (sockets, failures, first error).
async fn open_many(port: u16, path: &str, conns: usize) -> (Vec<Ws>, usize, Option<String>) {
    let mut open = Vec::with_capacity(conns);
    let (mut failed, mut error) = (0, None);
    while open.len() + failed < conns {
        let batch = OPEN_BATCH.min(conns - open.len() - failed);
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let path = path.to_string();
                tokio::spawn(async move { Ws::open(port, &path).await })
            })
            .collect();
        for task in tasks {
            match task.await {
                Ok(Ok(ws)) => open.push(ws),
                Ok(Err(err)) => {
                    failed += 1;
                    error.get_or_insert(err.to_string());
                }
                Err(err) => {
                    failed += 1;
                    error.get_or_insert(err.to_string());
                }
            }
        }
    }
    (open, failed, error)
}

/// Plain HTTP/1.1 on one keep-alive connection: the status of each request.
struct Http {
    port: u16,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(port: u16) -> std::io::Result<Http> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            port,
            stream,
            buf: Vec::new(),
        })
    }

    /// One request; on a connection the server closed meanwhile (its keep-alive timeout),
    /// once more on a new one.
    async fn request(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<u16> {
        match self.once(method, path, body).await {
            Ok(status) => Ok(status),
            Err(_) => {
                *self = Http::connect(self.port).await?;
                self.once(method, path, body).await
            }
        }
    }

    async fn once(&mut self, method: &str, path: &str, body: &str) -> std::io::Result<u16> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(req.as_bytes()).await?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .split("\r\n")
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    self.buf.drain(..end + 4 + len);
                    return Ok(status);
                }
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Percentile `p` (0-100) of sorted microseconds, in ms.
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn stats(name: &str, mut us: Vec<u64>) -> String {
    us.sort_unstable();
    format!(
        "\"{name}_n\":{},\"{name}_p50_ms\":{:.3},\"{name}_p99_ms\":{:.3},\"{name}_max_ms\":{:.3}",
        us.len(),
        pct(&us, 50.0),
        pct(&us, 99.0),
        pct(&us, 100.0)
    )
}

/// Command-line options: `--name value` pairs.
struct Opts(Vec<(String, String)>);

impl Opts {
    fn str(&self, name: &str, default: &str) -> String {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or_else(|| default.to_string(), |(_, v)| v.clone())
    }

    fn num(&self, name: &str, default: u64) -> u64 {
        let v = self.str(name, &default.to_string());
        v.parse()
            .unwrap_or_else(|_| panic!("--{name} needs a number, not {v:?}"))
    }
}

async fn idle(o: &Opts) {
    let (port, path) = (o.num("port", 3000) as u16, o.str("path", "/api/echo"));
    let start = Instant::now();
    let (open, failed, error) = open_many(port, &path, o.num("conns", 10_000) as usize).await;
    println!(
        "{{\"opened\":{},\"failed\":{failed},\"error\":{:?},\"open_secs\":{:.3}}}",
        open.len(),
        error.unwrap_or_default(),
        start.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(o.num("hold-secs", 30))).await;
    drop(open);
}

async fn echo(o: &Opts) {
    let (port, path) = (o.num("port", 3000) as u16, o.str("path", "/api/echo"));
    let (window, size) = (o.num("window", 1) as usize, o.num("size", 32) as usize);
    let (warm, secs) = (Duration::from_secs(1), o.num("secs", 10));
    let (open, failed, error) = open_many(port, &path, o.num("conns", 100) as usize).await;
    let counted = Arc::new(AtomicU64::new(0));
    let all = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // The harness reads the server's CPU time from here on.
    println!("{{\"ready\":{}}}", open.len());
    let frame = encode(TEXT, &vec![b'x'; size]);
    let mut tasks = Vec::new();
    for mut ws in open {
        let (all, counted, measuring, stop, frame) = (
            all.clone(),
            counted.clone(),
            measuring.clone(),
            stop.clone(),
            frame.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..window {
                ws.stream.write_all(&frame).await.ok()?;
            }
            while !stop.load(Ordering::Relaxed) {
                ws.next().await?;
                all.fetch_add(1, Ordering::Relaxed);
                if measuring.load(Ordering::Relaxed) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                ws.stream.write_all(&frame).await.ok()?;
            }
            Some(())
        }));
    }
    tokio::time::sleep(warm).await;
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let got = counted.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let alive = tasks.iter().filter(|t| !t.is_finished()).count();
    println!(
        "{{\"messages\":{got},\"all\":{},\"secs\":{elapsed:.3},\"per_sec\":{:.1},\"failed\":{failed},\"error\":{:?},\"alive\":{alive}}}",
        all.load(Ordering::Relaxed),
        got as f64 / elapsed,
        error.unwrap_or_default()
    );
}

/// What the subscribers saw of each publish: deliveries, and when each one came.
struct Seen {
    sent: Vec<Option<Instant>>,
    count: Vec<u64>,
    last: Vec<Option<Instant>>,
    latencies_us: Vec<u64>,
    other: u64,
    closed: u64,
}

/// One subscriber: reads until its socket closes, noting each publish's arrival in `seen`.
fn subscribe(mut ws: Ws, seen: Arc<Mutex<Seen>>) {
    tokio::spawn(async move {
        while let Some(payload) = ws.next().await {
            let now = Instant::now();
            let mut s = seen.lock().unwrap();
            let k = std::str::from_utf8(&payload)
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok());
            match k {
                Some(k) if k < s.count.len() => {
                    s.count[k] += 1;
                    s.last[k] = Some(now);
                    if let Some(sent) = s.sent[k] {
                        s.latencies_us.push((now - sent).as_micros() as u64);
                    }
                }
                _ => s.other += 1,
            }
        }
        seen.lock().unwrap().closed += 1;
    });
}

/// Opens the subscribers and waits for each one's first message ("joined").
async fn subscribers(o: &Opts, slots: usize) -> (Arc<Mutex<Seen>>, usize, usize, String) {
    let (port, path) = (
        o.num("port", 3000) as u16,
        o.str("path", "/api/sub?topic=t"),
    );
    let (mut open, failed, error) = open_many(port, &path, o.num("conns", 10_000) as usize).await;
    // The server's "joined" says the subscription is in place.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for ws in &mut open {
        let _ = tokio::time::timeout_at(deadline, ws.next()).await;
    }
    let seen = Arc::new(Mutex::new(Seen {
        sent: vec![None; slots],
        count: vec![0; slots],
        last: vec![None; slots],
        latencies_us: Vec::new(),
        other: 0,
        closed: 0,
    }));
    let n = open.len();
    for ws in open {
        subscribe(ws, seen.clone());
    }
    (seen, n, failed, error.unwrap_or_default())
}

async fn fanout(o: &Opts) {
    let publishes = o.num("publishes", 50) as usize;
    let (seen, n, failed, error) = subscribers(o, publishes).await;
    let pub_port = o.num("publish-port", o.num("port", 3000)) as u16;
    let mut http = Http::connect(pub_port).await.expect("publisher connects");
    let pub_path = o.str("publish-path", "/api/publish?topic=t");
    let timeout = Duration::from_secs(o.num("timeout-secs", 30));
    // The harness reads the server's CPU time from here on.
    println!("{{\"ready\":{n}}}");
    let mut last_us = Vec::new();
    let mut busy = Duration::ZERO;
    let mut statuses = Vec::new();
    for k in 0..publishes {
        let t0 = Instant::now();
        seen.lock().unwrap().sent[k] = Some(t0);
        statuses.push(
            http.request("POST", &pub_path, &k.to_string())
                .await
                .unwrap_or(0),
        );
        let deadline = t0 + timeout;
        loop {
            let (count, last, closed) = {
                let s = seen.lock().unwrap();
                (s.count[k], s.last[k], s.closed)
            };
            if count + closed >= n as u64 || Instant::now() > deadline {
                if let Some(last) = last {
                    last_us.push((last - t0).as_micros() as u64);
                    busy += last - t0;
                }
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(o.num("pause-ms", 20))).await;
    }
    let s = seen.lock().unwrap();
    let delivered: u64 = s.count.iter().sum();
    let bad = statuses.iter().filter(|&&c| c != 200).count();
    println!(
        "{{\"subscribers\":{n},\"failed\":{failed},\"error\":{error:?},\"publishes\":{publishes},\"non_200\":{bad},\"delivered\":{delivered},\"expected\":{},\"closed\":{},\"delivered_per_sec\":{:.1},{},{}}}",
        n * publishes,
        s.closed,
        delivered as f64 / busy.as_secs_f64(),
        stats("last", last_us),
        stats("each", s.latencies_us.clone())
    );
}

async fn storm(o: &Opts) {
    let (seen, n, failed, error) = subscribers(o, 0).await;
    let mut http = Http::connect(o.num("port", 3000) as u16)
        .await
        .expect("publisher connects");
    let pub_path = o.str("publish-path", "/api/publish?topic=t");
    let mut tick = tokio::time::interval(Duration::from_millis(o.num("every-ms", 1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The harness starts the hello prober on this line.
    println!("{{\"ready\":{n}}}");
    let start = Instant::now();
    let secs = Duration::from_secs(o.num("secs", 10));
    let (mut published, mut bad, mut post_us) = (0u64, 0u64, Vec::new());
    while start.elapsed() < secs {
        tick.tick().await;
        let t0 = Instant::now();
        match http.request("POST", &pub_path, "storm").await {
            Ok(200) => published += 1,
            _ => bad += 1,
        }
        post_us.push(t0.elapsed().as_micros() as u64);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let s = seen.lock().unwrap();
    println!(
        "{{\"subscribers\":{n},\"failed\":{failed},\"error\":{error:?},\"published\":{published},\"non_200\":{bad},\"secs\":{elapsed:.3},\"delivered\":{},\"closed\":{},{}}}",
        s.other,
        s.closed,
        stats("post", post_us)
    );
}

async fn hello(o: &Opts) {
    let mut http = Http::connect(o.num("port", 3000) as u16)
        .await
        .expect("connects");
    let path = o.str("path", "/api/hello");
    let mut tick = tokio::time::interval(Duration::from_millis(o.num("every-ms", 5)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (start, secs) = (Instant::now(), Duration::from_secs(o.num("secs", 10)));
    let (mut bad, mut us) = (0u64, Vec::new());
    while start.elapsed() < secs {
        tick.tick().await;
        let t0 = Instant::now();
        if http.request("GET", &path, "").await.unwrap_or(0) != 200 {
            bad += 1;
        }
        us.push(t0.elapsed().as_micros() as u64);
    }
    println!("{{\"non_200\":{bad},{}}}", stats("hello", us));
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut pairs = Vec::new();
    while let Some(name) = args.next() {
        let name = name
            .strip_prefix("--")
            .unwrap_or_else(|| panic!("unexpected argument {name:?}"));
        let value = args
            .next()
            .unwrap_or_else(|| panic!("--{name} needs a value"));
        pairs.push((name.to_string(), value));
    }
    let opts = Opts(pairs);
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match command.as_str() {
            "idle" => idle(&opts).await,
            "echo" => echo(&opts).await,
            "fanout" => fanout(&opts).await,
            "storm" => storm(&opts).await,
            "hello" => hello(&opts).await,
            other => panic!("unknown command {other:?}: idle, echo, fanout, storm or hello"),
        }
    });
    Ok(())
}
