//! What happens when a file changes: classify the change (a script or module under
//! `pages/`, a `.env*` file, `rhapi.toml`), rebuild what depends on it, swap the new route table in,
//! and say what changed and how long it took.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    new_debouncer, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

use crate::app::App;

/// Events closer together than this are one change (editors write several times per save).
const DEBOUNCE: Duration = Duration::from_millis(15);

/// The running watcher; dropping it stops watching.
pub type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

/// Starts watching the app's `pages/` and `.env*` files, reloading on change.
pub fn start(app: Arc<App>) -> Result<Watcher, notify_debouncer_full::notify::Error> {
    let dir = app.dir.clone();
    let pages = dir.join("pages");
    let watched_pages = pages.clone();
    let mut debouncer = new_debouncer(
        DEBOUNCE,
        Some(DEBOUNCE / 3),
        move |result: DebounceEventResult| match result {
            Ok(events) => on_events(&app, &watched_pages, &events),
            Err(errors) => {
                for err in errors {
                    tracing::warn!("file watcher: {err}");
                }
            }
        },
    )?;
    if pages.is_dir() {
        debouncer.watch(&pages, RecursiveMode::Recursive)?;
        debouncer.watch(&dir, RecursiveMode::NonRecursive)?;
    } else {
        // pages/ may be created later: watch everything and filter.
        debouncer.watch(&dir, RecursiveMode::Recursive)?;
    }
    Ok(debouncer)
}

fn on_events(app: &App, pages: &Path, events: &[DebouncedEvent]) {
    let mut env_changed = false;
    let mut config_changed = false;
    let mut changed: Vec<PathBuf> = Vec::new();
    // Reading a file (as a reload does) is an event too: only writes count.
    let writes = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Access(_)));
    for path in writes.flat_map(|e| e.paths.iter()) {
        let relevant = if is_env_file(&app.dir, path) {
            env_changed = true;
            true
        } else if path == &app.dir.join(crate::config::FILE) {
            config_changed = true;
            true
        } else {
            // A folder event (rename, delete) has no extension but may move whole routes.
            path.starts_with(pages)
                && (path.extension().is_some_and(|e| e == "rhai") || !path.is_file())
        };
        if relevant && !changed.contains(path) {
            changed.push(path.clone());
        }
    }
    if changed.is_empty() {
        return;
    }
    let report = app.reload(env_changed, config_changed);
    let names: Vec<String> = changed
        .iter()
        .map(|p| crate::routes::display_path(&app.dir, p))
        .collect();
    tracing::info!(
        "reload: {} changed; recompiled {} file(s) in {:.1}ms, {} routes",
        names.join(", "),
        report.compiled.len(),
        report.elapsed.as_secs_f64() * 1000.0,
        report.routes
    );
    for err in &report.errors {
        tracing::error!("{}", crate::env::redact(&err.to_string()));
    }
}

fn is_env_file(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir)
        && path
            .file_name()
            .is_some_and(|n| matches!(n.to_str(), Some(".env" | ".env.local" | ".env.example")))
}
