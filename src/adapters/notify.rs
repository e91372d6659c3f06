//! Outgoing webhooks: status notifications (generic JSON or Slack-compatible) and the
//! confirm-promotion gate. Each request has a timeout; notifications are retried with
//! backoff on 5xx and network errors, and every final outcome is counted. A dead
//! receiver costs a background task, never a decision.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::domain::analysis::Status;
use crate::domain::judge::show;
use crate::domain::record::Analysis;
use crate::domain::strategy::{Notification, NotificationFormat};
use crate::ports::{Notice, Notifier, PromotionGate, ReleaseNotice};
use crate::telemetry::{NotificationLabels, Telemetry, redacted};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub timeout: Duration,
    pub attempts: u32,
    /// First pause between attempts; doubles each time.
    pub backoff: Duration,
    /// Base URL of this canaryd, for links to analyses.
    pub public_url: String,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            attempts: 4,
            backoff: Duration::from_millis(500),
            public_url: "http://127.0.0.1:8080".to_string(),
        }
    }
}

pub struct Webhooks {
    client: reqwest::Client,
    settings: WebhookSettings,
    telemetry: Arc<Telemetry>,
}

impl Webhooks {
    pub fn new(settings: WebhookSettings, telemetry: Arc<Telemetry>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .unwrap_or_default();
        Self {
            client,
            settings,
            telemetry,
        }
    }

    fn link(&self, analysis: &Analysis) -> String {
        format!(
            "{}/api/v1/analyses/{}",
            self.settings.public_url.trim_end_matches('/'),
            analysis.id
        )
    }

    /// Posts a payload, retrying 5xx and network errors; true once a 2xx answers.
    /// Errors name the receiver by scheme and host only: webhook paths hold secrets.
    fn count(&self, format: NotificationFormat, sent: bool) {
        let labels = NotificationLabels {
            format: format.as_str().to_string(),
            result: if sent { "sent" } else { "failed" }.to_string(),
        };
        self.telemetry.notifications.get_or_create(&labels).inc();
    }

    async fn deliver(&self, url: &str, payload: &Value) -> Result<(), String> {
        let mut last = String::new();
        let shown = redacted(url);
        for attempt in 1..=self.settings.attempts.max(1) {
            match self.client.post(url).json(payload).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    return Err(format!("{shown} answered {}", response.status()));
                }
                Ok(response) => last = format!("{shown} answered {}", response.status()),
                Err(error) => last = format!("{shown}: {}", error.without_url()),
            }
            if attempt < self.settings.attempts {
                tokio::time::sleep(
                    self.settings
                        .backoff
                        .saturating_mul(2u32.saturating_pow(attempt - 1)),
                )
                .await;
            }
        }
        Err(last)
    }
}

fn emoji(status: Status) -> &'static str {
    match status {
        Status::Deployed => ":white_check_mark:",
        Status::RolledBack | Status::RollingBack | Status::Failed => ":x:",
        Status::Paused => ":double_vertical_bar:",
        _ => ":information_source:",
    }
}

/// `error-rate 0.1556 (max 0.05)`
fn failing_text(notice: &Notice) -> Option<String> {
    let failing = notice.failing.as_ref()?;
    let statistics = &failing.judgement.statistics;
    let limits: Vec<String> = ["max", "min"]
        .iter()
        .filter_map(|bound| {
            statistics
                .get(*bound)
                .map(|v| format!("{bound} {}", show(*v)))
        })
        .collect();
    let value = failing.judgement.value.map_or("no value".to_string(), show);
    Some(format!(
        "{} {value} ({})",
        failing.metric,
        if limits.is_empty() {
            failing.judgement.reason.clone()
        } else {
            limits.join(", ")
        }
    ))
}

/// The one-line message a person reads.
pub fn message(notice: &Notice, link: &str) -> String {
    let analysis = &notice.analysis;
    let status = analysis.state.status;
    let version = analysis.image_tag.as_deref().unwrap_or("(no image tag)");
    let failing = failing_text(notice)
        .map(|f| format!(" Failing metric: {f}."))
        .unwrap_or_default();
    format!(
        "{} {} {version} is {status} in {}: {}.{failing} <{link}|analysis {}>",
        emoji(status),
        analysis.service,
        analysis.environment,
        notice.reason,
        analysis.id
    )
}

pub fn payload(notice: &Notice, format: NotificationFormat, link: &str) -> Value {
    let analysis = &notice.analysis;
    match format {
        NotificationFormat::Slack => json!({ "text": message(notice, link) }),
        NotificationFormat::Json => json!({
            "event": "analysisStatusChanged",
            "id": analysis.id,
            "strategy": analysis.strategy.to_string(),
            "team": analysis.strategy.team,
            "service": analysis.service,
            "environment": analysis.environment,
            "imageTag": analysis.image_tag,
            "gitCommit": analysis.git_commit,
            "gitBranch": analysis.git_branch,
            "status": analysis.state.status.as_str(),
            "reason": notice.reason,
            "step": analysis.state.step_index + 1,
            "canaryWeight": analysis.state.canary_weight,
            "failingMetric": notice.failing.as_ref().map(|f| json!({
                "name": f.metric,
                "value": f.judgement.value,
                "max": f.judgement.statistics.get("max"),
                "min": f.judgement.statistics.get("min"),
                "reason": f.judgement.reason,
            })),
            "url": link,
            "at": analysis.state.updated_at,
        }),
    }
}

#[async_trait]
impl Notifier for Webhooks {
    async fn announce(&self, release: ReleaseNotice) {
        for Notification { url, format, .. } in &release.targets {
            let result = self.deliver(url, &release_payload(&release, *format)).await;
            self.count(*format, result.is_ok());
            if let Err(error) = result {
                tracing::warn!(block = %release.block.id, %error, "release notification not delivered");
            }
        }
    }

    async fn notify(&self, notice: Notice) {
        let link = self.link(&notice.analysis);
        for Notification { url, format, .. } in &notice.targets {
            let result = self.deliver(url, &payload(&notice, *format, &link)).await;
            self.count(*format, result.is_ok());
            if let Err(error) = result {
                tracing::warn!(id = %notice.analysis.id, %error, "notification not delivered");
            }
        }
    }
}

/// What a release notification says: the scope, the images, who and why.
pub fn release_payload(release: &ReleaseNotice, format: NotificationFormat) -> Value {
    let block = &release.block;
    let from = release.from.as_deref().unwrap_or("(nothing)");
    match format {
        NotificationFormat::Slack => json!({ "text": format!(
            "emergency {} of {} in {}: {from} -> {} by {}: {}. New analyses there wait until block {} is lifted.",
            block.cause, block.scope.service, block.scope.environment, block.image_tag,
            block.actor, block.reason, block.id
        )}),
        NotificationFormat::Json => json!({
            "event": if block.cause == "rollback" { "releaseRolledBack" } else { "releaseRolledForward" },
            "strategy": block.scope.strategy,
            "team": block.team,
            "service": block.scope.service,
            "environment": block.scope.environment,
            "imageTag": block.image_tag,
            "from": release.from,
            "reason": block.reason,
            "actor": block.actor,
            "blockId": block.id,
            "at": block.created_at,
        }),
    }
}

#[async_trait]
impl PromotionGate for Webhooks {
    async fn confirm(&self, url: &str, analysis: &Analysis) -> bool {
        let body = json!({
            "id": analysis.id,
            "strategy": analysis.strategy.to_string(),
            "service": analysis.service,
            "environment": analysis.environment,
            "imageTag": analysis.image_tag,
            "canaryWeight": analysis.state.canary_weight,
            "url": self.link(analysis),
        });
        match self.client.post(url).json(&body).send().await {
            Ok(response) => response.status().is_success(),
            Err(error) => {
                let error = error.without_url();
                tracing::warn!(url = %redacted(url), %error, "confirm-promotion unreachable");
                false
            }
        }
    }
}
