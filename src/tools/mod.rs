//! The commands around serving: `new` (a starter app), `bundle` (one file to deploy), `test` (an app's `*.test.rhai`),
//! `openapi` (the API description), `types` (definition files for editors) and the lint
//! warnings of `check`; and the check that a
//! folder is an app at all.

use std::path::{Path, PathBuf};

/// A folder given as an app that holds no `pages/api`.
#[derive(Debug, thiserror::Error)]
#[error("no pages/api folder in {dir}{hint}")]
pub struct NotAnApp {
    dir: String,
    hint: String,
}

/// Checks that `dir` holds `pages/api`; the error says where the app probably is instead
/// (`rhapi routes pages` means the parent) or how to start one.
pub fn require_pages_api(dir: &Path) -> Result<(), NotAnApp> {
    if dir.join("pages/api").is_dir() {
        return Ok(());
    }
    let app_above = dir
        .ancestors()
        .skip(1)
        .take(3)
        .find(|a| a.join("pages/api").is_dir())
        .map(Path::to_path_buf);
    let hint = match app_above {
        Some(parent) => format!(
            "; did you mean the app folder {} (the one holding pages/api)?",
            shown(&parent)
        ),
        None => "; an app keeps its routes in DIR/pages/api/*.rhai (`rhapi new DIR` creates one)"
            .to_string(),
    };
    Err(NotAnApp {
        dir: shown(dir),
        hint,
    })
}

/// `dir` relative to the current directory when it is inside it, for shorter messages.
fn shown(dir: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(&cwd).ok().map(PathBuf::from));
    match relative {
        Some(r) if r.as_os_str().is_empty() => ".".to_string(),
        Some(r) => r.display().to_string(),
        None => dir.display().to_string(),
    }
}

pub mod bundle;
pub mod jobs;
pub mod lint;
pub mod openapi;
pub mod scaffold;
pub mod test_socket;
pub mod testing;
pub mod types;
