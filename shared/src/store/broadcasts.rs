//! Broadcasts, one partition each (`P#{pid}#BCAST#{id}`): the broadcast
//! (`BCAST`, on the sharded GSI1 list `P#{pid}#BCASTS`), a ledger entry per
//! chunk of recipients (`CHUNK#{n}`) and the chunk's contact ids (`IDS#{n}`),
//! as bulk jobs keep theirs. Provider feedback is counted on 32 counter
//! shards (`P#{pid}#BCN#{id}#{shard}`, by message) so that a broadcast's
//! opens never make a hot item. Scheduled broadcasts wait on one due list
//! (`BCAST_DUE`, sorted by `{send_at}#{pid}#{id}`), read by the scheduler tick.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::bulk::{chunk_sk, IDS_PREFIX};
use super::contacts::conditional;
use super::index::{index_attrs, shard_of, SHARDS};
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, SkRange, Store};
use crate::domain::broadcast::{Broadcast, BroadcastState, Engagement, SendProgress, SendTally};
use crate::{Error, Result};

const BROADCAST_SK: &str = "BCAST";
const DUE_PK: &str = "BCAST_DUE";

fn broadcast_pk(pid: &str, id: &str) -> String {
    format!("P#{pid}#BCAST#{id}")
}

fn broadcasts_list(pid: &str) -> String {
    format!("P#{pid}#BCASTS")
}

fn counter_pk(pid: &str, id: &str, shard: u32) -> String {
    format!("P#{pid}#BCN#{id}#{shard:02}")
}

fn due_sk(at: &DateTime<Utc>, pid: &str, id: &str) -> String {
    format!("{}#{pid}#{id}", at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A scheduled broadcast that has come due.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub project_id: String,
    pub broadcast_id: String,
    pub send_at: DateTime<Utc>,
}

impl Store {
    /// Writes the broadcast as it is now (a draft, or any change of one).
    /// `expected`: only if it is still in one of these states.
    pub async fn put_broadcast(&self, pid: &str, b: &Broadcast, expected: &[BroadcastState]) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(b).map_err(Error::internal)?;
        item.extend(key(broadcast_pk(pid, &b.id), BROADCAST_SK));
        item.extend(index_attrs(&broadcasts_list(pid), &b.id));
        let mut req = self.client.put_item().table_name(&self.table).set_item(Some(item));
        if expected.is_empty() {
            req = req.condition_expression("attribute_not_exists(PK)");
        } else {
            let names: Vec<String> = (0..expected.len()).map(|i| format!(":s{i}")).collect();
            req = req
                .condition_expression(format!("#state IN ({})", names.join(", ")))
                .expression_attribute_names("#state", "state");
            for (name, state) in names.iter().zip(expected) {
                req = req.expression_attribute_values(name, to_attr(state)?);
            }
        }
        Ok(conditional(req.send().await)?.is_some())
    }

    pub async fn get_broadcast(&self, pid: &str, id: &str) -> Result<Option<Broadcast>> {
        self.get_one(key(broadcast_pk(pid, id), BROADCAST_SK))
            .await?
            .map(from_item)
            .transpose()
    }

    /// A page of the project's broadcasts, newest first.
    pub async fn project_broadcasts(
        &self,
        pid: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Broadcast>, bool)> {
        let (keys, more) = self.sharded_page(&broadcasts_list(pid), limit, before).await?;
        let items = self.batch_get(keys).await?;
        Ok((items.into_iter().map(from_item).collect::<Result<_>>()?, more))
    }

    /// Moves the broadcast from one of `from` to `to`, setting `reason`
    /// (cleared when `None`) and `finished_at` for a final state. The new
    /// broadcast, or `None` if it was in none of `from`.
    pub async fn move_broadcast(
        &self,
        pid: &str,
        id: &str,
        from: &[BroadcastState],
        to: BroadcastState,
        reason: Option<&str>,
    ) -> Result<Option<Broadcast>> {
        let now = Utc::now();
        let mut expr = "SET #state = :to, updated_at = :now".to_string();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(broadcast_pk(pid, id), BROADCAST_SK)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", to_attr(&to)?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .return_values(ReturnValue::AllNew);
        match reason {
            Some(r) => {
                expr.push_str(", reason = :reason");
                req = req.expression_attribute_values(":reason", s(r));
            }
            None => expr.push_str(" REMOVE reason"),
        }
        if to.is_final() {
            // Before REMOVE: SET clauses come first in an update expression.
            expr = expr.replacen("updated_at = :now", "updated_at = :now, finished_at = :now", 1);
        }
        let names: Vec<String> = (0..from.len()).map(|i| format!(":f{i}")).collect();
        for (name, state) in names.iter().zip(from) {
            req = req.expression_attribute_values(name, to_attr(state)?);
        }
        let out = req
            .update_expression(expr)
            .condition_expression(format!("#state IN ({})", names.join(", ")))
            .send()
            .await;
        conditional(out)?.and_then(|o| o.attributes).map(from_item).transpose()
    }

    /// Fixes the audience: a pending broadcast starts sending.
    pub async fn start_broadcast(
        &self,
        pid: &str,
        id: &str,
        recipients: u64,
        chunks_total: u32,
        base_url: &str,
    ) -> Result<bool> {
        let now = Utc::now();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(broadcast_pk(pid, id), BROADCAST_SK)))
            .update_expression(
                "SET #state = :sending, recipients = :r, chunks_total = :c, started_at = :now, updated_at = :now, base_url = :base",
            )
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", to_attr(&BroadcastState::Sending)?)
            .expression_attribute_values(":pending", to_attr(&BroadcastState::Pending)?)
            .expression_attribute_values(":r", n(recipients))
            .expression_attribute_values(":c", n(chunks_total))
            .expression_attribute_values(":now", to_attr(&now)?)
            .expression_attribute_values(":base", s(base_url))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// The audience as chunks of contact ids, each with a fresh ledger entry.
    pub async fn put_send_chunks(&self, pid: &str, id: &str, chunks: &[Vec<String>]) -> Result<()> {
        self.put_id_chunks(broadcast_pk(pid, id), chunks, |chunk, size| {
            let mut item: Item = serde_dynamo::to_item(SendProgress {
                chunk,
                size,
                ..Default::default()
            })
            .map_err(Error::internal)?;
            // The map exists from the start, so a commit can ADD into it.
            item.insert("skipped".into(), AttributeValue::M(Default::default()));
            Ok(item)
        })
        .await
    }

    pub async fn send_chunk(&self, pid: &str, id: &str, chunk: u32) -> Result<Option<(SendProgress, Vec<String>)>> {
        self.id_chunk(broadcast_pk(pid, id), chunk).await
    }

    /// The broadcast and its chunk ledger, in one query.
    pub async fn broadcast_with_progress(&self, pid: &str, id: &str) -> Result<Option<(Broadcast, Vec<SendProgress>)>> {
        self.job_with_ledger(broadcast_pk(pid, id), BROADCAST_SK, SkRange::Below(IDS_PREFIX))
            .await
    }

    /// Commits recipients `from..to` of a chunk with their outcomes.
    /// `false`: another delivery of this chunk committed them first.
    pub async fn commit_send_batch(
        &self,
        pid: &str,
        id: &str,
        chunk: u32,
        (from, to): (u64, u64),
        tally: &SendTally,
    ) -> Result<bool> {
        let mut adds = vec![
            "sent :sent".to_string(),
            "failed :failed".into(),
            "uncertain :unc".into(),
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(broadcast_pk(pid, id), &chunk_sk(chunk))))
            .condition_expression("#next = :from")
            .expression_attribute_names("#next", "next")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .expression_attribute_values(":sent", n(tally.sent))
            .expression_attribute_values(":failed", n(tally.failed))
            .expression_attribute_values(":unc", n(tally.uncertain));
        for (i, (reason, count)) in tally.skipped.iter().enumerate() {
            adds.push(format!("skipped.#r{i} :r{i}"));
            req = req
                .expression_attribute_names(format!("#r{i}"), reason)
                .expression_attribute_values(format!(":r{i}"), n(count));
        }
        let out = req
            .update_expression(format!("SET #next = :to ADD {}", adds.join(", ")))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Counts one provider event on the broadcast (on the message's shard).
    pub async fn add_broadcast_event(&self, pid: &str, id: &str, message_id: &str, field: &str) -> Result<()> {
        self.add_broadcast_amount(pid, id, message_id, field, 1.0).await
    }

    /// Adds `amount` to one of the broadcast's counters (attributed revenue).
    pub async fn add_broadcast_amount(
        &self,
        pid: &str,
        id: &str,
        message_id: &str,
        field: &str,
        amount: f64,
    ) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(counter_pk(pid, id, shard_of(message_id)), "N")))
            .update_expression("ADD #f :one")
            .expression_attribute_names("#f", field)
            .expression_attribute_values(":one", n(amount))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// The broadcast's feedback counts: the sum of its shards.
    pub async fn broadcast_engagement(&self, pid: &str, id: &str) -> Result<Engagement> {
        let keys = (0..SHARDS).map(|shard| key(counter_pk(pid, id, shard), "N")).collect();
        let mut total = Engagement::default();
        for item in self.batch_get(keys).await? {
            let part: Engagement = from_item(item)?;
            total.delivered += part.delivered;
            total.opened += part.opened;
            total.clicked += part.clicked;
            total.bounced += part.bounced;
            total.complained += part.complained;
            total.revenue += part.revenue;
        }
        Ok(total)
    }

    pub async fn put_due(&self, pid: &str, id: &str, at: &DateTime<Utc>) -> Result<()> {
        let mut item = key(DUE_PK, &due_sk(at, pid, id));
        item.insert("project_id".into(), s(pid));
        item.insert("broadcast_id".into(), s(id));
        item.insert("send_at".into(), to_attr(at)?);
        self.put_one(item).await
    }

    pub async fn delete_due(&self, pid: &str, id: &str, at: &DateTime<Utc>) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(DUE_PK, &due_sk(at, pid, id))))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Every scheduled broadcast due at `now`, oldest first.
    pub async fn due_broadcasts(&self, now: &DateTime<Utc>) -> Result<Vec<Due>> {
        // `~` sorts after every `{pid}#{id}`: everything at or before now.
        let bound = format!("{}~", now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let items = self.query_range(DUE_PK.to_string(), SkRange::Below(&bound)).await?;
        items
            .into_iter()
            .map(|item| {
                let at = get_s(&item, "send_at")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| Error::internal("a due entry without send_at"))?;
                Ok(Due {
                    project_id: get_s(&item, "project_id").unwrap_or_default().to_string(),
                    broadcast_id: get_s(&item, "broadcast_id").unwrap_or_default().to_string(),
                    send_at: at,
                })
            })
            .collect()
    }
}
