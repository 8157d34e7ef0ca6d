//! Messages: every email and SMS Roster sends or receives, one record each,
//! with its status history. The channel-neutral store both channels share.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::list::Channel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
}

/// Where a message is. Outbound: `queued` (claimed, the provider not yet
/// called) → `accepted` (SMS: Twilio took it) → `sending` → `sent` →
/// `delivered` → `opened` → `clicked`, or one of the ends (`bounced`,
/// `complained`, `rejected`, `failed`, `undelivered`); `delayed` is on the
/// way. Inbound: `received`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    Accepted,
    Sending,
    Sent,
    Delayed,
    Delivered,
    Opened,
    Clicked,
    Bounced,
    Complained,
    Rejected,
    Failed,
    Undelivered,
    Received,
}

impl MessageState {
    /// How far along a message is: a later event of a lower rank (a
    /// delivery reported after the open) is kept in the history and does
    /// not move the status back.
    pub fn rank(self) -> u8 {
        match self {
            MessageState::Queued => 0,
            MessageState::Accepted => 1,
            MessageState::Sending => 2,
            MessageState::Sent => 3,
            MessageState::Delayed => 4,
            MessageState::Delivered => 5,
            MessageState::Opened => 6,
            MessageState::Clicked => 7,
            MessageState::Received => 7,
            // A complaint or a bounce says more than any open; a failure is final.
            MessageState::Bounced | MessageState::Rejected | MessageState::Failed | MessageState::Undelivered => 8,
            MessageState::Complained => 9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Accepted => "accepted",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delayed => "delayed",
            MessageState::Delivered => "delivered",
            MessageState::Opened => "opened",
            MessageState::Clicked => "clicked",
            MessageState::Bounced => "bounced",
            MessageState::Complained => "complained",
            MessageState::Rejected => "rejected",
            MessageState::Failed => "failed",
            MessageState::Undelivered => "undelivered",
            MessageState::Received => "received",
        }
    }
}

/// One step of a message's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatusEvent {
    pub status: MessageState,
    pub at: DateTime<Utc>,
    /// The provider's word for it (a bounce type, a clicked link, an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub channel: Channel,
    pub direction: Direction,
    pub status: MessageState,
    pub history: Vec<StatusEvent>,
    pub contact_id: String,
    pub broadcast_id: Option<String>,
    pub template_id: Option<String>,
    /// The sending list whose consent the message was sent under.
    pub list_id: Option<String>,
    /// Email address or E.164 number.
    pub to: String,
    pub from: String,
    /// Email only.
    pub subject: Option<String>,
    /// The text part (or the SMS), cut to [`BODY_CHARS`].
    pub body: Option<String>,
    /// SES message id or Twilio SID.
    pub provider_id: Option<String>,
    pub error: Option<String>,
    /// SMS: the segments the body is billed as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// Inbound SMS: what Roster answered (a keyword's confirmation or the help text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Revenue attributed to this message (a purchase soon after a click on one of its links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MessageState {
    /// Whether the provider has taken the message (it went, or is going).
    pub fn was_sent(self) -> bool {
        !matches!(
            self,
            MessageState::Queued | MessageState::Failed | MessageState::Rejected
        )
    }
}

/// Characters of a message's body kept for the conversation view.
pub const BODY_CHARS: usize = 4000;

pub fn preview_of(text: &str) -> String {
    text.chars().take(BODY_CHARS).collect()
}

/// Why a contact cannot be sent a message on a channel (and list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Deleted,
    NoAddress,
    NotOnList,
    Unsubscribed,
    OptedOut,
    Suppressed,
    Invalid,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::Deleted,
        SkipReason::NoAddress,
        SkipReason::NotOnList,
        SkipReason::Unsubscribed,
        SkipReason::OptedOut,
        SkipReason::Suppressed,
        SkipReason::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Deleted => "deleted",
            SkipReason::NoAddress => "no_address",
            SkipReason::NotOnList => "not_on_list",
            SkipReason::Unsubscribed => "unsubscribed",
            SkipReason::OptedOut => "opted_out",
            SkipReason::Suppressed => "suppressed",
            SkipReason::Invalid => "invalid",
        }
    }

    pub fn explain(self, channel: Channel) -> String {
        let what = match channel {
            Channel::Email => "email",
            Channel::Sms => "SMS",
        };
        match self {
            SkipReason::Deleted => "the contact is deleted".into(),
            SkipReason::NoAddress => format!("the contact has no address for {what}"),
            SkipReason::NotOnList => "the contact is not on that list".into(),
            SkipReason::Unsubscribed => format!("the contact unsubscribed from {what}"),
            SkipReason::OptedOut => format!("the contact opted out of {what}"),
            SkipReason::Suppressed => format!("the contact's address is suppressed for {what}"),
            SkipReason::Invalid => format!("the contact's address cannot receive {what}"),
        }
    }
}

/// A contact's standing on a whole channel (all lists): set by a one-click
/// unsubscribe from a message sent without a list, a complaint or a
/// permanent bounce. Absent means nothing blocks the channel.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelOptOut {
    pub channel: Channel,
    pub reason: SkipReason,
    pub at: DateTime<Utc>,
    /// The message that led to it.
    pub message_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_outrank_everything_and_opens_outrank_deliveries() {
        assert!(MessageState::Opened.rank() > MessageState::Delivered.rank());
        assert!(MessageState::Clicked.rank() > MessageState::Opened.rank());
        for s in [MessageState::Bounced, MessageState::Opened, MessageState::Clicked] {
            assert!(MessageState::Complained.rank() > s.rank());
        }
    }

    #[test]
    fn previews_are_cut_by_characters() {
        let long = "é".repeat(BODY_CHARS + 10);
        assert_eq!(preview_of(&long).chars().count(), BODY_CHARS);
    }
}
