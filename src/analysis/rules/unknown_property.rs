//! `unknown-property`: a field of `req` that it does not have (`req.boby`), or a method or
//! field of `res` that it does not have (`res.josn(x)`, `res.statusCode`), with the closest
//! name as did-you-mean. The names are the lists of [`crate::script::shapes`].
//!
//! Why: `req.boby` is `()` rather than an error, so the route goes on with nothing; a
//! wrong `res` method fails only when the request runs.
//!
//! Where: `req` in any function with a parameter `req`; `res` only in route functions and
//! `middleware` (a helper's `res` may be anything). Never in a function that binds the name
//! itself (`let req = ...`), and never a field the file assigns (`req.user = ...`).

use std::collections::HashSet;

use rhai::{Expr, ScriptFuncDef, Stmt};

use super::{Tree, TreeRule};
use crate::analysis::diagnostic::{Diagnostic, Severity};
use crate::analysis::route_shape::RouteFunction;
use crate::analysis::source::{Position, Range};
use crate::analysis::suggest::did_you_mean;
use crate::analysis::tree::{
    body, chain_head, position, variable_name, walk, walk_statements, BoundNames, Visit,
};
use crate::script::shapes::{REQ_FIELDS, RES_METHODS};

/// The rule.
pub const RULE: TreeRule = TreeRule {
    code: "unknown-property",
    check,
};

/// Methods every value has, `res` included.
const ANY_VALUE_METHODS: &[&str] = &["to_string", "to_debug", "type_of", "is_shared"];

struct Finder {
    /// Whether `req` and `res` in the current function are the request's.
    req: bool,
    res: bool,
    /// `req.NAME = ...` anywhere in the file.
    assigned: HashSet<String>,
    found: Vec<Diagnostic>,
}

fn check(tree: &Tree) -> Vec<Diagnostic> {
    let mut assigned = Assigned::default();
    walk(tree.ast, &mut assigned);
    let mut finder = Finder {
        req: false,
        res: false,
        assigned: assigned.0,
        found: Vec::new(),
    };
    walk(tree.ast, &mut finder);
    finder.found
}

/// The fields a file assigns to `req`.
#[derive(Default)]
struct Assigned(HashSet<String>);

impl Visit for Assigned {
    fn statement(&mut self, statement: &Stmt, _: bool) {
        if let Stmt::Assignment(x) = statement {
            if let Expr::Dot(dot, ..) = &x.1.lhs {
                if let Expr::Property(p, _) = chain_head(&dot.rhs) {
                    self.0.insert(p.2.to_string());
                }
            }
        }
    }
}

impl Visit for Finder {
    fn function(&mut self, function: Option<&ScriptFuncDef>) {
        let Some(function) = function else {
            (self.req, self.res) = (false, false);
            return;
        };
        let mut binds = BoundNames::default();
        if let Some(body) = body(function) {
            walk_statements(body.statements(), true, &mut binds);
        }
        let has = |name: &str| function.params.iter().any(|p| p == name) && !binds.0.contains(name);
        self.req = has("req");
        self.res = has("res") && RouteFunction::of(&function.name).is_some();
    }

    fn expression(&mut self, expression: &Expr) {
        let Expr::Dot(x, ..) = expression else {
            return;
        };
        match (variable_name(&x.lhs), chain_head(&x.rhs)) {
            (Some("req"), Expr::Property(p, pos)) if self.req => {
                let name = p.2.as_str();
                if REQ_FIELDS.iter().any(|f| f.name == name) || self.assigned.contains(name) {
                    return;
                }
                let suggestion = did_you_mean(name, REQ_FIELDS.iter().map(|f| f.name))
                    .map(|f| format!("req.{f}"));
                let fields: Vec<&str> = REQ_FIELDS.iter().map(|f| f.name).collect();
                let message = format!(
                    "`req` has no field `{name}` (its fields: {})",
                    fields.join(", ")
                );
                self.report(*pos, name, message, suggestion);
            }
            (Some("res"), Expr::MethodCall(call, pos)) if self.res => {
                let name = call.name.as_str();
                if RES_METHODS.iter().any(|m| m.name == name) || ANY_VALUE_METHODS.contains(&name) {
                    return;
                }
                let suggestion = did_you_mean(name, RES_METHODS.iter().map(|m| m.name))
                    .map(|m| format!("res.{m}(...)"));
                let message = format!("`res` has no method `{name}`");
                self.report(*pos, name, message, suggestion);
            }
            (Some("res"), Expr::Property(p, pos)) if self.res => {
                let name = p.2.as_str();
                let suggestion = did_you_mean(name, RES_METHODS.iter().map(|m| m.name))
                    .map(|m| format!("res.{m}(...)"));
                let message = format!("`res` has no fields, only methods: `res.{name}` is not one");
                self.report(*pos, name, message, suggestion);
            }
            _ => {}
        }
    }
}

impl Finder {
    fn report(
        &mut self,
        pos: rhai::Position,
        name: &str,
        message: String,
        suggestion: Option<String>,
    ) {
        let start = position(pos);
        self.found.push(Diagnostic {
            code: RULE.code,
            severity: Severity::Warning,
            range: Range::new(
                start,
                Position::new(start.line, start.column + name.chars().count()),
            ),
            message,
            hint: suggestion.map(|s| format!("did you mean `{s}`?")),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::check_tree;

    fn found(text: &str) -> Vec<(usize, usize, Option<String>)> {
        check_tree(text, "unknown-property")
            .into_iter()
            .map(|d| (d.range.start.line, d.range.start.column, d.hint))
            .collect()
    }

    #[test]
    fn a_misspelt_req_field_is_found() {
        let got = check_tree(
            "fn POST(req) {\n    let email = req.boby.email;\n}",
            "unknown-property",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].range.start.line, got[0].range.start.column),
            (2, 21)
        );
        assert!(
            got[0].message.starts_with("`req` has no field `boby`"),
            "{}",
            got[0].message
        );
        assert_eq!(got[0].hint.as_deref(), Some("did you mean `req.body`?"));
    }

    #[test]
    fn res_methods_and_fields() {
        let got = found("fn GET(req, res) { res.josn(1); res.statusCode = 201; }");
        let hints: Vec<_> = got.iter().map(|g| g.2.clone()).collect();
        assert_eq!(
            hints,
            vec![Some("did you mean `res.json(...)`?".to_string()), None],
            "{got:?}"
        );
    }

    #[test]
    fn real_fields_helpers_and_shadows_are_quiet() {
        for quiet in [
            "fn GET(req, res) { req.body.email; req.query[\"a\"]; req.headers.keys(); res.status(201).set_header(\"a\", 1).json(req.params) }",
            "fn helper(res) { res.rows }",
            "fn GET(req) { let req = #{ boby: 1 }; req.boby }",
            "fn middleware(req) { req.user = 1; } fn GET(req) { req.user }",
            "fn GET(request) { request.boby }",
            "fn GET(req, res) { res.write(1); res.event(#{ data: 1 }); res.end() }",
        ] {
            assert!(found(quiet).is_empty(), "{quiet}: {:?}", found(quiet));
        }
    }
}
