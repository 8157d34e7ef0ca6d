//! Filtered audience lists: a stream of candidate ids (the project's
//! contacts, a tag's members or a list's members, newest first) is read
//! page by page and each contact checked against the filter. A call reads at
//! most `MAX_PAGES` pages and then hands back a cursor to continue from, so
//! its cost is bounded even when few contacts match.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::contact::{Contact, ContactStatus, ContactType, Intent, Source};
use crate::domain::list::SubscriptionStatus;
use crate::domain::tag::name_key;
use crate::store::index::NEWEST;
use crate::store::Store;
use crate::usecases::{decode_cursor, encode_cursor, Page};
use crate::{Error, Result};

const MAX_PAGES: usize = 10;
const PAGE: usize = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ContactFilter {
    pub source: Option<Source>,
    #[serde(rename = "type")]
    pub contact_type: Option<ContactType>,
    pub status: Option<ContactStatus>,
    pub intent: Option<Intent>,
    /// Comma-separated tag names the contact must all carry.
    pub tags: Option<String>,
    /// Comma-separated tag names, at least one of which it carries.
    pub any_tags: Option<String>,
    /// Comma-separated tag names it must not carry.
    pub exclude_tags: Option<String>,
    /// On this sending list (with `list_status`, in that status).
    pub list_id: Option<String>,
    pub list_status: Option<SubscriptionStatus>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub has_email: Option<bool>,
    pub has_phone: Option<bool>,
}

fn names(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .map(|s| {
            s.split(',')
                .map(name_key)
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default()
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

/// Live contacts matching the filter, newest first.
pub async fn list(
    store: &Store,
    pid: &str,
    f: &ContactFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<Contact>> {
    if f.list_status.is_some() && f.list_id.is_none() {
        return Err(Error::invalid("list_status", "list_status goes with list_id"));
    }
    let bad = || Error::invalid("cursor", "cursor is not one this API returned for this filter");
    let mut before = match cursor.map(decode_cursor).transpose()? {
        None => None,
        Some(c) => Some(c.strip_prefix("f:").map(str::to_string).ok_or_else(bad)?),
    };
    // The narrowest stream: a list's members, a required tag's members, or everyone.
    let first_tag = names(&f.tags).into_iter().next();
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
    let mut data = Vec::new();
    for _ in 0..MAX_PAGES {
        let (ids, more): (Vec<String>, bool) = if let Some(list_id) = &f.list_id {
            let (subs, more) = store.list_subscriptions(pid, list_id, PAGE, before.as_deref()).await?;
            let ids = subs
                .into_iter()
                .filter(|s| f.list_status.is_none_or(|st| st == s.status))
                .map(|s| s.contact_id)
                .collect();
            (ids, more)
        } else if let Some(tag_id) = &tag_id {
            store.tag_members(pid, tag_id, PAGE, before.as_deref()).await?
        } else {
            let (cs, more) = store.list_contacts(pid, NEWEST, PAGE, before.as_deref()).await?;
            (cs.into_iter().map(|c| c.id).collect(), more)
        };
        let contacts = store.get_contacts(pid, &ids).await?;
        for id in &ids {
            if let Some(c) = contacts.iter().find(|c| &c.id == id) {
                if c.status != ContactStatus::Deleted && f.matches(c) {
                    data.push(c.clone());
                    if data.len() == limit {
                        let next_cursor = Some(encode_cursor(&format!("f:{id}")));
                        return Ok(Page { data, next_cursor });
                    }
                }
            }
        }
        // Streams are newest first: stop once past the created range.
        let past = f
            .created_after
            .is_some_and(|after| contacts.iter().any(|c| c.created_at < after));
        if !more || past || ids.is_empty() {
            return Ok(Page {
                data,
                next_cursor: None,
            });
        }
        before = ids.last().cloned();
    }
    let next_cursor = before.map(|b| encode_cursor(&format!("f:{b}")));
    Ok(Page { data, next_cursor })
}
