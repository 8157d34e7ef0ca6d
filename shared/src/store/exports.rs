//! Asynchronous exports (`P#{pid}#EXPORT#{id}`, sort key `EXPORT`, on the
//! sharded GSI1 list `P#{pid}#EXPORTS`). Each run of the worker owns the
//! export by its `attempt`: progress and the end are written only by it.
//! Export schedules (`P#{pid}#XSCHED` / `S#{id}`), their runs
//! (`P#{pid}#XSCHED#{id}` / `RUN#{export id}`) and the due list
//! (`XSCHED_DUE` / `{next_run_at}#{pid}#{id}`).

use chrono::Utc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::DateTime;

use super::contacts::conditional;
use super::index::index_attrs;
use super::{from_item, key, n, s, to_attr, Item, Store};
use crate::domain::export::{ExportJob, ExportSchedule, ExportState, Manifest};
use crate::{Error, Result};

fn export_key(pid: &str, id: &str) -> Item {
    key(format!("P#{pid}#EXPORT#{id}"), "EXPORT")
}

fn exports_list(pid: &str) -> String {
    format!("P#{pid}#EXPORTS")
}

impl Store {
    pub async fn put_export(&self, pid: &str, job: &ExportJob) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(job).map_err(Error::internal)?;
        item.extend(export_key(pid, &job.id));
        item.extend(index_attrs(&exports_list(pid), &job.id));
        self.put_if_absent(item).await
    }

    pub async fn get_export(&self, pid: &str, id: &str) -> Result<Option<ExportJob>> {
        self.get_one(export_key(pid, id)).await?.map(from_item).transpose()
    }

    /// A page of the project's exports, newest first.
    pub async fn project_exports(
        &self,
        pid: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<ExportJob>, bool)> {
        let (keys, more) = self.sharded_page(&exports_list(pid), limit, before).await?;
        let items = self.batch_get(keys).await?;
        Ok((items.into_iter().map(from_item).collect::<Result<_>>()?, more))
    }

    /// Makes `attempt` the export's run (from pending, or from a run that
    /// stopped; `started_at` is then this run's start); false if it has
    /// ended meanwhile (cancelled).
    pub async fn start_export(&self, pid: &str, id: &str, attempt: &str, total: Option<u64>) -> Result<bool> {
        let now = to_attr(&Utc::now())?;
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(pid, id)))
            .update_expression(if total.is_some() {
                "SET #state = :running, attempt = :a, #total = :t, rows_written = :zero, started_at = :now"
            } else {
                "SET #state = :running, attempt = :a, rows_written = :zero, started_at = :now REMOVE #total"
            })
            .condition_expression("#state IN (:pending, :running)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":running", to_attr(&ExportState::Running)?)
            .expression_attribute_values(":pending", to_attr(&ExportState::Pending)?)
            .expression_attribute_values(":a", s(attempt))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", now);
        if let Some(total) = total {
            req = req.expression_attribute_values(":t", n(total));
        }
        Ok(conditional(req.send().await)?.is_some())
    }

    /// Rows written so far by `attempt`; false if it no longer owns the
    /// export (cancelled, or a newer run took over).
    pub async fn export_progress(&self, pid: &str, id: &str, attempt: &str, rows: u64) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(pid, id)))
            .update_expression("SET rows_written = :r")
            .condition_expression("#state = :running AND attempt = :a")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", to_attr(&ExportState::Running)?)
            .expression_attribute_values(":a", s(attempt))
            .expression_attribute_values(":r", n(rows))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// The end of `attempt`'s run: completed with its file, or failed with why.
    pub async fn finish_export(
        &self,
        pid: &str,
        id: &str,
        attempt: &str,
        done: Result<(&Manifest, &str), &str>,
    ) -> Result<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(pid, id)))
            .condition_expression("#state = :running AND attempt = :a")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", to_attr(&ExportState::Running)?)
            .expression_attribute_values(":a", s(attempt))
            .expression_attribute_values(":now", to_attr(&Utc::now())?);
        req = match done {
            Ok((m, object_key)) => req
                .update_expression(
                    "SET #state = :done, rows_written = :rows, #bytes = :bytes, sha256 = :sha, object_key = :key, finished_at = :now",
                )
                .expression_attribute_names("#bytes", "bytes")
                .expression_attribute_values(":done", to_attr(&ExportState::Completed)?)
                .expression_attribute_values(":rows", n(m.rows))
                .expression_attribute_values(":bytes", n(m.bytes))
                .expression_attribute_values(":sha", s(&m.sha256))
                .expression_attribute_values(":key", s(object_key)),
            Err(why) => req
                .update_expression("SET #state = :failed, #error = :e, finished_at = :now")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":failed", to_attr(&ExportState::Failed)?)
                .expression_attribute_values(":e", s(why)),
        };
        Ok(conditional(req.send().await)?.is_some())
    }

    /// Cancels an export that has not ended; whether it had not.
    pub async fn cancel_export(&self, pid: &str, id: &str) -> Result<bool> {
        self.end_export(pid, id, ExportState::Cancelled, None).await
    }

    /// Fails an export that has not ended, whichever run had it (the local
    /// stack restarted under it); whether it had not ended.
    pub async fn fail_export(&self, pid: &str, id: &str, why: &str) -> Result<bool> {
        self.end_export(pid, id, ExportState::Failed, Some(why)).await
    }

    async fn end_export(&self, pid: &str, id: &str, state: ExportState, why: Option<&str>) -> Result<bool> {
        let mut req = self.client.update_item();
        req = match why {
            Some(why) => req
                .update_expression("SET #state = :end, finished_at = :now, #error = :e")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":e", s(why)),
            None => req.update_expression("SET #state = :end, finished_at = :now"),
        };
        let out = req
            .table_name(&self.table)
            .set_key(Some(export_key(pid, id)))
            .condition_expression("#state IN (:pending, :running)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":end", to_attr(&state)?)
            .expression_attribute_values(":pending", to_attr(&ExportState::Pending)?)
            .expression_attribute_values(":running", to_attr(&ExportState::Running)?)
            .expression_attribute_values(":now", to_attr(&Utc::now())?)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }
}

const DUE_PK: &str = "XSCHED_DUE";

fn schedule_key(pid: &str, id: &str) -> Item {
    key(format!("P#{pid}#XSCHED"), &format!("S#{id}"))
}

fn due_sk(at: &DateTime<Utc>, pid: &str, id: &str) -> String {
    format!("{}#{pid}#{id}", at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A schedule that is due: which, and the run time it is due for.
#[derive(Debug, Clone)]
pub struct DueSchedule {
    pub project_id: String,
    pub schedule_id: String,
    pub due_at: DateTime<Utc>,
}

impl Store {
    /// Writes a schedule whole (and its place on the due list).
    pub async fn put_schedule(&self, pid: &str, old: Option<&ExportSchedule>, s: &ExportSchedule) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(s).map_err(Error::internal)?;
        item.extend(schedule_key(pid, &s.id));
        self.put_one(item).await?;
        if let Some(at) = old.and_then(|o| o.next_run_at) {
            if Some(at) != s.next_run_at {
                self.delete_key(key(DUE_PK, &due_sk(&at, pid, &s.id))).await?;
            }
        }
        if let Some(at) = s.next_run_at {
            self.put_one(key(DUE_PK, &due_sk(&at, pid, &s.id))).await?;
        }
        Ok(())
    }

    pub async fn get_schedule(&self, pid: &str, id: &str) -> Result<Option<ExportSchedule>> {
        self.get_one(schedule_key(pid, id)).await?.map(from_item).transpose()
    }

    pub async fn project_schedules(&self, pid: &str) -> Result<Vec<ExportSchedule>> {
        self.query_all(format!("P#{pid}#XSCHED"), Some("S#"))
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn delete_schedule(&self, pid: &str, s: &ExportSchedule) -> Result<()> {
        if let Some(at) = s.next_run_at {
            self.delete_key(key(DUE_PK, &due_sk(&at, pid, &s.id))).await?;
        }
        self.delete_key(schedule_key(pid, &s.id)).await
    }

    /// Schedules due at `now` or before, oldest first.
    pub async fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<DueSchedule>> {
        let until = format!("{}~", now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK <= :until")
            .expression_attribute_values(":pk", s(DUE_PK))
            .expression_attribute_values(":until", s(until))
            .limit(100)
            .send()
            .await
            .map_err(super::sdk_error)?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| {
                let sk = super::get_s(item, "SK")?;
                let mut parts = sk.rsplitn(3, '#');
                let (id, pid, at) = (parts.next()?, parts.next()?, parts.next()?);
                Some(DueSchedule {
                    project_id: pid.to_string(),
                    schedule_id: id.to_string(),
                    due_at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
                })
            })
            .collect())
    }

    /// Takes the run due at `due` (once: the schedule must still be due then
    /// and not paused), moving the schedule to `next`.
    pub async fn claim_schedule_run(
        &self,
        pid: &str,
        id: &str,
        due: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        export_id: &str,
    ) -> Result<bool> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(schedule_key(pid, id)))
            .condition_expression("next_run_at = :due AND paused = :no")
            .expression_attribute_values(":due", to_attr(&due)?)
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":export", s(export_id))
            .expression_attribute_values(":now", to_attr(&Utc::now())?);
        req = match next {
            Some(n) => req
                .update_expression(
                    "SET next_run_at = :next, last_run_at = :due, last_export_id = :export, updated_at = :now",
                )
                .expression_attribute_values(":next", to_attr(&n)?),
            None => req.update_expression(
                "SET last_run_at = :due, last_export_id = :export, updated_at = :now REMOVE next_run_at",
            ),
        };
        let claimed = conditional(req.send().await)?.is_some();
        // The due entry goes either way: claimed now, or stale (paused, moved, deleted).
        self.delete_key(key(DUE_PK, &due_sk(&due, pid, id))).await?;
        if let (true, Some(n)) = (claimed, next) {
            self.put_one(key(DUE_PK, &due_sk(&n, pid, id))).await?;
        }
        if claimed {
            self.put_one(key(format!("P#{pid}#XSCHED#{id}"), &format!("RUN#{export_id}")))
                .await?;
        }
        Ok(claimed)
    }

    /// The exports a schedule ran, newest first.
    pub async fn schedule_runs(&self, pid: &str, id: &str, limit: usize) -> Result<Vec<ExportJob>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :run)")
            .expression_attribute_values(":pk", s(format!("P#{pid}#XSCHED#{id}")))
            .expression_attribute_values(":run", s("RUN#"))
            .scan_index_forward(false)
            .limit(limit as i32)
            .send()
            .await
            .map_err(super::sdk_error)?;
        let keys: Vec<Item> = out
            .items()
            .iter()
            .filter_map(|item| {
                super::get_s(item, "SK")?
                    .strip_prefix("RUN#")
                    .map(|e| export_key(pid, e))
            })
            .collect();
        let mut runs: Vec<ExportJob> = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        runs.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(runs)
    }

    async fn delete_key(&self, k: Item) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(k))
            .send()
            .await
            .map_err(super::sdk_error)?;
        Ok(())
    }
}
