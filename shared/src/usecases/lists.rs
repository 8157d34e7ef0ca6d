//! Sending lists, subscriptions and consent. Every status change is a consent
//! record; per-list counters move with each change; a contact who opted out
//! is never put back by an `add to list` — only an explicit status change,
//! which is recorded, does that.

use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::contact::Contact;
use crate::domain::ids::new_id;
use crate::domain::list::{Channel, ConsentRecord, ListInput, SendingList, Subscription, SubscriptionStatus, Via};
use crate::domain::project::Project;
use crate::store::Store;
use crate::usecases::{activities, contacts, decode_cursor, encode_cursor, Page};
use crate::{Error, Result};

pub async fn create(store: &Store, project: &Project, input: ListInput) -> Result<SendingList> {
    let v = input.validated(true, None, &project.default_country)?;
    let now = Utc::now();
    let list = SendingList {
        id: new_id(),
        name: v.name.unwrap_or_default(),
        channel: v
            .channel
            .ok_or_else(|| Error::invalid("channel", "channel is email or sms"))?,
        sender: v.sender.unwrap_or_default(),
        description: v.description,
        messages_per_second: v.messages_per_second,
        count_active: 0,
        count_opted_out: 0,
        count_suppressed: 0,
        count_invalid: 0,
        count_unsubscribed: 0,
        created_at: now,
        updated_at: now,
    };
    store.put_list(&project.id, &list).await?;
    Ok(list)
}

pub async fn get(store: &Store, pid: &str, id: &str) -> Result<SendingList> {
    store.get_list(pid, id).await?.ok_or(Error::NotFound("list"))
}

pub async fn all(store: &Store, pid: &str) -> Result<Vec<SendingList>> {
    let mut lists = store.all_lists(pid).await?;
    lists.sort_by_cached_key(|l| l.name.to_lowercase());
    Ok(lists)
}

pub async fn update(store: &Store, project: &Project, id: &str, input: ListInput) -> Result<SendingList> {
    let list = get(store, &project.id, id).await?;
    let v = input.validated(false, Some(list.channel), &project.default_country)?;
    store
        .update_list(&project.id, id, &v)
        .await?
        .ok_or(Error::NotFound("list"))
}

/// Deletes an empty list. A list that still holds subscriptions (and so the
/// record of who opted out) is kept.
pub async fn delete(store: &Store, pid: &str, id: &str) -> Result<()> {
    get(store, pid, id).await?;
    let (subs, _) = store.list_subscriptions(pid, id, 1, None).await?;
    if !subs.is_empty() {
        return Err(Error::Conflict {
            code: "list_not_empty",
            field: None,
            message: "remove the list's contacts first; opted-out contacts stay as the record of their opt-out".into(),
        });
    }
    store.delete_list(pid, id).await
}

/// Sets a contact's status on a list (joining it if needed). Unchanged →
/// nothing written. Returns the subscription and whether it changed.
pub async fn set_status(
    store: &Store,
    pid: &str,
    list_id: &str,
    cid: &str,
    status: SubscriptionStatus,
    via: Via,
    note: Option<String>,
) -> Result<(Subscription, bool)> {
    get(store, pid, list_id).await?;
    contacts::get(store, pid, cid).await?;
    for _ in 0..5 {
        let old = store.get_subscription(pid, list_id, cid).await?;
        if let Some(old) = old.as_ref().filter(|o| o.status == status) {
            return Ok((old.clone(), false));
        }
        let now = Utc::now();
        let sub = Subscription {
            list_id: list_id.to_string(),
            contact_id: cid.to_string(),
            status,
            via: old.as_ref().map_or(via, |o| o.via),
            subscribed_at: match (&old, status) {
                (Some(o), s) if s != SubscriptionStatus::Active || o.status == SubscriptionStatus::Active => {
                    o.subscribed_at
                }
                _ => now,
            },
            opted_out_at: if status.is_opt_out() {
                Some(now)
            } else {
                old.as_ref().and_then(|o| o.opted_out_at)
            },
            updated_at: now,
        };
        let from = old.as_ref().map(|o| o.status);
        if !store.put_subscription(pid, &sub, from).await? {
            continue; // Changed under us: read again.
        }
        let mut deltas = vec![(status, 1)];
        if let Some(from) = from {
            deltas.push((from, -1));
        }
        store.add_list_counts(pid, list_id, cid, &deltas).await?;
        record_consent(store, pid, &sub, from, via, note).await?;
        return Ok((sub, true));
    }
    Err(Error::internal("subscription kept changing under us"))
}

/// Unsubscribes the contact from a list, if the list is still there
/// (deleted lists have no one left to unsubscribe). Whether it was.
pub async fn unsubscribe_if_listed(
    store: &Store,
    pid: &str,
    list_id: &str,
    cid: &str,
    via: Via,
    note: Option<String>,
) -> Result<bool> {
    set_status_if_listed(store, pid, list_id, cid, SubscriptionStatus::Unsubscribed, via, note).await
}

/// As [`set_status`], if the list is still there (a message's list may have
/// been deleted since). Whether it was.
pub async fn set_status_if_listed(
    store: &Store,
    pid: &str,
    list_id: &str,
    cid: &str,
    status: SubscriptionStatus,
    via: Via,
    note: Option<String>,
) -> Result<bool> {
    if store.get_list(pid, list_id).await?.is_none() {
        return Ok(false);
    }
    set_status(store, pid, list_id, cid, status, via, note).await?;
    Ok(true)
}

/// Adds the contact as active unless it is on the list already, in any
/// status: an opt-out is never undone by adding again. A contact whose phone
/// could not be stored (`phone_raw`) joins an SMS list as `invalid`.
pub async fn add_if_absent(store: &Store, pid: &str, list_id: &str, contact: &Contact, via: Via) -> Result<bool> {
    let now = Utc::now();
    let unusable_phone = contact.phone.is_none() && contact.phone_raw.is_some();
    // Read only for those few: most contacts join as active whatever the channel.
    let status = if unusable_phone && get(store, pid, list_id).await?.channel == Channel::Sms {
        SubscriptionStatus::Invalid
    } else {
        SubscriptionStatus::Active
    };
    let sub = Subscription {
        list_id: list_id.to_string(),
        contact_id: contact.id.clone(),
        status,
        via,
        subscribed_at: now,
        opted_out_at: None,
        updated_at: now,
    };
    if !store.put_subscription(pid, &sub, None).await? {
        return Ok(false);
    }
    store.add_list_counts(pid, list_id, &contact.id, &[(status, 1)]).await?;
    record_consent(store, pid, &sub, None, via, None).await?;
    Ok(true)
}

/// Takes a contact off a list. Opt-outs stay: they are the record that the
/// person must not be messaged.
pub async fn remove(store: &Store, pid: &str, list_id: &str, cid: &str) -> Result<()> {
    let sub = store
        .get_subscription(pid, list_id, cid)
        .await?
        .ok_or(Error::NotFound("subscription"))?;
    if sub.status.is_opt_out() {
        return Err(Error::Conflict {
            code: "opted_out",
            field: None,
            message: "this contact opted out of the list; the opt-out is kept".into(),
        });
    }
    if store.delete_subscription(pid, list_id, cid, sub.status).await? {
        store.add_list_counts(pid, list_id, cid, &[(sub.status, -1)]).await?;
        let data = json!({"list_id": list_id, "removed": true, "status": sub.status});
        activities::record(
            store,
            pid,
            cid,
            "list_changed",
            Some("Removed from a list".into()),
            super::as_map(data),
        )
        .await?;
    }
    Ok(())
}

async fn record_consent(
    store: &Store,
    pid: &str,
    sub: &Subscription,
    from: Option<SubscriptionStatus>,
    via: Via,
    note: Option<String>,
) -> Result<()> {
    let record = ConsentRecord {
        id: new_id(),
        list_id: sub.list_id.clone(),
        contact_id: sub.contact_id.clone(),
        from,
        to: sub.status,
        via,
        at: sub.updated_at,
        note,
    };
    store.put_consent(pid, &record).await?;
    let data = json!({"list_id": sub.list_id, "from": from, "to": sub.status, "via": via});
    let summary = match from {
        None => "Joined a list".to_string(),
        Some(f) => format!("List status {} → {}", f.as_str(), sub.status.as_str()),
    };
    activities::record(
        store,
        pid,
        &sub.contact_id,
        "list_changed",
        Some(summary),
        super::as_map(data),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub subscription: Subscription,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
}

/// A list's members, newest first, optionally of one status.
pub async fn members(
    store: &Store,
    pid: &str,
    list_id: &str,
    status: Option<SubscriptionStatus>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Member>> {
    get(store, pid, list_id).await?;
    let mut before = cursor.map(decode_cursor).transpose()?;
    let mut picked: Vec<Subscription> = Vec::new();
    let mut more = true;
    // Filtering by status reads more pages of the list; bounded per call.
    for _ in 0..10 {
        let (page, page_more) = store.list_subscriptions(pid, list_id, limit, before.as_deref()).await?;
        more = page_more;
        before = page.last().map(|s| s.contact_id.clone()).or(before);
        for sub in page {
            if status.is_none_or(|s| s == sub.status) && picked.len() < limit {
                picked.push(sub);
            }
        }
        if picked.len() >= limit || !more {
            break;
        }
    }
    let ids: Vec<String> = picked.iter().map(|s| s.contact_id.clone()).collect();
    let contacts = store.get_contacts(pid, &ids).await?;
    let data: Vec<Member> = picked
        .into_iter()
        .map(|sub| {
            let c = contacts.iter().find(|c| c.id == sub.contact_id);
            Member {
                email: c.and_then(|c| c.email.clone()),
                phone: c.and_then(|c| c.phone.clone()),
                name: c.and_then(|c| c.full_name.clone()),
                subscription: sub,
            }
        })
        .collect();
    let next_cursor = match (more, data.len() >= limit) {
        (_, true) => data.last().map(|m| encode_cursor(&m.subscription.contact_id)),
        (true, false) => before.map(|b| encode_cursor(&b)),
        (false, false) => None,
    };
    Ok(Page { data, next_cursor })
}

/// Lists on an upsert (`add_to_lists`): checked before anything is written.
pub async fn check_lists(store: &Store, pid: &str, ids: &[String]) -> Result<()> {
    if ids.len() > 50 {
        return Err(Error::invalid("add_to_lists", "at most 50 lists"));
    }
    for id in ids {
        if store.get_list(pid, id).await?.is_none() {
            return Err(Error::invalid("add_to_lists", format!("no list {id} in this project")));
        }
    }
    Ok(())
}

pub async fn contact_lists(store: &Store, pid: &str, cid: &str) -> Result<Vec<Subscription>> {
    contacts::get(store, pid, cid).await?;
    store.contact_subscriptions(pid, cid).await
}

pub async fn consent(store: &Store, pid: &str, cid: &str) -> Result<Vec<ConsentRecord>> {
    contacts::get(store, pid, cid).await?;
    store.consent_history(pid, cid).await
}

/// Whether a message on this list may go to this contact.
pub async fn can_send(store: &Store, project: &Project, list_id: &str, cid: &str) -> Result<bool> {
    Ok(store
        .get_subscription(&project.id, list_id, cid)
        .await?
        .is_some_and(|s| s.status.can_receive()))
}
