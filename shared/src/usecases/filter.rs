//! Filtered audience lists: a stream of candidate ids (the project's
//! contacts in any sort order, a tag's members or a list's members, newest
//! first) is read
//! page by page and each contact checked against the filter. A call reads at
//! most `MAX_PAGES` pages and then hands back a cursor to continue from, so
//! its cost is bounded even when few contacts match.

use chrono::{DateTime, Utc};

use crate::domain::contact::{Contact, ContactStatus, ContactType, Intent, Source};
use crate::domain::list::SubscriptionStatus;
use crate::domain::tag::name_key;
use crate::store::Store;
use crate::usecases::contacts::SortOrder;
use crate::usecases::{decode_cursor, encode_cursor, Page};
use crate::{Error, Result};

const MAX_PAGES: usize = 10;
/// The most candidates one read of the stream takes.
const MAX_READ: usize = 200;

/// The audience filters (combined with AND); built by the entry points.
#[derive(Debug, Default)]
pub struct ContactFilter {
    pub source: Option<Source>,
    pub contact_type: Option<ContactType>,
    pub status: Option<ContactStatus>,
    pub intent: Option<Intent>,
    /// Tag names the contact must all carry.
    pub tags: Option<TagNames>,
    /// Tag names, at least one of which it carries.
    pub any_tags: Option<TagNames>,
    /// Tag names it must not carry.
    pub exclude_tags: Option<TagNames>,
    /// On this sending list (with `list_status`, in that status).
    pub list_id: Option<String>,
    pub list_status: Option<SubscriptionStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub has_email: Option<bool>,
    pub has_phone: Option<bool>,
}

/// Tag names, compared case-insensitively.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TagNames(Vec<String>);

impl TagNames {
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        TagNames(
            names
                .into_iter()
                .map(|t| name_key(t.as_ref()).trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
        )
    }

    /// From a query string's comma-separated list.
    pub fn split(joined: &str) -> Self {
        Self::new(joined.split(','))
    }
}

fn names(v: &Option<TagNames>) -> Vec<String> {
    v.as_ref().map(|t| t.0.clone()).unwrap_or_default()
}

impl ContactFilter {
    pub fn is_empty(&self) -> bool {
        self.source.is_none()
            && self.contact_type.is_none()
            && self.status.is_none()
            && self.intent.is_none()
            && self.tags.is_none()
            && self.any_tags.is_none()
            && self.exclude_tags.is_none()
            && self.list_id.is_none()
            && self.list_status.is_none()
            && self.created_after.is_none()
            && self.created_before.is_none()
            && self.has_email.is_none()
            && self.has_phone.is_none()
    }

    /// Everything but list membership (which is the stream itself).
    pub fn matches(&self, c: &Contact) -> bool {
        let tags: Vec<String> = c.tags.iter().map(|t| name_key(t)).collect();
        let (all, any, none) = (names(&self.tags), names(&self.any_tags), names(&self.exclude_tags));
        self.source.is_none_or(|s| c.source == Some(s))
            && self.contact_type.is_none_or(|t| c.contact_type == t)
            && self.status.is_none_or(|s| c.status == s)
            && self.intent.is_none_or(|i| c.intent == Some(i))
            && all.iter().all(|t| tags.contains(t))
            && (any.is_empty() || any.iter().any(|t| tags.contains(t)))
            && !none.iter().any(|t| tags.contains(t))
            && self.created_after.is_none_or(|t| c.created_at >= t)
            && self.created_before.is_none_or(|t| c.created_at < t)
            && self.has_email.is_none_or(|h| c.email.is_some() == h)
            && self.has_phone.is_none_or(|h| c.phone.is_some() == h)
    }
}

/// The ids of every live contact matching the filter, in no particular
/// order, stopping once more than `cap` are found; `None` when the filter
/// names a list (its members are read in pages with their status instead).
/// Candidates are a tag's members or everyone, read whole from the index
/// (one query per shard), then checked 100 contacts a read.
pub async fn select_all(store: &Store, pid: &str, f: &ContactFilter, cap: usize) -> Result<Option<Vec<String>>> {
    if f.list_id.is_some() {
        return Ok(None);
    }
    let candidates = match names(&f.tags).first() {
        Some(tag) => match store.tag_id_by_name(pid, tag).await? {
            Some(tag_id) => store.all_tag_member_ids(pid, &tag_id).await?,
            None => return Ok(Some(Vec::new())),
        },
        // The index holds live contacts only: with no filter, that is the selection.
        None if f.is_empty() => return Ok(Some(store.all_contact_ids(pid).await?)),
        None => store.all_contact_ids(pid).await?,
    };
    let mut ids = Vec::new();
    for chunk in candidates.chunks(100) {
        for c in store.get_contacts(pid, chunk).await? {
            if c.status != ContactStatus::Deleted && f.matches(&c) {
                ids.push(c.id);
            }
        }
        if ids.len() > cap {
            break;
        }
    }
    Ok(Some(ids))
}

/// Live contacts matching the filter, in `order` (newest first only when a
/// tag or list narrows the stream: those streams have no other order).
pub async fn list(
    store: &Store,
    pid: &str,
    f: &ContactFilter,
    order: SortOrder,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Contact>> {
    if f.list_status.is_some() && f.list_id.is_none() {
        return Err(Error::invalid("list_status", "list_status goes with list_id"));
    }
    let first_tag = names(&f.tags).into_iter().next();
    if (f.list_id.is_some() || first_tag.is_some()) && !order.is_newest_first() {
        return Err(Error::invalid(
            "sort",
            "contacts filtered by tags or list_id come newest first: leave out sort and order",
        ));
    }
    let tag = format!("f{}:", order.tag());
    let bad = || Error::invalid("cursor", "cursor is not one this API returned for this filter and sort");
    let mut before = match cursor.map(decode_cursor).transpose()? {
        None => None,
        Some(c) => Some(c.strip_prefix(&tag).map(str::to_string).ok_or_else(bad)?),
    };
    // The narrowest stream: a list's members, a required tag's members, or everyone.
    let tag_id = match &first_tag {
        Some(t) => match store.tag_id_by_name(pid, t).await? {
            Some(id) => Some(id),
            None => {
                return Ok(Page {
                    data: Vec::new(),
                    next_cursor: None,
                })
            }
        },
        None => None,
    };
    let cursor_at = |position: &str| Some(encode_cursor(&format!("{tag}{position}")));
    let mut data = Vec::new();
    // The first read is the page's size: a stream every candidate of which
    // passes (a tag alone, a list) fills the page at once. Each further read
    // doubles, for filters that pass few.
    let mut want = limit.max(1);
    for _ in 0..MAX_PAGES {
        // Each candidate with its position in the stream, and where the next read starts.
        let (candidates, more, next): (Vec<(String, String)>, bool, Option<String>) = if let Some(list_id) = &f.list_id
        {
            let (subs, more) = store.list_subscriptions(pid, list_id, want, before.as_deref()).await?;
            let next = subs.last().map(|s| s.contact_id.clone());
            let ids = subs
                .into_iter()
                .filter(|s| f.list_status.is_none_or(|st| st == s.status))
                .map(|s| (s.contact_id.clone(), s.contact_id))
                .collect();
            (ids, more, next)
        } else if let Some(tag_id) = &tag_id {
            let (ids, more) = store.tag_members(pid, tag_id, want, before.as_deref()).await?;
            let next = ids.last().cloned();
            (ids.into_iter().map(|id| (id.clone(), id)).collect(), more, next)
        } else {
            let (cs, more, last) = store.list_contacts(pid, order.order(), want, before.as_deref()).await?;
            (cs.into_iter().map(|(c, p)| (c.id, p)).collect(), more, last)
        };
        let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
        let contacts = store.get_contacts(pid, &ids).await?;
        for (id, position) in &candidates {
            if let Some(c) = contacts.iter().find(|c| &c.id == id) {
                if c.status != ContactStatus::Deleted && f.matches(c) {
                    data.push(c.clone());
                    if data.len() == limit {
                        return Ok(Page {
                            data,
                            next_cursor: cursor_at(position),
                        });
                    }
                }
            }
        }
        // Newest-first streams can stop once past the created range.
        let past = order.is_newest_first()
            && f.created_after
                .is_some_and(|after| contacts.iter().any(|c| c.created_at < after));
        if !more || past || next.is_none() {
            return Ok(Page {
                data,
                next_cursor: None,
            });
        }
        before = next;
        want = (want * 2).min(MAX_READ.max(limit));
    }
    let next_cursor = before.and_then(|b| cursor_at(&b));
    Ok(Page { data, next_cursor })
}
