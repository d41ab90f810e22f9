//! Compiling a route file: parse it, resolve its imports, and note which method functions
//! it defines.

use std::path::Path;
use std::sync::Arc;

use rhai::{Engine, Scope, Token, AST};

use super::errors::locate;
use super::modules;
use crate::analysis::lexer::lex_with;
use crate::analysis::outline::{functions, imports};
use crate::analysis::route_shape::{RouteFunction, EVENTS, EVENT_ARITY, MAX_ARITY, METHODS};
use crate::analysis::{Position, SourceFile};
use crate::error::ScriptError;

impl RouteScript {
    /// Where function `name` is defined (line, column of its body), for errors Rhai
    /// reports without a position (limits, stack overflow).
    pub fn function_position(&self, name: &str) -> Option<(usize, usize)> {
        let f = self.ast.iter_fn_def().find(|f| f.name == name)?;
        let pos = f.body.start_position();
        Some((pos.line()?, pos.position()?))
    }
}

/// A compiled route, ready to run. Shared by every request that uses this version.
pub struct RouteScript {
    pub ast: AST,
    /// `pages/api/...` as users see it.
    pub file: Arc<str>,
    /// Arity (parameter count) of each method function in [`METHODS`] order, if defined.
    pub methods: [Option<usize>; METHODS.len()],
    /// Arity of `handler`, if defined.
    pub handler: Option<usize>,
    /// Arity of `middleware`, if defined (what a `_middleware.rhai` file runs).
    pub middleware: Option<usize>,
    /// Arity of each WebSocket event function in [`EVENTS`] order, if defined: a route
    /// with any accepts upgrades.
    pub events: [Option<usize>; EVENTS.len()],
    /// The route's own limits, from its `const CONFIG`.
    pub config: super::route_config::RouteConfig,
    /// Function lookups kept between runs.
    pub caches: super::run::KeptCaches,
}

/// The result of compiling one route file, with the module files it read.
pub struct Compiled {
    pub result: Result<RouteScript, ScriptError>,
    pub deps: Vec<modules::Dependency>,
}

impl RouteScript {
    /// Whether the route accepts WebSocket upgrades (it defines an event function).
    pub fn accepts_sockets(&self) -> bool {
        self.events.iter().any(Option::is_some)
    }
}

/// Compiles the route at `path` (shown as `display`) from `source`.
pub fn compile_route(engine: &Engine, display: &str, path: &Path, source: &str) -> Compiled {
    compile_file(engine, display, path, source, true)
}

/// Compiles the job file at `path` as [`compile_route`] does a route: the same engine,
/// imports and positions, but its `CONFIG` is a job's ([`crate::jobs`] reads it).
pub fn compile_job(engine: &Engine, display: &str, path: &Path, source: &str) -> Compiled {
    compile_file(engine, display, path, source, false)
}

fn compile_file(
    engine: &Engine,
    display: &str,
    path: &Path,
    source: &str,
    route: bool,
) -> Compiled {
    let source = &without_trailing_values(engine, source);
    modules::start_loading(path);
    let result = engine.compile_into_self_contained(&Scope::new(), source);
    let deps = modules::finish_loading();
    let result = result
        .map_err(|err| locate_import(locate(&err, display), display, engine, source))
        .map_err(|err| with_hint(err, display, source, &deps))
        .and_then(|mut ast| {
            ast.set_source(display);
            describe(ast, display, route)
        });
    Compiled { result, deps }
}

/// Imports are resolved without a position; an import error names its path, so point at
/// the `import` that holds that path.
fn locate_import(
    mut err: ScriptError,
    display: &str,
    engine: &Engine,
    source: &str,
) -> ScriptError {
    if err.location.line.is_some() || err.location.file != display {
        return err;
    }
    let tokens = lex_with(engine, source).tokens;
    let found = imports(&tokens)
        .into_iter()
        .find(|import| err.message.contains(&import.path));
    if let Some(import) = found {
        err.location.line = Some(import.at.line);
        err.location.column = Some(import.at.column);
    }
    err
}

/// The hint of a compile error that is a JavaScript habit, read from the text of the file
/// it is in (the route, or a module it imports).
fn with_hint(
    mut err: ScriptError,
    display: &str,
    source: &str,
    deps: &[modules::Dependency],
) -> ScriptError {
    let text = if err.location.file == display {
        Some(source)
    } else {
        let file = Path::new(&err.location.file);
        deps.iter()
            .find(|(path, _)| path.ends_with(file))
            .and_then(|(_, text)| text.as_deref())
    };
    if let Some(text) = text {
        let (line, column) = (err.location.line, err.location.column);
        err.hint = crate::analysis::hints::for_compile_error(&err.message, text, line, column);
    }
    err
}

fn describe(ast: AST, display: &str, route: bool) -> Result<RouteScript, ScriptError> {
    let mut methods = [None; METHODS.len()];
    let mut handler = None;
    let mut middleware = None;
    let mut events = [None; EVENTS.len()];
    for f in ast.iter_functions().filter(|_| route) {
        let slot = match RouteFunction::of(f.name) {
            Some(RouteFunction::Method(i)) => &mut methods[i],
            Some(RouteFunction::Handler) => &mut handler,
            Some(RouteFunction::Middleware) => &mut middleware,
            Some(RouteFunction::Event(i)) => {
                if f.params.len() > EVENT_ARITY[i] {
                    return Err(ScriptError::in_file(
                        display,
                        format!(
                            "fn {}: takes at most {} parameters ({}), not {}",
                            f.name,
                            EVENT_ARITY[i],
                            ["ws, req, env", "ws, msg, env", "ws, code, reason, env"][i],
                            f.params.len()
                        ),
                    ));
                }
                events[i].get_or_insert(f.params.len());
                continue;
            }
            None => continue,
        };
        if f.params.len() > MAX_ARITY {
            return Err(ScriptError::in_file(
                display,
                format!(
                    "fn {}: a handler takes at most {MAX_ARITY} parameters (req, res, env), not {}",
                    f.name,
                    f.params.len()
                ),
            ));
        }
        slot.get_or_insert(f.params.len());
    }
    let config = if route {
        super::route_config::read(&ast, display)?
    } else {
        Default::default()
    };
    Ok(RouteScript {
        ast,
        file: Arc::from(display),
        methods,
        handler,
        middleware,
        events,
        config,
        caches: Default::default(),
    })
}

/// Rhai returns the value of a body's last statement even when a `;` ends it. Route
/// functions follow the habit of JavaScript and Rust instead: `fn DELETE(req) { db::execute(...); }`
/// returns nothing (so it answers 204). This inserts `()` before the closing brace of each
/// route function whose body ends in `;`. Nothing before the brace moves, so error
/// positions stay true.
fn without_trailing_values(engine: &Engine, source: &str) -> String {
    let braces = closing_braces_after_semicolon(engine, source);
    if braces.is_empty() {
        return source.to_string();
    }
    let file = SourceFile::new("", source);
    let mut offsets: Vec<usize> = braces.into_iter().filter_map(|b| file.offset(b)).collect();
    offsets.sort_unstable();
    let mut out = String::with_capacity(source.len() + 2 * offsets.len());
    let mut done = 0;
    for offset in offsets {
        out.push_str(&source[done..offset]);
        out.push_str("()");
        done = offset;
    }
    out.push_str(&source[done..]);
    out
}

/// Where the closing `}` is of each top-level route function (method, `handler` or
/// `middleware`) whose last token before that brace is `;`.
fn closing_braces_after_semicolon(engine: &Engine, source: &str) -> Vec<Position> {
    let tokens = lex_with(engine, source).tokens;
    functions(&tokens)
        .iter()
        .filter(|f| f.route().is_some())
        .filter_map(|f| {
            let close = f.close?;
            let before = &tokens.get(close.checked_sub(1)?)?.token;
            (*before == Token::SemiColon).then_some(tokens[close].at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(source: &str) -> String {
        without_trailing_values(&Engine::new(), source)
    }

    #[test]
    fn trailing_semicolon_returns_nothing() {
        assert_eq!(
            rewrite("fn DELETE(req) { x(); }"),
            "fn DELETE(req) { x(); ()}"
        );
        assert_eq!(
            rewrite("fn GET(req) { #{ a: 1 } }"),
            "fn GET(req) { #{ a: 1 } }"
        );
        assert_eq!(rewrite("fn helper() { x(); }"), "fn helper() { x(); }");
    }

    #[test]
    fn strings_and_maps_do_not_confuse_it() {
        let source = "fn GET(req) {\n  let m = #{ a: `x ${ #{b: 1}.b } }` };\n  m;\n}\n";
        assert_eq!(
            rewrite(source),
            "fn GET(req) {\n  let m = #{ a: `x ${ #{b: 1}.b } }` };\n  m;\n()}\n"
        );
        let source = "fn POST(req) { \"};\" }";
        assert_eq!(rewrite(source), source);
    }

    /// A route function ending in `;` after a template string: the case that answered 200.
    #[test]
    fn a_template_string_before_the_end() {
        assert_eq!(
            rewrite("fn DELETE(req){ let s = `a ${1}`; parse_int(\"8\"); }"),
            "fn DELETE(req){ let s = `a ${1}`; parse_int(\"8\"); ()}"
        );
        // Two interpolations in one string, and a value after it (no `;`): unchanged.
        let source = "fn GET() { let a = 1; `x ${a} y ${a + 1} z` }";
        assert_eq!(rewrite(source), source);
        assert_eq!(
            rewrite("fn GET() { `${1}${2}`; }\nfn POST() { 1 }"),
            "fn GET() { `${1}${2}`; ()}\nfn POST() { 1 }"
        );
    }

    #[test]
    fn nested_interpolations() {
        assert_eq!(
            rewrite("fn GET() { let s = `a ${ `b ${ `c ${1}` }` } d`; s; }"),
            "fn GET() { let s = `a ${ `b ${ `c ${1}` }` } d`; s; ()}"
        );
        assert_eq!(
            rewrite("fn GET() { `a ${ if true { #{ x: 1 }.x } else { 2 } }`; }"),
            "fn GET() { `a ${ if true { #{ x: 1 }.x } else { 2 } }`; ()}"
        );
    }

    #[test]
    fn braces_in_strings_inside_interpolations() {
        assert_eq!(
            rewrite("fn GET() { `a ${ \"}\" + \"{\" + '}' } b`; }"),
            "fn GET() { `a ${ \"}\" + \"{\" + '}' } b`; ()}"
        );
        // A `}` in the text part, after the interpolation ended.
        assert_eq!(
            rewrite("fn GET() { `${1} } {`; }"),
            "fn GET() { `${1} } {`; ()}"
        );
    }

    #[test]
    fn braces_in_comments() {
        let source = "// fn GET() { x; }\nfn GET() {\n  x(); // }\n  /* } { */\n}\n";
        assert_eq!(
            rewrite(source),
            "// fn GET() { x; }\nfn GET() {\n  x(); // }\n  /* } { */\n()}\n"
        );
        assert_eq!(
            rewrite("fn GET() { `a ${ 1 /* } */ }`; }"),
            "fn GET() { `a ${ 1 /* } */ }`; ()}"
        );
        assert_eq!(
            rewrite("/// doc }\nfn GET() { x(); }"),
            "/// doc }\nfn GET() { x(); ()}"
        );
    }
}
