//! `/api/v1/deployments`: the history of every change to an environment (canaryd's own
//! analyses, and deployments pipelines recorded), what runs where now, and how two
//! releases differ. The figures of seed 001 come from here: deployment frequency,
//! rollback rate, duration and version drift.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::analyses::{filter, limit, scoped_team};
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use crate::domain::analysis::Status;
use crate::domain::deployment::RecordedDeployment;
use crate::domain::record::Analysis;
use crate::ports::{AnalysisQuery, RecordQuery};

pub mod compare;
pub mod current;
pub mod record;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    #[param(min_length = 1)]
    environment: Option<String>,
    #[param(min_length = 1)]
    team: Option<String>,
    /// At most 500; default 10.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// One change to an environment, in seed 001's shape, whoever made it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// An analysis id, or a recorded deployment's.
    pub id: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub environment: String,
    /// PENDING (not finished yet), DEPLOYED, FAILED, ROLLED_BACK or CANCELLED.
    #[schema(example = "DEPLOYED")]
    pub status: String,
    pub deployed_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<&Analysis> for Deployment {
    fn from(analysis: &Analysis) -> Self {
        let status = analysis.state.status;
        let status = if status.is_terminal() {
            status
        } else {
            Status::Pending
        };
        Self {
            id: analysis.id.clone(),
            image_tag: analysis.image_tag.clone(),
            git_commit: analysis.git_commit.clone(),
            git_branch: analysis.git_branch.clone(),
            environment: analysis.environment.clone(),
            status: status.as_str().to_string(),
            deployed_at: analysis.created_at,
            completed_at: analysis.state.completed_at,
        }
    }
}

impl From<&RecordedDeployment> for Deployment {
    fn from(recorded: &RecordedDeployment) -> Self {
        Self {
            id: recorded.id.clone(),
            image_tag: Some(recorded.image_tag.clone()),
            git_commit: recorded.git_commit.clone(),
            git_branch: recorded.git_branch.clone(),
            environment: recorded.environment.clone(),
            status: recorded.status.as_str().to_string(),
            deployed_at: recorded.deployed_at,
            completed_at: recorded.completed_at,
        }
    }
}

/// Deployments, newest first: canaryd's analyses and the deployments pipelines
/// recorded, merged by `deployedAt`.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/history",
    tag = "deployments",
    params(HistoryParams),
    responses(
        (status = 200, body = Vec<Deployment>),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team", body = ErrorBody),
        (status = 422, description = "bad parameter", body = ErrorBody),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let team = scoped_team(&caller, filter("team", params.team)?)?;
    let environment = filter("environment", params.environment)?;
    let limit = limit(params.limit, 10)?;
    let query = AnalysisQuery {
        statuses: Vec::new(),
        team: team.clone(),
        environment: environment.clone(),
        limit: Some(limit),
    };
    let analyses = state.engine.store().list(&query).await?;
    let query = RecordQuery {
        team,
        service: None,
        environment,
        limit: Some(limit),
    };
    let recorded = state.deployments.recorded_deployments(&query).await?;
    Ok(Json(merged(&analyses, &recorded, limit)))
}

/// The newest `limit` of both lists (each already newest first and at most `limit`).
fn merged(analyses: &[Analysis], recorded: &[RecordedDeployment], limit: usize) -> Vec<Deployment> {
    let mut all: Vec<Deployment> = analyses.iter().map(Deployment::from).collect();
    all.extend(recorded.iter().map(Deployment::from));
    all.sort_by(|a, b| (b.deployed_at, &b.id).cmp(&(a.deployed_at, &a.id)));
    all.truncate(limit);
    all
}
