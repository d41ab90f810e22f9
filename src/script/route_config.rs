//! `const CONFIG = #{ body_limit: "10mb", timeout: "30s", max_operations: 50000000 };` at
//! the top of a route file: that route's limits instead of the server's
//! (docs/reference.md, "Per-route limits"), and its rate limit (`rate_limit: #{ limit: 10,
//! per: "1m" }`, by client address; "Rate limits"). Read from the compiled file, never run.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Stmt, AST};

use crate::error::{Location, ScriptError};
use crate::rate_limit::Limit;
use crate::settings::{parse_duration, parse_size};

/// A route's own limits; `None` keeps the server's. Each key is the `[server]` key of the
/// same name in [`crate::settings::ServerSettings`], for this route only; values are
/// written as there (sizes and durations with [`parse_size`] and [`parse_duration`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteConfig {
    pub body_limit: Option<usize>,
    pub timeout: Option<Duration>,
    pub max_operations: Option<u64>,
    /// The route's own rate limit, per client address.
    pub rate_limit: Option<RouteRate>,
}

/// `CONFIG.rate_limit`: `limit` requests per window for each client address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRate {
    pub limit: Limit,
    /// What its counters are told apart by: the route file and the window.
    pub scope: Arc<str>,
}

/// The `CONFIG` of a compiled route file (`display` for errors). It must be a top-level
/// `const` holding a map of literal values with known keys.
pub fn read(ast: &AST, display: &str) -> Result<RouteConfig, ScriptError> {
    let Some((value, error)) = literal_const(ast, "CONFIG", display)? else {
        return Ok(RouteConfig::default());
    };
    let map = value
        .try_cast::<rhai::Map>()
        .ok_or_else(|| error("must be a map, e.g. #{ timeout: \"30s\" }".into()))?;
    let mut config = RouteConfig::default();
    for (key, value) in map {
        match key.as_str() {
            "body_limit" => config.body_limit = Some(size(&value).map_err(&error)?),
            "timeout" => config.timeout = Some(duration(&value).map_err(&error)?),
            "max_operations" => match value.as_int() {
                Ok(n) if n >= 1 => config.max_operations = Some(n as u64),
                _ => {
                    return Err(error(
                        "max_operations must be a whole number of at least 1".into(),
                    ))
                }
            },
            "rate_limit" => config.rate_limit = Some(rate_limit(value, display).map_err(&error)?),
            other => {
                return Err(error(format!(
                    "unknown key '{other}' (use body_limit, timeout, max_operations, rate_limit)"
                )))
            }
        }
    }
    Ok(config)
}

/// An error of the top-level constant it was made for: `NAME: message`, at its line.
pub type ConstError = Box<dyn Fn(String) -> ScriptError>;

/// The literal value of the top-level `const NAME` of a compiled file, never run, with a
/// maker of errors that point at it; `None` when the file has no such constant.
pub fn literal_const(
    ast: &AST,
    name: &'static str,
    display: &str,
) -> Result<Option<(Dynamic, ConstError)>, ScriptError> {
    let found = ast.statements().iter().find_map(|stmt| match stmt {
        Stmt::Var(var, flags, pos) if var.0.name == name => Some((var, *flags, *pos)),
        _ => None,
    });
    let Some((var, flags, pos)) = found else {
        return Ok(None);
    };
    let file = display.to_string();
    let error: ConstError = Box::new(move |message: String| ScriptError {
        message: format!("{name}: {message}"),
        location: Location {
            file: file.clone(),
            line: pos.line(),
            column: pos.position(),
        },
        hint: None,
    });
    if !flags.contains(rhai::ASTFlags::CONSTANT) {
        return Err(error("declare it with const, not let".into()));
    }
    let value = var
        .1
        .get_literal_value(None)
        .ok_or_else(|| error("must be a literal value, e.g. #{ timeout: \"30s\" }".into()))?;
    Ok(Some((value, error)))
}

/// `rate_limit: #{ limit: 10, per: "1m" }` of the route in `file`.
fn rate_limit(value: Dynamic, file: &str) -> Result<RouteRate, String> {
    const FORM: &str = "write rate_limit: #{ limit: 10, per: \"1m\" }";
    let map = value
        .try_cast::<rhai::Map>()
        .ok_or_else(|| format!("rate_limit must be a map: {FORM}"))?;
    let (mut limit, mut per) = (None, None);
    for (key, value) in map {
        match key.as_str() {
            "limit" => match value.as_int() {
                Ok(n) if n >= 1 => limit = Some(n as u64),
                _ => return Err("rate_limit.limit must be a whole number of at least 1".into()),
            },
            "per" => match value.into_immutable_string() {
                Ok(text) => {
                    per = Some(parse_duration(&text).map_err(|e| format!("rate_limit.per: {e}"))?)
                }
                Err(_) => {
                    return Err(format!(
                        "rate_limit.per must be a duration such as \"1m\": {FORM}"
                    ))
                }
            },
            other => {
                return Err(format!(
                    "rate_limit: unknown key '{other}' (use limit, per)"
                ))
            }
        }
    }
    let (Some(limit), Some(per)) = (limit, per) else {
        return Err(format!("rate_limit needs limit and per: {FORM}"));
    };
    let per_ms = i64::try_from(per.as_millis()).unwrap_or(i64::MAX);
    Ok(RouteRate {
        limit: Limit { limit, per_ms },
        scope: format!("route {file} {per_ms}").into(),
    })
}

fn size(value: &Dynamic) -> Result<usize, String> {
    match value.as_int() {
        Ok(n) if n >= 0 => Ok(n as usize),
        Ok(_) => Err("body_limit must not be negative".into()),
        Err(_) => parse_size(&value.to_string()).map_err(|e| format!("body_limit: {e}")),
    }
}

pub(crate) fn duration(value: &Dynamic) -> Result<Duration, String> {
    match value.as_int() {
        Ok(n) if n >= 1 => Ok(Duration::from_secs(n as u64)),
        Ok(_) => Err("timeout must be more than zero".into()),
        Err(_) => parse_duration(&value.to_string()).map_err(|e| format!("timeout: {e}")),
    }
}
