//! Every route, by resource.

mod contacts;
mod health;
mod projects;
mod timeline;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub(crate) use contacts::__path_create_contact;
pub(crate) use contacts::{__path_delete_contact, __path_get_contact, __path_list_contacts, __path_update_contact};
pub(crate) use health::__path_health;
pub(crate) use projects::{__path_create_project, __path_get_project, __path_rotate_key, __path_update_project};
pub(crate) use timeline::{__path_post_activity, __path_timeline};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/v1/projects", post(projects::create_project))
        .route(
            "/v1/projects/{pid}",
            get(projects::get_project).patch(projects::update_project),
        )
        .route("/v1/projects/{pid}/keys/rotate", post(projects::rotate_key))
        .route(
            "/v1/projects/{pid}/contacts",
            post(contacts::create_contact).get(contacts::list_contacts),
        )
        .route(
            "/v1/projects/{pid}/contacts/{cid}",
            get(contacts::get_contact)
                .patch(contacts::update_contact)
                .delete(contacts::delete_contact),
        )
        .route(
            "/v1/projects/{pid}/contacts/{cid}/activities",
            post(timeline::post_activity),
        )
        .route("/v1/projects/{pid}/contacts/{cid}/timeline", get(timeline::timeline))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}
