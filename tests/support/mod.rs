//! Test support: a temporary app (`app.rs`), the real `rhapi` binary started on a free port
//! and killed on drop (`server.rs`), and the responses of a small raw HTTP/1.1 client that
//! can also send malformed requests (`http.rs`); test certificates (`tls.rs`); the SQLite and PostgreSQL
//! twins of `db::` tests (`backend.rs`).

#![allow(dead_code, unused_imports, unused_macros)]

mod app;
mod backend;
pub mod fuzz;
mod http;
mod server;
pub mod tls;
pub mod upstream;
pub mod websocket;

use std::time::Duration;

pub use app::*;
pub use backend::*;
pub use http::*;
pub use server::*;

/// How long a test waits for something that should happen "soon" (server ready, reload).
/// Generous on purpose: this is a deadline for polling, not a speed requirement.
pub const DEADLINE: Duration = Duration::from_secs(20);
