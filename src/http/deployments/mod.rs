//! `/api/v1/deployments/history`: every analysis as a deployment record, newest first,
//! for deployment frequency, rollback rate, duration and version drift.

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
use crate::domain::record::Analysis;
use crate::ports::AnalysisQuery;

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

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
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

/// Deployments, newest first.
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
    let query = AnalysisQuery {
        statuses: Vec::new(),
        team: scoped_team(&caller, filter("team", params.team)?)?,
        environment: filter("environment", params.environment)?,
        limit: Some(limit(params.limit, 10)?),
    };
    let analyses = state.engine.store().list(&query).await?;
    Ok(Json(analyses.iter().map(Deployment::from).collect()))
}
