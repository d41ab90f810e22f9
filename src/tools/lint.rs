//! The warnings of `rhapi check`: the lint rules of [`crate::analysis::rules`] run on every
//! script of the app (routes, middleware and modules of `pages/`, and `jobs/`). They do not
//! fail `check`; each names file:line:col, its code and the fix. The language server asks
//! for one file's through [`file_diagnostics`].

use std::path::Path;

use rhai::Engine;

use crate::analysis::diagnostic::Severity;
use crate::analysis::imports::ImportResolver;
use crate::analysis::outline::import_lines;
use crate::analysis::source::Range;
use crate::analysis::{AppKnowledge, Diagnostic, Position, SourceFile};
use crate::app_files::{AppFiles, Kind};

/// The diagnostics of one route file from the token rules and the hints only (no engine
/// needed).
#[cfg(test)]
pub fn route_warnings(source: &SourceFile) -> Vec<Diagnostic> {
    let mut found = crate::analysis::rules::check(source);
    found.extend(crate::analysis::hints::scan(source));
    found
}

/// Every diagnostic of one script's text, for the language server: what `rhapi check` says
/// of it (a compile error with its position, an import that leads nowhere, the lint
/// warnings and static checks of [`crate::analysis::check_file`]), without loading the rest
/// of the app. `path` is the file's real path (imports
/// are resolved from it), `app_dir` the app it belongs to. Never panics, whatever the text.
pub fn file_diagnostics(
    engine: &Engine,
    app_dir: &Path,
    path: &Path,
    source: &SourceFile,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    if let Err(err) = engine.compile(source.text()) {
        let located = crate::script::errors::locate(&err.into(), source.path());
        let at = Position::new(
            located.location.line.unwrap_or(1),
            located.location.column.unwrap_or(1),
        );
        found.push(error_at(source, at, "compile", located.message));
    }
    let resolver = ImportResolver::new(app_dir);
    for import in import_lines(engine, source.text()) {
        let problem = match resolver.resolve(path, &import.path) {
            Err(err) => err.to_string(),
            Ok(target) if !target.is_file() => {
                format!(
                    "import \"{}\": no module file {}",
                    import.path,
                    target.display()
                )
            }
            Ok(_) => continue,
        };
        found.push(error_at(source, import.at, "import", problem));
    }
    let knowledge = AppKnowledge::from_engine(engine, Some(app_dir));
    found.extend(crate::analysis::check_file(source, &knowledge));
    found
}

/// An error at `at`, spanning the word there (or one character).
fn error_at(source: &SourceFile, at: Position, code: &'static str, message: String) -> Diagnostic {
    let rest = source
        .line(at.line)
        .map(|line| line.chars().skip(at.column.saturating_sub(1)));
    let width = rest
        .map(|chars| {
            chars
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .count()
        })
        .unwrap_or(0)
        .max(1);
    Diagnostic {
        code,
        severity: Severity::Error,
        range: Range::new(at, Position::new(at.line, at.column + width)),
        message,
        hint: None,
    }
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
    fn file_diagnostics_give_compile_and_import_errors_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages/api")).unwrap();
        std::fs::write(dir.path().join("pages/api/lib.rhai"), "fn f() { 1 }").unwrap();
        let path = dir.path().join("pages/api/t.rhai");
        let engine = Engine::new();
        let text = "import \"lib\" as lib;\nimport \"nope\" as nope;\nfn GET() {\n  let x = ;\n}\n";
        let source = SourceFile::new("pages/api/t.rhai", text);
        let found = file_diagnostics(&engine, dir.path(), &path, &source);
        let codes: Vec<(&str, usize)> =
            found.iter().map(|d| (d.code, d.range.start.line)).collect();
        assert_eq!(codes, [("compile", 4), ("import", 2)], "{found:?}");
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[1].message.contains("nope"), "{found:?}");
        // Garbage never panics.
        for text in ["'", "fn (", "\u{0}}}}", "`${", "import", "#{ a: 1 "] {
            file_diagnostics(&engine, dir.path(), &path, &SourceFile::new("t", text));
        }
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
