//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "Roster API", version = "1", description = "Contacts & audience backend: one contact list per project."),
    paths(health, create_project, get_project, update_project, rotate_key,
          create_contact, list_contacts, get_contact, update_contact, delete_contact,
          post_activity, timeline, waitlist, form, message, chat,
          get_profile, get_referrals, list_messages, update_message, post_event,
          list_tags, create_tag, create_tags, get_tag, update_tag, delete_tag, tag_contact, tag_contacts,
          all_lists, create_list, get_list, update_list, delete_list, list_members, set_status, remove_member,
          contact_lists, contact_consent, merge_contacts, bulk, bulk_job,
          create_import, list_imports, get_import, preview_import, start_import, cancel_import,
          list_templates, create_template, get_template, update_template, delete_template, preview_template,
          send_message, list_all_messages, contact_messages, get_message, unsubscribe_page, unsubscribe_post,
          create_broadcast, list_broadcasts, get_broadcast, update_broadcast, send_broadcast, pause_broadcast,
          resume_broadcast, cancel_broadcast, twilio_sms, twilio_status, follow_link,
          export_contacts, export_messages, export_contact_messages,
          create_export, list_exports, get_export, link_export, cancel_export,
          create_schedule, list_schedules, get_schedule, update_schedule, delete_schedule, schedule_runs),
    modifiers(&Security),
    tags((name = "projects"), (name = "contacts"), (name = "timeline"), (name = "public"), (name = "messages"), (name = "tags"), (name = "lists"), (name = "imports"), (name = "templates"), (name = "broadcasts"), (name = "exports"), (name = "sms", description = "Twilio webhooks and tracked links"), (name = "meta"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc))
                    .build(),
            )
        };
        components.add_security_scheme("operator", bearer("The operator token (ADMIN_TOKEN)"));
        components.add_security_scheme("secret_key", bearer("The project's secret key, sk_…"));
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
