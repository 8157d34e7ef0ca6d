//! Bulk jobs: a selection too large for one call. The API records the job
//! and sends a `plan` message; the planner reads the selection once (that
//! moment is the job's `started_at`: contacts that match only later are not
//! acted on), writes it as chunks of ids and sends one `chunk` message per
//! chunk; chunk workers act on their ids in batches, committing each batch
//! to the chunk's ledger; the worker that finds every chunk done completes
//! the job. Every step may run twice (SQS delivers at least once) without
//! counting a contact twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;

use super::{apply_all, select, tally, Jobs};
use crate::domain::bulk::{
    chunks, Action, BulkJob, Change, ChunkProgress, Failure, Filter, JobState, FAILURES_KEPT_PER_CHUNK,
};
use crate::domain::ids::{is_id, new_id};
use crate::store::Store;
use crate::usecases::projects;
use crate::{Error, Result};

/// Contacts acted on between two ledger commits.
const BATCH: usize = 100;
/// Most failures a job's status lists.
const FAILURES_SHOWN: usize = 100;

/// On the bulk queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum BulkMessage {
    /// Read the selection and fan its chunks out.
    Plan { project_id: String, job_id: String },
    /// Act on one chunk of the selection.
    Chunk {
        project_id: String,
        job_id: String,
        chunk: u32,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobStatus {
    pub id: String,
    pub action: Action,
    pub state: JobState,
    /// Contacts in the selection, once it is read (`started_at`).
    pub matched: Option<u64>,
    /// Contacts acted on so far: `updated + failed`.
    pub processed: u64,
    pub updated: u64,
    pub failed: u64,
    /// The first failures (at most 100; `failed` counts them all).
    pub failures: Vec<Failure>,
    pub percent: f64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why a failed job could not read its selection.
    pub error: Option<String>,
}

impl BulkJobStatus {
    fn new(job: BulkJob, chunks: &[ChunkProgress]) -> Self {
        // A planner that ran twice may have left ledger entries past the chunks it kept.
        let chunks = chunks.iter().filter(|c| c.chunk < job.chunks_total);
        let (mut updated, mut failed, mut failures) = (0, 0, Vec::new());
        for c in chunks {
            updated += c.updated;
            failed += c.failed;
            failures.extend(c.failures.iter().take(FAILURES_SHOWN - failures.len()).cloned());
        }
        let processed = updated + failed;
        let percent = match (job.state, job.matched) {
            (JobState::Completed, _) => 100.0,
            (_, Some(m)) if m > 0 => (processed as f64 * 1000.0 / m as f64).round() / 10.0,
            _ => 0.0,
        };
        BulkJobStatus {
            id: job.id,
            action: job.action,
            state: job.state,
            matched: job.matched,
            processed,
            updated,
            failed,
            failures,
            percent,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            error: job.error,
        }
    }
}

/// Records the job and hands it to the planner. `ids`: the caller's own
/// selection, written as the job's chunks now; otherwise the planner reads `filter`.
pub(super) async fn start(
    jobs: &Jobs,
    pid: &str,
    action: Action,
    change: Change,
    filter: Option<Filter>,
    ids: Option<Vec<String>>,
) -> Result<BulkJobStatus> {
    let mut job = BulkJob {
        id: new_id(),
        action,
        change,
        filter,
        state: JobState::Pending,
        matched: None,
        chunks_total: 0,
        created_at: Utc::now(),
        started_at: None,
        finished_at: None,
        error: None,
    };
    if let Some(ids) = ids {
        let parts = chunks(&ids, jobs.chunk_ids);
        jobs.store.put_bulk_chunks(pid, &job.id, &parts).await?;
        job.matched = Some(ids.len() as u64);
        job.chunks_total = parts.len() as u32;
    }
    jobs.store.create_bulk_job(pid, &job).await?;
    jobs.queue
        .send(&BulkMessage::Plan {
            project_id: pid.to_string(),
            job_id: job.id.clone(),
        })
        .await?;
    info!(bulk_job = %job.id, action = ?action, "bulk job accepted");
    Ok(BulkJobStatus::new(job, &[]))
}

pub async fn status(store: &Store, pid: &str, id: &str) -> Result<BulkJobStatus> {
    if !is_id(id) {
        return Err(Error::NotFound("bulk job"));
    }
    let (job, chunks) = store
        .bulk_job_with_progress(pid, id)
        .await?
        .ok_or(Error::NotFound("bulk job"))?;
    Ok(BulkJobStatus::new(job, &chunks))
}

/// One message of the bulk queue.
pub async fn handle_message(jobs: &Jobs, body: &str) -> Result<()> {
    let message: BulkMessage =
        serde_json::from_str(body).map_err(|e| Error::internal(format!("not a bulk message: {e}")))?;
    match message {
        BulkMessage::Plan { project_id, job_id } => plan(jobs, &project_id, &job_id).await,
        BulkMessage::Chunk {
            project_id,
            job_id,
            chunk,
        } => run_chunk(jobs, &project_id, &job_id, chunk).await,
    }
}

async fn plan(jobs: &Jobs, pid: &str, id: &str) -> Result<()> {
    let store = &jobs.store;
    let Some(job) = store.get_bulk_job(pid, id).await? else {
        warn!(bulk_job = %id, "plan message for a job that does not exist");
        return Ok(());
    };
    match job.state {
        JobState::Pending => {}
        // Started before: the messages sent then may not all have gone out.
        JobState::Running => return send_unfinished(jobs, pid, &job).await,
        JobState::Completed | JobState::Failed => return Ok(()),
    }
    let started_at = Utc::now();
    let (matched, chunks_total) = match (&job.filter, job.matched) {
        (Some(filter), _) => match select(store, pid, filter, usize::MAX).await {
            Ok(ids) => {
                let parts = chunks(&ids, jobs.chunk_ids);
                store.put_bulk_chunks(pid, id, &parts).await?;
                (ids.len() as u64, parts.len() as u32)
            }
            // The selection itself is wrong (a list deleted since): nothing was changed.
            Err(Error::Internal(e)) => return Err(Error::Internal(e)),
            Err(e) => {
                store
                    .finish_bulk_job(pid, id, JobState::Failed, Some(&e.to_string()))
                    .await?;
                return Ok(());
            }
        },
        (None, Some(matched)) => (matched, job.chunks_total),
        (None, None) => return Err(Error::internal(format!("bulk job {id} has no selection"))),
    };
    if !store.start_bulk_job(pid, id, matched, chunks_total, started_at).await? {
        return Ok(());
    }
    info!(bulk_job = %id, matched, chunks = chunks_total, "bulk job started");
    if chunks_total == 0 {
        store.finish_bulk_job(pid, id, JobState::Completed, None).await?;
        return Ok(());
    }
    let job = BulkJob { chunks_total, ..job };
    send_unfinished(jobs, pid, &job).await
}

/// A chunk message for every chunk not done yet (a duplicate is harmless).
async fn send_unfinished(jobs: &Jobs, pid: &str, job: &BulkJob) -> Result<()> {
    let done: Vec<u32> = match jobs.store.bulk_job_with_progress(pid, &job.id).await? {
        Some((_, chunks)) => chunks.iter().filter(|c| c.done()).map(|c| c.chunk).collect(),
        None => Vec::new(),
    };
    let messages: Vec<BulkMessage> = (0..job.chunks_total)
        .filter(|n| !done.contains(n))
        .map(|chunk| BulkMessage::Chunk {
            project_id: pid.to_string(),
            job_id: job.id.clone(),
            chunk,
        })
        .collect();
    jobs.queue.send_all(&messages).await
}

async fn run_chunk(jobs: &Jobs, pid: &str, id: &str, chunk: u32) -> Result<()> {
    let store = &jobs.store;
    let Some(job) = store.get_bulk_job(pid, id).await? else {
        return Ok(());
    };
    if job.state != JobState::Running {
        return Ok(());
    }
    let project = match projects::get(store, pid).await {
        Ok(p) => p,
        Err(Error::NotFound(_)) => {
            store
                .finish_bulk_job(pid, id, JobState::Failed, Some("the project was deleted"))
                .await?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let Some((progress, ids)) = store.bulk_chunk(pid, id, chunk).await? else {
        return Err(Error::internal(format!("bulk job {id}: no chunk {chunk}")));
    };
    let mut next = progress.next as usize;
    let mut room = FAILURES_KEPT_PER_CHUNK.saturating_sub(progress.failures.len());
    while next < ids.len() {
        let to = (next + BATCH).min(ids.len());
        let batch = &ids[next..to];
        let results = apply_all(store, &project, job.action, &job.change, batch).await?;
        let outcome = tally(batch, results, room)?;
        if !store
            .commit_bulk_batch(pid, id, chunk, (next as u64, to as u64), &outcome)
            .await?
        {
            // Another delivery of this chunk is ahead of us; it finishes the chunk.
            return Ok(());
        }
        room -= outcome.kept.len();
        next = to;
    }
    complete_if_done(store, pid, id).await
}

/// Completes the job once every chunk is done (read from the ledger, so a
/// crash between two writes never leaves a count behind).
async fn complete_if_done(store: &Store, pid: &str, id: &str) -> Result<()> {
    let Some((job, chunks)) = store.bulk_job_with_progress(pid, id).await? else {
        return Ok(());
    };
    let done = chunks.iter().filter(|c| c.chunk < job.chunks_total && c.done()).count();
    if job.state == JobState::Running
        && done == job.chunks_total as usize
        && store.finish_bulk_job(pid, id, JobState::Completed, None).await?
    {
        let status = BulkJobStatus::new(job, &chunks);
        info!(bulk_job = %id, updated = status.updated, failed = status.failed, "bulk job completed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: JobState, matched: Option<u64>, chunks_total: u32) -> BulkJob {
        BulkJob {
            id: new_id(),
            action: Action::Tag,
            change: Change::default(),
            filter: None,
            state,
            matched,
            chunks_total,
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            error: None,
        }
    }

    fn progress(chunk: u32, size: u64, next: u64, failed: u64) -> ChunkProgress {
        ChunkProgress {
            chunk,
            size,
            next,
            updated: next - failed,
            failed,
            failures: (0..failed)
                .map(|i| Failure {
                    id: format!("{chunk}-{i}"),
                    error: "contact not found".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn status_adds_up_the_chunks_it_kept() {
        let chunks = [
            progress(0, 1000, 1000, 3),
            progress(1, 500, 200, 0),
            progress(2, 9, 9, 9),
        ];
        let s = BulkJobStatus::new(job(JobState::Running, Some(1500), 2), &chunks);
        assert_eq!((s.processed, s.updated, s.failed, s.failures.len()), (1200, 1197, 3, 3));
        assert_eq!(s.percent, 80.0);
        let s = BulkJobStatus::new(job(JobState::Completed, Some(0), 0), &[]);
        assert_eq!((s.processed, s.percent), (0, 100.0));
    }

    #[test]
    fn messages_name_their_step() {
        let m = BulkMessage::Chunk {
            project_id: "p".into(),
            job_id: "j".into(),
            chunk: 3,
        };
        let body = serde_json::to_string(&m).unwrap();
        assert_eq!(body, r#"{"step":"chunk","project_id":"p","job_id":"j","chunk":3}"#);
        assert_eq!(serde_json::from_str::<BulkMessage>(&body).unwrap(), m);
    }
}
