//! The demo service: `cargo run --example demo_service -- --track canary --error-rate 0.2`.

use canaryd::demo::service::{Behaviour, app};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    #[arg(long, default_value = "demo")]
    service: String,
    /// stable or canary
    #[arg(long, default_value = "stable")]
    track: String,
    /// Share of requests answered with 500.
    #[arg(long, default_value_t = 0.005)]
    error_rate: f64,
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour = Behaviour {
        error_rate: args.error_rate,
        latency_ms: args.latency_ms,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!(
        "demo service {} ({}) on http://{}",
        args.service,
        args.track,
        listener.local_addr()?
    );
    axum::serve(listener, app(&args.service, &args.track, behaviour)).await?;
    Ok(())
}
