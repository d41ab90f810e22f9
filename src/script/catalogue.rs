//! The native functions a script can call, with their parameter types: one line each, as
//! `name(int, string)`. `tests/fixtures/fuzz/functions.txt` holds the list; the unit test
//! below fails when a function is added or removed without it, and `tests/fuzz_builtins.rs`
//! calls every one of them with hostile arguments under the memory budget
//! (docs/reference.md, "Errors and limits"). The language server names types as [`type_name`]
//! does, and `rhapi types` writes the same signatures.

use std::any::TypeId;

use rhai::{Array, Blob, Dynamic, FnPtr, ImmutableString, Map, FLOAT, INT};

/// The script-side name of a parameter type; `None` for a type a script cannot make
/// (Rhai's arithmetic on `i32`, `u8`, ... for hosts that pass such values in).
pub fn type_name(id: TypeId) -> Option<&'static str> {
    let names: [(TypeId, &str); 14] = [
        (TypeId::of::<INT>(), "int"),
        (TypeId::of::<FLOAT>(), "float"),
        (TypeId::of::<ImmutableString>(), "string"),
        (TypeId::of::<String>(), "string"),
        (TypeId::of::<char>(), "char"),
        (TypeId::of::<bool>(), "bool"),
        (TypeId::of::<Array>(), "array"),
        (TypeId::of::<Map>(), "map"),
        (TypeId::of::<Blob>(), "blob"),
        (TypeId::of::<FnPtr>(), "Fn"),
        (TypeId::of::<Dynamic>(), "?"),
        (TypeId::of::<()>(), "()"),
        (TypeId::of::<std::ops::Range<INT>>(), "range"),
        (TypeId::of::<std::ops::RangeInclusive<INT>>(), "range="),
    ];
    names
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, name)| *name)
}

/// Every native function of `engine` that a script can call, as sorted, distinct lines.
/// Operators, property getters and setters and indexers are left out (their names are not
/// callable as functions).
#[cfg(test)]
pub fn native_functions(engine: &rhai::Engine) -> Vec<String> {
    let mut lines: Vec<String> = engine
        .native_functions()
        .into_iter()
        .filter(|f| {
            let bare = f.name.rsplit("::").next().unwrap_or(&f.name);
            bare.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !bare.contains('$')
        })
        .filter_map(|f| {
            let params: Option<Vec<&str>> = f.params.iter().map(|&t| type_name(t)).collect();
            Some(format!("{}({})", f.name, params?.join(", ")))
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::native_functions;

    /// The list the fuzz test drives is every function there is. `RHAPI_BLESS=1 cargo test
    /// catalogue` writes it anew after a function was added or removed.
    #[test]
    fn the_fuzzed_list_is_every_native_function() {
        let engine = crate::script::engine::for_tests();
        let found = native_functions(&engine).join("\n") + "\n";
        let listed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/functions.txt");
        if std::env::var_os("RHAPI_BLESS").is_some() {
            std::fs::create_dir_all(listed.parent().unwrap()).unwrap();
            std::fs::write(&listed, &found).unwrap();
        }
        let expected = std::fs::read_to_string(&listed).unwrap_or_default();
        assert!(
            found == expected,
            "tests/fixtures/fuzz/functions.txt is not the list of native functions \
             (RHAPI_BLESS=1 cargo test catalogue writes it); found:\n{found}"
        );
        assert!(found.lines().count() > 300, "{found}");
    }
}
