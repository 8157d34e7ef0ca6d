use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use roster::domain::keys::KeyKind;
use roster::domain::project::{ProjectSettings, ProjectView};
use roster::usecases::projects::{self, CreatedProject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, Operator, ProjectAdmin};
use crate::AppState;

/// Creates a project and returns its keys, once.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = ProjectSettings,
    security(("operator" = [])),
    responses((status = 201, body = CreatedProject), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_project(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(settings): JsonBody<ProjectSettings>,
) -> ApiResult<(StatusCode, Json<CreatedProject>)> {
    let created = projects::create(&state.store, settings).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/projects/{pid}", tag = "projects",
    params(("pid" = String, Path, description = "Project id")),
    security(("operator" = []), ("secret_key" = [])),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    ProjectAdmin(pid): ProjectAdmin,
) -> ApiResult<Json<ProjectView>> {
    let project = projects::get(&state.store, &pid).await?;
    Ok(Json(ProjectView::from(&project)))
}

/// Changes the name, default phone country or allowed origins.
#[utoipa::path(patch, path = "/v1/projects/{pid}", tag = "projects", request_body = ProjectSettings,
    params(("pid" = String, Path, description = "Project id")),
    security(("operator" = []), ("secret_key" = [])),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_project(
    State(state): State<AppState>,
    ProjectAdmin(pid): ProjectAdmin,
    JsonBody(settings): JsonBody<ProjectSettings>,
) -> ApiResult<Json<ProjectView>> {
    let project = projects::update(&state.store, &pid, settings, state.config.sender_domain.as_deref()).await?;
    Ok(Json(ProjectView::from(&project)))
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum KeyName {
    Secret,
    Publishable,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Which key to replace.
    pub kind: KeyName,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    pub kind: KeyName,
    /// The new key, shown once. The old one no longer works.
    pub key: String,
}

/// Replaces the secret or publishable key.
#[utoipa::path(post, path = "/v1/projects/{pid}/keys/rotate", tag = "projects", request_body = RotateKey,
    params(("pid" = String, Path, description = "Project id")),
    security(("operator" = []), ("secret_key" = [])),
    responses((status = 200, body = RotatedKey), (status = 401, body = ErrorBody)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    ProjectAdmin(pid): ProjectAdmin,
    JsonBody(body): JsonBody<RotateKey>,
) -> ApiResult<Json<RotatedKey>> {
    let kind = match body.kind {
        KeyName::Secret => KeyKind::Secret,
        KeyName::Publishable => KeyKind::Publishable,
    };
    let key = projects::rotate_key(&state.store, &pid, kind).await?;
    Ok(Json(RotatedKey { kind: body.kind, key }))
}
