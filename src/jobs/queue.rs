//! The queue's tables in the app's database and every statement on them. SQL is written
//! once with `?` placeholders and runs on SQLite and PostgreSQL alike.
//!
//! A job is one row of `_rhapi_jobs`; its `state` is `pending` (waiting for `run_at`),
//! `running` (claimed; `run_at` is then the end of its lease), `completed` (`run_at`: when)
//! or `failed` (out of attempts, with `last_error`). A claim takes due `pending` rows and
//! `running` rows whose lease has passed (their process died), in one transaction (`FOR
//! UPDATE SKIP LOCKED` on PostgreSQL); the end of a run updates the row only while it is
//! still that attempt's, so a run that outlived its lease cannot overwrite a newer one.
//! Times are milliseconds since the Unix epoch, on the app's clock.

use std::time::Duration;

use rhai::Dynamic;

use crate::db::{Connection, DbError, Dialect, Row, Value};

/// The error kept on a job whose last attempt's process stopped (its lease passed).
const LEASE_PASSED: &str = "the process running its last attempt stopped (its lease passed)";

/// The PostgreSQL channel an enqueue notifies and runners listen on.
pub const CHANNEL: &str = "rhapi_jobs";

/// The first retry waits this long; each next one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST_MS: i64 = 1_000;
const BACKOFF_MAX_MS: i64 = 3_600_000;

/// The tables, with the dialect's types left as `{id}` (the key) and `{int}`.
const TABLES: &str = "\
CREATE TABLE IF NOT EXISTS _rhapi_jobs (
  id {id},
  name TEXT NOT NULL,
  payload TEXT NOT NULL,
  job_key TEXT,
  state TEXT NOT NULL,
  attempts {int} NOT NULL DEFAULT 0,
  run_at {int} NOT NULL,
  last_error TEXT,
  created_at {int} NOT NULL
);
DROP INDEX IF EXISTS _rhapi_jobs_due;
CREATE INDEX IF NOT EXISTS _rhapi_jobs_next ON _rhapi_jobs (run_at, id) WHERE state IN ('pending', 'running');
CREATE UNIQUE INDEX IF NOT EXISTS _rhapi_jobs_key ON _rhapi_jobs (job_key) WHERE state = 'pending' AND attempts = 0;
CREATE TABLE IF NOT EXISTS _rhapi_schedules (name TEXT PRIMARY KEY, last_tick {int} NOT NULL);";

/// Creates the tables when missing. On PostgreSQL the statements run as one (an implicit
/// transaction, or the caller's), behind a lock, so instances starting at once do not
/// trip over each other.
pub fn create_tables(conn: &mut dyn Connection, budget: Duration) -> Result<(), DbError> {
    let typed = |id: &str, int: &str| TABLES.replace("{id}", id).replace("{int}", int);
    let sql = match conn.dialect() {
        Dialect::Sqlite => typed("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"),
        Dialect::Postgres => format!(
            "SELECT pg_advisory_xact_lock(7228373160913251662);\n{}",
            typed("BIGSERIAL PRIMARY KEY", "BIGINT")
        ),
    };
    conn.batch(&sql, budget)
}

/// A job to store.
pub struct NewJob {
    pub name: String,
    /// The payload's JSON text.
    pub payload: String,
    pub key: Option<String>,
    pub run_at: i64,
    pub now: i64,
}

/// Stores `job` and returns its id; with a key that a job not yet started holds, that
/// job's id instead. On PostgreSQL it notifies the runners (at commit, in a transaction).
pub fn enqueue(conn: &mut dyn Connection, budget: Duration, job: &NewJob) -> Result<i64, DbError> {
    let find = |conn: &mut dyn Connection, key: &str| -> Result<Option<i64>, DbError> {
        let rows = conn.query(
            "SELECT id FROM _rhapi_jobs WHERE job_key = ? AND state = 'pending' AND attempts = 0",
            &[key.into()],
            budget,
        )?;
        Ok(rows.first().and_then(|r| int(r, "id")))
    };
    if let Some(key) = &job.key {
        if let Some(id) = find(conn, key)? {
            return Ok(id);
        }
    }
    let key = job.key.clone().map_or(Dynamic::UNIT, Dynamic::from);
    let rows = conn.query(
        "INSERT INTO _rhapi_jobs (name, payload, job_key, state, attempts, run_at, created_at) \
         VALUES (?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        &[
            job.name.as_str().into(),
            job.payload.as_str().into(),
            key,
            job.run_at.into(),
            job.now.into(),
        ],
        budget,
    )?;
    let id = match rows.first().and_then(|r| int(r, "id")) {
        Some(id) => id,
        // Another enqueue with the same key got in first.
        None => match &job.key {
            Some(key) => {
                find(conn, key)?.ok_or_else(|| DbError::Sql("the job was not stored".into()))?
            }
            None => return Err(DbError::Sql("the job was not stored".into())),
        },
    };
    // Other instances find a delayed job at their next look, as this one does.
    if job.run_at <= job.now {
        notify(conn, budget)?;
    }
    Ok(id)
}

/// Wakes the runners of every instance (PostgreSQL; nothing on SQLite).
pub fn notify(conn: &mut dyn Connection, budget: Duration) -> Result<(), DbError> {
    if conn.dialect() == Dialect::Postgres {
        conn.execute("SELECT pg_notify(?, '')", &[CHANNEL.into()], budget)?;
    }
    Ok(())
}

/// A claimed job: this process runs attempt `attempt` of it.
#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    pub name: String,
    pub payload: String,
    /// This run's attempt, 1 for the first.
    pub attempt: i64,
}

/// What a claim may take: for each job name that may run now, how many of it, its
/// attempts and its lease.
pub struct Wanted {
    pub name: String,
    pub room: usize,
    pub attempts: u32,
    pub lease_ms: i64,
}

/// Claims up to `max` due jobs of the `wanted` names. Runs in a transaction of the
/// caller's (see [`crate::db::in_transaction`]). A job whose lease passed after its last
/// attempt is kept as failed instead.
pub fn claim(
    conn: &mut dyn Connection,
    budget: Duration,
    now: i64,
    wanted: &mut [Wanted],
    max: usize,
) -> Result<Vec<Claimed>, DbError> {
    if wanted.is_empty() || max == 0 {
        return Ok(Vec::new());
    }
    let names = vec!["?"; wanted.len()].join(", ");
    let sql = format!(
        "SELECT id, name, payload, attempts FROM _rhapi_jobs \
         WHERE state IN ('pending', 'running') AND run_at <= ? AND name IN ({names}) \
         ORDER BY run_at, id LIMIT ?{}",
        conn.dialect().claim_rows_sql()
    );
    let mut params: Vec<Value> = vec![now.into()];
    params.extend(wanted.iter().map(|w| Value::from(w.name.clone())));
    params.push(i64::try_from(max).unwrap_or(i64::MAX).into());
    let rows = conn.query(&sql, &params, budget)?;
    let mut claimed = Vec::new();
    let mut leases = Vec::new();
    for row in rows {
        let (Some(id), Some(done)) = (int(&row, "id"), int(&row, "attempts")) else {
            continue;
        };
        let name = text(&row, "name");
        let Some(want) = wanted.iter_mut().find(|w| w.name == name) else {
            continue;
        };
        if done >= i64::from(want.attempts) {
            conn.execute(
                "UPDATE _rhapi_jobs SET state = 'failed', run_at = ?, last_error = ? WHERE id = ?",
                &[now.into(), LEASE_PASSED.into(), id.into()],
                budget,
            )?;
            continue;
        }
        if want.room == 0 {
            continue;
        }
        want.room -= 1;
        leases.push((now + want.lease_ms, id));
        claimed.push(Claimed {
            id,
            name,
            payload: text(&row, "payload"),
            attempt: done + 1,
        });
    }
    mark_running(conn, budget, leases)?;
    Ok(claimed)
}

/// Whether [`claim_at_once`] can take this claim: PostgreSQL, and no job's own concurrency
/// is tighter than the claim.
pub fn can_claim_at_once(dialect: Dialect, wanted: &[Wanted], max: usize) -> bool {
    dialect == Dialect::Postgres && wanted.iter().all(|w| w.room >= max)
}

/// [`claim`] in one statement of its own (no transaction, so one round trip instead of
/// four): the due rows are locked (`FOR UPDATE SKIP LOCKED`) and marked running by the same
/// `UPDATE`. A row past its last attempt (its lease passed) is then kept as failed instead
/// of run, as [`claim`] does.
pub fn claim_at_once(
    conn: &mut dyn Connection,
    budget: Duration,
    now: i64,
    wanted: &[Wanted],
    max: usize,
) -> Result<Vec<Claimed>, DbError> {
    if wanted.is_empty() || max == 0 {
        return Ok(Vec::new());
    }
    let leases = vec!["WHEN ? THEN ?::bigint"; wanted.len()].join(" ");
    let names = vec!["?"; wanted.len()].join(", ");
    let sql = format!(
        "UPDATE _rhapi_jobs AS j SET state = 'running', attempts = j.attempts + 1, \
         run_at = ?::bigint + CASE j.name {leases} END \
         FROM (SELECT id FROM _rhapi_jobs \
               WHERE state IN ('pending', 'running') AND run_at <= ? AND name IN ({names}) \
               ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED) AS picked \
         WHERE j.id = picked.id RETURNING j.id, j.name, j.payload, j.attempts"
    );
    let mut params: Vec<Value> = vec![now.into()];
    for want in wanted {
        params.push(Value::from(want.name.clone()));
        params.push(want.lease_ms.into());
    }
    params.push(now.into());
    params.extend(wanted.iter().map(|w| Value::from(w.name.clone())));
    params.push(i64::try_from(max).unwrap_or(i64::MAX).into());
    let mut claimed = Vec::new();
    for row in conn.query(&sql, &params, budget)? {
        let (Some(id), Some(attempt)) = (int(&row, "id"), int(&row, "attempts")) else {
            continue;
        };
        let name = text(&row, "name");
        let Some(want) = wanted.iter().find(|w| w.name == name) else {
            continue;
        };
        if attempt > i64::from(want.attempts) {
            conn.execute(
                "UPDATE _rhapi_jobs SET state = 'failed', attempts = attempts - 1, run_at = ?, \
                 last_error = ? WHERE id = ?",
                &[now.into(), LEASE_PASSED.into(), id.into()],
                budget,
            )?;
            continue;
        }
        claimed.push(Claimed {
            id,
            name,
            payload: text(&row, "payload"),
            attempt,
        });
    }
    Ok(claimed)
}

/// Marks claimed jobs running until their lease ends: one statement per lease length (one
/// for the usual claim, whose jobs share a timeout), not one per job.
fn mark_running(
    conn: &mut dyn Connection,
    budget: Duration,
    mut leases: Vec<(i64, i64)>,
) -> Result<(), DbError> {
    leases.sort_unstable();
    for group in leases.chunk_by(|a, b| a.0 == b.0) {
        let ids = vec!["?"; group.len()].join(", ");
        let sql = format!(
            "UPDATE _rhapi_jobs SET state = 'running', attempts = attempts + 1, run_at = ? \
             WHERE id IN ({ids})"
        );
        let mut params: Vec<Value> = vec![group[0].0.into()];
        params.extend(group.iter().map(|(_, id)| Value::from(*id)));
        conn.execute(&sql, &params, budget)?;
    }
    Ok(())
}

/// How a run ended.
#[derive(Clone)]
pub enum Ended {
    Completed,
    /// Threw, failed or ran out of time, with the (redacted) error.
    Failed(String),
}

/// Records the end of attempt `attempt` of job `id`: completed, retried later (exponential
/// backoff) or failed for good after `attempts`. Returns when a retry is due, if any.
pub fn finish(
    conn: &mut dyn Connection,
    budget: Duration,
    id: i64,
    attempt: i64,
    attempts: u32,
    ended: &Ended,
    now: i64,
) -> Result<Option<i64>, DbError> {
    let (sql, params, retry): (&str, Vec<Value>, _) = match ended {
        Ended::Completed => (
            "UPDATE _rhapi_jobs SET state = 'completed', run_at = ?, last_error = NULL \
             WHERE id = ? AND state = 'running' AND attempts = ?",
            vec![now.into(), id.into(), attempt.into()],
            None,
        ),
        Ended::Failed(error) if attempt >= i64::from(attempts) => (
            "UPDATE _rhapi_jobs SET state = 'failed', run_at = ?, last_error = ? \
             WHERE id = ? AND state = 'running' AND attempts = ?",
            vec![now.into(), error.as_str().into(), id.into(), attempt.into()],
            None,
        ),
        Ended::Failed(error) => {
            let at = now + backoff_ms(attempt);
            (
                "UPDATE _rhapi_jobs SET state = 'pending', run_at = ?, last_error = ? \
                 WHERE id = ? AND state = 'running' AND attempts = ?",
                vec![at.into(), error.as_str().into(), id.into(), attempt.into()],
                Some(at),
            )
        }
    };
    conn.execute(sql, &params, budget)?;
    Ok(retry)
}

/// The wait before the retry after attempt `attempt`: 1 s, 2 s, 4 s, ... up to 1 h.
pub fn backoff_ms(attempt: i64) -> i64 {
    let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    BACKOFF_FIRST_MS
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_MAX_MS)
}

/// When the next of the `names` jobs is due (or its lease passes), if any is queued.
pub fn next_due(
    conn: &mut dyn Connection,
    budget: Duration,
    names: &[String],
) -> Result<Option<i64>, DbError> {
    if names.is_empty() {
        return Ok(None);
    }
    let list = vec!["?"; names.len()].join(", ");
    let sql = format!(
        "SELECT MIN(run_at) AS next FROM _rhapi_jobs \
         WHERE state IN ('pending', 'running') AND name IN ({list})"
    );
    let params: Vec<Value> = names.iter().map(|n| Value::from(n.clone())).collect();
    let rows = conn.query(&sql, &params, budget)?;
    Ok(rows.first().and_then(|r| int(r, "next")))
}

/// Deletes the jobs completed before `before`.
pub fn delete_completed(
    conn: &mut dyn Connection,
    budget: Duration,
    before: i64,
) -> Result<u64, DbError> {
    conn.execute(
        "DELETE FROM _rhapi_jobs WHERE state = 'completed' AND run_at <= ?",
        &[before.into()],
        budget,
    )
    .map(|done| done.rows_affected)
}

/// One line of `rhapi jobs`.
pub struct Listed {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub attempts: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
}

/// Every job that is pending, running or failed, oldest first.
pub fn list(conn: &mut dyn Connection, budget: Duration) -> Result<Vec<Listed>, DbError> {
    let rows = conn.query(
        "SELECT id, name, state, attempts, run_at, last_error FROM _rhapi_jobs \
         WHERE state <> 'completed' ORDER BY id",
        &[],
        budget,
    )?;
    Ok(rows
        .iter()
        .map(|r| Listed {
            id: int(r, "id").unwrap_or(0),
            name: text(r, "name"),
            state: text(r, "state"),
            attempts: int(r, "attempts").unwrap_or(0),
            run_at: int(r, "run_at").unwrap_or(0),
            last_error: r
                .get("last_error")
                .and_then(|v| v.clone().into_string().ok()),
        })
        .collect())
}

/// Puts failed job `id` back, due `now`, with its attempts reset; `false` when there is no
/// failed job with that id.
pub fn retry(
    conn: &mut dyn Connection,
    budget: Duration,
    id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let done = conn.execute(
        "UPDATE _rhapi_jobs SET state = 'pending', attempts = 0, run_at = ?, last_error = NULL \
         WHERE id = ? AND state = 'failed'",
        &[now.into(), id.into()],
        budget,
    )?;
    if done.rows_affected == 1 {
        notify(conn, budget)?;
    }
    Ok(done.rows_affected == 1)
}

/// Enqueues the tick of the scheduled job `name` when one is due at `now`, once across
/// instances: `_rhapi_schedules` holds when each schedule last ticked, advanced by a
/// conditional update in the same transaction (the caller's) as the insert. A schedule
/// seen for the first time starts from `now` (it missed nothing). Returns the next tick.
pub fn tick(
    conn: &mut dyn Connection,
    budget: Duration,
    name: &str,
    next_after: &dyn Fn(i64) -> Option<i64>,
    now: i64,
) -> Result<Option<i64>, DbError> {
    let rows = conn.query(
        "SELECT last_tick FROM _rhapi_schedules WHERE name = ?",
        &[name.into()],
        budget,
    )?;
    let Some(last) = rows.first().and_then(|r| int(r, "last_tick")) else {
        conn.execute(
            "INSERT INTO _rhapi_schedules (name, last_tick) VALUES (?, ?) ON CONFLICT DO NOTHING",
            &[name.into(), now.into()],
            budget,
        )?;
        return Ok(next_after(now));
    };
    match next_after(last) {
        Some(due) if due <= now => {}
        other => return Ok(other),
    }
    let advanced = conn.execute(
        "UPDATE _rhapi_schedules SET last_tick = ? WHERE name = ? AND last_tick = ?",
        &[now.into(), name.into(), last.into()],
        budget,
    )?;
    if advanced.rows_affected == 1 {
        let job = NewJob {
            name: name.to_string(),
            payload: "null".into(),
            key: None,
            run_at: now,
            now,
        };
        enqueue(conn, budget, &job)?;
    }
    Ok(next_after(now))
}

fn int(row: &Row, column: &str) -> Option<i64> {
    row.get(column).and_then(|v| v.as_int().ok())
}

fn text(row: &Row, column: &str) -> String {
    row.get(column)
        .and_then(|v| v.clone().into_string().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_an_hour() {
        let waits: Vec<i64> = (1..=5).map(backoff_ms).collect();
        assert_eq!(waits, [1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(backoff_ms(13), 3_600_000);
        assert_eq!(backoff_ms(i64::MAX), 3_600_000);
    }
}
