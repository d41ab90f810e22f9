//! Migrations: `migrations/*.sql` under the app dir, applied in byte order of their names,
//! each file in its own transaction, recorded in `_rhapi_migrations` so none runs twice.

use std::path::{Path, PathBuf};

use super::{Database, DbError};

/// A migration that failed, and the ones applied before it.
#[derive(Debug, thiserror::Error)]
#[error("migration {file}: {error}")]
pub struct MigrationError {
    pub file: String,
    pub error: DbError,
}

/// The `.sql` files of `app_dir/migrations`, sorted by the bytes of their names.
fn files(app_dir: &Path) -> Result<Vec<(String, PathBuf)>, MigrationError> {
    let dir = app_dir.join("migrations");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(MigrationError {
                file: "migrations/".into(),
                error: DbError::Unreadable(format!("the folder: {err}")),
            })
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.ends_with(".sql").then(|| (name, e.path()))
        })
        .collect();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(files)
}

/// Applies the migrations of `app_dir` not applied yet; returns the names applied now.
/// An app without `migrations/` never opens its database here.
pub fn run(app_dir: &Path, db: &Database) -> Result<Vec<String>, MigrationError> {
    let files = files(app_dir)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let budget = super::super::budget().unwrap_or(std::time::Duration::from_secs(60));
    let fail = |file: &str| {
        let file = format!("migrations/{file}");
        move |error: DbError| MigrationError { file, error }
    };
    let mut conn = db.get(budget).map_err(fail(""))?;
    let conn = conn.as_dyn();
    conn.batch(db.migrations_table_sql(), budget)
        .map_err(fail("(creating _rhapi_migrations)"))?;
    let mut applied = Vec::new();
    for (name, path) in files {
        let sql = std::fs::read_to_string(&path)
            .map_err(|err| DbError::Unreadable(format!("the file: {err}")))
            .map_err(fail(&name))?;
        let done = super::in_transaction(conn, budget, |conn| {
            if let Some(lock) = conn.lock_migrations_sql() {
                conn.batch(lock, budget)?;
            }
            let seen = conn.query(
                &db.placeholders("SELECT 1 AS seen FROM _rhapi_migrations WHERE name = ?"),
                &[name.clone().into()],
                budget,
            )?;
            if !seen.is_empty() {
                return Ok(false);
            }
            conn.batch(&sql, budget)?;
            conn.execute(
                &db.placeholders("INSERT INTO _rhapi_migrations (name) VALUES (?)"),
                &[name.clone().into()],
                budget,
            )?;
            Ok(true)
        })
        .map_err(fail(&name))?;
        if done {
            tracing::info!("applied migration {name}");
            applied.push(name);
        }
    }
    Ok(applied)
}
