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
