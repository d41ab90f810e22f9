//! `discarded-value`: a statement that calls a function which changes nothing and only
//! returns a new value, and throws that value away: `email.to_lower();`.
//!
//! Why: JavaScript developers expect some of these to change the value in place; in Rhai
//! `to_lower` returns a new string and `email` stays as it was. The fix keeps the value
//! (`email = email.to_lower();`) or calls the in-place twin (`email.make_lower();`).
//!
//! Only statements whose value nothing uses: not the last statement of a function or of a
//! block whose value is used (in Rhai that is the value, `;` or not). Only the functions of
//! [`PURE`] (never one taking a closure, which could do anything), and never when the file
//! defines a function of the same name.

use rhai::{Expr, FnCallExpr, Stmt};

use super::{Tree, TreeRule};
use crate::analysis::diagnostic::{Diagnostic, Severity};
use crate::analysis::source::{Position, Range};
use crate::analysis::tree::{chain_tail, position, variable_name, walk, Visit};

/// The rule.
pub const RULE: TreeRule = TreeRule {
    code: "discarded-value",
    check,
};

/// Rhai's functions of strings, arrays and maps that change nothing and return a value,
/// with the in-place function that does what the statement seems to mean, if there is one.
pub const PURE: &[(&str, Option<&str>)] = &[
    ("to_lower", Some("make_lower")),
    ("to_upper", Some("make_upper")),
    ("sub_string", Some("crop")),
    ("split", None),
    ("split_rev", None),
    ("index_of", None),
    ("contains", None),
    ("starts_with", None),
    ("ends_with", None),
    ("len", None),
    ("is_empty", None),
    ("chars", None),
    ("to_chars", None),
    ("to_blob", None),
    ("to_string", None),
    ("to_debug", None),
    ("to_json", None),
    ("parse_int", None),
    ("parse_float", None),
    ("parse_json", None),
    ("keys", None),
    ("values", None),
    ("extract", None),
];

struct Finder<'a> {
    tree: &'a Tree<'a>,
    found: Vec<Diagnostic>,
}

fn check(tree: &Tree) -> Vec<Diagnostic> {
    let mut finder = Finder {
        tree,
        found: Vec::new(),
    };
    walk(tree.ast, &mut finder);
    finder.found
}

impl Visit for Finder<'_> {
    fn statement(&mut self, statement: &Stmt, discarded: bool) {
        if !discarded {
            return;
        }
        match statement {
            Stmt::FnCall(call, pos) => self.call(call, *pos, None),
            Stmt::Expr(expression) => match &**expression {
                Expr::FnCall(call, pos) => self.call(call, *pos, None),
                Expr::Dot(x, _, _) => {
                    if let Expr::MethodCall(call, _) = chain_tail(&x.rhs) {
                        // `name.f()` directly on a variable: the fix can name it.
                        let receiver = match &x.rhs {
                            Expr::MethodCall(..) => variable_name(&x.lhs),
                            _ => None,
                        };
                        self.call(call, x.lhs.start_position(), receiver.or(Some("")));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
}

impl Finder<'_> {
    /// `receiver`: `None` for a plain call, `Some("")` for a method call on something
    /// other than a variable, `Some(name)` for `name.f(...)`.
    fn call(&mut self, call: &FnCallExpr, pos: rhai::Position, receiver: Option<&str>) {
        let name = call.name.as_str();
        if !call.namespace.is_empty() || (receiver.is_none() && call.args.is_empty()) {
            return;
        }
        let Some((_, in_place)) = PURE.iter().find(|(pure, _)| *pure == name) else {
            return;
        };
        if self.tree.ast.iter_fn_def().any(|f| f.name == name) {
            return;
        }
        let args = if call.args.is_empty() { "()" } else { "(...)" };
        let keep = match receiver {
            Some(variable) if !variable.is_empty() => {
                format!("`{variable} = {variable}.{name}{args};`")
            }
            _ => format!("`let x = ...{name}(...);`"),
        };
        let hint = match (in_place, receiver) {
            (Some(in_place), Some(variable)) if !variable.is_empty() => {
                format!(
                    "keep the value: {keep}, or change it in place: `{variable}.{in_place}{args};`"
                )
            }
            (Some(in_place), _) => {
                format!("keep the value: {keep}, or change it in place with `{in_place}`")
            }
            (None, _) => format!("keep the value: {keep}"),
        };
        let start = position(pos);
        self.found.push(Diagnostic {
            code: RULE.code,
            severity: Severity::Warning,
            range: Range::new(start, Position::new(start.line, start.column + 1)),
            message: format!(
                "the value of `{name}` is thrown away: it returns a new value and changes nothing"
            ),
            hint: Some(hint),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::check_tree;

    fn lines(text: &str) -> Vec<usize> {
        check_tree(text, "discarded-value")
            .iter()
            .map(|d| d.range.start.line)
            .collect()
    }

    #[test]
    fn a_thrown_away_to_lower_is_found() {
        let got = check_tree(
            "fn POST(req) {\n    let email = req.body.email;\n    email.to_lower();\n    #{ email: email }\n}",
            "discarded-value",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].range.start.line, got[0].range.start.column), (3, 5));
        assert_eq!(
            got[0].hint.as_deref(),
            Some("keep the value: `email = email.to_lower();`, or change it in place: `email.make_lower();`")
        );
        assert_eq!(lines("fn f(s) { to_upper(s); 1 }"), vec![1]);
        assert_eq!(lines("fn f(s) { for x in s { x.len() } }"), vec![1]);
        assert_eq!(lines("fn f(s) { if s { s.keys(); } 1 }"), vec![1]);
    }

    #[test]
    fn used_values_and_in_place_calls_are_quiet() {
        for quiet in [
            "fn f(s) { s.to_lower() }",
            "fn f(s) { s.to_lower(); }",
            "fn f(s) { let t = s.to_lower(); s = s.to_upper(); t }",
            "fn f(s) { s.make_lower(); s.trim(); s }",
            "fn f(s) { if s { s.len() } else { 0 } }",
            "fn to_lower(x) { x } fn f(s) { s.to_lower(); 1 }",
            "fn f(items) { items.map(|x| print(x)); 1 }",
        ] {
            assert!(lines(quiet).is_empty(), "{quiet}: {:?}", lines(quiet));
        }
    }
}
