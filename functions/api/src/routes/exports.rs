//! Asynchronous exports: started here, run by the export worker, downloaded
//! through a short-lived presigned link.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::export::ExportJob;
use roster::usecases::exports::{self, ExportInput, ExportView, Exports};
use roster::usecases::{self, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

pub(super) fn exports(state: &AppState) -> ApiResult<&Exports> {
    state.exports.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "exports_unavailable",
            "asynchronous exports are not configured on this deployment (no exports bucket or queue)",
        )
    })
}

/// Starts an export of every contact a filter selects (no cap): `filter`
/// (as a bulk selection's), `columns`, `format` (`csv` or `jsonl`), `bom`.
#[utoipa::path(post, path = "/v1/projects/{pid}/exports", tag = "exports", request_body = ExportInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 202, body = ExportView), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_export(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<ExportInput>,
) -> ApiResult<(StatusCode, Json<ExportView>)> {
    let v = exports::create(exports(&state)?, &project.id, input).await?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportsQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ExportPage {
    pub data: Vec<ExportJob>,
    pub next_cursor: Option<String>,
}

/// The project's exports, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/exports", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ExportsQuery), security(("secret_key" = [])),
    responses((status = 200, body = ExportPage)))]
pub async fn list_exports(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    QueryParams(q): QueryParams<ExportsQuery>,
) -> ApiResult<Json<Page<ExportJob>>> {
    let limit = usecases::limit(q.limit)?;
    Ok(Json(
        exports::list(exports(&state)?, &project.id, limit, q.cursor.as_deref()).await?,
    ))
}

/// State (`pending → running → completed | failed | cancelled`), rows
/// written and percent; once completed, a presigned download link and the
/// manifest (rows, bytes, SHA-256, filter, columns, times).
#[utoipa::path(get, path = "/v1/projects/{pid}/exports/{id}", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Export id")),
    security(("secret_key" = [])), responses((status = 200, body = ExportView), (status = 404, body = ErrorBody)))]
pub async fn get_export(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ExportView>> {
    Ok(Json(exports::get(exports(&state)?, &project.id, &id).await?))
}

/// Signs a fresh download link for a completed export whose file is kept
/// (409 `expired` once the retention rule removed it).
#[utoipa::path(post, path = "/v1/projects/{pid}/exports/{id}/link", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Export id")),
    security(("secret_key" = [])),
    responses((status = 200, body = ExportView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn link_export(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ExportView>> {
    Ok(Json(exports::link(exports(&state)?, &project.id, &id).await?))
}

/// Cancels a pending or running export (its partial file is dropped).
#[utoipa::path(post, path = "/v1/projects/{pid}/exports/{id}/cancel", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Export id")),
    security(("secret_key" = [])),
    responses((status = 200, body = ExportView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_export(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ExportView>> {
    Ok(Json(exports::cancel(exports(&state)?, &project.id, &id).await?))
}
