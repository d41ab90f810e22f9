//! `db::` against a real SQLite file and a real PostgreSQL server: every test runs on both.
//!
//! PostgreSQL comes from `RHAPI_TEST_POSTGRES_URL` (`.ci/run` starts one and sets it). Each
//! test is written once and run as `<test>::sqlite` and `<test>::postgres`; the PostgreSQL
//! ones are `#[ignore]`d (`cargo test` reports them as ignored, not passed) and run with
//! `cargo test --test tests -- --ignored batteries_db::`, where an unset variable fails them.

use crate::support;

use serde_json::json;
use support::{on_both, Backend, TestApp};

/// Runs `rhapi migrate` on `app` against `db`.
fn migrate(app: &TestApp, db: &Backend) -> std::process::Output {
    let mut cmd = std::process::Command::new(support::bin());
    cmd.arg("migrate")
        .arg(app.path())
        .env_remove("DATABASE_URL");
    for (key, value) in db.env() {
        cmd.env(key, value);
    }
    cmd.output().expect("run rhapi migrate")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An app with a `notes` table made by a migration.
fn notes_app(db: &Backend) -> TestApp {
    let app = TestApp::new();
    app.write(
        "migrations/001_notes.sql",
        &format!(
            "CREATE TABLE notes ({}, title TEXT NOT NULL, body TEXT, done BOOLEAN NOT NULL DEFAULT FALSE);",
            db.id_column()
        ),
    );
    app
}

fn crud_with_bound_parameters(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "pages/api/notes.rhai",
        &format!(
            r#"
fn POST(req) {{
let r = db::execute("{insert}", [req.body.title, req.body.body]);
#{{ rows_affected: r.rows_affected, has_id: r.last_insert_id != () }}
}}
fn GET(req) {{ db::query("SELECT id, title, body, done FROM notes ORDER BY id", []) }}
fn PUT(req) {{ db::execute("{update}", [req.body.done, req.body.title]) }}
fn DELETE(req) {{ db::execute("{delete}", [req.query.title]).rows_affected }}
"#,
            insert = db.sql("INSERT INTO notes (title, body) VALUES (?, ?)"),
            update = db.sql("UPDATE notes SET done = ? WHERE title = ?"),
            delete = db.sql("DELETE FROM notes WHERE title = ?"),
        ),
    );
    let server = db.serve(&app, "dev", &[]);
    let name = db.name();

    let created = server.post_json("/api/notes", r#"{"title":"first","body":null}"#);
    assert_eq!(created.status, 200, "{name}: {}", created.text());
    // SQLite reports the new rowid; PostgreSQL has no such thing (use RETURNING).
    assert_eq!(
        created.json(),
        json!({ "rows_affected": 1, "has_id": !db.is_pg() }),
        "{name}"
    );

    // A value that would break spliced SQL is stored as it is.
    let tricky = "x'); DROP TABLE notes; --";
    let created = server.post_json(
        "/api/notes",
        &json!({ "title": tricky, "body": "b" }).to_string(),
    );
    assert_eq!(created.status, 200, "{name}: {}", created.text());

    let updated = server.request(
        "PUT",
        "/api/notes",
        &[("content-type", "application/json")],
        br#"{"title":"first","done":true}"#,
    );
    assert_eq!(
        updated.json()["rows_affected"],
        1,
        "{name}: {}",
        updated.text()
    );

    let list = server.get("/api/notes").json();
    assert_eq!(
        list,
        json!([
            { "id": 1, "title": "first", "body": null, "done": true },
            { "id": 2, "title": tricky, "body": "b", "done": false },
        ]),
        "{name}"
    );

    let deleted = server.request("DELETE", "/api/notes?title=first", &[], b"");
    assert_eq!(deleted.json(), json!(1), "{name}");
    assert_eq!(
        server.get("/api/notes").json().as_array().unwrap().len(),
        1,
        "{name}"
    );
}
on_both!(crud_with_bound_parameters);

fn types_map_to_script_values(db: Backend) {
    let app = TestApp::new();
    let select = if db.is_pg() {
        "SELECT 42 AS int, CAST(1.5 AS DOUBLE PRECISION) AS float, 'hi' AS text, TRUE AS flag, \
         NULL AS missing, CAST('ab' AS BYTEA) AS blob, 12.50::NUMERIC(10,2) AS price, \
         TIMESTAMPTZ '2024-01-02 03:04:05+00' AS at, DATE '2024-02-29' AS day, \
         CAST('{\"a\":[1,2]}' AS JSONB) AS doc, $1::BIGINT + 1 AS next, \
         $2::TIMESTAMPTZ AS param_at, $3::UUID AS id"
    } else {
        "SELECT 42 AS int, 1.5 AS float, 'hi' AS text, NULL AS missing, CAST('ab' AS BLOB) AS blob, \
         ? + 1 AS next"
    };
    app.write(
        "pages/api/types.rhai",
        &format!(
            r#"fn GET() {{
let row = db::query_one("{select}", ["41", "2024-05-01T10:00:00+02:00", "6f1c9c2e-8a4b-4d35-9d0b-2a1f5d2c7e10"]);
#{{ row: row, types: row.values().map(|v| type_of(v)), has_missing: "missing" in row,
    blob_len: row.blob.len() }}
}}"#,
            select = select.replace('"', "\\\"")
        ),
    );
    let app_sqlite_params = !db.is_pg();
    if app_sqlite_params {
        // SQLite takes as many values as it has placeholders.
        let source = std::fs::read_to_string(app.path().join("pages/api/types.rhai")).unwrap();
        app.write(
            "pages/api/types.rhai",
            &source.replace(
                r#"["41", "2024-05-01T10:00:00+02:00", "6f1c9c2e-8a4b-4d35-9d0b-2a1f5d2c7e10"]"#,
                "[41]",
            ),
        );
    }
    let server = db.serve(&app, "dev", &[]);
    let response = server.get("/api/types");
    assert_eq!(response.status, 200, "{}: {}", db.name(), response.text());
    let body = response.json();
    let row = &body["row"];
    assert_eq!(row["int"], 42);
    assert_eq!(row["float"], 1.5);
    assert_eq!(row["text"], "hi");
    assert_eq!(row["missing"], json!(null));
    assert_eq!(
        body["has_missing"], true,
        "a NULL column is still in the row"
    );
    assert_eq!(body["blob_len"], 2);
    assert_eq!(row["next"], 42);
    if db.is_pg() {
        assert_eq!(row["flag"], true);
        assert_eq!(row["price"], 12.5);
        assert_eq!(row["at"], "2024-01-02T03:04:05Z");
        assert_eq!(row["day"], "2024-02-29");
        assert_eq!(row["doc"], json!({ "a": [1, 2] }));
        assert_eq!(row["param_at"], "2024-05-01T08:00:00Z");
        assert_eq!(row["id"], "6f1c9c2e-8a4b-4d35-9d0b-2a1f5d2c7e10");
    }
    let types = body["types"].as_array().unwrap();
    assert!(types.contains(&json!("blob")), "{types:?}");
    assert!(types.contains(&json!("i64")), "{types:?}");
    assert!(types.contains(&json!("f64")), "{types:?}");
}
on_both!(types_map_to_script_values);

fn query_one_of_nothing_is_unit(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "pages/api/one.rhai",
        &format!(
            r#"fn GET(req) {{ let row = db::query_one("{sql}", [req.query.id]); if row == () {{ throw #{{ status: 404, error: "no note" }} }} row }}"#,
            sql = db.sql("SELECT title FROM notes WHERE id = ?")
        ),
    );
    let server = db.serve(&app, "dev", &[]);
    let response = server.get("/api/one?id=7");
    assert_eq!(response.status, 404, "{}: {}", db.name(), response.text());
    assert_eq!(response.json()["error"], "no note");
}
on_both!(query_one_of_nothing_is_unit);

fn transactions_commit_or_roll_back_and_rethrow(db: Backend) {
    let app = notes_app(&db);
    let insert = db.sql("INSERT INTO notes (title) VALUES (?)");
    app.write(
        "pages/api/tx.rhai",
        &format!(
            r#"
fn POST(req) {{
let fail = req.body.fail;
let outcome = "";
try {{
    let value = db::transaction(|| {{
        db::execute("{insert}", ["one"]);
        db::execute("{insert}", ["two"]);
        if fail {{ throw "changed my mind"; }}
        "committed"
    }});
    outcome = value;
}} catch (err) {{
    outcome = `rolled back: ${{err}}`;
}}
#{{ outcome: outcome, count: db::query_one("SELECT COUNT(*) AS n FROM notes", []).n }}
}}
"#
        ),
    );
    let server = db.serve(&app, "dev", &[]);
    let name = db.name();
    let failed = server.post_json("/api/tx", r#"{"fail":true}"#);
    assert_eq!(
        failed.json(),
        json!({ "outcome": "rolled back: changed my mind", "count": 0 }),
        "{name}: {}",
        failed.text()
    );
    let committed = server.post_json("/api/tx", r#"{"fail":false}"#);
    assert_eq!(
        committed.json(),
        json!({ "outcome": "committed", "count": 2 }),
        "{name}"
    );
}
on_both!(transactions_commit_or_roll_back_and_rethrow);

fn an_uncaught_error_in_a_transaction_is_a_500_and_rolls_back(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "pages/api/tx.rhai",
        &format!(
            r#"
fn POST() {{ db::transaction(|| {{ db::execute("{insert}", ["x"]); db::query("SELECT * FROM missing_table", []); }}); }}
fn GET() {{ db::query_one("SELECT COUNT(*) AS n FROM notes", []).n }}
"#,
            insert = db.sql("INSERT INTO notes (title) VALUES (?)")
        ),
    );
    let server = db.serve(&app, "dev", &[]);
    let response = server.post_json("/api/tx", "{}");
    assert_eq!(response.status, 500, "{}", db.name());
    let body = response.json();
    assert!(
        body["error"].as_str().unwrap().contains("missing_table"),
        "{body}"
    );
    assert_eq!(body["file"], "pages/api/tx.rhai");
    assert_eq!(server.get("/api/tx").json(), json!(0), "{}", db.name());
}
on_both!(an_uncaught_error_in_a_transaction_is_a_500_and_rolls_back);

fn sql_errors_are_catchable_script_errors(db: Backend) {
    let app = TestApp::new();
    app.write(
        "pages/api/bad.rhai",
        r#"fn GET() {
            let message = "";
            try { db::query("SELEKT 1", []); } catch (err) { message = err; }
            message
        }"#,
    );
    let server = db.serve(&app, "dev", &[]);
    let text = server.get("/api/bad").text();
    assert!(text.starts_with("db::query: "), "{}: {text}", db.name());
    assert!(
        text.to_lowercase().contains("syntax error"),
        "{}: {text}",
        db.name()
    );
}
on_both!(sql_errors_are_catchable_script_errors);

fn migrations_apply_once_in_name_order(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "migrations/002_seed.sql",
        "INSERT INTO notes (title) VALUES ('seeded');\nINSERT INTO notes (title) VALUES ('seeded too');\n",
    );
    app.write(
        "pages/api/state.rhai",
        r#"fn GET() {
            #{ notes: db::query_one("SELECT COUNT(*) AS n FROM notes", []).n,
               applied: db::query("SELECT name FROM _rhapi_migrations ORDER BY name", []).map(|r| r.name) }
        }"#,
    );
    let expected = json!({ "notes": 2, "applied": ["001_notes.sql", "002_seed.sql"] });
    {
        let server = db.serve(&app, "start", &[]);
        assert_eq!(server.get("/api/state").json(), expected, "{}", db.name());
    }
    // A second start (and `rhapi migrate`) applies nothing again.
    let server = db.serve(&app, "dev", &[]);
    assert_eq!(server.get("/api/state").json(), expected, "{}", db.name());
    drop(server);
    let output = migrate(&app, &db);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("0 migration(s) applied"),
        "{}",
        stdout(&output)
    );

    // A new file is applied by `rhapi migrate`.
    app.write(
        "migrations/003_more.sql",
        "INSERT INTO notes (title) VALUES ('third');",
    );
    let output = migrate(&app, &db);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 migration(s) applied"),
        "{}",
        stdout(&output)
    );
}
on_both!(migrations_apply_once_in_name_order);

fn a_failing_migration_stops_start_and_is_rolled_back(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "migrations/002_broken.sql",
        "INSERT INTO notes (title) VALUES ('half');\nINSERT INTO no_such_table VALUES (1);\n",
    );
    app.write(
        "pages/api/n.rhai",
        r#"fn GET() { db::query_one("SELECT COUNT(*) AS n FROM notes", []).n }"#,
    );
    let output = migrate(&app, &db);
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("migrations/002_broken.sql"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("no_such_table"),
        "{}",
        stderr(&output)
    );
    // 001 was applied in its own transaction; 002 left nothing behind.
    app.remove("migrations/002_broken.sql");
    let server = db.serve(&app, "dev", &[]);
    assert_eq!(server.get("/api/n").json(), json!(0), "{}", db.name());
}
on_both!(a_failing_migration_stops_start_and_is_rolled_back);

#[test]
fn sqlite_file_is_created_under_the_app_and_database_url_changes_take_effect() {
    let app = TestApp::new();
    app.write(".env", "DATABASE_URL=sqlite:data/one.db\n");
    app.write(
        "pages/api/which.rhai",
        r#"fn GET() {
            db::execute("CREATE TABLE IF NOT EXISTS t (v TEXT)", []);
            let row = db::query_one("SELECT v FROM t", []);
            if row == () { db::execute("INSERT INTO t VALUES (?)", [env::DATABASE_URL]); return env::DATABASE_URL; }
            row.v
        }"#,
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/which").text(), "sqlite:data/one.db");
    assert!(app.path().join("data/one.db").is_file());
    app.write(".env", "DATABASE_URL=sqlite:data/two.db\n");
    server.poll_until("/api/which", |r| r.text() == "sqlite:data/two.db");
    assert!(app.path().join("data/two.db").is_file());
}

#[test]
fn default_database_is_data_app_db() {
    let app = TestApp::new();
    app.write(
        "pages/api/x.rhai",
        r#"fn GET() { db::execute("CREATE TABLE t (v)", []).rows_affected }"#,
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/x").json(), json!(0));
    assert!(app.path().join("data/app.db").is_file());
}

#[test]
fn a_database_that_is_down_is_a_500_without_the_password() {
    // Nothing listens on this port: the connection is refused.
    let port = support::free_port();
    let url = format!("postgres://app:supersecretpw@127.0.0.1:{port}/app");
    let app = TestApp::new();
    app.write(
        "pages/api/x.rhai",
        r#"fn GET() { db::query("SELECT 1", []) }"#,
    );
    let server = app.serve_with_env("dev", &[], &[("DATABASE_URL", &url)]);
    let response = server.get("/api/x");
    assert_eq!(response.status, 500);
    let body = response.text();
    assert!(body.contains("cannot connect to the database"), "{body}");
    assert!(!body.contains("supersecretpw"), "{body}");
    server.sync_log();
    assert!(
        !server.log_text().contains("supersecretpw"),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_database_that_never_answers_is_bounded_by_the_budget() {
    // This listener accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut streams = Vec::new();
        for stream in listener.incoming().take(4) {
            streams.push(stream);
        }
    });
    let url = format!("postgres://app:supersecretpw@127.0.0.1:{port}/app");
    let app = TestApp::new();
    app.write(
        "pages/api/x.rhai",
        r#"fn GET() { db::query("SELECT 1", []) }"#,
    );
    let server = app.serve_with_env("start", &["--timeout", "1s"], &[("DATABASE_URL", &url)]);
    let response = server.get("/api/x");
    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(response.json(), json!({ "error": "Script timed out" }));
    server.sync_log();
    assert!(!server.log_text().contains("supersecretpw"));
    drop(held);
}

fn question_mark_placeholders_run_on_every_backend(db: Backend) {
    let app = notes_app(&db);
    // One SQL text for both: `?` (PostgreSQL gets `$1, $2`), a `?` in a literal kept.
    app.write(
        "pages/api/same.rhai",
        r#"fn GET() {
    db::execute("INSERT INTO notes (title, body) VALUES (?, ?)", ["a", "b?"]);
    db::query_one("SELECT title, body, '?' AS mark FROM notes WHERE title = ? AND body = ?", ["a", "b?"])
}"#,
    );
    let server = db.serve(&app, "dev", &[]);
    let response = server.get("/api/same");
    assert_eq!(response.status, 200, "{}: {}", db.name(), response.text());
    assert_eq!(
        response.json(),
        serde_json::json!({ "title": "a", "body": "b?", "mark": "?" }),
        "{}",
        db.name()
    );
}
on_both!(question_mark_placeholders_run_on_every_backend);

/// docs/batteries.md, "Migrations": a file that begins or ends a transaction itself is
/// refused before any file runs, by `migrate`, `start` and `check`.
fn a_migration_that_commits_is_refused_before_any_runs(db: Backend) {
    let app = notes_app(&db);
    app.write(
        "migrations/002_half.sql",
        "INSERT INTO notes (title) VALUES ('half; COMMIT');\n  commit;\nINSERT INTO no_such_table VALUES (1);\n",
    );
    app.write(
        "pages/api/n.rhai",
        r#"fn GET() { db::query_one("SELECT COUNT(*) AS n FROM notes", []).n }"#,
    );
    let reason = "migrations/002_half.sql:2: COMMIT as a statement";
    let output = migrate(&app, &db);
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(stderr(&output).contains(reason), "{}", stderr(&output));
    let check = app.run("check");
    assert_eq!(check.status.code(), Some(1), "{}", check.stderr);
    assert!(check.stderr.contains(reason), "{}", check.stderr);
    let mut cmd = std::process::Command::new(support::bin());
    cmd.args(["start", &app.path().display().to_string(), "--port", "0"])
        .env_remove("DATABASE_URL")
        .envs(db.env());
    let start = support::run_with_deadline(cmd);
    assert_eq!(start.status.code(), Some(1), "{}", start.stderr);
    assert!(start.stderr.contains(reason), "{}", start.stderr);

    // Nothing ran: once the file is fixed, 001 applies and 002's first insert never happened.
    app.write(
        "migrations/002_half.sql",
        "INSERT INTO notes (title) VALUES ('whole');\n",
    );
    let server = db.serve(&app, "dev", &[]);
    assert_eq!(server.get("/api/n").json(), json!(1), "{}", db.name());
}
on_both!(a_migration_that_commits_is_refused_before_any_runs);

#[test]
fn a_trigger_body_begin_end_is_allowed_in_a_migration() {
    let app = notes_app(&Backend::Sqlite);
    app.write(
        "migrations/002_count.sql",
        "CREATE TABLE counts (n INTEGER NOT NULL);\nINSERT INTO counts VALUES (0);\n\
         CREATE TRIGGER count_notes AFTER INSERT ON notes\nBEGIN\n  \
         UPDATE counts SET n = n + CASE WHEN new.done THEN 10 ELSE 1 END;\nEND;\n",
    );
    app.write(
        "pages/api/n.rhai",
        r#"fn POST() { db::execute("INSERT INTO notes (title) VALUES ('a')", []); db::query_one("SELECT n FROM counts", []).n }"#,
    );
    let check = app.run("check");
    assert_eq!(check.status.code(), Some(0), "{}", check.stderr);
    let server = app.serve("start", &[]);
    assert_eq!(server.post_json("/api/n", "{}").json(), json!(1));
}
