//! `rhapi lsp`: a language server (LSP 3.17) over stdin and stdout. It keeps the editor's
//! texts in memory (unsaved changes included) and answers from them: diagnostics as
//! `rhapi check` gives them ([`crate::tools::lint::file_diagnostics`]) after every change,
//! completion, hover, signature help and go to definition ([`features`]).
//!
//! One thread reads and frames the input ([`io`]); the main thread handles one message at
//! a time. A handler that panics answers its request with an error and the server goes on;
//! malformed input is answered with JSON-RPC's error codes and skipped.

mod cursor;
mod features;
mod io;
mod workspace;

use std::io::{BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use lsp_server::{Message, Notification, Request, Response};
use lsp_types::{
    CompletionOptions, Diagnostic as LspDiagnostic, DiagnosticSeverity,
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    HoverProviderCapability, NumberOrString, OneOf, PublishDiagnosticsParams, Range as LspRange,
    ServerCapabilities, SignatureHelpOptions, TextDocumentPositionParams,
    TextDocumentSyncCapability, TextDocumentSyncKind, Url,
};
use serde_json::Value;

use self::features::Doc;
use self::io::Frame;
use self::workspace::{lsp_position, offset_of, Workspace};
use crate::analysis::diagnostic::Severity;
use crate::analysis::SourceFile;

/// JSON-RPC and LSP error codes the server answers with.
const METHOD_NOT_FOUND: i32 = -32601;
const INVALID_PARAMS: i32 = -32602;
const INTERNAL_ERROR: i32 = -32603;
const SERVER_NOT_INITIALIZED: i32 = -32002;

/// Where the server is in its life (LSP's initialize / shutdown / exit).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
    ShutDown,
}

/// Serves the protocol on `input` and `output` until `exit` (or the end of the input);
/// returns whether it was asked to shut down first (the exit code is 0 then, else 1).
pub fn serve(input: impl Read + Send + 'static, mut output: impl Write) -> std::io::Result<bool> {
    let (sender, frames) = crossbeam_channel::bounded::<Frame>(16);
    std::thread::Builder::new()
        .name("lsp-input".into())
        .spawn(move || {
            let mut input = BufReader::new(input);
            while let Ok(Some(frame)) = io::read_frame(&mut input) {
                if sender.send(frame).is_err() {
                    break;
                }
            }
        })?;
    let mut server = Server {
        phase: Phase::Starting,
        workspace: Workspace::default(),
        out: Vec::new(),
    };
    for frame in frames {
        let message = match frame {
            Frame::Message(message) => message,
            Frame::Invalid { code, message, id } => {
                io::write_error(&mut output, id, code, &message)?;
                continue;
            }
        };
        if let Message::Notification(n) = &message {
            if n.method == "exit" {
                return Ok(server.phase == Phase::ShutDown);
            }
        }
        server.handle(message);
        for message in server.out.drain(..) {
            io::write_message(&mut output, &message)?;
        }
    }
    Ok(server.phase == Phase::ShutDown)
}

struct Server {
    phase: Phase,
    workspace: Workspace,
    /// Messages to send after the current one is handled.
    out: Vec<Message>,
}

/// Runs `work`; a panic becomes an error (the server goes on).
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("internal error: {text}")
    })
}

impl Server {
    fn handle(&mut self, message: Message) {
        match message {
            Message::Request(request) => {
                let id = request.id.clone();
                let response = match guarded(|| self.request(request)) {
                    Ok(response) => response,
                    Err(text) => Response::new_err(id, INTERNAL_ERROR, text),
                };
                self.out.push(response.into());
            }
            Message::Notification(notification) => {
                // A panic in a notification has nobody to answer; the state stays usable.
                if let Err(text) = guarded(|| self.notification(notification)) {
                    tracing::warn!("lsp: {text}");
                }
            }
            Message::Response(_) => {}
        }
    }

    fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        let result = match (self.phase, request.method.as_str()) {
            (Phase::Starting, "initialize") => Ok(self.initialize(&request.params)),
            (Phase::Starting, _) => Err((SERVER_NOT_INITIALIZED, "not initialized yet".into())),
            (Phase::ShutDown, _) => Err((INVALID_PARAMS, "the server is shut down".into())),
            (Phase::Running, "shutdown") => {
                self.phase = Phase::ShutDown;
                Ok(Value::Null)
            }
            (Phase::Running, method) => self.feature(method, request.params),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code, message),
        }
    }

    fn initialize(&mut self, params: &Value) -> Value {
        let root = params.get("rootUri").and_then(Value::as_str).or_else(|| {
            params
                .pointer("/workspaceFolders/0/uri")
                .and_then(Value::as_str)
        });
        self.workspace.root = root.and_then(path_of);
        self.phase = Phase::Running;
        serde_json::json!({
            "capabilities": capabilities(),
            "serverInfo": { "name": "rhapi", "version": env!("CARGO_PKG_VERSION") },
        })
    }

    /// A request about a position in a document.
    fn feature(&mut self, method: &str, params: Value) -> Result<Value, (i32, String)> {
        let known = [
            "textDocument/completion",
            "textDocument/hover",
            "textDocument/signatureHelp",
            "textDocument/definition",
        ];
        if !known.contains(&method) {
            return Err((METHOD_NOT_FOUND, format!("unknown method {method}")));
        }
        let at: TextDocumentPositionParams =
            serde_json::from_value(params).map_err(|err| (INVALID_PARAMS, err.to_string()))?;
        let uri = at.text_document.uri;
        let (Some(path), Some(text)) = (path_of(uri.as_str()), self.workspace.text(&uri)) else {
            return Ok(Value::Null);
        };
        let text = text.to_string();
        let doc = Doc {
            app: self.workspace.app_of(&path),
            path,
            text: &text,
            workspace: &self.workspace,
        };
        let offset = offset_of(&text, at.position);
        let value = match method {
            "textDocument/completion" => serde_json::to_value(doc.completion(offset)),
            "textDocument/hover" => serde_json::to_value(doc.hover(offset)),
            "textDocument/signatureHelp" => serde_json::to_value(doc.signature_help(offset)),
            _ => serde_json::to_value(doc.definition(offset)),
        };
        value.map_err(|err| (INTERNAL_ERROR, err.to_string()))
    }

    fn notification(&mut self, notification: Notification) {
        if self.phase != Phase::Running {
            return;
        }
        let params = notification.params;
        let uri = match notification.method.as_str() {
            "textDocument/didOpen" => {
                let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(params) else {
                    return;
                };
                self.workspace
                    .open(p.text_document.uri.clone(), p.text_document.text);
                p.text_document.uri
            }
            "textDocument/didChange" => {
                let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(params) else {
                    return;
                };
                self.workspace
                    .change(&p.text_document.uri, p.content_changes);
                p.text_document.uri
            }
            "textDocument/didClose" => {
                let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(params) else {
                    return;
                };
                self.workspace.close(&p.text_document.uri);
                self.publish(p.text_document.uri, Vec::new());
                return;
            }
            _ => return,
        };
        let diagnostics = self.diagnostics(&uri);
        self.publish(uri, diagnostics);
    }

    /// The diagnostics of an open document, as `rhapi check` gives them.
    fn diagnostics(&mut self, uri: &Url) -> Vec<LspDiagnostic> {
        let (Some(path), Some(text)) = (path_of(uri.as_str()), self.workspace.text(uri)) else {
            return Vec::new();
        };
        let text = text.to_string();
        let app = self.workspace.app_of(&path);
        let source = SourceFile::new(app.shown(&path), text);
        crate::tools::lint::file_diagnostics(&app.engine, &app.dir, &path, &source)
            .into_iter()
            .map(|d| LspDiagnostic {
                range: LspRange::new(
                    lsp_position(&source, d.range.start),
                    lsp_position(&source, d.range.end),
                ),
                severity: Some(match d.severity {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                    Severity::Info => DiagnosticSeverity::INFORMATION,
                }),
                code: Some(NumberOrString::String(d.code.to_string())),
                source: Some("rhapi".into()),
                message: match &d.hint {
                    Some(hint) => format!("{}\nhint: {hint}", d.message),
                    None => d.message,
                },
                ..Default::default()
            })
            .collect()
    }

    fn publish(&mut self, uri: Url, diagnostics: Vec<LspDiagnostic>) {
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        };
        let note = Notification::new("textDocument/publishDiagnostics".into(), params);
        self.out.push(note.into());
    }
}

/// The file path of a `file:` URI.
fn path_of(uri: &str) -> Option<PathBuf> {
    Url::parse(uri).ok()?.to_file_path().ok()
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), ":".into()]),
            ..Default::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            ..Default::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_server::RequestId;

    fn id(n: i32) -> RequestId {
        RequestId::from(n)
    }

    #[test]
    fn a_panic_is_an_error_not_the_end() {
        let found = guarded(|| -> u32 { panic!("boom") });
        assert_eq!(found, Err("internal error: boom".to_string()));
        assert_eq!(guarded(|| 3), Ok(3));
    }

    #[test]
    fn requests_before_initialize_and_after_shutdown_are_refused() {
        let mut server = Server {
            phase: Phase::Starting,
            workspace: Workspace::default(),
            out: Vec::new(),
        };
        let request = |n, method: &str| Request::new(id(n), method.into(), Value::Null);
        let refused = server.request(request(1, "textDocument/hover"));
        assert_eq!(
            refused.response_result.err().map(|e| e.code),
            Some(SERVER_NOT_INITIALIZED)
        );
        assert!(server
            .request(request(2, "initialize"))
            .response_result
            .is_ok());
        let unknown = server.request(request(3, "workspace/nothing"));
        assert_eq!(
            unknown.response_result.err().map(|e| e.code),
            Some(METHOD_NOT_FOUND)
        );
        let bad = server.request(request(4, "textDocument/hover"));
        assert_eq!(
            bad.response_result.err().map(|e| e.code),
            Some(INVALID_PARAMS)
        );
        assert!(server
            .request(request(5, "shutdown"))
            .response_result
            .is_ok());
        assert!(server
            .request(request(6, "shutdown"))
            .response_result
            .is_err());
    }
}
