//! `db::`: SQL on SQLite (the default, a file under the app dir) or PostgreSQL (when
//! `DATABASE_URL` says `postgres://`), with bound parameters, rows as maps and
//! transactions, on the database layer ([`crate::db`]).
//!
//! What is here binds the layer to scripts: the Rhai functions, and a `db::transaction`'s
//! connection kept with its run (a [`RunLocal`] the executor saves and restores with the
//! run). The pools live in the app's registry ([`AppContext`]), not in the engine: the
//! engine is rebuilt when `.env` changes, and the pools survive that.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rhai::{Array, Dynamic, FnPtr, Map, Module, NativeCallContext};

use super::{at, budget, budget_spent, script_error, timed_out, ScriptResult};
use crate::app_context::AppContext;
use crate::db::{Conn, Connection, Database, DbError, Dialect, Executed, Target};
use crate::db::{Row, ROLLBACK_ALLOWANCE};
use crate::env::EnvVars;
use crate::executor::RunLocal;

/// The database of one engine build: resolved from `DATABASE_URL` when the engine is built,
/// opened on first use. `jobs::` reaches the same database (and the run's transaction)
/// through one of its own.
pub(crate) struct Handle {
    target: Result<Target, String>,
    /// The app whose databases it opens from.
    app: Arc<AppContext>,
    db: OnceLock<Arc<Database>>,
}

impl Handle {
    /// The handle of an engine built for `app_dir` with `env`.
    pub(crate) fn new(app_dir: &Path, env: &EnvVars, app: &Arc<AppContext>) -> Arc<Handle> {
        Arc::new(Handle {
            app: Arc::clone(app),
            target: Target::from_env(app_dir, env).map_err(|err| match err {
                DbError::Config(message) => message,
                other => other.to_string(),
            }),
            db: OnceLock::new(),
        })
    }

    fn database(&self) -> Result<Arc<Database>, DbError> {
        if let Some(db) = self.db.get() {
            return Ok(Arc::clone(db));
        }
        let target = self.target.clone().map_err(DbError::Config)?;
        let db = self.app.databases.open(&target)?;
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

/// The transaction of the run in progress, if it opened one; the executor keeps it with
/// the run while it is suspended.
static TX: RunLocal<Tx> = RunLocal::new();

/// Whether the run has a `db::transaction` open.
pub(crate) fn in_transaction() -> bool {
    TX.with(|tx| tx.is_some())
}

/// Makes `tx` the run's transaction (`None`: it has none).
fn put(tx: Option<Tx>) {
    match tx {
        Some(tx) => {
            TX.set(tx);
        }
        None => drop(TX.take()),
    }
}

/// Runs blocking database work on the database threads ([`crate::db::threads`], see
/// [`crate::executor::blocking_on`]); a budget that runs out meanwhile ends the run.
fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ScriptResult<T> {
    match crate::executor::blocking_on(crate::db::threads(), work) {
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
pub(crate) fn with_conn<T: Send + 'static>(
    handle: &Handle,
    call: &str,
    f: impl Fn(&mut dyn Connection, Duration) -> Result<T, DbError> + Send + 'static,
) -> ScriptResult<T> {
    let budget = budget()?;
    let db = handle.database().map_err(|err| to_script(call, err))?;
    let mut tx = TX.take();
    let ours = tx.as_ref().is_none_or(|tx| Arc::ptr_eq(&tx.db, &db));
    if !ours {
        // Another database's transaction: leave it for its own calls.
        put(tx.take());
    }
    if db.dialect() == Dialect::Sqlite {
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
                    put(tx);
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
        put(tx);
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

/// Clears this thread's transaction if a panic unwinds through `db::transaction`, so the
/// next run on the thread does not inherit it.
struct UnwindGuard;

impl Drop for UnwindGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(mut tx) = TX.take() {
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
    let current = TX.take();
    let mut tx = match current {
        Some(tx) if Arc::ptr_eq(&tx.db, db) => tx,
        other => {
            put(other);
            if TX.with(|tx| tx.is_some()) {
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
        tx.conn.as_dyn().dialect().begin_sql().to_string()
    } else {
        format!("SAVEPOINT rhapi_{depth}")
    };
    let (mut tx, begun) = off_thread(move || {
        let begun = tx.conn.as_dyn().batch(&begin, budget);
        (tx, begun)
    })?;
    if let Err(err) = begun {
        if depth > 0 {
            put(Some(tx));
        }
        return Err(to_script(TX_CALL, err));
    }
    tx.depth += 1;
    put(Some(tx));
    Ok(depth)
}

/// Commits (or releases the savepoint at `depth`) when the body succeeded, rolls back
/// otherwise; an outer transaction goes back to [`TX`].
fn finish(depth: usize, succeeded: bool) -> ScriptResult<()> {
    let Some(mut tx) = TX.take() else {
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
        put(Some(tx));
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

fn rows_to_array(rows: Vec<Row>) -> Array {
    rows.into_iter().map(Dynamic::from_map).collect()
}

/// The `db` module for an engine built for `app_dir` with `env`.
pub fn module(app_dir: &Path, env: &EnvVars, app: &Arc<AppContext>) -> Module {
    let handle = Handle::new(app_dir, env, app);
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
