//! Recurring exports: CRUD, pause/resume (`paused`), and each schedule's runs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use roster::domain::export::{ExportJob, ExportSchedule};
use roster::usecases::export_schedules::{self, ScheduleInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::exports::exports;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, ProjectKey, QueryParams};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct SchedulePage {
    pub data: Vec<ExportSchedule>,
}

#[derive(Serialize, ToSchema)]
pub struct RunPage {
    pub data: Vec<ExportJob>,
}

/// Creates a schedule: `schedule` in EventBridge Scheduler's syntax
/// (`cron(0 9 ? * MON *)`, `rate(1 day)`, `rate(1 minute)`), `timezone`,
/// and what each run exports (`filter`, `columns`, `format`, `bom`, `prefix`).
#[utoipa::path(post, path = "/v1/projects/{pid}/export-schedules", tag = "exports", request_body = ScheduleInput,
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 201, body = ExportSchedule), (status = 422, body = ErrorBody)))]
pub async fn create_schedule(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    JsonBody(input): JsonBody<ScheduleInput>,
) -> ApiResult<(StatusCode, Json<ExportSchedule>)> {
    let s = export_schedules::create(exports(&state)?, &project.id, input).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// The project's export schedules, newest first.
#[utoipa::path(get, path = "/v1/projects/{pid}/export-schedules", tag = "exports",
    params(("pid" = String, Path, description = "Project id")), security(("secret_key" = [])),
    responses((status = 200, body = SchedulePage)))]
pub async fn list_schedules(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
) -> ApiResult<Json<SchedulePage>> {
    Ok(Json(SchedulePage {
        data: export_schedules::list(exports(&state)?, &project.id).await?,
    }))
}

#[utoipa::path(get, path = "/v1/projects/{pid}/export-schedules/{id}", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Schedule id")),
    security(("secret_key" = [])), responses((status = 200, body = ExportSchedule), (status = 404, body = ErrorBody)))]
pub async fn get_schedule(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<ExportSchedule>> {
    Ok(Json(export_schedules::get(exports(&state)?, &project.id, &id).await?))
}

/// Changes a schedule; `{"paused": true}` pauses it, `false` resumes it (next run from now).
#[utoipa::path(patch, path = "/v1/projects/{pid}/export-schedules/{id}", tag = "exports", request_body = ScheduleInput,
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Schedule id")),
    security(("secret_key" = [])),
    responses((status = 200, body = ExportSchedule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_schedule(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    JsonBody(input): JsonBody<ScheduleInput>,
) -> ApiResult<Json<ExportSchedule>> {
    Ok(Json(
        export_schedules::update(exports(&state)?, &project.id, &id, input).await?,
    ))
}

/// Deletes a schedule; the exports it ran stay.
#[utoipa::path(delete, path = "/v1/projects/{pid}/export-schedules/{id}", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Schedule id")),
    security(("secret_key" = [])), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    export_schedules::delete(exports(&state)?, &project.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    limit: Option<usize>,
}

/// The schedule's runs, newest first, each an export with its outcome
/// (state, rows, error; a link via `GET …/exports/{id}`).
#[utoipa::path(get, path = "/v1/projects/{pid}/export-schedules/{id}/runs", tag = "exports",
    params(("pid" = String, Path, description = "Project id"), ("id" = String, Path, description = "Schedule id"), RunsQuery),
    security(("secret_key" = [])), responses((status = 200, body = RunPage), (status = 404, body = ErrorBody)))]
pub async fn schedule_runs(
    State(state): State<AppState>,
    ProjectKey(project): ProjectKey,
    Path((_, id)): Path<(String, String)>,
    QueryParams(q): QueryParams<RunsQuery>,
) -> ApiResult<Json<RunPage>> {
    let limit = roster::usecases::limit(q.limit)?;
    Ok(Json(RunPage {
        data: export_schedules::runs(exports(&state)?, &project.id, &id, limit).await?,
    }))
}
