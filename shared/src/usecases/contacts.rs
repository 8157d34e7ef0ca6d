//! Contacts: upsert by identity, read, change, delete, erase, look up, list.
//!
//! Uniqueness of email, phone, eid and referral code comes from identity
//! claims (see `store`): claim first, then merge the contact. Every path below
//! is written so that racing writers, retries and a crash between the two
//! steps end with one contact per identity.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use tracing::info;

use serde_json::json;

use crate::domain::contact::{
    changed_fields, Contact, ContactChange, ContactInput, ContactStatus, ContactType, IdentityKind, Source,
};
use crate::domain::ids::{is_id, new_id, new_referral_code};
use crate::domain::list::Via;
use crate::domain::normalize;
use crate::domain::project::Project;
use crate::domain::search;
use crate::store::contacts::{Claim, ContactWrite, Merge, StoredContact, WriteMode};
use crate::store::index::{Order, BY_ACTIVITY, BY_EMAIL, BY_NAME, BY_REFERRALS, BY_TYPE, BY_UPDATED, NEWEST};
use crate::store::Store;
use crate::telemetry::mask_email;
use crate::usecases::filter::{self, ContactFilter};
use crate::usecases::{activities, decode_cursor, encode_cursor, lists, tags, Page};
use crate::{Error, Result};

/// A claim whose contact never appeared is presumed abandoned (its writer
/// crashed) after this long, and may be taken over.
const ABANDONED_CLAIM: Duration = Duration::seconds(60);

#[derive(Debug)]
pub struct Upserted {
    pub contact: Contact,
    pub created: bool,
    /// Lists the contact was added to by this call.
    pub lists_updated: usize,
    /// Identity values left out because another contact holds them
    /// (`UpsertOptions::skip_taken`).
    pub not_kept: Vec<(IdentityKind, String)>,
}

/// Finds the contact by email, else phone, else eid, and merges the input
/// into it; creates it if there is none.
pub async fn upsert(store: &Store, project: &Project, input: ContactInput) -> Result<Upserted> {
    let change = input.into_change(&project.default_country)?;
    upsert_change(store, project, change, UpsertOptions::default()).await
}

/// How an upsert treats what the contact already has.
#[derive(Clone, Debug, Default)]
pub struct UpsertOptions {
    /// Public submissions: fill blanks only, never overwrite or erase what is
    /// known, and skip (rather than refuse) an identity another contact holds.
    pub fill_blanks: bool,
    /// The channel this came through (the change's own `source`, else `api`).
    pub source: Option<Source>,
    /// The id a new contact gets (an import derives it from the row, so a
    /// retried row finds the contact its first try created); a fresh one by default.
    pub new_id: Option<String>,
    /// Refuse to touch an existing contact (`Error::Conflict` with code `exists`).
    pub create_only: bool,
    /// Refuse to create a contact (`Error::NotFound`).
    pub update_only: bool,
    /// How the contact joins `add_to_lists` lists.
    pub via: Option<Via>,
    /// Imports: an identity another contact holds (a shared phone) is left
    /// out and reported in `Upserted::not_kept`, instead of refusing the
    /// whole write. `fill_blanks` does this too.
    pub skip_taken: bool,
}

pub async fn upsert_change(
    store: &Store,
    project: &Project,
    mut change: ContactChange,
    opts: UpsertOptions,
) -> Result<Upserted> {
    let pid = project.id.as_str();
    lists::check_lists(store, pid, &change.add_to_lists).await?;
    canonical_tags(store, pid, &mut change).await?;
    let (kind, value) = change
        .match_identity()
        .ok_or_else(|| Error::invalid("email", "one of email, phone or eid is required"))?;
    let (kind, value) = (kind, value.to_string());

    let mut resolved: Option<(String, bool)> = None;
    for _ in 0..4 {
        let (cid, created) = match resolved.take() {
            Some(r) => r,
            None => {
                if opts.update_only && store.identity_owner(pid, kind, &value).await?.is_none() {
                    return Err(Error::NotFound("contact"));
                }
                let fresh = opts.new_id.clone().unwrap_or_else(new_id);
                match store.claim_identity(pid, kind, &value, &fresh).await? {
                    Claim::Claimed | Claim::Mine => (fresh, true),
                    Claim::OwnedBy { .. } if opts.create_only => {
                        return Err(Error::Conflict {
                            code: "exists",
                            field: Some(kind.field().to_string()),
                            message: format!("a contact with this {} exists", kind.field()),
                        })
                    }
                    Claim::OwnedBy { contact_id, .. } => (contact_id, false),
                }
            }
        };
        let lenient = opts.fill_blanks || opts.skip_taken;
        let (mut claimed, not_kept) = match claim_others(store, pid, &cid, &mut change, Some(kind), lenient).await {
            Ok(claimed) => claimed,
            Err(e) => {
                if created {
                    store.release_identity(pid, kind, &value, &cid).await?;
                }
                return Err(e);
            }
        };
        let mut write = write_for(
            &change,
            WriteMode::Upsert {
                matched: (kind, value.clone()),
                held: Vec::new(),
            },
        );
        // A phone another contact holds stays where a person can see it.
        if let Some((_, phone)) = not_kept.iter().find(|(k, _)| *k == IdentityKind::Phone) {
            write.set.retain(|(f, _)| f != "phone_raw");
            write.remove.retain(|f| f != "phone_raw");
            write
                .set
                .push(("phone_raw".to_string(), AttributeValue::S(phone.clone())));
        }
        if opts.fill_blanks {
            let set = std::mem::take(&mut write.set);
            write.defaults.extend(set);
            write.remove.clear();
        }
        let source = opts.source.or(change.source).unwrap_or(Source::Api);
        write.defaults.extend(creation_defaults(Utc::now(), source)?);
        if created {
            let code = claim_referral_code(store, pid, &cid).await?;
            claimed.push((IdentityKind::ReferralCode, code.clone()));
            write
                .defaults
                .push(("referral_code".to_string(), AttributeValue::S(code)));
        }
        match store.merge_contact(pid, &cid, write).await? {
            Merge::Done { old, mut new } => {
                release_replaced(store, pid, &cid, old.as_ref(), &new).await?;
                release_unused(store, pid, &cid, &claimed, &new).await?;
                tags::sync(store, pid, &cid, old.as_ref().map_or(&[][..], |o| &o.tags), &new.tags).await?;
                if old.as_ref().is_some_and(|o| o.status == ContactStatus::Deleted)
                    && !change.set.iter().any(|(f, _)| *f == "status")
                {
                    store.undelete_contact(pid, &cid).await?;
                    new.status = ContactStatus::Active;
                }
                upgrade_source(store, pid, &mut new, source).await?;
                if old.is_some() && new.referral_code.is_none() {
                    // Its creator died before writing it; finish the job.
                    new = ensure_referral_code(store, pid, new).await?;
                }
                record_change(store, pid, old.as_ref(), &mut new, created).await?;
                reindex(store, pid, old.as_ref(), Some(&new)).await?;
                let via = opts.via.unwrap_or(Via::Api);
                let lists_updated = add_to_lists(store, pid, &new, &change.add_to_lists, via).await?;
                info!(contact_id = %cid, created, email = new.email.as_deref().map(mask_email), "contact upserted");
                return Ok(Upserted {
                    contact: new,
                    created,
                    lists_updated,
                    not_kept,
                });
            }
            Merge::Stale | Merge::Missing => {
                // The claim points at an erased contact, or at one that has
                // since taken another value: it is stale. Free what we claimed
                // for that contact and move the claim to a new one.
                release_all(store, pid, &cid, &claimed).await?;
                let fresh = new_id();
                if store.take_over_identity(pid, kind, &value, &cid, &fresh).await? {
                    resolved = Some((fresh, true));
                }
            }
        }
    }
    Err(Error::internal("upsert did not converge after 4 attempts"))
}

/// Changes a contact; identities may change too (taken → 409).
pub async fn update(store: &Store, project: &Project, cid: &str, input: ContactInput) -> Result<Contact> {
    let pid = project.id.as_str();
    let change = input.into_change(&project.default_country)?;
    let current = get(store, pid, cid).await?;
    let remaining = IdentityKind::SETTABLE.iter().any(|&kind| match change.identity(kind) {
        Some(v) => v.is_some(),
        None => current.identity(kind).is_some(),
    });
    if !remaining {
        let field = change.identities.first().map_or("email", |(k, _)| k.field());
        return Err(Error::invalid(
            field,
            "a contact keeps at least one of email, phone or eid",
        ));
    }
    let mut change = change;
    lists::check_lists(store, pid, &change.add_to_lists).await?;
    canonical_tags(store, pid, &mut change).await?;
    let (claimed, _) = claim_others(store, pid, cid, &mut change, None, false).await?;
    match store
        .merge_contact(pid, cid, write_for(&change, WriteMode::Update))
        .await?
    {
        Merge::Done { old, mut new } => {
            release_replaced(store, pid, cid, old.as_ref(), &new).await?;
            tags::sync(store, pid, cid, old.as_ref().map_or(&[][..], |o| &o.tags), &new.tags).await?;
            if let Some(source) = change.source {
                upgrade_source(store, pid, &mut new, source).await?;
            }
            record_change(store, pid, old.as_ref(), &mut new, false).await?;
            reindex(store, pid, old.as_ref(), Some(&new)).await?;
            add_to_lists(store, pid, &new, &change.add_to_lists, Via::Api).await?;
            Ok(new)
        }
        Merge::Stale | Merge::Missing => {
            release_all(store, pid, cid, &claimed).await?;
            Err(Error::NotFound("contact"))
        }
    }
}

pub async fn get(store: &Store, pid: &str, cid: &str) -> Result<Contact> {
    if !is_id(cid) {
        return Err(Error::NotFound("contact"));
    }
    match store.get_contact(pid, cid).await? {
        Some(StoredContact::Live(c)) => Ok(c),
        _ => Err(Error::NotFound("contact")),
    }
}

/// Soft delete: hidden from lists, identities kept. `erase`: personal data
/// removed and identities freed; only a tombstone with the id remains.
pub async fn delete(store: &Store, pid: &str, cid: &str, erase: bool) -> Result<()> {
    if !is_id(cid) {
        return Err(Error::NotFound("contact"));
    }
    if !erase {
        let deleted = store
            .soft_delete_contact(pid, cid)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        // Only the status changed: the tokens it had are those of it as active.
        let before = Contact {
            status: ContactStatus::Active,
            ..deleted.clone()
        };
        reindex(store, pid, Some(&before), Some(&deleted)).await?;
        return Ok(());
    }
    let old = store.erase_contact(pid, cid).await?.ok_or(Error::NotFound("contact"))?;
    tags::sync(store, pid, cid, &old.tags, &[]).await?;
    reindex(store, pid, Some(&old.clone().with_derived()), None).await?;
    for sub in store.contact_subscriptions(pid, cid).await? {
        store
            .add_list_counts(pid, &sub.list_id, cid, &[(sub.status, -1)])
            .await?;
    }
    store.purge_contact_partition(pid, cid).await?;
    if let Some(referrer) = &old.referred_by {
        store.delete_referral_link(pid, referrer, cid).await?;
    }
    for kind in IdentityKind::SETTABLE.into_iter().chain([IdentityKind::ReferralCode]) {
        if let Some(value) = old.identity(kind) {
            store.release_identity(pid, kind, value, cid).await?;
        }
    }
    info!(contact_id = %cid, "contact erased");
    Ok(())
}

/// Exact lookup by email, phone (any format) or eid.
pub async fn find(
    store: &Store,
    project: &Project,
    kind: IdentityKind,
    raw: &str,
    include_deleted: bool,
) -> Result<Option<Contact>> {
    let field = kind.field();
    let value = match kind {
        IdentityKind::Email => normalize::email(raw).map_err(|m| Error::invalid(field, m))?,
        IdentityKind::Phone => normalize::phone(raw, &project.default_country).map_err(|m| Error::invalid(field, m))?,
        IdentityKind::Eid | IdentityKind::ReferralCode => {
            normalize::text(raw).ok_or_else(|| Error::invalid(field, "empty value"))?
        }
    };
    let Some(cid) = store.identity_owner(&project.id, kind, &value).await? else {
        return Ok(None);
    };
    match store.get_contact(&project.id, &cid).await? {
        // A claim can outlive the value it names (a crash mid-change): trust the contact.
        Some(StoredContact::Live(c)) if c.identity(kind) == Some(value.as_str()) => {
            Ok((include_deleted || c.status != ContactStatus::Deleted).then_some(c))
        }
        _ => Ok(None),
    }
}

/// What a contact list is ordered by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Creation (newest first by default).
    #[default]
    CreatedAt,
    UpdatedAt,
    LastActivityAt,
    /// Referral count (most first by default; ties: newest first).
    ReferralCount,
    /// Full name, case-insensitive (A to Z by default; no name last).
    Name,
    /// Email (A to Z by default; no email last).
    Email,
    /// Type (customer, employee, lead by default).
    Type,
}

/// `asc` or `desc`; each sort has its natural default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Asc,
    Desc,
}

/// A sort and its direction, as a list is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SortOrder {
    pub sort: Sort,
    pub ascending: bool,
}

impl SortOrder {
    pub fn new(sort: Option<Sort>, direction: Option<Direction>) -> Self {
        let sort = sort.unwrap_or_default();
        let natural = matches!(sort, Sort::Name | Sort::Email | Sort::Type);
        let ascending = direction.map_or(natural, |d| d == Direction::Asc);
        SortOrder { sort, ascending }
    }

    /// Newest first: the order of every other stream (tags, lists, search).
    pub fn is_newest_first(self) -> bool {
        self == SortOrder::default()
    }

    pub fn order(self) -> Order {
        let order = match self.sort {
            Sort::CreatedAt => NEWEST,
            Sort::UpdatedAt => BY_UPDATED,
            Sort::LastActivityAt => BY_ACTIVITY,
            Sort::ReferralCount => BY_REFERRALS,
            Sort::Name => BY_NAME,
            Sort::Email => BY_EMAIL,
            Sort::Type => BY_TYPE,
        };
        order.ascending(self.ascending)
    }

    /// Cursors carry their order, so one cannot be used with another.
    pub fn tag(self) -> String {
        let sort = match self.sort {
            Sort::CreatedAt => "c",
            Sort::UpdatedAt => "u",
            Sort::LastActivityAt => "l",
            Sort::ReferralCount => "r",
            Sort::Name => "n",
            Sort::Email => "e",
            Sort::Type => "t",
        };
        format!("{sort}{}", if self.ascending { "+" } else { "-" })
    }

    /// The position inside a cursor made by [`SortOrder::cursor`].
    pub fn position(self, cursor: Option<&str>) -> Result<Option<String>> {
        let Some(cursor) = cursor else { return Ok(None) };
        let c = decode_cursor(cursor)?;
        c.strip_prefix(&self.tag())
            .and_then(|c| c.strip_prefix(':'))
            .map(|p| Some(p.to_string()))
            .ok_or_else(|| Error::invalid("cursor", "cursor is not one this API returned for this sort and order"))
    }

    pub fn cursor(self, position: &str) -> String {
        encode_cursor(&format!("{}:{position}", self.tag()))
    }
}

/// A page of the contacts a query selects: a search (`q`, in match order,
/// alone), filters, or everyone, in `order`.
pub async fn query(
    store: &Store,
    pid: &str,
    q: Option<&str>,
    filter: &ContactFilter,
    order: Option<SortOrder>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Contact>> {
    if let Some(text) = q {
        if order.is_some() {
            return Err(Error::invalid(
                "sort",
                "search results come in match order (the matched prefix A to Z): leave out sort and order with q",
            ));
        }
        if !filter.is_empty() {
            return Err(Error::invalid(
                "q",
                "q is not combined with filters: use one or the other",
            ));
        }
        return search(store, pid, text, limit, cursor).await;
    }
    let order = order.unwrap_or_else(|| SortOrder::new(None, None));
    if filter.is_empty() {
        list(store, pid, order, limit, cursor).await
    } else {
        filter::list(store, pid, filter, order, limit, cursor).await
    }
}

/// Live contacts in the given order.
pub async fn list(
    store: &Store,
    pid: &str,
    order: SortOrder,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Contact>> {
    let before = order.position(cursor)?;
    let (data, more, last) = store
        .list_contacts(pid, order.order(), limit, before.as_deref())
        .await?;
    let data = data.into_iter().map(|(c, _)| c).collect();
    let next_cursor = last.filter(|_| more).map(|p| order.cursor(&p));
    Ok(Page { data, next_cursor })
}

/// Soft-deleted contacts that match the filter (list membership included),
/// newest first, a page of up to `limit` index entries (a page may hold
/// fewer contacts, or none, and still have a next one). Only exports read
/// them: `cursor` is the previous page's `next_cursor` as it was given.
pub async fn deleted(
    store: &Store,
    pid: &str,
    f: &ContactFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Contact>> {
    use futures::{StreamExt, TryStreamExt};
    let (data, more, last) = store.list_deleted_contacts(pid, limit, cursor).await?;
    let candidates = data.into_iter().map(|(c, _)| c).filter(|c| f.matches(c));
    let data = match &f.list_id {
        None => candidates.collect(),
        Some(list_id) => {
            futures::stream::iter(candidates.map(|c| async move {
                let sub = store.get_subscription(pid, list_id, &c.id).await?;
                Ok::<_, Error>(
                    sub.is_some_and(|s| f.list_status.is_none_or(|st| s.status == st))
                        .then_some(c),
                )
            }))
            .buffered(LIST_READS)
            .try_filter_map(|c| async move { Ok(c) })
            .try_collect()
            .await?
        }
    };
    Ok(Page {
        data,
        next_cursor: last.filter(|_| more),
    })
}

/// Subscriptions read at once when a page of deleted contacts is checked
/// against a list filter.
const LIST_READS: usize = 16;

/// How many soft-deleted contacts match the filter: an index count when
/// there is no filter, else every page is read.
pub async fn count_deleted(store: &Store, pid: &str, f: &ContactFilter) -> Result<u64> {
    if f.is_empty() {
        return store.count_deleted_contacts(pid).await;
    }
    let (mut n, mut cursor) = (0u64, None::<String>);
    loop {
        let page = deleted(store, pid, f, 1000, cursor.as_deref()).await?;
        n += page.data.len() as u64;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// How many contacts a query selects, exactly: an index count for the whole
/// audience; otherwise every page of the query is read (its cost grows with
/// what it selects, so callers ask for it).
pub async fn count(store: &Store, pid: &str, q: Option<&str>, f: &ContactFilter) -> Result<u64> {
    if q.is_none() && f.is_empty() {
        return store.count_contacts(pid).await;
    }
    Ok(select_ids(store, pid, q, f, usize::MAX).await?.len() as u64)
}

/// The ids of the contacts a query selects (a search, filters, or everyone),
/// each once, reading its pages until the end or until more than `cap` are found.
pub async fn select_ids(
    store: &Store,
    pid: &str,
    q: Option<&str>,
    f: &ContactFilter,
    cap: usize,
) -> Result<Vec<String>> {
    if q.is_none() {
        if let Some(ids) = filter::select_all(store, pid, f, cap).await? {
            return Ok(ids);
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match q {
            Some(q) => search(store, pid, q, COUNT_PAGE, cursor.as_deref()).await?,
            None if f.is_empty() => list(store, pid, SortOrder::default(), COUNT_PAGE, cursor.as_deref()).await?,
            None => filter::list(store, pid, f, SortOrder::default(), COUNT_PAGE, cursor.as_deref()).await?,
        };
        for c in page.data {
            if seen.insert(c.id.clone()) {
                ids.push(c.id);
            }
        }
        match page.next_cursor {
            Some(c) if ids.len() <= cap => cursor = Some(c),
            _ => return Ok(ids),
        }
    }
}

const COUNT_PAGE: usize = 1000;

async fn add_to_lists(store: &Store, pid: &str, contact: &Contact, list_ids: &[String], via: Via) -> Result<usize> {
    let mut added = 0;
    for id in list_ids {
        if lists::add_if_absent(store, pid, id, contact, via).await? {
            added += 1;
        }
    }
    Ok(added)
}

/// Keeps the search index in step with a write (`None`: no contact).
pub(crate) async fn reindex(store: &Store, pid: &str, old: Option<&Contact>, new: Option<&Contact>) -> Result<()> {
    let Some(cid) = new.or(old).map(|c| c.id.clone()) else {
        return Ok(());
    };
    let old_tokens = old.map(search::tokens).unwrap_or_default();
    let new_tokens = new.map(search::tokens).unwrap_or_default();
    store.reindex_contact(pid, &cid, &old_tokens, &new_tokens).await
}

/// Contacts with an email, name, company or phone starting with `q`
/// (case-insensitive; phone by digits), in match order.
pub async fn search(store: &Store, pid: &str, q: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Contact>> {
    let prefix = search::query_prefix(q).ok_or_else(|| Error::invalid("q", "q is empty"))?;
    let after = match cursor.map(decode_cursor).transpose()? {
        None => None,
        Some(c) => Some(
            c.strip_prefix("q:")
                .filter(|p| p.starts_with(&prefix))
                .map(str::to_string)
                .ok_or_else(|| Error::invalid("cursor", "cursor is not one this API returned for this search"))?,
        ),
    };
    let (ids, last, more) = store.search_contacts(pid, &prefix, limit, after.as_deref()).await?;
    let data: Vec<Contact> = store
        .get_contacts(pid, &ids)
        .await?
        .into_iter()
        .filter(|c| c.status != ContactStatus::Deleted)
        .collect();
    let next_cursor = if more {
        last.map(|l| encode_cursor(&format!("q:{l}")))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// Tags in a change take the project's spelling (new ones are created).
async fn canonical_tags(store: &Store, pid: &str, change: &mut ContactChange) -> Result<()> {
    for (field, value) in change.set.iter_mut() {
        if *field == "tags" {
            let names: Vec<String> = serde_json::from_value(value.clone()).unwrap_or_default();
            *value = json!(tags::resolve(store, pid, &names).await?);
        }
    }
    Ok(())
}

/// Puts what a write did on the timeline: the creation, or the fields it
/// changed; `new` then shows the activity's time as its last activity.
async fn record_change(
    store: &Store,
    pid: &str,
    old: Option<&Contact>,
    new: &mut Contact,
    created: bool,
) -> Result<()> {
    let (kind, summary, data) = if created {
        ("contact_created", None, json!({"source": new.source}))
    } else {
        // No old version and not ours: a racing writer created it and records that.
        let Some(old) = old else { return Ok(()) };
        let (fields, values) = changed_fields(old, new);
        if fields.is_empty() {
            return Ok(());
        }
        let summary = format!("Changed {}", fields.join(", "));
        (
            "contact_updated",
            Some(summary),
            json!({"fields": fields, "changes": values}),
        )
    };
    let activity = activities::record(store, pid, &new.id, kind, summary, super::as_map(data)).await?;
    new.last_activity_at = new.last_activity_at.max(Some(activity.occurred_at));
    Ok(())
}

fn attr<T: serde::Serialize>(v: &T) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(Error::internal)
}

/// What a contact starts with unless the write says otherwise.
pub fn creation_defaults(now: chrono::DateTime<Utc>, source: Source) -> Result<Vec<(String, AttributeValue)>> {
    Ok(vec![
        ("created_at".to_string(), attr(&now)?),
        ("type".to_string(), attr(&ContactType::default())?),
        ("status".to_string(), attr(&ContactStatus::Active)?),
        ("source".to_string(), attr(&source)?),
        ("source_rank".to_string(), AttributeValue::N(source.rank().to_string())),
    ])
}

/// The UpdateItem for a change: its fields and its identities.
pub fn write_for(change: &ContactChange, mode: WriteMode) -> ContactWrite {
    let mut set: Vec<(String, AttributeValue)> = change
        .set
        .iter()
        .filter_map(|(f, v)| serde_dynamo::to_attribute_value(v).ok().map(|a| (f.to_string(), a)))
        .collect();
    let mut remove: Vec<String> = change.remove.iter().map(|f| f.to_string()).collect();
    for (kind, value) in &change.identities {
        match value {
            Some(v) => set.push((kind.field().to_string(), AttributeValue::S(v.clone()))),
            None => remove.push(kind.field().to_string()),
        }
    }
    ContactWrite {
        set,
        defaults: Vec::new(),
        remove,
        mode,
    }
}

/// Values claimed for a write, and (lenient) those left out as another's.
type Claimed = (Vec<(IdentityKind, String)>, Vec<(IdentityKind, String)>);

/// Claims every identity value the change sets (but `skip`) for `cid`. On a
/// conflict, frees what it claimed and names the field; `lenient` leaves
/// the value out of the change instead and returns it.
async fn claim_others(
    store: &Store,
    pid: &str,
    cid: &str,
    change: &mut ContactChange,
    skip: Option<IdentityKind>,
    lenient: bool,
) -> Result<Claimed> {
    let mut claimed = Vec::new();
    let mut refused = Vec::new();
    for (kind, value) in &change.identities {
        let (kind, Some(value)) = (*kind, value) else {
            continue;
        };
        if Some(kind) == skip {
            continue;
        }
        let ok = match store.claim_identity(pid, kind, value, cid).await? {
            Claim::Claimed => {
                claimed.push((kind, value.clone()));
                true
            }
            Claim::Mine => true,
            Claim::OwnedBy { contact_id, claimed_at } => {
                let stale = claim_is_stale(store, pid, &contact_id, kind, value, claimed_at).await?;
                let moved = stale && store.take_over_identity(pid, kind, value, &contact_id, cid).await?;
                if moved {
                    claimed.push((kind, value.clone()));
                }
                moved
            }
        };
        if !ok && lenient {
            refused.push((kind, value.clone()));
        } else if !ok {
            release_all(store, pid, cid, &claimed).await?;
            return Err(Error::taken(kind.field()));
        }
    }
    change
        .identities
        .retain(|(kind, _)| !refused.iter().any(|(k, _)| k == kind));
    Ok((claimed, refused))
}

/// Frees values claimed for this write that the contact did not take (a
/// fill-blanks write keeps the value the contact already had).
async fn release_unused(
    store: &Store,
    pid: &str,
    cid: &str,
    claimed: &[(IdentityKind, String)],
    new: &Contact,
) -> Result<()> {
    for (kind, value) in claimed {
        if new.identity(*kind) != Some(value.as_str()) {
            store.release_identity(pid, *kind, value, cid).await?;
        }
    }
    Ok(())
}

/// A claim is stale when its contact was erased, no longer holds the value, or
/// never appeared although the claim is old.
async fn claim_is_stale(
    store: &Store,
    pid: &str,
    owner: &str,
    kind: IdentityKind,
    value: &str,
    claimed_at: Option<chrono::DateTime<Utc>>,
) -> Result<bool> {
    Ok(match store.get_contact(pid, owner).await? {
        Some(StoredContact::Erased) => true,
        Some(StoredContact::Live(c)) => c.identity(kind) != Some(value),
        None => claimed_at.is_none_or(|at| Utc::now() - at > ABANDONED_CLAIM),
    })
}

async fn release_all(store: &Store, pid: &str, cid: &str, claimed: &[(IdentityKind, String)]) -> Result<()> {
    for (kind, value) in claimed {
        store.release_identity(pid, *kind, value, cid).await?;
    }
    Ok(())
}

/// Frees the identity values a write replaced or removed.
pub(crate) async fn release_replaced(
    store: &Store,
    pid: &str,
    cid: &str,
    old: Option<&Contact>,
    new: &Contact,
) -> Result<()> {
    let Some(old) = old else { return Ok(()) };
    for kind in IdentityKind::SETTABLE {
        if let Some(before) = old.identity(kind) {
            if new.identity(kind) != Some(before) {
                store.release_identity(pid, kind, before, cid).await?;
            }
        }
    }
    Ok(())
}

pub(crate) async fn upgrade_source(store: &Store, pid: &str, contact: &mut Contact, source: Source) -> Result<()> {
    let current = contact.source.map_or(0, Source::rank);
    if source.rank() > current && store.upgrade_source(pid, &contact.id, source).await? {
        contact.source = Some(source);
    }
    Ok(())
}

pub(crate) async fn claim_referral_code(store: &Store, pid: &str, cid: &str) -> Result<String> {
    for _ in 0..8 {
        let code = new_referral_code();
        match store
            .claim_identity(pid, IdentityKind::ReferralCode, &code, cid)
            .await?
        {
            Claim::Claimed | Claim::Mine => return Ok(code),
            Claim::OwnedBy { .. } => continue,
        }
    }
    Err(Error::internal("could not find a free referral code"))
}

pub(crate) async fn ensure_referral_code(store: &Store, pid: &str, contact: Contact) -> Result<Contact> {
    let cid = contact.id.clone();
    let code = claim_referral_code(store, pid, &cid).await?;
    let write = ContactWrite {
        set: Vec::new(),
        defaults: vec![("referral_code".to_string(), AttributeValue::S(code.clone()))],
        remove: Vec::new(),
        mode: WriteMode::Update,
    };
    let new = match store.merge_contact(pid, &cid, write).await? {
        Merge::Done { new, .. } => new,
        _ => contact,
    };
    if new.referral_code.as_deref() != Some(code.as_str()) {
        // Someone else gave it a code first.
        store
            .release_identity(pid, IdentityKind::ReferralCode, &code, &cid)
            .await?;
    }
    Ok(new)
}
