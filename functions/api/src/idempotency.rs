//! `Idempotency-Key` on every POST: the first response is stored for 24 hours
//! and replayed to retries with the same key and body; the same key with a
//! different body is refused (422); a retry while the first is running gets 409.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster::store::idempotency::Idempotency;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::{AppState, MAX_BODY_BYTES};

pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED: &str = "idempotent-replayed";
/// Larger responses are not kept (DynamoDB items stop at 400 KB).
const MAX_STORED_BODY: usize = 300 * 1024;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    match run(state, key, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: AppState, key: HeaderValue, req: Request, next: Next) -> Result<Response, Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "Idempotency-Key is 1 to 255 visible ASCII characters",
            )
            .into_response()
        })?
        .to_string();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large().into_response())?;

    let header_str = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Scoped to the caller (credentials; for public calls also the publishable
    // key and address) and the route: two callers may pick the same key.
    let scope = digest(&[
        header_str(header::AUTHORIZATION).as_bytes(),
        header_str(header::HeaderName::from_static("x-publishable-key")).as_bytes(),
        header_str(header::HeaderName::from_static("x-forwarded-for")).as_bytes(),
        parts.uri.path().as_bytes(),
        key.as_bytes(),
    ]);
    let request_hash = digest(&[
        parts.uri.query().unwrap_or("").as_bytes(),
        header_str(header::CONTENT_TYPE).as_bytes(),
        &bytes,
    ]);

    let store = &state.store;
    match store
        .begin_idempotent(&scope, &request_hash)
        .await
        .map_err(|e| ApiError::from(e).into_response())?
    {
        Idempotency::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )
        .with_field("Idempotency-Key")
        .into_response()),
        Idempotency::InProgress => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry shortly",
        )
        .into_response()),
        Idempotency::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            Ok(response)
        }
        Idempotency::Started => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            let status = response.status();
            // Failures on our side, and auth or rate refusals, are not final: let a retry run.
            let replayable = !(status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 429));
            let (resp_parts, body) = response.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
            let kept = match std::str::from_utf8(&body) {
                Ok(text) if replayable && body.len() <= MAX_STORED_BODY => {
                    store.complete_idempotent(&scope, status.as_u16(), text).await
                }
                _ => store.abandon_idempotent(&scope).await,
            };
            if let Err(e) = kept {
                tracing::warn!(error = %e, "could not record the idempotent response");
            }
            Ok(Response::from_parts(resp_parts, Body::from(body)))
        }
    }
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}
