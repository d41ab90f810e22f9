//! The served app: its folder, settings, and the current snapshot (engine, route table,
//! environment) that every request reads once and that a reload swaps atomically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rhai::Engine;

use crate::env::{EnvMap, EnvVars};
use crate::error::{Location, ScriptError};
use crate::routes::{self, Pattern, RouteTable};
use crate::script::{self, compile_route, RouteScript};
use crate::settings::{Mode, Settings};

/// A route in the table: ready to run, or broken with the error to show.
pub enum Route {
    Ready(Arc<RouteScript>),
    Broken(ScriptError),
}

/// Everything one request needs, consistent with itself. A request keeps the snapshot it
/// started with, so a reload never changes a running request.
pub struct Snapshot {
    pub engine: Arc<Engine>,
    pub routes: RouteTable<Route>,
    pub env: EnvMap,
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
    pub settings: Settings,
    current: ArcSwap<Snapshot>,
    loader: Mutex<Loader>,
}

impl App {
    /// Loads the app in `dir`: environment, engine, every route.
    pub fn load(dir: &Path, settings: Settings) -> (App, LoadReport) {
        let mut loader = Loader::new(dir, &settings);
        let (snapshot, report) = loader.build();
        let app = App {
            dir: dir.to_path_buf(),
            settings,
            current: ArcSwap::from_pointee(snapshot),
            loader: Mutex::new(loader),
        };
        (app, report)
    }

    /// The snapshot new requests use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Rebuilds after a change (re-reading `.env` first when `env_changed`) and swaps the
    /// result in; requests already running keep their snapshot.
    pub fn reload(&self, env_changed: bool) -> LoadReport {
        let mut loader = self.loader.lock().unwrap_or_else(|e| e.into_inner());
        if env_changed {
            loader.reload_env();
        }
        let (snapshot, report) = loader.build();
        self.current.store(Arc::new(snapshot));
        report
    }
}

/// One compiled route file and what it was compiled from.
struct Cached {
    source: String,
    deps: Vec<crate::script::modules::Dependency>,
    result: Result<Arc<RouteScript>, ScriptError>,
}

/// Builds snapshots, recompiling only the files (or the modules they import) that changed.
struct Loader {
    dir: PathBuf,
    settings: Settings,
    env: Arc<EnvVars>,
    engine: Arc<Engine>,
    cache: HashMap<PathBuf, Cached>,
    /// `rhapi start` keeps serving these when a new version fails to compile.
    last_good: HashMap<PathBuf, Arc<RouteScript>>,
}

impl Loader {
    fn new(dir: &Path, settings: &Settings) -> Loader {
        let env = Arc::new(EnvVars::load(dir, settings.mode));
        crate::env::set_current(&env);
        let engine = Arc::new(script::engine::build(dir, &settings.limits, &env));
        Loader {
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            env,
            engine,
            cache: HashMap::new(),
            last_good: HashMap::new(),
        }
    }

    fn reload_env(&mut self) {
        self.env = Arc::new(EnvVars::load(&self.dir, self.settings.mode));
        crate::env::set_current(&self.env);
        self.engine = Arc::new(script::engine::build(
            &self.dir,
            &self.settings.limits,
            &self.env,
        ));
        // Modules may have read env values at load time: compile everything again.
        self.cache.clear();
    }

    fn build(&mut self) -> (Snapshot, LoadReport) {
        let started = Instant::now();
        let mut errors = Vec::new();
        let mut compiled = Vec::new();
        let files = routes::scan(&self.dir).unwrap_or_else(|err| {
            errors.push(file_error(
                "pages/api",
                format!("cannot read the pages folder: {err}"),
            ));
            Vec::new()
        });
        let mut seen_sources: HashMap<PathBuf, Option<String>> = HashMap::new();
        let mut entries: Vec<(Pattern, Route, String)> = Vec::new();
        for file in &files {
            let pattern = match &file.pattern {
                Ok(pattern) => pattern.clone(),
                Err(message) => {
                    errors.push(file_error(&file.display, message.clone()));
                    continue;
                }
            };
            let route =
                match self.route_for(&file.path, &file.display, &mut seen_sources, &mut compiled) {
                    Ok(script) => Route::Ready(script),
                    Err(err) => {
                        errors.push(err.clone());
                        match (self.settings.mode, self.last_good.get(&file.path)) {
                            (Mode::Start, Some(good)) => Route::Ready(Arc::clone(good)),
                            _ => Route::Broken(err),
                        }
                    }
                };
            entries.push((pattern, route, file.display.clone()));
        }
        self.cache
            .retain(|path, _| files.iter().any(|f| &f.path == path));
        self.last_good
            .retain(|path, _| files.iter().any(|f| &f.path == path));
        self.mark_conflicts(&mut entries, &mut errors);

        let count = entries.len();
        let table = RouteTable::new(entries.into_iter().map(|(p, r, _)| (p, r)).collect());
        let snapshot = Snapshot {
            engine: Arc::clone(&self.engine),
            routes: table,
            env: EnvMap(Arc::clone(&self.env)),
        };
        let report = LoadReport {
            errors,
            compiled,
            routes: count,
            elapsed: started.elapsed(),
        };
        (snapshot, report)
    }

    /// The compiled script of one route file, from the cache when neither the file nor any
    /// module it imports changed.
    fn route_for(
        &mut self,
        path: &Path,
        display: &str,
        seen: &mut HashMap<PathBuf, Option<String>>,
        compiled: &mut Vec<String>,
    ) -> Result<Arc<RouteScript>, ScriptError> {
        let mut read = |p: &Path| -> Option<String> {
            seen.entry(p.to_path_buf())
                .or_insert_with(|| std::fs::read_to_string(p).ok())
                .clone()
        };
        let Some(source) = read(path) else {
            return Err(file_error(display, "cannot read the file".into()));
        };
        if let Some(cached) = self.cache.get(path) {
            let unchanged =
                cached.source == source && cached.deps.iter().all(|(dep, text)| read(dep) == *text);
            if unchanged {
                return cached.result.clone();
            }
        }
        let result = compile_route(&self.engine, display, path, &source);
        compiled.push(display.to_string());
        let deps = result.deps;
        let result = result.result.map(Arc::new);
        if let Ok(script) = &result {
            self.last_good
                .insert(path.to_path_buf(), Arc::clone(script));
        }
        self.cache.insert(
            path.to_path_buf(),
            Cached {
                source,
                deps,
                result: result.clone(),
            },
        );
        result
    }

    /// Two files claiming one route: a load error naming both. `dev` answers the route with
    /// it; `start` keeps the first file (the error already stops a fresh `start`).
    fn mark_conflicts(
        &self,
        entries: &mut Vec<(Pattern, Route, String)>,
        errors: &mut Vec<ScriptError>,
    ) {
        let patterns: Vec<&Pattern> = entries.iter().map(|(p, _, _)| p).collect();
        let pairs = routes::conflicts(&patterns);
        let mut dropped = Vec::new();
        for (a, b) in pairs {
            let (file_a, file_b) = (entries[a].2.clone(), entries[b].2.clone());
            let err = file_error(
                &file_b,
                format!(
                    "{file_a} and {file_b} both claim the route {}: rename or remove one of them",
                    entries[a].0
                ),
            );
            errors.push(err.clone());
            if self.settings.mode == Mode::Dev {
                entries[a].1 = Route::Broken(err.clone());
                entries[b].1 = Route::Broken(err);
            } else {
                dropped.push(b);
            }
        }
        dropped.sort_unstable();
        dropped.dedup();
        for i in dropped.into_iter().rev() {
            entries.remove(i);
        }
    }
}

fn file_error(file: &str, message: String) -> ScriptError {
    ScriptError {
        message,
        location: Location {
            file: file.to_string(),
            line: None,
            column: None,
        },
    }
}
