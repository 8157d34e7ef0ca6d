use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use roster::domain::list::Channel;
use roster::domain::message::{Direction, Message, MessageState};
use roster::usecases::messages::{self, MessageFilter, Messaging, SendInput};
use roster::usecases::{self, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams, RequestBase};
use crate::AppState;

pub(crate) fn messaging(state: &AppState) -> ApiResult<&Messaging> {
    state.messaging.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "messaging_unavailable",
            "messaging is not configured on this deployment (no SIGNING_SECRET)",
        )
    })
}

/// Sends one message to the contact now: an email (a saved template, or
/// `subject` and `html`/`text`) or an SMS (`body` or an SMS template, from
/// the number of `list_id`, an SMS list; its segments are stored). 409 with
/// the reason as `code` (`unsubscribed`, `suppressed`, `invalid`,
/// `opted_out`, `deleted`, `no_address`, `not_on_list`, `sms_not_configured`,
/// `rejected`) when it may not go; nothing is sent.
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts/{cid}/messages", tag = "messages", request_body = SendInput,
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])),
    responses((status = 202, body = Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn send_message(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    RequestBase(base): RequestBase,
    Path((_, cid)): Path<(String, String)>,
    JsonBody(input): JsonBody<SendInput>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let sent = messages::send(messaging(&state)?, &project, &cid, input, base.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    channel: Option<Channel>,
    direction: Option<Direction>,
    status: Option<MessageState>,
    contact_id: Option<String>,
    broadcast_id: Option<String>,
    /// Only the thread of one of our numbers (or From addresses): messages from it or to it.
    number: Option<String>,
    /// Messages created at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Messages created before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// `export.csv` only: start the file with a UTF-8 byte order mark (for Excel).
    bom: Option<bool>,
}

impl MessagesQuery {
    fn filter(self, contact_id: Option<String>) -> (MessageFilter, Option<usize>, Option<String>) {
        (
            MessageFilter {
                channel: self.channel,
                direction: self.direction,
                status: self.status,
                contact_id: contact_id.or(self.contact_id),
                broadcast_id: self.broadcast_id,
                number: self.number,
                since: self.since,
                until: self.until,
            },
            self.limit,
            self.cursor,
        )
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub data: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// Every message of the project, outbound and inbound, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/messages", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), MessagesQuery), security(("secret_key" = [])),
    responses((status = 200, body = MessagePage), (status = 422, body = ErrorBody)))]
pub async fn list_all_messages(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<MessagesQuery>,
) -> ApiResult<Json<Page<Message>>> {
    let (filter, limit, cursor) = q.filter(None);
    let limit = usecases::limit(limit)?;
    Ok(Json(
        messages::list(&state.store, &project.id, &filter, limit, cursor.as_deref()).await?,
    ))
}

/// The contact's conversation: its messages, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/messages", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id"), MessagesQuery),
    security(("secret_key" = [])), responses((status = 200, body = MessagePage), (status = 404, body = ErrorBody)))]
pub async fn contact_messages(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    QueryParams(q): QueryParams<MessagesQuery>,
) -> ApiResult<Json<Page<Message>>> {
    let (filter, limit, cursor) = q.filter(Some(cid));
    let limit = usecases::limit(limit)?;
    Ok(Json(
        messages::list(&state.store, &project.id, &filter, limit, cursor.as_deref()).await?,
    ))
}

/// One message with its status history.
#[utoipa::path(get, path = "/v1/projects/{pid}/messages/{mid}", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), ("mid" = String, Path, description = "Message id")),
    security(("secret_key" = [])), responses((status = 200, body = Message), (status = 404, body = ErrorBody)))]
pub async fn get_message(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, mid)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    Ok(Json(messages::get(&state.store, &project.id, &mid).await?))
}

/// The project's messages (email and SMS, sent and received: channel,
/// direction, status, contact, content) the filters keep, newest first, as
/// CSV, streamed; at most 10,000 rows.
#[utoipa::path(get, path = "/v1/projects/{pid}/messages/export.csv", tag = "messages",
    params(("pid" = String, Path, description = "Project id"), MessagesQuery), security(("secret_key" = [])),
    responses((status = 200, description = "CSV (RFC 4180)", content_type = "text/csv", body = String),
        (status = 422, body = ErrorBody)))]
pub async fn export_messages(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<MessagesQuery>,
) -> ApiResult<axum::response::Response> {
    if q.limit.is_some() || q.cursor.is_some() {
        return Err(ApiError::invalid(
            "limit",
            "an export has no pages: leave out limit and cursor",
        ));
    }
    let bom = q.bom.unwrap_or(false);
    let (filter, _, _) = q.filter(None);
    // Checked before the first byte: a bad filter is a 422, not a broken file.
    messages::list(&state.store, &project.id, &filter, 1, None).await?;
    let rows = roster::usecases::exports::messages_csv(
        state.store.clone(),
        project.id.clone(),
        filter,
        bom,
        state.config.export_sync_rows,
    );
    Ok(super::csv_file("messages.csv", rows, None))
}
