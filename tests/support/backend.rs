//! The databases a `db::` test runs against: SQLite (a file in the test app) and PostgreSQL
//! (a schema of its own on the server `RHAPI_TEST_POSTGRES_URL` names, which `.ci/run`
//! starts). [`on_both!`] runs a test written once on each; the PostgreSQL twin is
//! `#[ignore]`d, so that without a server it shows as ignored, never as passed.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Server, TestApp};

/// One database a test runs against.
pub enum Backend {
    Sqlite,
    /// A schema of its own on the test server, dropped at the end.
    Postgres {
        url: String,
        base: String,
        schema: String,
    },
}

impl Backend {
    /// The test PostgreSQL server; a test that needs one fails (never passes quietly) when
    /// `RHAPI_TEST_POSTGRES_URL` is unset. Those tests are `#[ignore]`d: `cargo test --
    /// --ignored` runs them, as `.ci/run` does once it has started a server.
    pub fn postgres_from_env() -> Backend {
        match std::env::var("RHAPI_TEST_POSTGRES_URL") {
            Ok(base) if !base.is_empty() => Backend::postgres(&base),
            _ => panic!(
                "RHAPI_TEST_POSTGRES_URL is unset: start a server with `eval \"$(.ci/postgres start)\"` (see README)"
            ),
        }
    }

    pub fn postgres(base: &str) -> Backend {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut client =
            postgres::Client::connect(base, postgres::NoTls).expect("connect to test PostgreSQL");
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .expect("create schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Backend::Postgres {
            url,
            base: base.to_string(),
            schema,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }

    /// SQL written with `?` placeholders, in this backend's style.
    pub fn sql(&self, sql: &str) -> String {
        if !self.is_pg() {
            return sql.to_string();
        }
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    /// An auto-increment primary key column.
    pub fn id_column(&self) -> &'static str {
        if self.is_pg() {
            "id BIGSERIAL PRIMARY KEY"
        } else {
            "id INTEGER PRIMARY KEY AUTOINCREMENT"
        }
    }

    pub fn env(&self) -> Vec<(&str, &str)> {
        match self {
            Backend::Sqlite => vec![],
            Backend::Postgres { url, .. } => vec![("DATABASE_URL", url.as_str())],
        }
    }

    pub fn serve(&self, app: &TestApp, command: &str, args: &[&str]) -> Server {
        app.serve_with_env(command, args, &self.env())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::Postgres { base, schema, .. } = self {
            if let Ok(mut client) = postgres::Client::connect(base, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// `name_of_test::sqlite` and `name_of_test::postgres` for a test written once as
/// `fn name_of_test(db: Backend)`. The PostgreSQL one is ignored unless asked for: without a
/// server it would fail, and a skip must not look like a pass.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::support::Backend::Sqlite)
            }

            #[test]
            #[ignore = "needs RHAPI_TEST_POSTGRES_URL (see README)"]
            fn postgres() {
                super::$name($crate::support::Backend::postgres_from_env())
            }
        }
    };
}

pub(crate) use on_both;
