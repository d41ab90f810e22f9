//! Every integration test, in one test binary: `support/` (a temporary app, the real
//! `rhapi` binary on a free port, a raw HTTP client) compiles once, and one binary links
//! instead of one per file. Each file below is a module named after what it covers; run one
//! with `cargo test --test tests <module>::` (for example `cargo test --test tests limits::`).
//!
//! One exception: `cpu.rs` compares hello's latency with and without heavy work beside it,
//! so it is a test binary of its own (cargo runs test binaries one after another), and its
//! tests take turns: no other test shares the cores with the one measuring.

mod support;

mod after_response;
mod bad_input;
mod batteries_crypto;
mod batteries_db;
mod batteries_db_tls;
mod batteries_example;
mod batteries_http;
mod batteries_mail;
mod batteries_multipart;
mod browser;
mod bundle;
mod caught_errors;
mod checks;
mod cli;
mod concurrency;
mod conduit;
mod config;
mod cors;
mod env;
mod errors;
mod example_app_tests;
mod fuzz_builtins;
mod handlers;
mod hints;
mod isolation;
mod jobs;
mod limits;
mod lsp;
mod middleware;
mod modules;
mod newcomer;
mod openapi;
mod ops;
mod public;
mod rate_limit;
mod raw_body;
mod realtime_sse;
mod reload;
mod request;
mod response;
mod routing;
mod schedules;
mod secrets;
mod shutdown;
mod smoke;
mod starter_guard;
mod streaming;
mod test_command;
mod time_cache;
mod tls;
mod websocket;
