//! The JSON shapes the API returns (camelCase), built from stored records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::judge::Judgement;
use crate::domain::record::{Analysis, CheckRecord, EventRecord};

/// An analysis: where it stands, why, and (for one analysis) every check's evidence.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisView {
    pub id: String,
    /// `<team>/<name>`
    pub strategy: String,
    pub team: String,
    pub service: String,
    pub environment: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub triggered_by: Option<String>,
    #[schema(example = "RUNNING")]
    pub status: String,
    /// Why the analysis is in its status; the verdict's reason once it is terminal.
    pub reason: String,
    /// The terminal status, once there is one.
    #[schema(example = "ROLLED_BACK")]
    pub verdict: Option<String>,
    /// 1-based step.
    pub step: usize,
    pub steps: Vec<u8>,
    /// Canary traffic weight in percent, as the router last confirmed it.
    pub canary_weight: u8,
    pub target_weight: u8,
    pub router: String,
    pub checks_done: u64,
    pub failures: u32,
    pub consecutive_inconclusive: u32,
    /// Why a PAUSED or PROMOTING analysis waits: `Operator` (checks stopped),
    /// `ManualPromotion`, `Confirmation` (the gate) or `Inconclusive` (checks go on).
    pub waiting: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub next_check_at: Option<DateTime<Utc>>,
    /// The canary Deployment canaryd runs, when the strategy has a workload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadView>,
    /// Every metric of every check, oldest first (only when one analysis is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckView>>,
}

impl AnalysisView {
    pub fn new(analysis: &Analysis, checks: Option<Vec<CheckRecord>>) -> Self {
        let state = &analysis.state;
        Self {
            id: analysis.id.clone(),
            strategy: analysis.strategy.to_string(),
            team: analysis.strategy.team.clone(),
            service: analysis.service.clone(),
            environment: analysis.environment.clone(),
            image_tag: analysis.image_tag.clone(),
            git_commit: analysis.git_commit.clone(),
            git_branch: analysis.git_branch.clone(),
            triggered_by: analysis.triggered_by.clone(),
            status: state.status.as_str().to_string(),
            reason: state.reason.clone(),
            verdict: state
                .status
                .is_terminal()
                .then(|| state.status.as_str().to_string()),
            step: state.step_index + 1,
            steps: state.plan.steps.iter().map(|s| s.weight).collect(),
            canary_weight: state.canary_weight,
            target_weight: state.target_weight,
            router: analysis.route.kind().to_string(),
            checks_done: state.checks_done,
            failures: state.failures,
            consecutive_inconclusive: state.consecutive_inconclusive,
            waiting: state.waiting.map(|w| format!("{w:?}")),
            created_at: analysis.created_at,
            started_at: state.started_at,
            updated_at: state.updated_at,
            completed_at: state.completed_at,
            next_check_at: state.next_check_at,
            workload: analysis.workload.as_ref().map(|target| WorkloadView {
                namespace: target.namespace.clone(),
                deployment: target.deployment.clone(),
                canary_deployment: target.canary_deployment(),
                pending: state.workload.pending.map(|step| step.as_str().to_string()),
                stable_promoted: state.workload.stable_promoted,
            }),
            checks: checks.map(|c| c.into_iter().map(CheckView::from).collect()),
        }
    }
}

/// The Deployments of an analysis that deploys its canary.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadView {
    pub namespace: String,
    /// The stable Deployment.
    pub deployment: String,
    pub canary_deployment: String,
    /// The step under way, e.g. `deploy the canary` while its pods come up.
    pub pending: Option<String>,
    /// The stable Deployment runs the canary's image.
    pub stable_promoted: bool,
}

/// One metric's judgement in one check, with the queries as sent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckView {
    pub check: u64,
    pub step: usize,
    pub canary_weight: u8,
    /// The check's moment on its interval grid: the queries were evaluated there.
    pub at: DateTime<Utc>,
    /// How long after `at` the answers were in (a slow Prometheus makes checks late;
    /// none is skipped).
    pub lag_ms: u64,
    #[serde(flatten)]
    pub judged: MetricView,
}

/// One metric's judgement, with the queries as sent: in a check, and in a decide-only
/// judgement.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricView {
    pub metric: String,
    pub queries: Vec<String>,
    #[schema(example = "PASS")]
    pub outcome: String,
    /// INCONCLUSIVE while a judge gathers evidence (holds the step, not counted as no data).
    pub gathering: bool,
    pub reason: String,
    pub value: Option<f64>,
    pub statistics: BTreeMap<String, f64>,
    /// A dry-run metric: shown, never deciding.
    pub dry_run: bool,
}

impl MetricView {
    pub fn new(metric: String, queries: Vec<String>, judgement: Judgement, dry_run: bool) -> Self {
        Self {
            metric,
            queries,
            outcome: judgement.outcome.as_str().to_string(),
            gathering: judgement.gathering,
            reason: judgement.reason,
            value: judgement.value,
            statistics: judgement.statistics,
            dry_run,
        }
    }
}

impl From<CheckRecord> for CheckView {
    fn from(record: CheckRecord) -> Self {
        Self {
            check: record.check,
            step: record.step,
            canary_weight: record.canary_weight,
            at: record.at,
            lag_ms: record.lag_ms,
            judged: MetricView::new(
                record.metric,
                record.queries,
                record.judgement,
                record.dry_run,
            ),
        }
    }
}

/// An entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub at: DateTime<Utc>,
    #[schema(example = "statusChanged")]
    pub kind: String,
    /// Who decided: `canaryd` or the name of the token used.
    pub actor: String,
    pub message: String,
}

impl From<EventRecord> for EventView {
    fn from(event: EventRecord) -> Self {
        Self {
            at: event.at,
            kind: event.record.kind.as_str().to_string(),
            actor: event.record.actor,
            message: event.record.message,
        }
    }
}

/// The answer to a webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub id: String,
    #[schema(example = "PENDING")]
    pub status: String,
    pub status_url: String,
}
