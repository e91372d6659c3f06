//! `/api/v1/releases/{rollback,rollforward}`: send a scope back to
//! a known-good release (or forward to one), outside any analysis. The change is
//! recorded as a deployment of the scope, announced to the strategy's notification
//! targets for the platform to act on, and blocks new analyses of the scope until
//! someone lifts the block with a reason.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::blocks::BlockView;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use super::json::JsonBody;
use crate::domain::deployment::{DeploymentStatus, RecordedDeployment};
use crate::domain::record::Analysis;
use crate::domain::release::{Block, Scope, Seen, TargetRefused, target};
use crate::domain::strategy::Strategy;
use crate::engine::parse_strategy_id;
use crate::engine::request::{name_like, safe_value};
use crate::ports::{AnalysisQuery, RecordQuery, ReleaseNotice};

/// Releases of a scope looked at, newest first, from each source.
const SEEN: usize = 500;

/// The body of a rollback or roll forward.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRequest {
    #[schema(pattern = r"^[^/]+/[^/]+$", example = "shop/web")]
    strategy: String,
    /// Defaults to the strategy's service.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    service: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$")]
    environment: String,
    /// The image to send the scope to: it must have been DEPLOYED there. A rollback
    /// without it takes the newest DEPLOYED image before the one running now.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    to: Option<String>,
    /// Why: kept with the block and sent with the notification.
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,999}$")]
    reason: String,
}

/// What a rollback or roll forward did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseAnswer {
    /// The recorded deployment of the scope to `imageTag`.
    id: String,
    image_tag: String,
    /// The image the scope ran before.
    from: Option<String>,
    /// The known-good release `imageTag` was taken from.
    target_release: String,
    block_id: String,
    block: BlockView,
}

/// Roll a scope back to a known-good release, and block new analyses there.
#[utoipa::path(
    post,
    path = "/api/v1/releases/rollback",
    tag = "releases",
    request_body = ReleaseRequest,
    responses(
        (status = 201, description = "recorded, announced and blocked", body = ReleaseAnswer),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an operator of the strategy's team", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 409, description = "the target is not a known-good release there (it ended FAILED or ROLLED_BACK, or never ran there), already runs, or an analysis is active in the scope", body = ErrorBody),
        (status = 422, description = "invalid body, or a strategy whose workload canaryd deploys (not supported yet)", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ReleaseRequest>,
) -> Result<(StatusCode, Json<ReleaseAnswer>), ApiError> {
    release(state, caller, request, "rollback").await
}

/// Roll a scope forward to a known-good release, and block new analyses there.
#[utoipa::path(
    post,
    path = "/api/v1/releases/rollforward",
    tag = "releases",
    request_body = ReleaseRequest,
    responses(
        (status = 201, description = "recorded, announced and blocked", body = ReleaseAnswer),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an operator of the strategy's team", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 409, description = "the target is not a known-good release there, already runs, or an analysis is active in the scope", body = ErrorBody),
        (status = 422, description = "invalid body (`to` is required), or a strategy whose workload canaryd deploys (not supported yet)", body = ErrorBody),
    )
)]
pub async fn rollforward(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ReleaseRequest>,
) -> Result<(StatusCode, Json<ReleaseAnswer>), ApiError> {
    if request.to.is_none() {
        return Err(ApiError::invalid(
            "to: a roll forward names the image to go to",
        ));
    }
    release(state, caller, request, "rollforward").await
}

fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// The strategy and scope a request names, once the caller may operate it.
fn scope(
    state: &AppState,
    caller: &Caller,
    request: &ReleaseRequest,
) -> Result<(Strategy, Scope), ApiError> {
    let id = parse_strategy_id(&request.strategy).ok_or_else(|| {
        ApiError::invalid(format!(
            "strategy: {:?} is not <team>/<name>",
            request.strategy
        ))
    })?;
    caller.check_operate(&id.team)?;
    let strategy = state
        .engine
        .strategies()
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("strategy {id} is not loaded")))?;
    if strategy.workload.is_some() {
        return Err(ApiError::invalid(format!(
            "strategy {id} deploys a Kubernetes workload; releases of such strategies are not supported yet: set the stable Deployment's image by hand"
        )));
    }
    let service = request
        .service
        .clone()
        .unwrap_or_else(|| strategy.service.clone());
    let checks = [
        ("service", name_like(&service, 128)),
        ("environment", name_like(&request.environment, 63)),
        (
            "to",
            request.to.as_deref().is_none_or(|to| name_like(to, 128)),
        ),
        ("reason", safe_value(&request.reason, 1000)),
    ];
    if let Some((field, _)) = checks.iter().find(|(_, ok)| !ok) {
        return Err(ApiError::invalid(format!(
            "{field}: letters, digits and -_. (a reason may also hold spaces and :/@+), not empty"
        )));
    }
    let scope = Scope {
        strategy: id.to_string(),
        service,
        environment: request.environment.clone(),
    };
    Ok((strategy, scope))
}

/// Every release the scope has seen: canaryd's analyses and recorded deployments.
async fn seen(state: &AppState, team: &str, scope: &Scope) -> Result<Vec<Seen>, ApiError> {
    let query = AnalysisQuery {
        team: Some(team.to_string()),
        environment: Some(scope.environment.clone()),
        limit: Some(SEEN),
        ..AnalysisQuery::default()
    };
    let analyses = state.engine.store().list(&query).await?;
    let in_scope = |a: &&Analysis| crate::engine::scope_of(a) == *scope;
    if let Some(active) = analyses
        .iter()
        .filter(in_scope)
        .find(|a| !a.state.status.is_terminal())
    {
        return Err(conflict(
            "analysis_active",
            format!(
                "analysis {} is {} in this scope; roll it back or abort it first",
                active.id,
                active.state.status.as_str()
            ),
        ));
    }
    let mut seen: Vec<Seen> = analyses
        .iter()
        .filter(in_scope)
        .filter_map(|a| {
            Some(Seen {
                id: a.id.clone(),
                image_tag: a.image_tag.clone()?,
                status: a.state.status.as_str().to_string(),
                at: a.state.completed_at.unwrap_or(a.state.updated_at),
            })
        })
        .collect();
    let recorded = RecordQuery {
        team: Some(team.to_string()),
        service: Some(scope.service.clone()),
        environment: Some(scope.environment.clone()),
        limit: Some(SEEN),
    };
    let recorded = state.deployments.recorded_deployments(&recorded).await?;
    seen.extend(recorded.into_iter().map(|r| Seen {
        at: r.completed_at.unwrap_or(r.deployed_at),
        id: r.id,
        image_tag: r.image_tag,
        status: r.status.as_str().to_string(),
    }));
    Ok(seen)
}

async fn release(
    state: AppState,
    caller: Caller,
    request: ReleaseRequest,
    cause: &str,
) -> Result<(StatusCode, Json<ReleaseAnswer>), ApiError> {
    let (strategy, scope) = scope(&state, &caller, &request)?;
    let team = strategy.id.team.clone();
    let seen = seen(&state, &team, &scope).await?;
    let chosen =
        target(&seen, request.to.as_deref(), &scope.environment).map_err(
            |refused| match refused {
                TargetRefused::NotGood { .. } => conflict("not_known_good", refused.to_string()),
                TargetRefused::Unknown { .. } => conflict("not_known_good", refused.to_string()),
                TargetRefused::AlreadyRunning { .. } => {
                    conflict("already_running", refused.to_string())
                }
                TargetRefused::NoEarlier { .. } => {
                    conflict("no_earlier_release", refused.to_string())
                }
            },
        )?;
    let from = seen
        .iter()
        .filter(|s| s.status == "DEPLOYED")
        .max_by_key(|s| s.at)
        .map(|s| s.image_tag.clone());
    let (deployment, block) = records(
        &scope,
        &team,
        &chosen.image_tag,
        caller.actor(None),
        cause,
        request.reason,
    );
    // The block first: once the change is recorded, no analysis may promote over it.
    state.engine.block(&block).await?;
    state.deployments.record_deployment(&deployment).await?;
    state.telemetry.deployment_recorded(&deployment);
    state.engine.announce(ReleaseNotice {
        block: block.clone(),
        from: from.clone(),
        targets: strategy.notifications.clone(),
    });
    tracing::info!(block = %block.id, cause, image = %block.image_tag, "emergency release recorded");
    let answer = ReleaseAnswer {
        id: deployment.id,
        image_tag: block.image_tag.clone(),
        from,
        target_release: chosen.id.clone(),
        block_id: block.id.clone(),
        block: block.into(),
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// The recorded deployment of the scope to `image`, and the block that follows it.
fn records(
    scope: &Scope,
    team: &str,
    image: &str,
    actor: String,
    cause: &str,
    reason: String,
) -> (RecordedDeployment, Block) {
    let now = chrono::Utc::now();
    let deployment = RecordedDeployment {
        id: uuid::Uuid::now_v7().to_string(),
        team: team.to_string(),
        service: scope.service.clone(),
        environment: scope.environment.clone(),
        image_tag: image.to_string(),
        git_commit: None,
        git_branch: None,
        status: DeploymentStatus::Deployed,
        deployed_at: now,
        completed_at: Some(now),
        actor: actor.clone(),
        recorded_at: now,
    };
    let block = Block {
        id: uuid::Uuid::now_v7().to_string(),
        team: team.to_string(),
        scope: scope.clone(),
        cause: cause.to_string(),
        image_tag: image.to_string(),
        reason,
        actor,
        created_at: now,
    };
    (deployment, block)
}
