//! `try-catch-value`: a route function (method or `handler`) whose last statement is a
//! `try`/`catch` meant as its value, e.g. `fn GET() { try { #{ ok: true } } catch { ... } }`.
//!
//! Why: in Rhai a `try`/`catch` statement has the value `()`, whatever its blocks end in,
//! so the route answers 204 (405 for `handler`) instead of the map. `return` inside the
//! blocks gives the value.

use rhai::Token;

use super::{block_yields_value, last_statement, statement_range, RouteFn, Rule};
use crate::analysis::diagnostic::{Diagnostic, Severity};
use crate::analysis::route_shape::RouteFunction;

/// The rule.
pub const RULE: Rule = Rule {
    code: "try-catch-value",
    check,
};

fn check(function: &RouteFn) -> Option<Diagnostic> {
    let status = match function.kind {
        RouteFunction::Method(_) => 204,
        RouteFunction::Handler => 405,
        // Middleware that does not answer hands the request on: `()` is fine there.
        RouteFunction::Middleware => return None,
        // What a WebSocket event returns is not sent anywhere.
        RouteFunction::Event(_) => return None,
    };
    let statement = last_statement(function.body);
    if statement.first()?.token != Token::Try {
        return None;
    }
    let open = statement.iter().position(|t| t.token == Token::LeftBrace)?;
    if !block_yields_value(statement, open) {
        return None;
    }
    Some(Diagnostic {
        code: RULE.code,
        severity: Severity::Warning,
        range: statement_range(statement),
        message: format!(
            "fn {} ends with try/catch, which yields () in Rhai (the route answers {status})",
            function.name
        ),
        hint: Some("use `return` inside it".into()),
    })
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::check_text as check;
    use crate::analysis::source::{Position, Range};

    #[test]
    fn try_catch_as_the_last_statement_warns() {
        let source = "fn GET() {\n    try { #{ ok: true } } catch (e) { #{ ok: false } }\n}\n";
        let found = check(source);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "try-catch-value");
        assert_eq!(
            found[0].range,
            Range::new(Position::new(2, 5), Position::new(2, 55))
        );
        assert!(found[0].message.contains("(the route answers 204)"));
        assert_eq!(found[0].hint.as_deref(), Some("use `return` inside it"));
        assert!(check("fn handler() { try { 1 } catch { 2 } }")[0]
            .message
            .contains("405"));
        // Statements ending in `;`, a value after it, a helper or middleware: no warning.
        for quiet in [
            "fn GET(req, res) { try { res.json(1); } catch { res.json(2); } }",
            "fn GET() { try { x(); } catch { } ; 1 }",
            "fn GET() { let x = 1; try { x = 2; } catch { }\n x }",
            "fn helper() { try { 1 } catch { 2 } }",
            "fn middleware(req) { try { 1 } catch { 2 } }",
        ] {
            assert!(check(quiet).is_empty(), "{quiet}");
        }
    }
}
