//! docs/reference.md, "Modules": `import` shares code between routes, relative to the importing file and only
//! inside `pages/`; a module change reloads every route that depends on it.

use crate::support;

use serde_json::json;
use support::{Response, TestApp};

fn is_text(response: &Response, text: &str) -> bool {
    response.status == 200 && response.text() == text
}

const GREET: &str = "fn hello(name) {\n    \"Hello, \" + name + \"!\"\n}\n";

#[test]
fn import_resolves_relative_to_the_importing_file() {
    let app = TestApp::new();
    app.write("pages/_lib/greet.rhai", GREET);
    app.write("pages/api/_lib/local.rhai", "fn name() { \"local\" }\n");
    app.write(
        "pages/api/hi.rhai",
        "import \"../_lib/greet\" as greet;\nimport \"_lib/local\" as local;\n\nfn GET() {\n    greet::hello(local::name())\n}\n",
    );
    // One folder deeper, the same module is one more `..` away.
    app.write(
        "pages/api/users/[id].rhai",
        "import \"../../_lib/greet\" as greet;\n\nfn GET(req) {\n    greet::hello(req.params.id)\n}\n",
    );
    let server = app.serve("dev", &[]);
    let hi = server.get("/api/hi");
    assert!(is_text(&hi, "Hello, local!"), "{} {}", hi.status, hi.text());
    let user = server.get("/api/users/42");
    assert!(
        is_text(&user, "Hello, 42!"),
        "{} {}",
        user.status,
        user.text()
    );
    // Modules are not routes.
    assert_eq!(server.get("/api/_lib/local").status, 404);
}

#[test]
fn the_rhai_extension_is_optional() {
    let app = TestApp::new();
    app.write("pages/api/_lib/greet.rhai", GREET);
    app.write(
        "pages/api/with.rhai",
        "import \"_lib/greet.rhai\" as greet;\nfn GET() { greet::hello(\"with\") }\n",
    );
    app.write(
        "pages/api/without.rhai",
        "import \"./_lib/greet\" as greet;\nfn GET() { greet::hello(\"without\") }\n",
    );
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/with"), "Hello, with!"));
    assert!(is_text(&server.get("/api/without"), "Hello, without!"));
    assert!(app.run("check").status.success());
}

#[test]
fn nested_imports_resolve_relative_to_the_module() {
    let app = TestApp::new();
    // pages/api/_lib/a.rhai imports ./inner/b, which is pages/api/_lib/inner/b.rhai,
    // not pages/api/inner/b.rhai (which does not exist).
    app.write(
        "pages/api/_lib/a.rhai",
        "import \"./inner/b\" as b;\n\nfn describe() {\n    \"a+\" + b::describe()\n}\n",
    );
    app.write(
        "pages/api/_lib/inner/b.rhai",
        "import \"../../../_shared/c\" as c;\n\nfn describe() {\n    \"b+\" + c::describe()\n}\n",
    );
    app.write("pages/_shared/c.rhai", "fn describe() { \"c\" }\n");
    app.write(
        "pages/api/chain.rhai",
        "import \"_lib/a\" as a;\n\nfn GET() {\n    a::describe()\n}\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/chain");
    assert!(
        is_text(&response, "a+b+c"),
        "{} {}",
        response.status,
        response.text()
    );
    let check = app.run("check");
    assert!(check.status.success(), "{}{}", check.stdout, check.stderr);
}

const NEEDS_MISSING: &str = "import \"_lib/nope\" as nope;\n\nfn GET() {\n    nope::x()\n}\n";

#[test]
fn a_missing_module_is_a_load_error_of_the_importing_route() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/needs.rhai", NEEDS_MISSING);

    let check = app.run("check");
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let output = format!("{}{}", check.stdout, check.stderr);
    assert!(
        output.contains("pages/api/needs.rhai"),
        "names the route file: {output}"
    );
    assert!(output.contains("_lib/nope"), "names the module: {output}");

    let start = app.run("start");
    assert_eq!(
        start.status.code(),
        Some(1),
        "start refuses: {}{}",
        start.stdout,
        start.stderr
    );

    let server = app.serve("dev", &[]);
    let response = server.get("/api/needs");
    assert_eq!(response.status, 500);
    let body = response.json();
    assert_eq!(body["file"], "pages/api/needs.rhai", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("_lib/nope"),
        "{body}"
    );
    assert_eq!(server.get("/api/hello").status, 200);

    // Creating the module fixes the route.
    app.write("pages/api/_lib/nope.rhai", "fn x() { \"found\" }\n");
    server.poll_until("/api/needs", |r| is_text(r, "found"));
}

#[test]
fn a_missing_module_error_points_at_the_import_line() {
    let app = TestApp::new();
    app.write(
        "pages/api/needs.rhai",
        "// needs a module\n\nimport \"_lib/nope\" as nope;\n\nfn GET() {\n    nope::x()\n}\n",
    );
    let server = app.serve("dev", &[]);
    let body = server.get("/api/needs").json();
    assert_eq!(body["file"], "pages/api/needs.rhai", "{body}");
    assert_eq!(body["line"], 3, "the import is on line 3: {body}");
    assert!(body["column"].as_u64().is_some(), "{body}");
}

#[test]
fn an_import_outside_pages_is_a_load_error() {
    let app = TestApp::fixture("basic");
    // The file exists, but outside pages/.
    app.write("secret.rhai", "fn x() { \"outside\" }\n");
    app.write(
        "pages/api/escape.rhai",
        "import \"../../secret\" as s;\n\nfn GET() {\n    s::x()\n}\n",
    );

    let check = app.run("check");
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        check.stdout,
        check.stderr
    );
    assert!(format!("{}{}", check.stdout, check.stderr).contains("pages/api/escape.rhai"));

    let server = app.serve("dev", &[]);
    let response = server.get("/api/escape");
    assert_eq!(response.status, 500);
    assert!(!response.text().contains("outside"), "{}", response.text());
    let body = response.json();
    assert_eq!(body["file"], "pages/api/escape.rhai", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("pages/"),
        "says why: {body}"
    );
    assert_eq!(server.get("/api/hello").status, 200);
}

#[test]
fn an_absolute_import_outside_pages_is_a_load_error() {
    let app = TestApp::fixture("basic");
    app.write("secret.rhai", "fn x() { \"outside\" }\n");
    let absolute = app.path().join("secret").display().to_string();
    app.write(
        "pages/api/escape.rhai",
        &format!("import \"{absolute}\" as s;\n\nfn GET() {{\n    s::x()\n}}\n"),
    );
    let check = app.run("check");
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/escape");
    assert_eq!(response.status, 500);
    assert!(!response.text().contains("outside"), "{}", response.text());
}

#[test]
fn changing_a_module_reloads_every_route_that_imports_it() {
    let app = TestApp::new();
    app.write("pages/api/_lib/shared.rhai", "fn version() { \"v1\" }\n");
    app.write(
        "pages/api/one.rhai",
        "import \"_lib/shared\" as s;\nfn GET() { \"one \" + s::version() }\n",
    );
    app.write(
        "pages/api/two/index.rhai",
        "import \"../_lib/shared\" as s;\nfn GET() { \"two \" + s::version() }\n",
    );
    let server = app.serve("dev", &[]);
    assert!(is_text(&server.get("/api/one"), "one v1"));
    assert!(is_text(&server.get("/api/two"), "two v1"));

    app.write("pages/api/_lib/shared.rhai", "fn version() { \"v2\" }\n");
    server.poll_until("/api/one", |r| is_text(r, "one v2"));
    server.poll_until("/api/two", |r| is_text(r, "two v2"));
}

#[test]
fn changing_a_module_reloads_its_dependents_transitively() {
    let app = TestApp::new();
    app.write(
        "pages/api/_lib/a.rhai",
        "import \"b\" as b;\nfn value() { \"a(\" + b::value() + \")\" }\n",
    );
    app.write("pages/api/_lib/b.rhai", "fn value() { \"b1\" }\n");
    app.write(
        "pages/api/route.rhai",
        "import \"_lib/a\" as a;\nfn GET() { a::value() }\n",
    );
    let server = app.serve("start", &[]);
    assert!(is_text(&server.get("/api/route"), "a(b1)"));

    app.write("pages/api/_lib/b.rhai", "fn value() { \"b2\" }\n");
    server.poll_until("/api/route", |r| is_text(r, "a(b2)"));
    // An editor save by rename of the deep module works too.
    app.write_atomic("pages/api/_lib/b.rhai", "fn value() { \"b3\" }\n");
    server.poll_until("/api/route", |r| is_text(r, "a(b3)"));
}

#[test]
fn a_module_that_stops_compiling_breaks_its_dependents_in_dev_only() {
    let app = TestApp::fixture("basic");
    app.write("pages/api/_lib/m.rhai", "fn value() { \"good\" }\n");
    app.write(
        "pages/api/user.rhai",
        "import \"_lib/m\" as m;\nfn GET() { m::value() }\n",
    );
    let dev = app.serve("dev", &[]);
    assert!(is_text(&dev.get("/api/user"), "good"));
    app.write("pages/api/_lib/m.rhai", "fn value() {\n    let = ;\n}\n");
    let broken = dev.poll_until("/api/user", |r| r.status == 500);
    let body = broken.json();
    assert_eq!(
        body["file"], "pages/api/_lib/m.rhai",
        "the module is at fault: {body}"
    );
    assert_eq!(body["line"], 2, "{body}");
    assert_eq!(dev.get("/api/hello").status, 200);
    app.write("pages/api/_lib/m.rhai", "fn value() { \"fixed\" }\n");
    dev.poll_until("/api/user", |r| is_text(r, "fixed"));
}

#[test]
fn modules_see_env() {
    let app = TestApp::new();
    app.write(".env", "RHAPI_T_MODULE_KEY=module-value\n");
    app.write(
        "pages/api/_lib/config.rhai",
        "fn key() { env::RHAPI_T_MODULE_KEY }\nfn maybe() { env::get(\"RHAPI_T_UNSET_KEY\") }\n",
    );
    app.write(
        "pages/api/config.rhai",
        "import \"_lib/config\" as config;\nfn GET() { #{ key: config::key(), maybe: config::maybe() } }\n",
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/config");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({ "key": "module-value", "maybe": null })
    );

    // And they see a new .env.
    app.write(".env", "RHAPI_T_MODULE_KEY=changed-value\n");
    server.poll_until("/api/config", |r| {
        r.status == 200 && r.json()["key"] == "changed-value"
    });
}

#[test]
fn an_import_cycle_is_a_load_error_not_a_crash() {
    let app = TestApp::fixture("basic");
    app.write(
        "pages/api/_lib/x.rhai",
        "import \"y\" as y;\nfn f() { 1 }\n",
    );
    app.write(
        "pages/api/_lib/y.rhai",
        "import \"x\" as x;\nfn f() { 2 }\n",
    );
    app.write(
        "pages/api/cycle.rhai",
        "import \"_lib/x\" as x;\nfn GET() { x::f() }\n",
    );
    let check = app.run("check");
    assert_eq!(
        check.status.code(),
        Some(1),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let server = app.serve("dev", &[]);
    assert_eq!(server.get("/api/cycle").status, 500);
    assert_eq!(server.get("/api/hello").status, 200);
}
