//! `rhapi lsp` end to end: the real binary over stdio, spoken to as an editor does
//! (JSON-RPC framed by `Content-Length`), from `initialize` to `exit`; and hostile input
//! (not JSON, not JSON-RPC, a huge message, garbage scripts and positions), which gets
//! error responses while the server goes on.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::{bin, TestApp, DEADLINE};

/// An editor's side of the protocol, on a running `rhapi lsp`.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    messages: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for something else.
    notifications: Vec<Value>,
}

impl Client {
    /// `rhapi lsp` started in `dir`, initialized with `dir` as the workspace.
    fn start(dir: &std::path::Path) -> Client {
        let mut client = Client::spawn(dir);
        let root = url(dir);
        let result = client.request(
            "initialize",
            json!({ "processId": null, "rootUri": root, "capabilities": {} }),
        );
        let caps = &result["result"]["capabilities"];
        assert_eq!(caps["hoverProvider"], true, "{result}");
        assert_eq!(caps["definitionProvider"], true, "{result}");
        assert_eq!(
            caps["completionProvider"]["triggerCharacters"],
            json!([".", ":"])
        );
        client.notify("initialized", json!({}));
        client
    }

    fn spawn(dir: &std::path::Path) -> Client {
        let mut child = Command::new(bin())
            .arg("lsp")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rhapi lsp");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_message(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        Client {
            stdin: child.stdin.take(),
            child,
            messages,
            next_id: 0,
            notifications: Vec::new(),
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).expect("write to rhapi lsp");
        stdin.flush().expect("flush");
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and waits for its response (the whole message).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        self.wait(|m| m["id"] == id && m.get("method").is_none())
    }

    /// The next message that matches, within the deadline; notifications before it are
    /// kept.
    fn wait(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) if matches(&message) => return message,
                Ok(message) => self.notifications.push(message),
                Err(RecvTimeoutError::Timeout) => panic!("no message within the deadline"),
                Err(RecvTimeoutError::Disconnected) => panic!("rhapi lsp closed its output"),
            }
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        if let Some(i) = self
            .notifications
            .iter()
            .position(|m| is_diagnostics_of(m, uri))
        {
            let found = self.notifications.remove(i);
            return found["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        let found = self.wait(|m| is_diagnostics_of(m, uri));
        found["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "rhai", "version": 1, "text": text } }),
        );
    }

    /// A request about a position of a document.
    fn at(&mut self, method: &str, uri: &str, line: u32, character: u32) -> Value {
        self.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }),
        )
    }

    /// Closes stdin and waits for the exit, within the deadline.
    fn exit_status(mut self) -> ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "rhapi lsp did not exit");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_diagnostics_of(message: &Value, uri: &str) -> bool {
    message["method"] == "textDocument/publishDiagnostics" && message["params"]["uri"] == uri
}

/// One framed message of the server's output; `None` at its end.
fn read_message(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn url(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

fn labels(completion: &Value) -> Vec<String> {
    let items = completion["result"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|i| i["label"].as_str().map(str::to_string))
        .collect()
}

const AUTH: &str = "/// Checks a session token.\n/// Returns the user, or `()`.\nfn verify(token) {\n    jwt::verify(token, \"k\")\n}\n";

/// The route as an editor holds it: a mistake on line 4 (`let x = ;`).
const ROUTE: &str = "import \"../lib/auth\" as auth;\n\nfn GET(req, res) {\n    let x = ;\n    let user = auth::verify(req.cookies.session);\n    let rows = db::query(\"SELECT 1\", []);\n    req.body\n}\n";

#[test]
fn a_session_from_initialize_to_exit() {
    let app = TestApp::new();
    app.write("pages/lib/auth.rhai", AUTH);
    // On disk the route is fine: what the editor holds (unsaved) is what counts.
    app.write("pages/api/users.rhai", "fn GET() { 1 }\n");
    let mut client = Client::start(app.path());
    let uri = url(&app.path().join("pages/api/users.rhai"));

    client.open(&uri, ROUTE);
    let found = client.diagnostics(&uri);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["range"]["start"]["line"], 3, "{found:?}");
    assert_eq!(found[0]["severity"], 1, "{found:?}");
    assert_eq!(found[0]["source"], "rhapi");

    // Fixed with an incremental change: `let x = ;` -> `let x = 1;`.
    let change = json!({ "range": { "start": { "line": 3, "character": 12 }, "end": { "line": 3, "character": 12 } }, "text": "1" });
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [change] }),
    );
    assert_eq!(client.diagnostics(&uri), Vec::<Value>::new());

    // Just after `db::` (line 6), after `req.` (line 7), in `auth::verify` (line 5).
    let db = labels(&client.at("textDocument/completion", &uri, 5, 19));
    assert!(
        db.contains(&"query".into()) && db.contains(&"execute".into()),
        "{db:?}"
    );
    assert!(!db.contains(&"trim".into()), "{db:?}");
    let req = labels(&client.at("textDocument/completion", &uri, 6, 8));
    assert!(
        req.contains(&"body".into()) && req.contains(&"raw_body".into()),
        "{req:?}"
    );
    assert_eq!(
        labels(&client.at("textDocument/completion", &uri, 4, 27)),
        ["verify"]
    );

    let hover = client.at("textDocument/hover", &uri, 5, 23);
    let text = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("db::query(sql, params)") && text.contains("row maps"),
        "{hover}"
    );
    let hover = client.at("textDocument/hover", &uri, 4, 25);
    let text = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("fn verify(token)") && text.contains("Checks a session token."),
        "{hover}"
    );

    let definition = client.at("textDocument/definition", &uri, 4, 25);
    let auth_uri = url(&app.path().join("pages/lib/auth.rhai"));
    assert_eq!(definition["result"]["uri"], auth_uri, "{definition}");
    assert_eq!(
        definition["result"]["range"]["start"]["line"], 2,
        "{definition}"
    );
    let module = client.at("textDocument/definition", &uri, 0, 12);
    assert_eq!(module["result"]["uri"], auth_uri, "{module}");

    // Inside `db::query("SELECT 1", [`: the second parameter.
    let help = client.at("textDocument/signatureHelp", &uri, 5, 38);
    assert_eq!(
        help["result"]["signatures"][0]["label"], "db::query(sql, params)",
        "{help}"
    );
    assert_eq!(help["result"]["activeParameter"], 1, "{help}");

    let shutdown = client.request("shutdown", Value::Null);
    assert_eq!(shutdown["result"], Value::Null);
    assert!(shutdown.get("error").is_none(), "{shutdown}");
    client.notify("exit", Value::Null);
    assert_eq!(client.exit_status().code(), Some(0));
}

#[test]
fn malformed_input_gets_errors_and_the_server_goes_on() {
    let app = TestApp::new();
    let mut client = Client::spawn(app.path());
    let early = client.at("textDocument/hover", "file:///x.rhai", 0, 0);
    assert_eq!(early["error"]["code"], -32002, "{early}");
    let _ = client.request("initialize", json!({ "capabilities": {} }));

    client.send_raw(b"Content-Length: 9\r\n\r\n{not json");
    let error = client.wait(|m| m.get("error").is_some());
    assert_eq!(
        (error["id"].clone(), error["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );

    client.send(json!({ "jsonrpc": "2.0", "id": 41, "params": 5 }));
    let error = client.wait(|m| m["id"] == 41);
    assert_eq!(error["error"]["code"], -32600, "{error}");

    // 40 MB announced and sent: refused unread, and the next message is found after it.
    let huge = 40 << 20;
    client.send_raw(format!("Content-Length: {huge}\r\n\r\n").as_bytes());
    client.send_raw(&vec![b'x'; huge]);
    let error = client.wait(|m| m.get("error").is_some());
    assert_eq!(error["error"]["code"], -32600, "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("limit"));

    let unknown = client.request("textDocument/nothing", json!({}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let bad = client.request("textDocument/hover", json!({ "position": "here" }));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    // Garbage positions and changes on an open document.
    let uri = url(&app.path().join("pages/api/g.rhai"));
    client.open(&uri, "fn GET() {\n  'hello'\n}\n");
    assert!(!client.diagnostics(&uri).is_empty());
    let change = json!({ "range": { "start": { "line": 99, "character": 4000000000u32 }, "end": { "line": 0, "character": 0 } }, "text": "é" });
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [change] }),
    );
    client.diagnostics(&uri);
    for method in ["completion", "hover", "definition", "signatureHelp"] {
        let answer = client.at(
            &format!("textDocument/{method}"),
            &uri,
            4000000000,
            4000000000,
        );
        assert!(answer.get("error").is_none(), "{answer}");
    }
    // Exit without shutdown: exit code 1, as the protocol says.
    client.notify("exit", Value::Null);
    assert_eq!(client.exit_status().code(), Some(1));
}

/// Scripts cut and mutated at random, and requests at random places in them: every request
/// is answered, none with an internal error (a panic caught).
#[test]
fn garbage_scripts_and_positions_are_answered() {
    let app = TestApp::new();
    app.write("pages/lib/auth.rhai", AUTH);
    let mut client = Client::start(app.path());
    let uri = url(&app.path().join("pages/api/fuzz.rhai"));
    let pieces = [
        "db::",
        "req.",
        "res.",
        "auth::",
        "(",
        ")",
        "{",
        "}",
        "#{",
        "`${",
        "\"",
        "'",
        "é",
        "😀",
        "\n",
        "::",
        ".",
        ",",
        "import \"",
        "fn ",
        "//",
        "/*",
        "\\",
        "0..",
        "|x|",
        "\u{0}",
    ];
    let mut rng = crate::support::fuzz::Rng(0x2545_f491_4f6c_dd1d);
    let mut next = |n: usize| rng.below(n);
    for round in 0..150 {
        let mut text = ROUTE.to_string();
        for _ in 0..1 + next(8) {
            let mut at = next(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, pieces[next(pieces.len())]);
        }
        client.open(&uri, &text);
        client.diagnostics(&uri);
        for method in ["completion", "hover", "definition", "signatureHelp"] {
            let (line, character) = (next(12) as u32, next(50) as u32);
            let answer = client.at(&format!("textDocument/{method}"), &uri, line, character);
            assert!(
                answer.get("error").is_none(),
                "round {round}: {answer}\n{text}"
            );
        }
    }
    let _ = client.request("shutdown", Value::Null);
    client.notify("exit", Value::Null);
    assert_eq!(client.exit_status().code(), Some(0));
}

/// Neovim's built-in client against the real binary (tests/editors/neovim.lua): a mistake
/// typed into the buffer shows as an error on its line; completion and hover answer.
/// Needs `nvim` (Debian's `neovim`, 0.7 or later): `cargo test --test tests lsp:: -- --include-ignored`.
#[test]
#[ignore = "needs nvim (apt-get install neovim)"]
fn neovim_shows_the_diagnostic() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/editors/neovim.lua");
    let mut cmd = Command::new("nvim");
    cmd.args(["--headless", "-u", "NONE", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("RHAPI_BIN", bin());
    let output = crate::support::run_with_deadline(cmd);
    let stdout = &output.stdout;
    assert!(
        output.status.success() && stdout.contains("nvim: ok"),
        "{stdout}{}",
        output.stderr
    );
}
