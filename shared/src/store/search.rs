//! The search index: one item per (token, contact), in partitions sharded by
//! contact (`P#{pid}#Q#{shard}`, `SK = {token}#{cid}`). A prefix search is
//! one bounded query per shard; results come in token order.

use aws_sdk_dynamodb::types::WriteRequest;
use futures::future::try_join_all;

use super::contacts::{delete_request, put_request};
use super::index::{shard_of, SHARDS};
use super::{get_s, key, s, sdk_error, Item, Store};
use crate::{Error, Result};

fn search_pk(pid: &str, shard: u32) -> String {
    format!("P#{pid}#Q#{shard:02}")
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
        let pk = search_pk(pid, shard_of(cid));
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
        let lo = match after {
            Some(a) => format!("{a}\u{0}"),
            None => prefix.to_string(),
        };
        let hi = format!("{prefix}\u{10FFFF}");
        let queries = (0..SHARDS).map(|shard| {
            let (lo, hi) = (lo.clone(), hi.clone());
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
                    .expression_attribute_values(":pk", s(search_pk(pid, shard)))
                    .expression_attribute_values(":lo", s(lo))
                    .expression_attribute_values(":hi", s(hi))
                    .limit(limit as i32)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                Ok::<_, Error>((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
            }
        });
        let mut more = false;
        let mut entries: Vec<Item> = Vec::new();
        for (items, shard_more) in try_join_all(queries).await? {
            more |= shard_more;
            entries.extend(items);
        }
        entries.sort_by(|a, b| get_s(a, "SK").cmp(&get_s(b, "SK")));
        if entries.len() > limit {
            more = true;
        }
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
