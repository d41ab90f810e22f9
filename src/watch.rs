//! What happens when a file changes: classify the change ([`AppFiles::classify`]: a script
//! or module under `pages/`, a `.env*` file, `rhapi.toml`, a migration), rebuild what
//! depends on it, swap the new route table in, and say what changed and how long it took.
//!
//! [`AppFiles::classify`]: crate::app_files::AppFiles::classify

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    new_debouncer, DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache,
};

use crate::app::App;
use crate::app_files::Kind;

/// Events closer together than this are one change (editors write several times per save).
const DEBOUNCE: Duration = Duration::from_millis(15);

/// The running watcher; dropping it stops watching.
pub type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

/// Starts watching the app's files (see [`crate::app_files::AppFiles::watch_roots`]),
/// reloading on change.
pub fn start(app: Arc<App>) -> Result<Watcher, notify_debouncer_full::notify::Error> {
    let roots = app.files.watch_roots();
    let mut debouncer = new_debouncer(
        DEBOUNCE,
        Some(DEBOUNCE / 3),
        move |result: DebounceEventResult| match result {
            Ok(events) => on_events(&app, &events),
            Err(errors) => {
                for err in errors {
                    tracing::warn!("file watcher: {err}");
                }
            }
        },
    )?;
    for root in roots {
        let mode = if root.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        debouncer.watch(&root.path, mode)?;
    }
    Ok(debouncer)
}

fn on_events(app: &App, events: &[DebouncedEvent]) {
    let mut env_changed = false;
    let mut config_changed = false;
    let mut changed: Vec<PathBuf> = Vec::new();
    let mut migrations: Vec<PathBuf> = Vec::new();
    // Reading a file (as a reload does) is an event too: only writes count.
    let writes = events
        .iter()
        .filter(|e| !matches!(e.kind, EventKind::Access(_)));
    for path in writes.flat_map(|e| e.paths.iter()) {
        let relevant = match app.files.classify(path) {
            Some(Kind::Migration) => {
                if !migrations.contains(path) {
                    migrations.push(path.clone());
                }
                false
            }
            Some(Kind::Env) => {
                env_changed = true;
                true
            }
            Some(Kind::Config) => {
                config_changed = true;
                true
            }
            // Serving never reads `.env.test`.
            Some(Kind::TestEnv) | None => false,
            Some(Kind::Route | Kind::Middleware | Kind::Module | Kind::Job | Kind::PagesEntry) => {
                true
            }
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
    let names: Vec<String> = changed.iter().map(|p| app.files.display(p)).collect();
    tracing::info!(
        "reload: {} changed; recompiled {} file(s) in {:.1}ms, {} routes",
        names.join(", "),
        report.compiled.len(),
        report.elapsed.as_secs_f64() * 1000.0,
        report.routes
    );
    for err in &report.errors {
        tracing::error!("{}", app.context.redact(&err.to_string()));
    }
}

/// A migration file added or changed while serving: `dev` applies the new ones at once (as
/// a restart would); `start` only says that `rhapi migrate` (or a restart) applies them.
fn on_migrations(app: &App, paths: &[PathBuf]) {
    let names: Vec<String> = paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| app.files.display(p))
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
    let databases = &app.context.databases;
    let migrated = crate::db::migrate::apply(&app.dir, &app.snapshot().env.0, databases);
    app.context.readiness.migrations_applied(migrated.is_ok());
    match migrated {
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
