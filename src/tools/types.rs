//! `rhapi types [DIR]`: Rhai definition files (`*.d.rhai`, the format of Rhai's own
//! `Engine::definitions()`) for an editor: every function scripts can call, with its docs,
//! and the shapes of `req`, `res`, `ws` and `env`. Written to `DIR/.rhapi/types/` unless
//! told otherwise.
//!
//! Nothing is read from the app's environment: no value of `.env` can reach a file; `env`
//! lists the keys of `.env.example`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::app_files::{AppFiles, Kind};
use crate::batteries::docs::{FnDoc, BATTERY_FNS};
use crate::script::shapes::{Member, REQ_FIELDS, RES_METHODS, WS_MEMBERS};

/// Rhai's definitions of the functions its parser and evaluator answer themselves
/// (`print`, `type_of`, `Fn`, ...), with their docs.
const BUILTIN_FUNCTIONS: &str =
    include_str!("../../vendor/rhai/src/api/definitions/builtin-functions.d.rhai");
/// Rhai's definitions of its built-in operators.
const BUILTIN_OPERATORS: &str =
    include_str!("../../vendor/rhai/src/api/definitions/builtin-operators.d.rhai");

/// Where the files go when no folder is given, relative to the app.
pub const DEFAULT_DIR: &str = ".rhapi/types";

/// Writes the definition files of the app in `app_dir` to `out` (created when needed; the
/// `*.d.rhai` files already there are replaced). Returns the files written, sorted.
pub fn write(app_dir: &Path, out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = definitions(app_dir);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    remove_old(out)?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = out.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// Every file: its name under the output folder, and its text.
pub fn definitions(app_dir: &Path) -> Vec<(String, String)> {
    let battery_modules: Vec<&str> = BATTERY_FNS
        .iter()
        .filter_map(|f| f.name.split_once("::").map(|(m, _)| m))
        .collect();
    // Rhai's keywords and operators, as Rhai's own definition files write them; then its
    // packages (from a plain engine: rhapi's globals are in `rhapi.d.rhai` with their docs,
    // the batteries' modules and `env` below).
    let mut files: Vec<(String, String)> = vec![
        (
            "__builtin__.d.rhai".into(),
            format!("module static;\n\n{BUILTIN_FUNCTIONS}"),
        ),
        (
            "__builtin-operators__.d.rhai".into(),
            format!("module static;\n\n{BUILTIN_OPERATORS}"),
        ),
        ("__static__.d.rhai".into(), packages(&rhai::Engine::new())),
    ];
    let mut modules = battery_modules.clone();
    modules.dedup();
    for module in modules {
        let text = if module == "env" {
            env_module(&crate::env::example_keys(app_dir))
        } else {
            battery_module(module)
        };
        files.push((format!("{module}.d.rhai"), text));
    }
    files.push(("rhapi.d.rhai".into(), shapes()));
    files.extend(app_modules(app_dir));
    files
}

/// The functions of Rhai's packages in `engine` that scripts call by name (getters as
/// `get$name`), one signature each, without docs (Rhai keeps its packages' docs only with
/// its `metadata` feature, which rhapi leaves off: it makes a `///` comment anywhere but
/// before a function a syntax error).
fn packages(engine: &rhai::Engine) -> String {
    let mut lines: Vec<String> = engine
        .native_functions()
        .into_iter()
        .filter(|f| !f.name.contains("::"))
        .filter(|f| {
            let bare = f.name.strip_prefix("get$").unwrap_or(&f.name);
            bare.starts_with(|c: char| c.is_alphabetic() || c == '_') && !bare.contains('$')
        })
        .filter_map(|f| {
            let params: Option<Vec<String>> = f
                .params
                .iter()
                .map(|&t| crate::script::catalogue::type_name(t).map(|t| format!("_: {t}")))
                .collect();
            Some(format!("fn {}({}) -> ?;", f.name, params?.join(", ")))
        })
        .collect();
    lines.sort();
    lines.dedup();
    format!("module static;\n\n{}\n", lines.join("\n"))
}

/// Removes the definition files a previous run wrote to `out` (only `*.d.rhai` files).
fn remove_old(out: &Path) -> io::Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_old(&path)?;
        } else if path.to_string_lossy().ends_with(".d.rhai") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// `/// line` for each line of `doc`.
fn doc_lines(out: &mut String, doc: &str) {
    for line in doc.lines() {
        let _ = writeln!(out, "/// {line}");
    }
}

fn write_fn(out: &mut String, name: &str, params: &str, returns: &str, doc: &str) {
    doc_lines(out, doc);
    let _ = writeln!(out, "fn {name}({params}) -> {returns};\n");
}

fn battery_module(module: &str) -> String {
    let mut out = format!("module {module};\n\n");
    let prefix = format!("{module}::");
    for FnDoc {
        name,
        params,
        returns,
        doc,
    } in BATTERY_FNS
    {
        if let Some(name) = name.strip_prefix(&prefix) {
            write_fn(&mut out, name, params, returns, doc);
        }
    }
    out
}

/// `env::NAME` for each key of `.env.example` (never a value), and `env::get`.
fn env_module(keys: &[String]) -> String {
    let mut out = battery_module("env");
    for key in keys {
        let _ = writeln!(out, "/// Listed in .env.example.\nconst {key}: string;\n");
    }
    out
}

fn members(out: &mut String, type_name: &str, this: &str, members: &[Member], note: &str) {
    for member in members {
        let doc = format!("{}{note}", member.doc);
        match member.params {
            None => write_fn(
                out,
                &format!("get${}", member.name),
                &format!("{this}: {type_name}"),
                member.returns,
                &doc,
            ),
            Some("") => write_fn(
                out,
                member.name,
                &format!("{this}: {type_name}"),
                member.returns,
                &doc,
            ),
            Some(params) => write_fn(
                out,
                member.name,
                &format!("{this}: {type_name}, {params}"),
                member.returns,
                &doc,
            ),
        }
    }
}

/// `req` (a map, written as a type with getters), `res`, and `ws`.
fn shapes() -> String {
    let mut out = String::from("module static;\n\n");
    out.push_str(
        "// `req`: the request, a read-only map (its fields as getters of `Request`).\n\n",
    );
    members(&mut out, "Request", "req", REQ_FIELDS, "");
    out.push_str("// `res`: the response under construction.\n\n");
    members(&mut out, "Response", "res", RES_METHODS, "");
    out.push_str("// `ws`: the WebSocket of `on_open(ws, req)`, `on_message(ws, msg)`, `on_close(ws, code, reason)`.\n\n");
    members(&mut out, "WebSocket", "ws", WS_MEMBERS, "");
    write_fn(
        &mut out,
        "sleep",
        "ms: int",
        "()",
        "Waits `ms` milliseconds (within the request's time budget).",
    );
    out
}

/// One file per module of the app (`pages/**` files that are not routes or middleware):
/// `app/<path under pages without .rhai>.d.rhai`, named by its file name.
fn app_modules(app_dir: &Path) -> Vec<(String, String)> {
    let files = AppFiles::open(app_dir);
    let scan = files.scan();
    let pages = app_dir.join("pages");
    let mut out = Vec::new();
    for file in scan.of(Kind::Module) {
        let Ok(text) = files.read_to_string(&file.path) else {
            continue;
        };
        let Some(ast) = crate::analysis::knowledge::parse(&text) else {
            continue;
        };
        let source = crate::analysis::SourceFile::new(file.display.clone(), text);
        let outline =
            crate::analysis::outline::functions(&crate::analysis::lexer::lex(source.text()).tokens);
        let relative = file.path.strip_prefix(&pages).unwrap_or(&file.path);
        let stem = relative
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        let mut def = format!("module {stem};\n\n// {}\n\n", file.display);
        for function in ast.iter_fn_def() {
            if function.access == rhai::FnAccess::Private || function.name.contains('$') {
                continue;
            }
            let doc = outline
                .iter()
                .find(|f| f.name == function.name.as_str())
                .map(|f| f.doc(&source).join("\n"))
                .unwrap_or_default();
            let params: Vec<String> = function.params.iter().map(|p| format!("{p}: ?")).collect();
            write_fn(&mut def, &function.name, &params.join(", "), "?", &doc);
        }
        let name = relative
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        out.push((format!("app/{name}.d.rhai"), def));
    }
    out
}
