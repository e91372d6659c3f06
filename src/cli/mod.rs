//! Command-line interface (DESIGN §5): one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyses;
mod api;
mod backtest;
mod check;
mod client;
mod deployments;
mod environments;
mod groups;
pub mod judge;
mod releases;
mod reload;
pub mod serve;
mod table;
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
    /// Start an analysis of a new version, as the CI webhook does.
    Start(analyses::StartArgs),
    /// List analyses, newest first.
    List(analyses::ListArgs),
    /// Print where an analysis stands.
    Status(client::ClientArgs),
    /// Follow an analysis (or with --group, a deployment group) until it ends: exit 0
    /// when DEPLOYED (every member DEPLOYED), 1 otherwise.
    Wait(client::WaitArgs),
    /// Stop an analysis's checks where it stands.
    Pause(analyses::OperateArgs),
    /// Let a paused analysis go on.
    Resume(analyses::OperateArgs),
    /// Send all traffic to the canary now (overrides a gate).
    Promote(analyses::OperateArgs),
    /// Send all traffic back to stable, ending as ROLLED_BACK.
    Rollback(analyses::OperateArgs),
    /// Stop an analysis, traffic back to stable, ending as CANCELLED.
    Abort(analyses::OperateArgs),
    /// Run a FAILED or ROLLED_BACK analysis again from its first step.
    Retry(analyses::OperateArgs),
    /// What ran in an environment, newest first.
    History(environments::HistoryArgs),
    /// Deployments made outside canaryd, what runs where, and how releases differ.
    #[command(subcommand)]
    Deployments(deployments::DeploymentsCommand),
    /// Deployment groups: one release to several scopes at once.
    #[command(subcommand)]
    Group(groups::GroupCommand),
    /// Emergency releases: back (or forward) to a known-good image, blocking new
    /// analyses of the scope until the block is lifted.
    #[command(subcommand)]
    Release(releases::ReleaseCommand),
    /// The blocks emergency releases set, in force.
    Blocks(releases::BlocksArgs),
    /// Lift a block (role operator or admin): the analyses it held start.
    Unblock(releases::UnblockArgs),
    /// Freeze an environment: its new analyses wait as PENDING (admin).
    Freeze(environments::FreezeArgs),
    /// Lift a freeze (admin).
    Unfreeze(environments::UnfreezeArgs),
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
    let block_on =
        |work| -> anyhow::Result<ExitCode> { tokio::runtime::Runtime::new()?.block_on(work) };
    match cli.command {
        Command::Serve(args) => tokio::runtime::Runtime::new()?.block_on(serve::run(args)),
        Command::Validate(args) => validate::run(args),
        Command::Judge => judge::run().map(|()| ExitCode::SUCCESS),
        Command::Schema { kind } => {
            print!("{}", crate::strategy_files::schema::text(kind));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => tokio::runtime::Runtime::new()?.block_on(check::run(args)),
        Command::Backtest(args) => tokio::runtime::Runtime::new()?.block_on(backtest::run(args)),
        client_command => block_on(Box::pin(client(client_command))),
    }
}

/// The commands that talk to a running canaryd.
async fn client(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Start(args) => analyses::start(args).await,
        Command::List(args) => analyses::list(args).await,
        Command::Status(args) => client::status(args).await,
        Command::Wait(args) => client::wait(args).await,
        Command::Pause(args) => analyses::operate("pause", args).await,
        Command::Resume(args) => analyses::operate("resume", args).await,
        Command::Promote(args) => analyses::operate("promote", args).await,
        Command::Rollback(args) => analyses::operate("rollback", args).await,
        Command::Abort(args) => analyses::operate("abort", args).await,
        Command::Retry(args) => analyses::operate("retry", args).await,
        Command::History(args) => environments::history(args).await,
        Command::Deployments(command) => deployments::run(command).await,
        Command::Group(command) => groups::run(command).await,
        Command::Release(command) => releases::release(command).await,
        Command::Blocks(args) => releases::blocks(args).await,
        Command::Unblock(args) => releases::unblock(args).await,
        Command::Freeze(args) => environments::freeze(args).await,
        Command::Unfreeze(args) => environments::unfreeze(args).await,
        other => anyhow::bail!("{other:?} does not talk to canaryd"),
    }
}
