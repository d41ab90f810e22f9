//! `cache::get(key)`, `cache::set(key, value)`, `cache::set(key, value, ttl)`,
//! `cache::delete(key)`: the app's in-process cache ([`crate::cache`]; docs/batteries.md,
//! "cache").
//!
//! Values are copied in as JSON text and parsed anew on every read, so what a script does to
//! a value after `set`, or to what `get` gave it, changes nothing cached. Only what JSON can
//! hold is cached: a blob, a function pointer or a timestamp is an error at the call, as for
//! a job's payload. Writing the text is bounded by the run's memory budget and by `max`;
//! reading reserves the value's size from the budget first; either is done on the CPU
//! threads when the text is large.

use std::cell::Cell;
use std::sync::Arc;

use rhai::{Array, Dynamic, EvalAltResult, Map, Module, NativeCallContext};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{at, off_worker, script_error, ScriptResult};
use crate::app_context::AppContext;
use crate::cache::Entry;
use crate::script::res::json_within;

/// Texts longer than this are written or parsed on the CPU threads (about a millisecond of
/// work), as request bodies are.
const OFF_WORKER: usize = 256 * 1024;

/// Deepest nesting of arrays and maps that is cached: what `serde_json` reads back.
const MAX_DEPTH: usize = 127;

/// What a script value costs per array item or map entry besides its text (the `Dynamic`,
/// a map's node and key): an estimate, to reserve before a read.
const PER_VALUE: usize = 48;

/// The `cache` module of `app`.
pub fn module(app: &Arc<AppContext>) -> Module {
    let mut module = Module::new();
    let a = Arc::clone(app);
    module.set_native_fn("get", move |ctx: NativeCallContext, key: &str| {
        at(&ctx, get(&a, key))
    });
    let a = Arc::clone(app);
    module.set_native_fn(
        "set",
        move |ctx: NativeCallContext, key: &str, value: Dynamic| {
            at(&ctx, set(&a, key, value, &Dynamic::UNIT))
        },
    );
    let a = Arc::clone(app);
    module.set_native_fn(
        "set",
        move |ctx: NativeCallContext, key: &str, value: Dynamic, ttl: Dynamic| {
            at(&ctx, set(&a, key, value, &ttl))
        },
    );
    let a = Arc::clone(app);
    module.set_native_fn("delete", move |key: &str| {
        a.cache.delete(key);
        Ok(())
    });
    module
}

fn fail(call: &str, message: impl std::fmt::Display) -> Box<EvalAltResult> {
    script_error(format!("cache::{call}: {message}"))
}

/// The value under `key`, a fresh copy; `()` when missing or expired.
fn get(app: &AppContext, key: &str) -> ScriptResult<Dynamic> {
    let Some(entry) = app.cache.get(key, app.clock.now_ms()) else {
        return Ok(Dynamic::UNIT);
    };
    crate::script::context::reserve(entry.footprint).map_err(|e| fail("get", e))?;
    let large = entry.json.len() > OFF_WORKER;
    let parse = move || serde_json::from_str::<Dynamic>(&entry.json);
    let parsed = if large { off_worker(parse)? } else { parse() };
    parsed.map_err(|err| fail("get", err))
}

/// Keeps a copy of `value` under `key` for `ttl` (`()`: until evicted).
fn set(app: &AppContext, key: &str, value: Dynamic, ttl: &Dynamic) -> ScriptResult<()> {
    let ttl = ttl_ms(ttl)?;
    let max = app.cache.max();
    let left = crate::script::context::memory_left();
    let Some((json, values)) = encode(value, max.min(left))? else {
        if left < max {
            return Err(fail(
                "set",
                "Out of memory: the value's JSON text needs more than is left of the run's \
                 memory budget (--max-memory)",
            ));
        }
        // Larger than the whole cache: not kept, and nothing else is evicted for it.
        app.cache.delete(key);
        return Ok(());
    };
    let expires = ttl.map(|ms| app.clock.now_ms().saturating_add(ms));
    let footprint = json.len().saturating_add(values.saturating_mul(PER_VALUE));
    let json: Arc<str> = String::from_utf8(json)
        .map_err(|err| fail("set", err))?
        .into();
    app.cache.put(
        key.to_string(),
        Entry {
            json,
            footprint,
            expires,
        },
    );
    Ok(())
}

/// A ttl: `()` (none), a duration string (`"30s"`) or an integer of milliseconds, more
/// than zero.
fn ttl_ms(ttl: &Dynamic) -> ScriptResult<Option<i64>> {
    if ttl.is_unit() {
        return Ok(None);
    }
    let ms = if let Ok(ms) = ttl.as_int() {
        ms
    } else if let Some(text) = ttl.read_lock::<rhai::ImmutableString>() {
        super::time::duration_ms(&text).map_err(|e| fail("set", format!("ttl: {e}")))?
    } else {
        return Err(fail(
            "set",
            format!(
                "ttl must be a duration such as \"30s\" or an integer of milliseconds, not {}",
                ttl.type_name()
            ),
        ));
    };
    if ms <= 0 {
        return Err(fail("set", format!("ttl must be more than zero, not {ms}")));
    }
    Ok(Some(ms))
}

/// The JSON text of `value` and how many values it holds, if the text takes at most `max`
/// bytes (`None` past it). Written here up to [`OFF_WORKER`] bytes, else again on the CPU
/// threads.
fn encode(value: Dynamic, max: usize) -> ScriptResult<Option<(Vec<u8>, usize)>> {
    let write = |value: &Dynamic, max: usize| {
        let values = Cell::new(0);
        let text = json_within(&Cacheable::new(value, &values), max);
        text.map(|text| text.map(|text| (text, values.get())))
            .map_err(|err| fail("set", err))
    };
    if let Some(done) = write(&value, max.min(OFF_WORKER))? {
        return Ok(Some(done));
    }
    if max <= OFF_WORKER {
        return Ok(None);
    }
    off_worker(move || write(&value, max))?
}

/// A script value written as JSON, refusing what JSON cannot hold (instead of writing a
/// blob as an array of numbers or a function pointer as its name, which would come back
/// as something else), and counting the values it writes.
struct Cacheable<'a> {
    value: &'a Dynamic,
    depth: usize,
    values: &'a Cell<usize>,
}

impl<'a> Cacheable<'a> {
    fn new(value: &'a Dynamic, values: &'a Cell<usize>) -> Self {
        Cacheable {
            value,
            depth: 0,
            values,
        }
    }

    fn inner(&self, value: &'a Dynamic) -> Cacheable<'a> {
        Cacheable {
            value,
            depth: self.depth + 1,
            values: self.values,
        }
    }
}

impl Serialize for Cacheable<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.values.set(self.values.get() + 1);
        let value = self.value;
        if self.depth >= MAX_DEPTH && (value.is_array() || value.is_map()) {
            return Err(S::Error::custom(format!(
                "values nested deeper than {MAX_DEPTH} arrays or maps cannot be cached"
            )));
        }
        if let Some(array) = value.read_lock::<Array>() {
            let mut seq = s.serialize_seq(Some(array.len()))?;
            for item in array.iter() {
                seq.serialize_element(&self.inner(item))?;
            }
            return seq.end();
        }
        if let Some(map) = value.read_lock::<Map>() {
            let mut out = s.serialize_map(Some(map.len()))?;
            for (key, item) in map.iter() {
                out.serialize_entry(key.as_str(), &self.inner(item))?;
            }
            return out.end();
        }
        let plain = value.is_unit()
            || value.is_bool()
            || value.is_int()
            || value.is_float()
            || value.is_string()
            || value.is_char();
        if plain {
            return value.serialize(s);
        }
        Err(S::Error::custom(format!(
            "a {} cannot be cached: only values JSON can hold (strings, numbers, booleans, (), \
             arrays and maps of them)",
            value.type_name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Dynamic {
        let mut value = Dynamic::from_int(1);
        for _ in 0..levels {
            value = Dynamic::from_array(vec![value]);
        }
        value
    }

    fn text(value: Dynamic) -> Result<String, String> {
        match encode(value, usize::MAX) {
            Ok(Some((json, _))) => Ok(String::from_utf8(json).unwrap()),
            Ok(None) => Err("too large".into()),
            Err(err) => Err(err.to_string()),
        }
    }

    #[test]
    fn what_is_cached_reads_back_the_same() {
        let mut map = Map::new();
        map.insert("n".into(), Dynamic::from_int(1));
        map.insert("f".into(), Dynamic::from_float(1.5));
        map.insert("s".into(), Dynamic::from("x\"\u{e9}"));
        map.insert("c".into(), Dynamic::from('c'));
        map.insert("u".into(), Dynamic::UNIT);
        map.insert(
            "a".into(),
            Dynamic::from_array(vec![true.into(), 2_i64.into()]),
        );
        let json = text(Dynamic::from_map(map)).unwrap();
        let back: Dynamic = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.to_string(),
            r#"#{"a": [true, 2], "c": "c", "f": 1.5, "n": 1, "s": "x\"é", "u": ()}"#
        );
    }

    #[test]
    fn what_json_cannot_hold_is_refused() {
        for value in [
            Dynamic::from_blob(vec![1, 2]),
            Dynamic::from(rhai::FnPtr::new("f").unwrap()),
            Dynamic::from_array(vec![Dynamic::from_blob(vec![])]),
        ] {
            let err = text(value).unwrap_err();
            assert!(err.contains("cannot be cached"), "{err}");
        }
    }

    #[test]
    fn the_deepest_nesting_cached_is_the_deepest_read_back() {
        let json = text(nested(MAX_DEPTH)).unwrap();
        assert!(serde_json::from_str::<Dynamic>(&json).is_ok());
        let deeper = format!("[{json}]");
        assert!(serde_json::from_str::<Dynamic>(&deeper).is_err());
        let err = text(nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn text_over_the_limit_stops_there() {
        let big = Dynamic::from("x".repeat(1000));
        assert!(encode(big.clone(), 100).unwrap().is_none());
        let (json, values) = encode(big, 1002).unwrap().unwrap();
        assert_eq!((json.len(), values), (1002, 1));
        let ttl = |v: Dynamic| ttl_ms(&v).map_err(|e| e.to_string());
        assert_eq!(ttl(Dynamic::from("30s")), Ok(Some(30_000)));
        assert_eq!(ttl(Dynamic::from_int(5)), Ok(Some(5)));
        assert_eq!(ttl(Dynamic::UNIT), Ok(None));
        assert!(ttl(Dynamic::from_int(0)).is_err() && ttl(Dynamic::from("soon")).is_err());
    }
}
