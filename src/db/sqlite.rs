//! SQLite: one file under the app dir, opened in WAL mode with foreign keys on; `?`
//! placeholders; every call bounded by the request's budget (busy timeout for locks, a
//! progress handler for long statements).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rhai::{Dynamic, ImmutableString, Map};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params_from_iter, ErrorCode, OpenFlags};

use super::pool::Manager;
use super::{Connection, DbError, Dialect, Executed, RowBytes};

/// SQLite virtual machine steps between two looks at the clock.
const PROGRESS_STEPS: i32 = 10_000;

/// Opens connections to the SQLite file at `path`.
pub struct SqliteManager {
    pub path: PathBuf,
}

/// A SQLite connection.
pub struct SqliteConn(rusqlite::Connection);

impl Manager for SqliteManager {
    type Conn = SqliteConn;

    fn connect(&self, timeout: Duration) -> Result<SqliteConn, DbError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| {
                DbError::Connect(format!("cannot create the folder {}: {err}", dir.display()))
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = rusqlite::Connection::open_with_flags(&self.path, flags).map_err(|err| {
            DbError::Connect(format!("cannot open {}: {err}", self.path.display()))
        })?;
        conn.busy_timeout(timeout).map_err(sql_error)?;
        // WAL lets readers run while one writer writes; NORMAL sync is safe with WAL.
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(sql_error)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(sql_error)?;
        Ok(SqliteConn(conn))
    }

    fn is_broken(&self, _conn: &mut SqliteConn) -> bool {
        false
    }
}

impl SqliteConn {
    /// Bounds the next statements by `budget`: lock waits and execution time.
    fn limit(&mut self, budget: Duration) -> Result<(), DbError> {
        self.0.busy_timeout(budget).map_err(sql_error)?;
        let deadline = Instant::now() + budget;
        self.0
            .progress_handler(PROGRESS_STEPS, Some(move || Instant::now() >= deadline))
            .map_err(sql_error)
    }
}

impl Connection for SqliteConn {
    fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Map>, DbError> {
        self.limit(budget)?;
        let values = bind_values(params)?;
        let mut stmt = self.0.prepare_cached(sql).map_err(sql_error)?;
        let shape = RowShape::of(&stmt);
        let mut rows = stmt.query(params_from_iter(values)).map_err(sql_error)?;
        let mut out = Vec::new();
        let mut counted = RowBytes::new(max_bytes);
        while let Some(row) = rows.next().map_err(sql_error)? {
            let mut map = shape.template.clone();
            let mut heap = 0;
            for (slot, &(column, is_bool)) in map.values_mut().zip(&shape.columns) {
                let value = row.get_ref(column).map_err(sql_error)?;
                if let ValueRef::Text(bytes) | ValueRef::Blob(bytes) = value {
                    heap += bytes.len();
                }
                *slot = to_dynamic(value, is_bool);
            }
            counted.add_row(shape.columns.len(), heap)?;
            out.push(map);
        }
        Ok(out)
    }

    fn execute(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
    ) -> Result<Executed, DbError> {
        self.limit(budget)?;
        let values = bind_values(params)?;
        let mut stmt = self.0.prepare_cached(sql).map_err(sql_error)?;
        let rows = stmt.execute(params_from_iter(values)).map_err(sql_error)?;
        let inserted = rows > 0 && is_insert(sql);
        Ok(Executed {
            rows_affected: rows as u64,
            last_insert_id: inserted.then(|| self.0.last_insert_rowid()),
        })
    }

    fn batch(&mut self, sql: &str, budget: Duration) -> Result<(), DbError> {
        self.limit(budget)?;
        self.0.execute_batch(sql).map_err(sql_error)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

/// The map every row of a statement becomes: built once per query, cloned per row and
/// filled in key order (no key lookups or key strings per row).
struct RowShape {
    /// Column name -> `()`.
    template: Map,
    /// For each key of `template` in order: the column it is read from (the last of that
    /// name, as when a later column overwrote an earlier one) and whether it is boolean.
    columns: Vec<(usize, bool)>,
}

impl RowShape {
    fn of(stmt: &rusqlite::Statement<'_>) -> RowShape {
        let decls: Vec<_> = stmt.columns().collect();
        let template: Map = decls
            .iter()
            .map(|c| (c.name().into(), Dynamic::UNIT))
            .collect();
        let columns = template
            .keys()
            .map(|key| {
                let i = decls
                    .iter()
                    .rposition(|c| c.name() == key.as_str())
                    .expect("every key is a column name");
                (i, decls[i].decl_type().is_some_and(is_bool_type))
            })
            .collect();
        RowShape { template, columns }
    }
}

/// `BOOLEAN` and `BOOL` columns hold 0/1 in SQLite; scripts get `true`/`false`.
fn is_bool_type(decl: &str) -> bool {
    decl.eq_ignore_ascii_case("boolean") || decl.eq_ignore_ascii_case("bool")
}

/// Whether `sql` inserts rows (so `last_insert_rowid` belongs to it).
fn is_insert(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    ["insert", "replace"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
        || (first.eq_ignore_ascii_case("with") && sql.to_ascii_lowercase().contains("insert"))
}

fn to_dynamic(value: ValueRef<'_>, is_bool: bool) -> Dynamic {
    match value {
        ValueRef::Null => Dynamic::UNIT,
        ValueRef::Integer(n) if is_bool => Dynamic::from_bool(n != 0),
        ValueRef::Integer(n) => Dynamic::from_int(n),
        ValueRef::Real(x) => Dynamic::from_float(x),
        // Checked with `from_utf8` first: valid UTF-8 is the rule (always, for text SQLite
        // stored from a script), and that check costs less than the lossy one.
        ValueRef::Text(bytes) => Dynamic::from(match std::str::from_utf8(bytes) {
            Ok(text) => ImmutableString::from(text),
            Err(_) => ImmutableString::from(String::from_utf8_lossy(bytes).as_ref()),
        }),
        ValueRef::Blob(bytes) => Dynamic::from_blob(bytes.to_vec()),
    }
}

/// Script values to SQLite values; maps and arrays are stored as JSON text.
fn bind_values(params: &[Dynamic]) -> Result<Vec<Value>, DbError> {
    params
        .iter()
        .enumerate()
        .map(|(i, value)| {
            Ok(if value.is_unit() {
                Value::Null
            } else if let Ok(b) = value.as_bool() {
                Value::Integer(i64::from(b))
            } else if let Ok(n) = value.as_int() {
                Value::Integer(n)
            } else if let Ok(x) = value.as_float() {
                Value::Real(x)
            } else if value.is_string() || value.is_char() {
                Value::Text(value.to_string())
            } else if value.is_blob() {
                Value::Blob(value.clone().into_blob().unwrap_or_default())
            } else if value.is_map() || value.is_array() {
                Value::Text(serde_json::to_string(value).map_err(|err| DbError::Param {
                    index: i + 1,
                    message: format!("cannot be written as JSON: {err}"),
                })?)
            } else {
                return Err(DbError::Param {
                    index: i + 1,
                    message: format!("a {} cannot be bound", value.type_name()),
                });
            })
        })
        .collect()
}

fn sql_error(err: rusqlite::Error) -> DbError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::OperationInterrupted => {
            DbError::Timeout("running the statement".into())
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::DatabaseBusy => {
            DbError::Timeout("waiting for a lock (database is locked)".into())
        }
        _ => DbError::Sql(err.to_string()),
    }
}
