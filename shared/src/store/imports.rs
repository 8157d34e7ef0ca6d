//! Import jobs and their chunk ledger, in one partition per job
//! (`P#{pid}#IMPORT#{id}`): the job item (`IMPORT`) and one item per chunk
//! (`CHUNK#{n}`) holding how many of its rows are committed and their
//! outcome counts. A worker commits a batch by moving `next_row` forward and
//! adding the batch's counts in one conditional UpdateItem, so a redelivered
//! or duplicated chunk message never counts a row twice. Progress is one
//! query of the partition. Jobs are listed newest first on GSI1
//! (`P#{pid}#IMPORTS`, one write per job: never hot).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::contacts::conditional;
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, SkRange, Store};
use crate::domain::import::{ChunkPlan, Counts, Import, ImportState};
use crate::{Error, Result};

const JOB_SK: &str = "IMPORT";

fn job_pk(pid: &str, id: &str) -> String {
    format!("P#{pid}#IMPORT#{id}")
}

fn chunk_sk(chunk: u32) -> String {
    format!("CHUNK#{chunk:06}")
}

fn imports_list(pid: &str) -> String {
    format!("P#{pid}#IMPORTS")
}

/// A chunk's ledger entry (flat: serde's flatten does not read DynamoDB numbers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChunkState {
    pub chunk: u32,
    pub start: u64,
    pub end: u64,
    pub first_line: u64,
    pub rows: u64,
    /// Rows of the chunk committed so far (in file order).
    #[serde(default)]
    pub next_row: u64,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub updated: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub warnings: u64,
    #[serde(default)]
    pub done: bool,
}

impl ChunkState {
    pub fn counts(&self) -> Counts {
        Counts {
            created: self.created,
            updated: self.updated,
            skipped: self.skipped,
            failed: self.failed,
            warnings: self.warnings,
        }
    }
}

/// What the planner learned about the file.
pub struct Planned<'a> {
    pub import: &'a Import,
    pub started_at: DateTime<Utc>,
}

impl Store {
    /// Writes a new job; `false` if one with this id exists already.
    pub async fn create_import(&self, pid: &str, import: &Import) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(import).map_err(Error::internal)?;
        item.extend(key(job_pk(pid, &import.id), JOB_SK));
        item.insert("GSI1PK".into(), s(imports_list(pid)));
        item.insert("GSI1SK".into(), s(import.id.as_str()));
        self.put_if_absent(item).await
    }

    pub async fn get_import(&self, pid: &str, id: &str) -> Result<Option<Import>> {
        self.get_one(key(job_pk(pid, id), JOB_SK))
            .await?
            .map(from_item)
            .transpose()
    }

    /// The job and its chunk ledger, in one query.
    pub async fn import_with_chunks(&self, pid: &str, id: &str) -> Result<Option<(Import, Vec<ChunkState>)>> {
        self.job_with_ledger(job_pk(pid, id), JOB_SK, SkRange::Any).await
    }

    /// The project's jobs, newest first.
    pub async fn list_imports(&self, pid: &str, limit: usize, before: Option<&str>) -> Result<(Vec<Import>, bool)> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .scan_index_forward(false)
            .limit(limit as i32 + 1)
            .expression_attribute_values(":pk", s(imports_list(pid)));
        req = match before {
            Some(b) => req
                .key_condition_expression("GSI1PK = :pk AND GSI1SK < :before")
                .expression_attribute_values(":before", s(b)),
            None => req.key_condition_expression("GSI1PK = :pk"),
        };
        let out = req.send().await.map_err(sdk_error)?;
        let mut ids: Vec<String> = out
            .items()
            .iter()
            .filter_map(|i| get_s(i, "GSI1SK").map(str::to_string))
            .collect();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.get_import(pid, &id).await? {
                jobs.push(job);
            }
        }
        Ok((jobs, more))
    }

    /// Records the plan and moves a pending job to running. `Ok(false)`: the
    /// job was not pending (planned before, or cancelled).
    pub async fn start_import(&self, pid: &str, planned: Planned<'_>) -> Result<bool> {
        let j = planned.import;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, &j.id), JOB_SK)))
            .update_expression(
                "SET #state = :running, encoding = :enc, delimiter = :delim, headers = :headers, mapping = :mapping, \
                 rows_total = :rows, chunks_total = :chunks, data_key = :data, source_version = :version, started_at = :started",
            )
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", to_attr(&ImportState::Running)?)
            .expression_attribute_values(":pending", to_attr(&ImportState::Pending)?)
            .expression_attribute_values(":enc", to_attr(&j.encoding)?)
            .expression_attribute_values(":delim", to_attr(&j.delimiter)?)
            .expression_attribute_values(":headers", to_attr(&j.headers)?)
            .expression_attribute_values(":mapping", to_attr(&j.mapping)?)
            .expression_attribute_values(":rows", to_attr(&j.rows_total)?)
            .expression_attribute_values(":chunks", to_attr(&j.chunks_total)?)
            .expression_attribute_values(":data", to_attr(&j.data_key)?)
            .expression_attribute_values(":version", to_attr(&j.source_version)?)
            .expression_attribute_values(":started", to_attr(&planned.started_at)?)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Moves a job to a final state unless it is in one already.
    pub async fn finish_import(
        &self,
        pid: &str,
        id: &str,
        state: ImportState,
        error: Option<&str>,
        report_key: Option<&str>,
    ) -> Result<bool> {
        let report: Vec<(&str, AttributeValue)> = report_key.map(|k| ("report_key", s(k))).into_iter().collect();
        self.finish_job(key(job_pk(pid, id), JOB_SK), to_attr(&state)?, error, &report)
            .await
    }

    /// Points a cancelled or failed job at a report of `parts` parts, unless
    /// it has one of as many or more (`false` then).
    pub async fn set_stopped_report(&self, pid: &str, id: &str, report_key: &str, parts: u32) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), JOB_SK)))
            .update_expression("SET report_key = :key, report_parts = :parts")
            .condition_expression(
                "#state IN (:cancelled, :failed) AND (attribute_not_exists(report_parts) OR report_parts < :parts)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":cancelled", to_attr(&ImportState::Cancelled)?)
            .expression_attribute_values(":failed", to_attr(&ImportState::Failed)?)
            .expression_attribute_values(":key", s(report_key))
            .expression_attribute_values(":parts", n(parts))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Writes a chunk's ledger entry unless it exists (a replanned job keeps
    /// the progress its chunks made).
    pub async fn put_chunk(&self, pid: &str, id: &str, plan: &ChunkPlan) -> Result<()> {
        let state = ChunkState {
            chunk: plan.chunk,
            start: plan.start,
            end: plan.end,
            first_line: plan.first_line,
            rows: plan.rows,
            next_row: 0,
            created: 0,
            updated: 0,
            skipped: 0,
            failed: 0,
            warnings: 0,
            done: false,
        };
        let mut item: Item = serde_dynamo::to_item(&state).map_err(Error::internal)?;
        item.extend(key(job_pk(pid, id), &chunk_sk(plan.chunk)));
        self.put_if_absent(item).await?;
        Ok(())
    }

    pub async fn get_chunk(&self, pid: &str, id: &str, chunk: u32) -> Result<Option<ChunkState>> {
        self.get_one(key(job_pk(pid, id), &chunk_sk(chunk)))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Commits rows `from..to` of a chunk with their counts. `false`: another
    /// delivery of this chunk committed them first (nothing is counted twice).
    pub async fn commit_batch(&self, pid: &str, id: &str, chunk: u32, from: u64, to: u64, c: &Counts) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), &chunk_sk(chunk))))
            .update_expression("SET next_row = :to ADD created :c, updated :u, skipped :s, failed :f, warnings :w")
            .condition_expression("next_row = :from")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .expression_attribute_values(":c", n(c.created))
            .expression_attribute_values(":u", n(c.updated))
            .expression_attribute_values(":s", n(c.skipped))
            .expression_attribute_values(":f", n(c.failed))
            .expression_attribute_values(":w", n(c.warnings))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Marks a fully committed chunk done (`false` if it was already).
    /// Whether the job is complete is read from the ledger, never from a
    /// separate counter that a crash between two writes could leave behind.
    pub async fn complete_chunk(&self, pid: &str, id: &str, chunk: u32, rows: u64) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), &chunk_sk(chunk))))
            .update_expression("SET done = :yes")
            .condition_expression("next_row = :rows AND done = :no")
            .expression_attribute_values(":rows", n(rows))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }
}

impl Store {
    /// Replaces a pending job's mapping and options; `false` once it started.
    pub async fn set_import_setup(
        &self,
        pid: &str,
        id: &str,
        mapping: &crate::domain::import::MappingInput,
        options: &crate::domain::import::ImportOptions,
    ) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(pid, id), JOB_SK)))
            .update_expression("SET mapping_input = :m, options = :o")
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", to_attr(&ImportState::Pending)?)
            .expression_attribute_values(":m", to_attr(mapping)?)
            .expression_attribute_values(":o", to_attr(options)?)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }
}
