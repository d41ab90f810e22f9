//! `realtime::publish(topic, value)`: sends `value` to every subscriber of `topic`, on this
//! instance and, on PostgreSQL, on the others ([`crate::realtime`]; docs/batteries.md,
//! "realtime").

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, Module, NativeCallContext};

use super::{at, off_worker, script_error, ScriptResult};
use crate::app_context::AppContext;
use crate::memory::human_size;
use crate::realtime::Message;

/// JSON texts longer than this are written on the CPU threads, as `res.json` does.
const OFF_WORKER: usize = 256 * 1024;

/// The `realtime` module of `app`.
pub fn module(app: &Arc<AppContext>) -> Module {
    let mut module = Module::new();
    let a = Arc::clone(app);
    module.set_native_fn(
        "publish",
        move |ctx: NativeCallContext, topic: &str, value: Dynamic| {
            at(&ctx, publish(&a, topic, value))
        },
    );
    module
}

fn fail(message: impl std::fmt::Display) -> Box<EvalAltResult> {
    script_error(format!("realtime::publish: {message}"))
}

/// Encodes `value` once, within `[realtime] max_message` and the run's memory, and hands
/// it to the hub.
fn publish(app: &AppContext, topic: &str, value: Dynamic) -> ScriptResult<()> {
    super::budget()?;
    crate::realtime::check_topic(topic).map_err(fail)?;
    let max_message = app.hub.settings().max_message;
    let left = crate::script::context::memory_left();
    let max = max_message.min(left);
    let encoded = if max > OFF_WORKER && !value.is_string() && !value.is_blob() {
        match Message::from_value_within(&value, OFF_WORKER).map_err(fail)? {
            Some(message) => Some(message),
            None => off_worker(move || Message::from_value_within(&value, max))?.map_err(fail)?,
        }
    } else {
        Message::from_value_within(&value, max).map_err(fail)?
    };
    let Some(message) = encoded else {
        return Err(if left < max_message {
            fail("Out of memory: the message needs more than is left of the run's memory budget (--max-memory)")
        } else {
            fail(format!(
                "the message is larger than [realtime] max_message ({}): send less, or raise it in rhapi.toml",
                human_size(max_message)
            ))
        });
    };
    app.hub.publish(topic, message);
    Ok(())
}
