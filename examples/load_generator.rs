//! Load for the demo: `cargo run --example load_generator -- --url http://127.0.0.1:8000/ --rate 100`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use canaryd::demo::load::{LoadStats, run};
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// Requests per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let stop = CancellationToken::new();
    let stats = Arc::new(LoadStats::default());
    let load = tokio::spawn(run(
        args.url,
        args.rate,
        args.concurrency,
        stop.clone(),
        Arc::clone(&stats),
    ));
    let mut report = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = report.tick() => eprintln!(
                "sent {} ok {} errors {}",
                stats.sent.load(Ordering::Relaxed),
                stats.ok.load(Ordering::Relaxed),
                stats.errors.load(Ordering::Relaxed)
            ),
        }
    }
    stop.cancel();
    let _ = load.await;
}
