//! One-click unsubscribe (RFC 8058): a `POST` on the signed link in a
//! message unsubscribes, without a login; a `GET` (link scanners fetch every
//! link) only shows what the button would do.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use crate::domain::list::{Channel, SubscriptionStatus, Via};
use crate::domain::message::{ChannelOptOut, SkipReason};
use crate::domain::unsubscribe::Unsubscribe;
use crate::store::Store;
use crate::usecases::{activities, lists};
use crate::{Error, Result};

/// What a link would unsubscribe from, for the confirmation page.
#[derive(Debug, Serialize)]
pub struct Scope {
    pub project_name: String,
    /// `None`: every email of the project.
    pub list_name: Option<String>,
}

/// The link's contents, if this deployment signed it with `secret` (403 otherwise).
pub fn verify(secret: &[u8], token: &str) -> Result<Unsubscribe> {
    Unsubscribe::verify(secret, token).ok_or(Error::Forbidden)
}

/// Reads what the link is about; changes nothing.
pub async fn scope(store: &Store, secret: &[u8], token: &str) -> Result<Scope> {
    scope_of(store, &verify(secret, token)?).await
}

async fn scope_of(store: &Store, link: &Unsubscribe) -> Result<Scope> {
    let project = store.get_project(&link.project_id).await?.ok_or(Error::Forbidden)?;
    let list_name = match &link.list_id {
        Some(id) => store.get_list(&project.id, id).await?.map(|l| l.name),
        None => None,
    };
    Ok(Scope {
        project_name: project.name,
        list_name,
    })
}

/// Unsubscribes the link's contact: from its list, or (a message sent
/// without a list) from every email of the project. Doing it again changes
/// nothing. A contact erased since has nothing left to unsubscribe.
pub async fn unsubscribe(store: &Store, secret: &[u8], token: &str) -> Result<Scope> {
    let link = verify(secret, token)?;
    let scope = scope_of(store, &link).await?;
    let pid = &link.project_id;
    let cid = &link.contact_id;
    if store.get_contact(pid, cid).await?.is_none() {
        return Ok(scope);
    }
    let note = Some(format!("one-click unsubscribe, message {}", link.message_id));
    let on_list = match &link.list_id {
        Some(list_id) => lists::unsubscribe_if_listed(store, pid, list_id, cid, Via::Email, note.clone()).await?,
        None => false,
    };
    if !on_list {
        channel_wide(
            store,
            pid,
            cid,
            Channel::Email,
            SkipReason::Unsubscribed,
            Some(&link.message_id),
            note,
        )
        .await?;
    }
    Ok(scope)
}

/// Opts a contact out of a whole channel: the channel item that blocks every
/// send, and each active subscription on the channel's lists moved to
/// `status_on_lists` (consent records, counts). Returns whether anything changed.
pub(crate) async fn channel_wide(
    store: &Store,
    pid: &str,
    cid: &str,
    channel: Channel,
    reason: SkipReason,
    message_id: Option<&str>,
    note: Option<String>,
) -> Result<bool> {
    let opt_out = ChannelOptOut {
        channel,
        reason,
        at: Utc::now(),
        message_id: message_id.map(str::to_string),
    };
    let changed = store.put_channel_opt_out(pid, cid, &opt_out).await?;
    let status_on_lists = match reason {
        SkipReason::Suppressed => SubscriptionStatus::Suppressed,
        SkipReason::Invalid => SubscriptionStatus::Invalid,
        SkipReason::OptedOut => SubscriptionStatus::OptedOut,
        _ => SubscriptionStatus::Unsubscribed,
    };
    let via = match reason {
        SkipReason::Unsubscribed => Via::Email,
        _ => Via::Feedback,
    };
    let channel_lists: Vec<String> = store
        .all_lists(pid)
        .await?
        .into_iter()
        .filter(|l| l.channel == channel)
        .map(|l| l.id)
        .collect();
    for sub in store.contact_subscriptions(pid, cid).await? {
        let weaker = sub.status == SubscriptionStatus::Active
            || (status_on_lists == SubscriptionStatus::Suppressed && sub.status != SubscriptionStatus::Suppressed);
        if channel_lists.contains(&sub.list_id) && weaker {
            lists::set_status(store, pid, &sub.list_id, cid, status_on_lists, via, note.clone()).await?;
        }
    }
    if changed {
        let data = json!({"channel": channel, "reason": reason, "message_id": message_id});
        let summary = match channel {
            Channel::Email => format!("Email {}", reason.as_str()),
            Channel::Sms => format!("SMS {}", reason.as_str()),
        };
        activities::record(store, pid, cid, "channel_opt_out", Some(summary), super::as_map(data)).await?;
    }
    Ok(changed)
}
