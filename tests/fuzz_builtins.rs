//! docs/reference.md, "Errors and limits": every native function a script can call (the list
//! in `tests/fixtures/fuzz/functions.txt`, which a unit test keeps equal to what the engine
//! registers) is called with huge and hostile arguments (sizes up to 2^40, negative sizes,
//! deep nesting, megabyte strings) under a 64 MB memory budget. The server must answer every
//! request, and its resident memory must stay under 300 MB.

use crate::support;

use std::fmt::Write as _;

use support::TestApp;

/// Values of each parameter type, as Rhai expressions; every one is built afresh per call
/// (functions below), since a method may change its first argument.
fn values(ty: &str) -> &'static [&'static str] {
    match ty {
        "int" => &[
            "1099511627776",
            "-1",
            "-1099511627776",
            "0",
            "9223372036854775807",
            "100000000",
        ],
        "float" => &["1e300", "-1.0", "0.0", "(0.0 / 0.0)"],
        "string" => &["v_big()", "\"\"", "\"x%ff\\n\"", "v_big()"],
        "char" => &["'x'", "'\\U0010FFFF'"],
        "bool" => &["true", "false"],
        "array" => &["v_nested()", "v_wide()", "[]"],
        "map" => &["v_map()", "#{}"],
        "blob" => &["v_blob()", "blob()"],
        "Fn" => &["Fn(\"v_id\")", "|a, b| a", "Fn(\"v_big\")"],
        "()" => &["()"],
        "range" => &["0..1099511627776", "-5..5"],
        "range=" => &["0..=1099511627776", "5..=-5"],
        _ => &[
            "v_big()",
            "1099511627776",
            "v_nested()",
            "v_map()",
            "v_blob()",
            "-1",
            "()",
        ],
    }
}

const HELPERS: &str = r#"
fn v_big() { let s = ""; s.pad(1048576, 'x'); s }
fn v_nested() { let a = []; for i in 0..200 { a = [a]; } a }
fn v_wide() { let a = []; a.pad(100000, 7); a }
fn v_map() { #{ a: v_big(), b: v_wide(), c: #{ d: [1, 2, 3] } } }
fn v_blob() { blob(1048576, 255) }
fn v_id(x) { x }
"#;

/// The route that calls `signature` (`name(int, string)`) with several hostile argument
/// lists, each in its own `try`.
fn route_for(signature: &str) -> String {
    let (name, params) = signature.split_once('(').unwrap();
    let params: Vec<&str> = params
        .trim_end_matches(')')
        .split(", ")
        .filter(|p| !p.is_empty())
        .collect();
    let rounds = params.iter().map(|p| values(p).len()).max().unwrap_or(1);
    let mut body = String::from("fn GET() {\n    let failed = 0;\n");
    for round in 0..rounds {
        let args: Vec<&str> = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let options = values(p);
                options[(round + i) % options.len()]
            })
            .collect();
        writeln!(
            body,
            "    try {{ {name}({}); }} catch (e) {{ failed += 1; }}",
            args.join(", ")
        )
        .unwrap();
    }
    body.push_str("    #{ failed: failed }\n}\n");
    body.push_str(HELPERS);
    body
}

#[test]
fn every_native_function_survives_hostile_arguments_under_the_budget() {
    let list = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz/functions.txt"),
    )
    .unwrap();
    let signatures: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        signatures.len() > 300,
        "{} functions listed",
        signatures.len()
    );
    let app = TestApp::fixture("basic");
    for (i, signature) in signatures.iter().enumerate() {
        app.write(&format!("pages/api/fuzz/{i}.rhai"), &route_for(signature));
    }
    let server = app.serve(
        "dev",
        &["--max-memory", "64mb", "--timeout", "2s", "--workers", "1"],
    );
    let mut peak = 0;
    for (i, signature) in signatures.iter().enumerate() {
        // Named first: a call that took the server down shows here.
        eprintln!("fuzz: {signature}");
        let r = server.get(&format!("/api/fuzz/{i}"));
        // 200: every call returned or failed catchably; 204: `exit()` ended the run; 500: a run stopped at its memory
        // budget; 504: at its time budget (`sleep`, a huge loop). Never no answer.
        assert!(
            matches!(r.status, 200 | 204 | 500 | 504),
            "{signature}: {} {}",
            r.status,
            r.text()
        );
        if r.status == 500 {
            let text = r.text();
            assert!(
                text.contains("memory budget") || text.contains("nested arrays or maps deeper"),
                "{signature}: a 500 that is not a budget: {}",
                r.text()
            );
        }
        let rss = server.rss_mib();
        peak = peak.max(rss);
        assert!(rss < 300, "{signature}: RSS {rss} MiB");
    }
    let hello = server.get("/api/hello");
    assert_eq!(hello.status, 200, "{}", hello.text());
    eprintln!("{} functions driven; peak RSS {peak} MiB", signatures.len());
}
