//! A small blocking connection pool: connections are opened on demand by the thread that
//! needs one (so the wait is bounded by that thread's budget), kept when returned, and
//! dropped when broken.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::DbError;

/// Connections per database (SQLite serializes writers itself; PostgreSQL servers default
/// to 100 connections, shared by every instance).
pub const POOL_SIZE: usize = 16;

/// Threads that run the blocking database calls (SQLite, and PostgreSQL's pooled
/// connections, which are driven synchronously): as many as a pool has connections, since
/// a call waits for a connection first.
pub const DATABASE_THREADS: usize = POOL_SIZE;

/// The queue of the database threads, started on first use (see
/// [`crate::executor::blocking_on`]).
pub fn threads() -> &'static crossbeam_channel::Sender<crate::cpu::Task> {
    static QUEUE: std::sync::OnceLock<crossbeam_channel::Sender<crate::cpu::Task>> =
        std::sync::OnceLock::new();
    QUEUE.get_or_init(|| crate::cpu::pool("rhapi-db", DATABASE_THREADS))
}

/// Opens and checks connections of one database.
pub trait Manager: Send + Sync + 'static {
    /// A connection.
    type Conn: Send;
    /// Opens a connection, giving up after `timeout`.
    fn connect(&self, timeout: Duration) -> Result<Self::Conn, DbError>;
    /// Whether `conn` can no longer be used (the server closed it).
    fn is_broken(&self, conn: &mut Self::Conn) -> bool;
}

struct State<C> {
    idle: Vec<C>,
    /// Connections open or being opened, idle or in use.
    open: usize,
}

/// Connections to one database, at most `max` at a time.
pub struct Pool<M: Manager> {
    manager: M,
    max: usize,
    state: Mutex<State<M::Conn>>,
    returned: Condvar,
}

impl<M: Manager> Pool<M> {
    /// A pool that opens nothing until asked.
    pub fn new(manager: M, max: usize) -> Pool<M> {
        Pool {
            manager,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M::Conn>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection: an idle one, a new one, or one returned within `timeout`.
    pub fn get(self: &Arc<Self>, timeout: Duration) -> Result<Pooled<M>, DbError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: Arc::clone(self),
                    conn: Some(conn),
                    broken: false,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.manager.connect(timeout) {
                    Ok(conn) => Ok(Pooled {
                        pool: Arc::clone(self),
                        conn: Some(conn),
                        broken: false,
                    }),
                    Err(err) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(err)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbError::Timeout("waiting for a free connection".into()));
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Connections open now (idle or in use, or being opened) and idle among them.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.open, state.idle.len())
    }

    fn put_back(&self, mut conn: M::Conn, broken: bool) {
        let broken = broken || self.manager.is_broken(&mut conn);
        let mut state = self.lock();
        if broken {
            state.open -= 1;
            drop(state);
            drop(conn);
        } else {
            state.idle.push(conn);
        }
        self.returned.notify_one();
    }
}

/// A connection on loan from a [`Pool`]; it goes back when dropped.
pub struct Pooled<M: Manager> {
    pool: Arc<Pool<M>>,
    conn: Option<M::Conn>,
    broken: bool,
}

impl<M: Manager> Pooled<M> {
    /// Drops the connection instead of returning it (its state is unknown after an error
    /// mid-transaction).
    pub fn discard(&mut self) {
        self.broken = true;
    }
}

impl<M: Manager> std::ops::Deref for Pooled<M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl<M: Manager> std::ops::DerefMut for Pooled<M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl<M: Manager> Drop for Pooled<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn, self.broken);
        }
    }
}
