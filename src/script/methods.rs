//! The method rules of a route, in one place: which function answers a request, which
//! methods a route allows (`Allow`), and what a request without a matching function gets
//! (automatic `OPTIONS` 204, `HEAD` through `GET`, 405). See docs/reference.md, "Handlers".

use http::Method;

use super::compile::RouteScript;
use crate::analysis::METHODS;

/// The function a request calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// `"GET"`, ..., or `"handler"`.
    pub function: &'static str,
    /// How many of `req`, `res`, `env` the function declares.
    pub arity: usize,
    /// `handler` returning `()` means "no branch took the request": 405.
    pub handler: bool,
    /// `fn middleware` of a `_middleware.rhai`: not answering hands the request on.
    pub middleware: bool,
}

/// What to do with a request to a route, decided before any script runs (`http/` turns
/// the automatic answers into responses).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Call this function.
    Call(Target),
    /// `OPTIONS` on a route without its own: 204 with this `Allow`.
    Options(String),
    /// 405, with `Allow` when the route's methods are known.
    NotAllowed(Option<String>),
}

/// The method's function if defined; `HEAD` falls back to `GET`; then `handler`; else
/// `OPTIONS` gets 204 and any other method 405.
pub fn plan(script: &RouteScript, method: &Method) -> Plan {
    let defined = |name: &str| {
        METHODS
            .iter()
            .position(|m| *m == name)
            .and_then(|i| script.methods[i].map(|arity| (METHODS[i], arity)))
    };
    let method_fn = defined(method.as_str())
        .or_else(|| (method == Method::HEAD).then(|| defined("GET")).flatten());
    if let Some((function, arity)) = method_fn {
        return Plan::Call(Target {
            function,
            arity,
            handler: false,
            middleware: false,
        });
    }
    if let Some(arity) = script.handler {
        return Plan::Call(Target {
            function: "handler",
            arity,
            handler: true,
            middleware: false,
        });
    }
    match allow(script) {
        Some(allow) if method == Method::OPTIONS => Plan::Options(allow),
        allow => Plan::NotAllowed(allow),
    }
}

/// `Allow` of a route with method functions: those, `HEAD` when `GET` exists, and
/// `OPTIONS`. `None` for a route without method functions (a `handler` route).
pub fn allow(script: &RouteScript) -> Option<String> {
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
