//! `import "../_lib/auth" as auth;`: modules resolved relative to the importing file and
//! confined to `pages/`. Imports are resolved when a route loads; the files each route
//! depended on are recorded so that a change to a module reloads its dependents.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use crate::analysis::imports::{ImportError, ImportResolver};
use crate::app_files::AppFiles;
use crate::routes::display_path;

/// The module resolver the engine uses.
pub struct PagesResolver {
    app_dir: PathBuf,
    imports: ImportResolver,
}

#[derive(Default)]
struct Loading {
    /// The route file being compiled: the base of its top-level imports.
    route: Option<PathBuf>,
    /// Every module file read while compiling it.
    deps: Vec<Dependency>,
    /// Modules being loaded, to report an import cycle instead of overflowing the stack.
    stack: Vec<PathBuf>,
}

thread_local! {
    static LOADING: RefCell<Loading> = RefCell::new(Loading::default());
}

/// A module file a route read while compiling, with the text it was compiled from (`None`:
/// missing). A route is compiled again when one of these texts changes.
pub type Dependency = (PathBuf, Option<String>);

/// Marks `route` as the file being compiled on this thread; `finish` returns its deps.
pub fn start_loading(route: &Path) {
    LOADING.with(|l| {
        *l.borrow_mut() = Loading {
            route: Some(route.to_path_buf()),
            ..Loading::default()
        }
    });
}

/// Ends the load started by [`start_loading`], returning the module files it read.
pub fn finish_loading() -> Vec<Dependency> {
    LOADING.with(|l| std::mem::take(&mut *l.borrow_mut()).deps)
}

impl PagesResolver {
    /// A resolver for the app in `app_dir`.
    pub fn new(app_dir: &Path) -> Self {
        PagesResolver {
            app_dir: app_dir.to_path_buf(),
            imports: ImportResolver::new(app_dir),
        }
    }

    /// The importing file: the module being compiled (`source`), else the route.
    fn importer(&self, source: Option<&str>) -> Option<PathBuf> {
        match source {
            Some(source) if !source.is_empty() => Some(self.app_dir.join(source)),
            _ => LOADING.with(|l| l.borrow().route.clone()),
        }
    }
}

impl ModuleResolver for PagesResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let resolved = match self.importer(source) {
            Some(importer) => self.imports.resolve(&importer, path),
            None => Err(ImportError::NoBase(path.to_string())),
        };
        let target = match resolved {
            Ok(target) => target,
            Err(ImportError::NoBase(_)) => {
                return Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into())
            }
            Err(err @ ImportError::LeavesPages(_)) => {
                return Err(EvalAltResult::ErrorRuntime(err.to_string().into(), pos).into())
            }
        };
        let display = display_path(&self.app_dir, &target);
        let source = AppFiles::open(&self.app_dir).read_to_string(&target).ok();
        let in_cycle = LOADING.with(|l| {
            let mut l = l.borrow_mut();
            l.deps.push((target.clone(), source.clone()));
            let cycle = l.stack.contains(&target);
            if !cycle {
                l.stack.push(target.clone());
            }
            cycle
        });
        if in_cycle {
            return Err(EvalAltResult::ErrorRuntime(
                format!("import \"{path}\" makes a cycle: {display} imports itself").into(),
                pos,
            )
            .into());
        }
        let result = match source {
            Some(source) => load_module(engine, &source, &display, pos),
            None => Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into()),
        };
        LOADING.with(|l| l.borrow_mut().stack.pop());
        result
    }
}

fn load_module(
    engine: &Engine,
    source: &str,
    display: &str,
    pos: Position,
) -> Result<Shared<Module>, Box<EvalAltResult>> {
    let in_module = |err: Box<EvalAltResult>| -> Box<EvalAltResult> {
        EvalAltResult::ErrorInModule(display.to_string(), err, pos).into()
    };
    let mut ast = engine.compile(source).map_err(|e| in_module(e.into()))?;
    ast.set_source(display);
    let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
    Ok(module.into())
}
