//! CORS for the public endpoints: a browser page may call them only from the
//! project's allowed origins. Calls without an `Origin` (servers) pass.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AppState;

const ALLOW_HEADERS: &str = "content-type, x-publishable-key, idempotency-key";

pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let preflight = req.method() == Method::OPTIONS;
    let Some(origin) = origin else {
        return if preflight {
            StatusCode::NO_CONTENT.into_response()
        } else {
            next.run(req).await
        };
    };
    // /v1/public/{pid}/...
    let pid = req.uri().path().split('/').nth(3).unwrap_or_default().to_string();
    let project = match state.store.get_project(&pid).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::not_found("project").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !project.allows_origin(&origin) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin is not among the project's allowed origins",
        )
        .into_response();
    }
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        req.extensions_mut().insert(Arc::new(project));
        next.run(req).await
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after, idempotent-replayed"),
    );
    response
}
