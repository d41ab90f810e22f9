//! Rhai errors, turned into what a client gets and what the log says.

use rhai::EvalAltResult;

use super::context::{DEPTH_TOKEN, MEMORY_TOKEN, TIMEOUT_TOKEN};
use crate::error::{Location, ScriptError};

/// How a script run failed.
pub enum Failure {
    /// Over its time or operations budget: 504.
    Timeout(ScriptError),
    /// `throw #{ status: 4xx/5xx, ... }`: that status, the map as the body.
    Thrown { status: u16, body: Vec<u8> },
    /// Any other error or throw: 500.
    Error(ScriptError),
}

/// Classifies a run error of the script in `file`.
pub fn classify(err: &EvalAltResult, file: &str) -> Failure {
    match err.unwrap_inner() {
        EvalAltResult::ErrorTerminated(token, _) => {
            let token = token.clone().into_immutable_string().unwrap_or_default();
            if token == MEMORY_TOKEN {
                let mut located = locate(err, file);
                located.message =
                    "Script used too much memory: over its memory budget (--max-memory)".into();
                return Failure::Error(located);
            }
            if token == DEPTH_TOKEN {
                let mut located = locate(err, file);
                located.message = format!(
                    "Script nested arrays or maps deeper than {} levels",
                    rhai::reserve::MAX_DEPTH
                );
                return Failure::Error(located);
            }
            let mut located = locate(err, file);
            if token == TIMEOUT_TOKEN {
                located.message = "Script timed out: over its time budget".into();
            }
            Failure::Timeout(located)
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            let mut located = locate(err, file);
            located.message = "Script timed out: over its operations budget".into();
            Failure::Timeout(located)
        }
        EvalAltResult::ErrorRuntime(value, _) => match thrown_status(value) {
            Some(status) => Failure::Thrown {
                status,
                body: serde_json::to_vec(value).unwrap_or_default(),
            },
            None => Failure::Error(locate(err, file)),
        },
        _ => Failure::Error(locate(err, file)),
    }
}

/// `throw #{ status: 400..=599, ... }` answers with that status.
fn thrown_status(value: &rhai::Dynamic) -> Option<u16> {
    let map = value.read_lock::<rhai::Map>()?;
    let status = map.get("status")?.as_int().ok()?;
    (400..=599).contains(&status).then_some(status as u16)
}

/// The message and file:line:col of an error, following calls into functions and modules
/// down to where it happened. `file` is the route the error surfaced in.
pub fn locate(err: &EvalAltResult, file: &str) -> ScriptError {
    let mut file = file.to_string();
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(_, source, inner, _) => {
                if !source.is_empty() {
                    file.clone_from(source);
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, _) => {
                if name.ends_with(".rhai") {
                    file.clone_from(name);
                }
                err = inner;
            }
            _ => break,
        }
    }
    let position = err.position();
    let message = match err {
        EvalAltResult::ErrorRuntime(value, _) if value.is_string() => value.to_string(),
        other => {
            // Rhai appends " (line l, position c)"; the location is reported on its own.
            let text = other.to_string();
            let suffix = format!(" ({position})");
            text.strip_suffix(&suffix)
                .map(str::to_string)
                .unwrap_or(text)
        }
    };
    ScriptError {
        message,
        location: Location {
            file,
            line: position.line(),
            column: position.position(),
        },
        hint: None,
    }
}
