//! A local upstream for `http::` calls that holds every request until it is let go: when
//! `release_at` requests are open at once, or when the test calls [`Gate::release`]. It
//! counts the requests open at once, so a test shows concurrency with a count, not a clock.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::DEADLINE;

#[derive(Default)]
struct Counts {
    open: usize,
    most_open: usize,
    released: bool,
}

/// The upstream; it stops with the test process.
pub struct Gate {
    pub port: u16,
    counts: Arc<(Mutex<Counts>, Condvar)>,
}

impl Gate {
    /// Starts the upstream; it answers `{"ok":true}` to each request once let go.
    pub fn start(release_at: usize) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let port = listener.local_addr().expect("upstream address").port();
        let counts = Arc::new((Mutex::new(Counts::default()), Condvar::new()));
        let shared = Arc::clone(&counts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counts = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    // The request head, up to its blank line.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    let (lock, changed) = &*counts;
                    let mut c = lock.lock().unwrap();
                    c.open += 1;
                    c.most_open = c.most_open.max(c.open);
                    if c.open >= release_at {
                        c.released = true;
                    }
                    changed.notify_all();
                    let started = Instant::now();
                    while !c.released && started.elapsed() < DEADLINE {
                        c = changed
                            .wait_timeout(c, Duration::from_millis(50))
                            .unwrap()
                            .0;
                    }
                    drop(c);
                    let body = r#"{"ok":true}"#;
                    let _ = write!(
                        reader.get_mut(),
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let mut c = lock.lock().unwrap();
                    c.open -= 1;
                    changed.notify_all();
                });
            }
        });
        Gate { port, counts }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The most requests that were open at once so far.
    pub fn most_open(&self) -> usize {
        self.counts.0.lock().unwrap().most_open
    }

    /// Waits (with a deadline) until `n` requests are open; panics after [`DEADLINE`].
    pub fn wait_open(&self, n: usize) {
        let (lock, changed) = &*self.counts;
        let started = Instant::now();
        let mut c = lock.lock().unwrap();
        while c.open < n {
            assert!(
                started.elapsed() < DEADLINE,
                "only {} of {n} requests reached the upstream",
                c.open
            );
            c = changed
                .wait_timeout(c, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }

    /// Lets every held request (and every later one) go.
    pub fn release(&self) {
        let (lock, changed) = &*self.counts;
        lock.lock().unwrap().released = true;
        changed.notify_all();
    }
}
