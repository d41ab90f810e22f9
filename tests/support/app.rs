//! A temporary app folder, and one-shot commands (`check`, `routes`) run on it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::server::{bin, Server};
use super::DEADLINE;

/// A temporary app folder, deleted on drop.
pub struct TestApp {
    dir: tempfile::TempDir,
}

impl TestApp {
    /// An empty app (with an empty `pages/api`).
    pub fn new() -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("pages/api")).expect("pages/api");
        TestApp { dir }
    }

    /// A copy of `tests/fixtures/<name>`.
    pub fn fixture(name: &str) -> TestApp {
        let app = TestApp::new();
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        copy_dir(&source, app.path()).expect("copy fixture");
        app
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` to `rel` (creating folders), all at once.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, content).expect("write file");
    }

    /// Writes `content` the way many editors save: to a temp file, then renamed over `rel`.
    pub fn write_atomic(&self, rel: &str, content: &str) {
        let path = self.path().join(rel);
        let tmp = path.with_extension("rhai.tmp~");
        std::fs::write(&tmp, content).expect("write temp");
        std::fs::rename(&tmp, &path).expect("rename over");
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).expect("remove file");
    }

    pub fn rename(&self, from: &str, to: &str) {
        std::fs::rename(self.path().join(from), self.path().join(to)).expect("rename");
    }

    /// Starts `rhapi <command> <app dir> --port <free> <args...>`.
    pub fn serve(&self, command: &str, args: &[&str]) -> Server {
        Server::start(self.path(), command, args, &[])
    }

    /// As [`TestApp::serve`], with extra process environment variables.
    pub fn serve_with_env(&self, command: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start(self.path(), command, args, env)
    }

    /// Runs a one-shot command (`check`, `routes`) to completion.
    pub fn run(&self, command: &str) -> Output {
        let output = Command::new(bin())
            .arg(command)
            .arg(self.path())
            .env_remove("PORT")
            .output()
            .expect("run rhapi");
        Output {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `rhapi <command> <app dir> <args...>` until it exits by itself. A command that
    /// is still running after [`DEADLINE`] (a server that should have refused to start) is
    /// killed and the test fails with what it printed.
    pub fn run_to_exit(&self, command: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.arg(command).arg(self.path()).args(args);
        run_with_deadline(cmd)
    }

    /// Starts `rhapi <command> <app dir> <args...>` with exactly these arguments (no `--port`
    /// added) and these environment variables, and waits until `port` accepts connections.
    /// For tests of how the port is chosen (`PORT`, `--port`).
    pub fn serve_exact(
        &self,
        command: &str,
        args: &[&str],
        env: &[(&str, &str)],
        port: u16,
    ) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg(command)
            .arg(self.path())
            .args(args)
            .env_remove("PORT");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut server = Server::launch(cmd, port);
        if let Err(log) = server.wait_ready() {
            panic!("rhapi exited before listening:\n{log}");
        }
        server
    }
}

/// The result of a one-shot command.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Copies the folder `from` into `to` (created), panicking when that fails: for tests that
/// serve one of the repo's own apps.
pub fn copy_tree(from: &Path, to: &Path) {
    copy_dir(from, to).unwrap_or_else(|err| panic!("copy {}: {err}", from.display()));
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Runs `cmd` (stdout and stderr captured, `PORT` removed) until it exits; kills it and panics
/// after [`DEADLINE`].
pub fn run_with_deadline(mut cmd: Command) -> Output {
    cmd.env_remove("PORT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn rhapi");
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        readers.push(std::thread::spawn(move || {
            let mut text = Vec::new();
            let mut stream = stream;
            let _ = stream.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        }));
    }
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let text: Vec<String> = readers
                .into_iter()
                .map(|r| r.join().unwrap_or_default())
                .collect();
            panic!(
                "rhapi still running after {DEADLINE:?}; it printed:\n{}",
                text.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = readers.into_iter().map(|r| r.join().unwrap_or_default());
    let stdout = text.next().unwrap_or_default();
    let stderr = text.next().unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}
