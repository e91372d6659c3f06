//! Backpressure on the metrics backend: at most `max_concurrent` requests in flight and,
//! optionally, at most `max_qps` started per second. A slow Prometheus then delays
//! checks (each records how late it was) instead of piling up requests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::domain::Timestamp;
use crate::ports::{LabelledValue, MetricsSource, QueryError};

pub struct Throttled {
    inner: Arc<dyn MetricsSource>,
    permits: Semaphore,
    /// The pause between two starts, and when the next may start.
    pace: Option<(Duration, Mutex<Instant>)>,
}

impl Throttled {
    pub fn new(inner: Arc<dyn MetricsSource>, max_concurrent: usize, max_qps: Option<f64>) -> Self {
        let pace = max_qps.filter(|qps| *qps > 0.0).map(|qps| {
            (
                Duration::from_secs_f64(1.0 / qps),
                Mutex::new(Instant::now()),
            )
        });
        Self {
            inner,
            permits: Semaphore::new(max_concurrent.max(1)),
            pace,
        }
    }

    async fn gate(&self) -> Result<SemaphorePermit<'_>, QueryError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| QueryError::Unreachable("shutting down".into()))?;
        if let Some((pause, next)) = &self.pace {
            let wait = {
                let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let start = (*next).max(now);
                *next = start + *pause;
                start - now
            };
            tokio::time::sleep(wait).await;
        }
        Ok(permit)
    }
}

#[async_trait]
impl MetricsSource for Throttled {
    async fn instant(&self, query: &str, at: Option<Timestamp>) -> Result<Option<f64>, QueryError> {
        let _permit = self.gate().await?;
        self.inner.instant(query, at).await
    }

    async fn instant_vector(
        &self,
        query: &str,
        at: Option<Timestamp>,
    ) -> Result<Vec<LabelledValue>, QueryError> {
        let _permit = self.gate().await?;
        self.inner.instant_vector(query, at).await
    }

    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError> {
        let _permit = self.gate().await?;
        self.inner.range(query, end, range, step).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts requests in flight, and the most at once.
    #[derive(Default)]
    struct Slow {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    #[async_trait]
    impl MetricsSource for Slow {
        async fn instant(&self, _: &str, _: Option<Timestamp>) -> Result<Option<f64>, QueryError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(Some(1.0))
        }

        async fn range(
            &self,
            _: &str,
            _: Timestamp,
            _: Duration,
            _: Duration,
        ) -> Result<Vec<f64>, QueryError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_slow_backend_never_sees_more_than_the_bound() {
        let slow = Arc::new(Slow::default());
        let throttled = Arc::new(Throttled::new(slow.clone(), 4, None));
        let asks = (0..40).map(|_| {
            let throttled = Arc::clone(&throttled);
            tokio::spawn(async move { throttled.instant("up", None).await })
        });
        for ask in futures::future::join_all(asks).await {
            assert_eq!(ask.unwrap(), Ok(Some(1.0)));
        }
        assert_eq!(slow.most.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_rate_limit_spaces_the_starts() {
        let throttled = Throttled::new(Arc::new(Slow::default()), 16, Some(100.0));
        let started = Instant::now();
        for _ in 0..6 {
            drop(throttled.gate().await.unwrap());
        }
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "{:?}",
            started.elapsed()
        );
    }
}
