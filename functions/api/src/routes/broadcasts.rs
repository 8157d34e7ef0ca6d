use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::broadcast::Broadcast;
use roster::usecases::broadcasts::{self, BroadcastInput, BroadcastView, Broadcasts};
use roster::usecases::{self, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams, RequestBase};
use crate::AppState;

fn broadcasts(state: &AppState) -> ApiResult<&Broadcasts> {
    state.broadcasts.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "broadcasts_unavailable",
            "broadcasts are not configured on this deployment (no send queue or signing secret)",
        )
    })
}

/// Creates a draft: `template_id`, `audience` (`{list_id}`, `{filter}` or
/// `{ids}`), and optionally `name`, `from`, `list_id` (the consent list for
/// a filter or ids audience) and `send_at`.
#[utoipa::path(post, path = "/v1/projects/{pid}/broadcasts", tag = "broadcasts", request_body = BroadcastInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = BroadcastView), (status = 422, body = ErrorBody)))]
pub async fn create_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<BroadcastInput>,
) -> ApiResult<(StatusCode, Json<BroadcastView>)> {
    let b = broadcasts::create(broadcasts(&state)?, &project, input).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BroadcastsQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BroadcastPage {
    pub data: Vec<Broadcast>,
    pub next_cursor: Option<String>,
}

/// The project's broadcasts, newest first (counts: `GET …/broadcasts/{id}`).
#[utoipa::path(get, path = "/v1/projects/{pid}/broadcasts", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), BroadcastsQuery), security(("secret_key" = [])),
    responses((status = 200, body = BroadcastPage)))]
pub async fn list_broadcasts(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<BroadcastsQuery>,
) -> ApiResult<Json<Page<Broadcast>>> {
    let limit = usecases::limit(q.limit)?;
    Ok(Json(
        broadcasts::list(&state.store, &project.id, limit, q.cursor.as_deref()).await?,
    ))
}

/// State and counts: `recipients = queued + sent + skipped + failed + uncertain`,
/// skips by reason, and what the provider reported (delivered, opened, clicked, bounced, complained).
#[utoipa::path(get, path = "/v1/projects/{pid}/broadcasts/{id}", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])), responses((status = 200, body = BroadcastView), (status = 404, body = ErrorBody)))]
pub async fn get_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<BroadcastView>> {
    Ok(Json(broadcasts::get(&state.store, &project.id, &id).await?))
}

/// Changes a draft (a scheduled one goes back to draft).
#[utoipa::path(patch, path = "/v1/projects/{pid}/broadcasts/{id}", tag = "broadcasts", request_body = BroadcastInput,
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])),
    responses((status = 200, body = BroadcastView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<BroadcastInput>,
) -> ApiResult<Json<BroadcastView>> {
    Ok(Json(
        broadcasts::update(broadcasts(&state)?, &project, &id, input).await?,
    ))
}

/// Sends a draft: now, or at its `send_at` (then `scheduled`).
#[utoipa::path(post, path = "/v1/projects/{pid}/broadcasts/{id}/send", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])),
    responses((status = 202, body = BroadcastView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    RequestBase(base): RequestBase,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<BroadcastView>)> {
    let b = broadcasts::send(broadcasts(&state)?, &project, &id, base.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(b)))
}

/// Pauses sending between batches; `resume` carries on where it stopped.
#[utoipa::path(post, path = "/v1/projects/{pid}/broadcasts/{id}/pause", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])), responses((status = 200, body = BroadcastView), (status = 409, body = ErrorBody)))]
pub async fn pause_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<BroadcastView>> {
    Ok(Json(broadcasts::pause(broadcasts(&state)?, &project.id, &id).await?))
}

#[utoipa::path(post, path = "/v1/projects/{pid}/broadcasts/{id}/resume", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])), responses((status = 200, body = BroadcastView), (status = 409, body = ErrorBody)))]
pub async fn resume_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<BroadcastView>> {
    Ok(Json(broadcasts::resume(broadcasts(&state)?, &project.id, &id).await?))
}

/// Stops it for good (nothing more is sent; what was sent stays counted).
#[utoipa::path(post, path = "/v1/projects/{pid}/broadcasts/{id}/cancel", tag = "broadcasts",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Broadcast id")),
    security(("secret_key" = [])), responses((status = 200, body = BroadcastView), (status = 409, body = ErrorBody)))]
pub async fn cancel_broadcast(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<BroadcastView>> {
    Ok(Json(broadcasts::cancel(broadcasts(&state)?, &project.id, &id).await?))
}
