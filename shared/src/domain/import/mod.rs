//! Contact imports: the rules for reading people's files (encoding,
//! delimiter, header mapping, rows → contacts) and the job's life cycle.
//! No I/O here: the pipeline lives in `usecases::imports`.

pub mod line_ends;
pub mod mapping;
pub mod row;
pub mod scan;
pub mod sniff;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::contact::ContactType;
use crate::{Error, Result};

pub use mapping::{Mapping, MappingInput};
pub use sniff::TextEncoding;

/// How rows meet existing contacts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Create new contacts, update existing ones.
    #[default]
    Upsert,
    /// Only new contacts; rows of existing ones are skipped.
    CreateOnly,
    /// Only existing contacts; rows of unknown people are skipped.
    UpdateOnly,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// Country of national phone numbers (ISO code); the project's by default.
    pub default_country: Option<String>,
    /// Type of every imported contact unless a `type` column says otherwise.
    #[serde(rename = "type")]
    pub contact_type: Option<ContactType>,
    /// A tag added to every imported contact.
    pub tag: Option<String>,
    /// A sending list every imported contact is added to (as active, via import;
    /// an existing subscription, an opt-out above all, is never changed).
    pub list_id: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// When true, an empty cell clears the field; by default empty cells never erase data.
    #[serde(default)]
    pub blank_overwrites: bool,
    /// Columns no field takes become labels keyed by their header.
    #[serde(default)]
    pub unmapped_as_labels: bool,
}

impl ImportOptions {
    pub fn validate(mut self) -> Result<Self> {
        if let Some(c) = &self.default_country {
            self.default_country =
                Some(crate::domain::normalize::country(c).map_err(|m| Error::invalid("options.default_country", m))?);
        }
        if let Some(t) = &self.tag {
            self.tag =
                Some(crate::domain::normalize::text(t).ok_or_else(|| Error::invalid("options.tag", "tag is empty"))?);
        }
        Ok(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportState {
    /// Waiting for the file (an upload URL was handed out) or for the planner.
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ImportState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ImportState::Completed | ImportState::Failed | ImportState::Cancelled
        )
    }
}

/// Row outcomes. `processed` is never stored: it is the sum of the four, so
/// the counters add up at every moment they are read. `warnings` counts
/// apart: created or updated rows with a value that was not stored (a phone
/// that is not a valid number, or another contact's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    #[serde(default)]
    pub warnings: u64,
}

impl Counts {
    pub fn processed(&self) -> u64 {
        self.created + self.updated + self.skipped + self.failed
    }

    pub fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.warnings += other.warnings;
    }
}

/// What happened to one row.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Created,
    Updated,
    Skipped(String),
    Failed(String),
}

impl Counts {
    pub fn count(&mut self, row: &RowOutcome) {
        match &row.outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(_) => self.failed += 1,
        }
        if !row.warnings.is_empty() {
            self.warnings += 1;
        }
    }
}

/// What happened to one row, with what of it was not stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RowOutcome {
    pub outcome: Outcome,
    /// Values the row gave that the contact was kept without, each with its
    /// value and reason (`FieldWarning::describe`).
    pub warnings: Vec<String>,
}

impl From<Outcome> for RowOutcome {
    fn from(outcome: Outcome) -> Self {
        RowOutcome {
            outcome,
            warnings: Vec::new(),
        }
    }
}

/// A slice of the file one worker imports: whole records only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkPlan {
    pub chunk: u32,
    /// Byte range of the (UTF-8) object the rows are read from, end exclusive.
    pub start: u64,
    pub end: u64,
    /// File line the chunk's first record starts on (the header is line 1).
    pub first_line: u64,
    pub rows: u64,
}

/// Rows per chunk: small enough that one worker finishes a chunk well within
/// a Lambda's time, large enough that a million rows is a hundred messages.
pub const CHUNK_ROWS: u64 = 10_000;

/// Rows a worker reads, writes and commits to the ledger at a time: a
/// batch's requests go out together, a handful of round trips a batch, so
/// against DynamoDB's latency the larger the batch the more rows a second
/// (`bench/README.md`, one chunk worker against DynamoDB latency).
pub const BATCH_ROWS: usize = 200;

/// When an import starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// As soon as the file is uploaded.
    #[default]
    OnUpload,
    /// When `POST …/imports/{id}/start` is called (preview first).
    Manual,
}

/// An import job as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Import {
    pub id: String,
    pub state: ImportState,
    pub filename: String,
    /// The file's key in the imports bucket.
    pub source_key: String,
    #[serde(default)]
    pub start: StartMode,
    #[schema(value_type = Object)]
    pub mapping_input: MappingInput,
    pub options: ImportOptions,
    pub encoding: Option<TextEncoding>,
    pub delimiter: Option<String>,
    pub headers: Option<Vec<String>>,
    /// The field each column feeds (`null`: not imported).
    pub mapping: Option<Vec<Option<String>>>,
    pub rows_total: Option<u64>,
    pub chunks_total: Option<u32>,
    /// Read from the chunk ledger, never stored.
    #[serde(default, skip_deserializing)]
    pub chunks_done: u32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The key the rows are read from (the file, or its UTF-8 copy).
    pub data_key: Option<String>,
    /// The S3 version of the upload that was planned: every read of the file
    /// is of it, so another upload to the same key (a version of its own,
    /// imported on its own) is never read at this plan's offsets.
    #[serde(default)]
    pub source_version: Option<String>,
    pub report_key: Option<String>,
    /// How many report parts (one per committed batch with problem rows)
    /// the report of a stopped job holds: a later join replaces it only
    /// with more.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub report_parts: Option<u32>,
}

impl Import {
    /// The version of `data_key` to read: the planned upload's, when the rows
    /// are read from the file itself (a UTF-8 copy is this job's own object).
    pub fn data_version(&self) -> Option<&str> {
        (self.data_key.as_ref() == Some(&self.source_key))
            .then_some(self.source_version.as_deref())
            .flatten()
    }

    /// A job waiting for its file (or for the planner).
    pub fn pending(id: String, filename: String, source_key: String, start: StartMode) -> Self {
        Import {
            id,
            state: ImportState::Pending,
            filename,
            source_key,
            start,
            mapping_input: MappingInput::new(),
            options: ImportOptions::default(),
            encoding: None,
            delimiter: None,
            headers: None,
            mapping: None,
            rows_total: None,
            chunks_total: None,
            chunks_done: 0,
            error: None,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            data_key: None,
            source_version: None,
            report_key: None,
            report_parts: None,
        }
    }
}

/// An import with its live progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportStatus {
    /// `rows_total` among them, once: the job's own field.
    #[serde(flatten)]
    pub import: Import,
    pub processed: u64,
    #[serde(flatten)]
    pub counts: Counts,
    /// 0–100.
    pub percent: f64,
    pub rows_per_second: Option<f64>,
    pub eta_seconds: Option<u64>,
    /// A download link (valid for an hour) to the CSV of failed and skipped rows.
    pub error_report_url: Option<String>,
}

impl ImportStatus {
    pub fn new(import: Import, counts: Counts, now: DateTime<Utc>, error_report_url: Option<String>) -> Self {
        let processed = counts.processed();
        let total = import.rows_total;
        let percent = match (import.state, total) {
            (ImportState::Completed, _) => 100.0,
            (_, Some(t)) if t > 0 => ((processed as f64 / t as f64) * 1000.0).round() / 10.0,
            _ => 0.0,
        };
        let rate = import.started_at.and_then(|start| {
            let end = import.finished_at.unwrap_or(now);
            let secs = (end - start).num_milliseconds() as f64 / 1000.0;
            (secs > 0.0 && processed > 0).then(|| (processed as f64 / secs * 10.0).round() / 10.0)
        });
        let eta = match (import.state, total, rate) {
            (ImportState::Running, Some(t), Some(r)) if r > 0.0 => {
                Some(((t.saturating_sub(processed)) as f64 / r).ceil() as u64)
            }
            _ => None,
        };
        ImportStatus {
            import,
            processed,
            counts,
            percent,
            rows_per_second: rate,
            eta_seconds: eta,
            error_report_url,
        }
    }
}

/// The header line of the error report.
pub const REPORT_HEADER: [&str; 4] = ["row", "outcome", "reason", "values"];

/// One report line: the file's line number, what happened, why, and the row
/// as it was in the file (its cells joined as one CSV line). A row imported
/// with warnings is reported as `warning`, its reasons joined by `; `.
pub fn report_line<C: AsRef<[u8]>>(line: u64, row: &RowOutcome, cells: impl IntoIterator<Item = C>) -> Option<Vec<u8>> {
    let warnings;
    let (kind, reason) = match &row.outcome {
        Outcome::Skipped(r) => ("skipped", r.as_str()),
        Outcome::Failed(r) => ("failed", r.as_str()),
        _ if !row.warnings.is_empty() => {
            warnings = row.warnings.join("; ");
            ("warning", warnings.as_str())
        }
        _ => return None,
    };
    let mut original = csv::Writer::from_writer(Vec::new());
    original.write_record(cells).ok()?;
    let original = String::from_utf8(original.into_inner().ok()?).ok()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        line.to_string().as_str(),
        kind,
        reason,
        original.trim_end_matches(['\r', '\n']),
    ])
    .ok()?;
    w.into_inner().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_adds_up_and_estimates() {
        let now = Utc::now();
        let import: Import = serde_json::from_value(serde_json::json!({
            "id": "01J0000000000000000000000A", "state": "running", "filename": "a.csv",
            "source_key": "imports/p/a.csv", "mapping_input": {}, "options": {}, "encoding": null, "delimiter": null,
            "headers": null, "mapping": null, "rows_total": 1000, "chunks_total": 1, "error": null,
            "created_at": now, "started_at": now - chrono::Duration::seconds(10), "finished_at": null,
            "data_key": null, "report_key": null
        }))
        .unwrap();
        let counts = Counts {
            created: 200,
            updated: 50,
            skipped: 25,
            failed: 25,
            warnings: 10,
        };
        let s = ImportStatus::new(import, counts, now, None);
        assert_eq!(s.processed, 300);
        assert_eq!(s.percent, 30.0);
        assert_eq!(s.rows_per_second, Some(30.0));
        assert_eq!(s.eta_seconds, Some(24));
    }

    #[test]
    fn report_lines_quote_what_needs_it() {
        let line = report_line(
            7,
            &Outcome::Failed("email is not valid".into()).into(),
            ["x@", "Smith, J"],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "7,failed,email is not valid,\"x@,\"\"Smith, J\"\"\"\n"
        );
        assert!(report_line(1, &Outcome::Created.into(), ["a"]).is_none());
        let warned = RowOutcome {
            outcome: Outcome::Updated,
            warnings: vec!["phone \"123\": phone is not a phone number".into()],
        };
        let line = report_line(3, &warned, ["a@b.io", "123"]).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "3,warning,\"phone \"\"123\"\": phone is not a phone number\",\"a@b.io,123\"\n"
        );
    }
}
