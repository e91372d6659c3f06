//! `GET /api/v1/deployments/current?service=`: the image each environment runs now, by
//! canaryd's promotions and the deployments pipelines recorded: version drift at a look.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::deployment::RecordedDeployment;
use crate::domain::record::Analysis;
use crate::http::AppState;
use crate::http::analyses::{filter, scoped_team};
use crate::http::caller::Caller;
use crate::http::errors::{ApiError, ErrorBody};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CurrentParams {
    #[param(min_length = 1)]
    service: String,
    #[param(min_length = 1)]
    team: Option<String>,
}

/// Where a release came from: a canaryd analysis, or a pipeline's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Analysis,
    Recorded,
}

/// What one environment runs now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    pub environment: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    /// The analysis or recorded deployment that put it there.
    pub id: String,
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentView {
    pub service: String,
    /// By environment name.
    pub environments: Vec<Running>,
    /// The distinct image tags running, in the order of `environments`.
    pub images: Vec<String>,
    /// True when the environments do not all run the same image.
    pub drift: bool,
}

impl Running {
    fn of_analysis(analysis: &Analysis) -> Self {
        Self {
            environment: analysis.environment.clone(),
            image_tag: analysis.image_tag.clone(),
            git_commit: analysis.git_commit.clone(),
            id: analysis.id.clone(),
            source: Source::Analysis,
            deployed_at: analysis.created_at,
            completed_at: analysis.state.completed_at,
        }
    }

    fn of_record(recorded: &RecordedDeployment) -> Self {
        Self {
            environment: recorded.environment.clone(),
            image_tag: Some(recorded.image_tag.clone()),
            git_commit: recorded.git_commit.clone(),
            id: recorded.id.clone(),
            source: Source::Recorded,
            deployed_at: recorded.deployed_at,
            completed_at: recorded.completed_at,
        }
    }

    fn settled_at(&self) -> DateTime<Utc> {
        self.completed_at.unwrap_or(self.deployed_at)
    }
}

/// The image each environment of a service runs now: the newest DEPLOYED release there.
#[utoipa::path(
    get,
    path = "/api/v1/deployments/current",
    tag = "deployments",
    params(CurrentParams),
    responses(
        (status = 200, body = CurrentView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team", body = ErrorBody),
        (status = 422, description = "bad parameter", body = ErrorBody),
    )
)]
pub async fn current(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<CurrentParams>, QueryRejection>,
) -> Result<Json<CurrentView>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let service = filter("service", Some(params.service))?.unwrap_or_default();
    let team = scoped_team(&caller, filter("team", params.team)?)?;
    let found = state.deployments.current(&service, team.as_deref()).await?;
    let candidates = found.analyses.iter().map(Running::of_analysis);
    let candidates = candidates.chain(found.recorded.iter().map(Running::of_record));
    let mut newest = std::collections::BTreeMap::<String, Running>::new();
    for running in candidates {
        let later = newest
            .get(&running.environment)
            .is_none_or(|held| running.settled_at() > held.settled_at());
        if later {
            newest.insert(running.environment.clone(), running);
        }
    }
    let environments: Vec<Running> = newest.into_values().collect();
    let mut images: Vec<String> = Vec::new();
    for image in environments.iter().filter_map(|e| e.image_tag.clone()) {
        if !images.contains(&image) {
            images.push(image);
        }
    }
    Ok(Json(CurrentView {
        service,
        drift: images.len() > 1,
        images,
        environments,
    }))
}
