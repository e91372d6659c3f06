//! One error type for every handler: `{"error": "<code>", "message": "<text>"}` with a
//! fitting status. Bad input is always a 4xx; a 500 means canaryd itself failed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::engine::{EngineError, OperationError};
use crate::ports::{RouterError, StoreError, WorkloadError};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `not_found`.
    pub error: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => Self::not_found(format!("analysis {id} not found")),
            StoreError::KeyTaken => Self::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "the Idempotency-Key is in use",
            ),
            StoreError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "concurrent_change", error.to_string())
            }
            StoreError::Fenced(_) | StoreError::InUse { .. } | StoreError::Backend(_) => {
                tracing::error!(%error, "storage failed while serving a request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the analysis store is unavailable; try again",
                )
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownStrategy(id) => {
                Self::not_found(format!("strategy {id} is not loaded"))
            }
            EngineError::Invalid(invalid) => Self::invalid(invalid.to_string()),
            EngineError::NotFound(id) => Self::not_found(format!("analysis {id} not found")),
            EngineError::Operation(OperationError::Rejected(rejected)) => Self::new(
                StatusCode::CONFLICT,
                "not_allowed_in_status",
                rejected.to_string(),
            ),
            EngineError::Operation(busy @ OperationError::RouteBusy { .. }) => {
                Self::new(StatusCode::CONFLICT, "route_busy", busy.to_string())
            }
            EngineError::Operation(OperationError::Unavailable(message)) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "analysis_unavailable",
                message,
            ),
            EngineError::Store(store) => store.into(),
            EngineError::IdempotencyConflict(key) => Self::invalid(format!(
                "Idempotency-Key {key:?} was already used for a different request"
            )),
            EngineError::Route(error) => route_error(error),
            EngineError::Workload(error) => workload_error(error),
            EngineError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "canaryd is shutting down",
            ),
        }
    }
}

/// Why a route cannot be driven. What the operator must fix (a missing object, RBAC,
/// backends) is 422 with the object named; a router that cannot be reached is 503.
fn route_error(error: RouterError) -> ApiError {
    let code = match &error {
        RouterError::Missing(_) => "route_not_found",
        RouterError::Forbidden(_) => "route_forbidden",
        RouterError::Invalid(_) | RouterError::NotApplied(_) => "route_invalid",
        RouterError::Refused(_) => "route_refused",
        RouterError::Unreachable(_) | RouterError::Unsupported(_) | RouterError::Fenced(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "router_unavailable",
                error.to_string(),
            );
        }
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
}

/// Why the workload cannot be deployed: 422 naming the object for what the operator
/// must fix, 503 for an API that cannot be reached.
fn workload_error(error: WorkloadError) -> ApiError {
    let code = match &error {
        WorkloadError::Missing(_) => "workload_not_found",
        WorkloadError::Forbidden(_) => "workload_forbidden",
        WorkloadError::Invalid(_) => "workload_invalid",
        WorkloadError::Refused(_) => "workload_refused",
        WorkloadError::Unreachable(_) | WorkloadError::Unsupported(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "workload_unavailable",
                error.to_string(),
            );
        }
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
}
