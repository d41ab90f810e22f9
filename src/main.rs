//! `rhapi`: serve `pages/api/*.rhai` as HTTP API routes.
//!
//! This file only parses the command line and hands over to [`cli`].

mod app;
mod batteries;
mod cli;
mod env;
mod error;
mod executor;
mod http;
mod routes;
mod script;
mod settings;
mod watch;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
