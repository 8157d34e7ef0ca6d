//! The contact: one record per person per project, and the rules that turn a
//! caller's input into a change of that record.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::normalize;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContactType {
    #[default]
    Lead,
    Customer,
    Employee,
}

impl ContactType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactType::Lead => "lead",
            ContactType::Customer => "customer",
            ContactType::Employee => "employee",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContactStatus {
    #[default]
    Active,
    Error,
    Deleted,
    Unsubscribed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    High,
    Medium,
    Low,
}

/// How a contact entered Roster. The stored source is the highest-intent
/// channel seen so far, in the order of the variants below (highest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Waitlist,
    Form,
    Chat,
    ContactForm,
    Sms,
    Import,
    Api,
    Manual,
}

impl Source {
    pub fn rank(self) -> u8 {
        match self {
            Source::Waitlist => 8,
            Source::Form => 7,
            Source::Chat => 6,
            Source::ContactForm => 5,
            Source::Sms => 4,
            Source::Import => 3,
            Source::Api => 2,
            Source::Manual => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Waitlist => "waitlist",
            Source::Form => "form",
            Source::Chat => "chat",
            Source::ContactForm => "contact_form",
            Source::Sms => "sms",
            Source::Import => "import",
            Source::Api => "api",
            Source::Manual => "manual",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    /// State, province or region.
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// The contact as stored and as returned. `full_name` and `name` are derived
/// from the first and last name, so the three never disagree.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: String,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// A phone number a person gave that could not be stored as `phone` (not
    /// a valid number, or another contact's), as given: kept so that someone
    /// can see and fix it. A stored `phone` clears it. SMS lists take such a
    /// contact as `invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_raw: Option<String>,
    /// External id: your CRM/ERP identifier.
    pub eid: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default, skip_deserializing)]
    pub full_name: Option<String>,
    /// Same as `full_name`.
    #[serde(default, skip_deserializing)]
    pub name: Option<String>,
    pub company: Option<String>,
    pub address: Option<Address>,
    #[serde(rename = "type", default)]
    pub contact_type: ContactType,
    #[serde(default)]
    pub status: ContactStatus,
    pub source: Option<Source>,
    pub intent: Option<Intent>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub referral_code: Option<String>,
    /// Id of the contact who referred this one.
    pub referred_by: Option<String>,
    #[serde(default)]
    pub referral_count: u64,
    #[serde(default)]
    pub total_sends: u64,
    #[serde(default)]
    pub total_opens: u64,
    #[serde(default)]
    pub total_clicks: u64,
    #[serde(default)]
    pub total_revenue: f64,
    #[serde(default)]
    pub messages_in: u64,
    #[serde(default)]
    pub messages_out: u64,
    pub last_sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_opened_at: Option<DateTime<Utc>>,
    pub last_clicked_at: Option<DateTime<Utc>>,
    /// The message of the latest click on a tracked link: a purchase within
    /// the project's `attribution_days` of `last_click_at` is credited to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_click_message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_click_broadcast_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_click_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// Fills the derived fields after reading.
    pub fn with_derived(mut self) -> Self {
        self.full_name = normalize::join_name(self.first_name.as_deref(), self.last_name.as_deref());
        self.name = self.full_name.clone();
        self
    }

    pub fn identity(&self, kind: IdentityKind) -> Option<&str> {
        match kind {
            IdentityKind::Email => self.email.as_deref(),
            IdentityKind::Phone => self.phone.as_deref(),
            IdentityKind::Eid => self.eid.as_deref(),
            IdentityKind::ReferralCode => self.referral_code.as_deref(),
        }
    }
}

/// Fields whose old and new values are worth showing on the timeline (they
/// carry no personal data); other changed fields are listed by name only.
pub const TRACKED_VALUES: [&str; 3] = ["type", "status", "intent"];

/// Bookkeeping that changes with every write and is not a change of the person.
const UNTRACKED: [&str; 7] = [
    "updated_at",
    "full_name",
    "name",
    "last_activity_at",
    "created_at",
    "id",
    "source",
];

/// The fields that differ between two versions of a contact, and for the
/// tracked ones, `{field: {from, to}}`.
pub fn changed_fields(old: &Contact, new: &Contact) -> (Vec<String>, Map<String, Value>) {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) = (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return (Vec::new(), Map::new());
    };
    let mut fields = Vec::new();
    let mut values = Map::new();
    for (k, v) in &new {
        if UNTRACKED.contains(&k.as_str()) || old.get(k) == Some(v) {
            continue;
        }
        fields.push(k.clone());
        if TRACKED_VALUES.contains(&k.as_str()) {
            values.insert(k.clone(), serde_json::json!({"from": old.get(k), "to": v}));
        }
    }
    (fields, values)
}

/// The values that are unique per project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    Email,
    Phone,
    Eid,
    ReferralCode,
}

impl IdentityKind {
    /// Also the contact's attribute name and the API's field name.
    pub fn field(self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::Eid => "eid",
            IdentityKind::ReferralCode => "referral_code",
        }
    }

    /// The identities a caller can set, in upsert-matching order.
    pub const SETTABLE: [IdentityKind; 3] = [IdentityKind::Email, IdentityKind::Phone, IdentityKind::Eid];
}

/// A field in a write: absent (leave alone), `null` (clear) or a value.
pub type Patch<T> = Option<Option<T>>;

pub(crate) fn patch<'de, D, T>(d: D) -> std::result::Result<Patch<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What a caller may send to create, upsert or update a contact.
/// Absent fields are left alone; `null` clears a field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub email: Patch<String>,
    /// Any common format; national numbers use the project's default country.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub phone: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub eid: Patch<String>,
    /// Full name; split into first and last name.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    /// Same as `name`.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub full_name: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub first_name: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub last_name: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<String>)]
    pub company: Patch<String>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<Address>)]
    pub address: Patch<Address>,
    #[serde(rename = "type", default, deserialize_with = "patch")]
    #[schema(value_type = Option<ContactType>)]
    pub contact_type: Patch<ContactType>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<ContactStatus>)]
    pub status: Patch<ContactStatus>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<Source>)]
    pub source: Patch<Source>,
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<Intent>)]
    pub intent: Patch<Intent>,
    /// Replaces the contact's tags.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Patch<Vec<String>>,
    /// Custom key/value pairs; replaces the contact's labels.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub labels: Patch<BTreeMap<String, String>>,
    /// Any JSON object; replaces the contact's metadata.
    #[serde(default, deserialize_with = "patch")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Patch<Map<String, Value>>,
    /// Sending-list ids to add the contact to (as active), unless it is on
    /// them already in any status. Also accepted as `addToLists`.
    #[serde(default, alias = "addToLists")]
    pub add_to_lists: Option<Vec<String>>,
}

/// A validated change to a contact: identities to claim or release, and the
/// other attributes to set or remove.
#[derive(Debug, Default, PartialEq)]
pub struct ContactChange {
    pub identities: Vec<(IdentityKind, Option<String>)>,
    pub set: Vec<(&'static str, Value)>,
    pub remove: Vec<&'static str>,
    /// Applied as an upgrade: kept only if it outranks the stored source.
    pub source: Option<Source>,
    pub add_to_lists: Vec<String>,
}

impl ContactChange {
    /// The identity an upsert matches on: email, else phone, else eid.
    pub fn match_identity(&self) -> Option<(IdentityKind, &str)> {
        IdentityKind::SETTABLE.iter().find_map(|kind| {
            self.identities
                .iter()
                .find(|(k, v)| k == kind && v.is_some())
                .and_then(|(k, v)| v.as_deref().map(|v| (*k, v)))
        })
    }

    pub fn identity(&self, kind: IdentityKind) -> Option<&Option<String>> {
        self.identities.iter().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    fn put(&mut self, field: &'static str, value: Option<Value>) {
        match value {
            Some(v) => self.set.push((field, v)),
            None => self.remove.push(field),
        }
    }
}

const MAX_TEXT: usize = 500;
const MAX_LABELS: usize = 100;
const MAX_METADATA_BYTES: usize = 32 * 1024;

fn bounded_text(field: &str, raw: String, max: usize) -> Result<Option<String>> {
    let value = normalize::tidy(raw);
    if value.as_ref().is_some_and(|v| v.len() > max && v.chars().count() > max) {
        return Err(Error::invalid(field, format!("{field} is at most {max} characters")));
    }
    Ok(value)
}

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A value given for a contact that was not stored as given, and why. The
/// rest of the record was kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldWarning {
    pub field: String,
    /// As it was given.
    pub value: String,
    pub reason: String,
}

impl FieldWarning {
    /// An identity value left out because another contact has it.
    pub fn taken(kind: IdentityKind, value: &str) -> Self {
        let field = kind.field();
        FieldWarning {
            field: field.into(),
            value: value.into(),
            reason: format!("another contact has this {field}; the contact was kept without it"),
        }
    }

    /// `field "value": reason`, for an import's error report.
    pub fn describe(&self) -> String {
        format!("{} \"{}\": {}", self.field, self.value, self.reason)
    }
}

impl ContactInput {
    /// `into_change` for channels whose sender cannot correct the request
    /// (imports, public submissions): a phone that is not a valid number is
    /// left out of the identities, kept as `phone_raw` and reported, as long
    /// as an email or eid still identifies the person. Everything else is
    /// refused as `into_change` refuses it.
    pub fn into_change_keeping(mut self, default_country: &str) -> Result<(ContactChange, Vec<FieldWarning>)> {
        let other_identity = [&self.email, &self.eid].iter().any(|v| {
            v.as_ref()
                .is_some_and(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
        });
        let unusable = match self.phone.as_ref().and_then(|v| v.as_deref()).map(str::trim) {
            Some(raw) if !raw.is_empty() && other_identity => normalize::phone(raw, default_country)
                .err()
                .map(|reason| (raw.to_string(), reason)),
            _ => None,
        };
        let Some((raw, reason)) = unusable else {
            return Ok((self.into_change(default_country)?, Vec::new()));
        };
        self.phone = None;
        let mut change = self.into_change(default_country)?;
        let raw = bounded_text("phone", raw, MAX_TEXT)?.unwrap_or_default();
        change.put("phone_raw", Some(Value::String(raw.clone())));
        let warning = FieldWarning {
            field: "phone".into(),
            value: raw,
            reason: format!("{reason}; the contact was kept without it"),
        };
        Ok((change, vec![warning]))
    }

    /// Validates and normalizes the input. Nothing is written when this fails,
    /// and the error names the offending field.
    pub fn into_change(self, default_country: &str) -> Result<ContactChange> {
        let mut change = ContactChange::default();

        if let Some(v) = self.email {
            let email = v
                .map(|raw| normalize::email(&raw).map_err(|m| Error::invalid("email", m)))
                .transpose()?;
            change.identities.push((IdentityKind::Email, email));
        }
        if let Some(v) = self.phone {
            let phone = match v.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(raw) => Some(normalize::phone(raw, default_country).map_err(|m| Error::invalid("phone", m))?),
            };
            change.identities.push((IdentityKind::Phone, phone));
            change.put("phone_raw", None);
        }
        if let Some(v) = self.eid {
            let eid = v.map(|raw| bounded_text("eid", raw, 200)).transpose()?.flatten();
            change.identities.push((IdentityKind::Eid, eid));
        }

        // A full name splits; explicit first/last names win over the split parts.
        let (full_field, full) = match (self.name, self.full_name) {
            (Some(_), Some(_)) => return Err(Error::invalid("full_name", "send either name or full_name, not both")),
            (Some(n), None) => ("name", Some(n)),
            (None, f) => ("full_name", f),
        };
        let (mut first, mut last) = (self.first_name, self.last_name);
        if let Some(full) = full {
            let full = full
                .map(|f| bounded_text(full_field, f, MAX_TEXT))
                .transpose()?
                .flatten();
            let (split_first, split_last) = full.as_deref().map(normalize::split_full_name).unwrap_or((None, None));
            first = first.or(Some(split_first));
            last = last.or(Some(split_last));
        }
        for (field, value) in [("first_name", first), ("last_name", last), ("company", self.company)] {
            if let Some(v) = value {
                let v = v.map(|raw| bounded_text(field, raw, MAX_TEXT)).transpose()?.flatten();
                change.put(field, v.map(Value::String));
            }
        }

        if let Some(address) = self.address {
            let address = address
                .map(normalize_address)
                .transpose()?
                .filter(|a| *a != Address::default());
            change.put("address", address.map(to_value));
        }
        if let Some(t) = self.contact_type {
            change.put("type", Some(to_value(t.unwrap_or_default())));
        }
        if let Some(s) = self.status {
            let status = s.unwrap_or_default();
            if status == ContactStatus::Deleted {
                return Err(Error::invalid("status", "use DELETE to delete a contact"));
            }
            change.put("status", Some(to_value(status)));
        }
        if let Some(s) = self.source {
            change.source = Some(s.ok_or_else(|| Error::invalid("source", "source cannot be cleared"))?);
        }
        if let Some(i) = self.intent {
            change.put("intent", i.map(to_value));
        }
        if let Some(tags) = self.tags {
            let tags = normalize::tags(&tags.unwrap_or_default()).map_err(|m| Error::invalid("tags", m))?;
            change.put("tags", Some(to_value(tags)));
        }
        if let Some(labels) = self.labels {
            let labels = labels.unwrap_or_default();
            if labels.len() > MAX_LABELS {
                return Err(Error::invalid("labels", "at most 100 labels"));
            }
            if labels
                .iter()
                .any(|(k, v)| k.trim().is_empty() || k.len() > 64 || v.len() > MAX_TEXT)
            {
                return Err(Error::invalid(
                    "labels",
                    "label keys are 1-64 characters, values at most 500",
                ));
            }
            change.put("labels", Some(to_value(labels)));
        }
        let mut lists = self.add_to_lists.unwrap_or_default();
        lists.dedup();
        change.add_to_lists = lists;
        if let Some(metadata) = self.metadata {
            let metadata = metadata.unwrap_or_default();
            if serde_json::to_vec(&metadata).map_or(0, |b| b.len()) > MAX_METADATA_BYTES {
                return Err(Error::invalid("metadata", "metadata is at most 32 KiB of JSON"));
            }
            change.put("metadata", Some(Value::Object(metadata)));
        }
        Ok(change)
    }
}

fn normalize_address(a: Address) -> Result<Address> {
    let f = |field: &str, v: Option<String>| -> Result<Option<String>> {
        v.map(|raw| bounded_text(field, raw, 200))
            .transpose()
            .map(Option::flatten)
    };
    Ok(Address {
        line1: f("address.line1", a.line1)?,
        line2: f("address.line2", a.line2)?,
        city: f("address.city", a.city)?,
        state: f("address.state", a.state)?,
        postal_code: f("address.postal_code", a.postal_code)?,
        country: f("address.country", a.country)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(v: Value) -> Result<ContactChange> {
        serde_json::from_value::<ContactInput>(v).unwrap().into_change("US")
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Validation { field, .. } => field.unwrap_or_default(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn identities_are_normalized_and_matched_in_order() {
        let c = change(json!({"phone": "(415) 555-2671", "email": " A@B.com ", "eid": "crm-1"})).unwrap();
        assert_eq!(c.match_identity(), Some((IdentityKind::Email, "a@b.com")));
        assert_eq!(c.identity(IdentityKind::Phone), Some(&Some("+14155552671".to_string())));
        let c = change(json!({"phone": "4155552671", "eid": "crm-1"})).unwrap();
        assert_eq!(c.match_identity(), Some((IdentityKind::Phone, "+14155552671")));
        let c = change(json!({"eid": " crm-1 "})).unwrap();
        assert_eq!(c.match_identity(), Some((IdentityKind::Eid, "crm-1")));
        assert_eq!(change(json!({"name": "x"})).unwrap().match_identity(), None);
    }

    #[test]
    fn a_full_name_splits_and_explicit_parts_win() {
        let c = change(json!({"name": "Mary Ann Smith"})).unwrap();
        assert!(c.set.contains(&("first_name", json!("Mary"))));
        assert!(c.set.contains(&("last_name", json!("Ann Smith"))));
        let c = change(json!({"full_name": "Mary Smith", "first_name": "Maria"})).unwrap();
        assert!(c.set.contains(&("first_name", json!("Maria"))));
        assert!(c.set.contains(&("last_name", json!("Smith"))));
        let c = change(json!({"name": null})).unwrap();
        assert_eq!(c.remove, vec!["first_name", "last_name"]);
    }

    #[test]
    fn null_clears_and_absent_leaves_alone() {
        let c = change(json!({"company": null, "phone": null})).unwrap();
        // A phone set or cleared replaces any unusable one kept as given.
        assert_eq!(c.remove, vec!["phone_raw", "company"]);
        assert_eq!(c.identity(IdentityKind::Phone), Some(&None));
        assert_eq!(c.identity(IdentityKind::Email), None);
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(field_of(change(json!({"email": "nope"})).unwrap_err()), "email");
        assert_eq!(field_of(change(json!({"phone": "12"})).unwrap_err()), "phone");
        assert_eq!(field_of(change(json!({"status": "deleted"})).unwrap_err()), "status");
        assert_eq!(field_of(change(json!({"tags": ["ok", " "]})).unwrap_err()), "tags");
        assert_eq!(
            field_of(change(json!({"company": "x".repeat(501)})).unwrap_err()),
            "company"
        );
        assert_eq!(
            field_of(change(json!({"address": {"city": "y".repeat(201)}})).unwrap_err()),
            "address.city"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<ContactInput>(json!({"emial": "a@b.com"})).is_err());
    }

    #[test]
    fn changed_fields_lists_names_and_tracked_values() {
        let old: Contact = serde_json::from_value(json!({
            "id": "01J0000000000000000000000A", "email": "a@b.com", "phone": null, "eid": null,
            "first_name": "A", "last_name": null, "company": null, "address": null, "source": "api",
            "intent": null, "referral_code": null, "referred_by": null, "last_sent_at": null,
            "last_clicked_at": null, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "deleted_at": null, "last_activity_at": null
        }))
        .unwrap();
        let mut new = old.clone();
        new.company = Some("Acme".into());
        new.contact_type = ContactType::Customer;
        new.updated_at = Utc::now();
        let (fields, values) = changed_fields(&old, &new);
        assert_eq!(fields, vec!["company", "type"]);
        assert_eq!(values["type"], json!({"from": "lead", "to": "customer"}));
        assert!(changed_fields(&old, &old).0.is_empty());
    }

    #[test]
    fn source_ranks_follow_the_documented_order() {
        let order = [
            Source::Waitlist,
            Source::Form,
            Source::Chat,
            Source::ContactForm,
            Source::Sms,
            Source::Import,
            Source::Api,
            Source::Manual,
        ];
        assert!(order.windows(2).all(|w| w[0].rank() > w[1].rank()));
        for s in order {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
    }
}
