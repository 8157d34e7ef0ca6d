//! The team's side of captured audience: profiles, referrals, the messages
//! page, and events from other systems.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::submission::{MessageStatus, Record};
use roster::usecases::events::{self, EventInput, EventResult};
use roster::usecases::profile::{self, Profile};
use roster::usecases::referrals::{self, Referrals};
use roster::usecases::{self, submissions, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

/// The whole picture of one contact: linked waitlist signups, form
/// submissions, messages, chats, referrals and recent activity.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/profile", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody)))]
pub async fn get_profile(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(profile::get(&state.store, &project.id, &cid).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Who referred the contact (the chain up to its root) and whom it referred (paginated).
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/referrals", tag = "contacts",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id"), PageQuery),
    security(("secret_key" = [])),
    responses((status = 200, body = Referrals), (status = 404, body = ErrorBody)))]
pub async fn get_referrals(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    QueryParams(q): QueryParams<PageQuery>,
) -> ApiResult<Json<Referrals>> {
    let limit = usecases::limit(q.limit)?;
    Ok(Json(
        referrals::of(&state.store, &project.id, &cid, limit, q.cursor.as_deref()).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// new, read, replied or archived.
    status: Option<MessageStatus>,
    /// Case-insensitive text in the subject, message, email or name.
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// `export.csv` only: start the file with a UTF-8 byte order mark (for Excel).
    bom: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    pub data: Vec<Record>,
    pub next_cursor: Option<String>,
}

/// Contact messages across the project, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/contact-messages", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), MessagesQuery),
    security(("secret_key" = [])),
    responses((status = 200, body = RecordPage), (status = 422, body = ErrorBody)))]
pub async fn list_messages(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<MessagesQuery>,
) -> ApiResult<Json<Page<Record>>> {
    let limit = usecases::limit(q.limit)?;
    let page = submissions::list_messages(
        &state.store,
        &project.id,
        q.status,
        q.q.as_deref(),
        limit,
        q.cursor.as_deref(),
    )
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageUpdate {
    pub status: MessageStatus,
}

/// Marks a message read, replied or archived (or new again).
#[utoipa::path(patch, path = "/v1/projects/{pid}/contact-messages/{mid}", tag = "messages", request_body = MessageUpdate,
    params(("pid" = String, Path, description = "Project id"), ("mid" = String, Path, description = "Message id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Record), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_message(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, mid)): Path<(String, String)>,
    JsonBody(body): JsonBody<MessageUpdate>,
) -> ApiResult<Json<Record>> {
    Ok(Json(
        submissions::set_message_status(&state.store, &project.id, &mid, body.status).await?,
    ))
}

/// Records an event about a contact: `purchase` (lead → customer at the
/// first one, revenue, tags) or any activity type.
#[utoipa::path(post, path = "/v1/projects/{pid}/events", tag = "contacts", request_body = EventInput,
    params(("pid" = String, Path, description = "Project id")),
    security(("secret_key" = [])),
    responses((status = 201, body = EventResult), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_event(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(body): JsonBody<EventInput>,
) -> ApiResult<(StatusCode, Json<EventResult>)> {
    Ok((
        StatusCode::CREATED,
        Json(events::record(&state.store, &project, body).await?),
    ))
}

/// The contact messages (content, status, subject, sender, created) the
/// filters keep, newest first, as CSV, streamed; at most 10,000 rows.
#[utoipa::path(get, path = "/v1/projects/{pid}/contact-messages/export.csv", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), MessagesQuery),
    security(("secret_key" = [])),
    responses((status = 200, description = "CSV (RFC 4180)", content_type = "text/csv", body = String),
        (status = 422, body = ErrorBody)))]
pub async fn export_contact_messages(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<MessagesQuery>,
) -> ApiResult<axum::response::Response> {
    if q.limit.is_some() || q.cursor.is_some() {
        return Err(crate::error::ApiError::invalid(
            "limit",
            "an export has no pages: leave out limit and cursor",
        ));
    }
    let rows = roster::usecases::exports::contact_messages_csv(
        state.store.clone(),
        project.id.clone(),
        q.status,
        q.q,
        q.bom.unwrap_or(false),
        state.config.export_sync_rows,
    );
    Ok(super::csv_file("contact-messages.csv", rows, None))
}
