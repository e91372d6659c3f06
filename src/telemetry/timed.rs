//! The metrics source every check goes through: it times each query into
//! `canaryd_prometheus_query_duration_seconds`.

use super::Telemetry;

/// A metrics source that times every query into `canaryd_prometheus_query_duration_seconds`.
pub struct TimedMetrics {
    pub inner: std::sync::Arc<dyn crate::ports::MetricsSource>,
    pub telemetry: std::sync::Arc<Telemetry>,
}

#[async_trait::async_trait]
impl crate::ports::MetricsSource for TimedMetrics {
    async fn instant_vector(
        &self,
        query: &str,
        at: Option<crate::domain::Timestamp>,
    ) -> Result<Vec<crate::ports::LabelledValue>, crate::ports::QueryError> {
        let started = std::time::Instant::now();
        let result = self.inner.instant_vector(query, at).await;
        self.telemetry
            .query_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn instant(
        &self,
        query: &str,
        at: Option<crate::domain::Timestamp>,
    ) -> Result<Option<f64>, crate::ports::QueryError> {
        let started = std::time::Instant::now();
        let result = self.inner.instant(query, at).await;
        self.telemetry
            .query_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn range(
        &self,
        query: &str,
        end: crate::domain::Timestamp,
        range: std::time::Duration,
        step: std::time::Duration,
    ) -> Result<Vec<f64>, crate::ports::QueryError> {
        let started = std::time::Instant::now();
        let result = self.inner.range(query, end, range, step).await;
        self.telemetry
            .query_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }
}
