//! The chunk worker: reads its byte range of the file, upserts the rows in
//! batches (`batch`), writes each batch's problem rows to a report part, and
//! commits the batch to the ledger. A redelivered message resumes after the
//! last committed batch. It also writes the reports (`report`).

use tracing::{error, info, warn};

use super::{report, ChunkMessage, Importer, WorkerMessage};
use crate::domain::import::mapping::Mapping;
use crate::domain::import::scan::ChunkRows;
use crate::domain::import::sniff::DELIMITERS;
use crate::domain::import::{report_line, Counts, Import, ImportState, BATCH_ROWS};
use crate::domain::project::Project;
use crate::store::imports::ChunkState;
use crate::{Error, Result};

/// One message of the chunk queue, delivered for the `receives`th time.
pub async fn handle_worker_message(ctx: &Importer, msg: &WorkerMessage, receives: u32) -> Result<()> {
    match msg {
        WorkerMessage::Chunk(chunk) => {
            let result = run_chunk(ctx, chunk, receives > 1).await;
            if let Err(e) = &result {
                if receives >= ctx.max_receives {
                    give_up(ctx, chunk, e).await?;
                }
            }
            result
        }
        WorkerMessage::CancelledReport { project_id, import_id } => {
            report::for_stopped(ctx, project_id, import_id).await
        }
    }
}

/// A chunk failed on its last delivery (its message goes to the dead-letter
/// queue): the import fails, saying where, and keeps and reports the rows
/// committed before. The error itself is logged, not shown.
async fn give_up(ctx: &Importer, msg: &ChunkMessage, error: &Error) -> Result<()> {
    let (pid, id) = (msg.project_id.as_str(), msg.import_id.as_str());
    error!(import_id = %id, chunk = msg.chunk, error = %error, "chunk failed on its last try; import failed");
    let rows = match ctx.store.get_chunk(pid, id, msg.chunk).await? {
        Some(chunk) => format!("the rows from line {} on", chunk.first_line),
        None => "a part of the file".to_string(),
    };
    let reason = format!(
        "{rows} could not be imported after {} tries (an internal error, logged); the rows imported before stay",
        ctx.max_receives
    );
    if ctx
        .store
        .finish_import(pid, id, ImportState::Failed, Some(&reason), None)
        .await?
    {
        report::for_stopped(ctx, pid, id).await?;
    }
    Ok(())
}

pub async fn run_chunk(ctx: &Importer, msg: &ChunkMessage, again: bool) -> Result<()> {
    let pid = msg.project_id.as_str();
    let Some(job) = ctx.store.get_import(pid, &msg.import_id).await? else {
        return Ok(());
    };
    let rows = match job.state {
        ImportState::Running => Rows::All,
        ImportState::Pending => return Err(Error::internal("chunk of an import that is not started yet")),
        // The delivery before this one failed or died, perhaps half way
        // through writing a batch: that batch finishes, as one under way at
        // the cancel does, so that every contact it wrote is counted.
        ImportState::Cancelled | ImportState::Failed if again => Rows::Interrupted,
        _ => return Ok(()),
    };
    let Some(project) = ctx.store.get_project(pid).await? else {
        return Ok(());
    };
    let Some(chunk) = ctx.store.get_chunk(pid, &job.id, msg.chunk).await? else {
        return Err(Error::internal("chunk message before its ledger entry"));
    };
    let mut reported = false;
    if !chunk.done && chunk.next_row < chunk.rows {
        let delivery = import_rows(ctx, &project, &job, &chunk, rows).await?;
        reported = delivery.reported;
        if !delivery.finished {
            if reported {
                report::for_stopped(ctx, pid, &job.id).await?;
            }
            return Ok(());
        }
    }
    ctx.store.complete_chunk(pid, &job.id, chunk.chunk, chunk.rows).await?;
    // Whoever sees every chunk done finishes the job (finishing twice is harmless).
    if let Some((job, chunks)) = ctx.store.import_with_chunks(pid, &job.id).await? {
        let all_done = chunks.iter().all(|c| c.done);
        match job.state {
            ImportState::Running if all_done && Some(chunks.len() as u32) == job.chunks_total => {
                report::complete(ctx, pid, &job.id).await?;
            }
            // Its last batch was running when the job was stopped.
            ImportState::Cancelled | ImportState::Failed if reported => {
                report::for_stopped(ctx, pid, &job.id).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Which of the chunk's uncommitted rows a delivery imports.
#[derive(Clone, Copy)]
enum Rows {
    /// All of them, batch by batch, while the job runs.
    All,
    /// The first batch only, whatever the job's state.
    Interrupted,
}

/// How far one delivery of a chunk message got.
struct Delivery {
    /// Every row of the chunk is committed; otherwise it stopped early
    /// (cancelled, or another delivery of the same chunk is ahead).
    finished: bool,
    /// It wrote a report part.
    reported: bool,
}

/// Imports the chunk's uncommitted rows.
async fn import_rows(
    ctx: &Importer,
    project: &Project,
    job: &Import,
    chunk: &ChunkState,
    rows: Rows,
) -> Result<Delivery> {
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
    let bytes = ctx
        .files
        .read_range(data_key, job.data_version(), chunk.start, chunk.end)
        .await?;
    let mut reader = ChunkRows::new(&bytes, delimiter, chunk.first_line);
    let fields = Mapping(job.mapping.clone().unwrap_or_default()).fields();
    // One batch of records, refilled in place: a chunk's rows are never all in memory.
    let mut batch = vec![(0u64, csv::StringRecord::new()); BATCH_ROWS];
    let mut from = 0u64;
    let mut reported = false;
    // Rows an earlier delivery committed are read past, not imported again.
    while from < chunk.next_row {
        let want = (chunk.next_row - from).min(BATCH_ROWS as u64) as usize;
        next_rows(&mut reader, &mut batch[..want], chunk)?;
        from += want as u64;
    }
    // The job's state is read with the commit of the batch before (the first
    // batch goes on the state `run_chunk` has just read): a stop is still
    // seen before the next batch is written, a round trip a batch sooner.
    let mut running = true;
    while from < chunk.rows {
        let want = (chunk.rows - from).min(BATCH_ROWS as u64) as usize;
        let batch = next_rows(&mut reader, &mut batch[..want], chunk)?;
        // Checked before the last batch is written, as a shortfall is.
        if from + want as u64 == chunk.rows
            && reader
                .read(&mut csv::StringRecord::new())
                .map_err(Error::internal)?
                .is_some()
        {
            return Err(mismatch(chunk, "more"));
        }
        let stopped = match rows {
            Rows::All => !running,
            Rows::Interrupted => from > chunk.next_row,
        };
        if stopped {
            info!(import_id = %job.id, chunk = chunk.chunk, "import stopped; chunk left");
            return Ok(Delivery {
                finished: false,
                reported,
            });
        }
        let outcomes = super::batch::import_batch(ctx, project, job, &fields, batch).await?;
        let mut counts = Counts::default();
        let mut report = Vec::new();
        for ((line, cells), outcome) in batch.iter().zip(&outcomes) {
            counts.count(outcome);
            if let Some(l) = report_line(*line, outcome, cells) {
                report.extend(l);
            }
        }
        if !report.is_empty() {
            let key = report::part_key(pid, &job.id, chunk.chunk, from);
            ctx.files.put(&key, report, "text/csv; charset=utf-8").await?;
            reported = true;
        }
        let to = from + batch.len() as u64;
        let commit = ctx.store.commit_batch(pid, &job.id, chunk.chunk, from, to, &counts);
        let committed = if matches!(rows, Rows::All) && to < chunk.rows {
            let (committed, now) = futures::future::try_join(commit, ctx.store.get_import(pid, &job.id)).await?;
            running = now.is_some_and(|j| j.state == ImportState::Running);
            committed
        } else {
            commit.await?
        };
        if !committed {
            warn!(import_id = %job.id, chunk = chunk.chunk, from, "batch committed by another delivery");
            return Ok(Delivery {
                finished: false,
                reported,
            });
        }
        from = to;
    }
    Ok(Delivery {
        finished: true,
        reported,
    })
}

/// Fills the whole of `batch` with the chunk's next rows: the plan counted
/// them, so running out is an error, raised before the batch is written.
fn next_rows<'b>(
    reader: &mut ChunkRows,
    batch: &'b mut [(u64, csv::StringRecord)],
    chunk: &ChunkState,
) -> Result<&'b [(u64, csv::StringRecord)]> {
    if reader.fill(batch).map_err(Error::internal)? < batch.len() {
        return Err(mismatch(chunk, "fewer"));
    }
    Ok(batch)
}

/// The chunk's bytes do not hold the rows its plan counted (`fewer` or
/// `more`).
fn mismatch(chunk: &ChunkState, how: &str) -> Error {
    Error::internal(format!(
        "chunk {} holds {how} rows than the {} of its plan",
        chunk.chunk, chunk.rows
    ))
}
