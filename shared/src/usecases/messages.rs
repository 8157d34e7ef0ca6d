//! Messages: who may be sent what (read at the moment of sending), one-off
//! emails, and the message history of a project and of a contact.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};
use utoipa::ToSchema;

use crate::domain::contact::{Contact, ContactStatus};
use crate::domain::email::{self, Envelope};
use crate::domain::ids::new_id;
use crate::domain::list::{Channel, SubscriptionStatus};
use crate::domain::message::{preview_of, Direction, Message, MessageState, SkipReason, StatusEvent};
use crate::domain::project::Project;
use crate::domain::template::{check_parts, Compiled, Rendered, Template, Variables};
use crate::domain::unsubscribe::Unsubscribe;
use crate::mailer::{while_throttled, Mailer, SendError};
use crate::store::messages::Engagement;
use crate::store::Store;
use crate::telemetry::mask_email;
use crate::usecases::{activities, contacts, decode_cursor, encode_cursor, lists, templates, Page};
use crate::{Error, Result};

/// What sending needs, built once per process.
#[derive(Clone)]
pub struct Messaging {
    pub store: Store,
    pub mailer: Mailer,
    /// Signs unsubscribe links.
    pub secret: Arc<[u8]>,
    pub sender_domain: Option<String>,
    pub public_base_url: Option<String>,
}

impl Messaging {
    /// The base URL links in messages point at: the configured one, else
    /// the one the request came in on.
    pub fn base_url(&self, request_base: Option<&str>) -> Result<String> {
        self.public_base_url
            .clone()
            .or_else(|| request_base.map(|b| b.trim_end_matches('/').to_string()))
            .ok_or_else(|| Error::internal("PUBLIC_BASE_URL is not set and the request gave no host"))
    }

    pub fn unsubscribe_url(&self, base: &str, link: &Unsubscribe) -> String {
        format!("{base}/v1/unsubscribe/{}", link.sign(&self.secret))
    }

    /// A From address, checked against the sending domain.
    pub(crate) fn check_from(&self, from: &str) -> Result<()> {
        match &self.sender_domain {
            Some(domain) => email::check_on_domain("from", from, domain),
            None => Ok(()),
        }
    }
}

/// Whether a message on `channel` (under `list_id`, if given) may go to the
/// contact now. Read at the moment of sending, never earlier.
pub async fn eligibility(
    store: &Store,
    pid: &str,
    contact: &Contact,
    channel: Channel,
    list_id: Option<&str>,
) -> Result<std::result::Result<(), SkipReason>> {
    if contact.deleted_at.is_some() || contact.status == ContactStatus::Deleted {
        return Ok(Err(SkipReason::Deleted));
    }
    let address = match channel {
        Channel::Email => contact.email.as_deref(),
        Channel::Sms => contact.phone.as_deref(),
    };
    if address.is_none() {
        return Ok(Err(SkipReason::NoAddress));
    }
    if let Some(o) = store.channel_opt_out(pid, &contact.id, channel).await? {
        return Ok(Err(o.reason));
    }
    let refused = |status: SubscriptionStatus| match status {
        SubscriptionStatus::Active => None,
        SubscriptionStatus::OptedOut => Some(SkipReason::OptedOut),
        SubscriptionStatus::Suppressed => Some(SkipReason::Suppressed),
        SubscriptionStatus::Invalid => Some(SkipReason::Invalid),
        SubscriptionStatus::Unsubscribed => Some(SkipReason::Unsubscribed),
    };
    match list_id {
        Some(list_id) => match store.get_subscription(pid, list_id, &contact.id).await? {
            None => Ok(Err(SkipReason::NotOnList)),
            Some(sub) => Ok(refused(sub.status).map_or(Ok(()), Err)),
        },
        None => {
            // Without a list, what is true of the address itself still holds:
            // suppressed or invalid on any list of the channel.
            let subs = store.contact_subscriptions(pid, &contact.id).await?;
            let address_level = subs
                .iter()
                .filter(|s| matches!(s.status, SubscriptionStatus::Suppressed | SubscriptionStatus::Invalid))
                .collect::<Vec<_>>();
            if address_level.is_empty() {
                return Ok(Ok(()));
            }
            for sub in address_level {
                if store
                    .get_list(pid, &sub.list_id)
                    .await?
                    .is_some_and(|l| l.channel == channel)
                {
                    return Ok(Err(refused(sub.status).unwrap_or(SkipReason::Suppressed)));
                }
            }
            Ok(Ok(()))
        }
    }
}

/// A one-off email: a saved template, or the parts given here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// `email` (SMS: see the SMS channel).
    pub channel: Channel,
    pub template_id: Option<String>,
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// The From address (default: the list's sender, then the project's `email_from`).
    pub from: Option<String>,
    /// Send under this list's consent: refused unless the contact is active on it.
    pub list_id: Option<String>,
}

/// The template a send uses: saved, or made of the parts given (checked the same way).
async fn template_for(store: &Store, pid: &str, input: &SendInput) -> Result<Template> {
    let inline = input.subject.is_some() || input.html.is_some() || input.text.is_some();
    let t = match (&input.template_id, inline) {
        (Some(_), true) => {
            return Err(Error::invalid(
                "template_id",
                "give a template_id or the parts (subject, html, text), not both",
            ))
        }
        (Some(id), false) => templates::get(store, pid, id).await.map_err(|e| match e {
            Error::NotFound(_) => Error::invalid("template_id", format!("no template {id} in this project")),
            e => e,
        })?,
        (None, _) => {
            let now = Utc::now();
            let t = Template {
                id: String::new(),
                name: "one-off".into(),
                channel: input.channel,
                subject: input.subject.clone(),
                html: input.html.clone(),
                text: input.text.clone(),
                body: None,
                system: false,
                created_at: now,
                updated_at: now,
            };
            check_parts(&t)?;
            t
        }
    };
    if t.channel != input.channel {
        return Err(Error::invalid("template_id", "that template is for another channel"));
    }
    Ok(t)
}

/// Sends one email to a contact now. Refused (409, nothing sent) when the
/// contact may not receive it; the message is stored before SES is called,
/// so whatever happens to the call is on record.
pub async fn send_email(
    ms: &Messaging,
    project: &Project,
    cid: &str,
    input: SendInput,
    request_base: Option<&str>,
) -> Result<Message> {
    let store = &ms.store;
    if input.channel != Channel::Email {
        return Err(Error::invalid(
            "channel",
            "this sends email; SMS goes through the SMS channel",
        ));
    }
    let contact = contacts::get(store, &project.id, cid).await?;
    let list = match &input.list_id {
        Some(id) => {
            let list = lists::get(store, &project.id, id)
                .await
                .map_err(|_| Error::invalid("list_id", format!("no list {id} in this project")))?;
            if list.channel != Channel::Email {
                return Err(Error::invalid("list_id", "that list is not an email list"));
            }
            Some(list)
        }
        None => None,
    };
    let template = template_for(store, &project.id, &input).await?;
    let from = input
        .from
        .clone()
        .map(|f| crate::domain::normalize::email(&f).map_err(|m| Error::invalid("from", m)))
        .transpose()?
        .or_else(|| list.as_ref().map(|l| l.sender.clone()))
        .or_else(|| project.email_from.clone())
        .ok_or_else(|| {
            Error::invalid(
                "from",
                "no From address: give one, or set the project's email_from (PATCH /v1/projects/{id})",
            )
        })?;
    ms.check_from(&from)?;
    if let Err(reason) = eligibility(store, &project.id, &contact, Channel::Email, input.list_id.as_deref()).await? {
        return Err(Error::Conflict {
            code: reason.as_str(),
            field: None,
            message: format!("not sent: {}", reason.explain(Channel::Email)),
        });
    }
    let base = ms.base_url(request_base)?;
    let to = contact.email.clone().unwrap_or_default();
    let mut message = new_message(&contact, &template, input.list_id.clone(), None, &from, &to);
    let prepared = prepare(ms, project, &contact, &template, &message, &base)?;
    prepared.record_on(&mut message);
    store.put_message(&project.id, &message).await?;
    let delivered = while_throttled(3, std::time::Duration::from_millis(200), || {
        deliver(ms, &message, prepared.raw.clone())
    })
    .await;
    match delivered {
        Ok(provider_id) => {
            let sent = store.mark_sent(&project.id, &message, &provider_id).await?;
            after_send(store, &project.id, &sent).await?;
            Ok(sent)
        }
        Err(SendError::Throttled(e)) => {
            store
                .mark_unsent(
                    &project.id,
                    &message,
                    MessageState::Failed,
                    "throttled by the provider; not sent",
                )
                .await?;
            warn!(error = %e, "one-off email throttled");
            Err(Error::RateLimited { retry_after_secs: 1 })
        }
        Err(SendError::Rejected(e)) => {
            store
                .mark_unsent(&project.id, &message, MessageState::Rejected, &e)
                .await?;
            Err(Error::Conflict {
                code: "rejected",
                field: None,
                message: format!("the email provider refused this message: {e}"),
            })
        }
        Err(SendError::Other(e)) => {
            store
                .mark_unsent(
                    &project.id,
                    &message,
                    MessageState::Failed,
                    "the email provider could not be reached",
                )
                .await?;
            Err(Error::Internal(e))
        }
    }
}

pub(crate) fn new_message(
    contact: &Contact,
    template: &Template,
    list_id: Option<String>,
    broadcast_id: Option<String>,
    from: &str,
    to: &str,
) -> Message {
    let now = Utc::now();
    Message {
        id: new_id(),
        channel: template.channel,
        direction: Direction::Outbound,
        status: MessageState::Queued,
        history: vec![StatusEvent {
            status: MessageState::Queued,
            at: now,
            detail: None,
        }],
        contact_id: contact.id.clone(),
        broadcast_id,
        template_id: (!template.id.is_empty()).then(|| template.id.clone()),
        list_id,
        to: to.to_string(),
        from: from.to_string(),
        subject: None,
        body: None,
        provider_id: None,
        error: None,
        created_at: now,
        updated_at: now,
    }
}

/// An email rendered for its recipient and built into MIME.
pub(crate) struct Prepared {
    pub parts: Rendered,
    pub raw: Vec<u8>,
}

impl Prepared {
    /// What the message keeps of what was sent: the subject, and the text
    /// part (else the html) cut for the conversation view.
    pub fn record_on(&self, message: &mut Message) {
        message.subject = self.parts.subject.clone();
        message.body = self
            .parts
            .text
            .as_deref()
            .or(self.parts.html.as_deref())
            .map(preview_of);
    }
}

pub(crate) fn prepare(
    ms: &Messaging,
    project: &Project,
    contact: &Contact,
    template: &Template,
    message: &Message,
    base: &str,
) -> Result<Prepared> {
    prepare_compiled(ms, project, contact, &Compiled::new(template)?, message, base)
}

/// As [`prepare`], with the template compiled once for many recipients.
pub(crate) fn prepare_compiled(
    ms: &Messaging,
    project: &Project,
    contact: &Contact,
    template: &Compiled<'_>,
    message: &Message,
    base: &str,
) -> Result<Prepared> {
    let link = Unsubscribe {
        project_id: project.id.clone(),
        contact_id: contact.id.clone(),
        list_id: message.list_id.clone(),
        message_id: message.id.clone(),
    };
    let unsubscribe_url = ms.unsubscribe_url(base, &link);
    let mut vars = Variables::of(contact);
    vars.unsubscribe_url = Some(unsubscribe_url.clone());
    let parts = template.render(&vars)?;
    let domain = message.from.rsplit_once('@').map_or("roster.invalid", |(_, d)| d);
    let raw = email::mime(
        &Envelope {
            from: &message.from,
            from_name: project.email_from_name.as_deref(),
            reply_to: project.reply_to.as_deref(),
            to: &message.to,
            unsubscribe_url: &unsubscribe_url,
            unsubscribe_mailto: project.unsubscribe_mailto.as_deref(),
            message_id: &message.id,
            domain,
        },
        &parts,
    )?;
    Ok(Prepared { parts, raw })
}

pub(crate) async fn deliver(ms: &Messaging, message: &Message, raw: Vec<u8>) -> std::result::Result<String, SendError> {
    let out = ms.mailer.send_raw(&message.from, &message.to, raw).await;
    match &out {
        Ok(id) => info!(message_id = %message.id, to = %mask_email(&message.to), ses = %id, "email sent"),
        Err(e) => warn!(message_id = %message.id, to = %mask_email(&message.to), error = %e, "email not sent"),
    }
    out
}

/// What a sent message changes on its contact: the counters and the timeline.
pub(crate) async fn after_send(store: &Store, pid: &str, m: &Message) -> Result<()> {
    let now = Utc::now();
    store
        .add_engagement(
            pid,
            &m.contact_id,
            &Engagement {
                sends: 1,
                sent_at: Some(now),
                ..Default::default()
            },
        )
        .await?;
    let data = json!({
        "message_id": m.id, "channel": m.channel, "broadcast_id": m.broadcast_id,
        "template_id": m.template_id, "list_id": m.list_id,
    });
    activities::record(
        store,
        pid,
        &m.contact_id,
        "message_sent",
        m.subject.clone().map(|s| format!("Email sent: {s}")),
        super::as_map(data),
    )
    .await?;
    Ok(())
}

/// Filters of the messages list; each is optional.
#[derive(Debug, Default)]
pub struct MessageFilter {
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub status: Option<MessageState>,
    pub contact_id: Option<String>,
    pub broadcast_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl MessageFilter {
    fn keeps(&self, m: &Message) -> bool {
        self.channel.is_none_or(|c| c == m.channel)
            && self.direction.is_none_or(|d| d == m.direction)
            && self.status.is_none_or(|s| s == m.status)
            && self
                .broadcast_id
                .as_ref()
                .is_none_or(|b| m.broadcast_id.as_ref() == Some(b))
            && self.since.is_none_or(|t| m.created_at >= t)
            && self.until.is_none_or(|t| m.created_at < t)
    }
}

/// The project's messages (or one contact's), newest first. Ids are ULIDs,
/// so a date range bounds the ids read: `until` starts the read there and
/// `since` ends it.
pub async fn list(
    store: &Store,
    pid: &str,
    filter: &MessageFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Message>> {
    if let Some(cid) = &filter.contact_id {
        contacts::get(store, pid, cid).await?;
    }
    let mut before = match cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => filter
            .until
            .map(|t| ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_string()),
    };
    let floor = filter
        .since
        .map(|t| ulid::Ulid::from_parts(t.timestamp_millis().max(0) as u64, 0).to_string());
    let mut data = Vec::new();
    let mut more = true;
    // Filtering reads further pages; bounded per call (the cursor carries on).
    for _ in 0..10 {
        let (page, page_more) = match &filter.contact_id {
            Some(cid) => store.contact_messages(pid, cid, limit, before.as_deref()).await?,
            None => store.project_messages(pid, limit, before.as_deref()).await?,
        };
        more = page_more;
        before = page.last().map(|m| m.id.clone()).or(before);
        for m in page {
            if floor.as_ref().is_some_and(|f| &m.id < f) {
                more = false;
                break;
            }
            if filter.keeps(&m) && data.len() < limit {
                data.push(m);
            }
        }
        if data.len() >= limit || !more {
            break;
        }
    }
    let next_cursor = match (more, data.len() >= limit) {
        (_, true) => data.last().map(|m: &Message| encode_cursor(&m.id)),
        (true, false) => before.map(|b| encode_cursor(&b)),
        (false, false) => None,
    };
    Ok(Page { data, next_cursor })
}

pub async fn get(store: &Store, pid: &str, mid: &str) -> Result<Message> {
    store.find_message(pid, mid).await?.ok_or(Error::NotFound("message"))
}
