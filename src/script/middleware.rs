//! `_middleware.rhai`: a file in any folder of `pages/api/` whose `fn middleware(req, res,
//! env)` runs before every route in that folder and below, outermost first
//! (docs/reference.md, "Middleware"). It answers (sends, or throws a status), or hands the
//! request on: a returned map is merged into `req.locals`, and the headers and cookies it set
//! without sending are kept for the final response.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use rhai::{Dynamic, Map};

use super::compile::RouteScript;
use super::methods::Target;
use super::res::Res;
use super::run::Reply;
use crate::error::ScriptError;

/// A compiled middleware file.
pub struct Middleware {
    pub script: Arc<RouteScript>,
    /// How many of `req`, `res`, `env` `fn middleware` declares.
    pub arity: usize,
}

/// A middleware of a route's chain, or why it failed to load (which answers the route with
/// a 500 in `dev`).
pub type Slot = Result<Arc<Middleware>, ScriptError>;

/// The middleware that apply to one route, outermost first.
pub type Chain = Arc<[Slot]>;

impl Middleware {
    /// A middleware from a compiled file; a file without `fn middleware` is an error.
    pub fn new(script: Arc<RouteScript>, display: &str) -> Result<Middleware, ScriptError> {
        match script.middleware {
            Some(arity) => Ok(Middleware { script, arity }),
            None => Err(ScriptError::in_file(
                display,
                "a _middleware.rhai file must define fn middleware(req, res, env) (0 to 3 parameters)",
            )),
        }
    }

    /// The function a run calls.
    pub fn target(&self) -> Target {
        Target {
            function: "middleware",
            arity: self.arity,
            handler: false,
            middleware: true,
        }
    }
}

/// The chain of the route file at `route`: the middleware of each folder that contains it,
/// outermost first (`middleware` is in the order [`crate::app_files::AppFiles::scan`]
/// lists them: outermost first).
pub fn chain_for(
    route: &Path,
    middleware: &[(PathBuf, Result<Arc<Middleware>, ScriptError>)],
) -> Vec<Slot> {
    middleware
        .iter()
        .filter(|(folder, _)| route.parent().is_some_and(|p| p.starts_with(folder)))
        .map(|(_, slot)| slot.clone())
        .collect()
}

/// How a middleware run ended without answering.
pub struct Passed {
    /// The returned map, merged into `req.locals`.
    pub locals: Option<Map>,
    /// Headers and cookies set without sending.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// What a middleware's run answers: a response when it sent one, else [`Reply::Passed`].
pub fn reply(value: Dynamic, res: &Res) -> Reply {
    if let Some(sent) = res.take_sent() {
        return Reply::Sent(sent);
    }
    let headers = res.take().map(|shaped| shaped.headers).unwrap_or_default();
    Reply::Passed(Passed {
        locals: value.try_cast::<Map>(),
        headers,
    })
}
