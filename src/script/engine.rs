//! Building the one Rhai engine every request shares: limits, callbacks, modules, types.

use std::path::Path;
use std::sync::Arc;

use rhai::Engine;

use super::context::{self, LogLevel};
use super::modules::PagesResolver;
use super::response::Res;
use crate::env::{EnvMap, EnvVars};
use crate::settings::Limits;

/// Builds the engine for the app in `app_dir`. It is rebuilt when `.env` changes, since
/// `env::NAME` values are part of it.
pub fn build(app_dir: &Path, limits: &Limits, env: &Arc<EnvVars>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(128, 64)
        .on_progress(context::progress)
        .on_print(|text| context::log(LogLevel::Info, text.to_string()))
        .on_debug(|text, _source, pos| {
            let line = match pos.line() {
                Some(line) => format!("line {line}: {text}"),
                None => text.to_string(),
            };
            context::log(LogLevel::Debug, line)
        });
    // No code from strings at run time: every script is compiled, located and limited.
    engine.disable_symbol("eval");
    engine.set_module_resolver(PagesResolver::new(app_dir));
    engine.register_static_module("env", env.module().into());
    Res::register(&mut engine);
    super::stream::register(&mut engine);
    EnvMap::register(&mut engine);
    crate::batteries::register(&mut engine, app_dir, env);
    engine
}
