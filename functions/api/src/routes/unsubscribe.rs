//! The one-click unsubscribe link of every email. Pages, not JSON: a person
//! opens it in a browser, a mail client posts to it (RFC 8058).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use roster::usecases::unsubscribe::{self, Scope};

use crate::AppState;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em\"><h1>{title}</h1>{body}</body></html>"
    );
    let mut r = (status, Html(html)).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

fn what(scope: &Scope) -> String {
    match &scope.list_name {
        Some(list) => format!(
            "the list <strong>{}</strong> of {}",
            escape(list),
            escape(&scope.project_name)
        ),
        None => format!("every email from {}", escape(&scope.project_name)),
    }
}

fn refused(e: roster::Error) -> Response {
    match e {
        roster::Error::Forbidden => page(
            StatusCode::FORBIDDEN,
            "Link not valid",
            "<p>This unsubscribe link is not valid. Use the link from the email itself.</p>",
        ),
        e => {
            tracing::error!(error = %e, "unsubscribe failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Please try again",
                "<p>Something went wrong on our side; nothing was changed. Please try again.</p>",
            )
        }
    }
}

/// Shows what the button would do; changes nothing (link scanners fetch every link).
#[utoipa::path(get, path = "/v1/unsubscribe/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token from the email's List-Unsubscribe link")),
    responses((status = 200, description = "A confirmation page (HTML) with an unsubscribe button", content_type = "text/html"),
        (status = 403, description = "The token is not one this deployment signed", content_type = "text/html")))]
pub async fn unsubscribe_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(secret) = state.config.signing_secret.as_deref() else {
        return refused(roster::Error::Forbidden);
    };
    match unsubscribe::scope(&state.store, secret.as_bytes(), &token).await {
        Ok(scope) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop receiving {}?</p><form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>",
                what(&scope)
            ),
        ),
        Err(e) => refused(e),
    }
}

/// Unsubscribes (RFC 8058 one-click: the mail client posts
/// `List-Unsubscribe=One-Click`; the page's button posts the same). No
/// login: the signed link is the permission. Again → the same answer.
#[utoipa::path(post, path = "/v1/unsubscribe/{token}", tag = "messages",
    params(("token" = String, Path, description = "The signed token from the email's List-Unsubscribe link")),
    responses((status = 200, description = "Unsubscribed (HTML page)", content_type = "text/html"),
        (status = 403, description = "The token is not one this deployment signed; nothing changed", content_type = "text/html")))]
pub async fn unsubscribe_post(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(secret) = state.config.signing_secret.as_deref() else {
        return refused(roster::Error::Forbidden);
    };
    match unsubscribe::unsubscribe(&state.store, secret.as_bytes(), &token).await {
        Ok(scope) => page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!("<p>You will no longer receive {}.</p>", what(&scope)),
        ),
        Err(e) => refused(e),
    }
}
