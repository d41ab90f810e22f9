//! What a load builds and every request reads: the [`Snapshot`] (engine, route table,
//! middleware, environment, settings), its [`Route`]s, and the [`LoadReport`] of the build.
//! [`crate::loader`] builds them; [`crate::app::App`] swaps them in on reload.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rhai::Engine;

use crate::env::EnvMap;
use crate::error::ScriptError;
use crate::routes::RouteTable;
use crate::script::middleware::{Chain, Slot};
use crate::script::RouteScript;
use crate::settings::AppSettings;

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
    pub engines: HashMap<u64, Arc<Engine>>,
    pub routes: RouteTable<Route>,
    /// The `_middleware.rhai` files that run before a route, outermost first, by route
    /// file; a route without any is not in the map.
    pub middleware: HashMap<Arc<str>, Chain>,
    pub env: EnvMap,
    /// The settings in force: defaults < `rhapi.toml` < command line.
    pub settings: Arc<AppSettings>,
    /// The job files, by job name.
    pub jobs: crate::jobs::JobTable,
    /// The metrics of each route, in the order of `routes` ([`RouteTable::lookup_at`]);
    /// empty without `[metrics] listen`.
    pub route_metrics: Vec<Arc<crate::metrics::RouteMetrics>>,
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
    pub fn middleware_of(&self, file: &str) -> &[Slot] {
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
