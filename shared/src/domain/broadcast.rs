//! Broadcasts: one template sent to an audience fixed when sending starts,
//! in chunks with a ledger each (the bulk jobs' machinery), one message per
//! recipient claimed before it is sent. No I/O here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bulk::Filter;
use super::list::Channel;
use super::message::SkipReason;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastState {
    /// Being written; nothing is sent.
    Draft,
    /// Waiting for `send_at`.
    Scheduled,
    /// Asked to send; the audience has not been read yet.
    Pending,
    /// The audience is fixed (`recipients`) and its chunks are being sent.
    Sending,
    /// Stopped by a person or by itself (`paused_reason`); resume carries on.
    Paused,
    Completed,
    Cancelled,
    /// Its time passed by more than the project's window while nothing ran: not sent late.
    Missed,
    /// The audience could not be read (`error`); nothing was sent.
    Failed,
}

impl BroadcastState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BroadcastState::Completed | BroadcastState::Cancelled | BroadcastState::Missed | BroadcastState::Failed
        )
    }
}

/// Who a broadcast goes to: one of a list's members, a filter over the
/// contacts, or ids.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Every member of this list (consent: each member's status on it, read when sending).
    pub list_id: Option<String>,
    /// Contacts matching this filter (as bulk selections).
    pub filter: Option<Filter>,
    /// Up to 10,000 contact ids.
    pub ids: Option<Vec<String>>,
}

/// Most ids a broadcast may name.
pub const MAX_IDS: usize = 10_000;

impl Audience {
    pub fn check(&self) -> Result<()> {
        let given = [self.list_id.is_some(), self.filter.is_some(), self.ids.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(Error::invalid("audience", "give one of list_id, filter or ids"));
        }
        if let Some(ids) = &self.ids {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Err(Error::invalid("audience.ids", format!("1 to {MAX_IDS} ids")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Broadcast {
    pub id: String,
    pub name: String,
    pub channel: Channel,
    pub template_id: String,
    /// The From address (email) or number (SMS).
    pub from: String,
    pub audience: Audience,
    /// The list whose consent every recipient must have (`active` on it):
    /// the audience's list, or one named for a filter or ids audience.
    pub list_id: Option<String>,
    pub send_at: Option<DateTime<Utc>>,
    pub state: BroadcastState,
    /// Why it is paused, failed or missed.
    pub reason: Option<String>,
    /// Recipients in the audience, once it is read.
    pub recipients: Option<u64>,
    #[serde(default)]
    #[schema(ignore)]
    pub chunks_total: u32,
    /// Where links in its messages point (fixed when sending starts).
    #[serde(default)]
    #[schema(ignore)]
    pub base_url: Option<String>,
    /// Links in its messages go out as short tracked links.
    #[serde(default)]
    pub track_links: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the audience was read: contacts who match only later are not sent to.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A chunk's ledger entry: how far through its recipients sending is, and
/// how each committed recipient ended. Moved forward one batch at a time.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct SendProgress {
    pub chunk: u32,
    pub size: u64,
    #[serde(default)]
    pub next: u64,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub failed: u64,
    /// Claimed by a worker that stopped before it knew whether the provider
    /// took the message: not sent again (at most once), reported here.
    #[serde(default)]
    pub uncertain: u64,
    #[serde(default)]
    pub skipped: BTreeMap<String, u64>,
}

impl SendProgress {
    pub fn done(&self) -> bool {
        self.next >= self.size
    }
}

/// How one recipient of a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Skipped(SkipReason),
    Failed,
    Uncertain,
}

/// A batch's outcomes, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendTally {
    pub sent: u64,
    pub failed: u64,
    pub uncertain: u64,
    pub skipped: BTreeMap<String, u64>,
}

impl SendTally {
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut t = SendTally::default();
        for o in outcomes {
            match o {
                Outcome::Sent => t.sent += 1,
                Outcome::Failed => t.failed += 1,
                Outcome::Uncertain => t.uncertain += 1,
                Outcome::Skipped(r) => *t.skipped.entry(r.as_str().to_string()).or_default() += 1,
            }
        }
        t
    }
}

/// What the provider reported back, counted per broadcast.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema, PartialEq)]
pub struct Engagement {
    #[serde(default)]
    pub delivered: u64,
    #[serde(default)]
    pub opened: u64,
    #[serde(default)]
    pub clicked: u64,
    #[serde(default)]
    pub bounced: u64,
    #[serde(default)]
    pub complained: u64,
    /// Purchases attributed to the broadcast's messages (a click shortly before).
    #[serde(default)]
    pub revenue: f64,
}

/// A broadcast pauses itself past this complaint rate…
pub const COMPLAINT_RATE_LIMIT: f64 = 0.003;
/// …once it has sent at least this many.
pub const COMPLAINT_MIN_SENT: u64 = 1000;

pub fn too_many_complaints(sent: u64, complained: u64) -> bool {
    sent >= COMPLAINT_MIN_SENT && complained as f64 > COMPLAINT_RATE_LIMIT * sent as f64
}

/// Whether a scheduled broadcast found at `now` is too late to send.
pub fn is_missed(send_at: DateTime<Utc>, now: DateTime<Utc>, window_minutes: u32) -> bool {
    now - send_at > chrono::Duration::minutes(window_minutes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_is_one_of_three() {
        let a = |v: serde_json::Value| serde_json::from_value::<Audience>(v).unwrap();
        assert!(a(serde_json::json!({"list_id": "L"})).check().is_ok());
        assert!(a(serde_json::json!({"ids": ["a"]})).check().is_ok());
        assert!(a(serde_json::json!({})).check().is_err());
        assert!(a(serde_json::json!({"list_id": "L", "ids": ["a"]})).check().is_err());
        assert!(a(serde_json::json!({"ids": []})).check().is_err());
        assert!(serde_json::from_value::<Audience>(serde_json::json!({"segment": "x"})).is_err());
    }

    #[test]
    fn tallies_count_each_outcome_once() {
        let t = SendTally::of(&[
            Outcome::Sent,
            Outcome::Sent,
            Outcome::Skipped(SkipReason::Unsubscribed),
            Outcome::Skipped(SkipReason::Unsubscribed),
            Outcome::Skipped(SkipReason::NoAddress),
            Outcome::Failed,
            Outcome::Uncertain,
        ]);
        assert_eq!((t.sent, t.failed, t.uncertain), (2, 1, 1));
        assert_eq!(t.skipped["unsubscribed"], 2);
        assert_eq!(t.skipped["no_address"], 1);
    }

    #[test]
    fn complaints_pause_only_past_the_rate_after_enough_sends() {
        assert!(!too_many_complaints(999, 10));
        assert!(!too_many_complaints(1000, 3));
        assert!(too_many_complaints(1000, 4));
    }

    #[test]
    fn a_schedule_is_missed_only_past_its_window() {
        let at = Utc::now();
        assert!(!is_missed(at, at + chrono::Duration::minutes(59), 60));
        assert!(is_missed(at, at + chrono::Duration::minutes(61), 60));
    }
}
