//! `POST /api/v1/deployments`: a pipeline records a deployment it made (seed 001), so
//! that the history shows every change to an environment, not only canaryd's canaries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::deployment::{DeploymentStatus, RecordedDeployment};
use crate::engine::request::{is_commit, name_like, safe_value};
use crate::http::AppState;
use crate::http::caller::Caller;
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::json::JsonBody;

/// How far ahead of canaryd's clock a reported time may be (clocks differ a little; a
/// time far ahead would head the history forever).
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordRequest {
    /// A service some loaded strategy names (`spec.service`); its team owns the record.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", example = "checkout-api")]
    service: String,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$", example = "dev")]
    environment: String,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$", example = "v2.1.0-abc1234")]
    image_tag: String,
    #[schema(pattern = r"^[0-9A-Fa-f]{4,64}$", example = "abc1234")]
    git_commit: Option<String>,
    #[schema(
        pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,254}$",
        example = "main"
    )]
    git_branch: Option<String>,
    #[schema(
        pattern = r"^(PENDING|DEPLOYED|FAILED|ROLLED_BACK)$",
        example = "DEPLOYED"
    )]
    status: String,
    /// When the deployment began; default: when canaryd receives the record.
    deployed_at: Option<DateTime<Utc>>,
    /// When it reached its status; default: when canaryd receives the record, except
    /// for PENDING, which has none.
    completed_at: Option<DateTime<Utc>>,
}

/// A recorded deployment, as stored.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = RecordedDeployment)]
#[serde(rename_all = "camelCase")]
pub struct RecordedDeploymentDoc {
    id: String,
    team: String,
    service: String,
    environment: String,
    image_tag: String,
    git_commit: Option<String>,
    git_branch: Option<String>,
    #[schema(example = "DEPLOYED")]
    status: String,
    deployed_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    /// The token that recorded it.
    actor: String,
    recorded_at: DateTime<Utc>,
}

/// Record a deployment made outside canaryd (role ci or above, of the service's team).
#[utoipa::path(
    post,
    path = "/api/v1/deployments",
    tag = "deployments",
    request_body = RecordRequest,
    responses(
        (status = 201, description = "recorded", body = RecordedDeploymentDoc),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the token's team does not own the service", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid record, or a service no loaded strategy names", body = ErrorBody),
    )
)]
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<RecordRequest>,
) -> Result<(StatusCode, Json<RecordedDeployment>), ApiError> {
    let now = Utc::now();
    let status = request.check(now)?;
    let team = owning_team(&state, &caller, &request.service)?;
    let deployed_at = request.deployed_at.unwrap_or(now);
    let completed_at = match status {
        DeploymentStatus::Pending => None,
        _ => Some(request.completed_at.unwrap_or(now).max(deployed_at)),
    };
    let deployment = RecordedDeployment {
        id: uuid::Uuid::now_v7().to_string(),
        team,
        service: request.service,
        environment: request.environment,
        image_tag: request.image_tag,
        git_commit: request.git_commit,
        git_branch: request.git_branch,
        status,
        deployed_at,
        completed_at,
        actor: caller.actor(None),
        recorded_at: now,
    };
    state.deployments.record_deployment(&deployment).await?;
    state.telemetry.deployment_recorded(&deployment);
    tracing::info!(id = %deployment.id, team = %deployment.team, service = %deployment.service,
        environment = %deployment.environment, status = deployment.status.as_str(),
        actor = %deployment.actor, "deployment recorded");
    Ok((StatusCode::CREATED, Json(deployment)))
}

impl RecordRequest {
    /// Every field's rule, naming the first field that breaks one.
    fn check(&self, now: DateTime<Utc>) -> Result<DeploymentStatus, ApiError> {
        let invalid = |field: &str, rule: &str| Err(ApiError::invalid(format!("{field}: {rule}")));
        let name_rule = "letters, digits, '-', '_' or '.'";
        if !name_like(&self.service, 128) {
            return invalid("service", &format!("{name_rule}, at most 128"));
        }
        if !name_like(&self.environment, 63) {
            return invalid("environment", &format!("{name_rule}, at most 63"));
        }
        if !name_like(&self.image_tag, 128) {
            return invalid("imageTag", &format!("{name_rule}, at most 128"));
        }
        if self.git_commit.as_deref().is_some_and(|c| !is_commit(c)) {
            return invalid("gitCommit", "a hexadecimal commit id");
        }
        if self
            .git_branch
            .as_deref()
            .is_some_and(|b| !safe_value(b, 255))
        {
            return invalid(
                "gitBranch",
                "at most 255 characters of letters, digits and -_.:/@+",
            );
        }
        let Some(status) = DeploymentStatus::parse(&self.status) else {
            return invalid("status", "one of PENDING, DEPLOYED, FAILED, ROLLED_BACK");
        };
        self.check_times(status, now)?;
        Ok(status)
    }

    fn check_times(&self, status: DeploymentStatus, now: DateTime<Utc>) -> Result<(), ApiError> {
        let ahead = |at: &Option<DateTime<Utc>>| at.is_some_and(|at| at > now + CLOCK_SKEW);
        let invalid = |message: &str| Err(ApiError::invalid(message.to_string()));
        if ahead(&self.deployed_at) {
            return invalid("deployedAt: later than canaryd's clock (by over 5 minutes)");
        }
        if ahead(&self.completed_at) {
            return invalid("completedAt: later than canaryd's clock (by over 5 minutes)");
        }
        match (status, self.deployed_at, self.completed_at) {
            (DeploymentStatus::Pending, _, Some(_)) => {
                invalid("completedAt: a PENDING deployment has not completed")
            }
            (_, Some(deployed), Some(completed)) if completed < deployed => {
                invalid("completedAt: before deployedAt")
            }
            _ => Ok(()),
        }
    }
}

/// The team whose loaded strategy names `service`, which the caller must belong to.
fn owning_team(state: &AppState, caller: &Caller, service: &str) -> Result<String, ApiError> {
    let strategies = state.engine.strategies();
    let mut teams: Vec<&str> = strategies
        .values()
        .filter(|strategy| strategy.service == service)
        .map(|strategy| strategy.id.team.as_str())
        .collect();
    // Strategies are ordered by team, so equal teams are neighbours.
    teams.dedup();
    let team = match (teams.as_slice(), caller.team()) {
        ([], _) => {
            return Err(ApiError::invalid(format!(
                "service: no loaded strategy names service {service:?}"
            )));
        }
        (_, Some(own)) if teams.contains(&own) => own,
        // A team's token for another team's service: refused just below.
        ([first, ..], Some(_)) | ([first], None) => first,
        (several, None) => {
            return Err(ApiError::invalid(format!(
                "service: {service:?} is named by strategies of several teams ({}); \
                 record it with a token of one of them",
                several.join(", ")
            )));
        }
    };
    caller.check_start(team)?;
    Ok(team.to_string())
}
