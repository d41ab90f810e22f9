//! `db::`: SQL on SQLite (the default, a file under the app dir) or PostgreSQL (when
//! `DATABASE_URL` says `postgres://`), with bound parameters, rows as maps, transactions
//! and migrations.
//!
//! Connection pools live in a process-wide registry keyed by the database they reach, not in
//! the engine: the engine is rebuilt when `.env` changes, and the pools survive that (a new
//! `DATABASE_URL` simply names another entry).

mod iso;
pub mod migrate;
mod numeric;
mod pool;
mod postgres;
mod sqlite;
mod tls;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rhai::{Array, Dynamic, FnPtr, Map, Module, NativeCallContext};

use self::pool::{Pool, Pooled};
use self::postgres::PgManager;
use self::sqlite::SqliteManager;
use super::{at, budget, budget_spent, script_error, timed_out, ScriptResult};
use crate::env::EnvVars;

/// Connections per database (SQLite serializes writers itself; PostgreSQL servers default
/// to 100 connections, shared by every instance). Also the number of database threads
/// ([`threads`]): a call waits for a connection first, so more threads would only wait.
const POOL_SIZE: usize = 16;

/// The threads that run the database's blocking calls (SQLite, and PostgreSQL's
/// connections, which are driven synchronously), started on first use.
fn threads() -> &'static crossbeam_channel::Sender<crate::cpu::Task> {
    static QUEUE: OnceLock<crossbeam_channel::Sender<crate::cpu::Task>> = OnceLock::new();
    QUEUE.get_or_init(|| crate::cpu::pool("rhapi-db", POOL_SIZE))
}

/// Time a rollback may take after its transaction failed (the budget may be spent).
const ROLLBACK_ALLOWANCE: Duration = Duration::from_secs(5);

/// What went wrong with a database call.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL {0}")]
    Config(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration file or folder that cannot be read.
    #[error("cannot read {0}")]
    Unreadable(String),
    #[error("timed out {0}")]
    Timeout(String),
    #[error("{0}")]
    Sql(String),
    #[error("parameter {index}: {message}")]
    Param { index: usize, message: String },
    #[error("column '{column}' {message}")]
    Column { column: String, message: String },
    /// The rows would take more than is left of the run's memory budget.
    #[error(
        "the result is over {} rows, more than is left of the run's memory budget (--max-memory); \
         select fewer rows or columns (LIMIT)",
        .0
    )]
    TooLarge(usize),
}

/// The result of `db::execute`.
pub struct Executed {
    pub rows_affected: u64,
    pub last_insert_id: Option<i64>,
}

/// What each backend's connection does for `db::` calls; every call is bounded by `budget`.
pub trait Connection {
    /// Rows of a statement, as maps.
    fn query(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
    ) -> Result<Vec<Map>, DbError> {
        self.query_bounded(sql, params, budget, usize::MAX)
    }
    /// [`Connection::query`], failing with [`DbError::TooLarge`] once the rows would take
    /// more than `max_bytes` (as [`RowBytes`] counts them).
    fn query_bounded(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
        max_bytes: usize,
    ) -> Result<Vec<Map>, DbError>;
    /// Runs a statement for its effect.
    fn execute(
        &mut self,
        sql: &str,
        params: &[Dynamic],
        budget: Duration,
    ) -> Result<Executed, DbError>;
    /// Runs several statements without parameters (transaction control, migrations).
    fn batch(&mut self, sql: &str, budget: Duration) -> Result<(), DbError>;
    /// How a transaction starts.
    fn begin_sql(&self) -> &'static str;
    /// A statement that makes concurrent migrators wait for each other, where needed.
    fn lock_migrations_sql(&self) -> Option<&'static str> {
        None
    }
}

/// Which database `DATABASE_URL` names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    /// `DATABASE_URL` unset: `data/app.db`; `sqlite:path` (relative to the app dir);
    /// `postgres://` or `postgresql://`.
    fn from_env(app_dir: &Path, env: &EnvVars) -> Result<Target, DbError> {
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

/// An open database: its pool.
pub enum Database {
    Sqlite(Arc<Pool<SqliteManager>>),
    Postgres(Arc<Pool<PgManager>>),
}

/// A pooled connection of either backend.
enum Conn {
    Sqlite(Pooled<SqliteManager>),
    Postgres(Pooled<PgManager>),
}

impl Conn {
    fn as_dyn(&mut self) -> &mut dyn Connection {
        match self {
            Conn::Sqlite(c) => &mut **c,
            Conn::Postgres(c) => &mut **c,
        }
    }

    fn discard(&mut self) {
        match self {
            Conn::Sqlite(c) => c.discard(),
            Conn::Postgres(c) => c.discard(),
        }
    }
}

impl Database {
    fn open(target: &Target) -> Result<Database, DbError> {
        Ok(match target {
            Target::Sqlite(path) => Database::Sqlite(Arc::new(Pool::new(
                SqliteManager { path: path.clone() },
                POOL_SIZE,
            ))),
            Target::Postgres(url) => {
                Database::Postgres(Arc::new(Pool::new(PgManager::new(url)?, POOL_SIZE)))
            }
        })
    }

    fn get(&self, timeout: Duration) -> Result<Conn, DbError> {
        Ok(match self {
            Database::Sqlite(pool) => Conn::Sqlite(pool.get(timeout)?),
            Database::Postgres(pool) => Conn::Postgres(pool.get(timeout)?),
        })
    }

    /// `sql` written with `?` placeholders, in this database's placeholder style.
    fn placeholders(&self, sql: &str) -> String {
        match self {
            Database::Sqlite(_) => sql.to_string(),
            Database::Postgres(_) => postgres::numbered_placeholders(sql, 1).into_owned(),
        }
    }

    fn migrations_table_sql(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => {
                "CREATE TABLE IF NOT EXISTS _rhapi_migrations (name TEXT PRIMARY KEY, \
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
            }
            Database::Postgres(_) => {
                "CREATE TABLE IF NOT EXISTS _rhapi_migrations (name TEXT PRIMARY KEY, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            }
        }
    }
}

/// Databases opened by this process, kept across engine rebuilds.
static OPEN: OnceLock<Mutex<HashMap<Target, Arc<Database>>>> = OnceLock::new();

fn open(target: &Target) -> Result<Arc<Database>, DbError> {
    let mut open = OPEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(db) = open.get(target) {
        return Ok(Arc::clone(db));
    }
    let db = Arc::new(Database::open(target)?);
    open.insert(target.clone(), Arc::clone(&db));
    Ok(db)
}

/// The database of one engine build: resolved from `DATABASE_URL` when the engine is built,
/// opened on first use.
struct Handle {
    target: Result<Target, String>,
    db: OnceLock<Arc<Database>>,
}

impl Handle {
    fn database(&self) -> Result<Arc<Database>, DbError> {
        if let Some(db) = self.db.get() {
            return Ok(Arc::clone(db));
        }
        let target = self.target.clone().map_err(DbError::Config)?;
        let db = open(&target)?;
        Ok(Arc::clone(self.db.get_or_init(|| db)))
    }
}

/// The transaction in progress on this thread: `db::` calls inside `db::transaction` use
/// its connection.
struct Tx {
    db: Arc<Database>,
    conn: Conn,
    depth: usize,
}

impl Drop for Tx {
    fn drop(&mut self) {
        // Dropped while still open (its run ended without finishing it: a timeout, a
        // client that went away): never hand the connection to someone else mid-transaction.
        if self.depth > 0 {
            self.conn.discard();
        }
    }
}

thread_local! {
    static TX: RefCell<Option<Tx>> = const { RefCell::new(None) };
}

/// A suspended run's open transaction, kept with the run while other runs use the thread.
pub struct SavedTransaction(Option<Tx>);

impl SavedTransaction {
    /// Takes this thread's transaction out (its run suspends).
    pub fn take() -> SavedTransaction {
        SavedTransaction(TX.with(|tx| tx.borrow_mut().take()))
    }

    /// Puts it back (its run resumed).
    pub fn restore(self) {
        TX.with(|tx| *tx.borrow_mut() = self.0);
    }
}

/// Runs blocking database work on the database [`threads`] (see
/// [`crate::executor::blocking_on`]); a budget that runs out meanwhile ends the run.
fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ScriptResult<T> {
    match crate::executor::blocking_on(threads(), work) {
        crate::executor::Waited::Done(value) => Ok(value),
        crate::executor::Waited::TimedOut => Err(timed_out()),
    }
}

/// How long a SQLite statement may run (or wait for a lock) on the worker itself before it
/// is run again on the database threads: about one slice of a script.
const SQLITE_INLINE: Duration = Duration::from_millis(1);

/// Runs `f` on the connection of this run's transaction, or on one from the pool.
///
/// PostgreSQL calls run on the database threads (see [`off_thread`]). A SQLite statement is
/// tried on the worker first, with a 1 ms bound on its lock wait and its run time: most take
/// microseconds, of page-cache and CPU work like the script's own, and a hop to another
/// thread and back costs more than that (about 14 µs of CPU per request on the SQLite row
/// route). One that would wait or run longer is stopped (SQLite undoes a stopped statement)
/// and run again off the worker with the whole budget.
fn with_conn<T: Send + 'static>(
    handle: &Handle,
    call: &str,
    f: impl Fn(&mut dyn Connection, Duration) -> Result<T, DbError> + Send + 'static,
) -> ScriptResult<T> {
    let budget = budget()?;
    let db = handle.database().map_err(|err| to_script(call, err))?;
    let mut tx = TX.with(|tx| tx.borrow_mut().take());
    let ours = tx.as_ref().is_none_or(|tx| Arc::ptr_eq(&tx.db, &db));
    if !ours {
        // Another database's transaction: leave it for its own calls.
        TX.with(|slot| *slot.borrow_mut() = tx.take());
    }
    if matches!(*db, Database::Sqlite(_)) {
        let quick = budget.min(SQLITE_INLINE);
        let attempt = match tx.as_mut() {
            Some(tx) => Some(f(tx.conn.as_dyn(), quick)),
            None => db
                .get(Duration::ZERO)
                .ok()
                .map(|mut conn| f(conn.as_dyn(), quick)),
        };
        match attempt {
            Some(Err(DbError::Timeout(_))) | None => {}
            Some(result) => {
                if tx.is_some() {
                    TX.with(|slot| *slot.borrow_mut() = tx);
                }
                return result.map_err(|err| to_script(call, err));
            }
        }
    }
    let (tx, result) = match tx {
        Some(mut tx) => off_thread(move || {
            let result = f(tx.conn.as_dyn(), budget);
            (Some(tx), result)
        })?,
        None => off_thread(move || {
            let result = db.get(budget).and_then(|mut conn| f(conn.as_dyn(), budget));
            (None, result)
        })?,
    };
    if tx.is_some() {
        TX.with(|slot| *slot.borrow_mut() = tx);
    }
    result.map_err(|err| to_script(call, err))
}

/// A database error as a script error: a timeout once the budget is spent ends the run
/// (504); anything else is catchable, prefixed with the call.
fn to_script(call: &str, err: DbError) -> Box<rhai::EvalAltResult> {
    if matches!(err, DbError::Timeout(_)) && budget_spent() {
        return timed_out();
    }
    script_error(format!("{call}: {err}"))
}

/// Runs `f` in a transaction on `conn`: commits when it returns `Ok`, rolls back otherwise.
fn in_transaction<T>(
    conn: &mut dyn Connection,
    budget: Duration,
    f: impl FnOnce(&mut dyn Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    conn.batch(conn.begin_sql(), budget)?;
    match f(conn) {
        Ok(value) => {
            if let Err(err) = conn.batch("COMMIT", budget) {
                let _ = conn.batch("ROLLBACK", ROLLBACK_ALLOWANCE);
                return Err(err);
            }
            Ok(value)
        }
        Err(err) => {
            let _ = conn.batch("ROLLBACK", ROLLBACK_ALLOWANCE);
            Err(err)
        }
    }
}

/// Clears this thread's transaction if a panic unwinds through `db::transaction`, so the
/// next run on the thread does not inherit it.
struct UnwindGuard;

impl Drop for UnwindGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(mut tx) = TX.with(|tx| tx.borrow_mut().take()) {
                tx.conn.discard();
            }
        }
    }
}

/// `db::transaction(|| { ... })`: the closure's `db::` calls share one transaction; it
/// commits when the closure returns and rolls back (re-raising the error) when it fails.
/// Nested calls become savepoints.
fn transaction(handle: &Handle, ctx: &NativeCallContext, f: &FnPtr) -> ScriptResult<Dynamic> {
    let budget = budget()?;
    let db = handle.database().map_err(|err| to_script(TX_CALL, err))?;
    let depth = begin(&db, budget)?;
    let result = {
        let _guard = UnwindGuard;
        f.call_within_context::<Dynamic>(ctx, ())
    };
    finish(depth, result.is_ok())?;
    result
}

const TX_CALL: &str = "db::transaction";

/// Opens the transaction (depth 0) or a savepoint inside the running one, and leaves it in
/// [`TX`] for the calls inside; returns its depth.
fn begin(db: &Arc<Database>, budget: Duration) -> ScriptResult<usize> {
    let current = TX.with(|tx| tx.borrow_mut().take());
    let mut tx = match current {
        Some(tx) if Arc::ptr_eq(&tx.db, db) => tx,
        other => {
            TX.with(|slot| *slot.borrow_mut() = other);
            if TX.with(|slot| slot.borrow().is_some()) {
                return Err(script_error(
                    "db::transaction: another database's transaction is in progress",
                ));
            }
            let pool = Arc::clone(db);
            let conn =
                off_thread(move || pool.get(budget))?.map_err(|err| to_script(TX_CALL, err))?;
            Tx {
                db: Arc::clone(db),
                conn,
                depth: 0,
            }
        }
    };
    let depth = tx.depth;
    let begin = if depth == 0 {
        tx.conn.as_dyn().begin_sql().to_string()
    } else {
        format!("SAVEPOINT rhapi_{depth}")
    };
    let (mut tx, begun) = off_thread(move || {
        let begun = tx.conn.as_dyn().batch(&begin, budget);
        (tx, begun)
    })?;
    if let Err(err) = begun {
        if depth > 0 {
            TX.with(|slot| *slot.borrow_mut() = Some(tx));
        }
        return Err(to_script(TX_CALL, err));
    }
    tx.depth += 1;
    TX.with(|slot| *slot.borrow_mut() = Some(tx));
    Ok(depth)
}

/// Commits (or releases the savepoint at `depth`) when the body succeeded, rolls back
/// otherwise; an outer transaction goes back to [`TX`].
fn finish(depth: usize, succeeded: bool) -> ScriptResult<()> {
    let Some(mut tx) = TX.with(|slot| slot.borrow_mut().take()) else {
        return Err(script_error("db::transaction: the transaction was lost"));
    };
    tx.depth -= 1;
    let commit_budget = budget_or_allowance();
    let (tx, outcome) = off_thread(move || {
        let outcome = if succeeded {
            let end = if depth == 0 {
                "COMMIT".to_string()
            } else {
                format!("RELEASE SAVEPOINT rhapi_{depth}")
            };
            tx.conn
                .as_dyn()
                .batch(&end, commit_budget)
                .inspect_err(|_| {
                    let _ = rollback(&mut tx, depth);
                })
        } else {
            let _ = rollback(&mut tx, depth);
            Ok(())
        };
        (tx, outcome)
    })?;
    let outcome = outcome.map_err(|err| to_script(TX_CALL, err));
    if depth > 0 {
        TX.with(|slot| *slot.borrow_mut() = Some(tx));
    }
    outcome
}

fn budget_or_allowance() -> Duration {
    budget().unwrap_or(ROLLBACK_ALLOWANCE)
}

/// Rolls back the transaction (or savepoint) at `depth`; a connection whose rollback
/// failed is not reused.
fn rollback(tx: &mut Tx, depth: usize) -> Result<(), DbError> {
    let sql = if depth == 0 {
        "ROLLBACK".to_string()
    } else {
        format!("ROLLBACK TO SAVEPOINT rhapi_{depth}; RELEASE SAVEPOINT rhapi_{depth}")
    };
    let result = tx.conn.as_dyn().batch(&sql, ROLLBACK_ALLOWANCE);
    if result.is_err() {
        tx.conn.discard();
    }
    result
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
    pub fn add(&mut self, row: &Map) -> Result<(), DbError> {
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

fn rows_to_array(rows: Vec<Map>) -> Array {
    rows.into_iter().map(Dynamic::from_map).collect()
}

/// The `db` module for an engine built for `app_dir` with `env`.
pub fn module(app_dir: &Path, env: &EnvVars) -> Module {
    let handle = Arc::new(Handle {
        target: Target::from_env(app_dir, env).map_err(|err| match err {
            DbError::Config(message) => message,
            other => other.to_string(),
        }),
        db: OnceLock::new(),
    });
    let mut module = Module::new();
    sql_fn(&mut module, &handle, "query", |h, sql, params| {
        let max = crate::script::context::memory_left();
        with_conn(h, "db::query", move |c, b| {
            c.query_bounded(&sql, &params, b, max)
        })
        .map(|rows| Dynamic::from_array(rows_to_array(rows)))
    });
    sql_fn(&mut module, &handle, "query_one", |h, sql, params| {
        let max = crate::script::context::memory_left();
        let rows = with_conn(h, "db::query_one", move |c, b| {
            c.query_bounded(&sql, &params, b, max)
        })?;
        Ok(rows
            .into_iter()
            .next()
            .map_or(Dynamic::UNIT, Dynamic::from_map))
    });
    sql_fn(&mut module, &handle, "execute", |h, sql, params| {
        with_conn(h, "db::execute", move |c, b| c.execute(&sql, &params, b))
            .map(|result| Dynamic::from_map(executed(result)))
    });
    let h = Arc::clone(&handle);
    module.set_native_fn("transaction", move |ctx: NativeCallContext, f: FnPtr| {
        at(&ctx, transaction(&h, &ctx, &f))
    });
    module
}

/// Registers `db::<name>(sql, params)` and `db::<name>(sql)` (no parameters).
fn sql_fn(
    module: &mut Module,
    handle: &Arc<Handle>,
    name: &'static str,
    call: fn(&Handle, String, Vec<Dynamic>) -> ScriptResult<Dynamic>,
) {
    let h = Arc::clone(handle);
    module.set_native_fn(
        name,
        move |ctx: NativeCallContext, sql: &str, params: Array| {
            at(&ctx, call(&h, sql.to_string(), params))
        },
    );
    let h = Arc::clone(handle);
    module.set_native_fn(name, move |ctx: NativeCallContext, sql: &str| {
        at(&ctx, call(&h, sql.to_string(), Vec::new()))
    });
}

fn executed(result: Executed) -> Map {
    let mut map = Map::new();
    map.insert(
        "rows_affected".into(),
        Dynamic::from_int(i64::try_from(result.rows_affected).unwrap_or(i64::MAX)),
    );
    map.insert(
        "last_insert_id".into(),
        result
            .last_insert_id
            .map_or(Dynamic::UNIT, Dynamic::from_int),
    );
    map
}

/// Applies the app's migrations to the database `env` names (at start and for
/// `rhapi migrate`); returns the files applied now. An app without `migrations/` is left
/// alone.
pub fn migrate(app_dir: &Path, env: &EnvVars) -> Result<Vec<String>, String> {
    let target = Target::from_env(app_dir, env).map_err(|err| err.to_string())?;
    if !app_dir.join("migrations").is_dir() {
        return Ok(Vec::new());
    }
    let db = open(&target).map_err(|err| err.to_string())?;
    migrate::run(app_dir, &db).map_err(|err| crate::env::redact(&err.to_string()))
}
