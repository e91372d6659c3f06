//! A load generator: GET requests at a steady rate until stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Counts of what the load generator saw.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
}

/// Sends `rate` requests per second to `url` (at most `concurrency` at once) until
/// `stop` is cancelled.
pub async fn run(
    url: String,
    rate: u32,
    concurrency: usize,
    stop: CancellationToken,
    stats: Arc<LoadStats>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the load generator's HTTP client");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // all slots busy: drop this tick rather than queue without bound
        };
        let (client, url, stats) = (client.clone(), url.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            stats.sent.fetch_add(1, Ordering::Relaxed);
            match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => {
                    stats.ok.fetch_add(1, Ordering::Relaxed)
                }
                _ => stats.errors.fetch_add(1, Ordering::Relaxed),
            };
            drop(slot);
        });
    }
}
