//! The warnings of `rhapi check`: the lint rules of [`crate::analysis::rules`] run on every
//! script of the app (routes, middleware and modules of `pages/`, and `jobs/`). They do not
//! fail `check`; each names file:line:col, its code and the fix.

use std::path::Path;

use rhai::Engine;

use crate::analysis::{AppKnowledge, Diagnostic, SourceFile};
use crate::app_files::{AppFiles, Kind};

/// The diagnostics of one route file from the token rules and the hints only (no engine
/// needed).
#[cfg(test)]
pub fn route_warnings(source: &SourceFile) -> Vec<Diagnostic> {
    let mut found = crate::analysis::rules::check(source);
    found.extend(crate::analysis::hints::scan(source));
    found
}

/// The diagnostics of every script of the app in `dir`, whose engine is `engine`, by file
/// (shown as `pages/...`), files in path order.
pub fn warnings(dir: &Path, engine: &Engine) -> Vec<(SourceFile, Vec<Diagnostic>)> {
    let knowledge = AppKnowledge::from_engine(engine, Some(dir));
    let files = AppFiles::open(dir);
    let scan = files.scan();
    let mut scripts: Vec<_> = [Kind::Route, Kind::Middleware, Kind::Module, Kind::Job]
        .into_iter()
        .flat_map(|kind| scan.of(kind))
        .collect();
    scripts.sort_by(|a, b| a.path.cmp(&b.path));
    scripts
        .into_iter()
        .filter_map(|file| {
            let text = files.read_to_string(&file.path).ok()?;
            let source = SourceFile::new(file.display.clone(), text);
            let found = crate::analysis::check_file(&source, &knowledge);
            Some((source, found))
        })
        .collect()
}

/// Prints the diagnostics of every script of the app in `dir` to stderr.
pub fn print_warnings(dir: &Path, engine: &Engine) {
    for (source, found) in warnings(dir, engine) {
        for diagnostic in found {
            eprintln!("{}", diagnostic.render(source.path()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(text: &str) -> Vec<Diagnostic> {
        route_warnings(&SourceFile::new("pages/api/t.rhai", text))
    }

    /// `rhapi check` panicked on this file: lexing stops at `'hello'` (a character literal
    /// in Rhai) inside an unclosed body, and the old reader sliced out of range.
    #[test]
    fn a_character_literal_string_does_not_panic() {
        assert!(warnings("fn GET() { 'hello' }").is_empty());
        assert!(warnings("fn GET() {\n  let s = 'hello';\n  s\n}\n").is_empty());
    }

    #[test]
    fn warnings_carry_code_position_and_hint() {
        let found = warnings("fn GET() {\n    try { 1 } catch { 2 }\n}\n");
        assert_eq!(found.len(), 1);
        let printed = found[0].render("pages/api/t.rhai");
        assert!(
            printed.starts_with("warning: pages/api/t.rhai:2:5: fn GET ends with try/catch"),
            "{printed}"
        );
        assert!(printed.contains("[try-catch-value]") && printed.contains("hint: use `return`"));
    }
}
