//! Bulk jobs, in one partition per job (`P#{pid}#BULK#{id}`): the job item
//! (`BULK`), one ledger item per chunk (`CHUNK#{n}`: how many of its ids are
//! committed and their outcome) and the chunk's ids (`IDS#{n}`, apart from
//! the ledger so that reading progress never reads the ids). A worker commits
//! a batch by moving `next` forward and adding the batch's counts in one
//! conditional UpdateItem, as import chunks do, so a redelivered message
//! never counts a contact twice.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::contacts::{conditional, put_request};
use super::{from_item, key, n, to_attr, Item, SkRange, Store};
use crate::domain::bulk::{BatchOutcome, BulkJob, ChunkProgress, JobState};
use crate::{Error, Result};

const JOB_SK: &str = "BULK";
/// Sorts after `BULK` and every `CHUNK#…`: the bound of a progress read.
pub(crate) const IDS_PREFIX: &str = "IDS#";
/// The ids of a job are needed only while it runs.
const KEEP_IDS_SECS: i64 = 30 * 24 * 3600;

fn job_pk(pid: &str, id: &str) -> String {
    format!("P#{pid}#BULK#{id}")
}

pub(crate) fn chunk_sk(chunk: u32) -> String {
    format!("CHUNK#{chunk:06}")
}

fn ids_sk(chunk: u32) -> String {
    format!("{IDS_PREFIX}{chunk:06}")
}

impl Store {
    /// Writes a new job; `false` if one with this id exists already.
    pub async fn create_bulk_job(&self, pid: &str, job: &BulkJob) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(job).map_err(Error::internal)?;
        item.extend(key(job_pk(pid, &job.id), JOB_SK));
        self.put_if_absent(item).await
    }

    pub async fn get_bulk_job(&self, pid: &str, id: &str) -> Result<Option<BulkJob>> {
        self.get_one(key(job_pk(pid, id), JOB_SK))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The job and its chunk ledger (not the ids), in one query.
    pub async fn bulk_job_with_progress(&self, pid: &str, id: &str) -> Result<Option<(BulkJob, Vec<ChunkProgress>)>> {
        self.job_with_ledger(job_pk(pid, id), JOB_SK, SkRange::Below(IDS_PREFIX))
            .await
    }

    /// Writes the selection as chunks of ids with a fresh ledger entry each.
    /// Only before the job starts: a planner run again rewrites them whole.
    pub async fn put_bulk_chunks(&self, pid: &str, id: &str, chunks: &[Vec<String>]) -> Result<()> {
        self.put_id_chunks(job_pk(pid, id), chunks, |chunk, size| {
            serde_dynamo::to_item(ChunkProgress {
                chunk,
                size,
                ..Default::default()
            })
            .map_err(Error::internal)
        })
        .await
    }

    /// A job's selection as chunks in partition `pk`: each chunk's ids
    /// (`IDS#{n}`, expiring once the job is long over) and its fresh ledger
    /// entry (`CHUNK#{n}`, made by `ledger(chunk, size)`).
    pub(crate) async fn put_id_chunks(
        &self,
        pk: String,
        chunks: &[Vec<String>],
        ledger: impl Fn(u32, u64) -> Result<Item>,
    ) -> Result<()> {
        let expires = Utc::now().timestamp() + KEEP_IDS_SECS;
        let mut writes = Vec::with_capacity(chunks.len() * 2);
        for (i, ids) in chunks.iter().enumerate() {
            let chunk = i as u32;
            let mut item = key(pk.clone(), &ids_sk(chunk));
            item.insert("ids".into(), to_attr(ids)?);
            item.insert("expires_at".into(), n(expires));
            writes.push(put_request(item)?);
            let mut item = ledger(chunk, ids.len() as u64)?;
            item.extend(key(pk.clone(), &chunk_sk(chunk)));
            writes.push(put_request(item)?);
        }
        self.batch_write(writes).await?;
        Ok(())
    }

    /// Records the fixed selection and moves a pending job to running.
    /// `false`: it was not pending (started before, or finished).
    pub async fn start_bulk_job(
        &self,
        pid: &str,
        id: &str,
        matched: u64,
        chunks_total: u32,
        started_at: DateTime<Utc>,
    ) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), JOB_SK)))
            .update_expression(
                "SET #state = :running, matched = :matched, chunks_total = :chunks, started_at = :started",
            )
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", to_attr(&JobState::Running)?)
            .expression_attribute_values(":pending", to_attr(&JobState::Pending)?)
            .expression_attribute_values(":matched", n(matched))
            .expression_attribute_values(":chunks", n(chunks_total))
            .expression_attribute_values(":started", to_attr(&started_at)?)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Moves a job to a final state unless it is in one already.
    pub async fn finish_bulk_job(&self, pid: &str, id: &str, state: JobState, error: Option<&str>) -> Result<bool> {
        self.finish_job(key(job_pk(pid, id), JOB_SK), to_attr(&state)?, error, &[])
            .await
    }

    pub async fn bulk_chunk(&self, pid: &str, id: &str, chunk: u32) -> Result<Option<(ChunkProgress, Vec<String>)>> {
        self.id_chunk(job_pk(pid, id), chunk).await
    }

    /// A chunk's ledger entry and its ids, from partition `pk`.
    pub(crate) async fn id_chunk<P: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        chunk: u32,
    ) -> Result<Option<(P, Vec<String>)>> {
        let Some(progress) = self.get_one(key(pk.clone(), &chunk_sk(chunk))).await? else {
            return Ok(None);
        };
        let progress: P = from_item(progress)?;
        let ids = match self.get_one(key(pk.clone(), &ids_sk(chunk))).await? {
            Some(mut item) => match item.remove("ids") {
                Some(v) => serde_dynamo::from_attribute_value(v).map_err(Error::internal)?,
                None => Vec::new(),
            },
            None => return Err(Error::internal(format!("{pk}: chunk {chunk} has no ids"))),
        };
        Ok(Some((progress, ids)))
    }

    /// Commits ids `from..to` of a chunk with their outcome. `false`: another
    /// delivery of this chunk committed them first (nothing is counted twice).
    pub async fn commit_bulk_batch(
        &self,
        pid: &str,
        id: &str,
        chunk: u32,
        (from, to): (u64, u64),
        outcome: &BatchOutcome,
    ) -> Result<bool> {
        let kept: Vec<AttributeValue> = outcome.kept.iter().map(to_attr).collect::<Result<_>>()?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), &chunk_sk(chunk))))
            .update_expression(
                "SET #next = :to, failures = list_append(if_not_exists(failures, :empty), :kept) \
                 ADD updated :u, failed :f",
            )
            .condition_expression("#next = :from")
            .expression_attribute_names("#next", "next")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .expression_attribute_values(":u", n(outcome.updated))
            .expression_attribute_values(":f", n(outcome.failed))
            .expression_attribute_values(":kept", AttributeValue::L(kept))
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }
}
