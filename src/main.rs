//! `rhapi`: serve `pages/api/*.rhai` as HTTP API routes. Everything is in the library
//! (`lib.rs`); this only parses the command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    rhapi::cli::run(rhapi::cli::Cli::parse())
}
