//! `unknown-function`: a call of a function that nothing defines: not Rhai's packages, not
//! rhapi's batteries (`db::qurey(...)`), not the file's own functions, not the module an
//! `import ... as alias` reads (`auth::usr(req)`), with the closest name as did-you-mean.
//!
//! Why: Rhai finds functions when the call runs, so such a call passes `check` and loading,
//! and fails with "Function not found" at the first request that reaches it.
//!
//! Never reported: a call whose name is also a variable of the file (it may hold a function
//! pointer), a method whose name is a map key or property somewhere in the file (a map may
//! hold a function pointer), modules of more than one level, an import that cannot be read
//! or whose path is not a literal (the loader reports those).

use std::collections::{BTreeSet, HashMap, HashSet};

use rhai::{Expr, FnCallExpr, Stmt};

use super::{Tree, TreeRule};
use crate::analysis::diagnostic::{Diagnostic, Severity};
use crate::analysis::source::{Position, Range};
use crate::analysis::suggest::did_you_mean;
use crate::analysis::tree::{bound_names, chain_head, position, variable_name, walk, Visit};

/// The rule.
pub const RULE: TreeRule = TreeRule {
    code: "unknown-function",
    check,
};

/// What the file itself defines and imports.
struct Local {
    /// Its own functions.
    functions: BTreeSet<String>,
    /// Names bound as variables anywhere in it.
    bound: HashSet<String>,
    /// Names used as map keys or properties anywhere in it.
    keys: HashSet<String>,
    /// `import "path" as alias`: the module's public functions (`None`: not followed).
    imports: HashMap<String, Option<BTreeSet<String>>>,
    /// Where `res.name(...)` calls are: `unknown-property` reports those.
    res_calls: HashSet<rhai::Position>,
}

struct Finder<'a> {
    tree: &'a Tree<'a>,
    local: Local,
    found: Vec<Diagnostic>,
}

fn check(tree: &Tree) -> Vec<Diagnostic> {
    let local = Local {
        functions: tree
            .ast
            .iter_fn_def()
            .filter(|f| is_identifier(&f.name))
            .map(|f| f.name.to_string())
            .collect(),
        bound: bound_names(tree.ast),
        keys: HashSet::new(),
        imports: HashMap::new(),
        res_calls: HashSet::new(),
    };
    let mut finder = Finder {
        tree,
        local,
        found: Vec::new(),
    };
    // First what the file declares, then the calls.
    walk(tree.ast, &mut Declared(&mut finder));
    walk(tree.ast, &mut finder);
    finder.found
}

/// The first pass: imports, map keys and properties.
struct Declared<'f, 'a>(&'f mut Finder<'a>);

impl Visit for Declared<'_, '_> {
    fn statement(&mut self, statement: &Stmt, _: bool) {
        let Stmt::Import(x, _) = statement else {
            return;
        };
        let alias = x.1.name.as_str();
        if alias.is_empty() {
            return;
        }
        let functions = match &x.0 {
            Expr::StringConstant(path, _) => self
                .0
                .tree
                .knowledge
                .imported(self.0.tree.source.path(), path),
            _ => None,
        };
        self.0.local.imports.insert(alias.to_string(), functions);
    }

    fn expression(&mut self, expression: &Expr) {
        match expression {
            Expr::Map(x, _) => {
                let keys = x.0.iter().map(|(key, _)| key.name.to_string());
                self.0.local.keys.extend(keys);
            }
            Expr::Property(x, _) => {
                self.0.local.keys.insert(x.2.to_string());
            }
            _ => {}
        }
    }
}

impl Visit for Finder<'_> {
    fn statement(&mut self, statement: &Stmt, _: bool) {
        if let Stmt::FnCall(call, pos) = statement {
            self.call(call, *pos);
        }
    }

    fn expression(&mut self, expression: &Expr) {
        match expression {
            Expr::FnCall(call, pos) => self.call(call, *pos),
            Expr::MethodCall(call, pos) if !self.local.res_calls.contains(pos) => {
                self.method(call, *pos)
            }
            // Seen before the call it holds.
            Expr::Dot(x, ..) if variable_name(&x.lhs) == Some("res") => {
                if let Expr::MethodCall(_, pos) = chain_head(&x.rhs) {
                    self.local.res_calls.insert(*pos);
                }
            }
            _ => {}
        }
    }
}

impl Finder<'_> {
    fn call(&mut self, call: &FnCallExpr, pos: rhai::Position) {
        if call.op_token.is_some() || !is_identifier(&call.name) {
            return;
        }
        let name = call.name.as_str();
        if call.namespace.is_empty() {
            let knowledge = self.tree.knowledge;
            if knowledge.has_function(name)
                || self.local.functions.contains(name)
                || self.local.bound.contains(name)
            {
                return;
            }
            let candidates = knowledge
                .functions()
                .chain(self.local.functions.iter().map(String::as_str));
            let suggestion = did_you_mean(name, candidates).map(str::to_string);
            let message =
                format!("no function `{name}` is defined: not by Rhai, rhapi or this file");
            self.report(pos, name.len(), message, suggestion);
            return;
        }
        if call.namespace.path.len() != 1 {
            return;
        }
        let module = call.namespace.root();
        let start = call.namespace.position();
        let length = module.len() + 2 + name.len();
        let functions = match self.local.imports.get(module) {
            Some(Some(functions)) => functions,
            Some(None) => return,
            None => match self.tree.knowledge.module(module) {
                Some(functions) => functions,
                None if module == "global" => return,
                None => {
                    let modules = self.module_names();
                    let suggestion = did_you_mean(module, modules.iter().map(String::as_str))
                        .map(|m| format!("{m}::{name}"));
                    let message =
                        format!("no module `{module}`: `{module}::{name}` cannot be called");
                    self.report(start, length, message, suggestion);
                    return;
                }
            },
        };
        if functions.contains(name) {
            return;
        }
        let suggestion = did_you_mean(name, functions.iter().map(String::as_str))
            .map(|f| format!("{module}::{f}"));
        let message = format!("`{module}` has no function `{name}`");
        self.report(start, length, message, suggestion);
    }

    fn method(&mut self, call: &FnCallExpr, pos: rhai::Position) {
        let name = call.name.as_str();
        if !is_identifier(name)
            || self.tree.knowledge.has_function(name)
            || self.local.functions.contains(name)
            || self.local.keys.contains(name)
        {
            return;
        }
        let suggestion = did_you_mean(name, self.tree.knowledge.functions()).map(str::to_string);
        let message = format!("no method `{name}` is defined: not by Rhai, rhapi or this file");
        self.report(pos, name.len(), message, suggestion);
    }

    /// The static modules and the file's import aliases.
    fn module_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tree.knowledge.modules().keys().cloned().collect();
        names.extend(self.local.imports.keys().cloned());
        names
    }

    fn report(
        &mut self,
        pos: rhai::Position,
        length: usize,
        message: String,
        suggestion: Option<String>,
    ) {
        let start = position(pos);
        let end = Position::new(start.line, start.column + length);
        self.found.push(Diagnostic {
            code: RULE.code,
            severity: Severity::Warning,
            range: Range::new(start, end),
            message,
            hint: suggestion.map(|s| format!("did you mean `{s}`?")),
        });
    }
}

/// Whether `name` is a name a script could have written (not an operator or an internal
/// name such as a closure's `anon$...`).
fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::check_tree;

    fn found(text: &str) -> Vec<(usize, usize, String, Option<String>)> {
        check_tree(text, "unknown-function")
            .into_iter()
            .map(|d| (d.range.start.line, d.range.start.column, d.message, d.hint))
            .collect()
    }

    #[test]
    fn a_misspelt_battery_call_is_found_with_the_right_name() {
        let got = found("fn GET(req) {\n    db::qurey(\"SELECT 1\")\n}\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (2, 5));
        assert_eq!(got[0].2, "`db` has no function `qurey`");
        assert_eq!(got[0].3.as_deref(), Some("did you mean `db::query`?"));
    }

    #[test]
    fn unknown_plain_calls_methods_and_modules() {
        let got = found("fn GET(req) { let n = pars_int(\"1\"); n.to_lowr(); dbb::query(\"x\") }");
        let hints: Vec<_> = got
            .iter()
            .map(|g| g.3.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            hints,
            vec![
                "did you mean `parse_int`?",
                "did you mean `to_lower`?",
                "did you mean `db::query`?"
            ],
            "{got:?}"
        );
        assert!(found("fn GET() { frobnicate() }")[0].3.is_none());
    }

    #[test]
    fn what_exists_is_not_reported() {
        for quiet in [
            "fn GET(req) { db::query(\"SELECT 1\"); crypto::uuid(); env::get(\"X\") }",
            "fn helper(x) { x + 1 } fn GET(req) { helper(1) }",
            "fn GET(req) { let f = |x| x + 1; f.call(1); Fn(\"GET\"); print(type_of(1)); }",
            "fn GET(req) { let items = [1, 2]; items.map(|x| x * 2).filter(|x| x > 2).len() }",
            "fn GET(req, res) { res.status(201).json(#{ a: 1 }); }",
            "fn GET(req) { let obj = #{ run: |x| x }; obj.run(1) }",
            "fn GET(req) { let s = \"A\"; s.to_lower(); sleep(1); log::info(\"x\") }",
            "fn GET(req) { import \"../_lib/missing\" as m; m::anything() }",
            "fn GET(req) { global::LIMIT }",
            "fn GET(req) { if is_def_fn(\"x\", 1) { 1 } else { 2 } }",
        ] {
            assert!(found(quiet).is_empty(), "{quiet}: {:?}", found(quiet));
        }
    }

    #[test]
    fn imported_module_functions_are_known() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("pages/api/_lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(
            lib.join("auth.rhai"),
            "fn user(req) { 1 }\nprivate fn secret() { 2 }\n",
        )
        .unwrap();
        let knowledge =
            crate::analysis::AppKnowledge::from_engine(&rhai::Engine::new(), Some(dir.path()));
        let source = crate::analysis::SourceFile::new(
            "pages/api/me.rhai",
            "import \"_lib/auth\" as auth;\nfn GET(req) { auth::user(req); auth::usr(req); auth::secret() }\n",
        );
        let got: Vec<_> = crate::analysis::check_file(&source, &knowledge)
            .into_iter()
            .filter(|d| d.code == "unknown-function")
            .map(|d| (d.message, d.hint))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "`auth` has no function `usr`".to_string(),
                    Some("did you mean `auth::user`?".to_string())
                ),
                ("`auth` has no function `secret`".to_string(), None),
            ]
        );
    }
}
