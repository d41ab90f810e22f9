//! Which database `DATABASE_URL` names.

use std::path::{Path, PathBuf};

use super::DbError;
use crate::env::EnvVars;

/// A database to open: a SQLite file or a PostgreSQL URL. Equal targets share one
/// [`super::Database`] in a [`super::Databases`] registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A SQLite file (absolute, or relative to the working folder).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as given (it may hold a password).
    Postgres(String),
}

impl Target {
    /// `DATABASE_URL` unset: `data/app.db`; `sqlite:path` (relative to the app dir);
    /// `postgres://` or `postgresql://`.
    pub fn from_env(app_dir: &Path, env: &EnvVars) -> Result<Target, DbError> {
        let Some(url) = env
            .get("DATABASE_URL")
            .map(str::trim)
            .filter(|u| !u.is_empty())
        else {
            return Ok(Target::Sqlite(app_dir.join("data/app.db")));
        };
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(DbError::Config(
                    "sqlite: needs a file path, e.g. sqlite:data/app.db".into(),
                ));
            }
            return Ok(Target::Sqlite(app_dir.join(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_string()));
        }
        Err(DbError::Config(
            "must start with sqlite: or postgres:// (or be unset for data/app.db)".into(),
        ))
    }
}

/// The SQLite file `DATABASE_URL` names (`data/app.db` when unset); `None` for PostgreSQL
/// or a `DATABASE_URL` that does not parse.
pub fn sqlite_file(app_dir: &Path, env: &EnvVars) -> Option<PathBuf> {
    match Target::from_env(app_dir, env) {
        Ok(Target::Sqlite(path)) => Some(path),
        _ => None,
    }
}
