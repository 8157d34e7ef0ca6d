//! What an export writes: the columns a caller may ask for, each contact's
//! cells, and cells made safe for spreadsheets (OWASP CSV injection,
//! CWE-1236). CSV quoting itself (RFC 4180) is the `csv` crate's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::bulk::Filter;
use super::contact::Contact;
use super::list::Subscription;
use crate::{Error, Result};

/// One column of a contact export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// A field of the contact, by its export name.
    Field(&'static str),
    /// `label:{key}`: one custom label.
    Label(String),
    /// `list:{list id}`: the contact's status on that list (empty if not on it).
    List(String),
}

/// The default columns, in order.
pub const DEFAULT_COLUMNS: [&str; 13] = [
    "email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "company",
    "source",
    "type",
    "status",
    "tags",
    "referral_code",
    "referral_count",
    "created_at",
];

/// Every field column there is, beyond labels and lists.
pub const FIELDS: [&str; 38] = [
    "id",
    "email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "phone_raw",
    "eid",
    "company",
    "source",
    "type",
    "status",
    "intent",
    "tags",
    "referral_code",
    "referred_by",
    "referral_count",
    "address_line1",
    "address_line2",
    "address_city",
    "address_state",
    "address_postal_code",
    "address_country",
    "total_sends",
    "total_opens",
    "total_clicks",
    "total_revenue",
    "messages_in",
    "messages_out",
    "last_sent_at",
    "last_opened_at",
    "last_clicked_at",
    "last_activity_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "labels",
    "metadata",
];

impl Column {
    pub fn header(&self) -> String {
        match self {
            Column::Field(f) => f.to_string(),
            Column::Label(k) => format!("label:{k}"),
            Column::List(id) => format!("list:{id}"),
        }
    }
}

/// The columns named in `spec` (comma-separated), or the defaults. Unknown
/// names are refused with the list of known ones; a name given twice once.
pub fn columns(spec: Option<&str>) -> Result<Vec<Column>> {
    let names: Vec<&str> = match spec {
        None => DEFAULT_COLUMNS.to_vec(),
        Some(s) => s.split(',').map(str::trim).filter(|n| !n.is_empty()).collect(),
    };
    if names.is_empty() {
        return Err(Error::invalid("columns", "name at least one column"));
    }
    if names.len() > 200 {
        return Err(Error::invalid("columns", "at most 200 columns"));
    }
    let mut out: Vec<Column> = Vec::new();
    for name in names {
        let column = if let Some(key) = name.strip_prefix("label:") {
            if key.is_empty() {
                return Err(Error::invalid("columns", "label: needs a key, e.g. label:plan"));
            }
            Column::Label(key.to_string())
        } else if let Some(id) = name.strip_prefix("list:") {
            if !super::ids::is_id(id) {
                return Err(Error::invalid("columns", format!("{name}: list: takes a list id")));
            }
            Column::List(id.to_string())
        } else {
            match FIELDS.iter().find(|f| **f == name) {
                Some(f) => Column::Field(f),
                None => {
                    return Err(Error::invalid(
                        "columns",
                        format!(
                            "unknown column {name:?}; columns are {}, label:<key> and list:<list id>",
                            FIELDS.join(", ")
                        ),
                    ))
                }
            }
        };
        if !out.contains(&column) {
            out.push(column);
        }
    }
    Ok(out)
}

/// Whether the export needs each contact's list memberships.
pub fn needs_lists(columns: &[Column]) -> bool {
    columns.iter().any(|c| matches!(c, Column::List(_)))
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

fn text(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// The value of one column for a contact, typed (for JSON Lines).
pub fn value(c: &Contact, column: &Column, subs: &[Subscription]) -> Value {
    let address = c.address.clone().unwrap_or_default();
    match column {
        Column::Label(k) => c.labels.get(k).map_or(Value::Null, |v| json!(v)),
        Column::List(id) => subs
            .iter()
            .find(|s| &s.list_id == id)
            .map_or(Value::Null, |s| json!(s.status.as_str())),
        Column::Field(f) => match *f {
            "id" => json!(c.id),
            "email" => text(&c.email),
            "name" => text(&c.full_name),
            "first_name" => text(&c.first_name),
            "last_name" => text(&c.last_name),
            "phone" => text(&c.phone),
            "phone_raw" => text(&c.phone_raw),
            "eid" => text(&c.eid),
            "company" => text(&c.company),
            "source" => c.source.map_or(Value::Null, |s| json!(s)),
            "type" => json!(c.contact_type),
            "status" => json!(c.status),
            "intent" => c.intent.map_or(Value::Null, |i| json!(i)),
            "tags" => json!(c.tags),
            "referral_code" => text(&c.referral_code),
            "referred_by" => text(&c.referred_by),
            "referral_count" => json!(c.referral_count),
            "address_line1" => text(&address.line1),
            "address_line2" => text(&address.line2),
            "address_city" => text(&address.city),
            "address_state" => text(&address.state),
            "address_postal_code" => text(&address.postal_code),
            "address_country" => text(&address.country),
            "total_sends" => json!(c.total_sends),
            "total_opens" => json!(c.total_opens),
            "total_clicks" => json!(c.total_clicks),
            "total_revenue" => json!(c.total_revenue),
            "messages_in" => json!(c.messages_in),
            "messages_out" => json!(c.messages_out),
            "last_sent_at" => time(c.last_sent_at),
            "last_opened_at" => time(c.last_opened_at),
            "last_clicked_at" => time(c.last_clicked_at),
            "last_activity_at" => time(c.last_activity_at),
            "created_at" => time(Some(c.created_at)),
            "updated_at" => time(Some(c.updated_at)),
            "deleted_at" => time(c.deleted_at),
            "labels" => json!(c.labels),
            "metadata" => Value::Object(c.metadata.clone()),
            _ => Value::Null,
        },
    }
}

/// A typed value as one CSV cell: text as is, lists joined with `;`,
/// objects as JSON, nothing as an empty cell; then made safe.
pub fn cell(v: &Value) -> String {
    let raw = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    };
    neutralize(&raw)
}

/// A cell a spreadsheet would run as a formula (it begins with `=`, `+`,
/// `-`, `@`, a tab, a carriage return or NUL) gets a leading `'`, which
/// spreadsheets show as text and do not print. A phone number in E.164
/// (`+` and digits only) is left as it is: it can only ever be that
/// number, never a formula that calls anything, and it stays a phone
/// number for everyone reading the file.
pub fn neutralize(cell: &str) -> String {
    let Some(first) = cell.chars().next() else {
        return String::new();
    };
    if !matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r' | '\0') || is_e164(cell) {
        return cell.to_string();
    }
    format!("'{cell}")
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The UTF-8 byte order mark Excel wants to read a CSV file as UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// RFC 4180, cells made safe for spreadsheets.
    #[default]
    Csv,
    /// JSON Lines: one JSON object a line, values typed.
    Jsonl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson",
        }
    }
}

/// What an asynchronous export holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportOf {
    /// The contacts a filter selects.
    #[default]
    Contacts,
    /// Email and SMS messages, sent and received, with the messages page's filters.
    Messages,
    /// The contact-form messages, with their page's filters (`status`, `q`).
    ContactMessages,
}

/// `pending → running → completed | failed | cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ExportState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ExportState::Completed | ExportState::Failed | ExportState::Cancelled
        )
    }
}

/// An asynchronous export: its audience and columns, and how far it is.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportJob {
    pub id: String,
    pub state: ExportState,
    #[serde(default)]
    pub of: ExportOf,
    pub format: Format,
    /// Column names, as given (or the defaults).
    pub columns: Vec<String>,
    /// The contacts' filter (of a contacts export).
    #[schema(value_type = Object)]
    pub filter: Filter,
    /// The messages' filter (of a messages or contact messages export), as checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message_filter: Option<Value>,
    #[serde(default)]
    pub bom: bool,
    /// Soft-deleted contacts that match the filter too, after the live ones.
    #[serde(default)]
    pub include_deleted: bool,
    /// Rows written so far (all of them once completed).
    #[serde(default)]
    pub rows_written: u64,
    /// The audience's size when the export started.
    pub total: Option<u64>,
    pub bytes: Option<u64>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    #[serde(default)]
    #[schema(ignore)]
    pub object_key: Option<String>,
    /// The run that owns the export: a redelivered message starts a new one.
    #[serde(default)]
    #[schema(ignore)]
    pub attempt: Option<String>,
    /// The schedule this export is a run of.
    #[serde(default)]
    pub schedule_id: Option<String>,
    /// A scheduled run's file goes under `exports/{project}/{prefix}/{date}/`.
    #[serde(default)]
    #[schema(ignore)]
    pub prefix: Option<String>,
    /// The bucket it is written to, when not the exports bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A recurring export: a schedule in EventBridge Scheduler's syntax, in a
/// time zone, and what each run exports.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportSchedule {
    pub id: String,
    pub name: String,
    /// `cron(0 9 ? * MON *)`, `rate(1 day)`, `rate(1 minute)`, …
    pub schedule: String,
    /// IANA time zone the cron fields are read in (default `UTC`).
    pub timezone: String,
    #[schema(value_type = Object)]
    pub filter: Filter,
    pub columns: Vec<String>,
    pub format: Format,
    #[serde(default)]
    pub bom: bool,
    /// Each run exports the soft-deleted contacts that match too.
    #[serde(default)]
    pub include_deleted: bool,
    /// Where each run's dated file goes: `exports/{project}/{prefix}/{YYYY-MM-DD}/…`
    /// in the exports bucket, or `{prefix}/{YYYY-MM-DD}/{export id}.csv` in `bucket`.
    pub prefix: String,
    /// A bucket of the user's (the one the deployment grants), else the exports bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub paused: bool,
    /// The next run, unless paused.
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// The export of the latest run.
    pub last_export_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a finished export wrote, kept beside the file.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    pub export_id: String,
    #[serde(default)]
    pub of: ExportOf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub format: Format,
    pub columns: Vec<String>,
    #[schema(value_type = Object)]
    pub filter: Filter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub message_filter: Option<Value>,
    /// Soft-deleted contacts were exported too (those deleted before `started_at`).
    #[serde(default)]
    pub include_deleted: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

/// One row as a JSON Lines line: each column name with its value.
pub fn json_object_line(names: &[&str], values: Vec<Value>) -> Vec<u8> {
    let row: serde_json::Map<String, Value> = names.iter().map(|n| n.to_string()).zip(values).collect();
    let mut line = serde_json::to_vec(&Value::Object(row)).unwrap_or_default();
    line.push(b'\n');
    line
}

/// One contact as a JSON Lines line: its columns, typed.
pub fn json_line(c: &Contact, columns: &[Column], subs: &[Subscription]) -> Vec<u8> {
    let row: serde_json::Map<String, Value> = columns.iter().map(|col| (col.header(), value(c, col, subs))).collect();
    let mut line = serde_json::to_vec(&Value::Object(row)).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_are_neutralized_and_phones_kept() {
        for (given, out) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("\0x", "'\0x"),
            ("+14155550100", "+14155550100"),
            ("+358401234567", "+358401234567"),
            ("+1415555010a", "'+1415555010a"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
        ] {
            assert_eq!(neutralize(given), out, "{given:?}");
        }
    }

    #[test]
    fn columns_are_checked() {
        assert_eq!(columns(None).unwrap().len(), DEFAULT_COLUMNS.len());
        let c = columns(Some("email, label:plan,list:01J00000000000000000000000,email")).unwrap();
        assert_eq!(
            c,
            vec![
                Column::Field("email"),
                Column::Label("plan".into()),
                Column::List("01J00000000000000000000000".into())
            ]
        );
        for bad in ["nope", "label:", "list:abc", ""] {
            assert!(columns(Some(bad)).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn no_cell_starts_a_formula(s in "\\PC{0,20}") {
            let out = neutralize(&s);
            let starts = out.chars().next();
            prop_assert!(!matches!(starts, Some('=' | '-' | '@' | '\t' | '\r' | '\0')));
            if starts == Some('+') {
                prop_assert!(is_e164(&out));
            }
            // Nothing is lost: the value is still there after the mark.
            prop_assert!(out.ends_with(&s));
        }
    }
}
