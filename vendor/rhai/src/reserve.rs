//! rhapi patch 10: the host is asked before a built-in function allocates in proportion to
//! its arguments (`a.pad(n, x)`, `s.pad(n, c)`, `blob(n)`, `+` on strings, arrays and blobs,
//! `split`, `replace`, `to_json`, ...), so that a budget the host keeps can refuse the call
//! before the memory is taken. A refused call fails with a catchable runtime error whose
//! message is the host's; nothing is allocated. Without a hook every call is allowed, as in
//! stock Rhai.

use crate::types::dynamic::Union;
use crate::{Dynamic, Position, RhaiResultOf, ERR};
use std::sync::OnceLock;

/// The host's check: `Ok(())` when `bytes` more may be allocated now, else the message of
/// the error the call fails with.
pub type ReserveHook = fn(usize) -> Result<(), String>;

static HOOK: OnceLock<ReserveHook> = OnceLock::new();

/// Sets the process's check (the first call wins; later calls are ignored).
pub fn set_reserve_hook(hook: ReserveHook) {
    let _ = HOOK.set(hook);
}

/// Asks the host whether `bytes` more may be allocated now.
#[inline]
pub fn reserve(bytes: usize) -> RhaiResultOf<()> {
    match HOOK.get() {
        Some(hook) => {
            hook(bytes).map_err(|message| ERR::ErrorRuntime(message.into(), Position::NONE).into())
        }
        None => Ok(()),
    }
}

/// [`reserve`] with the host's message as it is (for errors of other types, as serde's).
#[inline]
pub fn allowed(bytes: usize) -> Result<(), String> {
    HOOK.get().map_or(Ok(()), |hook| hook(bytes))
}

/// [`reserve`] for `count` items of `each` bytes (saturating: a huge count is refused, not
/// wrapped).
#[inline]
pub fn reserve_n(count: usize, each: usize) -> RhaiResultOf<()> {
    reserve(count.saturating_mul(each))
}

/// Heap bytes taken by one string piece of `len` bytes in an array: its `Dynamic` slot, the
/// shared string's allocation, and the text when it does not fit inline.
#[inline]
#[must_use]
pub fn string_item_bytes(len: usize) -> usize {
    const SLOT: usize = std::mem::size_of::<Dynamic>();
    const SHARED_STRING: usize = 48;
    SLOT + SHARED_STRING + if len > 23 { len } else { 0 }
}

/// Bytes that a clone of `value` allocates: arrays, blobs and maps are copied deeply;
/// strings are shared (a clone costs nothing); other values live inside the `Dynamic`.
#[must_use]
pub fn clone_bytes(value: &Dynamic) -> usize {
    const SLOT: usize = std::mem::size_of::<Dynamic>();
    match value.0 {
        #[cfg(not(feature = "no_index"))]
        Union::Array(ref array, ..) => array
            .iter()
            .fold(array.len().saturating_mul(SLOT), |sum, item| {
                sum.saturating_add(clone_bytes(item))
            }),
        #[cfg(not(feature = "no_index"))]
        Union::Blob(ref blob, ..) => blob.len(),
        #[cfg(not(feature = "no_object"))]
        Union::Map(ref map, ..) => map.iter().fold(0usize, |sum, (key, item)| {
            // A map entry: its key (inline when short), its value slot and the node's share.
            sum.saturating_add(64 + if key.len() > 23 { key.len() } else { 0 })
                .saturating_add(clone_bytes(item))
        }),
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(..) => 0,
        _ => 0,
    }
}

/// [`reserve`] for `s.replace(find, sub)` where `sub` is `sub_len` bytes: the new string.
pub fn reserve_replace(s: &str, find: &str, sub_len: usize) -> RhaiResultOf<()> {
    let grows = sub_len.saturating_sub(find.len());
    let count = if grows == 0 {
        0
    } else if find.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(find).count()
    };
    reserve(s.len().saturating_add(count.saturating_mul(grows)))
}

/// [`reserve`] for splitting `s` into `pieces` strings (an array of them).
pub fn reserve_split(s: &str, pieces: usize) -> RhaiResultOf<()> {
    reserve(pieces.saturating_mul(string_item_bytes(0)).saturating_add(s.len()))
}

/// How many pieces `s.split(delimiter)` makes, at most `max`.
#[must_use]
pub fn split_pieces(s: &str, delimiter: &str, max: usize) -> usize {
    let pieces = if delimiter.is_empty() {
        s.chars().count() + 2
    } else {
        s.matches(delimiter).count() + 1
    };
    pieces.min(max)
}

/// About how many bytes the JSON text of `value` takes (strings unescaped, numbers at most
/// 24 characters): what [`reserve`] is asked before a value is written as JSON.
#[must_use]
pub fn json_bytes(value: &Dynamic) -> usize {
    match value.0 {
        Union::Str(ref s, ..) => s.len() + 2,
        #[cfg(not(feature = "no_index"))]
        Union::Array(ref array, ..) => array
            .iter()
            .fold(2, |sum, item| sum.saturating_add(json_bytes(item) + 1)),
        #[cfg(not(feature = "no_index"))]
        Union::Blob(ref blob, ..) => blob.len().saturating_mul(4).saturating_add(2),
        #[cfg(not(feature = "no_object"))]
        Union::Map(ref map, ..) => map_json_bytes(map),
        #[cfg(not(feature = "no_closure"))]
        Union::Shared(..) => value.read_lock::<Dynamic>().map_or(24, |v| json_bytes(&v)),
        _ => 24,
    }
}

/// [`json_bytes`] of a map.
#[cfg(not(feature = "no_object"))]
#[must_use]
pub fn map_json_bytes(map: &crate::Map) -> usize {
    map.iter().fold(2, |sum, (key, item)| {
        sum.saturating_add(key.len() + 4)
            .saturating_add(json_bytes(item))
    })
}

/// One native function scripts can call: its name (with `module::` for a static module)
/// and the types of its parameters.
#[derive(Debug, Clone)]
pub struct NativeFn {
    /// `name`, or `module::name`.
    pub name: String,
    /// The parameters' types, in order.
    pub params: Vec<std::any::TypeId>,
}

impl crate::Engine {
    /// Every native function registered in this engine's global namespace and static
    /// modules (not script functions), so that a host can check what it exposes (rhapi
    /// drives each one with hostile arguments under its memory budget).
    #[must_use]
    pub fn native_functions(&self) -> Vec<NativeFn> {
        let mut out = Vec::new();
        let mut add = |prefix: &str, module: &crate::Module| {
            for (func, meta) in module.materialized().iter_fn() {
                if func.is_script() {
                    continue;
                }
                out.push(NativeFn {
                    name: format!("{prefix}{}", meta.name),
                    params: meta.param_types.iter().copied().collect(),
                });
            }
        };
        for module in &self.global_modules {
            add("", module);
        }
        #[cfg(not(feature = "no_module"))]
        for (name, module) in &self.global_sub_modules {
            add(&format!("{name}::"), module);
        }
        out
    }
}

/// Deepest nesting of arrays and maps a clone makes. Dropping, printing or comparing a value
/// recurses once per level, on the stack of the run; a script could otherwise nest a value
/// a hundred thousand levels deep in a loop (`a = [a]`) and overflow that stack.
pub const MAX_DEPTH: u32 = 256;

std::thread_local! {
    static CLONE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Told when a clone is cut at [`MAX_DEPTH`]; a host ends the run there.
static TOO_DEEP: OnceLock<fn()> = OnceLock::new();

/// Sets the process's too-deep hook (the first call wins).
pub fn set_too_deep_hook(hook: fn()) {
    let _ = TOO_DEEP.set(hook);
}

/// Restores the clone depth when a nested clone ends (or unwinds).
struct DepthGuard(u32);

impl Drop for DepthGuard {
    fn drop(&mut self) {
        CLONE_DEPTH.with(|d| d.set(self.0));
    }
}

/// Clones the contents of an array or map one level deeper; `None` past [`MAX_DEPTH`]
/// (the value is cut there, and the too-deep hook is told).
#[inline]
pub(crate) fn clone_nested<T: Clone>(inner: &T) -> Option<T> {
    let depth = CLONE_DEPTH.with(std::cell::Cell::get);
    if depth >= MAX_DEPTH {
        if let Some(hook) = TOO_DEEP.get() {
            hook();
        }
        return None;
    }
    CLONE_DEPTH.with(|d| d.set(depth + 1));
    let _restore = DepthGuard(depth);
    Some(inner.clone())
}

/// The host's check made on every call a native function makes back into the engine
/// (`==` of each item in `index_of`, a comparer in `sort`, a callback in `map`): such loops
/// run no operations of the script's own, so without it a call over a large array could
/// run past the host's time budget without the progress callback ever being asked.
/// `Some(token)` ends the run as the progress callback's token does.
pub type TickHook = fn() -> Option<Dynamic>;

static TICK: OnceLock<TickHook> = OnceLock::new();

/// Sets the process's tick check (the first call wins).
pub fn set_tick_hook(hook: TickHook) {
    let _ = TICK.set(hook);
}

/// Asks the host's tick check; an error ends the run (not catchable).
#[inline]
pub(crate) fn tick(pos: Position) -> RhaiResultOf<()> {
    match TICK.get().and_then(|hook| hook()) {
        Some(token) => Err(ERR::ErrorTerminated(token, pos).into()),
        None => Ok(()),
    }
}
