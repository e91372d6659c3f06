//! The engine's telemetry port over the `canaryd_*` metric families.

use super::{
    CheckLabels, DurationLabels, MetricLabels, NotificationLabels, RouterLabels, ServiceLabels,
    Telemetry, Text, ThresholdLabels, VERDICTS, service, verdict_labels,
};
use crate::domain::judge::Outcome;
use crate::domain::record::{Analysis, CheckRecord};
use crate::domain::strategy::Strategy;

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
            let metric = labels.metric(*metric);
            for outcome in Outcome::ALL {
                let _ = self.checks.get_or_create(&metric.result(outcome));
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
        if let Some(first) = records.first() {
            self.check_lag.observe(first.lag_ms as f64 / 1000.0);
        }
        let metrics: Vec<MetricLabels> = records
            .iter()
            .map(|r| labels.metric(r.metric.as_str()))
            .collect();
        self.gauged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(labels)
            .or_default()
            .extend(metrics.iter().map(|m| m.metric.clone()));
        for (record, metric) in records.iter().zip(metrics) {
            if let Some(value) = record.judgement.value {
                self.check_value.get_or_create(&metric).set(value);
            }
            for bound in BOUNDS {
                if let Some(limit) = record.judgement.statistics.get(bound) {
                    self.check_threshold
                        .get_or_create(&metric.bound(bound))
                        .set(*limit);
                }
            }
            let result = metric.result(record.judgement.outcome);
            self.checks.get_or_create(&result).inc();
        }
    }

    /// The verdict counts; the analysis's gauges (weight, each metric's value and
    /// thresholds) go, so finished analyses leave no series behind.
    fn finished(&self, analysis: &Analysis) {
        let status = analysis.state.status;
        self.forget(analysis);
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

const BOUNDS: [&str; 2] = ["max", "min"];

impl ServiceLabels {
    fn metric(&self, metric: impl Into<Text>) -> MetricLabels {
        MetricLabels {
            team: self.team.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            metric: metric.into(),
        }
    }
}

impl MetricLabels {
    fn result(&self, outcome: Outcome) -> CheckLabels {
        CheckLabels {
            team: self.team.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            metric: self.metric.clone(),
            result: outcome.as_str(),
        }
    }

    fn bound(&self, bound: &'static str) -> ThresholdLabels {
        ThresholdLabels {
            team: self.team.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            metric: self.metric.clone(),
            bound,
        }
    }
}

impl Telemetry {
    /// Removes an analysis's gauges. Its service's series are shared with a newer
    /// analysis of the same service, which sets them again at its next weight or check.
    fn forget(&self, analysis: &Analysis) {
        let labels = service(analysis);
        self.canary_weight.remove(&labels);
        let metrics = self
            .gauged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&labels)
            .unwrap_or_default();
        for metric in metrics {
            let metric = labels.metric(metric);
            for bound in BOUNDS {
                self.check_threshold.remove(&metric.bound(bound));
            }
            self.check_value.remove(&metric);
        }
    }
}
