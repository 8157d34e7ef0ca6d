//! Public submissions (waitlist, forms, contact messages, chat) and the
//! records they leave, linked to the contact they upsert.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::contact::{ContactInput, FieldWarning, Source};
use crate::{Error, Result};

/// The hidden form field bots fill in and people never see.
pub const HONEYPOT: &str = "_hp";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Waitlist,
    Form,
    Message,
    Chat,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Waitlist => "waitlist",
            RecordKind::Form => "form",
            RecordKind::Message => "message",
            RecordKind::Chat => "chat",
        }
    }

    pub fn source(self) -> Source {
        match self {
            RecordKind::Waitlist => Source::Waitlist,
            RecordKind::Form => Source::Form,
            RecordKind::Message => Source::ContactForm,
            RecordKind::Chat => Source::Chat,
        }
    }

    pub const ALL: [RecordKind; 4] = [
        RecordKind::Waitlist,
        RecordKind::Form,
        RecordKind::Message,
        RecordKind::Chat,
    ];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    #[default]
    New,
    Read,
    Replied,
    Archived,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    #[default]
    Visitor,
    Agent,
    Bot,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A source record: what one submission said, linked to its contact.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Record {
    pub id: String,
    pub kind: RecordKind,
    pub contact_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Forms: the form's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form_id: Option<String>,
    /// Everything the submission carried, known fields included.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Waitlist: the referral code the signup came with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referred_with: Option<String>,
    /// Contact messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
    /// Chat conversations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What the submission gave that its contact was kept without (a phone
    /// that is not a valid number, or another contact's); `fields` has it as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<FieldWarning>,
}

impl Record {
    pub fn new(kind: RecordKind, id: String, contact_id: String, now: DateTime<Utc>) -> Self {
        Record {
            id,
            kind,
            contact_id,
            created_at: now,
            updated_at: now,
            form_id: None,
            fields: Map::new(),
            referred_with: None,
            subject: None,
            message: None,
            status: None,
            messages: Vec::new(),
            summary: None,
            warnings: Vec::new(),
        }
    }
}

/// Fields of a submission that feed the contact; the rest stay on the record.
const CONTACT_FIELDS: [&str; 7] = [
    "email",
    "phone",
    "name",
    "full_name",
    "first_name",
    "last_name",
    "company",
];

pub const MAX_FIELDS: usize = 100;
pub const MAX_MESSAGE: usize = 5000;
pub const MAX_CHAT_MESSAGES: usize = 500;

fn text_field(fields: &Map<String, Value>, key: &str) -> Option<String> {
    match fields.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether the honeypot was filled in (the submission is then dropped).
pub fn is_bot(fields: &Map<String, Value>) -> bool {
    text_field(fields, HONEYPOT).is_some()
}

/// The contact part of a submission's fields. An email, or at least a phone,
/// is required so the submission can be linked to someone.
pub fn contact_input(fields: &Map<String, Value>) -> Result<ContactInput> {
    let get = |k: &str| text_field(fields, k).map(Some);
    let input = ContactInput {
        email: get("email"),
        phone: get("phone"),
        name: get("name"),
        full_name: get("full_name"),
        first_name: get("first_name"),
        last_name: get("last_name"),
        company: get("company"),
        ..Default::default()
    };
    if input.email.is_none() && input.phone.is_none() {
        return Err(Error::invalid("email", "email is required"));
    }
    if input.name.is_some() && input.full_name.is_some() {
        return Ok(ContactInput {
            full_name: None,
            ..input
        });
    }
    Ok(input)
}

/// The fields kept on the record: all of them but the honeypot, bounded.
pub fn kept_fields(fields: &Map<String, Value>) -> Result<Map<String, Value>> {
    if fields.len() > MAX_FIELDS {
        return Err(Error::invalid("fields", format!("at most {MAX_FIELDS} fields")));
    }
    if serde_json::to_vec(fields).map_or(0, |b| b.len()) > 64 * 1024 {
        return Err(Error::invalid("fields", "a submission is at most 64 KiB of JSON"));
    }
    Ok(fields
        .iter()
        .filter(|(k, _)| k.as_str() != HONEYPOT)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

pub fn is_contact_field(key: &str) -> bool {
    CONTACT_FIELDS.contains(&key)
}

/// A form id: letters, digits, `-` and `_`, at most 64.
pub fn validate_slug(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} is 1-64 letters, digits, - or _"),
        ))
    }
}

/// A required free-text field, trimmed and bounded.
pub fn required_text(fields: &Map<String, Value>, key: &str, max: usize) -> Result<String> {
    let value = text_field(fields, key).ok_or_else(|| Error::invalid(key, format!("{key} is required")))?;
    let value = value.trim().to_string();
    if value.chars().count() > max {
        return Err(Error::invalid(key, format!("{key} is at most {max} characters")));
    }
    Ok(value)
}

pub fn optional_text(fields: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>> {
    match text_field(fields, key) {
        None => Ok(None),
        Some(_) => required_text(fields, key, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn known_fields_feed_the_contact_and_all_stay_on_the_record() {
        let fields = map(json!({"email": "a@b.com", "name": "Ann Lee", "plan": "pro", "_hp": ""}));
        let input = contact_input(&fields).unwrap();
        assert_eq!(input.email, Some(Some("a@b.com".into())));
        assert_eq!(input.name, Some(Some("Ann Lee".into())));
        let kept = kept_fields(&fields).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(!is_bot(&fields));
        assert!(is_bot(&map(json!({"_hp": "http://spam"}))));
    }

    #[test]
    fn a_submission_needs_someone_to_link_to() {
        assert!(contact_input(&map(json!({"name": "x"}))).is_err());
        assert!(contact_input(&map(json!({"phone": "+14155552671"}))).is_ok());
    }

    #[test]
    fn slugs_and_texts_are_bounded() {
        assert!(validate_slug("form_id", "contact-us_2").is_ok());
        assert!(validate_slug("form_id", "no spaces").is_err());
        assert!(required_text(&map(json!({"message": " hi "})), "message", 10).unwrap() == "hi");
        assert!(required_text(&map(json!({"message": "x".repeat(11)})), "message", 10).is_err());
        assert!(required_text(&map(json!({})), "message", 10).is_err());
    }

    #[test]
    fn every_channel_has_its_source() {
        let sources: Vec<_> = RecordKind::ALL.iter().map(|k| k.source().as_str()).collect();
        assert_eq!(sources, vec!["waitlist", "form", "contact_form", "chat"]);
    }
}
