//! docs/reference.md, "Time and cache": `time::` reads the app's clock and RFC 3339 text,
//! `cache::` is one bounded, least-recently-used cache per app that copies values in and out,
//! and `rhapi test` catches mail (`sent_mail()`) and freezes the clock (`set_time(ms)`).

use crate::support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Server, TestApp, DEADLINE};

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An app with these routes (`pages/api/<name>.rhai`).
fn app_with(routes: &[(&str, &str)]) -> TestApp {
    let app = TestApp::new();
    for (name, source) in routes {
        app.write(&format!("pages/api/{name}.rhai"), source);
    }
    app
}

#[test]
fn time_reads_the_clock_and_rfc_3339() {
    let app = app_with(&[
        (
            "time",
            r#"
fn GET() {
    let t = 1796479200000;
    #{
        now: time::now(),
        iso: time::iso(t),
        before_1970: time::iso(-1),
        offset: time::parse("2026-12-05T19:30:00.250+05:30"),
        date: time::parse("2026-12-05"),
        leap_day: time::parse("2024-02-29T12:00:00Z"),
        later: time::add(t, "10m"),
        earlier: time::add(t, "-1d"),
        ms: time::add(t, -1),
    }
}
"#,
        ),
        (
            "bad",
            r#"
fn GET() {
    let errors = [];
    try { time::parse("2026-12-05T14:00:00"); } catch (e) { errors.push(e); }
    try { time::parse("2026-02-29"); } catch (e) { errors.push(e); }
    try { time::parse("yesterday"); } catch (e) { errors.push(e); }
    try { time::iso(9223372036854775807); } catch (e) { errors.push(e); }
    try { time::add(253402300799999, "1ms"); } catch (e) { errors.push(e); }
    try { time::add(0, "soon"); } catch (e) { errors.push(e); }
    try { time::add(0, 1.5); } catch (e) { errors.push(e); }
    errors
}
"#,
        ),
        (
            "uncaught",
            "fn GET() {\n    time::parse(\"12/05/2026\")\n}\n",
        ),
    ]);
    let server = app.serve("dev", &[]);
    let before = system_ms();
    let r = server.get("/api/time");
    let after = system_ms();
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let now = j["now"].as_i64().unwrap();
    assert!(before <= now && now <= after, "{before} {now} {after}");
    let t = 1_796_479_200_000_i64;
    assert_eq!(j["iso"], "2026-12-05T14:00:00.000Z");
    assert_eq!(j["before_1970"], "1969-12-31T23:59:59.999Z");
    assert_eq!(j["offset"], t + 250);
    assert_eq!(j["date"], t - 14 * 3_600_000);
    assert_eq!(j["leap_day"], 1_709_208_000_000_i64);
    assert_eq!(j["later"], t + 600_000);
    assert_eq!(j["earlier"], t - 86_400_000);
    assert_eq!(j["ms"], t - 1);

    let r = server.get("/api/bad");
    assert_eq!(r.status, 200, "{}", r.text());
    let errors: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap_or("?").to_string())
        .collect();
    let expected = [
        "has no time zone: add Z for UTC or an offset",
        "'2026-02-29' is not an RFC 3339 date",
        "'yesterday' is not an RFC 3339 date",
        "time::iso: 9223372036854775807 is out of range",
        "time::add: 253402300800000 is out of range",
        "time::add: 'soon' is not a duration",
        "the duration must be a string",
    ];
    for (error, want) in errors.iter().zip(expected) {
        assert!(error.contains(want), "{error:?} should say {want:?}");
    }
    assert_eq!(errors.len(), expected.len());

    // Uncaught, it is the route's error, at the line of the call.
    let r = server.get("/api/uncaught");
    assert_eq!(r.status, 500);
    let j = r.json();
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("'12/05/2026' is not an RFC 3339"),
        "{j}"
    );
    assert_eq!(
        (j["file"].as_str(), j["line"].as_i64()),
        (Some("pages/api/uncaught.rhai"), Some(2))
    );
}

/// A route per cache call, over `key` from the query and the body as the value.
fn cache_app(toml: &str) -> TestApp {
    let app = app_with(&[
        (
            "set",
            r#"
fn POST(req) {
    if req.query.ttl == () { cache::set(req.query.key, req.body) } else { cache::set(req.query.key, req.body, req.query.ttl) }
    #{ ok: true }
}
"#,
        ),
        (
            "fill",
            r#"
// Entries k{1000 + from} to k{1000 + to - 1}, each a string of 400 characters.
fn POST(req) {
    let value = "";
    value.pad(400, 'x');
    for i in parse_int(req.query.from)..parse_int(req.query.to) {
        cache::set(`k${1000 + i}`, value);
    }
    #{ ok: true }
}
"#,
        ),
        (
            "get",
            "fn GET(req) { #{ value: cache::get(req.query.key) } }\n",
        ),
        (
            "delete",
            "fn POST(req) { cache::delete(req.query.key); #{ ok: true } }\n",
        ),
        (
            "present",
            r#"
// Which of the first n entries of `fill` are cached (reading each, in order, makes it
// the most recently used).
fn GET(req) {
    let found = [];
    for i in 0..parse_int(req.query.n) {
        if type_of(cache::get(`k${1000 + i}`)) != "()" { found.push(i); }
    }
    found
}
"#,
        ),
    ]);
    app.write("rhapi.toml", toml);
    app
}

fn present(server: &Server, n: usize) -> Vec<i64> {
    let r = server.get(&format!("/api/present?n={n}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

#[test]
fn the_cache_is_shared_by_routes_and_copies_values_in_and_out() {
    let app = cache_app("");
    app.write(
        "pages/api/copies.rhai",
        r#"
fn GET() {
    let m = #{ list: [1], inner: #{ n: 1 } };
    cache::set("m", m);
    m.list.push(2);
    m.inner.n = 2;
    let got = cache::get("m");
    got.list.push(3);
    #{ cached: cache::get("m"), local: m, got: got }
}
"#,
    );
    app.write(
        "pages/api/refused.rhai",
        r#"
fn GET() {
    let errors = [];
    try { cache::set("b", blob(3)); } catch (e) { errors.push(e); }
    try { cache::set("f", #{ f: Fn("x") }); } catch (e) { errors.push(e); }
    try { cache::set("t", 1, "soon"); } catch (e) { errors.push(e); }
    try { cache::set("t", 1, 0); } catch (e) { errors.push(e); }
    errors
}
"#,
    );
    let server = app.serve("dev", &["--workers", "2"]);
    let r = server.get("/api/copies");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(
        j["cached"],
        serde_json::json!({ "list": [1], "inner": { "n": 1 } })
    );
    assert_eq!(j["local"]["list"], serde_json::json!([1, 2]));
    assert_eq!(j["got"]["list"], serde_json::json!([1, 3]));

    // Set by one route, read by another; every type JSON holds comes back as it went in.
    let value = r#"{"a":[1,2.5,"x",true,null],"b":{"c":"é"}}"#;
    assert_eq!(server.post_json("/api/set?key=k", value).status, 200);
    let r = server.get("/api/get?key=k");
    assert_eq!(
        r.json()["value"],
        serde_json::from_str::<serde_json::Value>(value).unwrap()
    );
    assert_eq!(
        server.get("/api/get?key=missing").json()["value"],
        serde_json::Value::Null
    );
    assert_eq!(server.post_json("/api/delete?key=k", "{}").status, 200);
    assert_eq!(
        server.get("/api/get?key=k").json()["value"],
        serde_json::Value::Null
    );

    let errors = server.get("/api/refused").json();
    let errors: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap_or("?"))
        .collect();
    assert!(errors[0].contains("a blob cannot be cached"), "{errors:?}");
    assert!(errors[1].contains("cannot be cached"), "{errors:?}");
    assert!(
        errors[2].contains("ttl: 'soon' is not a duration"),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("ttl must be more than zero"),
        "{errors:?}"
    );

    // Several clients on two workers, each its own keys: every write is there after.
    std::thread::scope(|scope| {
        for client in 0..8 {
            let server = &server;
            scope.spawn(move || {
                for i in 0..25 {
                    let r =
                        server.post_json(&format!("/api/set?key=c{client}-{i}"), &format!("{i}"));
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    let mut found = 0;
    for client in 0..8 {
        for i in 0..25 {
            if server.get(&format!("/api/get?key=c{client}-{i}")).json()["value"] == i {
                found += 1;
            }
        }
    }
    assert_eq!(found, 200);
}

#[test]
fn the_least_recently_used_go_first_and_max_bounds_the_cache() {
    // Each entry counts about 470 bytes (a key of 5, a JSON text of 402, some overhead):
    // 10 KB hold about 21 of them.
    let app = cache_app("[cache]\nmax = \"10kb\"\n");
    let server = app.serve("dev", &[]);
    assert_eq!(server.post_json("/api/fill?from=0&to=20", "{}").status, 200);
    assert_eq!(present(&server, 20), (0..20).collect::<Vec<_>>());
    // `present` read them in order: k0 is now the least recently used. Read it again, then
    // add two: the two least recently used after it (k1, k2) make room, not k0.
    assert_eq!(server.get("/api/get?key=k1000").status, 200);
    assert_eq!(
        server.post_json("/api/fill?from=20&to=23", "{}").status,
        200
    );
    let kept = present(&server, 23);
    assert!(kept.contains(&0), "{kept:?}");
    assert!(!kept.contains(&1), "{kept:?}");
    assert!((18..=22).contains(&kept.len()), "{kept:?}");

    // Many more: still about 21, the last ones written.
    assert_eq!(
        server.post_json("/api/fill?from=0&to=200", "{}").status,
        200
    );
    let kept = present(&server, 200);
    assert!((18..=22).contains(&kept.len()), "{kept:?}");
    assert_eq!(kept.last(), Some(&199));
    assert_eq!(kept, (200 - kept.len() as i64..200).collect::<Vec<_>>());

    // A value larger than the whole cache is not kept and evicts nothing.
    let big = format!("\"{}\"", "y".repeat(20_000));
    assert_eq!(server.post_json("/api/set?key=big", &big).status, 200);
    assert_eq!(
        server.get("/api/get?key=big").json()["value"],
        serde_json::Value::Null
    );
    assert_eq!(present(&server, 200), kept);

    // A smaller max, saved while the server runs, evicts at once.
    app.write("rhapi.toml", "[cache]\nmax = \"2kb\"\n");
    let started = Instant::now();
    loop {
        let now = present(&server, 200);
        if now.len() <= 4 {
            assert!(!now.is_empty() && now.last() == Some(&199), "{now:?}");
            break;
        }
        assert!(started.elapsed() < DEADLINE, "still {} entries", now.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_entry_expires_after_its_ttl() {
    let app = cache_app("");
    let server = app.serve("dev", &[]);
    assert_eq!(
        server.post_json("/api/set?key=short&ttl=300ms", "1").status,
        200
    );
    assert_eq!(server.post_json("/api/set?key=forever", "2").status, 200);
    assert_eq!(
        server.post_json("/api/set?key=long&ttl=1h", "3").status,
        200
    );
    server.poll_until("/api/get?key=short", |r| r.json()["value"].is_null());
    assert_eq!(server.get("/api/get?key=forever").json()["value"], 2);
    assert_eq!(server.get("/api/get?key=long").json()["value"], 3);
}

#[test]
fn reading_a_large_value_counts_against_the_runs_memory_budget() {
    let app = cache_app("");
    app.write(
        "pages/api/hold.rhai",
        r#"
fn POST() {
    let big = "";
    big.pad(6000000, 'z');
    cache::set("big", big);
}
fn GET() {
    let hold = "";
    hold.pad(12000000, 'x');
    try { let v = cache::get("big"); return `read ${v.len()}`; } catch (e) { return e; }
}
"#,
    );
    let server = app.serve("dev", &["--max-memory", "16mb"]);
    assert_eq!(server.post_json("/api/hold", "{}").status, 204);
    let value = server.get("/api/get?key=big").json()["value"].clone();
    assert_eq!(value.as_str().map(str::len), Some(6_000_000));
    let r = server.get("/api/hold");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Out of memory"), "{}", r.text());
}

fn printed(output: &support::Output) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// The fixture app `mail_and_time`, its test file under the name `rhapi test` runs.
fn mail_and_time() -> TestApp {
    let app = TestApp::fixture("mail_and_time");
    app.rename("tests/signup.test.rhai.txt", "tests/signup.test.rhai");
    app
}

#[test]
fn rhapi_test_catches_mail_and_freezes_the_clock() {
    let app = mail_and_time();
    let output = app.run_to_exit("test", &[]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("8 passed, 0 failed"), "{text}");
}

#[test]
fn rhapi_test_fails_a_test_that_expects_what_did_not_happen() {
    let app = mail_and_time();
    app.remove("tests/signup.test.rhai");
    app.write(
        "tests/wrong.test.rhai",
        r#"fn t() { 1796479200000 }
fn test_sends() { request("POST", "/api/signup", #{ body: #{ email: "a@example.com" } }); }
fn test_mail_is_left_from_the_test_before() { assert_eq(sent_mail().len(), 1); }
fn test_no_mail_after_a_signup() {
    request("POST", "/api/signup", #{ body: #{ email: "a@example.com" } });
    assert_eq(sent_mail(), []);
}
fn test_freezes() { set_time(t()); }
fn test_time_is_left_frozen_by_the_test_before() { assert_eq(time::now(), t()); }
fn test_an_entry_outlives_its_ttl() {
    set_time(t());
    request("POST", "/api/signup", #{ body: #{ email: "a@example.com" } });
    set_time(t() + 600000);
    assert_eq(request("GET", "/api/last").json.email, "a@example.com");
}
fn test_set_time_out_of_range() { set_time(-9223372036854775807); }
"#,
    );
    let output = app.run_to_exit("test", &[]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for line in [
        "wrong.test.rhai:3:",
        "test_mail_is_left_from_the_test_before: assert_eq failed",
        "test_no_mail_after_a_signup: assert_eq failed",
        "test_time_is_left_frozen_by_the_test_before: assert_eq failed",
        "test_an_entry_outlives_its_ttl: assert_eq failed",
        "test_set_time_out_of_range: set_time: -9223372036854775807 is out of range",
        "2 passed, 5 failed",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}
