//! Every route, by resource.

mod audience;
mod broadcasts;
mod contacts;
mod export_schedules;
mod exports;
mod health;
mod imports;
mod lists;
mod messages;
mod projects;
mod public;
mod tags;
mod templates;
mod timeline;
mod unsubscribe;
mod webhooks;

use axum::http::StatusCode;
use axum::routing::{get, patch, post, put};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub(crate) use audience::{
    __path_export_contact_messages, __path_get_profile, __path_get_referrals, __path_list_messages, __path_post_event,
    __path_update_message,
};
pub(crate) use broadcasts::{
    __path_cancel_broadcast, __path_create_broadcast, __path_get_broadcast, __path_list_broadcasts,
    __path_pause_broadcast, __path_resume_broadcast, __path_send_broadcast, __path_update_broadcast,
};
pub(crate) use contacts::{
    __path_bulk, __path_bulk_job, __path_create_contact, __path_export_contacts, __path_merge_contacts,
};
pub(crate) use contacts::{__path_delete_contact, __path_get_contact, __path_list_contacts, __path_update_contact};
pub(crate) use export_schedules::{
    __path_create_schedule, __path_delete_schedule, __path_get_schedule, __path_list_schedules, __path_schedule_runs,
    __path_update_schedule,
};
pub(crate) use exports::{
    __path_cancel_export, __path_create_export, __path_get_export, __path_link_export, __path_list_exports,
};
pub(crate) use health::__path_health;
pub(crate) use imports::{
    __path_cancel_import, __path_create_import, __path_get_import, __path_list_imports, __path_preview_import,
    __path_start_import,
};
pub(crate) use lists::{
    __path_all_lists, __path_contact_consent, __path_contact_lists, __path_create_list, __path_delete_list,
    __path_get_list, __path_list_members, __path_remove_member, __path_set_status, __path_update_list,
};
pub(crate) use messages::{
    __path_contact_messages, __path_export_messages, __path_get_message, __path_list_all_messages, __path_send_message,
};
pub(crate) use projects::{__path_create_project, __path_get_project, __path_rotate_key, __path_update_project};
pub(crate) use public::{__path_chat, __path_form, __path_message, __path_waitlist};
pub(crate) use tags::{
    __path_create_tag, __path_create_tags, __path_delete_tag, __path_get_tag, __path_list_tags, __path_tag_contact,
    __path_tag_contacts, __path_update_tag,
};
pub(crate) use templates::{
    __path_create_template, __path_delete_template, __path_get_template, __path_list_templates,
    __path_preview_template, __path_update_template,
};
pub(crate) use timeline::{__path_post_activity, __path_timeline};
pub(crate) use unsubscribe::{__path_unsubscribe_page, __path_unsubscribe_post};
pub(crate) use webhooks::{__path_follow_link, __path_twilio_sms, __path_twilio_status};

/// A CSV file streamed as it is written; `truncated`: why it stops short.
/// An error mid-file (logged) cuts the response, so no cut file looks whole.
pub(crate) fn csv_file(
    filename: &str,
    rows: impl futures::Stream<Item = roster::Result<axum::body::Bytes>> + Send + 'static,
    truncated: Option<String>,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use futures::StreamExt;
    let body = axum::body::Body::from_stream(rows.map(|r| {
        r.map_err(|e| {
            tracing::error!(error = %e, "export failed mid-file");
            std::io::Error::other("export failed")
        })
    }));
    let mut resp = axum::response::Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = truncated.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert("x-roster-truncated", v);
    }
    resp
}

/// The public function: what people and providers reach without a key —
/// capture endpoints (CORS limited to each project's origins), Twilio's
/// webhooks, tracked links and one-click unsubscribe.
pub fn public(state: AppState) -> Router<AppState> {
    let capture = Router::new()
        // OPTIONS is answered by the CORS layer (preflight).
        .route(
            "/v1/public/{pid}/waitlist",
            post(public::waitlist).options(StatusCode::NO_CONTENT),
        )
        .route(
            "/v1/public/{pid}/forms/{form_id}",
            post(public::form).options(StatusCode::NO_CONTENT),
        )
        .route(
            "/v1/public/{pid}/messages",
            post(public::message).options(StatusCode::NO_CONTENT),
        )
        .route(
            "/v1/public/{pid}/chat",
            post(public::chat).options(StatusCode::NO_CONTENT),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, crate::cors::layer));
    Router::new()
        .merge(capture)
        .route("/v1/webhooks/twilio/{pid}/sms", post(webhooks::twilio_sms))
        .route("/v1/webhooks/twilio/{pid}/status", post(webhooks::twilio_status))
        .route("/l/{token}", get(webhooks::follow_link))
        .route(
            "/v1/unsubscribe/{token}",
            get(unsubscribe::unsubscribe_page).post(unsubscribe::unsubscribe_post),
        )
}

/// The files function: imports, exports (asynchronous, scheduled, and the
/// synchronous CSV downloads), the routes that reach S3.
pub fn files() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{pid}/contacts/export.csv", get(contacts::export_contacts))
        .route("/v1/projects/{pid}/messages/export.csv", get(messages::export_messages))
        .route(
            "/v1/projects/{pid}/contact-messages/export.csv",
            get(audience::export_contact_messages),
        )
        .route(
            "/v1/projects/{pid}/exports",
            get(exports::list_exports).post(exports::create_export),
        )
        .route("/v1/projects/{pid}/exports/{id}", get(exports::get_export))
        .route("/v1/projects/{pid}/exports/{id}/link", post(exports::link_export))
        .route("/v1/projects/{pid}/exports/{id}/cancel", post(exports::cancel_export))
        .route(
            "/v1/projects/{pid}/export-schedules",
            get(export_schedules::list_schedules).post(export_schedules::create_schedule),
        )
        .route(
            "/v1/projects/{pid}/export-schedules/{id}",
            get(export_schedules::get_schedule)
                .patch(export_schedules::update_schedule)
                .delete(export_schedules::delete_schedule),
        )
        .route(
            "/v1/projects/{pid}/export-schedules/{id}/runs",
            get(export_schedules::schedule_runs),
        )
        .route(
            "/v1/projects/{pid}/imports",
            get(imports::list_imports).post(imports::create_import),
        )
        .route("/v1/projects/{pid}/imports/{import_id}", get(imports::get_import))
        .route(
            "/v1/projects/{pid}/imports/{import_id}/preview",
            post(imports::preview_import),
        )
        .route(
            "/v1/projects/{pid}/imports/{import_id}/start",
            post(imports::start_import),
        )
        .route(
            "/v1/projects/{pid}/imports/{import_id}/cancel",
            post(imports::cancel_import),
        )
}

/// The messaging function: templates, one-off messages and broadcasts, the
/// routes that reach SES and Twilio.
pub fn messaging() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/projects/{pid}/contacts/{cid}/messages",
            post(messages::send_message).get(messages::contact_messages),
        )
        .route("/v1/projects/{pid}/messages", get(messages::list_all_messages))
        .route("/v1/projects/{pid}/messages/{mid}", get(messages::get_message))
        .route(
            "/v1/projects/{pid}/broadcasts",
            get(broadcasts::list_broadcasts).post(broadcasts::create_broadcast),
        )
        .route(
            "/v1/projects/{pid}/broadcasts/{id}",
            get(broadcasts::get_broadcast).patch(broadcasts::update_broadcast),
        )
        .route(
            "/v1/projects/{pid}/broadcasts/{id}/send",
            post(broadcasts::send_broadcast),
        )
        .route(
            "/v1/projects/{pid}/broadcasts/{id}/pause",
            post(broadcasts::pause_broadcast),
        )
        .route(
            "/v1/projects/{pid}/broadcasts/{id}/resume",
            post(broadcasts::resume_broadcast),
        )
        .route(
            "/v1/projects/{pid}/broadcasts/{id}/cancel",
            post(broadcasts::cancel_broadcast),
        )
        .route(
            "/v1/projects/{pid}/templates",
            get(templates::list_templates).post(templates::create_template),
        )
        .route(
            "/v1/projects/{pid}/templates/{template_id}",
            get(templates::get_template)
                .patch(templates::update_template)
                .delete(templates::delete_template),
        )
        .route(
            "/v1/projects/{pid}/templates/{template_id}/preview",
            post(templates::preview_template),
        )
}

/// The operator's api: projects, contacts and everything about them (tags,
/// lists and consent, timeline, bulk jobs, merge), the inbox of contact
/// messages, and the OpenAPI document of every function's routes.
pub fn operator() -> Router<AppState> {
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
        .route("/v1/projects/{pid}/contacts/{cid}/profile", get(audience::get_profile))
        .route(
            "/v1/projects/{pid}/contacts/{cid}/referrals",
            get(audience::get_referrals),
        )
        .route("/v1/projects/{pid}/contact-messages", get(audience::list_messages))
        .route(
            "/v1/projects/{pid}/contact-messages/{mid}",
            patch(audience::update_message),
        )
        .route("/v1/projects/{pid}/events", post(audience::post_event))
        .route("/v1/projects/{pid}/tags", get(tags::list_tags).post(tags::create_tag))
        .route("/v1/projects/{pid}/tags/batch", post(tags::create_tags))
        .route("/v1/projects/{pid}/tags/assign", post(tags::tag_contacts))
        .route(
            "/v1/projects/{pid}/tags/{tag_id}",
            get(tags::get_tag).patch(tags::update_tag).delete(tags::delete_tag),
        )
        .route("/v1/projects/{pid}/contacts/{cid}/tags", post(tags::tag_contact))
        .route("/v1/projects/{pid}/contacts/bulk", post(contacts::bulk))
        .route("/v1/projects/{pid}/bulk-jobs/{id}", get(contacts::bulk_job))
        .route(
            "/v1/projects/{pid}/contacts/{cid}/merge",
            post(contacts::merge_contacts),
        )
        .route(
            "/v1/projects/{pid}/lists",
            get(lists::all_lists).post(lists::create_list),
        )
        .route(
            "/v1/projects/{pid}/lists/{list_id}",
            get(lists::get_list)
                .patch(lists::update_list)
                .delete(lists::delete_list),
        )
        .route("/v1/projects/{pid}/lists/{list_id}/contacts", get(lists::list_members))
        .route(
            "/v1/projects/{pid}/lists/{list_id}/contacts/{cid}",
            put(lists::set_status).delete(lists::remove_member),
        )
        .route("/v1/projects/{pid}/contacts/{cid}/lists", get(lists::contact_lists))
        .route("/v1/projects/{pid}/contacts/{cid}/consent", get(lists::contact_consent))
}

/// What a function answers for a path none of its routes has, or a method
/// its route does not take.
pub fn fallbacks(router: Router<AppState>) -> Router<AppState> {
    router
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
}
