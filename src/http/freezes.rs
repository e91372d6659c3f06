//! `/api/v1/freezes`: stop and resume analyses of an environment. While frozen, new
//! analyses are accepted as PENDING and start when the last freeze is lifted.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use super::json::JsonBody;
use crate::ports::Freeze;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FreezeRequest {
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$")]
    environment: String,
    /// Why: shown to everyone whose analysis waits.
    #[schema(pattern = r"\S", max_length = 1000)]
    reason: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Freeze)]
#[serde(rename_all = "camelCase")]
pub struct FreezeDoc {
    id: String,
    environment: String,
    reason: String,
    actor: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// Freeze an environment (admin).
#[utoipa::path(
    post,
    path = "/api/v1/freezes",
    tag = "freezes",
    request_body = FreezeRequest,
    responses(
        (status = 201, body = FreezeDoc),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid request", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<FreezeRequest>,
) -> Result<(StatusCode, Json<Freeze>), ApiError> {
    caller.check_admin()?;
    let environment = request.environment.trim();
    let valid = !environment.is_empty()
        && environment.len() <= 63
        && environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid {
        return Err(ApiError::invalid(
            "environment: letters, digits, '-', '_' or '.', at most 63",
        ));
    }
    if request.reason.trim().is_empty() || request.reason.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "reason: required, at most 1000 characters",
        ));
    }
    let freeze = state
        .engine
        .freeze(environment, request.reason.trim(), &caller.actor(None))
        .await?;
    Ok((StatusCode::CREATED, Json(freeze)))
}

/// Current freezes.
#[utoipa::path(
    get,
    path = "/api/v1/freezes",
    tag = "freezes",
    responses((status = 200, body = Vec<FreezeDoc>), (status = 401, description = "no valid token", body = ErrorBody))
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<Freeze>>, ApiError> {
    Ok(Json(state.engine.freezes().await?))
}

/// Lift a freeze (admin); waiting analyses start once their environment has none left.
#[utoipa::path(
    delete,
    path = "/api/v1/freezes/{id}",
    tag = "freezes",
    params(("id" = String, Path, description = "freeze id")),
    responses(
        (status = 204, description = "lifted"),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an admin", body = ErrorBody),
        (status = 404, description = "no such freeze", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.check_admin()?;
    match state.engine.unfreeze(&id, &caller.actor(None)).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found(format!("freeze {id} not found"))),
    }
}
