//! Batteries: the modules that give scripts I/O and the usual tools of an API route
//! (SPEC section 8). Each submodule registers one static module with the engine.

use std::path::Path;
use std::sync::Arc;

use rhai::Engine;

use crate::env::EnvVars;

/// Registers every battery module with `engine`, for the app in `app_dir`.
pub fn register(engine: &mut Engine, app_dir: &Path, env: &Arc<EnvVars>) {
    let _ = (engine, app_dir, env);
}
