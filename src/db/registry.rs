//! The open databases, keyed by the database they reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Database, DbError, Target};

/// Databases opened so far, each with its pool. Each app owns one (its
/// [`crate::app_context::AppContext`]), kept across engine rebuilds: the engine is rebuilt
/// when `.env` changes, and the pools survive that (a new `DATABASE_URL` simply names
/// another entry).
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

    /// Connections of every pool together: idle, and busy (in use or being opened).
    pub fn pool_counts(&self) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.values().fold((0, 0), |(idle, busy), db| {
            let (all, free) = db.pool_counts();
            (idle + free, busy + all.saturating_sub(free))
        })
    }
}
