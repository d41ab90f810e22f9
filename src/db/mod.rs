//! The database layer: SQLite (a file under the app dir, the default) or PostgreSQL (when
//! `DATABASE_URL` says `postgres://`), for the `db::` battery and for Rust code alike.
//!
//! - [`Target`]: which database `DATABASE_URL` names; [`Dialect`]: the SQL that differs.
//! - [`Databases`]: the open databases, each a [`Database`] with its pool of
//!   [`POOL_SIZE`] connections; each app owns one registry (its `AppContext`).
//! - [`Database::query`], [`Database::execute`], [`Database::transaction`],
//!   [`Database::notify`]: calls bounded by the current run's budgets ([`Budget`]).
//! - [`Listener`]: PostgreSQL `LISTEN` on a connection of its own, driven all the time.
//! - [`migrate`]: the app's `migrations/*.sql`.
//!
//! This module knows nothing of its callers (the battery, the CLI): it reads only the
//! current run's budgets ([`crate::script::context`]) and the app's env values.

mod database;
mod dialect;
mod iso;
pub mod listen;
pub mod migrate;
mod numeric;
mod pool;
mod postgres;
mod registry;
pub mod session;
mod sqlite;
mod target;
mod tls;

use std::time::Duration;

pub use self::database::{in_transaction, Conn, Database, ROLLBACK_ALLOWANCE};
pub use self::dialect::Dialect;
pub use self::listen::{Listener, Notification};
pub use self::pool::{threads, DATABASE_THREADS, POOL_SIZE};
pub use self::registry::Databases;
pub use self::session::{Budget, Session};
pub use self::target::{sqlite_file, Target};

/// A value bound to a statement's parameter or read from a column.
///
/// It is Rhai's `Dynamic`, not a type of this layer, on purpose: the backends decode
/// columns straight into the maps scripts get (SQLite fills a per-statement row template),
/// and most calls come from `db::` on the request path, where a plain Rust value would
/// mean a second pass over every cell (an allocation per text column) to convert it to
/// `Dynamic` and back. Rust callers convert at the edge: `Value::from(42_i64)`,
/// `"text".into()`, `value.as_int()`, `value.into_string()`.
pub type Value = rhai::Dynamic;

/// A row: column name -> [`Value`].
pub type Row = rhai::Map;

/// What went wrong with a database call.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` does not name a database this layer can open.
    #[error("DATABASE_URL {0}")]
    Config(String),
    /// The database cannot be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration file or folder that cannot be read.
    #[error("cannot read {0}")]
    Unreadable(String),
    /// The call's time budget ran out.
    #[error("timed out {0}")]
    Timeout(String),
    /// The database refused the statement.
    #[error("{0}")]
    Sql(String),
    /// A parameter that cannot be bound (1-based `index`).
    #[error("parameter {index}: {message}")]
    Param { index: usize, message: String },
    /// A column that cannot be read.
    #[error("column '{column}' {message}")]
    Column { column: String, message: String },
    /// The rows would take more than is left of the run's memory budget.
    #[error(
        "the result is over {} rows, more than is left of the run's memory budget (--max-memory); \
         select fewer rows or columns (LIMIT)",
        .0
    )]
    TooLarge(usize),
    /// A feature this database does not have (`LISTEN`/`NOTIFY` on SQLite).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The result of a statement run for its effect.
pub struct Executed {
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// SQLite's rowid of the row an `INSERT` made (`None` on PostgreSQL: use `RETURNING`).
    pub last_insert_id: Option<i64>,
}

/// What each backend's connection does; every call is bounded by `budget`. SQL takes `?`
/// placeholders on either backend (see [`Dialect::placeholders`]).
pub trait Connection {
    /// Rows of a statement.
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        budget: Duration,
    ) -> Result<Vec<Row>, DbError> {
        self.query_bounded(sql, params, budget, usize::MAX)
    }
    /// [`Connection::query`], failing with [`DbError::TooLarge`] once the rows would take
    /// more than `max_bytes` (as [`RowBytes`] counts them).
    fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Value],
        budget: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Row>, DbError>;
    /// Runs a statement for its effect.
    fn execute(
        &mut self,
        sql: &str,
        params: &[Value],
        budget: Duration,
    ) -> Result<Executed, DbError>;
    /// Runs several statements without parameters (transaction control, migrations).
    fn batch(&mut self, sql: &str, budget: Duration) -> Result<(), DbError>;
    /// The SQL this connection speaks.
    fn dialect(&self) -> Dialect;
}

/// What rows read so far take in memory, about: each column's map entry and its text or
/// bytes. The rows of a query are read on a database thread, whose allocations the run's
/// memory budget does not see, so they are counted here instead.
pub struct RowBytes {
    total: usize,
    max: usize,
    rows: usize,
}

impl RowBytes {
    /// A count that fails past `max` bytes.
    pub fn new(max: usize) -> RowBytes {
        RowBytes {
            total: 0,
            max,
            rows: 0,
        }
    }

    /// Counts one more row; [`DbError::TooLarge`] once over the allowance.
    pub fn add(&mut self, row: &Row) -> Result<(), DbError> {
        let heap = row.values().fold(0usize, |sum, value| {
            sum.saturating_add(if let Ok(text) = value.as_immutable_string_ref() {
                text.len()
            } else if value.is_blob() {
                value.read_lock::<rhai::Blob>().map_or(0, |b| b.len())
            } else {
                0
            })
        });
        self.add_row(row.len(), heap)
    }

    /// Counts one more row of `columns` columns holding `heap` bytes of text and blobs.
    pub fn add_row(&mut self, columns: usize, heap: usize) -> Result<(), DbError> {
        // A column's map entry, and the shared string around a text.
        const COLUMN: usize = 128;
        self.total = self
            .total
            .saturating_add(columns.saturating_mul(COLUMN))
            .saturating_add(heap);
        if self.total > self.max {
            return Err(DbError::TooLarge(self.rows));
        }
        self.rows += 1;
        Ok(())
    }
}
