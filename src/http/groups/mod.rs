//! `/api/v1/groups`: one release to several scopes at once. Each member is an analysis
//! with its own route and verdict; the group has a status over all of them (RUNNING,
//! FINALIZING, FINALIZED) and two operations with the group's own rules: cancel only
//! while every member is RUNNING, roll back unless FINALIZING.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::caller::Caller;
use super::errors::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::views::AnalysisView;
use crate::domain::analysis::Status;
use crate::domain::group::{DeploymentGroup, GroupMember, GroupStatus};
use crate::domain::record::Analysis;
use crate::engine::request::safe_value;
use crate::engine::{StartRequest, null_is_none, parse_strategy_id};

pub mod operations;

/// Members of one group at most.
const MAX_MEMBERS: usize = 50;

/// `POST /api/v1/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRequest {
    /// A name for people, such as the release's.
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,127}$")]
    name: Option<String>,
    /// One per scope, 1 to 50, each on a route of its own.
    #[schema(min_items = 1, max_items = 50)]
    releases: Vec<GroupRelease>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    image_tag: String,
    #[schema(pattern = r"^[0-9A-Fa-f]{4,64}$")]
    git_commit: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,254}$")]
    git_branch: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9_.:/@+-][A-Za-z0-9_.:/@+ -]{0,254}$")]
    triggered_by: Option<String>,
    /// Strategy variables for every member; a member's own win.
    #[serde(default, deserialize_with = "null_is_none")]
    variables: BTreeMap<String, String>,
}

/// One member: a strategy in one scope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRelease {
    #[schema(pattern = r"^[^/]+/[^/]+$", example = "shop/web")]
    strategy: String,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,128}$")]
    service: Option<String>,
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,63}$", example = "eu-west")]
    environment: String,
    #[serde(default, deserialize_with = "null_is_none")]
    variables: BTreeMap<String, String>,
}

/// A group and each member as it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    id: String,
    name: Option<String>,
    /// RUNNING, FINALIZING (the last members promote or roll back) or FINALIZED.
    #[schema(example = "RUNNING")]
    status: String,
    image_tag: String,
    git_commit: Option<String>,
    created_by: String,
    created_at: chrono::DateTime<chrono::Utc>,
    status_url: String,
    /// In the order of the request's releases.
    members: Vec<AnalysisView>,
}

impl GroupView {
    fn new(group: &DeploymentGroup, members: &[Analysis]) -> Self {
        let statuses: Vec<Status> = members.iter().map(|a| a.state.status).collect();
        Self {
            id: group.id.clone(),
            name: group.name.clone(),
            status: GroupStatus::of(&statuses).as_str().to_string(),
            image_tag: group.image_tag.clone(),
            git_commit: group.git_commit.clone(),
            created_by: group.actor.clone(),
            created_at: group.created_at,
            status_url: format!("/api/v1/groups/{}", group.id),
            members: members.iter().map(|a| AnalysisView::new(a, None)).collect(),
        }
    }
}

/// Start a deployment group: one analysis per release, all or none. Every member is
/// checked (strategy, team, request, router) before the first starts.
#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "groups",
    request_body(content = GroupRequest, description = "the releases to start together"),
    responses(
        (status = 202, description = "every member started", body = GroupView),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "the token may not start one of the members; the message names it", body = ErrorBody),
        (status = 404, description = "a member's strategy is not loaded", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "an invalid member (named as releases[i]), two members on one route, or a route that cannot be driven", body = ErrorBody),
        (status = 503, description = "a member's router is not available here", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<GroupRequest>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    let teams = member_teams(&caller, &request)?;
    let actor = caller.actor(request.triggered_by.as_deref());
    let (name, image_tag, git_commit) = (
        request.name.clone(),
        request.image_tag.clone(),
        request.git_commit.clone(),
    );
    let started = state
        .engine
        .start_group(member_requests(request), &actor)
        .await
        .map_err(|failed| {
            let mut error = ApiError::from(failed.error);
            error.message = format!("releases[{}]: {}", failed.index, error.message);
            error
        })?;
    let group = DeploymentGroup {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        image_tag,
        git_commit,
        actor,
        created_at: chrono::Utc::now(),
        members: started
            .iter()
            .zip(teams)
            .map(|(analysis, team)| GroupMember {
                analysis_id: analysis.id.clone(),
                team,
            })
            .collect(),
    };
    if let Err(error) = state.groups.create_group(&group).await {
        let reason = format!("its group could not be stored: {error}");
        state.engine.abort_members(&started, &reason).await;
        return Err(error.into());
    }
    tracing::info!(group = %group.id, members = group.members.len(), "group started");
    Ok((StatusCode::ACCEPTED, Json(GroupView::new(&group, &started))))
}

/// Checks the request's own fields and the caller's right to start every member; the
/// team of each member, in order.
fn member_teams(caller: &Caller, request: &GroupRequest) -> Result<Vec<String>, ApiError> {
    if request.releases.is_empty() || request.releases.len() > MAX_MEMBERS {
        return Err(ApiError::invalid(format!(
            "releases: a group has 1 to {MAX_MEMBERS} releases, not {}",
            request.releases.len()
        )));
    }
    if let Some(name) = &request.name
        && !safe_value(name, 128)
    {
        return Err(ApiError::invalid(
            "name: 1 to 128 letters, digits, spaces or -_.:/@+",
        ));
    }
    let mut teams = Vec::with_capacity(request.releases.len());
    for (index, release) in request.releases.iter().enumerate() {
        let id = parse_strategy_id(&release.strategy).ok_or_else(|| {
            ApiError::invalid(format!(
                "releases[{index}].strategy: {:?} is not <team>/<name>",
                release.strategy
            ))
        })?;
        caller.check_start(&id.team).map_err(|mut error| {
            error.message = format!("releases[{index}]: {}", error.message);
            error
        })?;
        teams.push(id.team);
    }
    Ok(teams)
}

fn member_requests(request: GroupRequest) -> Vec<StartRequest> {
    let shared = request.variables;
    request
        .releases
        .into_iter()
        .map(|release| {
            let mut variables = shared.clone();
            variables.extend(release.variables);
            StartRequest {
                strategy: release.strategy,
                service: release.service,
                environment: release.environment,
                image_tag: Some(request.image_tag.clone()),
                git_commit: request.git_commit.clone(),
                git_branch: request.git_branch.clone(),
                triggered_by: request.triggered_by.clone(),
                variables,
            }
        })
        .collect()
}

/// A group the caller may read, with its members as they stand now.
async fn readable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(DeploymentGroup, Vec<Analysis>), ApiError> {
    let group = state
        .groups
        .group(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("group {id} not found")))?;
    for member in &group.members {
        caller.check_read(&member.team)?;
    }
    let mut members = Vec::with_capacity(group.members.len());
    for member in &group.members {
        let analysis = state.engine.store().get(&member.analysis_id).await?;
        members.push(analysis.ok_or_else(|| {
            ApiError::not_found(format!(
                "analysis {} of group {id} not found",
                member.analysis_id
            ))
        })?);
    }
    Ok((group, members))
}

/// A group: its status and every member.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "groups",
    params(("id" = String, Path, description = "group id")),
    responses(
        (status = 200, description = "the group", body = GroupView),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "a member belongs to a team the token may not read", body = ErrorBody),
        (status = 404, description = "unknown id", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    let (group, members) = readable(&state, &caller, &id).await?;
    Ok(Json(GroupView::new(&group, &members)))
}
