//! Command-line interface (DESIGN §5): one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod judge;
mod validate;

#[derive(Debug, Parser)]
#[command(name = "canaryd", version, about = "Metrics-driven canary analysis")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check strategy files; prints every error as path:line:col: message.
    Validate {
        /// Strategy folders or files (default: the strategies folder).
        paths: Vec<PathBuf>,
        #[arg(
            long,
            env = "CANARYD_STRATEGIES",
            default_value = "./strategies",
            hide = true
        )]
        strategies: PathBuf,
    },
    /// Judge data offline: a JSON request on stdin, the judgement as JSON on stdout.
    Judge,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { paths, strategies } => {
            let paths = if paths.is_empty() {
                vec![strategies]
            } else {
                paths
            };
            Ok(validate::run(&paths))
        }
        Command::Judge => judge::run().map(|()| ExitCode::SUCCESS),
    }
}
