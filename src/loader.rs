//! Building snapshots of the app: scan its files ([`AppFiles::scan`]), compile each route
//! and middleware file (from a cache when neither it nor a module it imports changed), keep
//! the last good version for `start`, and mark two files claiming one route. `rhapi.toml`
//! is read here too, and the `_middleware.rhai` chain of each route is put together.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rhai::Engine;

use crate::app_context::AppContext;
use crate::app_files::{AppFiles, Kind, Scan};
use crate::env::{EnvMap, EnvVars};
use crate::error::ScriptError;
use crate::jobs::{Job, JobScript, JobTable};
use crate::routes::{self, Pattern, RouteFile, RouteTable};
use crate::script::compile::Compiled;
use crate::script::middleware::{self, Chain, Middleware, Slot};
use crate::script::{self, compile_job, compile_route, RouteScript};
use crate::settings::{AppSettings, Layers, Limits, Mode, Settings};
use crate::snapshot::{LoadReport, Route, Snapshot};

/// One compiled route file and what it was compiled from.
struct Cached {
    source: String,
    deps: Vec<crate::script::modules::Dependency>,
    result: Result<Arc<RouteScript>, ScriptError>,
}

/// A route of the table being built: its pattern, the route, and its file as users see it.
type Entry = (Pattern, Route, String);

/// What one build collects as it goes.
#[derive(Default)]
struct Progress {
    errors: Vec<ScriptError>,
    /// The files compiled (the others came from the cache).
    compiled: Vec<String>,
    /// Each file's text as this build read it (`None`: unreadable): a module that many
    /// routes import is read once, and all of them see the same text.
    seen: HashMap<PathBuf, Option<String>>,
}

/// Builds snapshots, recompiling only the files (or the modules they import) that changed.
pub struct Loader {
    dir: PathBuf,
    /// What lies under `rhapi.toml` (the defaults) and over it (the command line).
    layers: Layers,
    /// `base` < `rhapi.toml` < `cli`, with the restart-only values read at start.
    running: Settings,
    /// `running` resolved for the mode: what the snapshot serves with.
    settings: AppSettings,
    /// Why the last read of `rhapi.toml` failed (the settings before it are kept).
    config_error: Option<ScriptError>,
    env: Arc<EnvVars>,
    /// What the app owns that its engines reach (its databases, its secrets).
    app: Arc<AppContext>,
    engine: Arc<Engine>,
    /// Engines of routes whose `CONFIG` sets its own `max_operations` (Rhai counts
    /// operations per engine), by that budget.
    engines: HashMap<u64, Arc<Engine>>,
    cache: HashMap<PathBuf, Cached>,
    /// `rhapi start` keeps serving these when a new version fails to compile.
    last_good: HashMap<PathBuf, Arc<RouteScript>>,
}

impl Loader {
    /// A loader for the app in `dir` with the environment `env` (see [`EnvVars::load`]) and
    /// the context `app`: reads `rhapi.toml` between the `layers`, builds the engine.
    pub fn new(dir: &Path, layers: Layers, env: Arc<EnvVars>, app: Arc<AppContext>) -> Loader {
        let running = layers.cli.over(layers.base.clone());
        let settings = running.app(layers.mode);
        let mut loader = Loader {
            dir: dir.to_path_buf(),
            layers,
            running,
            engine: Arc::new(script::engine::build(dir, &settings.limits, &env, &app)),
            app,
            settings,
            config_error: None,
            env,
            engines: HashMap::new(),
            cache: HashMap::new(),
            last_good: HashMap::new(),
        };
        loader.read_config(true);
        loader.rebuild_engines();
        loader
    }

    /// Reads `.env` again and rebuilds the engine (env values are part of it).
    pub fn reload_env(&mut self) {
        self.env = Arc::new(EnvVars::load(&self.dir, self.settings.mode));
        self.app.set_env(&self.env);
        // `DATABASE_URL` may have moved the database into the public folder.
        self.reload_config();
        self.rebuild_engines();
        // Modules may have read env values at load time: compile everything again.
        self.cache.clear();
    }

    /// Reads `rhapi.toml` again. A file with a mistake keeps the settings before it (and
    /// the error is reported by every build until it is fixed).
    pub fn reload_config(&mut self) {
        self.read_config(false);
    }

    /// Reads `rhapi.toml`: at start every key; later, a change of a restart-only key is
    /// logged and left out (the server keeps listening as it started).
    fn read_config(&mut self, at_start: bool) {
        let before = self.settings.limits.clone();
        let database = crate::db::sqlite_file(&self.dir, &self.env);
        match crate::config::load(&self.dir, database.as_deref(), &self.layers.base) {
            Ok(file) => {
                let mut running = self.layers.cli.over(file);
                if !at_start {
                    for key in running.keep_restart_only(&self.running) {
                        tracing::warn!(
                            "{}: {key} changed: it is read at start only; restart rhapi to apply it",
                            crate::config::FILE
                        );
                    }
                }
                self.settings = running.app(self.layers.mode);
                self.app.cache.set_max(self.settings.cache.max);
                self.app.hub.configure(&self.settings.realtime);
                self.app.rate.configure(&running.rate_limits);
                self.running = running;
                self.config_error = None;
            }
            Err(err) => self.config_error = Some(err.into()),
        }
        if !same_engine_limits(&before, &self.settings.limits) {
            self.rebuild_engines();
        }
    }

    fn rebuild_engines(&mut self) {
        self.engine = Arc::new(script::engine::build(
            &self.dir,
            &self.settings.limits,
            &self.env,
            &self.app,
        ));
        self.engines.clear();
    }

    /// The engine of a route with its own operations budget (built on first use).
    fn engine_with_operations(&mut self, max_operations: u64) -> Arc<Engine> {
        if max_operations == self.settings.limits.max_operations {
            return Arc::clone(&self.engine);
        }
        let (dir, env, app) = (&self.dir, &self.env, &self.app);
        let mut limits = self.settings.limits.clone();
        limits.max_operations = max_operations;
        Arc::clone(
            self.engines
                .entry(max_operations)
                .or_insert_with(|| Arc::new(script::engine::build(dir, &limits, env, app))),
        )
    }

    /// Scans and compiles the app into a new snapshot.
    pub fn build(&mut self) -> (Snapshot, LoadReport) {
        // Modules run their top level as they load, and may log: with this app's secrets.
        let _secrets = script::context::EnvGuard::enter(&self.env);
        let started = Instant::now();
        let mut progress = Progress::default();
        let files = AppFiles::open(&self.dir);
        let scan = files.scan();
        let route_files = match &scan.pages_error {
            Some(err) => {
                progress.errors.push(ScriptError::in_file(
                    "pages/api",
                    format!("cannot read the pages folder: {err}"),
                ));
                Vec::new()
            }
            None => routes::route_files(&files, &scan),
        };
        progress.errors.extend(self.config_error.clone());
        let middleware = self.compile_middleware(&files, &scan, &mut progress);
        let (mut entries, chains) =
            self.compile_routes(&files, &route_files, &middleware, &mut progress);
        let jobs = self.compile_jobs(&files, &scan, &mut progress);
        let kept = |path: &PathBuf| {
            route_files.iter().any(|f| &f.path == path)
                || scan.of(Kind::Middleware).any(|f| &f.path == path)
                || scan.of(Kind::Job).any(|f| &f.path == path)
        };
        self.cache.retain(|path, _| kept(path));
        self.last_good.retain(|path, _| kept(path));
        self.mark_conflicts(&mut entries, &mut progress.errors);
        let engines = self.route_engines(&entries);

        let count = entries.len();
        let table = RouteTable::new(entries.into_iter().map(|(p, r, _)| (p, r)).collect());
        let route_metrics = match self.settings.listen.metrics {
            Some(_) => table
                .iter()
                .map(|(pattern, _)| self.app.metrics.route(&pattern.to_string()))
                .collect(),
            None => Vec::new(),
        };
        let snapshot = Snapshot {
            engine: Arc::clone(&self.engine),
            engines,
            routes: table,
            middleware: chains,
            env: EnvMap(Arc::clone(&self.env)),
            settings: Arc::new(self.settings.clone()),
            jobs,
            route_metrics,
        };
        let report = LoadReport {
            errors: progress.errors,
            compiled: progress.compiled,
            routes: count,
            elapsed: started.elapsed(),
        };
        (snapshot, report)
    }

    /// Compiles each `_middleware.rhai` of `scan` (outermost first), with the folder it
    /// covers.
    fn compile_middleware(
        &mut self,
        files: &AppFiles,
        scan: &Scan,
        progress: &mut Progress,
    ) -> Vec<(PathBuf, Slot)> {
        let mut middleware = Vec::new();
        for file in scan.of(Kind::Middleware) {
            let mut slot = self
                .script_for(files, &file.path, &file.display, progress, compile_route)
                .and_then(|script| Middleware::new(script, &file.display));
            if let Err(err) = &slot {
                progress.errors.push(err.clone());
                let good = self
                    .last_good
                    .get(&file.path)
                    .filter(|g| g.middleware.is_some());
                if let (Mode::Start, Some(good)) = (self.settings.mode, good) {
                    slot = Middleware::new(Arc::clone(good), &file.display);
                }
            }
            let folder = file.path.parent().unwrap_or(files.dir());
            middleware.push((folder.to_path_buf(), slot.map(Arc::new)));
        }
        middleware
    }

    /// Compiles each route file into a table entry, and puts together the middleware
    /// chain of each route that has one.
    fn compile_routes(
        &mut self,
        files: &AppFiles,
        route_files: &[RouteFile],
        middleware: &[(PathBuf, Slot)],
        progress: &mut Progress,
    ) -> (Vec<Entry>, HashMap<Arc<str>, Chain>) {
        let mut chains: HashMap<Arc<str>, Chain> = HashMap::new();
        let mut entries: Vec<Entry> = Vec::new();
        for file in route_files {
            let pattern = match &file.pattern {
                Ok(pattern) => pattern.clone(),
                Err(message) => {
                    let err = ScriptError::in_file(&file.display, message.clone());
                    progress.errors.push(err);
                    continue;
                }
            };
            let chain = middleware::chain_for(&file.path, middleware);
            if !chain.is_empty() {
                chains.insert(Arc::from(file.display.as_str()), chain.into());
            }
            let compiled =
                self.script_for(files, &file.path, &file.display, progress, compile_route);
            let route = match compiled {
                Ok(script) => Route::Ready(script),
                Err(err) => {
                    progress.errors.push(err.clone());
                    match (self.settings.mode, self.last_good.get(&file.path)) {
                        (Mode::Start, Some(good)) => Route::Ready(Arc::clone(good)),
                        _ => Route::Broken(err),
                    }
                }
            };
            entries.push((pattern, route, file.display.clone()));
        }
        (entries, chains)
    }

    /// Compiles each job file of `scan` into the job table (a broken one is in it too: its
    /// queued jobs wait), and tells `jobs::enqueue` the names.
    fn compile_jobs(&mut self, files: &AppFiles, scan: &Scan, progress: &mut Progress) -> JobTable {
        let mut jobs = JobTable::new();
        for file in scan.of(Kind::Job) {
            let name = crate::app_files::job_name(file);
            let ready = self
                .script_for(files, &file.path, &file.display, progress, compile_job)
                .and_then(JobScript::new);
            let job = match ready {
                Ok(job) => Job::Ready(Arc::new(job)),
                Err(err) => {
                    progress.errors.push(err.clone());
                    let good = self.last_good.get(&file.path).map(Arc::clone);
                    let good = good.and_then(|g| JobScript::new(g).ok());
                    match (self.settings.mode, good) {
                        (Mode::Start, Some(good)) => Job::Ready(Arc::new(good)),
                        _ => Job::Broken(err),
                    }
                }
            };
            jobs.insert(name, job);
        }
        self.app.jobs.set_names(jobs.keys().cloned().collect());
        jobs
    }

    /// An engine for every operations budget a route's `CONFIG` sets (Rhai counts
    /// operations per engine); engines no route uses any more are dropped.
    fn route_engines(&mut self, entries: &[Entry]) -> HashMap<u64, Arc<Engine>> {
        let mut engines = HashMap::new();
        for (_, route, _) in entries {
            if let Route::Ready(script) = route {
                if let Some(n) = script.config.max_operations {
                    engines.insert(n, self.engine_with_operations(n));
                }
            }
        }
        self.engines.retain(|n, _| engines.contains_key(n));
        engines
    }

    /// The compiled script of one route (or middleware) file, from the cache when neither
    /// the file nor any module it imports changed.
    fn script_for(
        &mut self,
        files: &AppFiles,
        path: &Path,
        display: &str,
        progress: &mut Progress,
        compile: fn(&Engine, &str, &Path, &str) -> Compiled,
    ) -> Result<Arc<RouteScript>, ScriptError> {
        let seen = &mut progress.seen;
        let mut read = |p: &Path| -> Option<String> {
            seen.entry(p.to_path_buf())
                .or_insert_with(|| files.read_to_string(p).ok())
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
        let result = compile(&self.engine, display, path, &source);
        progress.compiled.push(display.to_string());
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
    fn mark_conflicts(&self, entries: &mut Vec<Entry>, errors: &mut Vec<ScriptError>) {
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

/// Whether two sets of limits build the same engine (the time budget is not the engine's).
fn same_engine_limits(a: &Limits, b: &Limits) -> bool {
    a.max_operations == b.max_operations
        && a.max_string_size == b.max_string_size
        && a.max_array_size == b.max_array_size
        && a.max_map_size == b.max_map_size
        && a.max_call_depth == b.max_call_depth
}
