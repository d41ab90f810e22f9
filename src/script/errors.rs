//! Rhai errors, turned into what a client gets and what the log says.

use rhai::{Dynamic, EvalAltResult, Map};

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

/// The keys of what `catch (e)` binds for an error of Rhai itself (not a `throw`).
const CAUGHT_KEYS: [&str; 5] = ["message", "error", "source", "line", "position"];

/// What `catch (e)` binds, in one shape wherever the error happened (docs/reference.md,
/// "Errors"): a thrown value as it was thrown (a battery's error is a thrown string), and
/// for an error of Rhai itself (`parse_int("x")`, a missing function) the map
/// `#{ message, error, source, line, position }` of where it happened, whether that was
/// in the `try` block itself or inside a function it called, of this file or a module.
/// Rhai gives `value` (its own map, or the thrown value) and the error.
pub fn caught(value: Dynamic, err: &EvalAltResult) -> Dynamic {
    let inner = err.unwrap_inner();
    if matches!(inner, EvalAltResult::ErrorRuntime(..)) {
        return value;
    }
    if std::ptr::eq(inner, err) {
        // Raised in the `try` block: Rhai's map, without the fields of some kinds only.
        return match value.try_cast::<Map>() {
            Some(mut map) => {
                map.retain(|key, _| CAUGHT_KEYS.contains(&key.as_str()));
                map.into()
            }
            None => Dynamic::UNIT,
        };
    }
    let position = inner.position();
    let text = inner.to_string();
    let message = text
        .strip_suffix(&format!(" ({position})"))
        .unwrap_or(&text);
    let kind = format!("{inner:?}");
    let mut map = Map::new();
    map.insert("message".into(), message.into());
    map.insert("error".into(), kind.split('(').next().unwrap_or("").into());
    if let Some(source) = source_of(err) {
        map.insert("source".into(), source.into());
    }
    if let (Some(line), Some(column)) = (position.line(), position.position()) {
        map.insert("line".into(), (line as rhai::INT).into());
        map.insert("position".into(), (column as rhai::INT).into());
    }
    map.into()
}

/// The file the innermost function call of `err` ran in.
fn source_of(err: &EvalAltResult) -> Option<String> {
    let mut source = None;
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(_, file, inner, _) => {
                if !file.is_empty() {
                    source = Some(file.clone());
                }
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, _) => {
                if name.ends_with(".rhai") {
                    source = Some(name.clone());
                }
                err = inner;
            }
            _ => return source,
        }
    }
}
