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

impl Received {
    fn hook(&self) -> Webhook<'_> {
        Webhook {
            url: &self.url,
            params: &self.params,
            signature: self.signature.as_deref(),
        }
    }
}

/// Why a webhook is refused: not signed by the project's account (an
/// unknown project looks the same, so nothing tells which ids exist), or
/// any other error.
pub enum Refused {
    Unsigned,
    Api(ApiError),
}

impl From<roster::Error> for Refused {
    fn from(e: roster::Error) -> Self {
        match e {
            roster::Error::Forbidden => Refused::Unsigned,
            e => Refused::Api(ApiError::from(e)),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Unsigned => (
                StatusCode::FORBIDDEN,
                "the request is not signed by this project's Twilio account",
            )
                .into_response(),
            Refused::Api(e) => e.into_response(),
        }
    }
}

/// The webhook's project and request as received.
async fn receive(
    state: &AppState,
    pid: &str,
    base: Option<String>,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(roster::domain::project::Project, Received), Refused> {
    // The URL Twilio was given: the public base URL, else the host it reached.
    let base = state.config.public_base_url.clone().or(base).unwrap_or_default();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| Refused::Api(ApiError::bad_request(format!("malformed form body: {e}"))))?;
    let project = match projects::get(&state.store, pid).await {
        Ok(p) => p,
        Err(roster::Error::NotFound(_)) => return Err(Refused::Unsigned),
        Err(e) => return Err(e.into()),
    };
    let received = Received {
        url: format!("{base}{path}"),
        params,
        signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    Ok((project, received))
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
) -> Result<Response, Refused> {
    let (project, r) = receive(&state, &pid, base, &uri, &headers, &body).await?;
    let twiml = sms_webhooks::inbound(&state.store, &project, &r.hook()).await?;
    let mut resp = (StatusCode::OK, twiml).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    Ok(resp)
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
) -> Result<StatusCode, Refused> {
    let (project, r) = receive(&state, &pid, base, &uri, &headers, &body).await?;
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
    let target = named("cid").zip(named("mid"));
    sms_webhooks::status(&state.store, &project, &r.hook(), target).await?;
    Ok(StatusCode::NO_CONTENT)
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
