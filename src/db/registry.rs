//! The open databases, keyed by the database they reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::{Database, DbError, Target};

/// Databases opened so far, each with its pool. A value, so that an owner (the app) can
/// hold one; for now the process has one, [`databases`], kept across engine rebuilds: the
/// engine is rebuilt when `.env` changes, and the pools survive that (a new `DATABASE_URL`
/// simply names another entry).
#[derive(Default)]
pub struct Databases {
    open: Mutex<HashMap<Target, Arc<Database>>>,
}

impl Databases {
    /// The database `target` names, opened on first use (opening makes the pool; no
    /// connection is made until a call needs one).
    pub fn open(&self, target: &Target) -> Result<Arc<Database>, DbError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = open.get(target) {
            return Ok(Arc::clone(db));
        }
        let db = Arc::new(Database::open(target)?);
        open.insert(target.clone(), Arc::clone(&db));
        Ok(db)
    }
}

/// The process's databases.
pub fn databases() -> &'static Databases {
    static ONE: OnceLock<Databases> = OnceLock::new();
    ONE.get_or_init(Databases::default)
}
