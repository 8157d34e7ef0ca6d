use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::contact::Contact;
use roster::domain::tag::{Tag, TagInput};
use roster::usecases::tags::{self, BulkResult, CreatedTag};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct TagList {
    pub data: Vec<Tag>,
}

/// The project's tags, by name, with exact contact counts.
#[utoipa::path(get, path = "/v1/projects/{pid}/tags", tag = "tags",
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 200, body = TagList)))]
pub async fn list_tags(State(state): State<AppState>, ProjectKey(project): ProjectKey) -> ApiResult<Json<TagList>> {
    Ok(Json(TagList {
        data: tags::list(&state.store, &project.id).await?,
    }))
}

/// Creates a tag (409 if the name exists in any case).
#[utoipa::path(post, path = "/v1/projects/{pid}/tags", tag = "tags", request_body = TagInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = Tag), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tag(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<TagInput>,
) -> ApiResult<(StatusCode, Json<Tag>)> {
    Ok((
        StatusCode::CREATED,
        Json(tags::create(&state.store, &project.id, input).await?),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagBatch {
    pub tags: Vec<TagInput>,
}

#[derive(Serialize, ToSchema)]
pub struct TagBatchResult {
    pub data: Vec<CreatedTag>,
}

/// Creates many tags at once; existing names come back with `created: false`.
#[utoipa::path(post, path = "/v1/projects/{pid}/tags/batch", tag = "tags", request_body = TagBatch,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = TagBatchResult), (status = 422, body = ErrorBody)))]
pub async fn create_tags(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(body): JsonBody<TagBatch>,
) -> ApiResult<(StatusCode, Json<TagBatchResult>)> {
    let data = tags::create_many(&state.store, &project.id, body.tags).await?;
    Ok((StatusCode::CREATED, Json(TagBatchResult { data })))
}

#[utoipa::path(get, path = "/v1/projects/{pid}/tags/{tag_id}", tag = "tags",
    params(("pid" = String, Path, description = "Project id"), ("tag_id" = String, Path, description = "Tag id")),
    security(("secret_key" = [])), responses((status = 200, body = Tag), (status = 404, body = ErrorBody)))]
pub async fn get_tag(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Tag>> {
    Ok(Json(tags::get(&state.store, &project.id, &id).await?))
}

/// Renames (every contact follows), recolors or redescribes a tag.
#[utoipa::path(patch, path = "/v1/projects/{pid}/tags/{tag_id}", tag = "tags", request_body = TagInput,
    params(("pid" = String, Path, description = "Project id"), ("tag_id" = String, Path, description = "Tag id")),
    security(("secret_key" = [])), responses((status = 200, body = Tag), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_tag(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<TagInput>,
) -> ApiResult<Json<Tag>> {
    Ok(Json(tags::update(&state.store, &project.id, &id, input).await?))
}

/// Deletes a tag and removes it from every contact.
#[utoipa::path(delete, path = "/v1/projects/{pid}/tags/{tag_id}", tag = "tags",
    params(("pid" = String, Path, description = "Project id"), ("tag_id" = String, Path, description = "Tag id")),
    security(("secret_key" = [])), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_tag(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    tags::delete(&state.store, &project.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagChange {
    /// Tag names to add (created if new).
    #[serde(default)]
    pub add: Vec<String>,
    /// Tag names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Adds and removes tags on one contact.
#[utoipa::path(post, path = "/v1/projects/{pid}/contacts/{cid}/tags", tag = "tags", request_body = TagChange,
    params(("pid" = String, Path, description = "Project id"), ("cid" = String, Path, description = "Contact id")),
    security(("secret_key" = [])), responses((status = 200, body = Contact), (status = 404, body = ErrorBody)))]
pub async fn tag_contact(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, cid)): Path<(String, String)>,
    JsonBody(body): JsonBody<TagChange>,
) -> ApiResult<Json<Contact>> {
    Ok(Json(
        tags::assign(&state.store, &project.id, &cid, &body.add, &body.remove).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTagChange {
    /// Up to 1,000 contact ids.
    pub contact_ids: Vec<String>,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// Adds and removes tags on many contacts.
#[utoipa::path(post, path = "/v1/projects/{pid}/tags/assign", tag = "tags", request_body = BulkTagChange,
    params(("pid" = String, Path, description = "Project id")),
    security(("secret_key" = [])), responses((status = 200, body = BulkResult), (status = 422, body = ErrorBody)))]
pub async fn tag_contacts(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(body): JsonBody<BulkTagChange>,
) -> ApiResult<Json<BulkResult>> {
    Ok(Json(
        tags::assign_many(&state.store, &project.id, &body.contact_ids, &body.add, &body.remove).await?,
    ))
}
