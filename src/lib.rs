//! rhapi: serve `pages/api/*.rhai` as HTTP API routes. The binary (`main.rs`) only parses
//! the command line and calls [`cli::run`]; docs/design.md walks through the modules.

mod analysis;
mod app;
mod app_context;
mod app_files;
mod batteries;
mod bundle;
mod cache;
pub mod cli;
mod clock;
mod config;
mod cpu;
pub mod db;
mod encoding;
mod env;
mod error;
pub mod executor;
mod http;
mod jobs;
mod loader;
mod logging;
mod lsp;
mod memory;
mod metrics;
mod rate_limit;
mod readiness;
pub mod realtime;
mod routes;
mod script;
mod settings;
mod snapshot;
mod tls;
mod tools;
mod watch;

/// Every allocation is counted per thread: the memory budget of a run is read from it
/// (`memory.rs`). Set here, so that every binary linking the library counts.
#[global_allocator]
static ALLOCATOR: memory::CountingAlloc = memory::CountingAlloc;
