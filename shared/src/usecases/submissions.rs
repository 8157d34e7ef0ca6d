//! Public submissions: waitlist signups, form submissions, contact messages
//! and chat. Each one upserts its contact (filling blanks, never erasing),
//! keeps a record linked to it, lands on the timeline and upgrades the
//! contact's source to the highest-intent channel seen.

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use crate::domain::contact::{ContactInput, FieldWarning};
use crate::domain::ids::new_id;
use crate::domain::project::Project;
use crate::domain::submission::{
    self as sub, ChatMessage, ChatRole, MessageStatus, Record, RecordKind, MAX_CHAT_MESSAGES, MAX_MESSAGE,
};
use crate::store::Store;
use crate::usecases::contacts::{self, UpsertOptions};
use crate::usecases::referrals::{self, ReferralOutcome};
use crate::usecases::{activities, decode_cursor, encode_cursor, Page};
use crate::{Error, Result};

/// What a public caller is told. It names no personal data, so that typing
/// someone's email in a form reveals nothing about them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receipt {
    /// The record's id (for chat: the conversation id to append to).
    pub id: String,
    pub kind: RecordKind,
    /// Waitlist: the contact's code, to share.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_code: Option<String>,
    /// Waitlist and forms carrying `ref`: what became of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralOutcome>,
}

pub enum Submitted {
    Accepted(Receipt),
    /// The honeypot was filled in: nothing was stored.
    Dropped,
}

/// Fixed-window limits per IP and per project; a refusal says when to retry.
pub async fn rate_limit(store: &Store, project: &Project, ip: &str) -> Result<()> {
    const WINDOW: i64 = 60;
    let now = Utc::now().timestamp();
    let start = now - now.rem_euclid(WINDOW);
    let (ip_key, project_key) = (format!("{}#ip#{ip}", project.id), format!("{}#all", project.id));
    let (per_ip, per_project) = futures::try_join!(
        store.hit(&ip_key, start, WINDOW),
        store.hit(&project_key, start, WINDOW)
    )?;
    if per_ip > u64::from(project.public_rate_per_ip) || per_project > u64::from(project.public_rate_per_project) {
        return Err(Error::RateLimited {
            retry_after_secs: (start + WINDOW - now).max(1) as u64,
        });
    }
    Ok(())
}

fn only_fields(fields: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Error::invalid(unknown, format!("unknown field {unknown}"))),
        None => Ok(()),
    }
}

/// Upserts the submission's contact: fill blanks only, source upgraded. A
/// phone that is not a valid number, or is another contact's, does not cost
/// the signup: the contact is kept without it, and the warnings say so.
async fn upsert_contact(
    store: &Store,
    project: &Project,
    kind: RecordKind,
    input: ContactInput,
) -> Result<(contacts::Upserted, Vec<FieldWarning>)> {
    let (change, mut warnings) = input.into_change_keeping(&project.default_country)?;
    let opts = UpsertOptions {
        fill_blanks: true,
        source: Some(kind.source()),
        ..UpsertOptions::default()
    };
    let up = contacts::upsert_change(store, project, change, opts).await?;
    warnings.extend(
        up.not_kept
            .iter()
            .map(|(kind, value)| FieldWarning::taken(*kind, value)),
    );
    Ok((up, warnings))
}

async fn keep(store: &Store, pid: &str, record: &Record, activity: &str, summary: Option<String>) -> Result<()> {
    store.put_record(pid, record).await?;
    let data = json!({"record_id": record.id, "kind": record.kind, "form_id": record.form_id});
    activities::record(store, pid, &record.contact_id, activity, summary, super::as_map(data)).await?;
    Ok(())
}

/// A referral code, if the submission carried one, applied to its contact.
async fn apply_ref(store: &Store, pid: &str, cid: &str, code: Option<&str>) -> Result<Option<ReferralOutcome>> {
    match code {
        Some(code) => Ok(Some(referrals::apply(store, pid, cid, code).await?)),
        None => Ok(None),
    }
}

fn require_email(fields: &Map<String, Value>) -> Result<()> {
    if fields.contains_key("email") {
        Ok(())
    } else {
        Err(Error::invalid("email", "email is required"))
    }
}

fn metadata_of(fields: &Map<String, Value>) -> Result<Option<Map<String, Value>>> {
    match fields.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(Error::invalid("metadata", "metadata is a JSON object")),
    }
}

const WAITLIST_FIELDS: [&str; 10] = [
    "email",
    "name",
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "company",
    "ref",
    "metadata",
    sub::HONEYPOT,
];

pub async fn waitlist(store: &Store, project: &Project, fields: Map<String, Value>) -> Result<Submitted> {
    if sub::is_bot(&fields) {
        return Ok(Submitted::Dropped);
    }
    only_fields(&fields, &WAITLIST_FIELDS)?;
    require_email(&fields)?;
    let mut input = sub::contact_input(&fields)?;
    let metadata = metadata_of(&fields)?;
    input.metadata = metadata.clone().map(Some);
    let code = sub::optional_text(&fields, "ref", 64)?;
    let kept = sub::kept_fields(&fields)?;

    let (up, warnings) = upsert_contact(store, project, RecordKind::Waitlist, input).await?;
    let cid = up.contact.id.clone();
    let referral = apply_ref(store, &project.id, &cid, code.as_deref()).await?;
    let mut record = Record::new(RecordKind::Waitlist, new_id(), cid, Utc::now());
    record.warnings = warnings;
    record.fields = kept;
    record.referred_with = code;
    keep(
        store,
        &project.id,
        &record,
        "waitlist_signup",
        Some("Joined the waitlist".into()),
    )
    .await?;
    Ok(Submitted::Accepted(Receipt {
        id: record.id,
        kind: RecordKind::Waitlist,
        referral_code: up.contact.referral_code,
        referral,
    }))
}

pub async fn form(store: &Store, project: &Project, form_id: &str, fields: Map<String, Value>) -> Result<Submitted> {
    sub::validate_slug("form_id", form_id)?;
    if sub::is_bot(&fields) {
        return Ok(Submitted::Dropped);
    }
    let input = sub::contact_input(&fields)?;
    let code = sub::optional_text(&fields, "ref", 64)?;
    let kept = sub::kept_fields(&fields)?;
    let (up, warnings) = upsert_contact(store, project, RecordKind::Form, input).await?;
    let cid = up.contact.id.clone();
    let referral = apply_ref(store, &project.id, &cid, code.as_deref()).await?;
    let mut record = Record::new(RecordKind::Form, new_id(), cid, Utc::now());
    record.warnings = warnings;
    record.form_id = Some(form_id.to_string());
    record.fields = kept;
    record.referred_with = code;
    keep(
        store,
        &project.id,
        &record,
        "form_submitted",
        Some(format!("Submitted form {form_id}")),
    )
    .await?;
    Ok(Submitted::Accepted(Receipt {
        id: record.id,
        kind: RecordKind::Form,
        referral_code: None,
        referral,
    }))
}

const MESSAGE_FIELDS: [&str; 8] = [
    "email",
    "name",
    "phone",
    "company",
    "subject",
    "message",
    "metadata",
    sub::HONEYPOT,
];

pub async fn message(store: &Store, project: &Project, fields: Map<String, Value>) -> Result<Submitted> {
    if sub::is_bot(&fields) {
        return Ok(Submitted::Dropped);
    }
    only_fields(&fields, &MESSAGE_FIELDS)?;
    require_email(&fields)?;
    let input = sub::contact_input(&fields)?;
    let subject = sub::optional_text(&fields, "subject", 300)?;
    let text = sub::required_text(&fields, "message", MAX_MESSAGE)?;
    let kept = sub::kept_fields(&fields)?;
    let (up, warnings) = upsert_contact(store, project, RecordKind::Message, input).await?;
    let mut record = Record::new(RecordKind::Message, new_id(), up.contact.id.clone(), Utc::now());
    record.warnings = warnings;
    record.fields = kept;
    record.subject = subject.clone();
    record.message = Some(text);
    record.status = Some(MessageStatus::New);
    keep(
        store,
        &project.id,
        &record,
        "contact_message",
        subject.or(Some("Sent a message".into())),
    )
    .await?;
    store
        .add_to_contact(&project.id, &record.contact_id, &[("messages_in", 1.0)])
        .await?;
    Ok(Submitted::Accepted(Receipt {
        id: record.id,
        kind: RecordKind::Message,
        referral_code: None,
        referral: None,
    }))
}

const CHAT_FIELDS: [&str; 9] = [
    "conversation_id",
    "email",
    "name",
    "phone",
    "message",
    "role",
    "summary",
    "metadata",
    sub::HONEYPOT,
];

pub async fn chat(store: &Store, project: &Project, fields: Map<String, Value>) -> Result<Submitted> {
    if sub::is_bot(&fields) {
        return Ok(Submitted::Dropped);
    }
    only_fields(&fields, &CHAT_FIELDS)?;
    let text = sub::required_text(&fields, "message", MAX_MESSAGE)?;
    let summary = sub::optional_text(&fields, "summary", 2000)?;
    let role: ChatRole = match fields.get("role") {
        None | Some(Value::Null) => ChatRole::Visitor,
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|_| Error::invalid("role", "role is visitor, agent or bot"))?
        }
    };
    let message = ChatMessage {
        role,
        text,
        at: Utc::now(),
    };

    if let Some(conversation) = sub::optional_text(&fields, "conversation_id", 26)? {
        let record = store
            .find_record(&project.id, RecordKind::Chat, &conversation)
            .await?
            .ok_or(Error::NotFound("conversation"))?;
        let updated = store
            .append_chat(&project.id, &record, std::slice::from_ref(&message), summary.as_deref())
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    "message",
                    format!("a conversation holds at most {MAX_CHAT_MESSAGES} messages"),
                )
            })?;
        store
            .touch_last_activity(&project.id, &updated.contact_id, message.at)
            .await?;
        if role == ChatRole::Visitor {
            store
                .add_to_contact(&project.id, &updated.contact_id, &[("messages_in", 1.0)])
                .await?;
        }
        return Ok(Submitted::Accepted(Receipt {
            id: updated.id,
            kind: RecordKind::Chat,
            referral_code: None,
            referral: None,
        }));
    }

    if !fields.contains_key("email") && !fields.contains_key("phone") {
        return Err(Error::invalid("email", "email is required to start a conversation"));
    }
    let input = sub::contact_input(&fields)?;
    let (up, warnings) = upsert_contact(store, project, RecordKind::Chat, input).await?;
    let mut record = Record::new(RecordKind::Chat, new_id(), up.contact.id.clone(), Utc::now());
    record.warnings = warnings;
    record.messages = vec![message];
    record.summary = summary;
    record.fields = sub::kept_fields(&fields)?;
    record.fields.remove("message");
    keep(store, &project.id, &record, "chat", Some("Started a chat".into())).await?;
    if role == ChatRole::Visitor {
        store
            .add_to_contact(&project.id, &record.contact_id, &[("messages_in", 1.0)])
            .await?;
    }
    Ok(Submitted::Accepted(Receipt {
        id: record.id,
        kind: RecordKind::Chat,
        referral_code: None,
        referral: None,
    }))
}

/// The messages page: the project's contact messages newest first, by status
/// and text (subject, message, sender's email or name, case-insensitive).
pub async fn list_messages(
    store: &Store,
    pid: &str,
    status: Option<MessageStatus>,
    q: Option<&str>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Record>> {
    let needle = q.map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    let mut before = cursor.map(decode_cursor).transpose()?;
    let mut data = Vec::new();
    // Filters are applied to pages of the index; stop after a bounded amount
    // of reading and hand back a cursor to continue from.
    for _ in 0..10 {
        let (page, more) = store
            .project_records(pid, RecordKind::Message, limit, before.as_deref())
            .await?;
        let last = page.last().map(|r| r.id.clone());
        for r in page {
            let status_ok = status.is_none_or(|s| r.status == Some(s));
            let text_ok = needle.as_deref().is_none_or(|n| matches_text(&r, n));
            if status_ok && text_ok && data.len() < limit {
                data.push(r);
            }
        }
        if data.len() >= limit {
            return Ok(Page {
                next_cursor: Some(encode_cursor(&data[data.len() - 1].id)),
                data,
            });
        }
        if !more {
            return Ok(Page {
                data,
                next_cursor: None,
            });
        }
        before = last;
    }
    let next_cursor = before.map(|b| encode_cursor(&b));
    Ok(Page { data, next_cursor })
}

fn matches_text(r: &Record, needle: &str) -> bool {
    let hit = |s: Option<&str>| s.is_some_and(|s| s.to_lowercase().contains(needle));
    hit(r.subject.as_deref())
        || hit(r.message.as_deref())
        || hit(r.fields.get("email").and_then(Value::as_str))
        || hit(r.fields.get("name").and_then(Value::as_str))
}

pub async fn set_message_status(store: &Store, pid: &str, id: &str, status: MessageStatus) -> Result<Record> {
    let record = store
        .find_record(pid, RecordKind::Message, id)
        .await?
        .ok_or(Error::NotFound("message"))?;
    store
        .set_message_status(pid, &record, status)
        .await?
        .ok_or(Error::NotFound("message"))
}
