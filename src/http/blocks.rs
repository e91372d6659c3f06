//! `/api/v1/blocks`: the blocks emergency releases set, and lifting one with a reason.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use crate::domain::release::Block;
use crate::engine::request::safe_value;
use crate::ports::Lifted;

/// A block on a scope: new analyses there wait in PENDING until it is lifted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockView {
    id: String,
    team: String,
    strategy: String,
    service: String,
    environment: String,
    /// `rollback` or `rollforward`.
    cause: String,
    /// The image the scope was sent to.
    image_tag: String,
    reason: String,
    actor: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Block> for BlockView {
    fn from(block: Block) -> Self {
        Self {
            id: block.id,
            team: block.team,
            strategy: block.scope.strategy,
            service: block.scope.service,
            environment: block.scope.environment,
            cause: block.cause,
            image_tag: block.image_tag,
            reason: block.reason,
            actor: block.actor,
            created_at: block.created_at,
        }
    }
}

/// The blocks in force, oldest first, within the caller's team.
#[utoipa::path(
    get,
    path = "/api/v1/blocks",
    tag = "releases",
    responses(
        (status = 200, description = "blocks not lifted", body = Vec<BlockView>),
        (status = 401, description = "no valid token", body = ErrorBody),
    )
)]
pub async fn blocks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<BlockView>>, ApiError> {
    let mut blocks = state.engine.blocks().await?;
    if let Some(team) = caller.team() {
        blocks.retain(|b| b.team == team);
    }
    Ok(Json(blocks.into_iter().map(BlockView::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiftParams {
    /// Why the block may go: kept with it.
    #[param(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,999}$")]
    reason: String,
}

/// Lift a block (role operator of its team, or admin); the analyses it held start.
#[utoipa::path(
    delete,
    path = "/api/v1/blocks/{id}",
    tag = "releases",
    params(("id" = String, Path, description = "block id"), LiftParams),
    responses(
        (status = 200, description = "lifted", body = BlockView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an operator of the block's team", body = ErrorBody),
        (status = 404, description = "no block in force with that id", body = ErrorBody),
        (status = 422, description = "no reason", body = ErrorBody),
    )
)]
pub async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    params: Result<Query<LiftParams>, QueryRejection>,
) -> Result<Json<BlockView>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    if !safe_value(&params.reason, 1000) {
        return Err(ApiError::invalid(
            "reason: why the block may go (letters, digits, spaces and -_.:/@+)",
        ));
    }
    let not_found = || ApiError::not_found(format!("no block {id} in force"));
    let block = state
        .engine
        .blocks()
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(not_found)?;
    caller.check_operate(&block.team)?;
    let lifted = Lifted {
        actor: caller.actor(None),
        reason: params.reason,
        at: chrono::Utc::now(),
    };
    let block = state
        .engine
        .unblock(&id, &lifted)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(block.into()))
}
