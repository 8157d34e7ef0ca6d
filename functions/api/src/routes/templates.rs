use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::list::Channel;
use roster::domain::template::{Template, TemplateInput};
use roster::usecases::templates;
use roster::usecases::templates::Preview;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplatesQuery {
    /// Only templates of this channel.
    channel: Option<Channel>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub data: Vec<Template>,
}

/// The starter templates (`system: true`), then the project's own by name.
#[utoipa::path(get, path = "/v1/projects/{pid}/templates", tag = "templates",
    params(("pid" = String, Path, description = "Project id"), TemplatesQuery), security(("secret_key" = [])),
    responses((status = 200, body = TemplateList)))]
pub async fn list_templates(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<TemplatesQuery>,
) -> ApiResult<Json<TemplateList>> {
    Ok(Json(TemplateList {
        data: templates::all(&state.store, &project.id, q.channel).await?,
    }))
}

/// Creates a template: email (`subject`, and `html` or `text`) or SMS (`body`).
/// Variables: `name`, `first_name`, `last_name`, `email`, `phone`, `company`,
/// `labels.<key>`, `unsubscribe_url`; `{{ first_name | default("there") }}`
/// fills a missing value. A syntax error or an unknown variable is a 422
/// naming the part (`field`), the line and the column.
#[utoipa::path(post, path = "/v1/projects/{pid}/templates", tag = "templates", request_body = TemplateInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = Template), (status = 422, body = ErrorBody)))]
pub async fn create_template(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<TemplateInput>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    Ok((
        StatusCode::CREATED,
        Json(templates::create(&state.store, &project.id, input).await?),
    ))
}

#[utoipa::path(get, path = "/v1/projects/{pid}/templates/{template_id}", tag = "templates",
    params(("pid" = String, Path, description = "Project id"), ("template_id" = String, Path, description = "Template id")),
    security(("secret_key" = [])), responses((status = 200, body = Template), (status = 404, body = ErrorBody)))]
pub async fn get_template(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Template>> {
    Ok(Json(templates::get(&state.store, &project.id, &id).await?))
}

/// Changes parts of a template (`null` clears a part); the whole template is checked again.
#[utoipa::path(patch, path = "/v1/projects/{pid}/templates/{template_id}", tag = "templates", request_body = TemplateInput,
    params(("pid" = String, Path, description = "Project id"), ("template_id" = String, Path, description = "Template id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Template), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_template(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<TemplateInput>,
) -> ApiResult<Json<Template>> {
    Ok(Json(templates::update(&state.store, &project.id, &id, input).await?))
}

/// Deletes one of the project's templates (starters: 409).
#[utoipa::path(delete, path = "/v1/projects/{pid}/templates/{template_id}", tag = "templates",
    params(("pid" = String, Path, description = "Project id"), ("template_id" = String, Path, description = "Template id")),
    security(("secret_key" = [])), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_template(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    templates::delete(&state.store, &project.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub contact_id: String,
}

/// Every part of the template rendered for one contact (values HTML-escaped in `html` only); an SMS with its encoding and segments.
#[utoipa::path(post, path = "/v1/projects/{pid}/templates/{template_id}/preview", tag = "templates", request_body = PreviewRequest,
    params(("pid" = String, Path, description = "Project id"), ("template_id" = String, Path, description = "Template id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Preview), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn preview_template(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    Ok(Json(
        templates::preview(&state.store, &project.id, &id, &body.contact_id).await?,
    ))
}
