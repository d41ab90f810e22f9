//! docs/reference.md, "Errors" (what `catch (e)` binds): one shape wherever the error
//! happened. A thrown value comes back as thrown; an error of Rhai itself is
//! `#{ message, error, source, line, position }` of the place it happened, whether that was
//! in the `try` block or inside a function of the file or of a module.

use crate::support;

use serde_json::{json, Value};
use support::TestApp;

const MODULE: &str = "\
fn bad() { parse_int(\"x\") }
fn boom() { throw \"boom\"; }
fn refuse() { throw #{ status: 400, error: \"no\" }; }
fn missing() { no_such_function(1) }
";

const ROUTE: &str = "\
import \"_lib/m\" as m;
fn local_bad() { parse_int(\"x\") }
fn GET() {
    let out = #{};
    try { parse_int(\"x\"); } catch (e) { out.direct = e; }
    try { local_bad(); } catch (e) { out.local = e; }
    try { m::bad(); } catch (e) { out.in_module = e; }
    try { no_such_function(1); } catch (e) { out.missing_direct = e; }
    try { m::missing(); } catch (e) { out.missing_module = e; }
    try { throw \"boom\"; } catch (e) { out.thrown_direct = e; }
    try { m::boom(); } catch (e) { out.thrown_module = e; }
    try { m::refuse(); } catch (e) { out.thrown_map = e; }
    out
}
";

fn caught() -> Value {
    let app = TestApp::new();
    app.write("pages/api/_lib/m.rhai", MODULE);
    app.write("pages/api/c.rhai", ROUTE);
    let server = app.serve("dev", &[]);
    let response = server.get("/api/c");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn an_error_of_rhai_has_one_shape_wherever_it_happened() {
    let out = caught();
    let message = "Error parsing integer number 'x': invalid digit found in string";
    assert_eq!(
        out["direct"],
        json!({ "message": message, "error": "ErrorArithmetic", "source": "pages/api/c.rhai", "line": 5, "position": 11 })
    );
    // Inside a function: the same keys, where it happened (no "in call to function").
    assert_eq!(
        out["local"],
        json!({ "message": message, "error": "ErrorArithmetic", "source": "pages/api/c.rhai", "line": 2, "position": 18 })
    );
    assert_eq!(
        out["in_module"],
        json!({ "message": message, "error": "ErrorArithmetic", "source": "pages/api/_lib/m.rhai", "line": 1, "position": 12 })
    );
    let missing = |key: &str| {
        let mut map = out[key].clone();
        for place in ["source", "line", "position"] {
            map.as_object_mut().unwrap().remove(place);
        }
        map
    };
    assert_eq!(missing("missing_direct"), missing("missing_module"));
    assert_eq!(
        missing("missing_direct"),
        json!({ "message": "Function not found: no_such_function (i64)", "error": "ErrorFunctionNotFound" })
    );
}

#[test]
fn a_thrown_value_comes_back_as_thrown() {
    let out = caught();
    assert_eq!(out["thrown_direct"], "boom");
    assert_eq!(out["thrown_module"], "boom");
    assert_eq!(out["thrown_map"], json!({ "status": 400, "error": "no" }));
}
