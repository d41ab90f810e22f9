//! The served app: its folder, settings, and the current [`Snapshot`] (engine, route table,
//! environment) that every request reads once and that a reload swaps atomically. Building
//! a snapshot (scanning, compiling, caching, conflicts) is the job of [`crate::loader`]; this
//! module uses the loader, never the reverse.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::app_context::AppContext;
use crate::app_files::AppFiles;
use crate::loader::Loader;
use crate::settings::{AppSettings, Layers};

// Where the snapshot types lived before `crate::snapshot`; callers still name them here.
pub use crate::snapshot::{LoadReport, Route, Snapshot};

/// The app being served.
pub struct App {
    pub dir: PathBuf,
    /// What the app owns that its engines, runs and server reach (databases, secrets).
    pub context: Arc<AppContext>,
    /// The app's files (what the watcher classifies changes with).
    pub files: AppFiles,
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
        let context = AppContext::new(&env);
        App::load_with_context(dir, layers, env, context)
    }

    /// [`App::load_with_env`] with a context of the caller's (`rhapi test`'s, with an
    /// outbox for mail).
    pub fn load_with_context(
        dir: &Path,
        layers: Layers,
        env: Arc<crate::env::EnvVars>,
        context: Arc<AppContext>,
    ) -> (App, LoadReport) {
        let mut loader = Loader::new(dir, layers, env, Arc::clone(&context));
        let (snapshot, report) = loader.build();
        let app = App {
            dir: dir.to_path_buf(),
            context,
            files: AppFiles::open(dir),
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
