//! The group's operations. Each is checked against the group's rule first and then
//! applied member by member, as each member's own operation with the actor and reason
//! in its audit trail. A member that moves on in between (it reached its verdict) may
//! refuse; the others are still applied, and the answer names the refusals.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{GroupView, readable};
use crate::domain::analysis::{Operation, Status};
use crate::domain::group::{MemberRollback, cancel_refusal, rollback_refusal};
use crate::domain::record::Analysis;
use crate::http::AppState;
use crate::http::analyses::{OperationRequest, operation_reason};
use crate::http::caller::Caller;
use crate::http::errors::{ApiError, ErrorBody};
use crate::http::json::MaybeJson;

/// Cancel every member (each aborts: traffic back to stable, CANCELLED). Allowed only
/// while every member is RUNNING.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/cancel",
    tag = "groups",
    params(("id" = String, Path, description = "group id")),
    request_body(content = OperationRequest, description = "{reason}; the body may be left out"),
    responses(
        (status = 200, description = "every member was cancelled", body = GroupView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an operator of every member's team", body = ErrorBody),
        (status = 404, description = "unknown id", body = ErrorBody),
        (status = 409, description = "`not_allowed_in_status`: a member is not RUNNING (the message names it); `group_partly_applied`: a member refused while the others were cancelled", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<OperationRequest>,
) -> Result<Json<GroupView>, ApiError> {
    let reason = operation_reason(body)?;
    let members = operable(&state, &caller, &id).await?;
    if let Some(refusal) = cancel_refusal(&statuses(&members)) {
        return Err(not_allowed(refusal));
    }
    let plan = members.iter().map(|a| (a, Some(Operation::Abort)));
    apply(&state, &caller, &id, "cancel", &reason, plan.collect()).await
}

/// Roll every member back that has not ended: RUNNING, PAUSED and PROMOTING ones roll
/// back, PENDING ones (no traffic shifted yet) are cancelled. Refused while the group
/// is FINALIZING.
#[utoipa::path(
    post,
    path = "/api/v1/groups/{id}/rollback",
    tag = "groups",
    params(("id" = String, Path, description = "group id")),
    request_body(content = OperationRequest, description = "{reason}; the body may be left out"),
    responses(
        (status = 200, description = "every member still under way was rolled back", body = GroupView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not an operator of every member's team", body = ErrorBody),
        (status = 404, description = "unknown id", body = ErrorBody),
        (status = 409, description = "`not_allowed_in_status`: the group is FINALIZING; `group_partly_applied`: a member refused while the others rolled back", body = ErrorBody),
        (status = 422, description = "invalid body", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson<OperationRequest>,
) -> Result<Json<GroupView>, ApiError> {
    let reason = operation_reason(body)?;
    let members = operable(&state, &caller, &id).await?;
    if let Some(refusal) = rollback_refusal(&statuses(&members)) {
        return Err(not_allowed(refusal));
    }
    let plan = members.iter().map(|a| {
        let operation = match MemberRollback::of(a.state.status) {
            MemberRollback::Abort => Some(Operation::Abort),
            MemberRollback::Rollback => Some(Operation::Rollback),
            MemberRollback::Leave => None,
        };
        (a, operation)
    });
    apply(&state, &caller, &id, "rollback", &reason, plan.collect()).await
}

/// The members, once the caller is known to be an operator of every one's team.
async fn operable(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<Analysis>, ApiError> {
    let (group, members) = readable(state, caller, id).await?;
    for member in &group.members {
        caller.check_operate(&member.team)?;
    }
    Ok(members)
}

fn statuses(members: &[Analysis]) -> Vec<(&str, Status)> {
    members
        .iter()
        .map(|a| (a.id.as_str(), a.state.status))
        .collect()
}

fn not_allowed(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "not_allowed_in_status", message)
}

/// Applies each member's operation, then answers with the group as it stands.
async fn apply(
    state: &AppState,
    caller: &Caller,
    id: &str,
    name: &str,
    reason: &str,
    plan: Vec<(&Analysis, Option<Operation>)>,
) -> Result<Json<GroupView>, ApiError> {
    let actor = caller.actor(None);
    let said = if reason.is_empty() {
        format!("group {id} {name}")
    } else {
        format!("group {id} {name}: {reason}")
    };
    let mut refused = Vec::new();
    for (analysis, operation) in plan {
        let Some(operation) = operation else { continue };
        let outcome = state
            .engine
            .operate(&analysis.id, operation, &actor, &said)
            .await;
        if let Err(error) = outcome {
            refused.push(format!("{}: {error}", analysis.id));
        }
    }
    if !refused.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "group_partly_applied",
            format!(
                "{name} was applied to the other members, but {}",
                refused.join("; ")
            ),
        ));
    }
    let (group, members) = readable(state, caller, id).await?;
    tracing::info!(group = %id, operation = name, %actor, "group operation applied");
    Ok(Json(GroupView::new(&group, &members)))
}
