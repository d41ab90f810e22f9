//! Building the one Rhai engine every request shares: limits, callbacks, modules, types.

use std::path::Path;
use std::sync::Arc;

use std::any::TypeId;
use std::cmp::Ordering;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext, Position};

use super::context::{self, LogLevel};
use super::modules::PagesResolver;
use super::res::Res;
use crate::app_context::AppContext;
use crate::env::{EnvMap, EnvVars};
use crate::settings::Limits;

/// Builds the engine for the app in `app_dir`, whose context is `app`. It is rebuilt when
/// `.env` changes, since `env::NAME` values are part of it.
pub fn build(app_dir: &Path, limits: &Limits, env: &Arc<EnvVars>, app: &Arc<AppContext>) -> Engine {
    // Rhai's built-ins ask before they allocate in proportion to their arguments.
    rhai::reserve::set_reserve_hook(context::reserve);
    rhai::reserve::set_tick_hook(context::tick);
    rhai::reserve::set_too_deep_hook(context::too_deep);
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_call_levels(limits.max_call_depth)
        .set_max_expr_depths(128, 64)
        // `"item " + i` without a nested call of `to_string` (vendor/rhai/PATCHES.md, patch
        // 8): rhapi registers no `+` and no `to_string` of its own for integers.
        .set_fast_string_concat(true)
        .on_progress(context::progress)
        // `print` is answered by the functions of `register_print` (Rhai gives this callback
        // no position); the callback only keeps Rhai from writing to stdout.
        .on_print(|_| {})
        .on_debug(|text, _source, pos| context::log(LogLevel::Debug, pos.line(), text.to_string()));
    // What `catch (e)` binds has one shape wherever the error happened
    // (`errors::caught`), and never holds a secret, whatever error it was made from
    // (vendor/rhai/PATCHES.md, patch 9).
    let secrets = Arc::clone(env);
    engine.on_catch(move |value, err| secrets.redact_value(super::errors::caught(value, err)));
    // No code from strings at run time: every script is compiled, located and limited.
    engine.disable_symbol("eval");
    engine.set_module_resolver(PagesResolver::new(app_dir));
    engine.register_static_module("env", env.module().into());
    register_print(&mut engine);
    register_sort(&mut engine);
    Res::register(&mut engine);
    super::socket::Socket::register(&mut engine);
    super::stream::register(&mut engine);
    EnvMap::register(&mut engine);
    crate::batteries::register(&mut engine, app_dir, env, app);
    engine
}

/// The engine of an empty app, with every battery: for unit tests that read what scripts
/// can call.
#[cfg(test)]
pub fn for_tests() -> Engine {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pages/api")).unwrap();
    let env = Arc::new(EnvVars::default());
    let app = AppContext::new(&env);
    build(dir.path(), &Limits::default(), &env, &app)
}

/// `print(x)` and `print()`: a log line tagged with the line of the call, as `log::info`
/// and `debug` are. They return `""`, which the (silent) print callback then receives.
/// Rhai's own `print` has an overload per type and resolves the exact type first, so each
/// of those is replaced.
fn register_print(engine: &mut Engine) {
    fn log_at(ctx: &NativeCallContext, text: String) -> ImmutableString {
        context::log(LogLevel::Info, ctx.call_position().line(), text);
        ImmutableString::new()
    }
    fn text_of(value: Dynamic) -> String {
        match value.clone().into_immutable_string() {
            Ok(text) => text.to_string(),
            Err(_) => value.to_string(),
        }
    }
    macro_rules! print_for {
        ($($t:ty),*) => {$(
            engine.register_fn("print", |ctx: NativeCallContext, value: $t| {
                log_at(&ctx, text_of(Dynamic::from(value)))
            });
        )*};
    }
    print_for!(
        Dynamic,
        ImmutableString,
        char,
        bool,
        (),
        rhai::INT,
        rhai::FLOAT,
        rhai::Array,
        rhai::Map,
        rhai::Blob
    );
    engine.register_fn("print", |ctx: NativeCallContext| {
        log_at(&ctx, String::new())
    });
}

/// Arrays longer than this are sorted on the CPU threads: sorting 10,000 values takes
/// about a millisecond.
const OFF_WORKER_SORT: usize = 10_000;

/// `array.sort()` as Rhai's own (one type of values: numbers, characters, strings, booleans
/// or `()`), with a long array sorted on the CPU threads while the run waits.
fn register_sort(engine: &mut Engine) {
    engine.register_fn(
        "sort",
        |array: &mut Array| -> Result<(), Box<EvalAltResult>> {
            let Some(first) = array.first() else {
                return Ok(());
            };
            let kind = first.type_id();
            if array.iter().any(|value| value.type_id() != kind) {
                return Err(not_sortable("elements of different types cannot be sorted"));
            }
            let order = order_of(kind).ok_or_else(|| {
                not_sortable(&format!(
                    "elements of {} cannot be sorted",
                    first.type_name()
                ))
            })?;
            if array.len() <= OFF_WORKER_SORT {
                array.sort_by(order);
                return Ok(());
            }
            let mut taken = std::mem::take(array);
            *array = crate::batteries::off_worker(move || {
                taken.sort_by(order);
                taken
            })?;
            Ok(())
        },
    );
}

/// The error Rhai's own `sort` gives for values it cannot sort.
fn not_sortable(message: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorFunctionNotFound(message.into(), Position::NONE).into()
}

/// How values of the type `kind` compare, for the types Rhai's `sort` sorts.
fn order_of(kind: TypeId) -> Option<fn(&Dynamic, &Dynamic) -> Ordering> {
    let order: fn(&Dynamic, &Dynamic) -> Ordering = if kind == TypeId::of::<rhai::INT>() {
        |a, b| a.as_int().ok().cmp(&b.as_int().ok())
    } else if kind == TypeId::of::<rhai::FLOAT>() {
        |a, b| {
            let (a, b) = (a.as_float().ok(), b.as_float().ok());
            a.partial_cmp(&b).unwrap_or(Ordering::Equal)
        }
    } else if kind == TypeId::of::<char>() {
        |a, b| a.as_char().ok().cmp(&b.as_char().ok())
    } else if kind == TypeId::of::<ImmutableString>() {
        |a, b| {
            let (a, b) = (
                a.read_lock::<ImmutableString>(),
                b.read_lock::<ImmutableString>(),
            );
            a.as_deref()
                .map(|s| s.as_str())
                .cmp(&b.as_deref().map(|s| s.as_str()))
        }
    } else if kind == TypeId::of::<bool>() {
        |a, b| a.as_bool().ok().cmp(&b.as_bool().ok())
    } else if kind == TypeId::of::<()>() {
        |_, _| Ordering::Equal
    } else {
        return None;
    };
    Some(order)
}
