//! Sending lists and subscriptions: who may be messaged on which channel.
//! Nothing is ever sent to a contact that is not `active` on the list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::normalize;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Subscribed and eligible.
    Active,
    /// Replied STOP (or asked to leave this list).
    OptedOut,
    /// Manually suppressed.
    Suppressed,
    /// The address or number cannot receive messages.
    Invalid,
    Unsubscribed,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 5] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::OptedOut,
        SubscriptionStatus::Suppressed,
        SubscriptionStatus::Invalid,
        SubscriptionStatus::Unsubscribed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::OptedOut => "opted_out",
            SubscriptionStatus::Suppressed => "suppressed",
            SubscriptionStatus::Invalid => "invalid",
            SubscriptionStatus::Unsubscribed => "unsubscribed",
        }
    }

    /// The list attribute counting members in this status.
    pub fn counter(self) -> String {
        format!("count_{}", self.as_str())
    }

    pub fn can_receive(self) -> bool {
        self == SubscriptionStatus::Active
    }

    /// Statuses that mean the person said no (or must not be contacted).
    pub fn is_opt_out(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::OptedOut | SubscriptionStatus::Unsubscribed | SubscriptionStatus::Suppressed
        )
    }
}

/// How a subscription (or its change) came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    #[default]
    Api,
    Import,
    Journey,
    Inbound,
    Form,
    /// The recipient, from a message (the one-click unsubscribe link).
    Email,
    /// The provider's feedback: a complaint, a permanent bounce, a carrier opt-out.
    Feedback,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SendingList {
    pub id: String,
    pub name: String,
    pub channel: Channel,
    /// From-address (email) or E.164 number (SMS).
    pub sender: String,
    pub description: Option<String>,
    /// SMS: messages per second sent from this number, at most (a US long code: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_second: Option<u32>,
    #[serde(default)]
    pub count_active: i64,
    #[serde(default)]
    pub count_opted_out: i64,
    #[serde(default)]
    pub count_suppressed: i64,
    #[serde(default)]
    pub count_invalid: i64,
    #[serde(default)]
    pub count_unsubscribed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A contact on a list.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub list_id: String,
    pub contact_id: String,
    pub status: SubscriptionStatus,
    /// How they subscribed.
    pub via: Via,
    pub subscribed_at: DateTime<Utc>,
    pub opted_out_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One change of consent, kept forever (erasure aside).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsentRecord {
    pub id: String,
    pub list_id: String,
    pub contact_id: String,
    /// `null` when the contact joined the list.
    pub from: Option<SubscriptionStatus>,
    pub to: SubscriptionStatus,
    pub via: Via,
    pub at: DateTime<Utc>,
    /// Free text: who or what made the change.
    pub note: Option<String>,
}

/// SMS lists send at this rate unless told otherwise: a US long code's.
pub const DEFAULT_SMS_PER_SECOND: u32 = 1;

impl SendingList {
    /// Messages per second from this list's sender, if it is limited.
    pub fn rate(&self) -> Option<u32> {
        match self.channel {
            Channel::Sms => Some(self.messages_per_second.unwrap_or(DEFAULT_SMS_PER_SECOND)),
            Channel::Email => None,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    pub name: Option<String>,
    pub channel: Option<Channel>,
    /// A From address (email) or the E.164 number messages are sent from (SMS).
    pub sender: Option<String>,
    pub description: Option<String>,
    /// SMS only: messages per second from the number (1 to 1000; default 1).
    pub messages_per_second: Option<u32>,
}

pub struct ValidList {
    pub name: Option<String>,
    pub channel: Option<Channel>,
    pub sender: Option<String>,
    pub description: Option<String>,
    pub messages_per_second: Option<u32>,
}

impl ListInput {
    /// `channel` is the list's channel when updating (a sender is checked against it).
    pub fn validated(self, creating: bool, channel: Option<Channel>, default_country: &str) -> Result<ValidList> {
        if !creating && self.channel.is_some_and(|c| Some(c) != channel) {
            return Err(Error::invalid("channel", "a list's channel cannot change"));
        }
        let channel = self.channel.or(channel);
        let name = self
            .name
            .map(|n| normalize::text(&n).ok_or_else(|| Error::invalid("name", "name cannot be empty")))
            .transpose()?;
        if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
            return Err(Error::invalid("name", "name is at most 100 characters"));
        }
        if creating && name.is_none() {
            return Err(Error::invalid("name", "name is required"));
        }
        if creating && channel.is_none() {
            return Err(Error::invalid("channel", "channel is email or sms"));
        }
        let sender = match (self.sender, channel) {
            (Some(s), Some(Channel::Email)) => Some(normalize::email(&s).map_err(|m| Error::invalid("sender", m))?),
            (Some(s), Some(Channel::Sms)) => {
                Some(normalize::phone(&s, default_country).map_err(|m| Error::invalid("sender", m))?)
            }
            (Some(_), None) => return Err(Error::invalid("channel", "channel is email or sms")),
            (None, _) if creating => {
                return Err(Error::invalid(
                    "sender",
                    "sender is required (a from-address or a phone number)",
                ))
            }
            (None, _) => None,
        };
        let description = self.description.map(|d| normalize::text(&d).unwrap_or_default());
        let messages_per_second = match (self.messages_per_second, channel) {
            (Some(_), Some(Channel::Email)) => {
                return Err(Error::invalid(
                    "messages_per_second",
                    "messages_per_second is for SMS lists (email follows the project's send_rate)",
                ))
            }
            (Some(r), _) if !(1..=1000).contains(&r) => {
                return Err(Error::invalid(
                    "messages_per_second",
                    "messages_per_second is between 1 and 1000",
                ))
            }
            (Some(r), _) => Some(r),
            (None, Some(Channel::Sms)) if creating => Some(DEFAULT_SMS_PER_SECOND),
            (None, _) => None,
        };
        Ok(ValidList {
            name,
            channel,
            sender,
            description,
            messages_per_second,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(channel: Option<Channel>, sender: &str) -> ListInput {
        ListInput {
            name: Some("News".into()),
            channel,
            sender: Some(sender.into()),
            description: None,
            messages_per_second: None,
        }
    }

    #[test]
    fn senders_are_checked_against_the_channel() {
        let l = input(Some(Channel::Email), " News@Example.com ")
            .validated(true, None, "US")
            .unwrap();
        assert_eq!(l.sender.as_deref(), Some("news@example.com"));
        let l = input(Some(Channel::Sms), "(415) 555-2671")
            .validated(true, None, "US")
            .unwrap();
        assert_eq!(l.sender.as_deref(), Some("+14155552671"));
        assert!(input(Some(Channel::Email), "+14155552671")
            .validated(true, None, "US")
            .is_err());
        assert!(input(Some(Channel::Sms), "news@example.com")
            .validated(true, None, "US")
            .is_err());
        assert!(input(None, "news@example.com").validated(true, None, "US").is_err());
        assert!(input(Some(Channel::Sms), "+14155552671")
            .validated(false, Some(Channel::Email), "US")
            .is_err());
    }

    #[test]
    fn only_active_receives() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(s.can_receive(), s == SubscriptionStatus::Active);
        }
        assert!(SubscriptionStatus::OptedOut.is_opt_out());
        assert!(!SubscriptionStatus::Invalid.is_opt_out());
    }
}
