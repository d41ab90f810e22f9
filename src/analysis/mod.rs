//! Reading Rhai source without running it, in one place: route loading (the trailing-`;`
//! rule, import positions), `rhapi check` (lint rules) and `rhapi openapi` all read scripts
//! through this module. It knows Rhai's tokens and what a route file looks like, and
//! nothing of HTTP or the server. See docs/design.md, "Analysis".
//!
//! - [`source`]: a file's text with a line index (byte offset <-> line:column);
//! - [`lexer`]: the tokens, as Rhai's parser lexes them; never panics;
//! - [`outline`]: a file's top-level functions (with doc comments) and its imports;
//! - [`route_shape`]: which functions are route functions, and the list of methods;
//! - [`imports`]: where an `import "..."` points (relative to the file, inside `pages/`);
//! - [`tree`]: walking Rhai's own syntax tree of a file;
//! - [`knowledge`]: what an app's engine lets scripts call ([`AppKnowledge`]);
//! - [`suggest`]: did-you-mean by edit distance;
//! - [`api_docs`]: the doc tables of `req`, `res` and the batteries, for the language server;
//! - [`diagnostic`]: what a rule reports; [`rules`]: the lint rules, one per file;
//!   [`check_file`] runs them all on one file, hints included;
//! - [`hints`]: the JavaScript habits and the hint naming the Rhai form of each, for
//!   compile errors, run-time errors and `rhapi check`.

pub mod api_docs;
pub mod diagnostic;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod hints;
pub mod imports;
pub mod knowledge;
pub mod lexer;
pub mod outline;
pub mod route_shape;
pub mod rules;
pub mod source;
pub mod suggest;
pub mod tree;

pub use diagnostic::Diagnostic;
pub use knowledge::AppKnowledge;
pub use route_shape::METHODS;
pub use rules::check_file;
pub use source::{Position, SourceFile};
