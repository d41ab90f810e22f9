//! The warnings of `rhapi check`: the lint rules of [`crate::analysis::rules`] run on every
//! route file. They do not fail `check`; each names file:line:col, its code and the fix.

use std::path::Path;

use rhai::Engine;

use crate::analysis::diagnostic::Severity;
use crate::analysis::imports::ImportResolver;
use crate::analysis::outline::import_lines;
use crate::analysis::source::Range;
use crate::analysis::{rules, Diagnostic, Position, SourceFile};

/// The diagnostics of one route file.
pub fn route_warnings(source: &SourceFile) -> Vec<Diagnostic> {
    let mut found = rules::check(source);
    found.extend(crate::analysis::hints::scan(source));
    found
}

/// Every diagnostic of one script's text, for the language server: what `rhapi check` says
/// of it (a compile error with its position, an import that leads nowhere, the lint
/// warnings), without loading the rest of the app. `path` is the file's real path (imports
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
    found.extend(route_warnings(source));
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

/// Prints the diagnostics of every route file of the app in `dir` to stderr.
pub fn print_warnings(dir: &Path) {
    let files = crate::app_files::AppFiles::open(dir);
    for file in crate::routes::scan(dir).unwrap_or_default() {
        let Ok(text) = files.read_to_string(&file.path) else {
            continue;
        };
        let source = SourceFile::new(file.display, text);
        for diagnostic in route_warnings(&source) {
            eprintln!("{}", diagnostic.render(source.path()));
        }
    }
    print_module_hints(&files);
}

/// The JavaScript habits ([`crate::analysis::hints`]) in middleware and module files, which
/// the route rules do not read.
fn print_module_hints(files: &crate::app_files::AppFiles) {
    use crate::app_files::Kind;
    let scan = files.scan();
    for file in scan.of(Kind::Middleware).chain(scan.of(Kind::Module)) {
        let Ok(text) = files.read_to_string(&file.path) else {
            continue;
        };
        let source = SourceFile::new(files.display(&file.path), text);
        for diagnostic in crate::analysis::hints::scan(&source) {
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
