//! The sharded GSI1 lists: a project-wide list (contacts, contact messages,
//! chats) is spread over [`SHARDS`] index partitions by a hash of the item id;
//! GSI1SK is the item's ULID, so each shard is newest first and a page is the
//! merge of one query per shard. Projection is KEYS_ONLY; the page's items
//! are then read by key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures::future::try_join_all;

use super::{get_s, s, sdk_error, Item, Store};
use crate::{Error, Result};

/// Shards of every GSI1 list. A 1M-row import at 20k rows/s puts at most
/// 20_000 / 32 = 625 writes/s on one index partition, under DynamoDB's
/// 1,000 WCU per partition; a page costs one query per shard.
pub const SHARDS: u32 = 32;

pub const INDEX: &str = "GSI1";

/// A sorted view of a GSI1 list: which index, and its (string) sort key.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    pub index: &'static str,
    pub sort_key: &'static str,
}

/// Newest first (the item's ULID).
pub const NEWEST: Order = Order {
    index: INDEX,
    sort_key: "GSI1SK",
};
/// Contacts by referral count, most first (`ref_sort` = zero-padded count + id).
pub const BY_REFERRALS: Order = Order {
    index: "GSI2",
    sort_key: "ref_sort",
};

/// `ref_sort` for a contact with `count` referrals: sorts by count, then id.
pub fn ref_sort(count: u64, cid: &str) -> String {
    format!("{count:010}#{cid}")
}

/// FNV-1a: stable across releases, unlike `std`'s hasher.
pub fn shard_of(id: &str) -> u32 {
    let hash = id
        .bytes()
        .fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193));
    hash % SHARDS
}

pub fn shard_pk(list: &str, shard: u32) -> String {
    format!("{list}#{shard:02}")
}

/// The GSI1 attributes that put item `id` on `list`.
pub fn index_attrs(list: &str, id: &str) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 2] {
    [
        ("GSI1PK".into(), s(shard_pk(list, shard_of(id)))),
        ("GSI1SK".into(), s(id)),
    ]
}

impl Store {
    /// The keys (PK, SK) of up to `limit` items of `list`, newest first, after
    /// `before`; and whether more follow.
    pub(crate) async fn sharded_page(
        &self,
        list: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Item>, bool)> {
        self.sorted_page(list, NEWEST, limit, before).await
    }

    /// Like `sharded_page`, in the given order (descending by its sort key).
    pub(crate) async fn sorted_page(
        &self,
        list: &str,
        order: Order,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Item>, bool)> {
        let queries = (0..SHARDS).map(|shard| self.query_shard(order, shard_pk(list, shard), limit, before));
        let mut more = false;
        let mut entries: Vec<Item> = Vec::new();
        for (items, shard_more) in try_join_all(queries).await? {
            more |= shard_more;
            entries.extend(items);
        }
        entries.sort_unstable_by(|a, b| get_s(b, order.sort_key).cmp(&get_s(a, order.sort_key)));
        if entries.len() > limit {
            entries.truncate(limit);
            more = true;
        }
        let keys = entries
            .into_iter()
            .map(|mut e| {
                e.retain(|k, _| k == "PK" || k == "SK");
                e
            })
            .collect();
        Ok((keys, more))
    }

    async fn query_shard(
        &self,
        order: Order,
        partition: String,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Item>, bool)> {
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(order.index)
            .scan_index_forward(false)
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(partition));
        req = match before {
            Some(before) => req
                .key_condition_expression("GSI1PK = :pk AND #sort < :before")
                .expression_attribute_names("#sort", order.sort_key)
                .expression_attribute_values(":before", s(before)),
            None => req.key_condition_expression("GSI1PK = :pk"),
        };
        let out = req.send().await.map_err(sdk_error)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
    }

    /// The one GSI1 entry of `id` on `list`, as base-table keys.
    pub(crate) async fn index_lookup(&self, list: &str, id: &str) -> Result<Option<Item>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK = :id")
            .expression_attribute_values(":pk", s(shard_pk(list, shard_of(id))))
            .expression_attribute_values(":id", s(id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.items.unwrap_or_default().into_iter().next().map(|mut e| {
            e.retain(|k, _| k == "PK" || k == "SK");
            e
        }))
    }

    /// Reads items by key, 100 a call, retrying unprocessed keys with jittered
    /// backoff; returns them in the order of `keys` (missing ones left out).
    pub(crate) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let order: Vec<(String, String)> = keys.iter().map(key_pair).collect();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .build()
                    .map_err(Error::internal)?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    found.insert(key_pair(&item), item);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt > 10 {
                        return Err(Error::internal("BatchGetItem kept returning unprocessed keys"));
                    }
                    super::contacts::backoff(attempt).await;
                }
            }
        }
        Ok(order.into_iter().filter_map(|k| found.remove(&k)).collect())
    }
}

fn key_pair(item: &Item) -> (String, String) {
    (
        get_s(item, "PK").unwrap_or_default().to_string(),
        get_s(item, "SK").unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            shard_of("01J0000000000000000000000A"),
            shard_of("01J0000000000000000000000A")
        );
        let mut counts = [0u32; SHARDS as usize];
        for _ in 0..32_000 {
            counts[shard_of(&crate::domain::ids::new_id()) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "uneven shards: {min}..{max}");
    }
}
