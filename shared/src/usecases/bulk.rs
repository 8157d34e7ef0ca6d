//! Bulk operations on a selection of contacts: by ids, or by a filter
//! ("all matching", later pages included). The selection is fixed before
//! anything is changed, so contacts written meanwhile are not swept in.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::contact::{ContactInput, ContactType};
use crate::domain::list::SubscriptionStatus;
use crate::domain::project::Project;
use crate::store::index::NEWEST;
use crate::store::Store;
use crate::usecases::{contacts, lists, tags};
use crate::{Error, Result};

/// Most contacts one synchronous bulk call acts on.
pub const MAX_SYNC: usize = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Every live contact of the project.
    #[serde(default)]
    pub all: bool,
    /// Contacts carrying this tag (name).
    pub tag: Option<String>,
    /// Contacts on this list (optionally of `list_status`).
    pub list_id: Option<String>,
    pub list_status: Option<SubscriptionStatus>,
    /// Contacts matching this search.
    pub q: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    pub ids: Option<Vec<String>>,
    pub filter: Option<Filter>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Delete,
    Tag,
    Untag,
    AddToList,
    RemoveFromList,
    SetType,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub selection: Selection,
    pub action: Action,
    /// `delete` only: must be exactly `DELETE`.
    pub confirm: Option<String>,
    /// `tag` / `untag`.
    pub tags: Option<Vec<String>>,
    /// `add_to_list` / `remove_from_list`.
    pub list_id: Option<String>,
    /// `set_type`.
    #[serde(rename = "type")]
    pub contact_type: Option<ContactType>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkOutcome {
    pub action: Action,
    /// Contacts in the selection.
    pub matched: usize,
    /// Contacts the action changed.
    pub updated: usize,
    pub failed: Vec<Failure>,
}

/// Checks the request before anything is read or written.
fn validate(r: &BulkRequest) -> Result<()> {
    match r.action {
        Action::Delete if r.confirm.as_deref() != Some("DELETE") => {
            return Err(Error::invalid(
                "confirm",
                "type DELETE in `confirm` to delete these contacts",
            ));
        }
        Action::Tag | Action::Untag if r.tags.as_ref().is_none_or(|t| t.is_empty()) => {
            return Err(Error::invalid("tags", "name at least one tag"));
        }
        Action::AddToList | Action::RemoveFromList if r.list_id.is_none() => {
            return Err(Error::invalid("list_id", "name the list"))
        }
        Action::SetType if r.contact_type.is_none() => return Err(Error::invalid("type", "name the type")),
        _ => {}
    }
    match (&r.selection.ids, &r.selection.filter) {
        (Some(_), Some(_)) | (None, None) => Err(Error::invalid("selection", "select by ids or by filter")),
        (Some(ids), None) if ids.is_empty() || ids.len() > MAX_SYNC => {
            Err(Error::invalid("selection.ids", format!("1 to {MAX_SYNC} ids")))
        }
        _ => Ok(()),
    }
}

/// The ids a filter selects, up to `MAX_SYNC` (more is an error for now).
async fn resolve(store: &Store, project: &Project, f: &Filter) -> Result<Vec<String>> {
    let pid = project.id.as_str();
    let chosen = [f.all, f.tag.is_some(), f.list_id.is_some(), f.q.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if chosen != 1 {
        return Err(Error::invalid("selection.filter", "use one of all, tag, list_id or q"));
    }
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next): (Vec<String>, Option<String>) = if f.all {
            let (cs, more, last) = store.list_contacts(pid, NEWEST, 500, cursor.as_deref()).await?;
            (cs.into_iter().map(|(c, _)| c.id).collect(), last.filter(|_| more))
        } else if let Some(tag) = &f.tag {
            let Some(tag_id) = store.tag_id_by_name(pid, tag).await? else {
                return Err(Error::invalid("selection.filter.tag", "no such tag"));
            };
            let (ids, more) = store.tag_members(pid, &tag_id, 500, cursor.as_deref()).await?;
            let next = if more { ids.last().cloned() } else { None };
            (ids, next)
        } else if let Some(list_id) = &f.list_id {
            lists::get(store, pid, list_id)
                .await
                .map_err(|_| Error::invalid("selection.filter.list_id", "no such list"))?;
            let (subs, more) = store.list_subscriptions(pid, list_id, 500, cursor.as_deref()).await?;
            let next = if more {
                subs.last().map(|s| s.contact_id.clone())
            } else {
                None
            };
            let ids = subs
                .into_iter()
                .filter(|s| f.list_status.is_none_or(|st| st == s.status))
                .map(|s| s.contact_id)
                .collect();
            (ids, next)
        } else {
            let q = f.q.as_deref().unwrap_or_default();
            let page = contacts::search(store, pid, q, 500, cursor.as_deref()).await?;
            let next = page.next_cursor.clone();
            (page.data.into_iter().map(|c| c.id).collect(), next)
        };
        for id in page {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.len() > MAX_SYNC {
            return Err(Error::invalid(
                "selection",
                format!("the selection holds more than {MAX_SYNC} contacts; narrow it (bulk jobs for larger selections are not available yet)"),
            ));
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok(ids),
        }
    }
}

pub async fn run(store: &Store, project: &Project, request: BulkRequest) -> Result<BulkOutcome> {
    validate(&request)?;
    let pid = project.id.as_str();
    if let Some(list_id) = &request.list_id {
        lists::get(store, pid, list_id)
            .await
            .map_err(|_| Error::invalid("list_id", "no such list"))?;
    }
    let ids = match (&request.selection.ids, &request.selection.filter) {
        (Some(ids), _) => ids.clone(),
        (None, Some(f)) => resolve(store, project, f).await?,
        (None, None) => Vec::new(),
    };
    let mut outcome = BulkOutcome {
        action: request.action,
        matched: ids.len(),
        updated: 0,
        failed: Vec::new(),
    };
    let tag_names = request.tags.clone().unwrap_or_default();
    for id in &ids {
        let done: Result<bool> = match request.action {
            Action::Delete => contacts::delete(store, pid, id, false).await.map(|_| true),
            Action::Tag => tags::assign(store, pid, id, &tag_names, &[]).await.map(|_| true),
            Action::Untag => tags::assign(store, pid, id, &[], &tag_names).await.map(|_| true),
            Action::AddToList => {
                let list_id = request.list_id.as_deref().unwrap_or_default();
                match contacts::get(store, pid, id).await {
                    Ok(_) => lists::add_if_absent(store, pid, list_id, id, crate::domain::list::Via::Api).await,
                    Err(e) => Err(e),
                }
            }
            Action::RemoveFromList => lists::remove(store, pid, request.list_id.as_deref().unwrap_or_default(), id)
                .await
                .map(|_| true),
            Action::SetType => {
                let input = ContactInput {
                    contact_type: Some(request.contact_type),
                    ..Default::default()
                };
                contacts::update(store, project, id, input).await.map(|_| true)
            }
        };
        match done {
            Ok(true) => outcome.updated += 1,
            Ok(false) => {}
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(e) => outcome.failed.push(Failure {
                id: id.clone(),
                error: e.to_string(),
            }),
        }
    }
    Ok(outcome)
}
