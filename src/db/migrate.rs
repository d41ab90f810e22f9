//! Migrations: `migrations/*.sql` under the app dir, applied in byte order of their names,
//! each file in its own transaction, recorded in `_rhapi_migrations` so none runs twice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::database::in_transaction;
use super::{Database, Databases, DbError, Target};
use crate::app_files::{AppFiles, Kind};
use crate::env::EnvVars;

/// Time each migration statement may take (migrations run outside requests).
const STATEMENT_BUDGET: Duration = Duration::from_secs(60);

/// Applies the app's migrations to the database `env` names (at start, on reload and for
/// `rhapi migrate`); returns the files applied now. An app without `migrations/` is left
/// alone. The error is a message with env values redacted.
pub fn apply(app_dir: &Path, env: &EnvVars, databases: &Databases) -> Result<Vec<String>, String> {
    let target = Target::from_env(app_dir, env).map_err(|err| err.to_string())?;
    if !AppFiles::open(app_dir).has_folder("migrations") {
        return Ok(Vec::new());
    }
    let db = databases.open(&target).map_err(|err| err.to_string())?;
    run(app_dir, &db).map_err(|err| crate::env::redact(&err.to_string()))
}

/// A migration that failed (the ones before it stay applied), or a file refused before any
/// ran.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("migration {file}: {error}")]
    Failed { file: String, error: DbError },
    /// A file that controls its own transaction: a `COMMIT` in it would make the statements
    /// after it run outside the file's transaction (half-applied when one fails).
    #[error(
        "{file}:{line}: {keyword} as a statement: each migration file already runs in a \
         transaction of its own (all or nothing), so it must not begin or end one; remove it \
         (a trigger's BEGIN ... END is fine)"
    )]
    OwnTransaction {
        file: String,
        line: usize,
        keyword: &'static str,
    },
}

/// The `.sql` files of `app_dir/migrations`, sorted by the bytes of their names.
fn files(app_dir: &Path) -> Result<Vec<(String, PathBuf)>, MigrationError> {
    let scan = AppFiles::open(app_dir).scan();
    if let Some(err) = scan.migrations_error {
        return Err(MigrationError::Failed {
            file: "migrations/".into(),
            error: DbError::Unreadable(format!("the folder: {err}")),
        });
    }
    let name = |path: &Path| {
        path.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into()
    };
    let found = scan.of(Kind::Migration);
    Ok(found.map(|f| (name(&f.path), f.path.clone())).collect())
}

/// Applies the migrations of `app_dir` not applied yet; returns the names applied now.
/// An app without `migrations/` never opens its database here.
pub fn run(app_dir: &Path, db: &Database) -> Result<Vec<String>, MigrationError> {
    let (app, files) = (AppFiles::open(app_dir), files(app_dir)?);
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let budget = crate::script::context::remaining()
        .filter(|left| !left.is_zero())
        .unwrap_or(STATEMENT_BUDGET);
    let fail = |file: &str| {
        let file = format!("migrations/{file}");
        move |error: DbError| MigrationError::Failed { file, error }
    };
    // Every file is checked before any runs: a refused file never leaves the set half done.
    let mut sources = Vec::with_capacity(files.len());
    for (name, path) in files {
        let sql = app
            .read_to_string(&path)
            .map_err(|err| DbError::Unreadable(format!("the file: {err}")))
            .map_err(fail(&name))?;
        check_source(&name, &sql)?;
        sources.push((name, sql));
    }
    let mut pooled = db.get(budget).map_err(fail(""))?;
    pooled
        .as_dyn()
        .batch(db.dialect().migrations_table_sql(), budget)
        .map_err(fail("(creating _rhapi_migrations)"))?;
    let mut applied = Vec::new();
    for (name, sql) in sources {
        let done = in_transaction(&mut pooled, budget, |conn| {
            let conn = conn.as_dyn();
            if let Some(lock) = conn.dialect().lock_migrations_sql() {
                conn.batch(lock, budget)?;
            }
            let seen = conn.query(
                &db.dialect()
                    .placeholders("SELECT 1 AS seen FROM _rhapi_migrations WHERE name = ?"),
                &[name.clone().into()],
                budget,
            )?;
            if !seen.is_empty() {
                return Ok(false);
            }
            conn.batch(&sql, budget)?;
            conn.execute(
                &db.dialect()
                    .placeholders("INSERT INTO _rhapi_migrations (name) VALUES (?)"),
                &[name.clone().into()],
                budget,
            )?;
            Ok(true)
        })
        .map_err(fail(&name))?;
        if done {
            tracing::info!("applied migration {name}");
            applied.push(name);
        }
    }
    Ok(applied)
}

/// The migration files' mistakes that need no database (`rhapi check`): a file that
/// controls its own transaction, or that cannot be read.
pub fn check(app_dir: &Path) -> Vec<MigrationError> {
    let app = AppFiles::open(app_dir);
    let files = match files(app_dir) {
        Ok(files) => files,
        Err(err) => return vec![err],
    };
    files
        .into_iter()
        .filter_map(|(name, path)| match app.read_to_string(&path) {
            Ok(sql) => check_source(&name, &sql).err(),
            Err(err) => Some(MigrationError::Failed {
                file: format!("migrations/{name}"),
                error: DbError::Unreadable(format!("the file: {err}")),
            }),
        })
        .collect()
}

/// Refuses a file with a transaction statement (see [`transaction_statement`]).
fn check_source(name: &str, sql: &str) -> Result<(), MigrationError> {
    match transaction_statement(sql) {
        Some((line, keyword)) => Err(MigrationError::OwnTransaction {
            file: format!("migrations/{name}"),
            line,
            keyword,
        }),
        None => Ok(()),
    }
}

/// Statements that begin or end a transaction (`ABORT` is PostgreSQL's `ROLLBACK`).
const TRANSACTION_KEYWORDS: [&str; 5] = ["BEGIN", "COMMIT", "ROLLBACK", "END", "ABORT"];

/// The line and keyword of the first statement of `sql` that begins or ends a transaction.
///
/// Only a statement's first word counts: words inside strings, quoted names and comments
/// are skipped, and the `BEGIN ... END` body of `CREATE TRIGGER` (SQLite) or of a
/// `CREATE FUNCTION`/`PROCEDURE ... BEGIN ATOMIC` (PostgreSQL) is part of that statement,
/// with its inner `;` and any `CASE ... END`. Dollar-quoted bodies (`$$ ... $$`) are strings.
fn transaction_statement(sql: &str) -> Option<(usize, &'static str)> {
    // Inside a trigger body or a CASE: `;` does not end the statement.
    let mut depth = 0usize;
    let mut first = true;
    // The statement is `CREATE TRIGGER|FUNCTION|PROCEDURE`: its BEGIN opens a body.
    let mut creates = false;
    let mut has_body = false;
    for token in Words::new(sql) {
        let Token::Word(word, line) = token else {
            if depth == 0 {
                (first, creates, has_body) = (true, false, false);
            }
            continue;
        };
        let word = word.to_ascii_uppercase();
        if first {
            first = false;
            creates = word == "CREATE";
            if let Some(keyword) = TRANSACTION_KEYWORDS.iter().find(|k| **k == word) {
                return Some((line, keyword));
            }
            continue;
        }
        match word.as_str() {
            "TRIGGER" | "FUNCTION" | "PROCEDURE" if creates => has_body = true,
            "BEGIN" if has_body => depth += 1,
            "CASE" => depth += 1,
            "END" => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// What [`Words`] yields: a word and its 1-based line, or the end of a statement (`;`).
enum Token<'a> {
    Word(&'a str, usize),
    Semicolon,
}

/// The words and `;` of SQL text, skipping comments, strings and quoted names.
struct Words<'a> {
    sql: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Words<'a> {
        Words {
            sql,
            at: 0,
            line: 1,
        }
    }

    /// Moves past everything up to and including `end` (or to the end of the text).
    fn skip_past(&mut self, end: &str) {
        let rest = &self.sql[self.at..];
        let len = rest.find(end).map_or(rest.len(), |i| i + end.len());
        self.line += rest[..len].matches('\n').count();
        self.at += len;
    }

    /// Moves past a quoted string or name opened at `self.at` by `quote` (a doubled quote
    /// inside is the quote itself).
    fn skip_quoted(&mut self, quote: char) {
        self.at += 1;
        loop {
            self.skip_past(quote.encode_utf8(&mut [0; 4]));
            if !self.sql[self.at..].starts_with(quote) {
                return;
            }
            self.at += 1;
        }
    }

    /// `$tag$` at `self.at`, PostgreSQL's dollar quote, if that is what starts there.
    fn dollar_tag(&self) -> Option<&'a str> {
        let rest = &self.sql[self.at + 1..];
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
        let starts_with_digit = rest.starts_with(|c: char| c.is_ascii_digit());
        (rest[len..].starts_with('$') && !starts_with_digit)
            .then(|| &self.sql[self.at..self.at + len + 2])
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let rest = &self.sql[self.at..];
            let c = rest.chars().next()?;
            match c {
                ';' => {
                    self.at += 1;
                    return Some(Token::Semicolon);
                }
                '-' if rest.starts_with("--") => self.skip_past("\n"),
                '/' if rest.starts_with("/*") => self.skip_past("*/"),
                '\'' | '"' | '`' => self.skip_quoted(c),
                '[' => self.skip_past("]"),
                '$' => match self.dollar_tag() {
                    Some(tag) => {
                        self.at += tag.len();
                        self.skip_past(tag);
                    }
                    None => self.at += 1,
                },
                c if c.is_alphanumeric() || c == '_' => {
                    let len = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                        .unwrap_or(rest.len());
                    self.at += len;
                    return Some(Token::Word(&rest[..len], self.line));
                }
                c => {
                    self.line += usize::from(c == '\n');
                    self.at += c.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_statements_are_found() {
        for (sql, found) in [
            ("BEGIN;\nCREATE TABLE a (x);\nCOMMIT;", (1, "BEGIN")),
            ("CREATE TABLE a (x);\n  commit;\nCREATE TABLE b (x);", (2, "COMMIT")),
            ("-- setup\nCREATE TABLE a (x);\nROLLBACK", (3, "ROLLBACK")),
            ("CREATE TABLE a (x);END TRANSACTION;", (1, "END")),
            ("begin immediate;", (1, "BEGIN")),
            ("/* BEGIN; */ CREATE TABLE a (x);\n\nABORT;", (3, "ABORT")),
            // After a whole trigger, a COMMIT is a statement again.
            (
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\nEND;\nCOMMIT;",
                (4, "COMMIT"),
            ),
        ] {
            assert_eq!(transaction_statement(sql), Some(found), "{sql}");
        }
    }

    #[test]
    fn words_that_are_not_statements_are_allowed() {
        for sql in [
            "CREATE TABLE events (id INTEGER, name TEXT DEFAULT 'BEGIN; COMMIT;');",
            "INSERT INTO log (note) VALUES ('it''s; END');",
            "CREATE TABLE \"commit\" (x); CREATE TABLE `end` (x); CREATE TABLE [begin] (x);",
            "-- COMMIT;\nCREATE TABLE a (x); /* ROLLBACK; */",
            "CREATE TRIGGER touch AFTER UPDATE ON notes\nBEGIN\n  UPDATE notes SET at = CASE WHEN new.x THEN 1 ELSE 2 END WHERE id = new.id;\n  INSERT INTO log VALUES (1);\nEND;\nCREATE TABLE b (x);",
            "CREATE TEMP TRIGGER t BEFORE DELETE ON a FOR EACH ROW WHEN old.x > 0 BEGIN SELECT RAISE(ABORT, 'no'); END;",
            "CREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;",
            "CREATE FUNCTION g() RETURNS trigger AS $body$ BEGIN RETURN NEW; END; $body$ LANGUAGE plpgsql;",
            "CREATE FUNCTION h() RETURNS int LANGUAGE SQL BEGIN ATOMIC SELECT 1; SELECT 2; END;",
            "SELECT CASE WHEN 1 THEN 2 END; UPDATE a SET x = $1;",
            "CREATE TABLE spans (begin_at TEXT, ended TEXT);",
        ] {
            assert_eq!(transaction_statement(sql), None, "{sql}");
        }
    }
}
