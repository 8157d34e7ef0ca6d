//! The activity timeline: what a contact did and what happened to it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::{Error, Result};

/// Types a caller may record (any other lower_snake_case name is a custom type).
pub const KNOWN_TYPES: [&str; 8] = [
    "page_visit",
    "form_submission",
    "email_open",
    "email_click",
    "meeting_booked",
    "file_download",
    "chat",
    "deal_change",
];

/// Types only Roster records; callers cannot post them.
pub const SYSTEM_TYPES: [&str; 14] = [
    "contacts_merged",
    "contact_created",
    "contact_updated",
    "waitlist_signup",
    "form_submitted",
    "contact_message",
    "chat_message",
    "referral",
    "purchase",
    "tags_changed",
    "list_changed",
    "import",
    "message_sent",
    "channel_opt_out",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Recorded by Roster itself.
    System,
    /// Posted through the API.
    Api,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    pub id: String,
    pub contact_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub origin: Origin,
    pub occurred_at: DateTime<Utc>,
    pub summary: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// What a caller posts to a contact's timeline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    /// One of the known types, or any lower_snake_case name for a custom type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened; now if absent. Not in the future.
    pub occurred_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
}

pub fn validate_type(kind: &str, field: &str) -> Result<()> {
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(Error::invalid(
            field,
            "activity types are lower_snake_case, at most 64 characters",
        ));
    }
    Ok(())
}

impl ActivityInput {
    pub fn validated(self, now: DateTime<Utc>) -> Result<ActivityInput> {
        validate_type(&self.kind, "type")?;
        if SYSTEM_TYPES.contains(&self.kind.as_str()) {
            return Err(Error::invalid(
                "type",
                format!("{} is recorded by Roster itself", self.kind),
            ));
        }
        if self.occurred_at.is_some_and(|t| t > now + chrono::Duration::minutes(5)) {
            return Err(Error::invalid("occurred_at", "occurred_at is in the future"));
        }
        if self.summary.as_ref().is_some_and(|s| s.chars().count() > 1000) {
            return Err(Error::invalid("summary", "summary is at most 1000 characters"));
        }
        if self
            .data
            .as_ref()
            .is_some_and(|d| serde_json::to_vec(d).map_or(0, |b| b.len()) > 16 * 1024)
        {
            return Err(Error::invalid("data", "data is at most 16 KiB of JSON"));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str) -> ActivityInput {
        ActivityInput {
            kind: kind.into(),
            occurred_at: None,
            summary: None,
            data: None,
        }
    }

    #[test]
    fn known_and_custom_types_are_accepted_system_ones_are_not() {
        let now = Utc::now();
        for kind in KNOWN_TYPES.iter().chain(&["webinar_attended"]) {
            assert!(input(kind).validated(now).is_ok(), "{kind}");
        }
        for kind in ["contact_created", "purchase", "Bad Type", "", "9lives"] {
            assert!(input(kind).validated(now).is_err(), "{kind}");
        }
        let future = ActivityInput {
            occurred_at: Some(now + chrono::Duration::days(1)),
            ..input("page_visit")
        };
        assert!(future.validated(now).is_err());
    }
}
