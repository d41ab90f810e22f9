//! What the analysis reports about a source file: a [`Diagnostic`] with a stable code, a
//! severity, the range it is about, a message, and maybe a hint (the fix).

use super::source::Range;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
// No rule gives notes (`Info`) yet.
#[allow(dead_code)]
pub enum Severity {
    /// The file does not load.
    Error,
    /// The file loads, but probably does not do what it seems to (`rhapi check` still
    /// exits 0).
    Warning,
    /// Worth knowing; nothing is wrong.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One finding about one file (the file is not part of it: a diagnostic belongs to the
/// file it was made from).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// A short stable name of the rule, e.g. `try-catch-value`; see the list in
    /// docs/reference.md ("Command line", `check`).
    pub code: &'static str,
    pub severity: Severity,
    /// Where: lines and columns 1-based, the end exclusive (see [`Range`]).
    pub range: Range,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// The diagnostic as `rhapi check` prints it, for the file shown as `file`:
    /// `warning: FILE:LINE:COL: MESSAGE [CODE]`, and the hint on a line of its own.
    pub fn render(&self, file: &str) -> String {
        let mut out = format!(
            "{}: {file}:{}: {} [{}]",
            self.severity.as_str(),
            self.range.start,
            self.message,
            self.code
        );
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::source::Position;

    #[test]
    fn rendered_with_file_line_column_code_and_hint() {
        let mut diagnostic = Diagnostic {
            code: "try-catch-value",
            severity: Severity::Warning,
            range: Range::new(Position::new(2, 5), Position::new(2, 8)),
            message: "fn GET ends with try/catch".into(),
            hint: Some("use `return` inside it".into()),
        };
        assert_eq!(
            diagnostic.render("pages/api/t.rhai"),
            "warning: pages/api/t.rhai:2:5: fn GET ends with try/catch [try-catch-value]\n  hint: use `return` inside it"
        );
        diagnostic.hint = None;
        assert!(!diagnostic.render("f").contains("hint"));
    }
}
