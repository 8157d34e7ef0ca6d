//! The chunk worker: reads its byte range of the file, upserts the rows in
//! batches, writes each batch's problem rows to a report part, and commits
//! the batch to the ledger. A redelivered message resumes after the last
//! committed batch; a row retried after a crash finds the contact its first
//! try created (its id is derived from the row), so it still counts as created.

use futures::StreamExt;
use tracing::{info, warn};

use super::{report_parts_prefix, ChunkMessage, Importer};
use crate::domain::contact::{IdentityKind, Source};
use crate::domain::ids::derived_id;
use crate::domain::import::mapping::{Field, Mapping};
use crate::domain::import::row::{self, RowError};
use crate::domain::import::scan::chunk_rows;
use crate::domain::import::sniff::DELIMITERS;
use crate::domain::import::{report_line, Counts, Import, ImportState, Mode, Outcome, BATCH_ROWS, REPORT_HEADER};
use crate::domain::list::Via;
use crate::domain::project::Project;
use crate::store::contacts::{ContactWrite, Merge, WriteMode};
use crate::store::imports::ChunkState;
use crate::usecases::contacts::{self, UpsertOptions};
use crate::usecases::tags;
use crate::{Error, Result};

/// Rows of a batch upserted at once.
const ROWS_IN_FLIGHT: usize = 8;

pub async fn run_chunk(ctx: &Importer, msg: &ChunkMessage) -> Result<()> {
    let pid = msg.project_id.as_str();
    let Some(job) = ctx.store.get_import(pid, &msg.import_id).await? else {
        return Ok(());
    };
    match job.state {
        ImportState::Running => {}
        ImportState::Pending => return Err(Error::internal("chunk of an import that is not started yet")),
        _ => return Ok(()),
    }
    let Some(project) = ctx.store.get_project(pid).await? else {
        return Ok(());
    };
    let Some(chunk) = ctx.store.get_chunk(pid, &job.id, msg.chunk).await? else {
        return Err(Error::internal("chunk message before its ledger entry"));
    };
    if !chunk.done && chunk.next_row < chunk.rows {
        if !import_rows(ctx, &project, &job, &chunk).await? {
            return Ok(());
        }
    }
    ctx.store.complete_chunk(pid, &job.id, chunk.chunk, chunk.rows).await?;
    // Whoever sees every chunk done finishes the job (finishing twice is harmless).
    if let Some((job, chunks)) = ctx.store.import_with_chunks(pid, &job.id).await? {
        let all_done = chunks.iter().all(|c| c.done);
        if job.state == ImportState::Running && all_done && Some(chunks.len() as u32) == job.chunks_total {
            finalize(ctx, pid, &job.id).await?;
        }
    }
    Ok(())
}

/// Imports the chunk's uncommitted rows. `false`: stopped early (cancelled,
/// or another delivery of the same chunk is ahead).
async fn import_rows(ctx: &Importer, project: &Project, job: &Import, chunk: &ChunkState) -> Result<bool> {
    let pid = project.id.as_str();
    let data_key = job
        .data_key
        .as_deref()
        .ok_or_else(|| Error::internal("planned job without data"))?;
    let delimiter = job
        .delimiter
        .as_deref()
        .and_then(|name| {
            DELIMITERS
                .into_iter()
                .find(|d| crate::domain::import::sniff::delimiter_name(*d) == name)
        })
        .unwrap_or(b',');
    let bytes = ctx.files.read_range(data_key, chunk.start, chunk.end).await?;
    let rows = chunk_rows(&bytes, delimiter, chunk.first_line).map_err(Error::internal)?;
    drop(bytes);
    if rows.len() as u64 != chunk.rows {
        return Err(Error::internal(format!(
            "chunk {} has {} rows, the plan says {}",
            chunk.chunk,
            rows.len(),
            chunk.rows
        )));
    }
    let fields = Mapping(job.mapping.clone().unwrap_or_default()).fields();
    let mut from = chunk.next_row;
    for batch in rows[from as usize..].chunks(BATCH_ROWS) {
        let current = ctx.store.get_import(pid, &job.id).await?;
        if current.is_none_or(|j| j.state != ImportState::Running) {
            info!(import_id = %job.id, chunk = chunk.chunk, "import stopped; chunk left");
            return Ok(false);
        }
        let fields = &fields;
        // Owned rows: futures over borrowed items trip the compiler's Send check.
        let outcomes: Vec<Outcome> = futures::stream::iter(batch.to_vec())
            .map(|(line, cells)| async move { import_row(ctx, project, job, fields, line, &cells).await })
            .buffered(ROWS_IN_FLIGHT)
            .collect::<Vec<Result<Outcome>>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        let mut counts = Counts::default();
        let mut report = Vec::new();
        for ((line, cells), outcome) in batch.iter().zip(&outcomes) {
            counts.count(outcome);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            if let Some(l) = report_line(*line, outcome, &cells) {
                report.extend(l);
            }
        }
        if !report.is_empty() {
            let key = format!("{}{:06}-{from:06}.csv", report_parts_prefix(pid, &job.id), chunk.chunk);
            ctx.files.put(&key, report, "text/csv; charset=utf-8").await?;
        }
        let to = from + batch.len() as u64;
        if !ctx
            .store
            .commit_batch(pid, &job.id, chunk.chunk, from, to, &counts)
            .await?
        {
            warn!(import_id = %job.id, chunk = chunk.chunk, from, "batch committed by another delivery");
            return Ok(false);
        }
        from = to;
    }
    Ok(true)
}

/// One row: validated, then upserted with the import's mode and options.
async fn import_row(
    ctx: &Importer,
    project: &Project,
    job: &Import,
    fields: &[Option<Field>],
    line: u64,
    cells: &[String],
) -> Result<Outcome> {
    let pid = project.id.as_str();
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    let opts = &job.options;
    let row = match row::to_input(fields, &cells, opts, &project.default_country) {
        Ok(r) => r,
        Err(RowError { reason, skip: true }) => return Ok(Outcome::Skipped(reason)),
        Err(RowError { reason, .. }) => return Ok(Outcome::Failed(reason)),
    };
    let mut change = match row.input.into_change(&row.country) {
        Ok(c) => c,
        Err(Error::Validation { message, .. }) => return Ok(Outcome::Failed(message)),
        Err(e) => return Err(e),
    };
    let Some((kind, _)) = change.match_identity() else {
        return Ok(Outcome::Skipped(row::NO_IDENTITY.into()));
    };
    change.add_to_lists = opts.list_id.iter().cloned().collect();
    let upsert = UpsertOptions {
        fill_blanks: false,
        source: Some(Source::Import),
        new_id: Some(derived_id(
            job.created_at.timestamp_millis().max(0) as u64,
            format!("{}/{line}", job.id).as_bytes(),
        )),
        create_only: opts.mode == Mode::CreateOnly,
        update_only: opts.mode == Mode::UpdateOnly,
        via: Some(Via::Import),
    };
    let upserted = match contacts::upsert_change(&ctx.store, project, change, upsert).await {
        Ok(u) => u,
        Err(Error::Conflict { code: "exists", .. }) => {
            return Ok(Outcome::Skipped(format!(
                "a contact with this {} exists (create_only)",
                kind.field()
            )))
        }
        Err(Error::NotFound(_)) => {
            return Ok(Outcome::Skipped(format!(
                "no contact has this {} (update_only)",
                kind.field()
            )))
        }
        Err(Error::Conflict { field, message, .. }) => {
            let field = field.unwrap_or_else(|| IdentityKind::Email.field().into());
            return Ok(Outcome::Failed(format!("{field}: {message}")));
        }
        Err(Error::Validation { message, .. }) => return Ok(Outcome::Failed(message)),
        Err(e) => return Err(e),
    };
    let cid = upserted.contact.id.clone();
    if !row.tags.is_empty() {
        tags::assign(&ctx.store, pid, &cid, &row.tags, &[]).await?;
    }
    if row
        .labels
        .iter()
        .any(|(k, v)| upserted.contact.labels.get(k) != Some(v))
    {
        let mut labels = upserted.contact.labels.clone();
        labels.extend(row.labels);
        let write = ContactWrite {
            set: vec![("labels".into(), crate::store::to_attr(&labels)?)],
            defaults: Vec::new(),
            remove: Vec::new(),
            mode: WriteMode::Update,
        };
        if let Merge::Stale | Merge::Missing = ctx.store.merge_contact(pid, &cid, write).await? {
            return Ok(Outcome::Failed("the contact was deleted while it was imported".into()));
        }
    }
    Ok(if upserted.created {
        Outcome::Created
    } else {
        Outcome::Updated
    })
}

/// Joins the report parts into one CSV (streamed, part by part) and completes the job.
async fn finalize(ctx: &Importer, pid: &str, id: &str) -> Result<()> {
    let parts = ctx.files.list(&report_parts_prefix(pid, id)).await?;
    let report_key = if parts.is_empty() {
        None
    } else {
        let key = format!("reports/{pid}/{id}/errors.csv");
        let mut upload = ctx.files.writer(&key, "text/csv; charset=utf-8");
        let mut header = csv::Writer::from_writer(Vec::new());
        header.write_record(REPORT_HEADER).map_err(Error::internal)?;
        upload.write(&header.into_inner().map_err(Error::internal)?).await?;
        for part in &parts {
            let bytes = ctx.files.get(part).await?;
            upload.write(&bytes).await?;
        }
        upload.finish().await?;
        Some(key)
    };
    if ctx
        .store
        .finish_import(pid, id, ImportState::Completed, None, report_key.as_deref())
        .await?
    {
        info!(import_id = %id, "import completed");
    }
    Ok(())
}
