//! The warnings of `rhapi check`: the lint rules of [`crate::analysis::rules`] run on every
//! route file. They do not fail `check`; each names file:line:col, its code and the fix.

use std::path::Path;

use crate::analysis::{rules, Diagnostic, SourceFile};

/// The diagnostics of one route file.
pub fn route_warnings(source: &SourceFile) -> Vec<Diagnostic> {
    let mut found = rules::check(source);
    found.extend(crate::analysis::hints::scan(source));
    found
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
