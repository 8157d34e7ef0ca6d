//! Twilio's webhooks (inbound SMS, status callbacks) and the short tracked
//! links' redirect. None takes an API key: a webhook is signed by the
//! project's Twilio auth token, a link's token is the permission.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use roster::usecases::sms_webhooks::Webhook;
use roster::usecases::{links, projects, sms_webhooks};

use crate::error::ApiError;
use crate::extract::RequestBase;
use crate::AppState;

/// What a webhook request is, for checking its signature.
struct Received {
    url: String,
    params: Vec<(String, String)>,
    signature: Option<String>,
}

fn received(
    state: &AppState,
    base: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Received, Response> {
    // The URL Twilio was given: the public base URL, else the host it reached.
    let base = state.config.public_base_url.clone().or(base).unwrap_or_default();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")).into_response())?;
    Ok(Received {
        url: format!("{base}{path}"),
        params,
        signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the request is not signed by this project's Twilio account",
    )
        .into_response()
}

/// An unknown project is refused as an unsigned request is: nothing tells which ids exist.
async fn project_of(state: &AppState, pid: &str) -> Result<roster::domain::project::Project, Response> {
    match projects::get(&state.store, pid).await {
        Ok(p) => Ok(p),
        Err(roster::Error::NotFound(_)) => Err(forbidden()),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

fn refused(e: roster::Error) -> Response {
    match e {
        roster::Error::Forbidden => forbidden(),
        e => ApiError::from(e).into_response(),
    }
}

/// An inbound SMS (Twilio's messaging webhook, form-encoded). Verified by
/// `X-Twilio-Signature` (403 and nothing stored otherwise); answered in
/// TwiML: a keyword's confirmation, the help text, or an empty `<Response/>`.
#[utoipa::path(post, path = "/v1/webhooks/twilio/{pid}/sms", tag = "sms",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters: MessageSid, From, To, Body, NumSegments, …"),
    params(("pid" = String, Path, description = "Project id"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and parameters")),
    responses((status = 200, description = "TwiML", content_type = "text/xml", body = String),
        (status = 403, description = "Missing or wrong signature; nothing stored")))]
pub async fn twilio_sms(
    State(state): State<AppState>,
    Path(pid): Path<String>,
    RequestBase(base): RequestBase,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match received(&state, base, &uri, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let project = match project_of(&state, &pid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let hook = Webhook {
        url: &r.url,
        params: &r.params,
        signature: r.signature.as_deref(),
    };
    match sms_webhooks::inbound(&state.store, &project, &hook).await {
        Ok(twiml) => {
            let mut resp = (StatusCode::OK, twiml).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            );
            resp
        }
        Err(e) => refused(e),
    }
}

/// Twilio's status callback for a message Roster sent (the URL it was
/// given names the message). Verified like the inbound webhook.
#[utoipa::path(post, path = "/v1/webhooks/twilio/{pid}/status", tag = "sms",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's parameters: MessageSid, MessageStatus, ErrorCode, …"),
    params(("pid" = String, Path, description = "Project id"),
        ("cid" = Option<String>, Query, description = "The message's contact (set by Roster in the callback URL)"),
        ("mid" = Option<String>, Query, description = "The message (set by Roster in the callback URL)"),
        ("X-Twilio-Signature" = String, Header, description = "Twilio's signature of the URL and parameters")),
    responses((status = 204, description = "Recorded (or known already)"),
        (status = 403, description = "Missing or wrong signature; nothing stored")))]
pub async fn twilio_status(
    State(state): State<AppState>,
    Path(pid): Path<String>,
    RequestBase(base): RequestBase,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match received(&state, base, &uri, &headers, &body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let project = match project_of(&state, &pid).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let query: Vec<(String, String)> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let named = |k: &str| {
        query
            .iter()
            .find(|(n, v)| n == k && roster::domain::ids::is_id(v))
            .map(|(_, v)| v.as_str())
    };
    let hook = Webhook {
        url: &r.url,
        params: &r.params,
        signature: r.signature.as_deref(),
    };
    let target = named("cid").zip(named("mid"));
    match sms_webhooks::status(&state.store, &project, &hook, target).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

/// A short tracked link: counts the click (once per recipient and message)
/// and redirects to the link's URL.
#[utoipa::path(get, path = "/l/{token}", tag = "sms",
    params(("token" = String, Path, description = "The link's token")),
    responses((status = 302, description = "To the link's URL"), (status = 404, description = "No such link")))]
pub async fn follow_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match links::click(&state.store, &token).await {
        Ok(url) => match HeaderValue::from_str(&url) {
            Ok(location) => {
                let mut resp = StatusCode::FOUND.into_response();
                resp.headers_mut().insert(header::LOCATION, location);
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp.headers_mut()
                    .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                resp
            }
            Err(_) => ApiError::from(roster::Error::NotFound("link")).into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}
