//! Asynchronous exports (`P#{pid}#EXPORT#{id}`, sort key `EXPORT`, on the
//! sharded GSI1 list `P#{pid}#EXPORTS`). Each run of the worker owns the
//! export by its `attempt`: progress and the end are written only by it.

use chrono::Utc;

use super::contacts::conditional;
use super::index::index_attrs;
use super::{from_item, key, n, s, to_attr, Item, Store};
use crate::domain::export::{ExportJob, ExportState, Manifest};
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
    /// stopped); false if it has ended meanwhile (cancelled).
    pub async fn start_export(&self, pid: &str, id: &str, attempt: &str, total: u64) -> Result<bool> {
        let now = to_attr(&Utc::now())?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(pid, id)))
            .update_expression(
                "SET #state = :running, attempt = :a, #total = :t, rows_written = :zero, started_at = if_not_exists(started_at, :now)",
            )
            .condition_expression("#state IN (:pending, :running)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":running", to_attr(&ExportState::Running)?)
            .expression_attribute_values(":pending", to_attr(&ExportState::Pending)?)
            .expression_attribute_values(":a", s(attempt))
            .expression_attribute_values(":t", n(total))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", now)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
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
