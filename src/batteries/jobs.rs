//! `jobs::enqueue(name, payload)` and `jobs::enqueue(name, payload, #{ delay, key })`:
//! stores a job in the app's database ([`crate::jobs::queue`]) and returns its id. Inside
//! `db::transaction` the job is stored by the transaction's connection, so it commits or
//! rolls back with it (the outbox pattern).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, FnPtr, Map, Module, NativeCallContext};

use super::db::{in_transaction, with_conn, Handle};
use super::{at, script_error, ScriptResult};
use crate::app_context::AppContext;
use crate::env::EnvVars;
use crate::jobs::queue::{self, NewJob};
use crate::settings::parse_duration;

const CALL: &str = "jobs::enqueue";

/// The `jobs` module for an engine built for `app_dir` with `env`.
pub fn module(app_dir: &Path, env: &EnvVars, app: &Arc<AppContext>) -> Module {
    let handle = Handle::new(app_dir, env, app);
    let mut module = Module::new();
    let (h, a) = (Arc::clone(&handle), Arc::clone(app));
    module.set_native_fn(
        "enqueue",
        move |ctx: NativeCallContext, name: &str, payload: Dynamic| {
            at(&ctx, enqueue(&h, &a, name, payload, Map::new()))
        },
    );
    let (h, a) = (handle, Arc::clone(app));
    module.set_native_fn(
        "enqueue",
        move |ctx: NativeCallContext, name: &str, payload: Dynamic, options: Map| {
            at(&ctx, enqueue(&h, &a, name, payload, options))
        },
    );
    module
}

fn enqueue(
    handle: &Handle,
    app: &AppContext,
    name: &str,
    payload: Dynamic,
    options: Map,
) -> ScriptResult<i64> {
    if !app.jobs.knows(name) {
        return Err(script_error(format!(
            "{CALL}: no job named '{name}' (a job is a file jobs/{name}.rhai)"
        )));
    }
    if let Some(what) = not_json(&payload, 0) {
        return Err(script_error(format!(
            "{CALL}: the payload holds {what}, which JSON cannot hold"
        )));
    }
    let text = crate::script::res::to_json_owned(payload)?;
    let payload = String::from_utf8(text).map_err(|e| script_error(e.to_string()))?;
    let (delay, key) = read_options(options)?;
    let now = app.clock.now_ms();
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    let job = NewJob {
        name: name.to_string(),
        payload,
        key,
        run_at: now.saturating_add(delay_ms),
        now,
    };
    let create = !app.jobs.tables_ready();
    let id = with_conn(handle, CALL, move |conn, budget| {
        if create {
            queue::create_tables(conn, budget)?;
        }
        queue::enqueue(conn, budget, &job)
    })?;
    if create && !in_transaction() {
        app.jobs.mark_tables_ready();
    }
    // A delayed job is found by the runner's next look at the queue (it sleeps until the
    // next job is due, a second at most): waking it for each would cost every enqueue a
    // look at the queue.
    if delay.is_zero() {
        app.jobs.wake();
    }
    Ok(id)
}

/// `delay` (`"10m"`, or milliseconds) and `key` of the options map.
fn read_options(options: Map) -> ScriptResult<(Duration, Option<String>)> {
    let mut delay = Duration::ZERO;
    let mut key = None;
    for (name, value) in options {
        match name.as_str() {
            "delay" => {
                delay = match value.as_int() {
                    Ok(ms) => u64::try_from(ms)
                        .map(Duration::from_millis)
                        .map_err(|_| script_error(format!("{CALL}: delay must not be negative")))?,
                    Err(_) => parse_duration(&value.to_string())
                        .map_err(|e| script_error(format!("{CALL}: delay: {e}")))?,
                };
            }
            "key" => {
                let text = value
                    .into_string()
                    .map_err(|_| script_error(format!("{CALL}: key must be a string")))?;
                key = Some(text);
            }
            other => {
                return Err(script_error(format!(
                    "{CALL}: unknown option '{other}' (use delay, key)"
                )))
            }
        }
    }
    Ok((delay, key))
}

/// What in `value` JSON cannot hold (a blob, a function pointer, a value of a native
/// type), if anything. Values are at most 256 levels deep (clones stop there).
fn not_json(value: &Dynamic, depth: usize) -> Option<&'static str> {
    if depth > 300 {
        return Some("values nested too deep");
    }
    if value.is_blob() {
        return Some("a blob");
    }
    if value.is::<FnPtr>() {
        return Some("a function pointer");
    }
    if value.is_array() {
        let array = value.read_lock::<rhai::Array>()?;
        return array.iter().find_map(|v| not_json(v, depth + 1));
    }
    if value.is_map() {
        let map = value.read_lock::<Map>()?;
        return map.values().find_map(|v| not_json(v, depth + 1));
    }
    let plain = value.is_unit()
        || value.is_int()
        || value.is_float()
        || value.is_bool()
        || value.is_string()
        || value.is_char();
    (!plain).then_some("a value of another type")
}
