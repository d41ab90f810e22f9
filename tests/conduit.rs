//! examples/conduit, the RealWorld API: the error paths and paging rules the official Postman
//! collection (run by `.ci/conduit`) does not check, and two instances sharing one PostgreSQL.
//! Every test serves a fresh copy of the app with the real binary.

use crate::support;

use std::path::Path;

use serde_json::{json, Value};
use support::{copy_tree, Response, Server, TestApp};

const SECRET: &str = "conduit-test-secret-0123456789abcdef";

/// A copy of examples/conduit (routes and migrations, no data) with a `.env`.
fn conduit_app() -> TestApp {
    let app = TestApp::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conduit");
    copy_tree(&root.join("pages"), &app.path().join("pages"));
    copy_tree(&root.join("migrations"), &app.path().join("migrations"));
    app.write(".env", &format!("JWT_SECRET={SECRET}\n"));
    app
}

/// The app served by `rhapi start` on SQLite.
fn serve() -> (TestApp, Server) {
    let app = conduit_app();
    let server = app.serve("start", &["--no-watch"]);
    (app, server)
}

/// A request with an optional `Authorization: Token ...` and an optional JSON body.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Response {
    let auth = token.map(|t| format!("Token {t}"));
    let mut headers = Vec::new();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    server.request(method, path, &headers, body.as_bytes())
}

/// `call` that expects `status` and returns the JSON body.
fn ok(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let response = call(server, method, path, token, body);
    assert_eq!(
        response.status,
        status,
        "{method} {path}: {}",
        response.text()
    );
    if response.body.is_empty() {
        Value::Null
    } else {
        response.json()
    }
}

/// Registers `name` (e-mail `name@example.com`) and returns the token.
fn register(server: &Server, name: &str) -> String {
    let user = json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "secret pw"}});
    let body = ok(server, "POST", "/api/users", None, Some(user), 201);
    body["user"]["token"].as_str().unwrap().to_string()
}

/// Creates an article and returns its slug.
fn article(server: &Server, token: &str, title: &str, tags: &[&str]) -> String {
    let article =
        json!({"article": {"title": title, "description": "d", "body": "b", "tagList": tags}});
    let body = ok(
        server,
        "POST",
        "/api/articles",
        Some(token),
        Some(article),
        201,
    );
    body["article"]["slug"].as_str().unwrap().to_string()
}

/// Asserts `status` with the RealWorld error envelope, one message containing `needle`.
fn assert_error(response: &Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    let messages = body["errors"]["body"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors.body: {body}"));
    assert!(
        messages
            .iter()
            .any(|m| m.as_str().is_some_and(|m| m.contains(needle))),
        "no message with {needle:?}: {body}"
    );
}

/// The slugs of a list response, in order.
fn slugs(list: &Value) -> Vec<&str> {
    list["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect()
}

#[test]
fn without_a_valid_token_it_is_401() {
    let (_app, server) = serve();
    let token = register(&server, "ada");
    assert_eq!(
        ok(&server, "GET", "/api/user", Some(&token), None, 200)["user"]["username"],
        "ada"
    );

    let mut tampered = token.clone();
    tampered.push('x');
    let other_secret = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjF9.c2lnbmVkIGVsc2V3aGVyZQ";
    for bad in ["garbage", tampered.as_str(), other_secret] {
        assert_error(
            &call(&server, "GET", "/api/user", Some(bad), None),
            401,
            "invalid",
        );
        // Even where signing in is optional, a bad token is refused, not ignored.
        assert_error(
            &call(&server, "GET", "/api/articles", Some(bad), None),
            401,
            "invalid",
        );
    }
    let bearer = format!("Bearer {token}");
    let response = server.request("GET", "/api/user", &[("authorization", &bearer)], b"");
    assert_error(&response, 401, "Token <jwt>");

    let article = json!({"article": {"title": "t", "description": "d", "body": "b"}});
    for (method, path, body) in [
        ("GET", "/api/user", None),
        ("PUT", "/api/user", Some(json!({"user": {"bio": "x"}}))),
        ("GET", "/api/articles/feed", None),
        ("POST", "/api/articles", Some(article)),
        ("POST", "/api/profiles/ada/follow", None),
        ("DELETE", "/api/profiles/ada/follow", None),
    ] {
        assert_error(
            &call(&server, method, path, None, body),
            401,
            "sign in first",
        );
    }

    let wrong = json!({"user": {"email": "ada@example.com", "password": "wrong"}});
    assert_error(
        &call(&server, "POST", "/api/users/login", None, Some(wrong)),
        401,
        "invalid",
    );
    let unknown = json!({"user": {"email": "nobody@example.com", "password": "secret pw"}});
    assert_error(
        &call(&server, "POST", "/api/users/login", None, Some(unknown)),
        401,
        "invalid",
    );
    let login = json!({"user": {"email": "ADA@example.com", "password": "secret pw"}});
    let user = ok(&server, "POST", "/api/users/login", None, Some(login), 200);
    assert_eq!(user["user"]["email"], "ada@example.com");
    assert_eq!(user["user"]["bio"], Value::Null);
    assert_eq!(user["user"]["image"], Value::Null);
}

#[test]
fn only_the_author_may_change_an_article_or_a_comment() {
    let (_app, server) = serve();
    let ada = register(&server, "ada");
    let bob = register(&server, "bob");
    let slug = article(&server, &ada, "Ada's notes", &[]);
    let path = format!("/api/articles/{slug}");

    let edit = json!({"article": {"body": "bob was here"}});
    assert_error(
        &call(&server, "PUT", &path, Some(&bob), Some(edit)),
        403,
        "author",
    );
    assert_error(
        &call(&server, "DELETE", &path, Some(&bob), None),
        403,
        "author",
    );
    assert_eq!(
        ok(&server, "GET", &path, None, None, 200)["article"]["body"],
        "b"
    );

    let comment = json!({"comment": {"body": "first"}});
    let created = ok(
        &server,
        "POST",
        &format!("{path}/comments"),
        Some(&ada),
        Some(comment),
        200,
    );
    let comment_path = format!("{path}/comments/{}", created["comment"]["id"]);
    assert_error(
        &call(&server, "DELETE", &comment_path, Some(&bob), None),
        403,
        "author",
    );
    let comments = ok(&server, "GET", &format!("{path}/comments"), None, None, 200);
    assert_eq!(comments["comments"].as_array().unwrap().len(), 1);

    ok(&server, "DELETE", &comment_path, Some(&ada), None, 204);
    ok(&server, "DELETE", &path, Some(&ada), None, 204);
    assert_error(
        &call(&server, "GET", &path, None, None),
        404,
        "article not found",
    );
}

#[test]
fn unknown_slugs_profiles_and_comments_are_404() {
    let (_app, server) = serve();
    let ada = register(&server, "ada");
    let slug = article(&server, &ada, "Here", &[]);
    let other = article(&server, &ada, "Elsewhere", &[]);
    let comment = json!({"comment": {"body": "on elsewhere"}});
    let created = ok(
        &server,
        "POST",
        &format!("/api/articles/{other}/comments"),
        Some(&ada),
        Some(comment),
        200,
    );
    let other_comment = created["comment"]["id"].to_string();

    let edit = json!({"article": {"title": "x"}});
    let comment = json!({"comment": {"body": "x"}});
    for (method, path, body) in [
        ("GET", "/api/articles/no-such-slug", None),
        ("PUT", "/api/articles/no-such-slug", Some(edit)),
        ("DELETE", "/api/articles/no-such-slug", None),
        ("POST", "/api/articles/no-such-slug/favorite", None),
        ("DELETE", "/api/articles/no-such-slug/favorite", None),
        ("GET", "/api/articles/no-such-slug/comments", None),
        ("POST", "/api/articles/no-such-slug/comments", Some(comment)),
        ("DELETE", "/api/articles/no-such-slug/comments/1", None),
    ] {
        assert_error(
            &call(&server, method, path, Some(&ada), body),
            404,
            "article not found",
        );
    }
    for (method, path) in [
        ("GET", "/api/profiles/nobody"),
        ("POST", "/api/profiles/nobody/follow"),
        ("DELETE", "/api/profiles/nobody/follow"),
    ] {
        assert_error(
            &call(&server, method, path, Some(&ada), None),
            404,
            "profile not found",
        );
    }
    // An id that is not a number, too big, unknown, or another article's comment.
    for id in [
        "abc",
        "99999999999999999999999",
        "999",
        other_comment.as_str(),
    ] {
        let path = format!("/api/articles/{slug}/comments/{id}");
        assert_error(
            &call(&server, "DELETE", &path, Some(&ada), None),
            404,
            "comment not found",
        );
    }
}

#[test]
fn bad_input_is_422_with_the_errors_envelope() {
    let (_app, server) = serve();
    let ada = register(&server, "ada");
    register(&server, "bob");

    let user = |username: Value, email: Value, password: Value| json!({"user": {"username": username, "email": email, "password": password}});
    for (body, needle) in [
        (
            user(json!("x"), json!("x@example.com"), Value::Null),
            "password can't be blank",
        ),
        (
            user(json!("  "), json!("x@example.com"), json!("pw")),
            "username can't be blank",
        ),
        (
            user(json!(5), json!("x@example.com"), json!("pw")),
            "username must be a string",
        ),
        (
            user(json!("x"), json!("not an address"), json!("pw")),
            "email is invalid",
        ),
        (
            user(json!("ada"), json!("x@example.com"), json!("pw")),
            "username has already been taken",
        ),
        (
            user(json!("x"), json!("BOB@example.com"), json!("pw")),
            "email has already been taken",
        ),
        (json!({"user": "ada"}), "{\"user\": {...}}"),
        (json!(["ada"]), "{\"user\": {...}}"),
    ] {
        assert_error(
            &call(&server, "POST", "/api/users", None, Some(body)),
            422,
            needle,
        );
    }
    let both = call(
        &server,
        "POST",
        "/api/users",
        None,
        Some(user(json!("ada"), json!("bob@example.com"), json!("pw"))),
    );
    assert_error(&both, 422, "username has already been taken");
    assert_error(&both, 422, "email has already been taken");
    // No body, or one that is not JSON.
    assert_error(
        &server.request("POST", "/api/users", &[], b""),
        422,
        "{\"user\": {...}}",
    );
    let text = server.request(
        "POST",
        "/api/users",
        &[("content-type", "text/plain")],
        b"ada",
    );
    assert_error(&text, 422, "{\"user\": {...}}");

    for (change, needle) in [
        (
            json!({"username": "bob"}),
            "username has already been taken",
        ),
        (
            json!({"email": "bob@example.com"}),
            "email has already been taken",
        ),
        (json!({"email": ""}), "email can't be blank"),
        (json!({"bio": 42}), "bio must be a string"),
    ] {
        let response = call(
            &server,
            "PUT",
            "/api/user",
            Some(&ada),
            Some(json!({"user": change})),
        );
        assert_error(&response, 422, needle);
    }
    // Keeping one's own username and e-mail is not a clash.
    let same = json!({"user": {"username": "ada", "email": "ada@example.com", "bio": "hi"}});
    assert_eq!(
        ok(&server, "PUT", "/api/user", Some(&ada), Some(same), 200)["user"]["bio"],
        "hi"
    );

    for (fields, needle) in [
        (
            json!({"description": "d", "body": "b"}),
            "title can't be blank",
        ),
        (
            json!({"title": "t", "body": "b"}),
            "description can't be blank",
        ),
        (
            json!({"title": "t", "description": "d", "body": ["b"]}),
            "body must be a string",
        ),
        (
            json!({"title": "t", "description": "d", "body": "b", "tagList": "x"}),
            "tagList",
        ),
        (
            json!({"title": "t", "description": "d", "body": "b", "tagList": [1]}),
            "tagList",
        ),
    ] {
        let response = call(
            &server,
            "POST",
            "/api/articles",
            Some(&ada),
            Some(json!({"article": fields})),
        );
        assert_error(&response, 422, needle);
    }
    let slug = article(&server, &ada, "Valid", &[]);
    let blank = json!({"article": {"title": ""}});
    assert_error(
        &call(
            &server,
            "PUT",
            &format!("/api/articles/{slug}"),
            Some(&ada),
            Some(blank),
        ),
        422,
        "title can't be blank",
    );
    let no_body = json!({"comment": {}});
    let comments = format!("/api/articles/{slug}/comments");
    assert_error(
        &call(&server, "POST", &comments, Some(&ada), Some(no_body)),
        422,
        "body can't be blank",
    );
    let follow_self = call(
        &server,
        "POST",
        "/api/profiles/ada/follow",
        Some(&ada),
        None,
    );
    assert_error(&follow_self, 422, "yourself");

    for query in [
        "limit=abc",
        "limit=-1",
        "limit=101",
        "offset=x",
        "offset=-5",
        "tag=a&tag=b",
    ] {
        let response = call(
            &server,
            "GET",
            &format!("/api/articles?{query}"),
            None,
            None,
        );
        assert_error(&response, 422, query.split('=').next().unwrap());
    }
}

#[test]
fn lists_are_newest_first_with_limit_offset_and_filters() {
    let (_app, server) = serve();
    let ada = register(&server, "ada");
    let bob = register(&server, "bob");
    let first = article(&server, &ada, "First", &["rust", "web"]);
    let second = article(&server, &bob, "Second", &["web"]);
    let third = article(&server, &ada, "Third", &[]);
    let fourth = article(&server, &ada, "First", &["rust"]); // same title: its own slug
    assert_ne!(fourth, first);

    let all = ok(&server, "GET", "/api/articles", None, None, 200);
    assert_eq!(slugs(&all), [&fourth, &third, &second, &first]);
    assert_eq!(all["articlesCount"], 4);
    let listed = &all["articles"][3];
    assert!(
        listed.get("body").is_none(),
        "lists leave the body out: {listed}"
    );
    assert_eq!(listed["tagList"], json!(["rust", "web"]));
    let created = listed["createdAt"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && &created[19..20] == ".",
        "ISO 8601 with milliseconds: {created}"
    );

    let page = ok(
        &server,
        "GET",
        "/api/articles?limit=2&offset=1",
        None,
        None,
        200,
    );
    assert_eq!(slugs(&page), [&third, &second]);
    assert_eq!(page["articlesCount"], 4);
    let past_the_end = ok(&server, "GET", "/api/articles?offset=10", None, None, 200);
    assert_eq!(slugs(&past_the_end), Vec::<&str>::new());
    assert_eq!(past_the_end["articlesCount"], 4);
    let none = ok(&server, "GET", "/api/articles?limit=0", None, None, 200);
    assert_eq!(
        (slugs(&none).len(), none["articlesCount"].as_i64()),
        (0, Some(4))
    );

    let by_tag = ok(&server, "GET", "/api/articles?tag=web", None, None, 200);
    assert_eq!(
        (slugs(&by_tag), by_tag["articlesCount"].as_i64()),
        (vec![second.as_str(), &first], Some(2))
    );
    let by_author = ok(
        &server,
        "GET",
        "/api/articles?author=ada&limit=1",
        None,
        None,
        200,
    );
    assert_eq!(
        (slugs(&by_author), by_author["articlesCount"].as_i64()),
        (vec![fourth.as_str()], Some(3))
    );
    let both = ok(
        &server,
        "GET",
        "/api/articles?author=ada&tag=web",
        None,
        None,
        200,
    );
    assert_eq!(slugs(&both), [&first]);
    assert_eq!(
        ok(
            &server,
            "GET",
            "/api/articles?author=nobody",
            None,
            None,
            200
        )["articlesCount"],
        0
    );

    ok(
        &server,
        "POST",
        &format!("/api/articles/{second}/favorite"),
        Some(&ada),
        None,
        200,
    );
    let again = ok(
        &server,
        "POST",
        &format!("/api/articles/{second}/favorite"),
        Some(&ada),
        None,
        200,
    );
    assert_eq!(
        again["article"]["favoritesCount"], 1,
        "favouriting twice counts once"
    );
    let favorited = ok(
        &server,
        "GET",
        "/api/articles?favorited=ada",
        Some(&ada),
        None,
        200,
    );
    assert_eq!(slugs(&favorited), [&second]);
    assert_eq!(favorited["articles"][0]["favorited"], true);
    let seen_by_bob = ok(
        &server,
        "GET",
        "/api/articles?favorited=ada",
        Some(&bob),
        None,
        200,
    );
    assert_eq!(seen_by_bob["articles"][0]["favorited"], false);

    let tags = ok(&server, "GET", "/api/tags", None, None, 200);
    assert_eq!(tags, json!({"tags": ["rust", "web"]}));
}

#[test]
fn the_feed_lists_followed_authors_newest_first() {
    let (_app, server) = serve();
    let ada = register(&server, "ada");
    let bob = register(&server, "bob");
    let cy = register(&server, "cy");
    let old = article(&server, &ada, "Old", &[]);
    article(&server, &bob, "Not followed", &[]);
    let new = article(&server, &ada, "New", &[]);
    let from_cy = article(&server, &cy, "Cy", &[]);

    let empty = ok(&server, "GET", "/api/articles/feed", Some(&bob), None, 200);
    assert_eq!(
        (slugs(&empty).len(), empty["articlesCount"].as_i64()),
        (0, Some(0))
    );

    let followed = ok(
        &server,
        "POST",
        "/api/profiles/ada/follow",
        Some(&bob),
        None,
        200,
    );
    assert_eq!(followed["profile"]["following"], true);
    ok(
        &server,
        "POST",
        "/api/profiles/cy/follow",
        Some(&bob),
        None,
        200,
    );
    let feed = ok(&server, "GET", "/api/articles/feed", Some(&bob), None, 200);
    assert_eq!(slugs(&feed), [&from_cy, &new, &old]);
    assert_eq!(feed["articlesCount"], 3);
    assert_eq!(feed["articles"][0]["author"]["following"], true);
    let page = ok(
        &server,
        "GET",
        "/api/articles/feed?limit=1&offset=1",
        Some(&bob),
        None,
        200,
    );
    assert_eq!(
        (slugs(&page), page["articlesCount"].as_i64()),
        (vec![new.as_str()], Some(3))
    );
    let profile = ok(&server, "GET", "/api/profiles/ada", Some(&bob), None, 200);
    assert_eq!(profile["profile"]["following"], true);
    assert_eq!(
        ok(&server, "GET", "/api/profiles/ada", None, None, 200)["profile"]["following"],
        false
    );

    let unfollowed = ok(
        &server,
        "DELETE",
        "/api/profiles/cy/follow",
        Some(&bob),
        None,
        200,
    );
    assert_eq!(unfollowed["profile"]["following"], false);
    let feed = ok(&server, "GET", "/api/articles/feed", Some(&bob), None, 200);
    assert_eq!(slugs(&feed), [&new, &old]);
    assert_eq!(
        ok(&server, "GET", "/api/articles/feed", Some(&ada), None, 200)["articlesCount"],
        0
    );
}

/// Two instances of the app (two folders, as on two machines) on one PostgreSQL database and
/// one JWT_SECRET, used alternately: nothing the app needs lives in one process.
/// Ignored by default; `eval "$(.ci/postgres start)"`, then
/// `cargo test --test tests -- --ignored conduit::`. Without the URL it fails: never a silent pass.
#[test]
#[ignore = "needs PostgreSQL: eval \"$(.ci/postgres start)\" then cargo test --test tests -- --ignored conduit::"]
fn two_instances_share_one_postgres() {
    let db = support::Backend::postgres_from_env();
    let env = db.env();
    let (app_a, app_b) = (conduit_app(), conduit_app());
    let a = app_a.serve_with_env("start", &["--no-watch"], &env);
    let b = app_b.serve_with_env("start", &["--no-watch"], &env);

    register(&a, "ada");
    let login = json!({"user": {"email": "ada@example.com", "password": "secret pw"}});
    let ada = ok(&b, "POST", "/api/users/login", None, Some(login), 200)["user"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = register(&b, "bob");
    assert_eq!(
        ok(&a, "GET", "/api/user", Some(&bob), None, 200)["user"]["username"],
        "bob"
    );

    let slug = article(&a, &ada, "Scaled out", &["pg"]);
    let path = format!("/api/articles/{slug}");
    assert_eq!(
        slugs(&ok(&b, "GET", "/api/articles", None, None, 200)),
        [&slug]
    );
    let favorited = ok(
        &b,
        "POST",
        &format!("{path}/favorite"),
        Some(&bob),
        None,
        200,
    );
    assert_eq!(favorited["article"]["favoritesCount"], 1);
    assert_eq!(
        ok(&a, "GET", &path, Some(&bob), None, 200)["article"]["favorited"],
        true
    );
    let comment = json!({"comment": {"body": "from b"}});
    ok(
        &b,
        "POST",
        &format!("{path}/comments"),
        Some(&bob),
        Some(comment),
        200,
    );
    let comments = ok(&a, "GET", &format!("{path}/comments"), None, None, 200);
    assert_eq!(comments["comments"][0]["body"], "from b");
    assert_eq!(comments["comments"][0]["author"]["username"], "bob");
    let created = comments["comments"][0]["createdAt"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z'),
        "ISO 8601 with milliseconds: {created}"
    );

    ok(&b, "DELETE", &path, Some(&ada), None, 204);
    assert_error(
        &call(&a, "GET", &path, None, None),
        404,
        "article not found",
    );
    assert_eq!(
        ok(&a, "GET", "/api/articles", None, None, 200)["articlesCount"],
        0
    );
}
