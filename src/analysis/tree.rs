//! Walking a parsed file (Rhai's own syntax tree, `internals` feature): every function,
//! statement and expression, with whether a statement's value is thrown away. The rules
//! of [`super::rules`] that need more than tokens read files through this.

use rhai::{Expr, FnCallExpr, ScriptFuncDef, ScriptFuncPayload, Stmt, StmtBlock, AST};

use super::source::Position;

/// What a walk calls back, in source order within each function.
pub trait Visit {
    /// A function (closures included) starts; `None`: the file's top level.
    fn function(&mut self, _function: Option<&ScriptFuncDef>) {}
    /// A statement; `discarded` when nothing uses its value.
    fn statement(&mut self, _statement: &Stmt, _discarded: bool) {}
    /// An expression (after the statement that holds it).
    fn expression(&mut self, _expression: &Expr) {}
}

/// Walks the top level of `ast`, then each of its functions.
pub fn walk(ast: &AST, visit: &mut impl Visit) {
    visit.function(None);
    walk_statements(ast.statements(), true, visit);
    for function in ast.iter_fn_def() {
        visit.function(Some(function));
        if let Some(body) = body(function) {
            // A function's last statement is its value, `;` or not.
            walk_statements(body.statements(), true, visit);
        }
    }
}

/// The statements of a function.
pub fn body(function: &ScriptFuncDef) -> Option<&StmtBlock> {
    match &function.body {
        ScriptFuncPayload::Statements(block) => Some(block),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Walks a block whose value is used when `used` (its last statement is its value).
pub fn walk_statements(statements: &[Stmt], used: bool, visit: &mut impl Visit) {
    let last = statements.len().saturating_sub(1);
    for (k, statement) in statements.iter().enumerate() {
        walk_statement(statement, !(used && k == last), visit);
    }
}

fn walk_statement(statement: &Stmt, discarded: bool, visit: &mut impl Visit) {
    visit.statement(statement, discarded);
    match statement {
        Stmt::If(flow, _) => {
            walk_expression(&flow.expr, visit);
            walk_statements(flow.body.statements(), !discarded, visit);
            walk_statements(flow.branch.statements(), !discarded, visit);
        }
        Stmt::TryCatch(flow, _) => {
            walk_statements(flow.body.statements(), !discarded, visit);
            walk_statements(flow.branch.statements(), !discarded, visit);
        }
        // A loop's body has no value.
        Stmt::While(flow, _) | Stmt::Do(flow, ..) => {
            walk_expression(&flow.expr, visit);
            walk_statements(flow.body.statements(), false, visit);
        }
        Stmt::For(x, _) => {
            walk_expression(&x.2.expr, visit);
            walk_statements(x.2.body.statements(), false, visit);
        }
        Stmt::Switch(x, _) => {
            walk_expression(&x.0, visit);
            for case in &x.1.expressions {
                walk_expression(&case.lhs, visit);
                walk_expression(&case.rhs, visit);
            }
        }
        Stmt::Var(x, ..) => walk_expression(&x.1, visit),
        Stmt::Assignment(x) => {
            walk_expression(&x.1.lhs, visit);
            walk_expression(&x.1.rhs, visit);
        }
        Stmt::FnCall(call, _) => walk_call(call, visit),
        Stmt::Block(block) => walk_statements(block.statements(), !discarded, visit),
        Stmt::Expr(expression) => walk_expression(expression, visit),
        Stmt::BreakLoop(Some(expression), ..) | Stmt::Return(Some(expression), ..) => {
            walk_expression(expression, visit)
        }
        Stmt::Import(x, _) => walk_expression(&x.0, visit),
        _ => {}
    }
}

fn walk_call(call: &FnCallExpr, visit: &mut impl Visit) {
    for argument in &call.args {
        walk_expression(argument, visit);
    }
}

fn walk_expression(expression: &Expr, visit: &mut impl Visit) {
    visit.expression(expression);
    match expression {
        Expr::InterpolatedString(items, _) | Expr::Array(items, _) => {
            for item in items {
                walk_expression(item, visit);
            }
        }
        Expr::Map(x, _) => {
            for (_, value) in &x.0 {
                walk_expression(value, visit);
            }
        }
        Expr::Stmt(block) => walk_statements(block.statements(), true, visit),
        Expr::FnCall(call, _) | Expr::MethodCall(call, _) => walk_call(call, visit),
        Expr::Dot(x, ..) | Expr::Index(x, ..) => {
            walk_expression(&x.lhs, visit);
            walk_expression(&x.rhs, visit);
        }
        Expr::And(items, _) | Expr::Or(items, _) | Expr::Coalesce(items, _) => {
            for item in items.iter() {
                walk_expression(item, visit);
            }
        }
        Expr::Custom(x, _) => {
            for input in &x.inputs {
                walk_expression(input, visit);
            }
        }
        _ => {}
    }
}

/// The name of a plain variable (`req`), `None` for anything else.
pub fn variable_name(expression: &Expr) -> Option<&str> {
    match expression {
        Expr::Variable(x, ..) if x.2.is_empty() => Some(x.1.as_str()),
        _ => None,
    }
}

/// The first link of a chain after its `.`: `body` in `req.body.email`.
pub fn chain_head(expression: &Expr) -> &Expr {
    match expression {
        Expr::Dot(x, ..) | Expr::Index(x, ..) => chain_head(&x.lhs),
        other => other,
    }
}

/// The last link of a `.` chain: `to_lower()` in `user.email.to_lower()`.
pub fn chain_tail(expression: &Expr) -> &Expr {
    match expression {
        Expr::Dot(x, ..) => chain_tail(&x.rhs),
        other => other,
    }
}

/// A Rhai position as the analysis counts (line 1, column 1 when it has none).
pub fn position(pos: rhai::Position) -> Position {
    Position::from_rhai(pos).unwrap_or(Position::new(1, 1))
}

/// Every name a file binds as a variable (`let`, `const`, `for`, a function's
/// parameters, `catch (e)`), anywhere in it: a call of one of them may call a function
/// pointer it holds, so such names are never reported as unknown functions.
pub fn bound_names(ast: &AST) -> std::collections::HashSet<String> {
    let mut names = BoundNames::default();
    walk(ast, &mut names);
    names.0
}

/// The names the code it visits binds as variables (see [`bound_names`]); walked over one
/// function's body, that function's locals.
#[derive(Default)]
pub struct BoundNames(pub std::collections::HashSet<String>);

impl Visit for BoundNames {
    fn function(&mut self, function: Option<&ScriptFuncDef>) {
        for param in function.iter().flat_map(|f| f.params.iter()) {
            self.0.insert(param.to_string());
        }
    }
    fn statement(&mut self, statement: &Stmt, _: bool) {
        match statement {
            Stmt::Var(x, ..) => {
                self.0.insert(x.0.name.to_string());
            }
            Stmt::For(x, _) => {
                self.0.insert(x.0.name.to_string());
                if let Some(counter) = &x.1 {
                    self.0.insert(counter.name.to_string());
                }
            }
            Stmt::TryCatch(flow, _) => {
                if let Some(name) = variable_name(&flow.expr) {
                    self.0.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
}
