//! Counters in the app's PostgreSQL (`[rate_limits] store = "database"`), shared by every
//! instance on it: one row a key in `_rhapi_rate_limits`, counted by a single statement
//! (an upsert that counts only when the limit allows, then the row as it stands when it
//! did not), so two instances never both take the last request. Rows idle for two windows
//! are deleted at most once a minute by each instance.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::window::{Decision, Limit, Window};
use crate::db::{Connection, Database, DbError, Row};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS _rhapi_rate_limits (\
    key TEXT PRIMARY KEY, window_start BIGINT NOT NULL, prev BIGINT NOT NULL, \
    cur BIGINT NOT NULL, expires BIGINT NOT NULL)";

/// $1 key, $2 this fixed window's start, $3 per (ms), $4 limit, $5 expiry, $6 now. The
/// buckets rolled to this window are the CASEs; the WHERE is `Window::take`'s test.
const TAKE: &str = "WITH up AS (\
    INSERT INTO _rhapi_rate_limits AS r (key, window_start, prev, cur, expires) \
    VALUES ($1, $2::bigint, 0, 1, $5::bigint) \
    ON CONFLICT (key) DO UPDATE SET \
      prev = CASE WHEN r.window_start = $2::bigint THEN r.prev \
                  WHEN r.window_start = $2::bigint - $3::bigint THEN r.cur ELSE 0 END, \
      cur = CASE WHEN r.window_start = $2::bigint THEN r.cur ELSE 0 END + 1, \
      window_start = $2::bigint, expires = $5::bigint \
    WHERE (CASE WHEN r.window_start = $2::bigint THEN r.prev \
                WHEN r.window_start = $2::bigint - $3::bigint THEN r.cur ELSE 0 END)::numeric \
            * ($3::bigint - ($6::bigint - $2::bigint)) \
        + (CASE WHEN r.window_start = $2::bigint THEN r.cur ELSE 0 END + 1)::numeric * $3::bigint \
        <= $4::numeric * $3::bigint \
    RETURNING r.window_start, r.prev, r.cur) \
  SELECT window_start, prev, cur, 1 AS allowed FROM up \
  UNION ALL \
  SELECT window_start, prev, cur, 0 FROM _rhapi_rate_limits \
    WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM up)";

const GIVE_BACK: &str = "UPDATE _rhapi_rate_limits SET cur = cur - 1 \
    WHERE key = $1 AND window_start = $2::bigint AND cur > 0";

const SWEEP: &str = "DELETE FROM _rhapi_rate_limits WHERE expires < $1::bigint";

/// How often an instance deletes idle rows.
const SWEEP_EVERY_MS: i64 = 60_000;

/// The database store of one app.
#[derive(Default)]
pub struct DatabaseStore {
    swept: AtomicI64,
}

/// The row key of a counter: a digest, so that a long header value is 64 bytes here and
/// the same on every instance.
pub fn row_key(scope: &str, key: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(scope.as_bytes());
    hash.update([0]);
    hash.update(key);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl DatabaseStore {
    /// Counts a request of `key` at `now` if `limit` allows it; blocks (call it on the
    /// database threads).
    pub fn take(
        &self,
        db: &Database,
        key: &str,
        limit: Limit,
        now: i64,
        budget: Duration,
    ) -> Result<Decision, DbError> {
        let mut conn = db.get(budget)?;
        let conn = conn.as_dyn();
        let per = limit.per_ms;
        let start = now - now.rem_euclid(per);
        let expires = start.saturating_add(per.saturating_mul(2));
        let params = [
            key.into(),
            start.into(),
            per.into(),
            (limit.limit.min(i64::MAX as u64) as i64).into(),
            expires.into(),
            now.into(),
        ];
        let rows = match conn.query(TAKE, &params, budget) {
            Err(DbError::Sql(_)) => {
                // The table may not exist yet (first use, or a new DATABASE_URL).
                conn.batch(CREATE, budget)?;
                conn.query(TAKE, &params, budget)?
            }
            other => other?,
        };
        self.sweep(conn, now, budget);
        Ok(decide(rows.first(), now, limit))
    }

    /// Undoes an allowed [`DatabaseStore::take`]; blocks.
    pub fn give_back(
        &self,
        db: &Database,
        key: &str,
        limit: Limit,
        now: i64,
        budget: Duration,
    ) -> Result<(), DbError> {
        let start = now - now.rem_euclid(limit.per_ms);
        db.get(budget)?
            .as_dyn()
            .execute(GIVE_BACK, &[key.into(), start.into()], budget)
            .map(drop)
    }

    /// Deletes idle rows, once a minute; a failure waits for the next time.
    fn sweep(&self, conn: &mut dyn Connection, now: i64, budget: Duration) {
        let last = self.swept.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(err) = conn.execute(SWEEP, &[now.into()], budget) {
            tracing::warn!(
                "rate limits: cannot delete idle counters: {}",
                crate::logging::clean(&crate::env::redact(&err.to_string()))
            );
        }
    }
}

/// The decision the statement made, with the headers' figures from the row it returned.
fn decide(row: Option<&Row>, now: i64, limit: Limit) -> Decision {
    let int = |row: &Row, name: &str| row.get(name).and_then(|v| v.as_int().ok()).unwrap_or(0);
    let Some(row) = row else {
        // Refused by a row inserted after the statement's snapshot: full until the window ends.
        let mut full = Window {
            start: now - now.rem_euclid(limit.per_ms),
            prev: 0,
            cur: limit.limit,
        };
        return full.take(now, limit);
    };
    let stored = Window {
        start: int(row, "window_start"),
        prev: int(row, "prev").max(0) as u64,
        cur: int(row, "cur").max(0) as u64,
    };
    if int(row, "allowed") == 1 {
        // Counted: the figures of taking that last request.
        let mut before = Window {
            cur: stored.cur.saturating_sub(1),
            ..stored
        };
        let mut decision = before.take(now, limit);
        decision.allowed = true;
        decision
    } else {
        let mut decision = stored.at(now, limit.per_ms).take(now, limit);
        decision.allowed = false;
        decision.remaining = 0;
        decision
    }
}
