//! Command-line interface (DESIGN §5): one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backtest;
mod check;
mod client;
pub mod judge;
mod reload;
pub mod serve;
mod validate;

#[derive(Debug, Parser)]
#[command(name = "canaryd", version, about = "Metrics-driven canary analysis")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the API, the engine and every active analysis.
    Serve(serve::ServeArgs),
    /// Check strategy files; prints every error as path:line:col: message.
    Validate(validate::ValidateArgs),
    /// Print where an analysis stands.
    Status(client::ClientArgs),
    /// Follow an analysis until it ends: exit 0 when DEPLOYED, 1 otherwise.
    Wait(client::WaitArgs),
    /// Judge data offline: a JSON request on stdin, the judgement as JSON on stdout.
    Judge,
    /// Preflight: run every query of a strategy against Prometheus now and report what
    /// each returns and what the judges would say; exit 0 only when all have data.
    Check(check::CheckArgs),
    /// Replay a strategy over past Prometheus data: each check, its outcome, and the
    /// verdict it would have reached; exit 0 when that is DEPLOYED.
    Backtest(backtest::BacktestArgs),
    /// Print the JSON Schema of strategy or template files, for editors.
    Schema {
        #[arg(value_enum)]
        kind: crate::strategy_files::schema::SchemaKind,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve::run(args))
        }
        Command::Validate(args) => validate::run(args),
        Command::Status(args) => tokio::runtime::Runtime::new()?.block_on(client::status(args)),
        Command::Wait(args) => tokio::runtime::Runtime::new()?.block_on(client::wait(args)),
        Command::Judge => judge::run().map(|()| ExitCode::SUCCESS),
        Command::Check(args) => tokio::runtime::Runtime::new()?.block_on(check::run(args)),
        Command::Backtest(args) => tokio::runtime::Runtime::new()?.block_on(backtest::run(args)),
        Command::Schema { kind } => {
            print!("{}", crate::strategy_files::schema::text(kind));
            Ok(ExitCode::SUCCESS)
        }
    }
}
