//! `/api/v1/analyses`: the CI webhook and the state of analyses.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::AppState;
use super::errors::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::views::{Accepted, AnalysisView, EventView};
use crate::engine::StartRequest;

/// Start an analysis (the CI webhook).
#[utoipa::path(
    post,
    path = "/api/v1/analyses",
    tag = "analyses",
    request_body(content = Object, description = "{strategy, service?, environment, imageTag?, gitCommit?, gitBranch?, triggeredBy?, variables?}"),
    responses(
        (status = 202, description = "accepted", body = Accepted),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid request", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let actor = request
        .triggered_by
        .clone()
        .unwrap_or_else(|| "anonymous".to_string());
    let analysis = state.engine.start(request, &actor).await?;
    let accepted = Accepted {
        status_url: format!("/api/v1/analyses/{}", analysis.id),
        status: analysis.state.status.as_str().to_string(),
        id: analysis.id,
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// One analysis with every check's evidence.
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}",
    tag = "analyses",
    params(("id" = String, Path, description = "analysis id")),
    responses(
        (status = 200, description = "the analysis", body = AnalysisView),
        (status = 404, description = "unknown id", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AnalysisView>, ApiError> {
    let analysis = state
        .engine
        .store()
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("analysis {id} not found")))?;
    let checks = state.history.checks(&id).await?;
    Ok(Json(AnalysisView::new(&analysis, Some(checks))))
}

/// The audit trail: every decision and operation, with its actor and reason.
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}/events",
    tag = "analyses",
    params(("id" = String, Path, description = "analysis id")),
    responses(
        (status = 200, description = "oldest first", body = Vec<EventView>),
        (status = 404, description = "unknown id", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    if state.engine.store().get(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("analysis {id} not found")));
    }
    let events = state.history.events(&id).await?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}
