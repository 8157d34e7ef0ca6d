//! The OpenAPI 3 document, generated from the handlers' annotations.
//!
//! The api serves it as the text `openapi.json` committed beside this
//! crate, not built at each request: the schema-building code is 1.45 MiB
//! of the release binary (bench/README.md, "What the bytes are"). It is
//! served compacted (`build.rs`). The test below fails when the annotations
//! and the file disagree, and `make openapi` writes the file again.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
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

/// `openapi.json` without its indentation (`build.rs`).
pub const DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_document_is_what_the_annotations_make() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let committed = std::fs::read_to_string(path).expect("reading openapi.json");
        let mut generated = ApiDoc::openapi().to_pretty_json().expect("the document serializes");
        generated.push('\n');
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("writing openapi.json");
            return;
        }
        assert!(
            committed == generated,
            "functions/api/openapi.json is not what the handlers' annotations make: run `make openapi`"
        );
    }

    /// What is served is the committed document, key for key and in its
    /// order, without the indentation.
    #[test]
    fn served_document_is_the_committed_one_compacted() {
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            return; // this build embeds the file being rewritten
        }
        let compact = ApiDoc::openapi().to_json().expect("the document serializes");
        assert!(
            DOCUMENT == compact,
            "the served document is not the annotations' document compacted: run `make openapi`"
        );
    }
}
