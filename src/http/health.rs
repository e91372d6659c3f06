//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::errors::ApiError;
use crate::ports::AnalysisQuery;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Readiness of this replica.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready`, or `not_ready` with the reason.
    pub status: &'static str,
    /// This replica's id, as the store knows it.
    pub replica: String,
    /// Whether this replica holds its lease, and so may run its analyses.
    pub holds_lease: bool,
    /// Milliseconds the lease has left without a heartbeat (absent with SQLite, whose
    /// lease cannot be taken by another process).
    pub lease_remaining_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The store answers and this replica holds its lease.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Readiness, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let probe = AnalysisQuery {
        limit: Some(1),
        ..AnalysisQuery::default()
    };
    let health = state.engine.health();
    let reason = match state.engine.store().list(&probe).await {
        Err(error) => Some(format!("the store does not answer: {error}")),
        Ok(_) if !health.holds_lease => Some("this replica does not hold its lease".into()),
        Ok(_) => None,
    };
    let code = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let readiness = Readiness {
        status: if reason.is_some() {
            "not_ready"
        } else {
            "ready"
        },
        replica: health.replica,
        holds_lease: health.holds_lease,
        lease_remaining_ms: health
            .lease_remaining
            .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        reason,
    };
    (code, Json(readiness))
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
