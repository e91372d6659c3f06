//! The `canaryd` command: wiring only; each subcommand lives in `canaryd::cli`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = canaryd::cli::Cli::parse();
    match canaryd::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("canaryd: {error:#}");
            ExitCode::from(2)
        }
    }
}
