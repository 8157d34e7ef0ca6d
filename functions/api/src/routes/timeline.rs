use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::activity::{Activity, ActivityInput};
use roster::usecases::{self, activities, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

/// Records an activity (page_visit, form_submission, email_open, email_click,
/// meeting_booked, file_download, chat, deal_change, or a custom type).
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts/{cid}/activities", tag = "timeline", request_body = ActivityInput,
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])),
    responses((status = 201, body = Activity), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_activity(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    JsonBody(input): JsonBody<ActivityInput>,
) -> ApiResult<(StatusCode, Json<Activity>)> {
    let activity = activities::post(&state.store, &project.id, &cid, input).await?;
    Ok((StatusCode::CREATED, Json(activity)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// Only these types, comma-separated.
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    pub data: Vec<Activity>,
    pub next_cursor: Option<String>,
}

/// The contact's timeline, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/timeline", tag = "timeline",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id"), TimelineQuery),
    security(("secret_key" = [])),
    responses((status = 200, body = ActivityPage), (status = 404, body = ErrorBody)))]
pub async fn timeline(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    QueryParams(q): QueryParams<TimelineQuery>,
) -> ApiResult<Json<Page<Activity>>> {
    let limit = usecases::limit(q.limit)?;
    let page = activities::timeline(
        &state.store,
        &project.id,
        &cid,
        limit,
        q.cursor.as_deref(),
        q.kind.as_deref(),
    )
    .await?;
    Ok(Json(page))
}
