//! What an import would do, before it runs: the detected encoding and
//! delimiter, the headers and mapping, and the first rows as they would be
//! stored with what would happen to each. Reads only the file's first bytes
//! and writes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{check_setup, job, plan::first_record, Importer};
use crate::domain::import::mapping::{self, MappingInput};
use crate::domain::import::row::{self, RowError};
use crate::domain::import::scan::{chunk_rows, ends_in_open_quote, is_excel_separator, scan, ScanError, LIMITS};
use crate::domain::import::sniff::{self, TextEncoding};
use crate::domain::import::{ImportOptions, Mode};
use crate::domain::project::Project;
use crate::{Error, Result};

const PREVIEW_BYTES: u64 = 256 * 1024;
const PREVIEW_ROWS: usize = 20;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    /// Try another mapping (not saved; send it to `…/start`).
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<MappingInput>,
    pub options: Option<ImportOptions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub encoding: TextEncoding,
    /// comma, semicolon, tab or pipe.
    pub delimiter: String,
    pub headers: Vec<String>,
    /// The field each column feeds (`null`: not imported).
    pub mapping: Vec<Option<String>>,
    pub rows: Vec<PreviewRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewRow {
    /// The file's line number.
    pub row: u64,
    /// would_create, would_update, would_skip or would_fail.
    pub outcome: String,
    pub reason: Option<String>,
    /// The contact's fields as they would be stored.
    #[schema(value_type = Object)]
    pub values: Map<String, Value>,
}

pub async fn preview(ctx: &Importer, project: &Project, id: &str, input: PreviewInput) -> Result<Preview> {
    let pid = project.id.as_str();
    let import = job(ctx, pid, id).await?;
    let Some(size) = ctx.files.size(&import.source_key).await? else {
        return Err(Error::Conflict {
            code: "file_missing",
            field: None,
            message: "upload the file to upload_url first".into(),
        });
    };
    let mapping_input = input.mapping.unwrap_or(import.mapping_input);
    let opts = check_setup(&ctx.store, pid, &mapping_input, input.options.unwrap_or(import.options)).await?;
    let sample = ctx
        .files
        .read_range(&import.source_key, None, 0, PREVIEW_BYTES.min(size))
        .await?;
    if let Some(why) = sniff::not_text(&sample) {
        return Err(Error::invalid("file", why));
    }
    let sniff::Sample { encoding, mut text, .. } = sniff::read_sample(&sample);
    if size > PREVIEW_BYTES {
        // The sample may end mid-row: keep whole lines.
        if let Some(i) = text.rfind('\n') {
            text.truncate(i + 1);
        }
    }
    let delimiter = sniff::delimiter(&text);
    let headers = first_record(&text, delimiter).ok_or_else(|| Error::invalid("file", "the file is empty"))?;
    if size <= PREVIEW_BYTES {
        // The whole file is here: refuse it as the import would.
        if let Some(open) = open_quote(text.as_bytes(), delimiter) {
            return Err(Error::invalid("file", open.to_string()));
        }
    }
    let mapping = mapping::resolve(&headers, &mapping_input, opts.unmapped_as_labels)?;
    let fields = mapping.fields();
    let records = chunk_rows(text.as_bytes(), delimiter, 1).map_err(|e| Error::invalid("file", e.to_string()))?;
    let mut rows = Vec::new();
    let rows_after_the_header = records
        .into_iter()
        .skip_while(|(line, cells)| *line == 1 && is_excel_separator(cells.as_byte_record()))
        .skip(1);
    for (line, cells) in rows_after_the_header.take(PREVIEW_ROWS) {
        rows.push(preview_row(ctx, project, &fields, &opts, line, &cells).await?);
    }
    Ok(Preview {
        encoding,
        delimiter: sniff::delimiter_name(delimiter).to_string(),
        headers,
        mapping: mapping.0,
        rows,
    })
}

/// A quote the last row of `text` opens and never closes.
fn open_quote(text: &[u8], delimiter: u8) -> Option<ScanError> {
    let (start, line) = scan(text, delimiter, 0, LIMITS).ok()?.last_row?;
    ends_in_open_quote(&text[start as usize..], delimiter).then_some(ScanError::OpenQuote(line))
}

async fn preview_row(
    ctx: &Importer,
    project: &Project,
    fields: &[Option<mapping::Field>],
    opts: &ImportOptions,
    line: u64,
    cells: &csv::StringRecord,
) -> Result<PreviewRow> {
    let marked = |outcome: &str, reason: String| PreviewRow {
        row: line,
        outcome: outcome.into(),
        reason: Some(reason),
        values: Map::new(),
    };
    let fail = |reason| marked("would_fail", reason);
    let skip = |reason| marked("would_skip", reason);
    let row = match row::to_input(fields, cells, opts, &project.default_country) {
        Ok(r) => r,
        Err(RowError { reason, skip: true }) => return Ok(skip(reason)),
        Err(RowError { reason, .. }) => return Ok(fail(reason)),
    };
    let change = match row.input.into_change(&row.country) {
        Ok(c) => c,
        Err(Error::Validation { message, .. }) => return Ok(fail(message)),
        Err(e) => return Err(e),
    };
    let mut values = Map::new();
    for (kind, value) in &change.identities {
        values.insert(kind.field().into(), value.clone().map_or(Value::Null, Value::String));
    }
    for (field, value) in &change.set {
        values.insert(field.to_string(), value.clone());
    }
    for field in &change.remove {
        values.insert(field.to_string(), Value::Null);
    }
    if !row.tags.is_empty() {
        values.insert("tags".into(), serde_json::json!(row.tags));
    }
    if !row.labels.is_empty() {
        values.insert("labels".into(), serde_json::json!(row.labels));
    }
    let Some((kind, value)) = change.match_identity() else {
        return Ok(skip(row::NO_IDENTITY.into()));
    };
    let exists = ctx.store.identity_owner(&project.id, kind, value).await?.is_some();
    let (outcome, reason) = match (exists, opts.mode) {
        (true, Mode::CreateOnly) => (
            "would_skip",
            Some(format!("a contact with this {} exists (create_only)", kind.field())),
        ),
        (false, Mode::UpdateOnly) => (
            "would_skip",
            Some(format!("no contact has this {} (update_only)", kind.field())),
        ),
        (true, _) => ("would_update", None),
        (false, _) => ("would_create", None),
    };
    Ok(PreviewRow {
        row: line,
        outcome: outcome.into(),
        reason,
        values,
    })
}
