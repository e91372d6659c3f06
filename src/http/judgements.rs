//! `POST /api/v1/judgements`: decide-only. Every metric of a strategy is evaluated once,
//! now, with the same judges and evidence as a check, and no analysis, router or state:
//! for rollout controllers that shift traffic themselves (Argo Rollouts' `web` metric).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::views::MetricView;
use crate::engine::{StartRequest, parse_strategy_id};

/// What to judge.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgementRequest {
    /// `<team>/<name>`
    #[schema(pattern = r"^[^/]+/[^/]+$")]
    pub strategy: String,
    /// Default: the strategy's `spec.service`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    pub service: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$")]
    pub environment: String,
    /// The strategy's declared variables.
    #[serde(default, deserialize_with = "crate::engine::null_is_none")]
    pub variables: BTreeMap<String, String>,
    /// Look-back of the queries (`{{window}}`), e.g. `5m`; default: the strategy's window.
    #[schema(pattern = r"^[1-9][0-9]{0,5}(s|m|h)$")]
    pub window: Option<String>,
}

/// The judgement: `result` is how an analysis would count this check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JudgementView {
    /// PASS, FAIL or INCONCLUSIVE (no data, a query error, or not enough evidence).
    #[schema(example = "PASS")]
    pub result: String,
    pub metrics: Vec<MetricView>,
}

/// Judge a strategy's metrics once, now (decide-only: nothing is stored or shifted).
#[utoipa::path(
    post,
    path = "/api/v1/judgements",
    tag = "judgements",
    request_body(content = JudgementRequest, description = "what to judge"),
    responses(
        (status = 200, description = "judged", body = JudgementView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the token's team does not own the strategy", body = ErrorBody),
        (status = 404, description = "unknown strategy", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid request", body = ErrorBody),
    )
)]
pub async fn judge(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<JudgementRequest>,
) -> Result<Json<JudgementView>, ApiError> {
    let id = parse_strategy_id(&request.strategy).ok_or_else(|| {
        ApiError::invalid(format!(
            "strategy: {:?} is not <team>/<name>",
            request.strategy
        ))
    })?;
    caller.check_start(&id.team)?;
    let window = request
        .window
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("window: {e}; write e.g. 5m")))?;
    let judged = state
        .engine
        .judge_now(start_request(request), window)
        .await?;
    Ok(Json(JudgementView {
        result: judged.outcome.as_str().to_string(),
        metrics: judged
            .metrics
            .into_iter()
            .map(|m| MetricView::new(m.metric, m.queries, m.judgement, m.dry_run))
            .collect(),
    }))
}

fn start_request(request: JudgementRequest) -> StartRequest {
    StartRequest {
        strategy: request.strategy,
        service: request.service,
        environment: request.environment,
        variables: request.variables,
        ..StartRequest::default()
    }
}
