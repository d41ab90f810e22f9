//! The real `rhapi` binary, started on a port the test bound and handed over (killed on
//! drop), and raw exchanges with it that may send malformed bytes on purpose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::http::Response;
use super::DEADLINE;

/// The `rhapi` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rhapi"))
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Makes `listener` the child's fd 3 (the first fd of `LISTEN_FDS`).
fn hand_over_as_fd_3(cmd: &mut Command, listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = listener.as_raw_fd();
    // SAFETY: between fork and exec, only async-signal-safe calls (dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            let done = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if done == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A running `rhapi` server; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    /// The threads copying stdout and stderr into `log`; they end when the process does.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `rhapi <command> <dir>` on a port this test bound itself and hands over, as
    /// systemd's socket activation does (`LISTEN_FDS`): no other test can take the port
    /// between choosing and listening. `--port` names the same port, for the ready line.
    pub(super) fn start(dir: &Path, command: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_program(&bin(), None, &[command, &dir.to_string_lossy()], args, env)
    }

    /// [`Server::start`] for any executable (a bundle): `program <first...> --port P
    /// --hostname 127.0.0.1 <args...>` run in `cwd` (default: the test's), on a port handed
    /// over the same way.
    pub fn start_program(
        program: &Path,
        cwd: Option<&Path>,
        first: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        let port = listener.local_addr().expect("test port").port();
        // `$$` is the shell's pid, which `exec` keeps for rhapi: LISTEN_PID names it.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@""#)
            .arg(program)
            .args(first)
            .args(["--port", &port.to_string(), "--hostname", "127.0.0.1"])
            .args(args)
            .env_remove("PORT");
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        for (key, value) in env {
            cmd.env(key, value);
        }
        hand_over_as_fd_3(&mut cmd, &listener);
        let mut server = Server::launch(cmd, port);
        drop(listener); // the server has its own copy
        if let Err(log) = server.wait_ready() {
            panic!("rhapi exited before listening:\n{log}");
        }
        server
    }

    /// Starts `cmd` (a serving command with `--port port`, run where the test chose) and
    /// waits until it listens.
    pub fn launch_in(cmd: Command, port: u16) -> Server {
        let mut server = Server::launch(cmd, port);
        if let Err(log) = server.wait_ready() {
            panic!("rhapi exited before listening:\n{log}");
        }
        server
    }

    /// Starts `cmd` with its output captured.
    pub(super) fn launch(mut cmd: Command, port: u16) -> Server {
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rhapi");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let log = Arc::clone(&log);
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            }));
        }
        Server {
            child,
            port,
            log,
            readers,
        }
    }

    /// Waits until this server says it listens on its port (a connection alone could reach
    /// another test's server); `Err(log)` if it exited first.
    pub(super) fn wait_ready(&mut self) -> Result<(), String> {
        let ready = |scheme: &str| format!("ready on {scheme}://127.0.0.1:{}", self.port);
        let (http, https) = (ready("http"), ready("https"));
        let started = Instant::now();
        loop {
            let log = self.log_text();
            if (log.contains(&http) || log.contains(&https))
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                for reader in self.readers.drain(..) {
                    let _ = reader.join(); // the last lines, up to end of output
                }
                return Err(format!("exit status {status}\n{}", self.log_text()));
            }
            assert!(
                started.elapsed() < DEADLINE,
                "rhapi not listening after {DEADLINE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything the server printed so far (stdout and stderr).
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Makes every line the server logged so far visible in [`Server::log_text`]: the
    /// server writes its log in batches, in order, so once the log line of a request sent now
    /// shows, everything logged before it has too. Call it before asserting that something is
    /// *not* in the log.
    pub fn sync_log(&self) {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("/log-sync-{}-{n}", std::process::id());
        assert_eq!(self.get(&marker).status, 404);
        self.wait_for_log(&format!("GET {marker} 404"));
    }

    /// Waits until a log line contains `needle`; panics with the log after [`DEADLINE`].
    pub fn wait_for_log(&self, needle: &str) {
        let started = Instant::now();
        while !self.log_text().contains(needle) {
            assert!(
                started.elapsed() < DEADLINE,
                "no log line with {needle:?} after {DEADLINE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// Sends a JSON body with `content-type: application/json`.
    pub fn post_json(&self, path: &str, body: &str) -> Response {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    }

    /// [`Server::post_json`], or `None` when the server is gone (killed mid-request).
    pub fn try_post_json(&self, path: &str, body: &str) -> Option<Response> {
        let raw = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        stream.write_all(raw.as_bytes()).ok()?;
        let mut data = Vec::new();
        stream.read_to_end(&mut data).ok()?;
        Response::parse(&data)
    }

    /// A well-formed request with a `content-length` body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw)
    }

    /// Sends bytes exactly as given and reads the response until the server closes.
    pub fn raw(&self, bytes: &[u8]) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        // The server may answer (and close) before reading everything: ignore write errors.
        let _ = stream.write_all(bytes);
        let mut data = Vec::new();
        let _ = stream.read_to_end(&mut data);
        Response::parse(&data)
            .unwrap_or_else(|| panic!("unparseable response: {:?}", String::from_utf8_lossy(&data)))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Polls `path` until `accept` returns true for its response, or panics after
    /// [`DEADLINE`] with the last response.
    pub fn poll_until(&self, path: &str, accept: impl Fn(&Response) -> bool) -> Response {
        let started = Instant::now();
        loop {
            let response = self.get(path);
            if accept(&response) {
                return response;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "GET {path} never gave the expected answer; last: {} {}\n{}",
                response.status,
                response.text(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until a log line satisfies `accept` and returns it; panics with the log after
    /// [`DEADLINE`].
    pub fn wait_for_log_line(&self, what: &str, accept: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| accept(l)) {
                return line.clone();
            }
            assert!(
                started.elapsed() < DEADLINE,
                "no log line {what} after {DEADLINE:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server process has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits (up to 60 s) for the process to exit and returns its status.
    pub fn wait_exit(mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "rhapi did not exit:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    /// Resident memory of the server process (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .expect("VmRSS in /proc/PID/status")
            / 1024
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`"INT"`, `"TERM"`) without waiting.
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Sends `bytes`, closes the writing half (so the server sees the end of input instead
    /// of waiting for more), and reads until the server closes or `timeout` passes.
    pub fn exchange(&self, bytes: &[u8], timeout: Duration) -> Exchange {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return Exchange::Refused;
        };
        stream.set_read_timeout(Some(timeout)).ok();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut data = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    // A complete response followed by an idle keep-alive is not a hang.
                    return match Response::from_bytes(&data) {
                        Some(response) => Exchange::Answered(response),
                        None => Exchange::Hung(data),
                    };
                }
                Err(_) => break, // reset: the server closed on us
            }
        }
        match Response::from_bytes(&data) {
            Some(response) => Exchange::Answered(response),
            None => Exchange::Closed(data),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one raw exchange ended, for tests that send malformed bytes on purpose.
#[derive(Debug)]
pub enum Exchange {
    /// The server answered (and closed, or stopped sending, before the read timeout).
    Answered(Response),
    /// The server closed the connection without a parseable response (`bytes` is what it
    /// sent, often nothing).
    Closed(Vec<u8>),
    /// Nothing happened before the read timeout: the server hangs on this input.
    Hung(Vec<u8>),
    /// The connection could not be opened at all.
    Refused,
}

/// A response read as it arrives: its head, then the chunks of its chunked body one by one
/// (for streamed responses and Server-Sent Events).
pub struct Streamed {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body's last chunk (size 0) was read: the server ended the response itself (not
    /// a read timeout or a dropped connection).
    pub ended: bool,
}

impl Server {
    /// Sends `method path` and reads the head of the response; the body is read with
    /// [`Streamed::next_chunk`].
    pub fn open_stream(&self, method: &str, path: &str) -> Streamed {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).ok();
        let head =
            format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send the request");
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        Streamed {
            reader,
            status,
            headers,
            ended: false,
        }
    }
}

impl Streamed {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next chunk of the chunked body; `None` at its end (or when the server closed).
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line).ok()? == 0 {
            return None;
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            self.ended = true;
            return None;
        }
        let mut chunk = vec![0u8; size + 2];
        self.reader.read_exact(&mut chunk).ok()?;
        chunk.truncate(size);
        Some(chunk)
    }

    /// Every remaining chunk, joined, as text.
    pub fn rest(&mut self) -> String {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk() {
            all.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}
