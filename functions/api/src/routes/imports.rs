use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::import::{Import, ImportStatus};
use roster::usecases;
use roster::usecases::imports::{self, CreateImport, CreatedImport, Importer, Preview, PreviewInput, StartImport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, OptionalJson, ProjectKey, QueryParams};
use crate::AppState;

fn importer(state: &AppState) -> ApiResult<&Importer> {
    state.importer.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "imports_unavailable",
            "imports are not configured on this deployment",
        )
    })
}

/// Starts an import: returns a presigned `upload_url` to PUT the file to.
/// With `start: on_upload` (default) the import runs as soon as the file lands.
#[utoipa::path(post, path = "/v1/projects/{pid}/imports", tag = "imports", request_body = CreateImport,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = CreatedImport), (status = 422, body = ErrorBody)))]
pub async fn create_import(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<CreateImport>,
) -> ApiResult<(StatusCode, Json<CreatedImport>)> {
    let created = imports::create(importer(&state)?, &project, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportsQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportPage {
    pub data: Vec<Import>,
    pub next_cursor: Option<String>,
}

/// The project's imports, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/imports", tag = "imports",
    params(("pid" = String, Path, description = "Project id"), ImportsQuery), security(("secret_key" = [])),
    responses((status = 200, body = ImportPage)))]
pub async fn list_imports(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<ImportsQuery>,
) -> ApiResult<Json<ImportPage>> {
    let limit = usecases::limit(q.limit)?;
    let page = imports::list(importer(&state)?, &project.id, limit, q.cursor.as_deref()).await?;
    Ok(Json(ImportPage {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

/// State and live counters: `rows_total, processed, created, updated,
/// skipped, failed` (and apart, `warnings`: rows kept without a value, such
/// as an unusable phone), percent, rows per second, ETA, and once completed
/// a link to the error report (CSV: row, outcome, reason, values).
#[utoipa::path(get, path = "/v1/projects/{pid}/imports/{import_id}", tag = "imports",
    params(("pid" = String, Path, description = "Project id"), ("import_id" = String, Path, description = "Import id")),
    security(("secret_key" = [])), responses((status = 200, body = ImportStatus), (status = 404, body = ErrorBody)))]
pub async fn get_import(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ImportStatus>> {
    Ok(Json(imports::status(importer(&state)?, &project.id, &id).await?))
}

/// Encoding, delimiter, headers, mapping and the first 20 rows as they would
/// be stored, each marked would_create / would_update / would_skip / would_fail.
#[utoipa::path(post, path = "/v1/projects/{pid}/imports/{import_id}/preview", tag = "imports", request_body = PreviewInput,
    params(("pid" = String, Path, description = "Project id"), ("import_id" = String, Path, description = "Import id")),
    security(("secret_key" = [])),
    responses((status = 200, body = Preview), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "No file uploaded yet"), (status = 422, body = ErrorBody)))]
pub async fn preview_import(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    OptionalJson(input): OptionalJson<PreviewInput>,
) -> ApiResult<Json<Preview>> {
    Ok(Json(imports::preview(importer(&state)?, &project, &id, input).await?))
}

/// Starts an import created with `start: manual` (optionally with a new mapping and options).
#[utoipa::path(post, path = "/v1/projects/{pid}/imports/{import_id}/start", tag = "imports", request_body = StartImport,
    params(("pid" = String, Path, description = "Project id"), ("import_id" = String, Path, description = "Import id")),
    security(("secret_key" = [])),
    responses((status = 202, body = ImportStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_import(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    OptionalJson(input): OptionalJson<StartImport>,
) -> ApiResult<(StatusCode, Json<ImportStatus>)> {
    let status = imports::start(importer(&state)?, &project, &id, input).await?;
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// Stops the import at the workers' next batch; rows already imported stay.
#[utoipa::path(post, path = "/v1/projects/{pid}/imports/{import_id}/cancel", tag = "imports",
    params(("pid" = String, Path, description = "Project id"), ("import_id" = String, Path, description = "Import id")),
    security(("secret_key" = [])),
    responses((status = 200, body = ImportStatus), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Already finished")))]
pub async fn cancel_import(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ImportStatus>> {
    Ok(Json(imports::cancel(importer(&state)?, &project.id, &id).await?))
}
