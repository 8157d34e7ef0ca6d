//! A project: one contact list, its keys and its settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::normalize;
use crate::{Error, Result};

/// A project as stored. Key hashes never leave the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub default_country: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub secret_key_hash: String,
    pub publishable_key_hash: String,
    #[serde(default = "default_rate_per_ip")]
    pub public_rate_per_ip: u32,
    #[serde(default = "default_rate_per_project")]
    pub public_rate_per_project: u32,
    // Kept flat (not a nested map): a settings change sets each attribute
    // alone, on projects stored before these existed too.
    #[serde(default)]
    pub email_from: Option<String>,
    #[serde(default)]
    pub email_from_name: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
    #[serde(default)]
    pub unsubscribe_mailto: Option<String>,
    #[serde(default = "default_send_rate")]
    pub send_rate: u32,
    #[serde(default = "default_missed_after")]
    pub missed_after_minutes: u32,
    #[serde(default)]
    pub twilio_account_sid: Option<String>,
    #[serde(default)]
    pub twilio_auth_token: Option<Secret>,
    #[serde(default)]
    pub twilio_messaging_service_sid: Option<String>,
    #[serde(default)]
    pub sms_help_text: Option<String>,
    #[serde(default)]
    pub sms_opt_out_text: Option<String>,
    #[serde(default)]
    pub sms_opt_in_text: Option<String>,
    #[serde(default = "default_attribution_days")]
    pub attribution_days: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How the project's messages go out: the sender, and how fast.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Sending {
    /// The default From address of emails (on the deployment's sending domain).
    pub email_from: Option<String>,
    /// The display name beside it.
    pub email_from_name: Option<String>,
    pub reply_to: Option<String>,
    /// A mailbox that unsubscribes too (`List-Unsubscribe` mailto), if any.
    pub unsubscribe_mailto: Option<String>,
    /// Messages per second a broadcast sends at, at most (default 10).
    pub send_rate: u32,
    /// A scheduled broadcast found this many minutes after its time, with
    /// nothing sent, is marked missed instead of sent late (default 60).
    pub missed_after_minutes: u32,
}

/// A value never shown or logged (the Twilio auth token): its `Debug` is masked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the project's SMS go out (Twilio) and what its keywords answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct SmsSettings {
    pub twilio_account_sid: Option<String>,
    /// Whether an auth token is set (it is write-only: never shown).
    pub twilio_auth_token_set: bool,
    /// Sends through this Messaging Service (its number pool) instead of the list's number.
    pub twilio_messaging_service_sid: Option<String>,
    /// The answer to HELP / INFO.
    pub sms_help_text: String,
    /// The answer to STOP and the other opt-out words.
    pub sms_opt_out_text: String,
    /// The answer to START / UNSTOP / YES.
    pub sms_opt_in_text: String,
    /// Days after a click on a tracked link in which a purchase is attributed to the message (default 7).
    pub attribution_days: u32,
}

impl Project {
    pub fn sms(&self) -> SmsSettings {
        SmsSettings {
            twilio_account_sid: self.twilio_account_sid.clone(),
            twilio_auth_token_set: self.twilio_auth_token.is_some(),
            twilio_messaging_service_sid: self.twilio_messaging_service_sid.clone(),
            sms_help_text: self
                .sms_help_text
                .clone()
                .unwrap_or_else(|| format!("{}: reply STOP to unsubscribe. Msg & data rates may apply.", self.name)),
            sms_opt_out_text: self.sms_opt_out_text.clone().unwrap_or_else(|| {
                format!(
                    "{}: you are unsubscribed and will receive no more messages. Reply START to resubscribe.",
                    self.name
                )
            }),
            sms_opt_in_text: self.sms_opt_in_text.clone().unwrap_or_else(|| {
                format!(
                    "{}: you are subscribed again. Reply STOP to unsubscribe, HELP for help.",
                    self.name
                )
            }),
            attribution_days: self.attribution_days,
        }
    }

    /// The Twilio account and token, if both are set.
    pub fn twilio(&self) -> Option<(&str, &str)> {
        Some((
            self.twilio_account_sid.as_deref()?,
            self.twilio_auth_token.as_ref()?.expose(),
        ))
    }
}

pub const DEFAULT_ATTRIBUTION_DAYS: u32 = 7;

fn default_attribution_days() -> u32 {
    DEFAULT_ATTRIBUTION_DAYS
}

pub const DEFAULT_SEND_RATE: u32 = 10;
pub const DEFAULT_MISSED_AFTER_MINUTES: u32 = 60;

fn default_send_rate() -> u32 {
    DEFAULT_SEND_RATE
}

fn default_missed_after() -> u32 {
    DEFAULT_MISSED_AFTER_MINUTES
}

/// Public submissions per minute from one IP address, by default.
pub const DEFAULT_RATE_PER_IP: u32 = 20;
/// Public submissions per minute to one project, by default.
pub const DEFAULT_RATE_PER_PROJECT: u32 = 600;

fn default_rate_per_ip() -> u32 {
    DEFAULT_RATE_PER_IP
}

fn default_rate_per_project() -> u32 {
    DEFAULT_RATE_PER_PROJECT
}

impl Project {
    pub fn sending(&self) -> Sending {
        Sending {
            email_from: self.email_from.clone(),
            email_from_name: self.email_from_name.clone(),
            reply_to: self.reply_to.clone(),
            unsubscribe_mailto: self.unsubscribe_mailto.clone(),
            send_rate: self.send_rate,
            missed_after_minutes: self.missed_after_minutes,
        }
    }

    /// Whether a browser page at `origin` may call the public endpoints.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        self.allowed_origins.contains(&origin)
    }
}

/// What callers see of a project.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2; national phone numbers are read as this country's.
    pub default_country: String,
    /// Origins allowed to call the public endpoints from a browser.
    pub allowed_origins: Vec<String>,
    /// Public submissions allowed per minute from one IP address.
    pub public_rate_per_ip: u32,
    /// Public submissions allowed per minute to this project.
    pub public_rate_per_project: u32,
    #[serde(flatten)]
    pub sending: Sending,
    #[serde(flatten)]
    pub sms: SmsSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Project> for ProjectView {
    fn from(p: &Project) -> Self {
        ProjectView {
            id: p.id.clone(),
            name: p.name.clone(),
            default_country: p.default_country.clone(),
            allowed_origins: p.allowed_origins.clone(),
            public_rate_per_ip: p.public_rate_per_ip,
            public_rate_per_project: p.public_rate_per_project,
            sending: p.sending(),
            sms: p.sms(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

pub const DEFAULT_COUNTRY: &str = "US";

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    pub name: Option<String>,
    /// ISO 3166-1 alpha-2 code, e.g. `US`, `FI`.
    pub default_country: Option<String>,
    /// e.g. `["https://example.com"]`.
    pub allowed_origins: Option<Vec<String>>,
    /// Public submissions per minute from one IP (1 to 100000; default 20).
    pub public_rate_per_ip: Option<u32>,
    /// Public submissions per minute to the project (1 to 100000; default 600).
    pub public_rate_per_project: Option<u32>,
    /// The default From address of emails.
    pub email_from: Option<String>,
    pub email_from_name: Option<String>,
    pub reply_to: Option<String>,
    /// A mailbox that unsubscribes too (`List-Unsubscribe` mailto).
    pub unsubscribe_mailto: Option<String>,
    /// Messages per second a broadcast sends at, at most (1 to 1000; default 10).
    pub send_rate: Option<u32>,
    /// Minutes after its time a scheduled broadcast that has not run is missed (1 to 10080; default 60).
    pub missed_after_minutes: Option<u32>,
    /// `AC` and 32 hex digits.
    pub twilio_account_sid: Option<String>,
    /// Write-only: stored, never returned or logged.
    #[schema(value_type = Option<String>)]
    pub twilio_auth_token: Option<Secret>,
    /// `MG` and 32 hex digits: send through this Messaging Service's number pool.
    pub twilio_messaging_service_sid: Option<String>,
    /// The answers to HELP, to STOP and to START (1 to 320 characters each).
    pub sms_help_text: Option<String>,
    pub sms_opt_out_text: Option<String>,
    pub sms_opt_in_text: Option<String>,
    /// Days after a click in which a purchase is attributed to the message (1 to 90; default 7).
    pub attribution_days: Option<u32>,
}

impl ProjectSettings {
    /// Validates and normalizes every field that is present.
    pub fn normalized(self) -> Result<Self> {
        let name = match self.name {
            Some(raw) => {
                let name = normalize::text(&raw).ok_or_else(|| Error::invalid("name", "name cannot be empty"))?;
                if name.chars().count() > 200 {
                    return Err(Error::invalid("name", "name is at most 200 characters"));
                }
                Some(name)
            }
            None => None,
        };
        let default_country = self
            .default_country
            .map(|c| normalize::country(&c).map_err(|m| Error::invalid("default_country", m)))
            .transpose()?;
        let allowed_origins = self
            .allowed_origins
            .map(|origins| origins.iter().map(|o| origin(o)).collect::<Result<Vec<_>>>())
            .transpose()?;
        for (field, value) in [
            ("public_rate_per_ip", self.public_rate_per_ip),
            ("public_rate_per_project", self.public_rate_per_project),
        ] {
            if value.is_some_and(|v| !(1..=100_000).contains(&v)) {
                return Err(Error::invalid(field, format!("{field} is between 1 and 100000")));
            }
        }
        let address = |field: &str, v: Option<String>| {
            v.map(|a| normalize::email(&a).map_err(|m| Error::invalid(field, m)))
                .transpose()
        };
        let email_from_name = self
            .email_from_name
            .map(|n| {
                let n = normalize::text(&n).ok_or_else(|| Error::invalid("email_from_name", "cannot be empty"))?;
                if n.chars().count() > 100 {
                    return Err(Error::invalid(
                        "email_from_name",
                        "email_from_name is at most 100 characters",
                    ));
                }
                Ok(n)
            })
            .transpose()?;
        for (field, value, max) in [
            ("send_rate", self.send_rate, 1000),
            ("missed_after_minutes", self.missed_after_minutes, 10_080),
            ("attribution_days", self.attribution_days, 90),
        ] {
            if value.is_some_and(|v| !(1..=max).contains(&v)) {
                return Err(Error::invalid(field, format!("{field} is between 1 and {max}")));
            }
        }
        Ok(ProjectSettings {
            name,
            default_country,
            allowed_origins,
            public_rate_per_ip: self.public_rate_per_ip,
            public_rate_per_project: self.public_rate_per_project,
            email_from: address("email_from", self.email_from)?,
            email_from_name,
            reply_to: address("reply_to", self.reply_to)?,
            unsubscribe_mailto: address("unsubscribe_mailto", self.unsubscribe_mailto)?,
            send_rate: self.send_rate,
            missed_after_minutes: self.missed_after_minutes,
            twilio_account_sid: sid("twilio_account_sid", "AC", self.twilio_account_sid)?,
            twilio_auth_token: self
                .twilio_auth_token
                .map(|t| {
                    let t = t.expose().trim();
                    if !(16..=128).contains(&t.len()) || !t.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(Error::invalid(
                            "twilio_auth_token",
                            "twilio_auth_token is the account's auth token (16 to 128 characters, no spaces)",
                        ));
                    }
                    Ok(Secret::new(t.to_string()))
                })
                .transpose()?,
            twilio_messaging_service_sid: sid("twilio_messaging_service_sid", "MG", self.twilio_messaging_service_sid)?,
            sms_help_text: reply_text("sms_help_text", self.sms_help_text)?,
            sms_opt_out_text: reply_text("sms_opt_out_text", self.sms_opt_out_text)?,
            sms_opt_in_text: reply_text("sms_opt_in_text", self.sms_opt_in_text)?,
            attribution_days: self.attribution_days,
        })
    }
}

/// A Twilio SID: its two-letter prefix and 32 hex digits.
fn sid(field: &str, prefix: &str, v: Option<String>) -> Result<Option<String>> {
    v.map(|raw| {
        let v = raw.trim();
        let ok = v.len() == 34 && v.starts_with(prefix) && v[2..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(v.to_string())
        } else {
            Err(Error::invalid(
                field,
                format!("{field} is {prefix} followed by 32 hex digits"),
            ))
        }
    })
    .transpose()
}

/// An automatic SMS answer: kept as written (trimmed), 1 to 320 characters.
fn reply_text(field: &str, v: Option<String>) -> Result<Option<String>> {
    v.map(|raw| {
        let v = raw.trim();
        if v.is_empty() || v.chars().count() > 320 {
            Err(Error::invalid(field, format!("{field} is 1 to 320 characters")))
        } else {
            Ok(v.to_string())
        }
    })
    .transpose()
}

/// `scheme://host[:port]`, lower-cased, no path: the form browsers send in `Origin`.
fn origin(raw: &str) -> Result<String> {
    let o = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(|| Error::invalid("allowed_origins", format!("{raw:?} is not an http(s) origin")))?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
        return Err(Error::invalid(
            "allowed_origins",
            format!("{raw:?} is not an origin (scheme://host[:port])"),
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_normalized() {
        let s = ProjectSettings {
            name: Some("  Acme   Launch ".into()),
            default_country: Some("fi".into()),
            allowed_origins: Some(vec!["HTTPS://Acme.com/".into()]),
            ..Default::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("Acme Launch"));
        assert_eq!(s.default_country.as_deref(), Some("FI"));
        assert_eq!(s.allowed_origins.unwrap(), vec!["https://acme.com"]);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = |s: ProjectSettings| match s.normalized() {
            Err(Error::Validation { field, .. }) => field.unwrap(),
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(
            bad(ProjectSettings {
                name: Some(" ".into()),
                ..Default::default()
            }),
            "name"
        );
        assert_eq!(
            bad(ProjectSettings {
                default_country: Some("Narnia".into()),
                ..Default::default()
            }),
            "default_country"
        );
        assert_eq!(
            bad(ProjectSettings {
                allowed_origins: Some(vec!["acme.com".into()]),
                ..Default::default()
            }),
            "allowed_origins"
        );
        assert_eq!(
            bad(ProjectSettings {
                allowed_origins: Some(vec!["https://acme.com/path".into()]),
                ..Default::default()
            }),
            "allowed_origins"
        );
    }
}
