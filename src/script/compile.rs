//! Compiling a route file: parse it, resolve its imports, and note which method functions
//! it defines.

use std::path::Path;
use std::sync::Arc;

use rhai::{Engine, Scope, AST};

use super::errors::locate;
use super::modules;
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

/// The method functions a route file may define, in `Allow` order.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Handler functions take `req`, `res` and `env`, in that order, all optional.
const MAX_ARITY: usize = 3;

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

/// Compiles the route at `path` (shown as `display`) from `source`.
pub fn compile_route(engine: &Engine, display: &str, path: &Path, source: &str) -> Compiled {
    let source = &without_trailing_values(engine, source);
    modules::start_loading(path);
    let result = engine.compile_into_self_contained(&Scope::new(), source);
    let deps = modules::finish_loading();
    let result = result
        .map_err(|err| locate_import(locate(&err, display), display, source))
        .and_then(|mut ast| {
            ast.set_source(display);
            describe(ast, display)
        });
    Compiled { result, deps }
}

/// Imports are resolved without a position; an import error names its path, so point at
/// the `import` line that holds that path.
fn locate_import(mut err: ScriptError, display: &str, source: &str) -> ScriptError {
    if err.location.line.is_some() || err.location.file != display {
        return err;
    }
    let found = source.lines().enumerate().find_map(|(i, line)| {
        let column = line.find("import")?;
        let path = line[column..].split('"').nth(1)?;
        err.message.contains(path).then_some((i + 1, column + 1))
    });
    if let Some((line, column)) = found {
        err.location.line = Some(line);
        err.location.column = Some(column);
    }
    err
}

fn describe(ast: AST, display: &str) -> Result<RouteScript, ScriptError> {
    let mut methods = [None; METHODS.len()];
    let mut handler = None;
    let mut middleware = None;
    for f in ast.iter_functions() {
        let slot = if f.name == "handler" {
            &mut handler
        } else if f.name == "middleware" {
            &mut middleware
        } else if let Some(i) = METHODS.iter().position(|m| *m == f.name) {
            &mut methods[i]
        } else {
            continue;
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
    let config = super::route_config::read(&ast, display)?;
    Ok(RouteScript {
        ast,
        file: Arc::from(display),
        methods,
        handler,
        middleware,
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
    let mut out = String::with_capacity(source.len() + 2 * braces.len());
    for (number, line) in source.split_inclusive('\n').enumerate() {
        let mut columns: Vec<usize> = braces
            .iter()
            .filter(|(l, _)| *l == number + 1)
            .map(|(_, c)| *c)
            .collect();
        columns.sort_unstable();
        for (column, ch) in line.chars().enumerate() {
            if columns.binary_search(&(column + 1)).is_ok() {
                out.push_str("()");
            }
            out.push(ch);
        }
    }
    out
}

/// (line, column) of the closing `}` of each top-level route function (method, `handler`
/// or `middleware`) whose last token before that brace is `;`.
fn closing_braces_after_semicolon(engine: &Engine, source: &str) -> Vec<(usize, usize)> {
    use rhai::Token;

    let mut found = Vec::new();
    let mut after_fn = false;
    let mut route_fn: Option<bool> = None;
    let mut previous_semicolon = false;
    for lexed in lex(engine, source) {
        let is_semicolon = matches!(lexed.token, Token::SemiColon);
        match lexed.token {
            Token::Fn if lexed.depth == 0 => after_fn = true,
            Token::Identifier(name) if after_fn => {
                after_fn = false;
                route_fn = Some(
                    matches!(name.as_str(), "handler" | "middleware")
                        || METHODS.contains(&name.as_str()),
                );
            }
            Token::RightBrace if lexed.depth == 0 && !lexed.closes_interpolation => {
                if route_fn == Some(true) && previous_semicolon {
                    if let (Some(line), Some(column)) = (lexed.pos.line(), lexed.pos.position()) {
                        found.push((line, column));
                    }
                }
                route_fn = None;
            }
            _ => {}
        }
        previous_semicolon = is_semicolon;
    }
    found
}

/// A token of a Rhai source, where it is, and the brace depth after it.
pub struct Lexed {
    pub token: rhai::Token,
    pub pos: rhai::Position,
    /// Open `{` (blocks, maps, `${` of template strings) after this token.
    pub depth: usize,
    /// This `}` closes a `${` of a template string (not a block or a map).
    pub closes_interpolation: bool,
}

/// The tokens of a Rhai source, lexed as the parser lexes them: after the `}` closing a
/// `${`, the lexer is told to go back to the template string's text. For reading scripts
/// without running them (the trailing-`;` rule here, `rhapi check` and `rhapi openapi`).
pub fn lex(engine: &Engine, source: &str) -> Vec<Lexed> {
    use rhai::Token;

    let inputs = [source];
    let (mut stream, control) = engine.lex(&inputs);
    let mut out = Vec::new();
    let mut depth = 0usize;
    // Depths at which a `${` of a template string opened: the `}` that brings the depth
    // back there returns the lexer to the string's text.
    let mut interpolations: Vec<usize> = Vec::new();
    for (token, pos) in stream.by_ref() {
        let mut closes_interpolation = false;
        match &token {
            Token::EOF | Token::LexError(_) => break,
            // `` `a ${`` lexes as `InterpolatedString("a ")` followed by a `{` token of its
            // own (see rhai's `parse_string_literal`): the `{` counts the depth.
            Token::InterpolatedString(_) => interpolations.push(depth),
            Token::LeftBrace | Token::MapStart => depth += 1,
            Token::RightBrace => {
                depth = depth.saturating_sub(1);
                if interpolations.last() == Some(&depth) {
                    interpolations.pop();
                    control.borrow_mut().is_within_text = true;
                    closes_interpolation = true;
                }
            }
            _ => {}
        }
        out.push(Lexed {
            token,
            pos,
            depth,
            closes_interpolation,
        });
    }
    out
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
