//! docs/reference.md, "Rate limits": `[[rate_limit]]` rules, a route's
//! `CONFIG.rate_limit` and `rate::check` count requests in a sliding window per key; over
//! the limit a request gets 429 with `Retry-After` and the `RateLimit` headers before any
//! middleware or route runs, and is not counted.

use crate::support;

use std::time::Instant;

use serde_json::json;
use support::{on_both, Backend, Response, Server, TestApp, DEADLINE};

/// An app whose `/api/auth/*` routes pass through a middleware that counts its runs in
/// the database (`/api/count` reads it), and whose `/api/open` is not limited.
fn app(toml: &str) -> TestApp {
    let app = TestApp::new();
    app.write("rhapi.toml", toml);
    app.write(
        "pages/api/auth/_middleware.rhai",
        "fn middleware(req) {\n\
         db::execute(\"CREATE TABLE IF NOT EXISTS runs (n INTEGER)\");\n\
         db::execute(\"INSERT INTO runs VALUES (1)\");\n\
         }\n",
    );
    app.write(
        "pages/api/auth/login.rhai",
        "fn POST(req) { #{ ok: true } }\n",
    );
    app.write("pages/api/auth/me.rhai", "fn GET(req) { #{ me: 1 } }\n");
    app.write("pages/api/open.rhai", "fn GET(req) { #{ open: true } }\n");
    app.write(
        "pages/api/count.rhai",
        "fn GET(req) { db::execute(\"CREATE TABLE IF NOT EXISTS runs (n INTEGER)\");\n\
         db::query(\"SELECT COUNT(*) AS n FROM runs\")[0].n }\n",
    );
    app
}

const AUTH_3_PER_HOUR: &str =
    "[[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 3\nper = \"1h\"\nby = \"ip\"\n";

fn login(server: &Server, headers: &[(&str, &str)]) -> Response {
    server.request("POST", "/api/auth/login", headers, b"")
}

/// `limit=3, remaining=R, reset=S` -> (R, S), checking its form exactly.
fn ratelimit(response: &Response) -> (u64, u64) {
    let value = response.header("ratelimit").expect("RateLimit header");
    let rest = value
        .strip_prefix("limit=3, remaining=")
        .unwrap_or_else(|| panic!("{value}"));
    let (remaining, reset) = rest.split_once(", reset=").expect(value);
    (remaining.parse().unwrap(), reset.parse().unwrap())
}

#[test]
fn over_the_limit_429_with_exact_headers_before_middleware_and_uncounted() {
    let app = app(AUTH_3_PER_HOUR);
    let server = app.serve("start", &[]);
    for left in [2, 1, 0] {
        let response = login(&server, &[]);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("ratelimit-policy"), Some("3;w=3600"));
        let (remaining, reset) = ratelimit(&response);
        assert_eq!(remaining, left);
        assert!((1..=3600).contains(&reset), "{reset}");
    }
    for _ in 0..5 {
        let refused = login(&server, &[]);
        assert_eq!(refused.status, 429);
        assert_eq!(refused.json(), json!({ "error": "Too Many Requests" }));
        assert_eq!(refused.header("ratelimit-policy"), Some("3;w=3600"));
        let (remaining, reset) = ratelimit(&refused);
        assert_eq!(remaining, 0);
        let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert_eq!(
            retry, reset,
            "Retry-After is RateLimit's reset, in whole seconds"
        );
        assert!((1..=7200).contains(&retry), "{retry}");
    }
    // The same rule covers every route under /api/auth: the other one is refused too.
    assert_eq!(server.get("/api/auth/me").status, 429);
    // The middleware ran for the three allowed requests only.
    assert_eq!(server.get("/api/count").json(), json!(3));
    // A path no rule names carries no headers.
    let open = server.get("/api/open");
    assert_eq!(open.status, 200);
    assert_eq!(open.header("ratelimit"), None);
    assert_eq!(open.header("ratelimit-policy"), None);
}

#[test]
fn by_header_counts_each_value_and_requests_without_it_share_one_counter() {
    let app = app(
        "[[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 2\nper = \"1h\"\nby = \"header:x-api-key\"\n",
    );
    let server = app.serve("start", &[]);
    let status = |key: Option<&str>| match key {
        Some(key) => login(&server, &[("x-api-key", key)]).status,
        None => login(&server, &[]).status,
    };
    assert_eq!(
        [status(Some("a")), status(Some("a")), status(Some("a"))],
        [200, 200, 429]
    );
    assert_eq!(
        [status(Some("b")), status(Some("b")), status(Some("b"))],
        [200, 200, 429]
    );
    assert_eq!([status(None), status(None), status(None)], [200, 200, 429]);
    assert_eq!(status(Some("c")), 200);
}

#[test]
fn without_by_every_request_of_a_rule_shares_one_counter() {
    let app = app("[[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 2\nper = \"1h\"\n");
    let server = app.serve("start", &[]);
    assert_eq!(login(&server, &[("x-api-key", "a")]).status, 200);
    assert_eq!(login(&server, &[("x-api-key", "b")]).status, 200);
    assert_eq!(server.get("/api/auth/me").status, 429);
    assert_eq!(server.get("/api/open").status, 200);
}

#[test]
fn a_routes_config_limits_it_per_client() {
    let app = TestApp::new();
    app.write(
        "pages/api/signup.rhai",
        "const CONFIG = #{ rate_limit: #{ limit: 2, per: \"10m\" } };\nfn POST(req) { \"welcome\" }\n",
    );
    app.write("pages/api/other.rhai", "fn GET(req) { 1 }\n");
    let server = app.serve("start", &[]);
    let signup = || server.request("POST", "/api/signup", &[], b"");
    let first = signup();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-policy"), Some("2;w=600"));
    assert_eq!(signup().status, 200);
    let refused = signup();
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(server.get("/api/other").status, 200);
    assert_eq!(server.get("/api/other").header("ratelimit"), None);

    // A bad CONFIG is a load error of the route, naming the key.
    app.write(
        "pages/api/bad.rhai",
        "const CONFIG = #{ rate_limit: #{ limit: 0, per: \"1m\" } };\nfn GET(req) { 1 }\n",
    );
    let check = app.run("check");
    assert!(!check.status.success());
    assert!(
        check
            .stderr
            .contains("rate_limit.limit must be a whole number of at least 1"),
        "{}",
        check.stderr
    );
}

#[test]
fn rate_check_in_a_script_counts_allowed_calls_only() {
    let app = TestApp::new();
    app.write(
        "pages/api/try.rhai",
        "fn GET(req) { #{ allowed: rate::check(\"user:\" + req.query.user, 2, \"1h\") } }\n",
    );
    app.write(
        "pages/api/wrong.rhai",
        "fn GET(req) { let r = \"no error\"; try { rate::check(\"k\", 0, \"1m\"); } catch (e) { r = e; } r }\n",
    );
    let server = app.serve("start", &[]);
    let allowed =
        |user: &str| server.get(&format!("/api/try?user={user}")).json()["allowed"].clone();
    let ann: Vec<_> = (0..5).map(|_| allowed("ann")).collect();
    assert_eq!(
        ann,
        [
            json!(true),
            json!(true),
            json!(false),
            json!(false),
            json!(false)
        ]
    );
    assert_eq!(
        allowed("bob"),
        json!(true),
        "another key has its own counter"
    );
    // No rule covers the route: the script decides, the response has no headers.
    assert_eq!(server.get("/api/try?user=cy").header("ratelimit"), None);
    assert_eq!(
        server.get("/api/wrong").text(),
        "rate::check: the limit must be at least 1"
    );
}

#[test]
fn saving_rhapi_toml_applies_a_rule_without_a_restart() {
    let app = app("");
    let server = app.serve("dev", &[]);
    for _ in 0..3 {
        assert_eq!(login(&server, &[]).status, 200);
    }
    app.write_atomic(
        "rhapi.toml",
        "[[rate_limit]]\npath = \"/api/auth/login\"\nlimit = 1\nper = \"1h\"\n",
    );
    let started = Instant::now();
    while login(&server, &[]).status != 429 {
        assert!(started.elapsed() < DEADLINE, "the rule never applied");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        server.get("/api/auth/me").status,
        200,
        "only the path it names"
    );
    // A mistake keeps the last good rules, and says where it is.
    app.write_atomic(
        "rhapi.toml",
        "[[rate_limit]]\npath = \"/api/auth/login\"\nlimit = 1\nper = \"1h\"\nby = \"cookie\"\n",
    );
    server.wait_for_log("rhapi.toml:5");
    assert_eq!(login(&server, &[]).status, 429);
}

#[test]
fn a_flood_of_distinct_keys_stays_within_max_keys() {
    // 64 keys at most: a client sending thousands of distinct keys makes the limiter
    // forget the oldest, never grow; the one busy key it is still refusing stays.
    let app = app("[rate_limits]\nmax_keys = 64\n\
         [[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 1\nper = \"1h\"\nby = \"header:x-key\"\n");
    let server = app.serve("start", &[]);
    assert_eq!(login(&server, &[("x-key", "victim")]).status, 200);
    assert_eq!(login(&server, &[("x-key", "victim")]).status, 429);
    let before = server.rss_mib();
    for i in 0..2_000 {
        let key = format!("flood-{i}-{}", "x".repeat(4000));
        assert_eq!(login(&server, &[("x-key", &key)]).status, 200, "{i}");
    }
    // With 64 keys kept, the victim's (counted before the flood) is forgotten: the
    // bound holds, at the price of the oldest counts.
    assert_eq!(login(&server, &[("x-key", "victim")]).status, 200);
    // 2,000 keys of 4 KB held would be 8 MB; kept as 64 digests, nothing shows.
    assert!(
        server.rss_mib() < before + 8,
        "{} -> {}",
        before,
        server.rss_mib()
    );
}

on_both!(the_database_store_shares_counters_between_instances);

/// Two instances on one database with `store = "database"`: on PostgreSQL they share the
/// counts (3 allowed in all, also when the requests race); on SQLite each instance keeps
/// its own (3 each).
fn the_database_store_shares_counters_between_instances(db: Backend) {
    let app = app("[rate_limits]\nstore = \"database\"\n\
         [[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 3\nper = \"1h\"\nby = \"header:x-key\"\n");
    app.write(
        "pages/api/check.rhai",
        "fn GET(req) { #{ allowed: rate::check(\"k\", 2, \"1h\") } }\n",
    );
    let one = db.serve(&app, "start", &[]);
    let two = db.serve(&app, "start", &[]);
    let mut allowed = 0;
    for i in 0..8 {
        let server = if i % 2 == 0 { &one } else { &two };
        let response = login(server, &[("x-key", "shared")]);
        assert!(matches!(response.status, 200 | 429), "{}", response.text());
        allowed += usize::from(response.status == 200);
    }
    let expected = if db.is_pg() { 3 } else { 6 };
    assert_eq!(allowed, expected);
    // rate::check counts in the same store.
    let checked = |server: &Server| server.get("/api/check").json()["allowed"] == json!(true);
    let allowed = (0..6)
        .filter(|i| checked(if i % 2 == 0 { &one } else { &two }))
        .count();
    assert_eq!(allowed, if db.is_pg() { 2 } else { 4 });
    if !db.is_pg() {
        return;
    }
    // Racing: 24 requests at once on both instances, 3 allowed in all.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let server = if i % 2 == 0 { &one } else { &two };
                scope.spawn(move || login(server, &[("x-key", "race")]).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        21,
        "{statuses:?}"
    );
}
