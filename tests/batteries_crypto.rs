//! `crypto::`, `jwt::` and `log::` as a script sees them.

use crate::support;

use serde_json::json;
use support::TestApp;

#[test]
fn passwords_hash_and_verify() {
    let app = TestApp::new();
    app.write(
        "pages/api/pw.rhai",
        r#"fn POST(req) {
            let hash = crypto::hash_password(req.body.pw);
            #{ prefix: hash.sub_string(0, 10),
               ok: crypto::verify_password(req.body.pw, hash),
               wrong: crypto::verify_password("nope", hash),
               differs: hash != crypto::hash_password(req.body.pw) }
        }"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.post_json("/api/pw", r#"{"pw":"correct horse"}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({ "prefix": "$argon2id$", "ok": true, "wrong": false, "differs": true })
    );
}

#[test]
fn a_bad_hash_is_a_catchable_error() {
    let app = TestApp::new();
    app.write(
        "pages/api/bad.rhai",
        r#"fn GET() {
            let caught = ();
            try { crypto::verify_password("x", "not-a-hash"); } catch (e) { caught = e; }
            #{ caught: caught }
        }"#,
    );
    let server = app.serve("dev", &[]);
    let body = server.get("/api/bad").json();
    assert!(
        body["caught"]
            .as_str()
            .unwrap()
            .contains("not a PHC string"),
        "{body}"
    );
}

#[test]
fn tokens_uuids_and_digests() {
    let app = TestApp::new();
    app.write(
        "pages/api/t.rhai",
        r#"fn GET() {
            #{ token: crypto::random_token(32), token2: crypto::random_token(32),
               uuid: crypto::uuid(),
               sha: crypto::sha256("abc"),
               hmac: crypto::hmac_sha256("Jefe", "what do ya want for nothing?") }
        }"#,
    );
    let server = app.serve("dev", &[]);
    let body = server.get("/api/t").json();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "32 bytes as unpadded base64: {token}");
    assert!(token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(body["token"], body["token2"]);
    let uuid = body["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4", "version 4: {uuid}");
    assert_eq!(
        body["sha"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        body["hmac"],
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn jwt_round_trip_expiry_and_tampering() {
    let app = TestApp::new();
    app.write(
        "pages/api/jwt.rhai",
        r#"fn GET() {
            let token = jwt::sign(#{ sub: 7, role: "admin" }, "s3cret", #{ expires_in: 3600 });
            let parts = token.split(".");
            let tampered = parts[0] + "." + parts[1] + "x." + parts[2];
            let expired = jwt::sign(#{ sub: 7 }, "s3cret", #{ expires_in: -5 });
            #{ claims: jwt::verify(token, "s3cret"),
               wrong_secret: jwt::verify(token, "other"),
               tampered: jwt::verify(tampered, "s3cret"),
               expired: jwt::verify(expired, "s3cret"),
               garbage: jwt::verify("a.b", "s3cret"),
               no_exp: jwt::verify(jwt::sign(#{ a: 1 }, "k"), "k") }
        }"#,
    );
    let server = app.serve("dev", &[]);
    let body = server.get("/api/jwt").json();
    assert_eq!(body["claims"]["sub"], 7);
    assert_eq!(body["claims"]["role"], "admin");
    assert!(body["claims"]["exp"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(body["wrong_secret"], json!(null));
    assert_eq!(body["tampered"], json!(null));
    assert_eq!(body["expired"], json!(null));
    assert_eq!(body["garbage"], json!(null));
    assert_eq!(body["no_exp"], json!({ "a": 1 }));
}

#[test]
fn jwt_rejects_alg_none_and_other_algorithms() {
    // Tokens made by hand: header {"alg":"none"} / {"alg":"HS512"}, payload {"sub":1}.
    let app = TestApp::new();
    app.write(
        "pages/api/none.rhai",
        r#"fn GET() {
            let payload = "eyJzdWIiOjF9";
            #{ none: jwt::verify("eyJhbGciOiJub25lIn0." + payload + ".", "k"),
               hs512: jwt::verify("eyJhbGciOiJIUzUxMiJ9." + payload + ".c2ln", "k") }
        }"#,
    );
    let server = app.serve("dev", &[]);
    assert_eq!(
        server.get("/api/none").json(),
        json!({ "none": null, "hs512": null })
    );
}

#[test]
fn log_lines_are_tagged_with_file_and_line() {
    let app = TestApp::new();
    app.write(
        "pages/api/log.rhai",
        "fn GET() {\n    log::info(\"hello info\");\n    log::warn(\"careful\");\n    log::error(#{ n: 1 });\n    print(\"printed\");\n    print(#{ m: 2 });\n    debug(\"debugged\");\n    \"ok\"\n}\n",
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/log").text(), "ok");
    server.wait_for_log("[pages/api/log.rhai] line 2: hello info");
    server.wait_for_log("line 3: careful");
    server.wait_for_log("line 4: #{\"n\": 1}");
    server.wait_for_log("[pages/api/log.rhai] line 5: printed");
    server.wait_for_log("[pages/api/log.rhai] line 6: #{\"m\": 2}");
    server.wait_for_log("debug: line 7: \"debugged\"");
}
