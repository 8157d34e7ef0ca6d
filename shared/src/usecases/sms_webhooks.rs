//! Twilio's webhooks: inbound messages (threaded per number, keywords
//! answered in TwiML) and status callbacks of the messages we sent. Every
//! request is checked against `X-Twilio-Signature` with the project's auth
//! token before anything is read or stored: the signature names the
//! project's account, whichever number of a Messaging Service pool the
//! message came through (looking the sender up by service SID is what
//! broke real messages elsewhere).

use chrono::Utc;
use serde_json::json;
use tracing::{info, warn};

use crate::domain::contact::ContactInput;
use crate::domain::contact::Source;
use crate::domain::ids::new_id;
use crate::domain::list::{Channel, SendingList, SubscriptionStatus, Via};
use crate::domain::message::{ChannelOptOut, Direction, Message, MessageState, SkipReason, StatusEvent};
use crate::domain::project::Project;
use crate::domain::sms::{self, Keyword};
use crate::store::messages::{Engagement, MessageRef};
use crate::store::Store;
use crate::telemetry::mask_phone;
use crate::usecases::contacts::{self, UpsertOptions};
use crate::usecases::{activities, as_map, broadcasts, lists, messages};
use crate::{Error, Result};

/// A webhook as Twilio sent it: the URL it was sent to (as Twilio was
/// told it: `PUBLIC_BASE_URL` + path + query), its form parameters in
/// order, and its signature header.
pub struct Webhook<'a> {
    pub url: &'a str,
    pub params: &'a [(String, String)],
    pub signature: Option<&'a str>,
}

impl Webhook<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Forbidden unless the project's auth token signed it.
    fn verify(&self, project: &Project) -> Result<()> {
        let Some((_, token)) = project.twilio() else {
            warn!(project = %project.id, "Twilio webhook for a project without Twilio settings");
            return Err(Error::Forbidden);
        };
        let Some(signature) = self.signature else {
            return Err(Error::Forbidden);
        };
        if !sms::verify(token, self.url, self.params, signature) {
            warn!(project = %project.id, "Twilio webhook with a signature that does not match");
            return Err(Error::Forbidden);
        }
        Ok(())
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.param(name)
            .ok_or_else(|| Error::invalid(name, format!("Twilio's {name} is missing")))
    }
}

/// An inbound SMS: stored as a message of the sender's thread (a new number
/// becomes a contact), keywords applied; the TwiML answer. A retry (the same
/// `MessageSid`) changes nothing and gets the same answer.
pub async fn inbound(store: &Store, project: &Project, hook: &Webhook<'_>) -> Result<String> {
    hook.verify(project)?;
    let pid = project.id.as_str();
    let sid = hook
        .param("MessageSid")
        .or(hook.param("SmsSid"))
        .ok_or_else(|| Error::invalid("MessageSid", "Twilio's MessageSid is missing"))?;
    let from = hook.required("From")?;
    let to = hook.required("To")?;
    let body = hook.param("Body").unwrap_or_default();

    // Seen before, and stored: the same answer, nothing changed.
    let earlier = store.message_by_provider_id(Channel::Sms, sid).await?;
    if let Some(r) = &earlier {
        if let Some(m) = store.get_message(pid, &r.contact_id, &r.message_id).await? {
            return Ok(sms::twiml(m.reply.as_deref()));
        }
    }
    let (contact, created) = sender_contact(store, project, from).await?;
    let our_number = crate::domain::normalize::phone(to, &project.default_country).unwrap_or_else(|_| to.to_string());
    let list = number_list(store, pid, &our_number).await?;
    // The claim: a concurrent retry stops here; a retry after a crash past
    // this point finds the claim without the message and carries on with its id.
    let target = match earlier {
        Some(r) => r,
        None => {
            let target = MessageRef {
                project_id: pid.to_string(),
                contact_id: contact.id.clone(),
                message_id: new_id(),
            };
            if !store.claim_provider_id(Channel::Sms, sid, &target).await? {
                let r = store
                    .message_by_provider_id(Channel::Sms, sid)
                    .await?
                    .ok_or_else(|| Error::internal("a claimed MessageSid has no pointer"))?;
                let m = store.get_message(pid, &r.contact_id, &r.message_id).await?;
                return Ok(sms::twiml(m.and_then(|m| m.reply).as_deref()));
            }
            target
        }
    };
    if created {
        if let Some(l) = &list {
            lists::add_if_absent(store, pid, &l.id, &contact, Via::Inbound).await?;
        }
    }
    let keyword = sms::keyword(body);
    let reply = match keyword {
        Some(k) => Some(apply_keyword(store, project, &contact.id, list.as_ref(), k, body).await?),
        None => None,
    };
    let now = Utc::now();
    let message = Message {
        id: target.message_id.clone(),
        channel: Channel::Sms,
        direction: Direction::Inbound,
        status: MessageState::Received,
        history: vec![StatusEvent {
            status: MessageState::Received,
            at: now,
            detail: None,
        }],
        contact_id: target.contact_id.clone(),
        broadcast_id: None,
        template_id: None,
        list_id: list.as_ref().map(|l| l.id.clone()),
        to: our_number,
        from: contact.phone.clone().unwrap_or_else(|| from.to_string()),
        subject: None,
        body: Some(crate::domain::message::preview_of(body)),
        provider_id: Some(sid.to_string()),
        error: None,
        segments: hook
            .param("NumSegments")
            .and_then(|n| n.parse().ok())
            .or(Some(sms::size(body).segments)),
        reply: reply.clone(),
        revenue: None,
        created_at: now,
        updated_at: now,
    };
    if store.put_message(pid, &message).await? {
        let change = Engagement {
            received: 1,
            ..Default::default()
        };
        store.add_engagement(pid, &message.contact_id, &change).await?;
        let data =
            json!({ "message_id": message.id, "channel": "sms", "list_id": message.list_id, "keyword": keyword });
        activities::record(
            store,
            pid,
            &message.contact_id,
            "sms_received",
            Some(format!("SMS received: {}", messages::summary_of(body))),
            as_map(data),
        )
        .await?;
        info!(project = %pid, from = %mask_phone(from), message_id = %message.id, "SMS received");
    }
    Ok(sms::twiml(reply.as_deref()))
}

/// The contact of the number a message came from, made if new (source `sms`).
async fn sender_contact(
    store: &Store,
    project: &Project,
    from: &str,
) -> Result<(crate::domain::contact::Contact, bool)> {
    let input = ContactInput {
        phone: Some(Some(from.to_string())),
        ..Default::default()
    };
    let change = input.into_change(&project.default_country)?;
    let up = contacts::upsert_change(
        store,
        project,
        change,
        UpsertOptions {
            fill_blanks: true,
            source: Some(Source::Sms),
            ..UpsertOptions::default()
        },
    )
    .await?;
    Ok((up.contact, up.created))
}

/// The project's SMS list whose sender is `number`, if any.
async fn number_list(store: &Store, pid: &str, number: &str) -> Result<Option<SendingList>> {
    Ok(lists::all(store, pid)
        .await?
        .into_iter()
        .find(|l| l.channel == Channel::Sms && l.sender == number))
}

/// What a keyword does to the contact's consent; the answer to send back.
async fn apply_keyword(
    store: &Store,
    project: &Project,
    cid: &str,
    list: Option<&SendingList>,
    keyword: Keyword,
    body: &str,
) -> Result<String> {
    let pid = project.id.as_str();
    let note = format!(
        "replied {}",
        body.trim_matches(|c: char| !c.is_alphanumeric()).to_uppercase()
    );
    let texts = project.sms();
    match keyword {
        Keyword::Help => Ok(texts.sms_help_text),
        Keyword::Stop | Keyword::StopAll => {
            let mut lists_left: Vec<String> = Vec::new();
            if keyword == Keyword::StopAll {
                for sub in store.contact_subscriptions(pid, cid).await? {
                    if store
                        .get_list(pid, &sub.list_id)
                        .await?
                        .is_some_and(|l| l.channel == Channel::Sms)
                    {
                        lists_left.push(sub.list_id);
                    }
                }
            }
            if let Some(l) = list {
                if !lists_left.contains(&l.id) {
                    lists_left.push(l.id.clone());
                }
            }
            for list_id in &lists_left {
                lists::set_status(
                    store,
                    pid,
                    list_id,
                    cid,
                    SubscriptionStatus::OptedOut,
                    Via::Inbound,
                    Some(note.clone()),
                )
                .await?;
            }
            // A STOP to a number of no list (or STOPALL) still holds: for every SMS.
            if list.is_none() || keyword == Keyword::StopAll {
                store
                    .put_channel_opt_out(
                        pid,
                        cid,
                        &ChannelOptOut {
                            channel: Channel::Sms,
                            reason: SkipReason::OptedOut,
                            at: Utc::now(),
                            message_id: None,
                        },
                    )
                    .await?;
            }
            Ok(texts.sms_opt_out_text)
        }
        Keyword::Start => {
            store.lift_channel_opt_out(pid, cid, Channel::Sms).await?;
            if let Some(l) = list {
                // A suppression or an invalid number is not the person's to lift.
                let current = store.get_subscription(pid, &l.id, cid).await?.map(|s| s.status);
                if !matches!(
                    current,
                    Some(SubscriptionStatus::Suppressed | SubscriptionStatus::Invalid)
                ) {
                    lists::set_status(
                        store,
                        pid,
                        &l.id,
                        cid,
                        SubscriptionStatus::Active,
                        Via::Inbound,
                        Some(note),
                    )
                    .await?;
                }
            }
            Ok(texts.sms_opt_in_text)
        }
    }
}

/// A status callback: the message moves forward only (a late `sent` after
/// `delivered` is kept in the history and changes nothing), its error code
/// is kept, and its contact and broadcast count what it became.
pub async fn status(store: &Store, project: &Project, hook: &Webhook<'_>, named: Option<(&str, &str)>) -> Result<()> {
    hook.verify(project)?;
    let pid = project.id.as_str();
    let sid = hook.required("MessageSid")?;
    let Some(state) = hook.param("MessageStatus").and_then(sms::status_of) else {
        return Ok(());
    };
    // The callback URL names the message (it may come before the SID is stored); else the SID does.
    let (cid, mid) = match named {
        Some((cid, mid)) => (cid.to_string(), mid.to_string()),
        None => match store.message_by_provider_id(Channel::Sms, sid).await? {
            Some(r) => (r.contact_id, r.message_id),
            None => {
                warn!(project = %pid, "status callback for a message we do not know");
                return Ok(());
            }
        },
    };
    let error_code = hook.param("ErrorCode").filter(|c| *c != "0");
    let word = hook.param("MessageStatus").unwrap_or_default();
    let event = StatusEvent {
        status: state,
        at: Utc::now(),
        detail: Some(match error_code {
            Some(c) => format!("twilio {word} (Twilio error {c})"),
            None => format!("twilio {word}"),
        }),
    };
    let key = format!("twilio:{}", state.as_str());
    let Some(m) = store.add_message_event(pid, &cid, &mid, &event, &key).await? else {
        return Ok(()); // Gone, or this status was recorded before.
    };
    if let Some(code) = error_code {
        store
            .set_message_error(pid, &cid, &mid, &format!("Twilio error {code}"))
            .await?;
        if code.parse() == Ok(sms::ERROR_OPTED_OUT) {
            messages::opted_out_by_carrier(store, pid, &cid, m.list_id.as_deref()).await?;
        }
    }
    let (kind, counter) = match state {
        MessageState::Delivered => ("sms_delivered", "delivered"),
        MessageState::Failed | MessageState::Undelivered => ("sms_failed", "bounced"),
        _ => return Ok(()),
    };
    if let Some(bid) = &m.broadcast_id {
        broadcasts::count_event(store, pid, bid, &mid, counter).await?;
    }
    let data = json!({ "message_id": mid, "status": state, "error_code": error_code });
    let summary = match state {
        MessageState::Delivered => "SMS delivered".to_string(),
        _ => format!(
            "SMS {}{}",
            state.as_str(),
            error_code.map(|c| format!(" (Twilio error {c})")).unwrap_or_default()
        ),
    };
    activities::record(store, pid, &cid, kind, Some(summary), as_map(data)).await?;
    Ok(())
}
