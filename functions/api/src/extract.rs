//! Request extractors: JSON bodies and query strings with field-level errors,
//! and the three kinds of caller (operator, project admin, project key).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{header, request::Parts, StatusCode};
use roster::domain::keys::{token_matches, KeyKind};
use roster::domain::project::Project;
use roster::usecases::projects;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::AppState;

/// A JSON body. Wrong content type → 415, malformed JSON → 400, a field of
/// the wrong type or an unknown field → 422 naming it, too large → 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::bad_request("could not read the request body")
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out: no body at all reads as `T::default()`;
/// a body is held to the same rules as [`JsonBody`].
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (req.headers().get(header::CONTENT_TYPE).is_none()
                && req.headers().get(header::TRANSFER_ENCODING).is_none()
                && req.headers().get(header::CONTENT_LENGTH).is_none());
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        JsonBody::from_request(req, state)
            .await
            .map(|JsonBody(v)| OptionalJson(v))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty; send a JSON object"));
    }
    // Syntax first, then shape: serde_json reports some type errors (a number
    // where an enum goes) as syntax errors when it reads straight into a type.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.inner();
        let path = e.path().to_string();
        let message = inner.to_string();
        let field = field_of(&path, &message);
        let mut err = ApiError::invalid(field.clone().unwrap_or_default(), message);
        err.field = field;
        err
    })
}

/// The field a serde message is about: the path (which for an unknown field
/// already ends with its name), or for a missing field the name it quotes.
fn field_of(path: &str, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("missing field `") {
        let prefix = if path == "." { String::new() } else { format!("{path}.") };
        return rest.split('`').next().map(|name| format!("{prefix}{name}"));
    }
    if path == "." {
        // Query strings carry no path: take the name the message quotes.
        return message
            .split_once("unknown field `")
            .and_then(|(_, r)| r.split('`').next())
            .map(str::to_string);
    }
    Some(path.to_string())
}

/// Query parameters; unknown or malformed ones → 422 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(QueryParams).map_err(|e| {
            let message = e.inner().to_string();
            let field = field_of(&e.path().to_string(), &message).unwrap_or_default();
            ApiError::invalid(field, message)
        })
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::from(roster::Error::Unauthorized))
}

async fn project_id(parts: &mut Parts, state: &AppState) -> Result<String, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found("project"))?;
    params.get("pid").cloned().ok_or_else(|| ApiError::not_found("project"))
}

/// The operator (`Authorization: Bearer $ADMIN_TOKEN`).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if token_matches(bearer(parts)?, &state.config.admin_token) {
            Ok(Operator)
        } else {
            Err(roster::Error::Unauthorized.into())
        }
    }
}

/// A caller holding the project's secret key; the project is loaded.
pub struct ProjectKey(pub Project);

impl FromRequestParts<AppState> for ProjectKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pid = project_id(parts, state).await?;
        let token = bearer(parts)?;
        let project = projects::authenticate(&state.store, &pid, token, KeyKind::Secret).await?;
        Ok(ProjectKey(project))
    }
}

/// The operator or the project's secret key: project administration.
pub struct ProjectAdmin(pub String);

impl FromRequestParts<AppState> for ProjectAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pid = project_id(parts, state).await?;
        if token_matches(bearer(parts)?, &state.config.admin_token) {
            return Ok(ProjectAdmin(pid));
        }
        let ProjectKey(project) = ProjectKey::from_request_parts(parts, state).await?;
        Ok(ProjectAdmin(project.id))
    }
}

/// The publishable key, from `X-Publishable-Key` or `?key=`.
fn publishable_key(parts: &Parts) -> Option<String> {
    if let Some(k) = parts.headers.get("x-publishable-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim().to_string());
    }
    let query = parts.uri.query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v)
}

/// A public caller holding the project's publishable key.
pub struct PublicProject(pub Project);

impl FromRequestParts<AppState> for PublicProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pid = project_id(parts, state).await?;
        let key = publishable_key(parts).ok_or_else(|| ApiError::from(roster::Error::Unauthorized))?;
        // The CORS layer may have read the project already.
        let project = match parts.extensions.get::<std::sync::Arc<Project>>() {
            Some(p) if p.id == pid => {
                projects::check_key(p, &key, KeyKind::Publishable)?;
                Project::clone(p)
            }
            _ => projects::authenticate(&state.store, &pid, &key, KeyKind::Publishable).await?,
        };
        Ok(PublicProject(project))
    }
}

/// The caller's address: the last `X-Forwarded-For` entry, which API Gateway
/// appends itself (earlier entries are whatever the client sent).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let ip = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .unwrap_or_else(|| "direct".to_string());
        Ok(ClientIp(ip))
    }
}

/// The base URL the caller reached the API at (`X-Forwarded-Proto` and
/// `Host`), for links in messages where no `PUBLIC_BASE_URL` is configured.
pub struct RequestBase(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestBase {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']));
        let proto = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|p| matches!(*p, "http" | "https"))
            .unwrap_or("http");
        Ok(RequestBase(host.map(|h| format!("{proto}://{h}"))))
    }
}

/// A public submission body: a JSON object, or an HTML form post
/// (`application/x-www-form-urlencoded`), as a map of fields.
pub struct SubmissionBody(pub serde_json::Map<String, serde_json::Value>);

impl<S: Send + Sync> FromRequest<S> for SubmissionBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            let JsonBody(map) =
                JsonBody::<serde_json::Map<String, serde_json::Value>>::from_request(req, state).await?;
            return Ok(SubmissionBody(map));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large()
            } else {
                ApiError::bad_request("could not read the request body")
            }
        })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
        Ok(SubmissionBody(
            pairs
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        city: String,
    }

    fn err(body: &str) -> ApiError {
        parse_json::<Body>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn json_errors_are_classified_and_name_the_field() {
        assert_eq!(err("{").status, StatusCode::BAD_REQUEST);
        assert_eq!(err("").status, StatusCode::BAD_REQUEST);
        let e = err(r#"{"name":"x","nmae":1}"#);
        assert_eq!(
            (e.status, e.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("nmae"))
        );
        let e = err(r#"{"name":1}"#);
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = err(r#"{"name":"x","inner":{"town":"y"}}"#);
        assert_eq!(e.field.as_deref(), Some("inner.town"));
        let e = err(r#"{}"#);
        assert_eq!(e.field.as_deref(), Some("name"));
    }
}
