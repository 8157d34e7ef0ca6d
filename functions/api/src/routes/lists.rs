use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::list::{ConsentRecord, ListInput, SendingList, Subscription, SubscriptionStatus, Via};
use roster::usecases::lists::{self, Member};
use roster::usecases::{self, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct ListList {
    pub data: Vec<SendingList>,
}

/// The project's sending lists with member counts by status.
#[utoipa::path(get, path = "/v1/projects/{pid}/lists", tag = "lists",
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 200, body = ListList)))]
pub async fn all_lists(State(state): State<AppState>, ProjectKey(project): ProjectKey) -> ApiResult<Json<ListList>> {
    Ok(Json(ListList {
        data: lists::all(&state.store, &project.id).await?,
    }))
}

/// Creates a list: name, channel (email or sms), sender (from-address or number), description.
#[utoipa::path(post, path = "/v1/projects/{pid}/lists", tag = "lists", request_body = ListInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = SendingList), (status = 422, body = ErrorBody)))]
pub async fn create_list(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<ListInput>,
) -> ApiResult<(StatusCode, Json<SendingList>)> {
    Ok((
        StatusCode::CREATED,
        Json(lists::create(&state.store, &project, input).await?),
    ))
}

#[utoipa::path(get, path = "/v1/projects/{pid}/lists/{list_id}", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id")),
    security(("secret_key" = [])), responses((status = 200, body = SendingList), (status = 404, body = ErrorBody)))]
pub async fn get_list(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<SendingList>> {
    Ok(Json(lists::get(&state.store, &project.id, &id).await?))
}

#[utoipa::path(patch, path = "/v1/projects/{pid}/lists/{list_id}", tag = "lists", request_body = ListInput,
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id")),
    security(("secret_key" = [])), responses((status = 200, body = SendingList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_list(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<ListInput>,
) -> ApiResult<Json<SendingList>> {
    Ok(Json(lists::update(&state.store, &project, &id, input).await?))
}

/// Deletes an empty list (409 while it holds subscriptions).
#[utoipa::path(delete, path = "/v1/projects/{pid}/lists/{list_id}", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id")),
    security(("secret_key" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_list(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    lists::delete(&state.store, &project.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    status: Option<SubscriptionStatus>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberPage {
    pub data: Vec<Member>,
    pub next_cursor: Option<String>,
}

/// The list's contacts with their subscription, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/lists/{list_id}/contacts", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id"), MembersQuery),
    security(("secret_key" = [])), responses((status = 200, body = MemberPage), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    QueryParams(q): QueryParams<MembersQuery>,
) -> ApiResult<Json<Page<Member>>> {
    let limit = usecases::limit(q.limit)?;
    Ok(Json(
        lists::members(&state.store, &project.id, &id, q.status, limit, q.cursor.as_deref()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: SubscriptionStatus,
    /// How the change came about (default api).
    #[serde(default)]
    pub via: Via,
    /// Kept on the consent record.
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatusChanged {
    #[serde(flatten)]
    pub subscription: Subscription,
    /// False when the contact already had that status.
    pub changed: bool,
}

/// Puts the contact on the list with a status, or changes its status; every change is a consent record.
#[utoipa::path(put, path = "/v1/projects/{pid}/lists/{list_id}/contacts/{cid}", tag = "lists", request_body = StatusChange,
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])), responses((status = 200, body = StatusChanged), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_status(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, list_id, cid)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<StatusChange>,
) -> ApiResult<Json<StatusChanged>> {
    if body.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(crate::error::ApiError::invalid(
            "note",
            "note is at most 500 characters",
        ));
    }
    let (subscription, changed) = lists::set_status(
        &state.store,
        &project.id,
        &list_id,
        &cid,
        body.status,
        body.via,
        body.note,
    )
    .await?;
    Ok(Json(StatusChanged { subscription, changed }))
}

/// Takes the contact off the list (an opt-out stays: 409).
#[utoipa::path(delete, path = "/v1/projects/{pid}/lists/{list_id}/contacts/{cid}", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("list_id" = String, Path, description = "List id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, list_id, cid)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    lists::remove(&state.store, &project.id, &list_id, &cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<Subscription>,
}

/// The contact's subscriptions, one per list.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/lists", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])), responses((status = 200, body = SubscriptionList), (status = 404, body = ErrorBody)))]
pub async fn contact_lists(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
) -> ApiResult<Json<SubscriptionList>> {
    Ok(Json(SubscriptionList {
        data: lists::contact_lists(&state.store, &project.id, &cid).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ConsentList {
    pub data: Vec<ConsentRecord>,
}

/// Every consent change of the contact, oldest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/contacts/{cid}/consent", tag = "lists",
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])), responses((status = 200, body = ConsentList), (status = 404, body = ErrorBody)))]
pub async fn contact_consent(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
) -> ApiResult<Json<ConsentList>> {
    Ok(Json(ConsentList {
        data: lists::consent(&state.store, &project.id, &cid).await?,
    }))
}
