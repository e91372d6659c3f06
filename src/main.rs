//! The `canaryd` command: wiring only; each subcommand lives in `canaryd::cli`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

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
