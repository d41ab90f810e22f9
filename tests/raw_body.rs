//! docs/reference.md, "req" (`raw_body`) and "Per-route limits" (`const CONFIG`), and the
//! `crypto::` functions a webhook needs on blobs.

use crate::support;

use serde_json::json;
use support::TestApp;

#[test]
fn raw_body_is_the_exact_bytes_even_when_parsed() {
    let app = TestApp::new();
    app.write(
        "pages/api/raw.rhai",
        "fn POST(req) { #{ kind: type_of(req.raw_body), len: if req.raw_body == () { -1 } else { req.raw_body.len() }, parsed: req.body, sha: if req.raw_body == () { () } else { crypto::sha256(req.raw_body) } } }\n",
    );
    let server = app.serve("dev", &[]);
    let body = br#"{ "a" :  1 }"#;
    let response = server.request(
        "POST",
        "/api/raw",
        &[("content-type", "application/json")],
        body,
    );
    let json = response.json();
    assert_eq!(json["kind"], "blob");
    assert_eq!(json["len"], body.len());
    assert_eq!(json["parsed"], json!({ "a": 1 }));
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(json["sha"], expected);
    let binary = server.request(
        "POST",
        "/api/raw",
        &[("content-type", "application/octet-stream")],
        &[0, 255, 1],
    );
    assert_eq!(binary.json()["len"], 3);
    let empty = server.request("POST", "/api/raw", &[], b"");
    assert_eq!(empty.json()["kind"], "()");
}

#[test]
fn crypto_on_strings_and_blobs() {
    let app = TestApp::new();
    app.write(
        "pages/api/c.rhai",
        r#"fn POST(req) {
    let key = "Jefe";
    let blob = req.raw_body;
    #{
        hmac_text: crypto::hmac_sha256(key, "what do ya want for nothing?"),
        hmac_blob: crypto::hmac_sha256(key, blob),
        sha_text: crypto::sha256("abc"),
        same: crypto::equal("abc", "abc"),
        differ: crypto::equal("abc", "abd"),
        shorter: crypto::equal("abc", "ab"),
        blob_vs_text: crypto::equal(blob, "what do ya want for nothing?"),
    }
}
"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.request(
        "POST",
        "/api/c",
        &[("content-type", "application/octet-stream")],
        b"what do ya want for nothing?",
    );
    let rfc4231 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert_eq!(
        response.json(),
        json!({
            "hmac_text": rfc4231,
            "hmac_blob": rfc4231,
            "sha_text": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "same": true,
            "differ": false,
            "shorter": false,
            "blob_vs_text": true,
        })
    );
}

#[test]
fn config_gives_a_route_its_own_limits() {
    let app = TestApp::new();
    app.write(
        "pages/api/upload.rhai",
        "const CONFIG = #{ body_limit: \"64kb\", timeout: \"5s\" };\nfn POST(req) { req.raw_body.len() }\n",
    );
    app.write(
        "pages/api/small.rhai",
        "fn POST(req) { req.raw_body.len() }\n",
    );
    app.write(
        "pages/api/quick.rhai",
        "const CONFIG = #{ timeout: \"200ms\" };\nfn GET() { let t = 0; for i in 0..100000000 { t += 1; } t }\n",
    );
    app.write(
        "pages/api/counted.rhai",
        "const CONFIG = #{ max_operations: 500 };\nfn GET() { let t = 0; for i in 0..10000 { t += 1; } t }\n",
    );
    app.write(
        "pages/api/uncounted.rhai",
        "fn GET() { let t = 0; for i in 0..10000 { t += 1; } t }\n",
    );
    let server = app.serve("start", &["--body-limit", "1kb"]);
    let big = vec![b'a'; 32 * 1024];
    let upload = server.request(
        "POST",
        "/api/upload",
        &[("content-type", "application/octet-stream")],
        &big,
    );
    assert_eq!((upload.status, upload.text()), (200, "32768".to_string()));
    let small = server.request(
        "POST",
        "/api/small",
        &[("content-type", "application/octet-stream")],
        &big,
    );
    assert_eq!(small.status, 413);
    let too_big = vec![b'a'; 65 * 1024];
    let refused = server.request(
        "POST",
        "/api/upload",
        &[("content-type", "application/octet-stream")],
        &too_big,
    );
    assert_eq!(refused.status, 413);
    let started = std::time::Instant::now();
    assert_eq!(server.get("/api/quick").status, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(server.get("/api/counted").status, 504);
    assert_eq!(server.get("/api/uncounted").text(), "10000");
}

#[test]
fn a_bad_config_is_a_load_error_of_the_route() {
    for (config, needle) in [
        (
            "const CONFIG = #{ bodylimit: \"1mb\" };",
            "unknown key 'bodylimit'",
        ),
        ("const CONFIG = #{ timeout: \"soon\" };", "timeout"),
        ("const CONFIG = #{ max_operations: 0 };", "max_operations"),
        ("const CONFIG = 5;", "must be a map"),
        ("let CONFIG = #{ timeout: \"1s\" };", "const"),
    ] {
        let app = TestApp::new();
        app.write(
            "pages/api/x.rhai",
            &format!("\n{config}\nfn GET() {{ 1 }}\n"),
        );
        let check = app.run("check");
        assert_eq!(check.status.code(), Some(1), "{config}");
        assert!(
            check.stderr.contains("pages/api/x.rhai:2"),
            "{config}: {}",
            check.stderr
        );
        assert!(check.stderr.contains(needle), "{config}: {}", check.stderr);
        let server = app.serve("dev", &[]);
        let response = server.get("/api/x");
        assert_eq!(response.status, 500);
        assert_eq!(response.json()["file"], "pages/api/x.rhai");
    }
}
