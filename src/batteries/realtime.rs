//! `realtime::publish(topic, value)`: sends `value` to every subscriber of `topic`, on this
//! instance and, on PostgreSQL, on the others; `res.subscribe(topics)`: answers with an
//! event stream of the topics' publishes ([`crate::realtime`]; docs/reference.md, "Publish
//! and subscribe").

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Module, NativeCallContext};

use super::{at, off_worker, script_error, ScriptResult};
use crate::app_context::AppContext;
use crate::memory::human_size;
use crate::realtime::{Message, Subscription};
use crate::script::res::Res;

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

/// Registers `res.subscribe(topics)` for `app`.
pub fn register(engine: &mut Engine, app: &Arc<AppContext>) {
    let a = Arc::clone(app);
    engine.register_fn(
        "subscribe",
        move |ctx: NativeCallContext, res: &mut Res, topics: Dynamic| {
            at(&ctx, subscribe(&a, res, topics))
        },
    );
}

/// Subscribes a new subscriber to `topics` (a string or an array of strings) and sends
/// the event stream of its publishes as the response.
fn subscribe(app: &AppContext, res: &Res, topics: Dynamic) -> ScriptResult<()> {
    super::budget()?;
    let wrong = || {
        script_error(format!(
            "res.subscribe(topics): topics must be a string or an array of strings, not {}",
            topics.type_name()
        ))
    };
    let names: Vec<Dynamic> = if topics.is_string() {
        vec![topics.clone()]
    } else {
        topics.clone().into_array().map_err(|_| wrong())?
    };
    if names.is_empty() {
        return Err(script_error(
            "res.subscribe(topics): give at least one topic",
        ));
    }
    let settings = app.hub.settings();
    let (subscriber, inbox) = app.hub.subscriber(settings.send_queue);
    for name in &names {
        let name = name
            .read_lock::<rhai::ImmutableString>()
            .ok_or_else(wrong)?;
        subscriber
            .subscribe(&name)
            .map_err(|err| script_error(format!("res.{err}")))?;
    }
    res.subscribe(Subscription {
        inbox,
        keep_alive: settings.keep_alive,
    })
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
