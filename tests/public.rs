//! docs/reference.md, "Static files": `public/` at the root URL, with types, caching,
//! ranges, compression, 404 pages and a single-page app fallback; nothing outside the
//! folder ever leaks.

use crate::support;

use std::io::Read;

use serde_json::json;
use support::{Response, Server, TestApp};

/// An app with a few public files and one route.
fn app() -> TestApp {
    let app = TestApp::fixture("basic");
    app.write("public/index.html", "<h1>home</h1>");
    app.write("public/docs/index.html", "<h1>docs</h1>");
    app.write("public/hello.txt", "hello");
    app.write("public/data.json", "{\"a\":1}");
    app.write("public/logo.svg", "<svg/>");
    app.write("public/blob.unknownext", "??");
    app.write("public/.secret", "dotfile");
    app.write("public/.git/config", "dotfolder");
    app
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    server.request("GET", path, headers, b"")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).expect("valid brotli");
    out
}

#[test]
fn files_at_the_root_url_with_their_types() {
    let app = app();
    std::fs::write(app.path().join("public/logo.png"), [0x89, b'P', b'N', b'G']).unwrap();
    let server = app.serve("start", &[]);
    for (path, body, content_type) in [
        ("/", "<h1>home</h1>", "text/html; charset=utf-8"),
        ("/index.html", "<h1>home</h1>", "text/html; charset=utf-8"),
        ("/docs", "<h1>docs</h1>", "text/html; charset=utf-8"),
        ("/docs/", "<h1>docs</h1>", "text/html; charset=utf-8"),
        ("/hello.txt", "hello", "text/plain; charset=utf-8"),
        ("/data.json", "{\"a\":1}", "application/json"),
        ("/logo.svg", "<svg/>", "image/svg+xml"),
        ("/blob.unknownext", "??", "application/octet-stream"),
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.text(), body, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=0, must-revalidate")
        );
        assert!(response.header("etag").is_some(), "{path}");
        assert!(response.header("last-modified").is_some(), "{path}");
    }
    let png = get(&server, "/logo.png", &[]);
    assert_eq!(png.body, [0x89, b'P', b'N', b'G']);
    assert_eq!(png.header("content-type"), Some("image/png"));
    // The routes are still the routes.
    assert_eq!(get(&server, "/api/hello", &[]).status, 200);
    let head = server.request("HEAD", "/hello.txt", &[], b"");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("5"))
    );
    assert!(head.body.is_empty());
}

#[test]
fn only_get_and_head() {
    let app = app();
    let server = app.serve("start", &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let response = server.request(method, "/hello.txt", &[], b"");
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
        assert_eq!(response.json(), json!({ "error": "Method Not Allowed" }));
    }
    assert_eq!(server.request("POST", "/missing.txt", &[], b"").status, 404);
}

#[test]
fn content_hashed_names_are_immutable() {
    let app = app();
    app.write("public/assets/index-BxKaQzPq.js", "console.log(1)");
    app.write("public/assets/main-6d9e7c4f1c2a.css", "a{}");
    app.write("public/assets/photo-original.css", "b{}");
    let server = app.serve("start", &[]);
    for path in ["/assets/index-BxKaQzPq.js", "/assets/main-6d9e7c4f1c2a.css"] {
        let response = get(&server, path, &[]);
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
    }
    let js = get(&server, "/assets/index-BxKaQzPq.js", &[]);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    let plain = get(&server, "/assets/photo-original.css", &[]);
    assert_eq!(
        plain.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
}

#[test]
fn conditional_requests_get_304() {
    let app = app();
    let server = app.serve("start", &[]);
    let first = get(&server, "/hello.txt", &[]);
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let again = get(&server, "/hello.txt", &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let since = get(&server, "/hello.txt", &[("if-modified-since", &modified)]);
    assert_eq!(since.status, 304);
    let other = get(&server, "/hello.txt", &[("if-none-match", "\"other\"")]);
    assert_eq!((other.status, other.text().as_str()), (200, "hello"));
}

#[test]
fn ranges_get_206_and_unsatisfiable_416() {
    let app = app();
    app.write("public/digits.txt", "0123456789");
    let server = app.serve("start", &[]);
    let part = get(&server, "/digits.txt", &[("range", "bytes=2-5")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "2345");
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    let tail = get(
        &server,
        "/digits.txt",
        &[("range", "bytes=-3"), ("accept-encoding", "gzip")],
    );
    assert_eq!((tail.status, tail.text().as_str()), (206, "789"));
    assert_eq!(
        tail.header("content-encoding"),
        None,
        "a range is never compressed"
    );
    let beyond = get(&server, "/digits.txt", &[("range", "bytes=50-60")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */10"));
}

#[test]
fn text_over_1kb_is_compressed_br_first_then_gzip() {
    let app = app();
    let big = "<p>compress me</p>\n".repeat(200);
    app.write("public/big.html", &big);
    std::fs::write(app.path().join("public/big.png"), vec![7u8; 5000]).unwrap();
    let server = app.serve("start", &[]);

    let br = get(
        &server,
        "/big.html",
        &[("accept-encoding", "gzip, deflate, br")],
    );
    assert_eq!(br.status, 200);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    assert_eq!(unbrotli(&br.body), big.as_bytes());
    assert!(br.body.len() < big.len() / 5);

    let gzip = get(&server, "/big.html", &[("accept-encoding", "gzip")]);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gzip.body), big.as_bytes());
    // Revalidating the compressed answer still gets its 304.
    let etag = gzip.header("etag").unwrap().to_string();
    let again = get(
        &server,
        "/big.html",
        &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
    );
    assert_eq!(again.status, 304);

    let plain = get(&server, "/big.html", &[]);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), big);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));

    // Small text and images are sent as they are.
    let small = get(&server, "/hello.txt", &[("accept-encoding", "br")]);
    assert_eq!(
        (small.header("content-encoding"), small.text().as_str()),
        (None, "hello")
    );
    let png = get(&server, "/big.png", &[("accept-encoding", "br, gzip")]);
    assert_eq!(png.header("content-encoding"), None);
    assert_eq!(png.body.len(), 5000);
}

#[test]
fn precompressed_siblings_are_sent_as_they_are() {
    let app = app();
    app.write("public/app.js", "console.log('original')");
    let gz = {
        use std::io::Write;
        let mut writer = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        writer.write_all(b"console.log('from gz')").unwrap();
        writer.finish().unwrap()
    };
    std::fs::write(app.path().join("public/app.js.gz"), &gz).unwrap();
    let server = app.serve("start", &[]);
    let response = get(&server, "/app.js", &[("accept-encoding", "gzip")]);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(
        response.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(response.header("vary"), Some("Accept-Encoding"));
    assert_eq!(response.body, gz, "sent byte for byte");
    // No br sibling: a br-only client gets the file itself.
    let plain = get(&server, "/app.js", &[("accept-encoding", "br")]);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), "console.log('original')");
}

#[test]
fn api_responses_over_1kb_are_compressed_too() {
    let app = TestApp::new();
    app.write(
        "pages/api/big.rhai",
        "fn GET() { let items = []; for i in 0..200 { items.push(#{ n: i, text: \"some text\" }); } items }\n",
    );
    app.write("pages/api/small.rhai", "fn GET() { #{ ok: true } }\n");
    let server = app.serve("start", &[]);
    let plain = get(&server, "/api/big", &[]);
    let br = get(&server, "/api/big", &[("accept-encoding", "br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    assert_eq!(unbrotli(&br.body), plain.body);
    let gzip = get(&server, "/api/big", &[("accept-encoding", "gzip")]);
    assert_eq!(gunzip(&gzip.body), plain.body);
    let small = get(&server, "/api/small", &[("accept-encoding", "br")]);
    assert_eq!(small.header("content-encoding"), None);
    assert_eq!(small.json(), json!({ "ok": true }));
}

#[test]
fn nothing_outside_public_and_no_dotfiles() {
    let app = app();
    app.write("outside.txt", "TOP-SECRET");
    app.write(".env", "SECRET=TOP-SECRET-ENV");
    std::os::unix::fs::symlink(
        app.path().join("outside.txt"),
        app.path().join("public/link.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(app.path(), app.path().join("public/appdir")).unwrap();
    std::os::unix::fs::symlink(
        app.path().join("public/hello.txt"),
        app.path().join("public/inner.txt"),
    )
    .unwrap();
    let server = app.serve("start", &[]);
    for path in [
        "/link.txt",
        "/appdir/outside.txt",
        "/appdir/.env",
        "/.secret",
        "/.git/config",
        "/%2esecret",
        "/..%2foutside.txt",
        "/docs%2f..%2f..%2foutside.txt",
        "/docs//index.html",
        "/hello.txt/",
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert!(!response.text().contains("TOP-SECRET"), "{path}");
    }
    for path in [
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/docs/%2E%2E/%2e%2e/outside.txt",
        "/a%00b",
        "/%zz",
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert_eq!(response.json(), json!({ "error": "Bad Request" }));
    }
    // A symlink that stays inside is followed.
    assert_eq!(get(&server, "/inner.txt", &[]).text(), "hello");
}

#[test]
fn files_written_while_serving_are_served_at_once() {
    let app = app();
    let server = app.serve("start", &["--no-watch"]);
    assert_eq!(get(&server, "/new.txt", &[]).status, 404);
    app.write("public/new.txt", "fresh");
    let response = get(&server, "/new.txt", &[]);
    assert_eq!((response.status, response.text().as_str()), (200, "fresh"));
    app.write("public/new.txt", "changed, longer");
    assert_eq!(get(&server, "/new.txt", &[]).text(), "changed, longer");
    app.remove("public/new.txt");
    assert_eq!(get(&server, "/new.txt", &[]).status, 404);
}

#[test]
fn api_paths_never_come_from_public() {
    let app = app();
    app.write("public/api/hello", "from public");
    app.write("public/api/other.txt", "from public");
    let server = app.serve("start", &[]);
    let routed = get(&server, "/api/hello", &[]);
    assert_ne!(routed.text(), "from public");
    assert_eq!(
        get(&server, "/api/other.txt", &[]).json(),
        json!({ "error": "Not Found" })
    );
    server.wait_for_log("public/api/ is never served");
    let check = app.run("check");
    assert!(
        check.stderr.contains("public/api/ is never served"),
        "{}",
        check.stderr
    );
}

#[test]
fn not_found_page_for_browsers_json_for_the_rest() {
    let app = app();
    app.write("public/404.html", "<h1>lost</h1>");
    let server = app.serve("start", &[]);
    let browser = get(
        &server,
        "/nope",
        &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
    );
    assert_eq!(browser.status, 404);
    assert_eq!(browser.text(), "<h1>lost</h1>");
    assert_eq!(
        browser.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let client = get(&server, "/nope", &[("accept", "application/json")]);
    assert_eq!(
        (client.status, client.json()),
        (404, json!({ "error": "Not Found" }))
    );
    // Under /api a 404 is always JSON.
    let api = get(&server, "/api/nope", &[("accept", "text/html")]);
    assert_eq!(api.json(), json!({ "error": "Not Found" }));
}

#[test]
fn spa_answers_html_404s_with_index() {
    let app = app();
    app.write("rhapi.toml", "[public]\nspa = true\n");
    let server = app.serve("start", &[]);
    let deep = get(&server, "/app/settings/profile", &[("accept", "text/html")]);
    assert_eq!((deep.status, deep.text().as_str()), (200, "<h1>home</h1>"));
    let json = get(
        &server,
        "/app/settings/profile",
        &[("accept", "application/json")],
    );
    assert_eq!(json.status, 404);
    assert_eq!(
        get(&server, "/api/nope", &[("accept", "text/html")]).status,
        404
    );
}

#[test]
fn public_dir_from_rhapi_toml() {
    let app = app();
    app.write("static/only-here.txt", "static");
    app.write("rhapi.toml", "[public]\ndir = \"static\"\n");
    let server = app.serve("start", &[]);
    assert_eq!(get(&server, "/only-here.txt", &[]).text(), "static");
    assert_eq!(get(&server, "/hello.txt", &[]).status, 404);
}

#[test]
fn if_range_that_does_not_match_gets_the_whole_file() {
    let app = app();
    app.write("public/digits.txt", "0123456789");
    let server = app.serve("start", &[]);
    let first = get(&server, "/digits.txt", &[]);
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();
    let ranged = |if_range: &str| {
        get(
            &server,
            "/digits.txt",
            &[("range", "bytes=2-5"), ("if-range", if_range)],
        )
    };
    // Still the same file: the range.
    for same in [etag.as_str(), modified.as_str()] {
        let part = ranged(same);
        assert_eq!((part.status, part.text().as_str()), (206, "2345"), "{same}");
        assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    }
    // Another version (another tag, a weak tag, another date): the whole file, 200.
    let weak = format!("W/{etag}");
    for other in ["\"other\"", weak.as_str(), "Thu, 01 Jan 2015 00:00:00 GMT"] {
        let whole = ranged(other);
        assert_eq!(
            (whole.status, whole.text().as_str()),
            (200, "0123456789"),
            "{other}"
        );
        assert_eq!(whole.header("content-range"), None, "{other}");
    }
}

#[test]
fn a_range_unit_other_than_bytes_is_ignored() {
    let app = app();
    app.write("public/digits.txt", "0123456789");
    let server = app.serve("start", &[]);
    for range in ["items=0-5", "lines=1-2, 4-5"] {
        let whole = get(&server, "/digits.txt", &[("range", range)]);
        assert_eq!(
            (whole.status, whole.text().as_str()),
            (200, "0123456789"),
            "{range}"
        );
        assert_eq!(whole.header("content-range"), None, "{range}");
    }
    // A malformed byte range is still refused.
    assert_eq!(
        get(&server, "/digits.txt", &[("range", "bytes=x-y")]).status,
        416
    );
}

#[test]
fn a_range_end_past_the_file_is_clamped() {
    let app = app();
    app.write("public/digits.txt", "0123456789");
    let server = app.serve("start", &[]);
    for (range, body, content_range) in [
        ("bytes=2-99", "23456789", "bytes 2-9/10"),
        (
            "bytes=2-99999999999999999999999",
            "23456789",
            "bytes 2-9/10",
        ),
        ("bytes=0-18446744073709551616", "0123456789", "bytes 0-9/10"),
        (
            "bytes=-99999999999999999999999",
            "0123456789",
            "bytes 0-9/10",
        ),
    ] {
        let part = get(&server, "/digits.txt", &[("range", range)]);
        assert_eq!((part.status, part.text().as_str()), (206, body), "{range}");
        assert_eq!(part.header("content-range"), Some(content_range), "{range}");
    }
    // A start past the file is still unsatisfiable, however large.
    let beyond = get(
        &server,
        "/digits.txt",
        &[("range", "bytes=99999999999999999999999-")],
    );
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */10"));
}
