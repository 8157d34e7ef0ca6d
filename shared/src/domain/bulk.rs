//! Bulk operations: what a caller selects, what is done to each contact of
//! the selection, and the life of a bulk job (a selection too large for one
//! call). No I/O here: the work lives in `usecases::bulk`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::contact::{ContactStatus, ContactType, Intent, Source};
use crate::domain::list::SubscriptionStatus;

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

/// What the action needs besides the contact (each action reads its own).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Change {
    pub tags: Vec<String>,
    pub list_id: Option<String>,
    pub contact_type: Option<ContactType>,
}

/// A selection by filter: `all`, or `q`, or any of the audience filters of
/// `GET …/contacts` (combined with AND). Contacts on later pages are included.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Every live contact of the project.
    #[serde(default)]
    pub all: bool,
    /// Contacts matching this search (as `q` of the audience list).
    pub q: Option<String>,
    /// Contacts carrying this tag (name); the same as `tags: [name]`.
    pub tag: Option<String>,
    /// Tag names the contact must all carry.
    pub tags: Option<Vec<String>>,
    /// Tag names at least one of which it carries.
    pub any_tags: Option<Vec<String>>,
    /// Tag names it must not carry.
    pub exclude_tags: Option<Vec<String>>,
    /// On this sending list (with `list_status`, in that status).
    pub list_id: Option<String>,
    pub list_status: Option<SubscriptionStatus>,
    pub source: Option<Source>,
    #[serde(rename = "type")]
    pub contact_type: Option<ContactType>,
    pub status: Option<ContactStatus>,
    pub intent: Option<Intent>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub has_email: Option<bool>,
    pub has_phone: Option<bool>,
}

impl Filter {
    /// Whether any audience filter (beyond `all` and `q`) is set.
    pub fn narrows(&self) -> bool {
        self.tag.is_some()
            || self.tags.is_some()
            || self.any_tags.is_some()
            || self.exclude_tags.is_some()
            || self.list_id.is_some()
            || self.list_status.is_some()
            || self.source.is_some()
            || self.contact_type.is_some()
            || self.status.is_some()
            || self.intent.is_some()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.has_email.is_some()
            || self.has_phone.is_some()
    }

    /// The required tags: `tag` and `tags` together.
    pub fn all_tags(&self) -> Vec<String> {
        self.tag.iter().chain(self.tags.iter().flatten()).cloned().collect()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted; the selection has not been read yet.
    Pending,
    /// The selection is fixed (`matched`) and its chunks are being worked.
    Running,
    Completed,
    /// The selection could not be read (see `error`); nothing was changed.
    Failed,
}

/// A bulk job as stored. Its progress lives in the chunk ledger.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BulkJob {
    pub id: String,
    pub action: Action,
    #[serde(default)]
    pub change: Change,
    /// Absent when the caller sent ids (they are written as the job's chunks).
    pub filter: Option<Filter>,
    pub state: JobState,
    /// Contacts in the selection, once it is read.
    pub matched: Option<u64>,
    #[serde(default)]
    pub chunks_total: u32,
    pub created_at: DateTime<Utc>,
    /// When the selection was read: contacts that match only later are not acted on.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// One contact the action could not be applied to, and why.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

/// Most failures a chunk keeps (the counts stay exact beyond it).
pub const FAILURES_KEPT_PER_CHUNK: usize = 20;

/// A chunk's ledger entry: how far through its ids the job is, and the
/// outcome so far. Moved forward one batch at a time, conditionally.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ChunkProgress {
    pub chunk: u32,
    /// Ids in the chunk.
    pub size: u64,
    /// Ids committed so far.
    #[serde(default)]
    pub next: u64,
    #[serde(default)]
    pub updated: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub failures: Vec<Failure>,
}

impl ChunkProgress {
    pub fn done(&self) -> bool {
        self.next >= self.size
    }
}

/// What one batch of a chunk did: counts, and the failures worth keeping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub updated: u64,
    pub failed: u64,
    /// The first failures, up to what the chunk still keeps.
    pub kept: Vec<Failure>,
}

/// The ids as given, each once, in their first place.
pub fn distinct(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
}

/// Splits a selection into chunks of at most `size` ids.
pub fn chunks(ids: &[String], size: usize) -> Vec<Vec<String>> {
    ids.chunks(size.max(1)).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_keeps_each_id_once_in_first_order() {
        let ids: Vec<String> = ["b", "a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(distinct(&ids), ["b", "a", "c"]);
    }

    #[test]
    fn chunks_cover_the_selection_in_order_once() {
        let ids: Vec<String> = (0..2501).map(|i| i.to_string()).collect();
        let parts = chunks(&ids, 1000);
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [1000, 1000, 501]);
        assert_eq!(parts.concat(), ids);
        assert!(chunks(&[], 1000).is_empty());
    }

    #[test]
    fn a_filter_names_its_narrowing_fields_and_refuses_unknown_ones() {
        let f: Filter = serde_json::from_value(serde_json::json!({"tag": "VIP", "tags": ["a"]})).unwrap();
        assert!(f.narrows());
        assert_eq!(f.all_tags(), ["VIP", "a"]);
        let all: Filter = serde_json::from_value(serde_json::json!({"all": true})).unwrap();
        assert!(!all.narrows());
        assert!(serde_json::from_value::<Filter>(serde_json::json!({"tagz": "x"})).is_err());
    }
}
