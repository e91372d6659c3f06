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
use crate::domain::judge::Outcome;
use crate::domain::record::{Analysis, CheckRecord};
use crate::domain::strategy::Strategy;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub team: String,
    pub service: String,
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    pub team: String,
    pub service: String,
    pub environment: String,
    pub metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThresholdLabels {
    pub team: String,
    pub service: String,
    pub environment: String,
    pub metric: String,
    pub bound: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub team: String,
    pub service: String,
    pub environment: String,
    pub metric: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub team: String,
    pub service: String,
    pub environment: String,
    pub verdict: String,
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
    pub router_errors: Family<RouterLabels, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub notifications: Family<NotificationLabels, Counter>,
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
        let router_errors = Family::<RouterLabels, Counter>::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
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
            router_errors,
            http_requests,
            notifications,
        }
    }
}

fn service(analysis: &Analysis) -> ServiceLabels {
    ServiceLabels {
        team: analysis.strategy.team.clone(),
        service: analysis.service.clone(),
        environment: analysis.environment.clone(),
    }
}

impl crate::ports::AnalysisTelemetry for Telemetry {
    /// Router errors start at 0 for every router type in use, and notifications for
    /// every format in use, so a dashboard or alert reads 0 rather than "no data".
    fn strategies_loaded(&self, strategies: &[&Strategy]) {
        for strategy in strategies {
            let router = RouterLabels {
                router: strategy.router.kind().to_string(),
            };
            let _ = self.router_errors.get_or_create(&router);
            for notification in &strategy.notifications {
                for result in ["sent", "failed"] {
                    let labels = NotificationLabels {
                        format: notification.format.as_str().to_string(),
                        result: result.to_string(),
                    };
                    let _ = self.notifications.get_or_create(&labels);
                }
            }
        }
    }

    /// A new analysis: its service's series exist from now on (verdicts and each
    /// metric's results at 0), so `increase()` sees the first one.
    fn analysis_created(&self, analysis: &Analysis, metrics: &[&str]) {
        let labels = service(analysis);
        for metric in metrics {
            for outcome in Outcome::ALL {
                let _ = self.checks.get_or_create(&CheckLabels {
                    team: labels.team.clone(),
                    service: labels.service.clone(),
                    environment: labels.environment.clone(),
                    metric: metric.to_string(),
                    result: outcome.as_str().to_string(),
                });
            }
        }
        let _ = self.canary_weight.get_or_create(&labels);
        for verdict in VERDICTS {
            let _ = self
                .verdicts
                .get_or_create(&verdict_labels(&labels, verdict));
        }
    }

    fn weight_applied(&self, analysis: &Analysis, weight: u8) {
        self.canary_weight
            .get_or_create(&service(analysis))
            .set(i64::from(weight));
    }

    fn checked(&self, analysis: &Analysis, records: &[CheckRecord]) {
        let labels = service(analysis);
        for record in records {
            let metric = MetricLabels {
                team: labels.team.clone(),
                service: labels.service.clone(),
                environment: labels.environment.clone(),
                metric: record.metric.clone(),
            };
            if let Some(value) = record.judgement.value {
                self.check_value.get_or_create(&metric).set(value);
            }
            for bound in ["max", "min"] {
                if let Some(limit) = record.judgement.statistics.get(bound) {
                    let threshold = ThresholdLabels {
                        team: metric.team.clone(),
                        service: metric.service.clone(),
                        environment: metric.environment.clone(),
                        metric: metric.metric.clone(),
                        bound: bound.to_string(),
                    };
                    self.check_threshold.get_or_create(&threshold).set(*limit);
                }
            }
            let result = CheckLabels {
                team: metric.team,
                service: metric.service,
                environment: metric.environment,
                metric: metric.metric,
                result: record.judgement.outcome.as_str().to_string(),
            };
            self.checks.get_or_create(&result).inc();
        }
    }

    fn finished(&self, analysis: &Analysis) {
        let status = analysis.state.status;
        self.verdicts
            .get_or_create(&verdict_labels(&service(analysis), status))
            .inc();
        let started = analysis.state.started_at.unwrap_or(analysis.created_at);
        if let Some(completed) = analysis.state.completed_at {
            let seconds = (completed - started).num_milliseconds().max(0) as f64 / 1000.0;
            let labels = DurationLabels {
                team: analysis.strategy.team.clone(),
                verdict: status.as_str().to_string(),
            };
            self.analysis_duration
                .get_or_create(&labels)
                .observe(seconds);
        }
    }

    fn router_failed(&self, router: &str) {
        let labels = RouterLabels {
            router: router.to_string(),
        };
        self.router_errors.get_or_create(&labels).inc();
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

fn verdict_labels(labels: &ServiceLabels, verdict: Status) -> VerdictLabels {
    VerdictLabels {
        team: labels.team.clone(),
        service: labels.service.clone(),
        environment: labels.environment.clone(),
        verdict: verdict.as_str().to_string(),
    }
}

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
