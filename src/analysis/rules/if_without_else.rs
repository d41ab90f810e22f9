//! `if-without-else`: a method function whose last statement is an `if` without `else`
//! whose block ends in a value, e.g. `fn GET(req) { if req.query.all { list() } }`.
//!
//! Why: when the condition is false the `if` has the value `()`, so the route answers 204
//! with no body, which is rarely what was meant. Not for `handler`: a `handler` ending in
//! `if`s without `else` is the Next.js style, and `()` there means 405.

use rhai::Token;

use super::{block_yields_value, last_statement, statement_range, RouteFn, Rule};
use crate::analysis::diagnostic::{Diagnostic, Severity};
use crate::analysis::lexer::{opens_brace, Lexed};
use crate::analysis::route_shape::RouteFunction;

/// The rule.
pub const RULE: Rule = Rule {
    code: "if-without-else",
    check,
};

fn check(function: &RouteFn) -> Option<Diagnostic> {
    if !matches!(function.kind, RouteFunction::Method(_)) {
        return None;
    }
    let statement = last_statement(function.body);
    if statement.first()?.token != Token::If {
        return None;
    }
    let (first_block, has_else) = shape(statement);
    let yields = first_block.is_some_and(|open| block_yields_value(statement, open));
    (!has_else && yields).then(|| Diagnostic {
        code: RULE.code,
        severity: Severity::Warning,
        range: statement_range(statement),
        message: format!(
            "fn {} ends with an `if` without `else`: when the condition is false it returns () (204)",
            function.name
        ),
        hint: Some("add an `else` or `return` the value".into()),
    })
}

/// The index of the `if`'s first block, and whether the chain ends in a plain `else`.
fn shape(statement: &[Lexed]) -> (Option<usize>, bool) {
    let mut depth = 0usize;
    let mut has_else = false;
    let mut first_block = None;
    for (k, lexed) in statement.iter().enumerate() {
        match lexed.token {
            ref token if opens_brace(token) => {
                if depth == 0 && first_block.is_none() {
                    first_block = Some(k);
                }
                depth += 1;
            }
            Token::RightBrace => depth = depth.saturating_sub(1),
            Token::Else if depth == 0 => {
                // `else if` continues the chain; a plain `else` closes it.
                has_else = !matches!(statement.get(k + 1).map(|t| &t.token), Some(Token::If));
            }
            _ => {}
        }
    }
    (first_block, has_else)
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::check_text as check;

    fn lines(source: &str) -> Vec<usize> {
        check(source).iter().map(|d| d.range.start.line).collect()
    }

    #[test]
    fn if_without_else_as_the_value_warns() {
        let found = check("fn GET(req) {\n  let a = 1;\n  if a > 0 { #{ a: a } }\n}");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "if-without-else");
        assert_eq!(
            (found[0].range.start.line, found[0].range.start.column),
            (3, 3)
        );
        assert!(found[0]
            .message
            .starts_with("fn GET ends with an `if` without `else`"));
        assert_eq!(lines("fn GET(req) { if a { 1 } else if b { 2 } }"), vec![1]);
        for quiet in [
            "fn GET(req) { if a { 1 } else { 2 } }",
            "fn GET(req) { if a { 1 } else if b { 2 } else { 3 } }",
            "fn GET(req, res) { if a { res.json(1); } }",
            "fn handler(req) { if req.method == \"GET\" { 1 } }",
            // An `if` earlier in the body, a template string with braces: no warning.
            "fn GET(req) { if a { 1 } `${ #{ b: 1 }.b }` }",
        ] {
            assert!(check(quiet).is_empty(), "{quiet}");
        }
    }
}
