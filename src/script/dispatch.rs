//! Which function answers a request (or whether the answer is 405), and running it.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use rhai::{CallFnOptions, Dynamic, Engine, Scope};

use super::compile::{RouteScript, METHODS};
use super::context::RunGuard;
use super::errors::{classify, Failure};
use super::response::{body_of, Res, Sent};
use crate::env::EnvMap;
use crate::error::ScriptError;

/// What to do with a request to a route, decided before any script runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Call this function; `handler` tells the return-value rules apart.
    Call {
        function: &'static str,
        params: usize,
        handler: bool,
    },
    /// `OPTIONS` on a route without its own: 204 with this `Allow`.
    Options(String),
    /// 405, with `Allow` when the route's methods are known.
    NotAllowed(Option<String>),
}

/// Dispatch: the method's function if defined; `HEAD` falls back to `GET`; then `handler`;
/// else `OPTIONS` gets 204 and any other method 405.
pub fn plan(script: &RouteScript, method: &Method) -> Plan {
    let defined = |name: &str| {
        METHODS
            .iter()
            .position(|m| *m == name)
            .and_then(|i| script.methods[i].map(|params| (METHODS[i], params)))
    };
    let method_fn = defined(method.as_str())
        .or_else(|| (method == Method::HEAD).then(|| defined("GET")).flatten());
    if let Some((function, params)) = method_fn {
        return Plan::Call {
            function,
            params,
            handler: false,
        };
    }
    if let Some(params) = script.handler {
        return Plan::Call {
            function: "handler",
            params,
            handler: true,
        };
    }
    let allow = allow_header(script);
    if method == Method::OPTIONS && allow.is_some() {
        return Plan::Options(allow.unwrap_or_default());
    }
    Plan::NotAllowed(allow)
}

/// `Allow` of a route with method functions: those, `HEAD` when `GET` exists, and
/// `OPTIONS`. `None` for a route without method functions.
pub fn allow_header(script: &RouteScript) -> Option<String> {
    if script.methods.iter().all(Option::is_none) {
        return None;
    }
    let has = |name: &str| {
        METHODS
            .iter()
            .position(|m| *m == name)
            .is_some_and(|i| script.methods[i].is_some())
    };
    let allowed: Vec<&str> = METHODS
        .iter()
        .copied()
        .filter(|m| has(m) || (*m == "HEAD" && has("GET")) || *m == "OPTIONS")
        .collect();
    Some(allowed.join(", "))
}

/// How a run ended.
pub enum Reply {
    /// A response to deliver.
    Sent(Sent),
    /// `handler` returned without answering: 405.
    NotAllowed(Option<String>),
    /// `throw #{ status, ... }`.
    Thrown { status: u16, body: Vec<u8> },
    /// Over budget: 504.
    Timeout(ScriptError),
    /// Runtime error: 500.
    Failed(ScriptError),
    /// The inline slice ran out: run again on the pool.
    Moved,
    /// The script pool's queue is full: 503.
    Busy,
}

/// One call of a route's function: everything a thread needs to run it, but `req`, which
/// each run takes by value (a run moved off its HTTP worker gets `req` built again, so the
/// usual run never pays for a copy).
pub struct Call {
    pub engine: Arc<Engine>,
    pub script: Arc<RouteScript>,
    pub function: &'static str,
    pub params: usize,
    pub handler: bool,
    pub env: EnvMap,
    pub deadline: Instant,
    /// Bytes the run may allocate and keep.
    pub max_memory: usize,
}

impl Call {
    /// Runs the call on this thread with `req`; `slice_end` bounds an inline run.
    pub fn run(&self, req: Dynamic, slice_end: Option<Instant>) -> Reply {
        let guard = RunGuard::enter(
            self.script.file.clone(),
            self.deadline,
            slice_end,
            self.max_memory,
        );
        let res = Res::default();
        // Only the parameters the function declares: `fn GET(req, res)` never sees `env`.
        let mut args = Vec::with_capacity(self.params);
        if self.params > 0 {
            args.push(req);
        }
        if self.params > 1 {
            args.push(Dynamic::from(res.clone()));
        }
        if self.params > 2 {
            args.push(Dynamic::from(self.env.clone()));
        }
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(true).rewind_scope(false);
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut scope,
            &self.script.ast,
            self.function,
            args,
        );
        let reply = match result {
            Ok(value) => self.returned(value, &res),
            Err(err) => self.failed(&err, &res),
        };
        if !matches!(reply, Reply::Moved) {
            guard.flush_logs();
        }
        reply
    }

    fn returned(&self, value: Dynamic, res: &Res) -> Reply {
        if let Some(sent) = res.take() {
            return Reply::Sent(sent);
        }
        if value.is_unit() {
            return if self.handler {
                Reply::NotAllowed(allow_header(&self.script))
            } else {
                Reply::Sent(Sent {
                    status: 204,
                    ..Sent::default()
                })
            };
        }
        match body_of(value) {
            Ok((body, content_type)) => Reply::Sent(Sent {
                status: 200,
                body,
                content_type,
                etag: true,
                ..Sent::default()
            }),
            Err(err) => self.failed(&err, res),
        }
    }

    /// Rhai drops the position of limit errors (sizes, stack depth) on the way out of
    /// function calls: point at the function that was called, and say so.
    fn with_position(&self, mut err: ScriptError) -> ScriptError {
        if err.location.line.is_none() && err.location.file == *self.script.file {
            if let Some((line, column)) = self.script.function_position(self.function) {
                err.location.line = Some(line);
                err.location.column = Some(column);
                err.message = format!("{} (in fn {})", err.message, self.function);
            }
        }
        err
    }

    fn failed(&self, err: &rhai::EvalAltResult, res: &Res) -> Reply {
        let failure = classify(err, &self.script.file);
        if matches!(failure, Failure::Slice) {
            return Reply::Moved;
        }
        // A response already sent is the one delivered; the error is only logged.
        if res.was_sent() {
            if let Failure::Error(e) | Failure::Timeout(e) = &failure {
                tracing::error!(
                    "{} (after the response was sent)",
                    crate::env::redact(&e.to_string())
                );
            }
            return res.take().map_or(Reply::Moved, Reply::Sent);
        }
        match failure {
            Failure::Timeout(e) => Reply::Timeout(e),
            Failure::Thrown { status, body } => Reply::Thrown { status, body },
            Failure::Error(e) => Reply::Failed(self.with_position(e)),
            Failure::Slice => Reply::Moved,
        }
    }
}
