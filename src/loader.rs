//! Building snapshots of the app: scan `pages/api`, compile each route file (from a cache
//! when neither it nor a module it imports changed), keep the last good version for
//! `start`, and mark two files claiming one route.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rhai::Engine;

use crate::app::{LoadReport, Route, Snapshot};
use crate::env::{EnvMap, EnvVars};
use crate::error::ScriptError;
use crate::routes::{self, Pattern, RouteTable};
use crate::script::{self, compile_route, RouteScript};
use crate::settings::{AppSettings, Mode};

/// One compiled route file and what it was compiled from.
struct Cached {
    source: String,
    deps: Vec<crate::script::modules::Dependency>,
    result: Result<Arc<RouteScript>, ScriptError>,
}

/// Builds snapshots, recompiling only the files (or the modules they import) that changed.
pub struct Loader {
    dir: PathBuf,
    settings: AppSettings,
    env: Arc<EnvVars>,
    engine: Arc<Engine>,
    cache: HashMap<PathBuf, Cached>,
    /// `rhapi start` keeps serving these when a new version fails to compile.
    last_good: HashMap<PathBuf, Arc<RouteScript>>,
}

impl Loader {
    /// A loader for the app in `dir` with the environment `env` (see [`EnvVars::load`]):
    /// builds the engine.
    pub fn with_env(dir: &Path, settings: &AppSettings, env: Arc<EnvVars>) -> Loader {
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

    /// Reads `.env` again and rebuilds the engine (env values are part of it).
    pub fn reload_env(&mut self) {
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

    /// Scans and compiles the app into a new snapshot.
    pub fn build(&mut self) -> (Snapshot, LoadReport) {
        let started = Instant::now();
        let mut errors = Vec::new();
        let mut compiled = Vec::new();
        let files = routes::scan(&self.dir).unwrap_or_else(|err| {
            errors.push(ScriptError::in_file(
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
                    errors.push(ScriptError::in_file(&file.display, message.clone()));
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
            return Err(ScriptError::in_file(display, "cannot read the file"));
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
            let err = ScriptError::in_file(
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
