//! Logging setup, and the metrics canaryd exports for Grafana (DESIGN §7). Labels stay
//! low-cardinality: team, service, environment, metric, status; never an analysis id
//! or an image tag.

use std::io::IsTerminal;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::domain::analysis::Status;
use crate::domain::deployment::RecordedDeployment;
use crate::domain::record::Analysis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// `https://hooks.slack.com/…`: a URL without the path and query that may hold a secret.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        ),
        Err(_) => "(invalid URL)".to_string(),
    }
}

/// A label value shared by every series of one analysis: thousands of analyses with a
/// dozen series each then hold one copy of each name, not one per series.
pub type Text = std::sync::Arc<str>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub team: Text,
    pub service: Text,
    pub environment: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    pub team: Text,
    pub service: Text,
    pub environment: Text,
    pub metric: Text,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThresholdLabels {
    pub team: Text,
    pub service: Text,
    pub environment: Text,
    pub metric: Text,
    pub bound: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub team: Text,
    pub service: Text,
    pub environment: Text,
    pub metric: Text,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub team: Text,
    pub service: Text,
    pub environment: Text,
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub team: String,
    pub environment: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub team: String,
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouterLabels {
    pub router: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub format: String,
    pub result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series canaryd exports, with the registry that encodes them.
pub struct Telemetry {
    registry: Registry,
    /// Serialises scrapes (see `encode_with_status_counts`).
    scrape: std::sync::Mutex<()>,
    pub canary_weight: Family<ServiceLabels, Gauge>,
    pub check_value: Family<MetricLabels, FloatGauge>,
    pub check_threshold: Family<ThresholdLabels, FloatGauge>,
    pub checks: Family<CheckLabels, Counter>,
    pub verdicts: Family<VerdictLabels, Counter>,
    pub analyses: Family<StatusLabels, Gauge>,
    pub analysis_duration: Family<DurationLabels, Histogram>,
    pub query_duration: Histogram,
    /// How long after its grid moment each check's answers were in.
    pub check_lag: Histogram,
    /// The metrics with a value gauge, by service: what to remove when it finishes.
    gauged: std::sync::Mutex<
        std::collections::HashMap<ServiceLabels, std::collections::BTreeSet<Text>>,
    >,
    pub router_errors: Family<RouterLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub notifications: Family<NotificationLabels, Counter>,
    pub recorded: Family<StatusLabels, Counter>,
    pub recorded_duration: Family<DurationLabels, Histogram>,
}

const VERDICTS: [Status; 4] = [
    Status::Deployed,
    Status::RolledBack,
    Status::Failed,
    Status::Cancelled,
];

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("canaryd");
        let canary_weight = Family::<ServiceLabels, Gauge>::default();
        let check_value = Family::<MetricLabels, FloatGauge>::default();
        let check_threshold = Family::<ThresholdLabels, FloatGauge>::default();
        let checks = Family::<CheckLabels, Counter>::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        let analyses = Family::<StatusLabels, Gauge>::default();
        let analysis_duration = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(30.0, 2.0, 10)) // 30 s .. ~4 h
        });
        let query_duration = Histogram::new(exponential_buckets(0.005, 2.0, 12)); // 5 ms .. ~10 s
        let check_lag = Histogram::new([
            0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
        ]);
        let router_errors = Family::<RouterLabels, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        let recorded = Family::<StatusLabels, Counter>::default();
        let recorded_duration = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(30.0, 2.0, 10))
        });
        registry.register(
            "canary_weight",
            "Canary traffic weight in percent, as the router confirmed it",
            canary_weight.clone(),
        );
        registry.register(
            "check_value",
            "Last measured value of a check's metric",
            check_value.clone(),
        );
        registry.register(
            "check_threshold",
            "Limit of a check's metric (bound=max|min)",
            check_threshold.clone(),
        );
        registry.register("checks", "Metric results by outcome", checks.clone());
        registry.register(
            "verdicts",
            "Analyses finished, by verdict",
            verdicts.clone(),
        );
        registry.register("analyses", "Analyses by status", analyses.clone());
        registry.register(
            "analysis_duration_seconds",
            "Time from start to verdict",
            analysis_duration.clone(),
        );
        registry.register(
            "prometheus_query_duration_seconds",
            "Time of metrics queries",
            query_duration.clone(),
        );
        registry.register(
            "check_lag_seconds",
            "How long after its moment on the interval grid a check's answers were in",
            check_lag.clone(),
        );
        registry.register(
            "router_errors",
            "Failed attempts to set a weight",
            router_errors.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "notifications",
            "Notifications by result (sent, failed)",
            notifications.clone(),
        );
        registry.register(
            "recorded_deployments",
            "Deployments recorded by pipelines (POST /api/v1/deployments), by status",
            recorded.clone(),
        );
        registry.register(
            "recorded_deployment_duration_seconds",
            "completedAt - deployedAt of recorded deployments, by status (label verdict)",
            recorded_duration.clone(),
        );
        Self {
            registry,
            scrape: std::sync::Mutex::new(()),
            canary_weight,
            check_value,
            check_threshold,
            checks,
            verdicts,
            analyses,
            analysis_duration,
            query_duration,
            check_lag,
            gauged: Default::default(),
            router_errors,
            http_requests,
            notifications,
            recorded,
            recorded_duration,
        }
    }
}

fn service(analysis: &Analysis) -> ServiceLabels {
    ServiceLabels {
        team: analysis.strategy.team.as_str().into(),
        service: analysis.service.as_str().into(),
        environment: analysis.environment.as_str().into(),
    }
}

impl Telemetry {
    /// The text exposition of every series, with `canaryd_analyses` replaced by
    /// `counts` (taken from the store at scrape time). One lock covers clearing,
    /// refilling and encoding, so concurrent scrapes never see a half-filled family.
    pub fn encode_with_status_counts(
        &self,
        counts: &[(String, String, Status, i64)],
    ) -> Result<String, std::fmt::Error> {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.analyses.clear();
        for (team, environment, status, count) in counts {
            let labels = StatusLabels {
                team: team.clone(),
                environment: environment.clone(),
                status: status.as_str().to_string(),
            };
            self.analyses.get_or_create(&labels).set(*count);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl Telemetry {
    /// A deployment a pipeline recorded: counted by team, environment and status, and
    /// its duration observed once it is complete.
    pub fn deployment_recorded(&self, deployment: &RecordedDeployment) {
        let status = deployment.status.as_str().to_string();
        let labels = StatusLabels {
            team: deployment.team.clone(),
            environment: deployment.environment.clone(),
            status: status.clone(),
        };
        self.recorded.get_or_create(&labels).inc();
        if let Some(completed) = deployment.completed_at {
            let seconds = (completed - deployment.deployed_at).num_milliseconds() as f64 / 1e3;
            let labels = DurationLabels {
                team: deployment.team.clone(),
                verdict: status,
            };
            self.recorded_duration
                .get_or_create(&labels)
                .observe(seconds.max(0.0));
        }
    }
}

fn verdict_labels(labels: &ServiceLabels, verdict: Status) -> VerdictLabels {
    VerdictLabels {
        team: labels.team.clone(),
        service: labels.service.clone(),
        environment: labels.environment.clone(),
        verdict: verdict.as_str(),
    }
}

mod analysis;
mod timed;
pub use timed::TimedMetrics;

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn urls_in_logs_keep_only_scheme_and_host() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redacted("http://10.0.0.1:8080/gate?token=abc"),
            "http://10.0.0.1/…"
        );
        assert_eq!(redacted("not a url"), "(invalid URL)");
    }
}
