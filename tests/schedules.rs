//! Schedules: `const SCHEDULE` in a job file makes the server enqueue it at each tick,
//! once across instances, with a missed tick run once at the next start.

use crate::support::*;

/// An app whose `tick` job (on `schedule`) records each run.
fn tick_app(db: &Backend, schedule: &str) -> TestApp {
    let app = TestApp::new();
    let env: String = db.env().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    app.write(".env", &env);
    app.write(
        "migrations/001_ticks.sql",
        "CREATE TABLE ticks (at BIGINT);",
    );
    app.write(
        "jobs/tick.rhai",
        &format!(
            r#"const SCHEDULE = "{schedule}";
            fn run(payload) {{
                if payload != () {{ throw "a tick's payload is ()"; }}
                db::execute("INSERT INTO ticks (at) VALUES (1)");
            }}"#
        ),
    );
    app.write(
        "pages/api/ticks.rhai",
        r#"fn GET(req) { db::query_one("SELECT COUNT(*) AS n FROM ticks").n }"#,
    );
    app
}

#[test]
fn every_ticks_while_the_server_runs() {
    let app = tick_app(&Backend::Sqlite, "@every 1s");
    let server = app.serve("dev", &[]);
    server.poll_until("/api/ticks", |r| {
        r.text().trim().parse::<i64>().is_ok_and(|n| n >= 2)
    });
    let listed = app.run("routes");
    assert!(
        listed
            .stdout
            .contains("jobs/tick.rhai  (schedule: @every 1s)"),
        "{}",
        listed.stdout
    );
}

#[test]
fn a_tick_missed_while_no_server_ran_runs_once_at_the_next_start() {
    let app = tick_app(&Backend::Sqlite, "0 3 * * *");
    app.write(
        "pages/api/rewind.rhai",
        r#"fn GET(req) {
            db::query_one("SELECT COUNT(*) AS n FROM _rhapi_schedules").n
                + db::execute("UPDATE _rhapi_schedules SET last_tick = 0").rows_affected * 10
        }"#,
    );
    let server = app.serve("dev", &[]);
    // The first start sees the schedule and misses nothing.
    let seen = server.poll_until("/api/rewind", |r| r.status == 200 && r.text() == "11");
    assert_eq!(seen.text(), "11");
    assert_eq!(server.get("/api/ticks").text(), "0");
    server.terminate();
    // Days of 03:00 ticks went by (last tick at the epoch): one run for all of them.
    let server = app.serve("dev", &[]);
    server.poll_until("/api/ticks", |r| r.text() == "1");
    let listed = app.run("jobs");
    assert_eq!(listed.stdout, "", "nothing pending: {}", listed.stdout);
    assert_eq!(server.get("/api/ticks").text(), "1");
}

#[test]
fn a_bad_schedule_is_a_load_error_of_the_job() {
    let app = TestApp::new();
    app.write(
        "jobs/nightly.rhai",
        "const SCHEDULE = \"0 3 * *\";\nfn run() {}",
    );
    let out = app.run("check");
    assert!(!out.status.success());
    assert!(out.stderr.contains("jobs/nightly.rhai:1"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("SCHEDULE: '0 3 * *' is not five cron fields"),
        "{}",
        out.stderr
    );
    app.write(
        "jobs/nightly.rhai",
        "const SCHEDULE = \"@every 10m\";\nfn run() {}",
    );
    let out = app.run("check");
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("1 job(s)"), "{}", out.stdout);
}

/// Two instances on one PostgreSQL: each tick is enqueued (and run) once.
#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL (see README)"]
fn two_instances_enqueue_each_tick_once() {
    let db = Backend::postgres_from_env();
    let app = TestApp::new();
    let env: String = db.env().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    app.write(".env", &env);
    app.write(
        "migrations/001_ticks.sql",
        "CREATE TABLE ticks (bucket BIGINT);",
    );
    app.write(
        "jobs/tick.rhai",
        r#"const SCHEDULE = "@every 2s";
        fn run() { db::execute("INSERT INTO ticks (bucket) SELECT floor(extract(epoch from now()) / 2)::bigint"); }"#,
    );
    app.write(
        "pages/api/ticks.rhai",
        r#"fn GET(req) {
            #{ n: db::query_one("SELECT COUNT(*) AS n FROM ticks").n,
               twice: db::query_one("SELECT COUNT(*) AS n FROM (SELECT bucket FROM ticks GROUP BY bucket HAVING COUNT(*) > 1) t").n }
        }"#,
    );
    let a = app.serve("dev", &[]);
    let b = app.serve("dev", &[]);
    let r = a.poll_until("/api/ticks", |r| {
        r.status == 200 && r.json()["n"].as_i64() >= Some(4)
    });
    assert_eq!(r.json()["twice"], 0, "a tick ran twice: {}", r.text());
    drop(b);
}
