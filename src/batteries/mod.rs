//! Batteries: the modules that give scripts I/O and the usual tools of an API route
//! (docs/reference.md, "Batteries", and docs/batteries.md). Each submodule registers one static module with the engine.
//!
//! Every battery call is synchronous from the script's view (it suspends the run while it
//! waits; see [`crate::executor`]) and bounded by the request's time budget ([`budget`]). A failure is a catchable script error whose message has been
//! through [`crate::env::redact`]; running out of budget ends the run like any timeout (504).

pub mod cache;
pub mod crypto;
pub mod db;
pub mod docs;
pub mod http;
pub mod jobs;
pub mod jwt;
pub mod log;
pub mod mail;
pub mod rate;
pub mod realtime;
pub mod sleep;
pub mod time;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position};

use crate::app_context::AppContext;
use crate::env::EnvVars;
use crate::script::context::{self, TIMEOUT_TOKEN};

/// Registers every battery module with `engine`, for the app in `app_dir`.
pub fn register(engine: &mut Engine, app_dir: &Path, env: &Arc<EnvVars>, app: &Arc<AppContext>) {
    engine.register_static_module("db", db::module(app_dir, env, app).into());
    engine.register_static_module("crypto", crypto::module().into());
    engine.register_static_module("http", http::module().into());
    engine.register_static_module("jobs", jobs::module(app_dir, env, app).into());
    engine.register_static_module("jwt", jwt::module().into());
    engine.register_static_module("log", log::module().into());
    engine.register_static_module("mail", mail::module(env, app).into());
    engine.register_static_module("time", time::module(app).into());
    engine.register_static_module("cache", cache::module(app).into());
    engine.register_static_module("rate", rate::module(app_dir, env, app).into());
    engine.register_static_module("realtime", realtime::module(app).into());
    sleep::register(engine);
    realtime::register(engine, app);
}

pub use crate::script::ScriptResult;

/// A catchable script error; env values in `message` are replaced by `[redacted]`.
pub fn script_error(message: impl AsRef<str>) -> Box<EvalAltResult> {
    crate::env::redact(message.as_ref()).into()
}

/// Gives an error of a battery call the script position of the call (so the 500 body and
/// the log name the line).
pub fn at<T>(ctx: &NativeCallContext, result: ScriptResult<T>) -> ScriptResult<T> {
    result.map_err(|mut err| {
        if err.position().is_none() {
            err.set_position(ctx.call_position());
        }
        err
    })
}

/// Budget for blocking work outside any request (migrations at start, `rhapi migrate`).
const OUTSIDE_REQUEST: Duration = Duration::from_secs(60);

/// The time this call may block: what is left of the request's budget (or
/// [`OUTSIDE_REQUEST`] outside a request). A spent budget ends the run as a timeout.
pub fn budget() -> Result<Duration, Box<EvalAltResult>> {
    match context::remaining() {
        None => Ok(OUTSIDE_REQUEST),
        Some(left) if left.is_zero() => Err(timed_out()),
        Some(left) => Ok(left),
    }
}

/// The error that ends a run over its time budget (504, not catchable), as the engine's
/// own progress check does.
pub fn timed_out() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(TIMEOUT_TOKEN), Position::NONE).into()
}

/// `work` on the CPU threads while the run waits ([`crate::cpu::wait`]); a spent budget
/// ends the run as a timeout.
pub fn off_worker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ScriptResult<T> {
    match crate::cpu::wait(work) {
        crate::executor::Waited::Done(value) => Ok(value),
        crate::executor::Waited::TimedOut => Err(timed_out()),
    }
}

/// Whether the request's budget is spent (a blocking call that failed then failed because
/// of the budget, and must end the run as a timeout).
pub fn budget_spent() -> bool {
    context::remaining().is_some_and(|left| left.is_zero())
}
