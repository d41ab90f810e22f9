//! The SQL that differs between SQLite and PostgreSQL: placeholders, how a transaction
//! starts, the migrations table and its lock. SQL written for `db::` uses `?` placeholders
//! and runs on both.

use std::borrow::Cow;

/// Which SQL a database speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `?` placeholders, one writer at a time.
    Sqlite,
    /// PostgreSQL: `$1, $2, ...` placeholders, `LISTEN`/`NOTIFY`, `FOR UPDATE SKIP LOCKED`.
    Postgres,
}

impl Dialect {
    /// `sql` written with `?` placeholders, in this dialect's placeholder style.
    pub fn placeholders(self, sql: &str) -> Cow<'_, str> {
        match self {
            Dialect::Sqlite => sql.into(),
            Dialect::Postgres => numbered_placeholders(sql, 1),
        }
    }

    /// How a transaction starts.
    pub fn begin_sql(self) -> &'static str {
        match self {
            // Take the write lock at BEGIN: a read-then-write transaction cannot then fail
            // half-way with "database is locked".
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// A statement that makes concurrent migrators wait for each other, where needed.
    pub fn lock_migrations_sql(self) -> Option<&'static str> {
        match self {
            Dialect::Sqlite => None,
            // Several instances starting at once apply each migration once.
            Dialect::Postgres => Some("SELECT pg_advisory_xact_lock(7228373160913251661)"),
        }
    }

    /// What follows a `SELECT` that claims rows for its transaction while skipping rows
    /// another transaction claimed (a job queue's claim): `FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL; nothing on SQLite, where the transaction's `BEGIN IMMEDIATE` already
    /// holds the database's one write lock.
    #[allow(
        dead_code,
        reason = "for the job queue (issue 28): unused in the binary until it lands"
    )]
    pub fn claim_rows_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Creates the table that records the migrations applied.
    pub fn migrations_table_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "CREATE TABLE IF NOT EXISTS _rhapi_migrations (name TEXT PRIMARY KEY, \
                 applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
            }
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS _rhapi_migrations (name TEXT PRIMARY KEY, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            }
        }
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...`, so that one SQL text runs on SQLite and
/// PostgreSQL alike. Only when values are given and the text has no `$n` of its own (then
/// a `?` is the jsonb operator); `?` inside quotes and comments is left alone.
pub fn numbered_placeholders(sql: &str, values: usize) -> Cow<'_, str> {
    let has_numbered = sql
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'$' && w[1].is_ascii_digit());
    if values == 0 || has_numbered || !sql.contains('?') {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_become_numbered_placeholders() {
        assert_eq!(
            numbered_placeholders("SELECT ? , '?' -- ?\n, ?", 2),
            "SELECT $1 , '?' -- ?\n, $2"
        );
        assert_eq!(
            numbered_placeholders("SELECT $1, data ? 'k'", 1),
            "SELECT $1, data ? 'k'"
        );
        assert_eq!(
            numbered_placeholders("SELECT data ? 'k'", 0),
            "SELECT data ? 'k'"
        );
    }
}
