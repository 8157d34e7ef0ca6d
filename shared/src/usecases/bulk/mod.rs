//! Bulk operations on a selection of contacts: by ids, or by a filter
//! ("all matching", later pages included). The selection is fixed before
//! anything is changed, so contacts that match only later are not swept in.
//! Up to `MAX_SYNC` contacts are acted on within the call; a larger
//! selection becomes a job (`job`) worked through SQS in chunks.

mod job;

use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::domain::bulk::{Action, Failure, Filter};
use crate::domain::bulk::{BatchOutcome, Change};
use crate::domain::contact::{ContactInput, ContactType};
use crate::domain::list::Via;
use crate::domain::project::Project;
use crate::queue::Queue;
use crate::store::Store;
use crate::usecases::filter::{ContactFilter, TagNames};
use crate::usecases::{contacts, lists, tags};
use crate::{Error, Result};
pub use job::{handle_message, status, BulkJobStatus, BulkMessage};

/// Most contacts one call acts on before the selection becomes a job.
pub const MAX_SYNC: usize = 1_000;
/// Most ids a request may name.
pub const MAX_IDS: usize = 10_000;
/// Contacts acted on at once (each action is a few requests in sequence).
const IN_FLIGHT: usize = 8;

/// What bulk jobs need: the table, and the queue their planning and chunks go through.
#[derive(Clone)]
pub struct Jobs {
    pub store: Store,
    pub queue: Queue,
    /// Ids per chunk (one SQS message and one worker run each).
    pub chunk_ids: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Up to 10,000 contact ids.
    pub ids: Option<Vec<String>>,
    pub filter: Option<Filter>,
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
pub struct BulkOutcome {
    pub action: Action,
    /// Contacts in the selection.
    pub matched: usize,
    /// Contacts the action changed.
    pub updated: usize,
    pub failed: Vec<Failure>,
}

/// A selection done within the call, or the job that works a larger one.
pub enum Started {
    Done(BulkOutcome),
    Job(BulkJobStatus),
}

/// Checks the request before anything is read or written.
fn validate(r: &BulkRequest) -> Result<Change> {
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
        (Some(ids), None) if ids.is_empty() || ids.len() > MAX_IDS => {
            Err(Error::invalid("selection.ids", format!("1 to {MAX_IDS} ids")))
        }
        _ => Ok(Change {
            tags: r.tags.clone().unwrap_or_default(),
            list_id: r.list_id.clone(),
            contact_type: r.contact_type,
        }),
    }
}

/// Checks what the action points at, once: the list exists; tags to add
/// exist (created now, so that contacts acted on at once do not race to
/// create them).
async fn prepare(store: &Store, pid: &str, action: Action, mut change: Change) -> Result<Change> {
    if let Some(list_id) = &change.list_id {
        lists::get(store, pid, list_id)
            .await
            .map_err(|_| Error::invalid("list_id", "no such list"))?;
    }
    if action == Action::Tag {
        change.tags = tags::resolve(store, pid, &change.tags).await?;
    }
    Ok(change)
}

/// A filter selection as an audience query: a search, or filters.
pub(crate) fn audience(f: &Filter) -> Result<(Option<String>, ContactFilter)> {
    let chosen = [f.all, f.q.is_some(), f.narrows()].iter().filter(|x| **x).count();
    if f.all && chosen > 1 {
        return Err(Error::invalid(
            "selection.filter.all",
            "all selects every contact: leave out q and the other filters",
        ));
    }
    if f.q.is_some() && f.narrows() {
        return Err(Error::invalid(
            "selection.filter.q",
            "q is not combined with filters: use one or the other",
        ));
    }
    if chosen == 0 {
        return Err(Error::invalid(
            "selection.filter",
            "set all: true, q, or at least one filter",
        ));
    }
    if f.list_status.is_some() && f.list_id.is_none() {
        return Err(Error::invalid(
            "selection.filter.list_status",
            "list_status goes with list_id",
        ));
    }
    let names = |v: &Option<Vec<String>>| v.as_ref().map(TagNames::new);
    let required = f.all_tags();
    let filter = ContactFilter {
        source: f.source,
        contact_type: f.contact_type,
        status: f.status,
        intent: f.intent,
        tags: (!required.is_empty()).then(|| TagNames::new(&required)),
        any_tags: names(&f.any_tags),
        exclude_tags: names(&f.exclude_tags),
        list_id: f.list_id.clone(),
        list_status: f.list_status,
        created_after: f.created_after,
        created_before: f.created_before,
        has_email: f.has_email,
        has_phone: f.has_phone,
    };
    Ok((f.q.clone(), filter))
}

/// The ids a filter selects, each once; stops once more than `cap` are found.
pub(crate) async fn select(store: &Store, pid: &str, f: &Filter, cap: usize) -> Result<Vec<String>> {
    let (q, filter) = audience(f)?;
    if let Some(list_id) = &filter.list_id {
        lists::get(store, pid, list_id)
            .await
            .map_err(|_| Error::invalid("selection.filter.list_id", "no such list"))?;
    }
    contacts::select_ids(store, pid, q.as_deref(), &filter, cap).await
}

/// Acts on the selection now, or starts a job when it holds more than
/// `MAX_SYNC` contacts (`jobs` absent: larger selections are refused).
pub async fn run(store: &Store, jobs: Option<&Jobs>, project: &Project, request: BulkRequest) -> Result<Started> {
    let change = validate(&request)?;
    let pid = project.id.as_str();
    let change = prepare(store, pid, request.action, change).await?;
    let ids = match (request.selection.ids, &request.selection.filter) {
        (Some(ids), _) => crate::domain::bulk::distinct(&ids),
        (None, Some(f)) => select(store, pid, f, MAX_SYNC).await?,
        (None, None) => Vec::new(),
    };
    if ids.len() > MAX_SYNC {
        let jobs = jobs.ok_or_else(|| {
            Error::invalid(
                "selection",
                format!("the selection holds more than {MAX_SYNC} contacts and bulk jobs are not set up here"),
            )
        })?;
        let filter = request.selection.filter;
        let id_list = if filter.is_some() { None } else { Some(ids) };
        return Ok(Started::Job(
            job::start(jobs, pid, request.action, change, filter, id_list).await?,
        ));
    }
    let results = apply_all(store, project, request.action, &change, &ids).await?;
    let tally = tally(&ids, results, usize::MAX)?;
    Ok(Started::Done(BulkOutcome {
        action: request.action,
        matched: ids.len(),
        updated: tally.updated as usize,
        failed: tally.kept,
    }))
}

/// The action on each contact, `IN_FLIGHT` at a time, results in the order
/// of `ids` (the tags named are looked up once, for all of them).
pub(crate) async fn apply_all(
    store: &Store,
    project: &Project,
    action: Action,
    change: &Change,
    ids: &[String],
) -> Result<Vec<Result<bool>>> {
    let tags = match action {
        Action::Tag | Action::Untag => {
            tags::resolve_ids(store, &project.id, &change.tags, action == Action::Tag).await?
        }
        _ => Vec::new(),
    };
    let tags = tags.as_slice();
    // Owned ids: a future borrowing the closure's argument is not `Send` for every lifetime.
    Ok(stream::iter(ids.iter().cloned())
        .map(|id| async move { apply(store, project, action, change, tags, &id).await })
        .buffered(IN_FLIGHT)
        .collect()
        .await)
}

/// Counts results; keeps up to `keep` failures. An internal error fails the
/// whole batch (to be tried again) rather than being blamed on one contact.
pub(crate) fn tally(ids: &[String], results: Vec<Result<bool>>, keep: usize) -> Result<BatchOutcome> {
    let mut out = BatchOutcome::default();
    for (id, result) in ids.iter().zip(results) {
        match result {
            Ok(true) => out.updated += 1,
            Ok(false) => {}
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(e) => {
                out.failed += 1;
                if out.kept.len() < keep {
                    out.kept.push(Failure {
                        id: id.clone(),
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The action on one contact. Doing it again is harmless: a job's batch
/// that was cut short is done again whole.
async fn apply(
    store: &Store,
    project: &Project,
    action: Action,
    change: &Change,
    tags: &[tags::Resolved],
    id: &str,
) -> Result<bool> {
    let pid = project.id.as_str();
    let list_id = change.list_id.as_deref().unwrap_or_default();
    match action {
        Action::Delete => contacts::delete(store, pid, id, false).await.map(|_| true),
        Action::Tag => tags::apply(store, pid, id, tags, &[]).await.map(|_| true),
        Action::Untag => tags::apply(store, pid, id, &[], tags).await.map(|_| true),
        Action::AddToList => {
            let contact = contacts::get(store, pid, id).await?;
            lists::add_if_absent(store, pid, list_id, &contact, Via::Api).await
        }
        Action::RemoveFromList => lists::remove(store, pid, list_id, id).await.map(|_| true),
        Action::SetType => {
            let input = ContactInput {
                contact_type: Some(change.contact_type),
                ..Default::default()
            };
            contacts::update(store, project, id, input).await.map(|_| true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(v: serde_json::Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_filter_selects_with_all_or_q_or_filters_never_two_of_them() {
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"all": true, "tag": "a"}),
            serde_json::json!({"all": true, "q": "a"}),
            serde_json::json!({"q": "ann", "status": "active"}),
            serde_json::json!({"list_status": "active"}),
        ] {
            assert!(audience(&filter(bad.clone())).is_err(), "{bad}");
        }
        let (q, f) = audience(&filter(serde_json::json!({"q": "ann"}))).unwrap();
        assert_eq!((q.as_deref(), f.is_empty()), (Some("ann"), true));
        let (_, f) = audience(&filter(
            serde_json::json!({"tag": "VIP", "tags": ["a,b"], "has_email": true}),
        ))
        .unwrap();
        assert_eq!(f.tags, Some(TagNames::new(["vip", "a,b"])));
        assert_eq!(f.has_email, Some(true));
    }

    #[test]
    fn a_tally_counts_every_result_and_keeps_the_first_failures() {
        let ids: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let results = vec![
            Ok(true),
            Err(Error::NotFound("contact")),
            Ok(false),
            Err(Error::NotFound("contact")),
            Ok(true),
        ];
        let t = tally(&ids, results, 1).unwrap();
        assert_eq!((t.updated, t.failed, t.kept.len()), (2, 2, 1));
        assert_eq!(t.kept[0].id, "1");
        assert!(tally(&ids[..1], vec![Err(Error::internal("x"))], 9).is_err());
    }
}
