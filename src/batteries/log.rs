//! `log::info/warn/error(msg)`: server log lines tagged with the route's file and the line
//! of the call.

use rhai::{Dynamic, Module, NativeCallContext};

use crate::script::context::{self, LogLevel};

/// The `log` module.
pub fn module() -> Module {
    let mut module = Module::new();
    for (name, level) in [
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
    ] {
        module.set_native_fn(name, move |ctx: NativeCallContext, msg: Dynamic| {
            let text = match msg.clone().into_immutable_string() {
                Ok(text) => text.to_string(),
                Err(_) => msg.to_string(),
            };
            context::log(level, ctx.call_position().line(), text);
            Ok(())
        });
    }
    module
}
