//! The served app: its folder, settings, and the current snapshot (engine, route table,
//! environment) that every request reads once and that a reload swaps atomically. Building
//! a snapshot (compiling, caching, conflicts) is the job of [`crate::loader`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rhai::Engine;

use crate::env::EnvMap;
use crate::error::ScriptError;
use crate::loader::Loader;
use crate::routes::RouteTable;
use crate::script::middleware::Chain;
use crate::script::RouteScript;
use crate::settings::{AppSettings, Layers};

/// A route in the table: ready to run, or broken with the error to show.
pub enum Route {
    Ready(Arc<RouteScript>),
    Broken(ScriptError),
}

/// Everything one request needs, consistent with itself. A request keeps the snapshot it
/// started with, so a reload never changes a running request.
pub struct Snapshot {
    pub engine: Arc<Engine>,
    /// Engines of routes whose `CONFIG` sets `max_operations`, by that budget.
    pub engines: std::collections::HashMap<u64, Arc<Engine>>,
    pub routes: RouteTable<Route>,
    /// The `_middleware.rhai` files that run before a route, outermost first, by route
    /// file; a route without any is not in the map.
    pub middleware: std::collections::HashMap<Arc<str>, Chain>,
    pub env: EnvMap,
    /// The settings in force: defaults < `rhapi.toml` < command line.
    pub settings: Arc<AppSettings>,
}

impl Snapshot {
    /// The engine `script` runs on: its own when its `CONFIG` sets `max_operations`.
    pub fn engine_for(&self, script: &RouteScript) -> &Arc<Engine> {
        script
            .config
            .max_operations
            .and_then(|n| self.engines.get(&n))
            .unwrap_or(&self.engine)
    }

    /// The middleware chain of the route in `file` (empty when none applies).
    pub fn middleware_of(&self, file: &str) -> &[crate::script::middleware::Slot] {
        self.middleware.get(file).map_or(&[], |chain| chain)
    }
}

/// What a load or reload did.
pub struct LoadReport {
    /// Every route file that failed to load (compile errors, conflicts, bad names).
    pub errors: Vec<ScriptError>,
    /// Files compiled this time (the others were unchanged).
    pub compiled: Vec<String>,
    pub routes: usize,
    pub elapsed: Duration,
}

/// The app being served.
pub struct App {
    pub dir: PathBuf,
    /// The settings at start (the mode never changes; the snapshot has the current ones).
    pub settings: AppSettings,
    current: ArcSwap<Snapshot>,
    loader: Mutex<Loader>,
}

impl App {
    /// Loads the app in `dir`: `rhapi.toml` (between the `layers`), environment, engine,
    /// every route.
    pub fn load(dir: &Path, layers: Layers) -> (App, LoadReport) {
        let env = Arc::new(crate::env::EnvVars::load(dir, layers.mode));
        App::load_with_env(dir, layers, env)
    }

    /// [`App::load`] with an environment of the caller's (`rhapi test`: `.env.test` and a
    /// database of its own, not `.env`).
    pub fn load_with_env(
        dir: &Path,
        layers: Layers,
        env: Arc<crate::env::EnvVars>,
    ) -> (App, LoadReport) {
        let mut loader = Loader::new(dir, layers, env);
        let (snapshot, report) = loader.build();
        let app = App {
            dir: dir.to_path_buf(),
            settings: (*snapshot.settings).clone(),
            current: ArcSwap::from_pointee(snapshot),
            loader: Mutex::new(loader),
        };
        (app, report)
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds after a change (re-reading `.env` first when `env_changed`, `rhapi.toml`
    /// when `config_changed`) and swaps the result in; requests already running keep their
    /// snapshot.
    pub fn reload(&self, env_changed: bool, config_changed: bool) -> LoadReport {
        let mut loader = self.loader.lock().unwrap_or_else(|e| e.into_inner());
        if config_changed {
            loader.reload_config();
        }
        if env_changed {
            loader.reload_env();
        }
        let (snapshot, report) = loader.build();
        self.current.store(Arc::new(snapshot));
        report
    }
}
