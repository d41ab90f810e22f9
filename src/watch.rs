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
        let migrations = dir.join("migrations");
        if migrations.is_dir() {
            debouncer.watch(&migrations, RecursiveMode::NonRecursive)?;
        }
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
    let mut migrations: Vec<PathBuf> = Vec::new();
    // Reading a file (as a reload does) is an event too: only writes count.
    let writes = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Access(_)));
    for path in writes.flat_map(|e| e.paths.iter()) {
        if is_migration(&app.dir, path) {
            if !migrations.contains(path) {
                migrations.push(path.clone());
            }
            continue;
        }
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
    if !migrations.is_empty() {
        on_migrations(app, &migrations);
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

/// A migration file added or changed while serving: `dev` applies the new ones at once (as
/// a restart would); `start` only says that `rhapi migrate` (or a restart) applies them.
fn on_migrations(app: &App, paths: &[PathBuf]) {
    let names: Vec<String> = paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| crate::routes::display_path(&app.dir, p))
        .collect();
    if names.is_empty() {
        return; // deleted: nothing to apply
    }
    if !app.settings.is_dev() {
        tracing::warn!(
            "{} changed: run `rhapi migrate` (or restart) to apply new migrations",
            names.join(", ")
        );
        return;
    }
    match crate::db::migrate::apply(&app.dir, &app.snapshot().env.0) {
        Ok(applied) => {
            let applied: Vec<String> = applied.iter().map(|n| format!("migrations/{n}")).collect();
            let old: Vec<&String> = names.iter().filter(|n| !applied.contains(n)).collect();
            if !old.is_empty() {
                let old: Vec<&str> = old.iter().map(|n| n.as_str()).collect();
                tracing::warn!(
                    "{} changed but was applied before: a migration runs once; put the change in a new file",
                    old.join(", ")
                );
            }
        }
        Err(err) => tracing::error!("{err}"),
    }
}

fn is_migration(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir.join("migrations").as_path())
        && path.extension().is_some_and(|e| e == "sql")
}

fn is_env_file(dir: &Path, path: &Path) -> bool {
    path.parent() == Some(dir)
        && path
            .file_name()
            .is_some_and(|n| matches!(n.to_str(), Some(".env" | ".env.local" | ".env.example")))
}
