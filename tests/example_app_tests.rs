//! The example app's own Rhai tests (`tests/app/*.test.rhai`: the auth flow, notes owned by
//! their user, validation errors), run by `rhapi test` at the repo root as a user would.
//! (Cargo compiles only `tests/*.rs`; the `.test.rhai` files are for `rhapi test`.)

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{bin, run_with_deadline};

#[test]
fn the_example_app_passes_its_rhai_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(bin());
    cmd.arg("test").arg(root).env_remove("DATABASE_URL");
    let output = run_with_deadline(cmd);
    let text = format!("{}{}", output.stdout, output.stderr);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    for file in [
        "tests/app/auth.test.rhai",
        "tests/app/notes.test.rhai",
        "tests/app/validation.test.rhai",
    ] {
        assert!(text.contains(file), "{file} did not run:\n{text}");
    }
}
