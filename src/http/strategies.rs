//! `/api/v1/strategies`: the strategies canaryd has loaded.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use crate::domain::strategy::{JudgeSpec, Promotion, Strategy, StrategyId};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StrategyView {
    pub id: String,
    pub team: String,
    pub name: String,
    pub description: String,
    pub service: String,
    pub router: String,
    /// Time between checks, e.g. `30s`.
    pub interval: String,
    pub steps: Vec<StepView>,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    #[schema(example = "auto")]
    pub promotion: String,
    pub metrics: Vec<MetricView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub weight: u8,
    pub checks: u32,
    pub max_checks: u32,
}

/// A strategy's metric (`StrategyMetric` in the document: `MetricView` is a judgement).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StrategyMetric)]
pub struct MetricView {
    pub name: String,
    #[schema(example = "threshold")]
    pub judge: String,
    /// The query templates, before rendering.
    pub queries: Vec<String>,
}

impl From<&Strategy> for StrategyView {
    fn from(strategy: &Strategy) -> Self {
        Self {
            id: strategy.id.to_string(),
            team: strategy.id.team.clone(),
            name: strategy.id.name.clone(),
            description: strategy.description.clone(),
            service: strategy.service.clone(),
            router: strategy.router.kind().to_string(),
            interval: humantime::format_duration(strategy.interval).to_string(),
            steps: strategy
                .steps
                .iter()
                .map(|s| StepView {
                    weight: s.weight,
                    checks: s.checks,
                    max_checks: s.max_checks,
                })
                .collect(),
            failure_limit: strategy.failure_limit,
            inconclusive_limit: strategy.inconclusive_limit,
            promotion: match strategy.promotion {
                Promotion::Auto => "auto",
                Promotion::Manual => "manual",
            }
            .to_string(),
            metrics: strategy
                .metrics
                .iter()
                .map(|m| MetricView {
                    name: m.name.clone(),
                    judge: match &m.judge {
                        JudgeSpec::Threshold { .. } => "threshold",
                        JudgeSpec::CompareStable { .. } => "compare-stable",
                        JudgeSpec::MannWhitney { .. } => "mann-whitney",
                        JudgeSpec::Sequential { .. } => "sequential",
                    }
                    .to_string(),
                    queries: m
                        .judge
                        .queries()
                        .iter()
                        .map(|q| q.source().to_string())
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The loaded strategies (a team's token sees its own team's).
#[utoipa::path(
    get,
    path = "/api/v1/strategies",
    tag = "strategies",
    responses((status = 200, body = Vec<StrategyView>), (status = 401, description = "no valid token", body = ErrorBody))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Json<Vec<StrategyView>> {
    let strategies = state.engine.strategies();
    let visible = strategies
        .values()
        .filter(|s| caller.check_read(&s.id.team).is_ok());
    Json(visible.map(StrategyView::from).collect())
}

/// One strategy.
#[utoipa::path(
    get,
    path = "/api/v1/strategies/{team}/{name}",
    tag = "strategies",
    params(("team" = String, Path), ("name" = String, Path)),
    responses(
        (status = 200, body = StrategyView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team's strategy", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, name)): Path<(String, String)>,
) -> Result<Json<StrategyView>, ApiError> {
    caller.check_read(&team)?;
    let strategies = state.engine.strategies();
    let id = StrategyId { team, name };
    let strategy = strategies
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("strategy {id} is not loaded")))?;
    Ok(Json(StrategyView::from(strategy)))
}
