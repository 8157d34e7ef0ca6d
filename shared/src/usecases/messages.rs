//! Messages: who may be sent what (read at the moment of sending), one-off
//! emails, and the message history of a project and of a contact.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};
use utoipa::ToSchema;

use crate::domain::contact::{Contact, ContactStatus};
use crate::domain::email::{self, Envelope};
use crate::domain::ids::new_id;
use crate::domain::links::Link;
use crate::domain::list::{Channel, SendingList, SubscriptionStatus, Via};
use crate::domain::message::{preview_of, Direction, Message, MessageState, SkipReason, StatusEvent};
use crate::domain::project::Project;
use crate::domain::template::{check_parts, Compiled, Rendered, Template, Variables};
use crate::domain::unsubscribe::Unsubscribe;
use crate::mailer::{while_throttled, Mailer, SendError};
use crate::store::messages::Engagement;
use crate::store::Store;
use crate::telemetry::{mask_email, mask_phone, mask_phones_in};
use crate::twilio::{Outgoing, Twilio};
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
    pub twilio: Twilio,
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

    /// An email's From address, checked against the sending domain (an
    /// SMS goes from its list's number, checked when the list was saved).
    pub(crate) fn check_sender(&self, channel: Channel, from: &str) -> Result<()> {
        match (&self.sender_domain, channel) {
            (Some(domain), Channel::Email) => email::check_on_domain("from", from, domain),
            _ => Ok(()),
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
    if address_of(contact, channel).is_none() {
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

/// A one-off message: a saved template, or the parts given here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// `email` or `sms`.
    pub channel: Channel,
    pub template_id: Option<String>,
    /// Email parts.
    pub subject: Option<String>,
    pub html: Option<String>,
    pub text: Option<String>,
    /// The SMS text.
    pub body: Option<String>,
    /// Email: the From address (default: the list's sender, then the project's `email_from`).
    pub from: Option<String>,
    /// Send under this list's consent: refused unless the contact is active
    /// on it. SMS: required; the list's number sends it.
    pub list_id: Option<String>,
    /// Send the message's links as short tracked links (clicks, attributed revenue).
    #[serde(default)]
    pub track_links: bool,
}

/// The template a send uses: saved, or made of the parts given (checked the same way).
async fn template_for(store: &Store, pid: &str, input: &SendInput) -> Result<Template> {
    let inline = input.subject.is_some() || input.html.is_some() || input.text.is_some() || input.body.is_some();
    let t = match (&input.template_id, inline) {
        (Some(_), true) => {
            return Err(Error::invalid(
                "template_id",
                "give a template_id or the parts (subject, html, text; body for SMS), not both",
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
                body: input.body.clone(),
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

/// The list a send goes out under, checked to be of the send's channel.
async fn list_for(store: &Store, pid: &str, id: &str, channel: Channel) -> Result<SendingList> {
    let list = lists::get(store, pid, id)
        .await
        .map_err(|_| Error::invalid("list_id", format!("no list {id} in this project")))?;
    if list.channel != channel {
        return Err(Error::invalid("list_id", "that list is for another channel"));
    }
    Ok(list)
}

/// Sends one message to a contact now. Refused (409, nothing sent) when the
/// contact may not receive it; the message is stored before the provider is
/// called, so whatever happens to the call is on record.
pub async fn send(
    ms: &Messaging,
    project: &Project,
    cid: &str,
    input: SendInput,
    request_base: Option<&str>,
) -> Result<Message> {
    let store = &ms.store;
    let channel = input.channel;
    let contact = contacts::get(store, &project.id, cid).await?;
    let list = match &input.list_id {
        Some(id) => Some(list_for(store, &project.id, id, channel).await?),
        None if channel == Channel::Sms => {
            return Err(Error::invalid(
                "list_id",
                "an SMS goes out from a sending list's number: give the list_id of an SMS list",
            ))
        }
        None => None,
    };
    let template = template_for(store, &project.id, &input).await?;
    let from = match channel {
        Channel::Email => {
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
            ms.check_sender(Channel::Email, &from)?;
            from
        }
        Channel::Sms => {
            if input.from.is_some() {
                return Err(Error::invalid("from", "an SMS is sent from its list's number"));
            }
            check_twilio(project)?;
            list.as_ref().map(|l| l.sender.clone()).unwrap_or_default()
        }
    };
    if let Err(reason) = eligibility(store, &project.id, &contact, channel, input.list_id.as_deref()).await? {
        return Err(Error::Conflict {
            code: reason.as_str(),
            field: None,
            message: format!("not sent: {}", reason.explain(channel)),
        });
    }
    let base = ms.base_url(request_base)?;
    let to = address_of(&contact, channel).unwrap_or_default();
    let mut message = new_message(&contact, &template, input.list_id.clone(), None, &from, to);
    let prepared = prepare(
        ms,
        project,
        &contact,
        &Compiled::new(&template)?,
        &message,
        &base,
        input.track_links,
    )?;
    if let Prepared::Sms { body, .. } = &prepared {
        if body.trim().is_empty() {
            return Err(Error::invalid(
                "body",
                "the SMS is empty once rendered for this contact",
            ));
        }
    }
    prepared.record_on(&mut message);
    if let Some(rate) = list.as_ref().and_then(|l| l.rate()) {
        take_number_slot(store, &project.id, &from, rate).await?;
    }
    store.put_message(&project.id, &message).await?;
    let delivered = hand_over(
        ms,
        project,
        &message,
        &prepared,
        &base,
        3,
        std::time::Duration::from_millis(200),
    )
    .await;
    let provider = match channel {
        Channel::Email => "email",
        Channel::Sms => "SMS",
    };
    match delivered {
        Ok(provider_id) => {
            let sent = store
                .mark_sent(&project.id, &message, &provider_id, accepted_state(channel))
                .await?;
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
            warn!(error = %e, "one-off message throttled");
            Err(Error::RateLimited { retry_after_secs: 1 })
        }
        Err(SendError::OptedOut(e)) => {
            opted_out_at_carrier(store, &project.id, &message, &e).await?;
            Err(Error::Conflict {
                code: SkipReason::OptedOut.as_str(),
                field: None,
                message: format!("not sent: the number opted out at the carrier ({e})"),
            })
        }
        Err(SendError::Rejected(e)) => {
            store
                .mark_unsent(&project.id, &message, MessageState::Rejected, &e)
                .await?;
            Err(Error::Conflict {
                code: "rejected",
                field: None,
                message: format!("the {provider} provider refused this message: {e}"),
            })
        }
        Err(SendError::Other(e)) => {
            store
                .mark_unsent(
                    &project.id,
                    &message,
                    MessageState::Failed,
                    &format!("the {provider} provider could not be reached"),
                )
                .await?;
            Err(Error::Internal(e))
        }
    }
}

/// Waits for a free second of the number's rate (one-off sends from one
/// number share a counter per second); 429 after a few full seconds.
async fn take_number_slot(store: &Store, pid: &str, number: &str, per_second: u32) -> Result<()> {
    let subject = format!("SMS#{pid}#{number}");
    for _ in 0..5 {
        let now = Utc::now();
        let second = now.timestamp();
        if store.hit(&subject, second, 1).await? <= per_second as u64 {
            return Ok(());
        }
        let into = now.timestamp_subsec_millis() as u64;
        tokio::time::sleep(std::time::Duration::from_millis(1000u64.saturating_sub(into) + 5)).await;
    }
    Err(Error::RateLimited { retry_after_secs: 1 })
}

/// SMS needs the project's Twilio account.
pub(crate) fn check_twilio(project: &Project) -> Result<()> {
    if project.twilio().is_none() {
        return Err(Error::Conflict {
            code: "sms_not_configured",
            field: None,
            message: "SMS needs Twilio: set twilio_account_sid and twilio_auth_token (PATCH /v1/projects/{id})".into(),
        });
    }
    Ok(())
}

/// What a message's status is once its provider took it: SES sends at
/// once; Twilio queues, then reports by status callback.
pub(crate) fn accepted_state(channel: Channel) -> MessageState {
    match channel {
        Channel::Email => MessageState::Sent,
        Channel::Sms => MessageState::Accepted,
    }
}

/// The contact's address on a channel: its email, or its phone number.
pub(crate) fn address_of(contact: &Contact, channel: Channel) -> Option<&str> {
    match channel {
        Channel::Email => contact.email.as_deref(),
        Channel::Sms => contact.phone.as_deref(),
    }
}

/// Twilio said the number replied STOP at the carrier (21610): the message
/// failed, and the number's list has them opted out.
pub(crate) async fn opted_out_at_carrier(store: &Store, pid: &str, m: &Message, why: &str) -> Result<()> {
    store.mark_unsent(pid, m, MessageState::Failed, why).await?;
    opted_out_by_carrier(store, pid, &m.contact_id, m.list_id.as_deref()).await
}

pub(crate) async fn opted_out_by_carrier(store: &Store, pid: &str, cid: &str, list_id: Option<&str>) -> Result<()> {
    if let Some(list_id) = list_id {
        let note = format!(
            "Twilio error {}: opted out at the carrier",
            crate::domain::sms::ERROR_OPTED_OUT
        );
        lists::set_status_if_listed(
            store,
            pid,
            list_id,
            cid,
            SubscriptionStatus::OptedOut,
            Via::Feedback,
            Some(note),
        )
        .await?;
    }
    Ok(())
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
        segments: None,
        reply: None,
        revenue: None,
        created_at: now,
        updated_at: now,
    }
}

/// A message rendered for its recipient, ready for its provider.
pub(crate) enum Prepared {
    /// Built into MIME.
    Email {
        parts: Rendered,
        raw: Vec<u8>,
        links: Vec<Link>,
    },
    Sms {
        body: String,
        segments: u32,
        links: Vec<Link>,
    },
}

impl Prepared {
    /// What the message keeps of what was sent: the subject, and the text
    /// part (else the html) or the SMS, cut for the conversation view.
    pub fn record_on(&self, message: &mut Message) {
        match self {
            Prepared::Email { parts, .. } => {
                message.subject = parts.subject.clone();
                message.body = parts.text.as_deref().or(parts.html.as_deref()).map(preview_of);
            }
            Prepared::Sms { body, segments, .. } => {
                message.body = Some(preview_of(body));
                message.segments = Some(*segments);
            }
        }
    }

    fn links(&self) -> &[Link] {
        match self {
            Prepared::Email { links, .. } | Prepared::Sms { links, .. } => links,
        }
    }
}

/// Renders `template` (compiled once for many recipients) for `contact`:
/// an email with its unsubscribe link and headers, or an SMS and its size.
/// With `track`, the links become short tracked links.
pub(crate) fn prepare(
    ms: &Messaging,
    project: &Project,
    contact: &Contact,
    template: &Compiled<'_>,
    message: &Message,
    base: &str,
    track: bool,
) -> Result<Prepared> {
    let mut vars = Variables::of(contact);
    if message.channel == Channel::Sms {
        let mut body = template.render(&vars)?.body.unwrap_or_default();
        let mut links = Vec::new();
        if track {
            (body, links) = crate::domain::links::track(&body, base);
        }
        let segments = crate::domain::sms::size(&body).segments;
        return Ok(Prepared::Sms { body, segments, links });
    }
    let link = Unsubscribe {
        project_id: project.id.clone(),
        contact_id: contact.id.clone(),
        list_id: message.list_id.clone(),
        message_id: message.id.clone(),
    };
    let unsubscribe_url = ms.unsubscribe_url(base, &link);
    vars.unsubscribe_url = Some(unsubscribe_url.clone());
    let mut parts = template.render(&vars)?;
    let mut links = Vec::new();
    if track {
        // The text part's links, and the same URLs where the html links them.
        if let Some(text) = parts.text.take() {
            let (tracked, made) = crate::domain::links::track(&text, base);
            parts.text = Some(tracked);
            links = made;
        }
        if let Some(html) = parts.html.as_mut() {
            for l in &links {
                *html = html.replace(
                    &format!("href=\"{}\"", l.url),
                    &format!("href=\"{}\"", crate::domain::links::short_url(base, &l.token)),
                );
            }
        }
    }
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
    Ok(Prepared::Email { parts, raw, links })
}

/// Stores the message's tracked links (once, so that a click is counted
/// however fast it comes), then hands the message to its provider, trying
/// again while it throttles (`tries` calls, waits doubling from `first`);
/// the provider's id.
pub(crate) async fn hand_over(
    ms: &Messaging,
    project: &Project,
    message: &Message,
    prepared: &Prepared,
    base: &str,
    tries: u32,
    first: std::time::Duration,
) -> std::result::Result<String, SendError> {
    if !prepared.links().is_empty() {
        ms.store
            .put_links(&project.id, message, prepared.links())
            .await
            .map_err(|e| SendError::Other(e.to_string()))?;
    }
    while_throttled(tries, first, || deliver(ms, project, message, prepared, base)).await
}

/// One call to the message's provider.
async fn deliver(
    ms: &Messaging,
    project: &Project,
    message: &Message,
    prepared: &Prepared,
    base: &str,
) -> std::result::Result<String, SendError> {
    let out = match prepared {
        Prepared::Email { raw, .. } => ms.mailer.send_raw(&message.from, &message.to, raw.clone()).await,
        Prepared::Sms { body, .. } => {
            let Some((account_sid, auth_token)) = project.twilio() else {
                return Err(SendError::Rejected("Twilio is not configured for this project".into()));
            };
            // The callback names the message, so it is found even before Twilio's SID is stored.
            let callback = format!(
                "{base}/v1/webhooks/twilio/{}/status?cid={}&mid={}",
                project.id, message.contact_id, message.id
            );
            ms.twilio
                .send(&Outgoing {
                    account_sid,
                    auth_token,
                    from: &message.from,
                    messaging_service_sid: project.twilio_messaging_service_sid.as_deref(),
                    to: &message.to,
                    body,
                    status_callback: Some(&callback),
                })
                .await
        }
    };
    let to = match message.channel {
        Channel::Email => mask_email(&message.to),
        Channel::Sms => mask_phone(&message.to),
    };
    match &out {
        Ok(id) => info!(message_id = %message.id, to = %to, provider_id = %id, "message sent"),
        // A provider's error can quote the number: masked like the recipient.
        Err(e) => {
            warn!(message_id = %message.id, to = %to, error = %mask_phones_in(&e.to_string()), "message not sent")
        }
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
    let summary = match m.channel {
        Channel::Email => m.subject.clone().map(|s| format!("Email sent: {s}")),
        Channel::Sms => m.body.as_deref().map(|b| format!("SMS sent: {}", summary_of(b))),
    };
    activities::record(store, pid, &m.contact_id, "message_sent", summary, super::as_map(data)).await?;
    Ok(())
}

/// The start of a text, for a timeline line.
pub(crate) fn summary_of(text: &str) -> String {
    let mut s: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// Filters of the messages list; each is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageFilter {
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub status: Option<MessageState>,
    pub contact_id: Option<String>,
    pub broadcast_id: Option<String>,
    /// One of our numbers (or addresses): the thread of messages sent from
    /// it or to it (SMS threads are per contact and our number).
    pub number: Option<String>,
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
            && self.number.as_ref().is_none_or(|n| &m.from == n || &m.to == n)
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
