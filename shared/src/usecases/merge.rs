//! Merging two contacts into one. Identities, tags, lists, activities,
//! records and referral data move to the survivor; the other contact is
//! erased. A preview shows the result and what would move, writing nothing.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::domain::contact::Contact;
use crate::domain::list::{Subscription, SubscriptionStatus};
use crate::domain::merge::{plan, MergePlan};
use crate::store::contacts::{ContactWrite, Merge, WriteMode};
use crate::store::Store;
use crate::usecases::{activities, contacts, tags};
use crate::{Error, Result};

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Moves {
    /// Identity fields (email, phone, eid) the survivor takes over.
    pub identities: Vec<String>,
    /// Fields filled or combined on the survivor.
    pub fields: Vec<String>,
    pub tags: Vec<String>,
    pub lists: usize,
    pub activities: usize,
    pub records: usize,
    /// Contacts the merged one had referred.
    pub referred: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeResult {
    /// The survivor (as it would be, for a preview).
    pub contact: Contact,
    pub merged_id: String,
    pub moves: Moves,
    pub preview: bool,
}

fn apply(survivor: &Contact, p: &MergePlan) -> Result<Contact> {
    let mut v = serde_json::to_value(survivor).map_err(Error::internal)?;
    if let Value::Object(m) = &mut v {
        for (field, value) in &p.set {
            m.insert(field.to_string(), value.clone());
        }
    }
    Ok(serde_json::from_value::<Contact>(v)
        .map_err(Error::internal)?
        .with_derived())
}

/// The stricter of two statuses on the same list: an opt-out always wins.
fn stricter(a: SubscriptionStatus, b: SubscriptionStatus) -> SubscriptionStatus {
    let weight = |s: SubscriptionStatus| match s {
        SubscriptionStatus::Suppressed => 5,
        SubscriptionStatus::OptedOut => 4,
        SubscriptionStatus::Unsubscribed => 3,
        SubscriptionStatus::Invalid => 2,
        SubscriptionStatus::Active => 1,
    };
    if weight(b) > weight(a) {
        b
    } else {
        a
    }
}

pub async fn merge(store: &Store, pid: &str, survivor_id: &str, other_id: &str, preview: bool) -> Result<MergeResult> {
    if survivor_id == other_id {
        return Err(Error::invalid("other_id", "a contact cannot be merged into itself"));
    }
    let survivor = contacts::get(store, pid, survivor_id).await?;
    let other = contacts::get(store, pid, other_id)
        .await
        .map_err(|_| Error::invalid("other_id", "no such contact in this project"))?;
    let p = plan(&survivor, &other);
    let activities_items = store.partition_items(pid, other_id, "A#").await?;
    let records = store.partition_items(pid, other_id, "R#").await?;
    let consent = store.partition_items(pid, other_id, "CONSENT#").await?;
    let links = store.partition_items(pid, other_id, "REFD#").await?;
    let subs = store.contact_subscriptions(pid, other_id).await?;
    let merged = apply(&survivor, &p)?;
    let moves = Moves {
        identities: p.moved.iter().map(|(k, _)| k.field().to_string()).collect(),
        fields: p
            .set
            .iter()
            .map(|(f, _)| f.to_string())
            .filter(|f| !["email", "phone", "eid", "source_rank"].contains(&f.as_str()))
            .collect(),
        tags: other
            .tags
            .iter()
            .filter(|t| !survivor.tags.iter().any(|s| s.to_lowercase() == t.to_lowercase()))
            .cloned()
            .collect(),
        lists: subs.len(),
        activities: activities_items.len(),
        records: records.len(),
        referred: links.len(),
    };
    if preview {
        return Ok(MergeResult {
            contact: merged,
            merged_id: other_id.to_string(),
            moves,
            preview: true,
        });
    }

    // Identities first, so that nothing can claim them in between.
    for (kind, value) in &p.moved {
        if !store
            .take_over_identity(pid, *kind, value, other_id, survivor_id)
            .await?
        {
            return Err(Error::Conflict {
                code: "merge_conflict",
                field: Some(kind.field().into()),
                message: "the contacts changed during the merge; try again".into(),
            });
        }
    }
    let write = ContactWrite {
        set: p
            .set
            .iter()
            .filter_map(|(f, v)| serde_dynamo::to_attribute_value(v).ok().map(|a| (f.to_string(), a)))
            .collect(),
        defaults: Vec::new(),
        remove: Vec::new(),
        mode: WriteMode::Update,
    };
    let mut after = match store.merge_contact(pid, survivor_id, write).await? {
        Merge::Done { new, .. } => new,
        _ => return Err(Error::NotFound("contact")),
    };
    tags::sync(store, pid, survivor_id, &survivor.tags, &after.tags).await?;
    contacts::reindex(store, pid, Some(&survivor), Some(&after)).await?;
    tags::sync(store, pid, other_id, &other.tags, &[]).await?;
    for sub in subs {
        move_subscription(store, pid, survivor_id, sub).await?;
    }
    store.move_items(pid, survivor_id, activities_items, true).await?;
    store.move_items(pid, survivor_id, records, true).await?;
    store.move_items(pid, survivor_id, consent, true).await?;
    let referees: Vec<String> = links
        .iter()
        .filter_map(|l| l.get("contact_id").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    store.move_items(pid, survivor_id, links, false).await?;
    for referee in &referees {
        store.replace_referred_by(pid, referee, Some(survivor_id)).await?;
    }
    if let Some(referrer) = other.referred_by.as_deref().filter(|r| *r != survivor_id) {
        store.delete_referral_link(pid, referrer, other_id).await?;
        if survivor.referred_by.is_none() {
            store.replace_referred_by(pid, survivor_id, Some(referrer)).await?;
            store.put_referral_link(pid, referrer, survivor_id).await?;
            after.referred_by = Some(referrer.to_string());
        } else if let Some(counts) = store.add_to_contact(pid, referrer, &[("referral_count", -1.0)]).await? {
            if let Some(count) = counts
                .get("referral_count")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
            {
                store.sync_ref_sort(pid, referrer, count).await?;
            }
        }
    }
    if p.set.iter().any(|(f, _)| *f == "referral_count") {
        store.sync_ref_sort(pid, survivor_id, after.referral_count).await?;
    }

    // The other contact is gone: erased, its remaining identities freed.
    contacts::delete(store, pid, other_id, true).await?;
    let data = json!({"merged_contact_id": other_id, "identities": moves.identities, "fields": moves.fields});
    let activity = activities::record(
        store,
        pid,
        survivor_id,
        "contacts_merged",
        Some("Merged another contact into this one".into()),
        super::as_map(data),
    )
    .await?;
    after.last_activity_at = after.last_activity_at.max(Some(activity.occurred_at));
    Ok(MergeResult {
        contact: after,
        merged_id: other_id.to_string(),
        moves,
        preview: false,
    })
}

/// The other contact's subscription joins the survivor's; on a list both
/// are on, the stricter status stays.
async fn move_subscription(store: &Store, pid: &str, survivor_id: &str, sub: Subscription) -> Result<()> {
    let list = sub.list_id.clone();
    let mine = store.get_subscription(pid, &list, survivor_id).await?;
    let status = mine.as_ref().map_or(sub.status, |m| stricter(m.status, sub.status));
    if mine.as_ref().map(|m| m.status) != Some(status) {
        let moved = Subscription {
            contact_id: survivor_id.to_string(),
            status,
            opted_out_at: if status == sub.status {
                sub.opted_out_at
            } else {
                mine.as_ref().and_then(|m| m.opted_out_at)
            },
            ..sub.clone()
        };
        store
            .put_subscription(pid, &moved, mine.as_ref().map(|m| m.status))
            .await?;
        let mut deltas = vec![(status, 1)];
        if let Some(m) = &mine {
            deltas.push((m.status, -1));
        }
        store.add_list_counts(pid, &list, &sub.contact_id, &deltas).await?;
    }
    if store
        .delete_subscription(pid, &list, &sub.contact_id, sub.status)
        .await?
    {
        store
            .add_list_counts(pid, &list, &sub.contact_id, &[(sub.status, -1)])
            .await?;
    }
    Ok(())
}
