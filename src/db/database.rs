//! An open database: its pool, and a connection from it of either backend.

use std::sync::Arc;
use std::time::Duration;

use super::pool::{Pool, Pooled, POOL_SIZE};
use super::postgres::PgManager;
use super::sqlite::SqliteManager;
use super::{Connection, DbError, Dialect, Target};

/// Time a rollback may take after its transaction failed (the budget may be spent).
pub const ROLLBACK_ALLOWANCE: Duration = Duration::from_secs(5);

/// An open database: its pool.
pub struct Database(Backend);

enum Backend {
    Sqlite(Arc<Pool<SqliteManager>>),
    Postgres(Arc<Pool<PgManager>>),
}

/// A pooled connection of either backend; it goes back to the pool when dropped.
pub enum Conn {
    /// A SQLite connection.
    Sqlite(Pooled<SqliteManager>),
    /// A PostgreSQL connection.
    Postgres(Pooled<PgManager>),
}

impl Conn {
    /// The connection, whichever its backend.
    pub fn as_dyn(&mut self) -> &mut dyn Connection {
        match self {
            Conn::Sqlite(c) => &mut **c,
            Conn::Postgres(c) => &mut **c,
        }
    }

    /// The SQL this connection speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Drops the connection instead of returning it to the pool (its state is unknown,
    /// e.g. mid-transaction).
    pub fn discard(&mut self) {
        match self {
            Conn::Sqlite(c) => c.discard(),
            Conn::Postgres(c) => c.discard(),
        }
    }
}

impl Database {
    /// Makes the pool for `target` (no connection yet); see [`super::Databases::open`].
    pub(super) fn open(target: &Target) -> Result<Database, DbError> {
        Ok(Database(match target {
            Target::Sqlite(path) => Backend::Sqlite(Arc::new(Pool::new(
                SqliteManager { path: path.clone() },
                POOL_SIZE,
            ))),
            Target::Postgres(url) => {
                Backend::Postgres(Arc::new(Pool::new(PgManager::new(url)?, POOL_SIZE)))
            }
        }))
    }

    /// The SQL this database speaks.
    pub fn dialect(&self) -> Dialect {
        match self.0 {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Connections of the pool: open (idle or in use), and idle among them.
    pub fn pool_counts(&self) -> (usize, usize) {
        match &self.0 {
            Backend::Sqlite(pool) => pool.counts(),
            Backend::Postgres(pool) => pool.counts(),
        }
    }

    /// A connection from the pool, waiting at most `timeout` for one.
    pub fn get(&self, timeout: Duration) -> Result<Conn, DbError> {
        Ok(match &self.0 {
            Backend::Sqlite(pool) => Conn::Sqlite(pool.get(timeout)?),
            Backend::Postgres(pool) => Conn::Postgres(pool.get(timeout)?),
        })
    }
}

/// Runs `f` in a transaction on `conn`: commits when it returns `Ok`, rolls back otherwise.
/// A connection whose transaction may still be open (its ROLLBACK failed, or `f` panicked)
/// is discarded, never handed to the next user mid-transaction.
pub fn in_transaction<T>(
    conn: &mut Conn,
    budget: Duration,
    f: impl FnOnce(&mut Conn) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let begin = conn.dialect().begin_sql();
    conn.as_dyn().batch(begin, budget)?;
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))) {
        Ok(result) => result,
        Err(panic) => {
            conn.discard();
            std::panic::resume_unwind(panic)
        }
    };
    match result {
        Ok(value) => match conn.as_dyn().batch("COMMIT", budget) {
            Ok(()) => Ok(value),
            Err(err) => {
                roll_back(conn);
                Err(err)
            }
        },
        Err(err) => {
            roll_back(conn);
            Err(err)
        }
    }
}

/// Rolls back, or discards a connection the ROLLBACK failed on.
fn roll_back(conn: &mut Conn) {
    if conn.as_dyn().batch("ROLLBACK", ROLLBACK_ALLOWANCE).is_err() {
        conn.discard();
    }
}
