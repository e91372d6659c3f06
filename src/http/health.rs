//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::errors::ApiError;
use crate::ports::AnalysisQuery;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The store answers and strategies are loaded.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Health), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let probe = AnalysisQuery {
        limit: Some(1),
        ..AnalysisQuery::default()
    };
    state.engine.store().list(&probe).await?;
    Ok(Json(Health { status: "ready" }))
}

/// Prometheus exposition of canaryd's own series (`canaryd_*`).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "text exposition", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let counts = state.history.status_counts().await?;
    let text = state
        .telemetry
        .encode_with_status_counts(&counts)
        .map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "encoding_failed",
                "cannot encode metrics",
            )
        })?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], text).into_response())
}
