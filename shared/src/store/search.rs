//! The search index: one item per (token, contact), in partitions sharded by
//! contact (`P#{pid}#Q#{shard}`, `SK = {token}#{cid}`). A prefix search is
//! one bounded query per shard; results come in token order.
//!
//! A contact has up to five tokens, so this index takes four to five times
//! the writes of the contact lists: [`SEARCH_SHARDS`] = 128 keeps a 1M-row
//! import at 20k rows/s (4 tokens a row) at 80_000 / 128 = 625 writes/s a
//! partition, under DynamoDB's 1,000 WCU per partition.

use aws_sdk_dynamodb::types::WriteRequest;

use super::contacts::{delete_request, put_request};
use super::index::{hash_of, merge_shards};
use super::{get_s, key, s, sdk_error, Store};
use crate::{Error, Result};

pub const SEARCH_SHARDS: u32 = 128;

fn search_pk(pid: &str, shard: u32) -> String {
    format!("P#{pid}#Q#{shard:03}")
}

fn search_shard(cid: &str) -> u32 {
    hash_of(cid) % SEARCH_SHARDS
}

impl Store {
    /// Replaces a contact's tokens `old` with `new` (only the difference is written).
    pub async fn reindex_contact(&self, pid: &str, cid: &str, old: &[String], new: &[String]) -> Result<()> {
        let writes = self.token_writes(pid, cid, old, new)?;
        if !writes.is_empty() {
            self.batch_write(writes).await?;
        }
        Ok(())
    }

    /// The writes that replace tokens `old` with `new` (to batch with others).
    pub fn token_writes(&self, pid: &str, cid: &str, old: &[String], new: &[String]) -> Result<Vec<WriteRequest>> {
        let pk = search_pk(pid, search_shard(cid));
        let mut writes = Vec::new();
        for t in old.iter().filter(|t| !new.contains(t)) {
            writes.push(delete_request(key(pk.clone(), &format!("{t}#{cid}")))?);
        }
        for t in new.iter().filter(|t| !old.contains(t)) {
            let mut item = key(pk.clone(), &format!("{t}#{cid}"));
            item.insert("contact_id".into(), s(cid));
            writes.push(put_request(item)?);
        }
        Ok(writes)
    }

    /// Contact ids with a token starting with `prefix`, in token order, after
    /// the position `after` (a sort key this returned). Returns the ids, the
    /// position of the last one, and whether more may follow.
    pub async fn search_contacts(
        &self,
        pid: &str,
        prefix: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>, bool)> {
        let hi = format!("{prefix}\u{10FFFF}");
        let fetch = |shard: u32, n: usize, after: Option<String>| {
            let lo = match after {
                Some(a) => format!("{a}\u{0}"),
                None => prefix.to_string(),
            };
            let hi = hi.clone();
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
                    .expression_attribute_values(":pk", s(search_pk(pid, shard)))
                    .expression_attribute_values(":lo", s(lo))
                    .expression_attribute_values(":hi", s(hi))
                    .limit(n as i32)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok::<_, Error>((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
            }
        };
        let (entries, more) = merge_shards(SEARCH_SHARDS, limit, "SK", true, after, fetch).await?;
        let mut ids: Vec<String> = Vec::new();
        let mut last = None;
        for e in entries {
            if ids.len() == limit {
                break;
            }
            let cid = get_s(&e, "contact_id").unwrap_or_default().to_string();
            last = get_s(&e, "SK").map(str::to_string);
            if !ids.contains(&cid) {
                ids.push(cid);
            }
        }
        Ok((ids, last, more))
    }
}
