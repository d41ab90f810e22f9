//! The Rust API: [`Database::query`], [`Database::execute`], [`Database::transaction`] and
//! [`Database::notify`], each bounded by a [`Budget`] (by default the current run's, as
//! `db::` calls are), and [`Session`] for several calls on one connection.

use std::time::{Duration, Instant};

use super::database::in_transaction;
use super::{Conn, Database, DbError, Dialect, Executed, Row, Value};
use crate::script::context;

/// How long a call may take and how many bytes its rows may take.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    deadline: Instant,
    memory: usize,
}

impl Budget {
    /// Outside a run there is no budget; a day stands for "unbounded", since every wait
    /// needs a deadline (and PostgreSQL's `statement_timeout` takes at most ~24 days).
    const UNBOUNDED: Duration = Duration::from_secs(24 * 60 * 60);

    /// The current run's budgets, read on this thread: its time left and its memory left;
    /// unbounded outside a run. Take it before handing a call to another thread.
    pub fn current() -> Budget {
        Budget::new(
            context::remaining().unwrap_or(Budget::UNBOUNDED),
            context::memory_left(),
        )
    }

    /// `time` from now, and `memory` bytes of rows.
    pub fn new(time: Duration, memory: usize) -> Budget {
        Budget {
            deadline: Instant::now() + time,
            memory,
        }
    }

    /// Time left until the deadline.
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl Database {
    /// Runs `f` on one pooled connection within `budget` (waiting for the connection
    /// counts). The calls block this thread: inside a run, make them on the database
    /// threads (`crate::executor::blocking_on`), with a budget taken before.
    pub fn session<T>(
        &self,
        budget: Budget,
        f: impl FnOnce(&mut Session<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut conn = self.get(budget.time_left())?;
        f(&mut Session {
            conn: &mut conn,
            budget,
            in_transaction: false,
        })
    }

    /// Rows of `sql` (`?` placeholders), within the current run's budgets.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        self.session(Budget::current(), |s| s.query(sql, params))
    }

    /// Runs `sql` for its effect, within the current run's budgets.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<Executed, DbError> {
        self.session(Budget::current(), |s| s.execute(sql, params))
    }

    /// Runs `f` in a transaction, within the current run's budgets: commits when it
    /// returns `Ok`, rolls back otherwise.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&mut Session<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.session(Budget::current(), |s| s.transaction(f))
    }

    /// PostgreSQL `NOTIFY`: `payload` to every [`super::Listener`] of `channel`.
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), DbError> {
        self.session(Budget::current(), |s| s.notify(channel, payload))
    }
}

/// A connection on loan, with the budget its calls share.
pub struct Session<'a> {
    conn: &'a mut Conn,
    budget: Budget,
    /// Inside [`Session::transaction`] (which does not nest).
    in_transaction: bool,
}

impl Session<'_> {
    /// The SQL this session's database speaks.
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Rows of `sql` (`?` placeholders), failing with [`DbError::TooLarge`] past the
    /// budget's memory.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let time = self.budget.time_left();
        self.conn
            .as_dyn()
            .query_bounded(sql, params, time, self.budget.memory)
    }

    /// Runs `sql` for its effect.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<Executed, DbError> {
        let time = self.budget.time_left();
        self.conn.as_dyn().execute(sql, params, time)
    }

    /// Runs statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        let time = self.budget.time_left();
        self.conn.as_dyn().batch(sql, time)
    }

    /// Runs `f` in a transaction on this session's connection: commits when it returns
    /// `Ok`, rolls back otherwise. Inside another transaction it is refused
    /// ([`DbError::Unsupported`]): a nested BEGIN would let the inner COMMIT commit both.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Session<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        if self.in_transaction {
            return Err(DbError::Unsupported(
                "a transaction inside a transaction (run the calls in the outer one)",
            ));
        }
        let budget = self.budget;
        in_transaction(self.conn, budget.time_left(), |conn| {
            f(&mut Session {
                conn,
                budget,
                in_transaction: true,
            })
        })
    }

    /// PostgreSQL `NOTIFY` (inside a transaction, sent when it commits);
    /// [`DbError::Unsupported`] on SQLite.
    pub fn notify(&mut self, channel: &str, payload: &str) -> Result<(), DbError> {
        if self.dialect() != Dialect::Postgres {
            return Err(DbError::Unsupported(
                "notify needs PostgreSQL (LISTEN/NOTIFY); SQLite has no notifications",
            ));
        }
        self.execute("SELECT pg_notify(?, ?)", &[channel.into(), payload.into()])
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Databases, Listener, Target};

    fn sqlite(dir: &tempfile::TempDir) -> std::sync::Arc<Database> {
        let target = Target::Sqlite(dir.path().join("data/app.db"));
        Databases::default().open(&target).expect("opens")
    }

    #[test]
    fn a_transaction_inside_a_transaction_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(&dir);
        db.execute("CREATE TABLE t (n INTEGER)", &[])
            .expect("creates");
        let nested: Result<(), DbError> = db.transaction(|tx| {
            tx.execute("INSERT INTO t (n) VALUES (1)", &[])?;
            tx.transaction(|_| Ok(()))
        });
        assert!(matches!(nested, Err(DbError::Unsupported(_))), "{nested:?}");
        let rows = db.query("SELECT n FROM t", &[]).expect("reads");
        assert!(rows.is_empty(), "the outer transaction rolled back");
    }

    #[test]
    fn a_panic_inside_a_transaction_never_pools_its_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(&dir);
        db.execute("CREATE TABLE t (n INTEGER)", &[])
            .expect("creates");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.transaction(|tx| -> Result<(), DbError> {
                tx.execute("INSERT INTO t (n) VALUES (1)", &[])?;
                panic!("a bug in the caller")
            });
        }));
        assert!(panicked.is_err());
        // A pooled connection still inside that transaction would hold its row and the
        // write lock: the next writer would see the row, or wait for the lock.
        db.execute("INSERT INTO t (n) VALUES (2)", &[])
            .expect("no transaction left open");
        let rows = db.query("SELECT n FROM t", &[]).expect("reads");
        assert_eq!(rows.len(), 1, "only the row written after the panic");
    }

    #[test]
    fn rust_code_queries_executes_and_commits_or_rolls_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(&dir);
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT)", &[])
            .expect("creates");
        let done = db.execute("INSERT INTO jobs (name) VALUES (?)", &["mail".into()]);
        assert_eq!(done.expect("inserts").last_insert_id, Some(1));
        let failed: Result<(), DbError> = db.transaction(|tx| {
            tx.execute("INSERT INTO jobs (name) VALUES (?)", &["lost".into()])?;
            Err(DbError::Sql("the caller gave up".into()))
        });
        assert!(failed.is_err());
        let claimed = db.transaction(|tx| {
            let sql = format!(
                "SELECT id, name FROM jobs ORDER BY id LIMIT 1{}",
                tx.dialect().claim_rows_sql()
            );
            let rows = tx.query(&sql, &[])?;
            tx.execute("DELETE FROM jobs WHERE id = ?", &[rows[0]["id"].clone()])?;
            Ok(rows)
        });
        let rows = claimed.expect("claims");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["name"].clone().into_string().as_deref(), Ok("mail"));
        assert!(db
            .query("SELECT * FROM jobs", &[])
            .expect("reads")
            .is_empty());
    }

    #[test]
    #[ignore = "needs RHAPI_TEST_POSTGRES_URL (see README)"]
    fn concurrent_claims_skip_each_others_rows_on_postgresql() {
        let url = std::env::var("RHAPI_TEST_POSTGRES_URL").expect(
            "RHAPI_TEST_POSTGRES_URL is unset: start a server with `eval \"$(.ci/postgres start)\"`",
        );
        let db = Databases::default()
            .open(&Target::Postgres(url))
            .expect("opens");
        db.execute("DROP TABLE IF EXISTS rhapi_unit_jobs", &[])
            .expect("drops");
        db.execute("CREATE TABLE rhapi_unit_jobs (id INT PRIMARY KEY)", &[])
            .expect("creates");
        db.execute(
            "INSERT INTO rhapi_unit_jobs VALUES (?), (?)",
            &[1.into(), 2.into()],
        )
        .expect("inserts");
        let claim = format!(
            "SELECT id FROM rhapi_unit_jobs ORDER BY id LIMIT 1{}",
            db.dialect().claim_rows_sql()
        );
        let (first, second) = db
            .transaction(|outer| {
                let first = outer.query(&claim, &[])?;
                // Another connection, while the first row is claimed: it gets the second.
                let second = db.transaction(|inner| inner.query(&claim, &[]))?;
                Ok((first, second))
            })
            .expect("claims");
        assert_eq!(first[0]["id"].as_int(), Ok(1));
        assert_eq!(second[0]["id"].as_int(), Ok(2));
        db.execute("DROP TABLE rhapi_unit_jobs", &[])
            .expect("drops");
    }

    #[test]
    fn a_session_stops_at_its_memory_budget() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(&dir);
        let rows = db.session(Budget::new(Duration::from_secs(5), 200), |s| {
            s.query("SELECT 1 AS a UNION ALL SELECT 2 UNION ALL SELECT 3", &[])
        });
        assert!(
            matches!(rows, Err(DbError::TooLarge(1))),
            "{:?}",
            rows.err()
        );
    }

    #[test]
    fn notifications_need_postgresql() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite(&dir);
        assert!(matches!(
            db.notify("jobs", "1"),
            Err(DbError::Unsupported(_))
        ));
        let target = Target::Sqlite(dir.path().join("data/app.db"));
        assert!(matches!(
            Listener::open(&target),
            Err(DbError::Unsupported(_))
        ));
    }
}
