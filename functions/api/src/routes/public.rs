//! Public submission endpoints (publishable key; CORS limited to the
//! project's allowed origins; rate-limited per IP and per project).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use roster::usecases::submissions::{self, Receipt, Submitted};
use serde_json::json;

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ClientIp, PublicProject, SubmissionBody};
use crate::AppState;

fn reply(submitted: Submitted) -> Response {
    match submitted {
        Submitted::Accepted(receipt) => (StatusCode::CREATED, Json(receipt)).into_response(),
        Submitted::Dropped => (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response(),
    }
}

/// Joins the waitlist: `{email, name?, ref?, metadata?}` (JSON or form post).
/// Returns the contact's referral code to share.
#[utoipa::path(post, path = "/v1/public/{pid}/waitlist", tag = "public",
    params(("pid" = String, Path, description = "Project id"),
           ("X-Publishable-Key" = Option<String>, Header, description = "Or ?key="),
           ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    request_body(content = Object, description = "email (required), name, first_name, last_name, phone, company, ref (a referral code), metadata; _hp is the honeypot"),
    responses((status = 201, body = Receipt), (status = 202, description = "Honeypot filled in: nothing stored"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody, description = "Origin not allowed"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "Rate limited; see Retry-After")))]
pub async fn waitlist(
    State(state): State<AppState>,
    PublicProject(project): PublicProject,
    ClientIp(ip): ClientIp,
    SubmissionBody(fields): SubmissionBody,
) -> ApiResult<Response> {
    submissions::rate_limit(&state.store, &project, &ip).await?;
    Ok(reply(submissions::waitlist(&state.store, &project, fields).await?))
}

/// Submits a form: any fields; email/phone/name/company feed the contact, all are kept.
#[utoipa::path(post, path = "/v1/public/{pid}/forms/{form_id}", tag = "public",
    params(("pid" = String, Path, description = "Project id"), ("form_id" = String, Path, description = "Your form's id (letters, digits, - and _)"),
           ("X-Publishable-Key" = Option<String>, Header, description = "Or ?key=")),
    request_body(content = Object, description = "Any fields; email or phone required"),
    responses((status = 201, body = Receipt), (status = 202, description = "Honeypot filled in"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn form(
    State(state): State<AppState>,
    PublicProject(project): PublicProject,
    ClientIp(ip): ClientIp,
    Path((_, form_id)): Path<(String, String)>,
    SubmissionBody(fields): SubmissionBody,
) -> ApiResult<Response> {
    submissions::rate_limit(&state.store, &project, &ip).await?;
    Ok(reply(
        submissions::form(&state.store, &project, &form_id, fields).await?,
    ))
}

/// The contact form: `{email, name?, subject?, message}`.
#[utoipa::path(post, path = "/v1/public/{pid}/messages", tag = "public",
    params(("pid" = String, Path, description = "Project id"), ("X-Publishable-Key" = Option<String>, Header, description = "Or ?key=")),
    request_body(content = Object, description = "email and message required; name, phone, company, subject"),
    responses((status = 201, body = Receipt), (status = 202, description = "Honeypot filled in"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn message(
    State(state): State<AppState>,
    PublicProject(project): PublicProject,
    ClientIp(ip): ClientIp,
    SubmissionBody(fields): SubmissionBody,
) -> ApiResult<Response> {
    submissions::rate_limit(&state.store, &project, &ip).await?;
    Ok(reply(submissions::message(&state.store, &project, fields).await?))
}

/// Chat: starts a conversation (`email` and `message`) or appends to one
/// (`conversation_id` and `message`); `role` (visitor, agent, bot) and `summary` optional.
#[utoipa::path(post, path = "/v1/public/{pid}/chat", tag = "public",
    params(("pid" = String, Path, description = "Project id"), ("X-Publishable-Key" = Option<String>, Header, description = "Or ?key=")),
    request_body(content = Object, description = "message required; email to start, conversation_id to append; role, summary, name, phone"),
    responses((status = 201, body = Receipt), (status = 404, body = ErrorBody, description = "No such conversation"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn chat(
    State(state): State<AppState>,
    PublicProject(project): PublicProject,
    ClientIp(ip): ClientIp,
    SubmissionBody(fields): SubmissionBody,
) -> ApiResult<Response> {
    submissions::rate_limit(&state.store, &project, &ip).await?;
    Ok(reply(submissions::chat(&state.store, &project, fields).await?))
}
