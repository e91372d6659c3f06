//! `GET /api/v1/deployments/compare?from=ID&to=ID`: how two releases differ (image,
//! commit, strategy snapshot, variables, who and when), whichever made them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::current::Source;
use crate::domain::deployment::RecordedDeployment;
use crate::domain::record::Analysis;
use crate::http::AppState;
use crate::http::caller::Caller;
use crate::http::errors::{ApiError, ErrorBody};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CompareParams {
    /// An analysis id or a recorded deployment's.
    #[param(min_length = 1)]
    from: String,
    #[param(min_length = 1)]
    to: String,
}

/// One release, whoever made it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub id: String,
    pub source: Source,
    pub team: String,
    pub service: String,
    pub environment: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    #[schema(example = "DEPLOYED")]
    pub status: String,
    /// `<team>/<name>`, for a canaryd analysis.
    pub strategy: Option<String>,
    /// The steps, interval, limits and promotion the analysis ran with.
    #[schema(value_type = Option<Object>)]
    pub strategy_snapshot: Option<serde_json::Value>,
    /// The template values it ran with (none for a recorded deployment).
    pub variables: BTreeMap<String, String>,
    /// Who started or recorded it.
    pub actor: String,
    pub deployed_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub from: Release,
    pub to: Release,
    /// The fields whose values differ, by their names above.
    pub changed: Vec<String>,
}

/// The fields compared, by their names in a release's JSON.
const COMPARED: [&str; 12] = [
    "source",
    "service",
    "environment",
    "imageTag",
    "gitCommit",
    "gitBranch",
    "status",
    "strategy",
    "strategySnapshot",
    "variables",
    "actor",
    "deployedAt",
];

/// How two releases differ.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/compare",
    tag = "deployments",
    params(CompareParams),
    responses(
        (status = 200, body = Comparison),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team's release", body = ErrorBody),
        (status = 404, description = "no release with that id", body = ErrorBody),
        (status = 422, description = "bad parameter", body = ErrorBody),
    )
)]
pub async fn compare(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<CompareParams>, QueryRejection>,
) -> Result<Json<Comparison>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let from = release(&state, &caller, &params.from).await?;
    let to = release(&state, &caller, &params.to).await?;
    let (a, b) = (json(&from), json(&to));
    let changed = COMPARED
        .iter()
        .filter(|field| a.get(**field) != b.get(**field))
        .map(|field| field.to_string())
        .collect();
    Ok(Json(Comparison { from, to, changed }))
}

fn json(release: &Release) -> serde_json::Value {
    serde_json::to_value(release).unwrap_or_default()
}

async fn release(state: &AppState, caller: &Caller, id: &str) -> Result<Release, ApiError> {
    if let Some(analysis) = state.engine.store().get(id).await? {
        caller.check_read(&analysis.strategy.team)?;
        let events = state.history.events(id).await?;
        let actor = events.first().map(|e| e.record.actor.clone());
        return Ok(of_analysis(&analysis, actor.unwrap_or_default()));
    }
    match state.deployments.recorded_deployment(id).await? {
        Some(recorded) => {
            caller.check_read(&recorded.team)?;
            Ok(of_record(recorded))
        }
        None => Err(ApiError::not_found(format!(
            "no analysis or recorded deployment {id}"
        ))),
    }
}

fn of_analysis(analysis: &Analysis, actor: String) -> Release {
    let plan = serde_json::to_value(&analysis.state.plan).ok();
    Release {
        id: analysis.id.clone(),
        source: Source::Analysis,
        team: analysis.strategy.team.clone(),
        service: analysis.service.clone(),
        environment: analysis.environment.clone(),
        image_tag: analysis.image_tag.clone(),
        git_commit: analysis.git_commit.clone(),
        git_branch: analysis.git_branch.clone(),
        status: analysis.state.status.as_str().to_string(),
        strategy: Some(analysis.strategy.to_string()),
        strategy_snapshot: plan,
        variables: analysis.variables.clone().into_iter().collect(),
        actor,
        deployed_at: analysis.created_at,
        completed_at: analysis.state.completed_at,
    }
}

fn of_record(recorded: RecordedDeployment) -> Release {
    Release {
        id: recorded.id,
        source: Source::Recorded,
        team: recorded.team,
        service: recorded.service,
        environment: recorded.environment,
        image_tag: Some(recorded.image_tag),
        git_commit: recorded.git_commit,
        git_branch: recorded.git_branch,
        status: recorded.status.as_str().to_string(),
        strategy: None,
        strategy_snapshot: None,
        variables: BTreeMap::new(),
        actor: recorded.actor,
        deployed_at: recorded.deployed_at,
        completed_at: recorded.completed_at,
    }
}
