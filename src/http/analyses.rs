//! `/api/v1/analyses`: the CI webhook, the state of analyses, their audit trail, and
//! the operations on them.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use super::json::{JsonBody, MaybeJson};
use super::views::{Accepted, AnalysisView, EventView};
use crate::domain::analysis::{Operation, Status};
use crate::domain::record::Analysis;
use crate::engine::{StartRequest, parse_strategy_id};
use crate::ports::AnalysisQuery;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
const MAX_KEY_LENGTH: usize = 255;

/// Start an analysis (the CI webhook). Retries with the same `Idempotency-Key` answer
/// 200 with the analysis the first request started. When another analysis is active on
/// the same route, it is superseded: it returns the canary's traffic to stable and ends
/// CANCELLED, and only then does this one start at step 1 (PENDING until then).
#[utoipa::path(
    post,
    path = "/api/v1/analyses",
    tag = "analyses",
    request_body(content = StartRequestDoc, description = "what to analyse"),
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe: 1 to 255 visible ASCII characters", pattern = r"^[!-~]([ -~]{0,253}[!-~])?$")),
    responses(
        (status = 202, description = "accepted", body = Accepted),
        (status = 200, description = "a retry: the analysis the key already started", body = Accepted),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the token's team does not own the strategy", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid request, or a route that cannot be driven: its object or CRD is missing, canaryd may not change it, or it lacks a backend", body = ErrorBody),
        (status = 503, description = "the strategy's router is not available here", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let id = parse_strategy_id(&request.strategy).ok_or_else(|| {
        ApiError::invalid(format!(
            "strategy: {:?} is not <team>/<name>",
            request.strategy
        ))
    })?;
    caller.check_start(&id.team)?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|k| valid_key(k))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible characters"
                    ))
                })?,
        ),
    };
    let actor = caller.actor(request.triggered_by.as_deref());
    let started = state.engine.start(request, &actor, key).await?;
    let analysis = started.analysis;
    let accepted = Accepted {
        status_url: format!("/api/v1/analyses/{}", analysis.id),
        status: analysis.state.status.as_str().to_string(),
        id: analysis.id,
    };
    let status = if started.existing {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(accepted)))
}

/// The webhook body, for the OpenAPI document.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = StartRequest)]
pub struct StartRequestDoc {
    /// `<team>/<name>`
    #[schema(pattern = r"^[^/]+/[^/]+$", example = "search/indexer")]
    strategy: String,
    /// Defaults to the strategy's service.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    service: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$", example = "production")]
    environment: String,
    /// `<semver>-<short-sha>` when the strategy sets `imageTagRule: semver-sha`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    image_tag: Option<String>,
    #[schema(pattern = r"^[0-9A-Fa-f]{4,64}$")]
    git_commit: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,254}$")]
    git_branch: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,254}$")]
    triggered_by: Option<String>,
    /// Values for the strategy's declared variables.
    variables: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Statuses, comma-separated (e.g. `RUNNING,PAUSED`).
    #[param(
        pattern = r"^(PENDING|RUNNING|PAUSED|PROMOTING|DEPLOYED|ROLLING_BACK|ROLLED_BACK|FAILED|CANCELLED)(,(PENDING|RUNNING|PAUSED|PROMOTING|DEPLOYED|ROLLING_BACK|ROLLED_BACK|FAILED|CANCELLED))*$"
    )]
    status: Option<String>,
    #[param(min_length = 1)]
    team: Option<String>,
    #[param(min_length = 1)]
    environment: Option<String>,
    /// At most 500; default 50.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// Analyses, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/analyses",
    tag = "analyses",
    params(ListParams),
    responses(
        (status = 200, description = "newest first", body = Vec<AnalysisView>),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team", body = ErrorBody),
        (status = 422, description = "bad filter", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<AnalysisView>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let query = AnalysisQuery {
        statuses: parse_statuses(filter("status", params.status)?.as_deref())?,
        team: scoped_team(&caller, filter("team", params.team)?)?,
        environment: filter("environment", params.environment)?,
        limit: Some(limit(params.limit, DEFAULT_LIMIT)?),
    };
    let analyses = state.engine.store().list(&query).await?;
    Ok(Json(
        analyses
            .iter()
            .map(|a| AnalysisView::new(a, None))
            .collect(),
    ))
}

/// The team a listing is confined to: the asked one, which the caller must be allowed
/// to read, or the caller's own.
pub fn scoped_team(caller: &Caller, asked: Option<String>) -> Result<Option<String>, ApiError> {
    match asked {
        Some(team) => {
            caller.check_read(&team)?;
            Ok(Some(team))
        }
        None => Ok(caller.team().map(str::to_string)),
    }
}

/// An Idempotency-Key: 1 to 255 visible ASCII characters, spaces only inside.
fn valid_key(key: &str) -> bool {
    let visible = |b: u8| (b'!'..=b'~').contains(&b);
    let bytes = key.as_bytes();
    (1..=MAX_KEY_LENGTH).contains(&bytes.len())
        && bytes.iter().all(|&b| b == b' ' || visible(b))
        && bytes.first().copied().is_some_and(visible)
        && bytes.last().copied().is_some_and(visible)
}

/// A query filter as given; an empty one is refused (it would match nothing, or
/// everything, depending on who reads it).
pub fn filter(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(value) if value.is_empty() => Err(ApiError::invalid(format!(
            "{name} must not be empty; leave it out to not filter by it"
        ))),
        value => Ok(value),
    }
}

pub fn limit(asked: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match asked.unwrap_or(default) {
        0 => Err(ApiError::invalid("limit must be at least 1")),
        n if n > MAX_LIMIT => Err(ApiError::invalid(format!(
            "limit must be at most {MAX_LIMIT}"
        ))),
        n => Ok(n),
    }
}

fn parse_statuses(text: Option<&str>) -> Result<Vec<Status>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|name| {
            Status::parse(name.trim()).ok_or_else(|| {
                let known: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid(format!(
                    "status {name:?} is not one of {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// Loads an analysis the caller may read.
async fn readable(state: &AppState, caller: &Caller, id: &str) -> Result<Analysis, ApiError> {
    let analysis = state
        .engine
        .store()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("analysis {id} not found")))?;
    caller.check_read(&analysis.strategy.team)?;
    Ok(analysis)
}

/// One analysis with every check's evidence.
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}",
    tag = "analyses",
    params(("id" = String, Path, description = "analysis id")),
    responses(
        (status = 200, description = "the analysis", body = AnalysisView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team's analysis", body = ErrorBody),
        (status = 404, description = "unknown id", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AnalysisView>, ApiError> {
    let analysis = readable(&state, &caller, &id).await?;
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
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "another team's analysis", body = ErrorBody),
        (status = 404, description = "unknown id", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    readable(&state, &caller, &id).await?;
    let events = state.history.events(&id).await?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}

/// The body of an operation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationRequest {
    /// Why: recorded in the audit trail with the actor.
    #[serde(default)]
    reason: String,
}

const MAX_REASON: usize = 1000;

/// The reason an operation's body gives: empty when left out, bounded in length.
pub fn operation_reason(body: Option<OperationRequest>) -> Result<String, ApiError> {
    let reason = body.unwrap_or_default().reason;
    if reason.chars().count() > MAX_REASON {
        return Err(ApiError::invalid(format!(
            "reason is longer than {MAX_REASON} characters"
        )));
    }
    Ok(reason)
}

async fn operate(
    state: AppState,
    caller: Caller,
    id: String,
    operation: Operation,
    body: Option<OperationRequest>,
) -> Result<Json<AnalysisView>, ApiError> {
    let reason = operation_reason(body)?;
    let analysis = readable(&state, &caller, &id).await?;
    caller.check_operate(&analysis.strategy.team)?;
    let actor = caller.actor(None);
    let updated = state
        .engine
        .operate(&id, operation, &actor, &reason)
        .await?;
    Ok(Json(AnalysisView::new(&updated, None)))
}

macro_rules! operation_handler {
    ($name:ident, $operation:expr, $path:literal, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post,
            path = $path,
            tag = "operations",
            params(("id" = String, Path, description = "analysis id")),
            request_body(content = OperationRequest, description = "{reason}; the body may be left out"),
            responses(
                (status = 200, description = "applied", body = AnalysisView),
                (status = 400, description = "malformed JSON", body = ErrorBody),
                (status = 401, description = "no valid token", body = ErrorBody),
                (status = 403, description = "not an operator of the analysis's team", body = ErrorBody),
                (status = 404, description = "unknown id", body = ErrorBody),
                (status = 409, description = "`not_allowed_in_status`: the message lists the allowed statuses; `route_busy` (retry): another analysis, named in the message, is active on the route", body = ErrorBody),
                (status = 422, description = "invalid body", body = ErrorBody),
                (status = 503, description = "`analysis_unavailable`: the analysis could not store the operation (the store failed, or the replica running it did not answer); it resumes from its last stored state", body = ErrorBody),
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            MaybeJson(body): MaybeJson<OperationRequest>,
        ) -> Result<Json<AnalysisView>, ApiError> {
            operate(state, caller, id, $operation, body).await
        }
    };
}

operation_handler!(
    pause,
    Operation::Pause,
    "/api/v1/analyses/{id}/pause",
    "Pause a RUNNING analysis: checks stop, traffic stays."
);
operation_handler!(
    resume,
    Operation::Resume,
    "/api/v1/analyses/{id}/resume",
    "Resume a PAUSED analysis."
);
operation_handler!(
    promote,
    Operation::Promote,
    "/api/v1/analyses/{id}/promote",
    "Skip the remaining steps and promote."
);
operation_handler!(
    rollback,
    Operation::Rollback,
    "/api/v1/analyses/{id}/rollback",
    "Roll back: canary weight to 0, ROLLED_BACK."
);
operation_handler!(
    abort,
    Operation::Abort,
    "/api/v1/analyses/{id}/abort",
    "Cancel: canary weight to 0, CANCELLED."
);
operation_handler!(
    retry,
    Operation::Retry,
    "/api/v1/analyses/{id}/retry",
    "Start a FAILED or ROLLED_BACK analysis again from step 1."
);
