//! What `rhapi check` knows about an app besides the file it reads: the functions its
//! engine really has (Rhai's packages, rhapi's own, the batteries' modules) and where the
//! app's modules are. Built once per app from its engine, then handed to
//! [`super::check_file`] for every file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rhai::{Engine, FnAccess, AST};

use super::imports::ImportResolver;

/// The functions and modules an app's scripts can call.
#[derive(Clone, Debug, Default)]
pub struct AppKnowledge {
    /// Functions called without a namespace: Rhai's packages and rhapi's globals.
    functions: BTreeSet<String>,
    /// Static modules (`db`, `crypto`, `env`, ...) and the functions of each.
    modules: BTreeMap<String, BTreeSet<String>>,
    /// The app's folder, to follow imports; without it imported modules are not checked.
    app_dir: Option<PathBuf>,
}

/// Names of what Rhai's parser and evaluator answer themselves, which no package registers.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "eval",
];

impl AppKnowledge {
    /// What `engine` (built for the app in `app_dir`, when there is one) lets scripts call.
    pub fn from_engine(engine: &Engine, app_dir: Option<&Path>) -> Self {
        let mut knowledge = AppKnowledge {
            app_dir: app_dir.map(Path::to_path_buf),
            ..AppKnowledge::default()
        };
        knowledge
            .functions
            .extend(KEYWORD_FUNCTIONS.iter().map(|k| k.to_string()));
        for function in engine.native_functions() {
            let (module, name) = match function.name.rsplit_once("::") {
                Some((module, name)) => (Some(module), name),
                None => (None, function.name.as_str()),
            };
            // Getters, setters and indexers (`get$len`) are not called by name.
            if name.contains('$') || !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                continue;
            }
            match module {
                Some(module) => {
                    knowledge
                        .modules
                        .entry(module.to_string())
                        .or_default()
                        .insert(name.to_string());
                }
                None => {
                    knowledge.functions.insert(name.to_string());
                }
            }
        }
        knowledge
    }

    /// Whether a function `name` can be called without a namespace.
    pub fn has_function(&self, name: &str) -> bool {
        self.functions.contains(name)
    }

    /// The functions called without a namespace.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.functions.iter().map(String::as_str)
    }

    /// The functions of the static module `name` (`db`), if there is one.
    pub fn module(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.modules.get(name)
    }

    /// The static modules and their functions.
    pub fn modules(&self) -> &BTreeMap<String, BTreeSet<String>> {
        &self.modules
    }

    /// The public functions of the module that `import "path"` in the file shown as
    /// `importer` (relative to the app's folder) reads; `None` when it cannot be read or
    /// does not parse (the loader reports that).
    pub fn imported(&self, importer: &str, path: &str) -> Option<BTreeSet<String>> {
        let app_dir = self.app_dir.as_ref()?;
        let target = ImportResolver::new(app_dir)
            .resolve(&app_dir.join(importer), path)
            .ok()?;
        let text = crate::app_files::AppFiles::open(app_dir)
            .read_to_string(&target)
            .ok()?;
        let ast = parse(&text)?;
        Some(
            ast.iter_fn_def()
                .filter(|f| f.access != FnAccess::Private)
                .map(|f| f.name.to_string())
                .collect(),
        )
    }
}

/// `text` parsed as Rhai, unoptimised (so the tree is the code as written), within the
/// nesting limits the app's engine has; `None` when it does not parse.
pub fn parse(text: &str) -> Option<AST> {
    let mut engine = Engine::new_raw();
    engine
        .set_optimization_level(rhai::OptimizationLevel::None)
        .set_max_expr_depths(128, 64);
    engine.compile(text).ok()
}
