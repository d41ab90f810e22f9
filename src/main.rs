//! `rhapi`: serve `pages/api/*.rhai` as HTTP API routes.
//!
//! This file only parses the command line and hands over to [`cli`].

mod analysis;
mod app;
mod batteries;
mod cli;
mod config;
mod cpu;
mod encoding;
mod env;
mod error;
mod executor;
mod http;
mod loader;
mod logging;
mod memory;
mod routes;
mod script;
mod settings;
mod tools;
mod watch;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: memory::CountingAlloc = memory::CountingAlloc;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
