//! A job file's `const CONFIG = #{ timeout: "30s", attempts: 5, concurrency: 2 };` and
//! `const SCHEDULE = "...";`, read from the compiled file like a route's `CONFIG` (literal
//! values, never run).

use std::time::Duration;

use rhai::AST;

use super::schedule::Schedule;
use crate::error::ScriptError;
use crate::script::route_config::{duration, literal_const};

/// Runs of a job, the first included, before it is kept as failed.
pub const DEFAULT_ATTEMPTS: u32 = 5;

/// A job's own settings; `None` keeps the server's.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Time budget of one run (the server's `timeout` when `None`).
    pub timeout: Option<Duration>,
    /// Runs in all, the first included.
    pub attempts: u32,
    /// Runs of this job at once in one instance (only `[jobs] concurrency` when `None`).
    pub concurrency: Option<usize>,
    /// When the server enqueues it by itself.
    pub schedule: Option<Schedule>,
    /// The schedule as the file writes it.
    pub schedule_text: Option<String>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            timeout: None,
            attempts: DEFAULT_ATTEMPTS,
            concurrency: None,
            schedule: None,
            schedule_text: None,
        }
    }
}

/// The `CONFIG` and `SCHEDULE` of a compiled job file (`display` for errors).
pub fn read(ast: &AST, display: &str) -> Result<JobConfig, ScriptError> {
    let mut config = JobConfig::default();
    if let Some((value, error)) = literal_const(ast, "SCHEDULE", display)? {
        let text = value
            .into_immutable_string()
            .map_err(|_| error("must be a string, e.g. \"0 3 * * *\" or \"@every 10m\"".into()))?;
        config.schedule = Some(Schedule::parse(&text).map_err(&error)?);
        config.schedule_text = Some(text.to_string());
    }
    let Some((value, error)) = literal_const(ast, "CONFIG", display)? else {
        return Ok(config);
    };
    let map = value
        .try_cast::<rhai::Map>()
        .ok_or_else(|| error("must be a map, e.g. #{ attempts: 3 }".into()))?;
    let whole = |value: &rhai::Dynamic, key: &str| match value.as_int() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(error(format!("{key} must be a whole number of at least 1"))),
    };
    for (key, value) in map {
        match key.as_str() {
            "timeout" => config.timeout = Some(duration(&value).map_err(&error)?),
            "attempts" => {
                config.attempts = u32::try_from(whole(&value, "attempts")?).unwrap_or(u32::MAX)
            }
            "concurrency" => {
                config.concurrency =
                    Some(usize::try_from(whole(&value, "concurrency")?).unwrap_or(usize::MAX));
            }
            other => {
                return Err(error(format!(
                    "unknown key '{other}' (use timeout, attempts, concurrency)"
                )))
            }
        }
    }
    Ok(config)
}
