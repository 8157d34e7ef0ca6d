//! The sharded GSI1 lists: a project-wide list (contacts, contact messages,
//! chats) is spread over [`SHARDS`] index partitions by a hash of the item id;
//! GSI1SK is the item's ULID, so each shard is newest first and a page is the
//! merge of one query per shard. Projection is KEYS_ONLY; the page's items
//! are then read by key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;

use super::{get_s, s, sdk_error, Item, Store};
use crate::domain::contact::Contact;
use crate::{Error, Result};

/// Shards of every GSI1 list. A 1M-row import at 20k rows/s puts at most
/// 20_000 / 32 = 625 writes/s on one index partition, under DynamoDB's
/// 1,000 WCU per partition; a page costs one query per shard.
pub const SHARDS: u32 = 32;

pub const INDEX: &str = "GSI1";

/// A sorted view of a GSI1 list: which index, its (string) sort key, and
/// the direction. Every sort index shares GSI1's sharded partition key, so a
/// contact leaves all of them at once when its GSI1 keys are removed.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    pub index: &'static str,
    pub sort_key: &'static str,
    pub ascending: bool,
}

impl Order {
    const fn desc(index: &'static str, sort_key: &'static str) -> Self {
        Order {
            index,
            sort_key,
            ascending: false,
        }
    }

    pub const fn ascending(self, ascending: bool) -> Self {
        Order { ascending, ..self }
    }
}

/// Newest first (the item's ULID).
pub const NEWEST: Order = Order::desc(INDEX, "GSI1SK");
/// Contacts by referral count, most first (`ref_sort` = zero-padded count + id).
pub const BY_REFERRALS: Order = Order::desc("GSI2", "ref_sort");
/// Contacts by the sort attributes of [`contact_sort_attrs`].
pub const BY_UPDATED: Order = Order::desc("GSI3", UPDATED_SORT);
pub const BY_ACTIVITY: Order = Order::desc("GSI4", ACTIVITY_SORT);
pub const BY_NAME: Order = Order::desc("GSI5", NAME_SORT);
pub const BY_EMAIL: Order = Order::desc("GSI6", EMAIL_SORT);
pub const BY_TYPE: Order = Order::desc("GSI7", TYPE_SORT);

pub const UPDATED_SORT: &str = "upd_sort";
pub const ACTIVITY_SORT: &str = "act_sort";
pub const NAME_SORT: &str = "name_sort";
pub const EMAIL_SORT: &str = "email_sort";
pub const TYPE_SORT: &str = "type_sort";

/// Where a contact without the value sorts: after every value, ascending.
const NO_VALUE: &str = "\u{10FFFF}";
/// Sort values are cut here: enough to order by, small in the index.
const MAX_SORT_CHARS: usize = 64;

/// `ref_sort` for a contact with `count` referrals: sorts by count, then id.
pub fn ref_sort(count: u64, cid: &str) -> String {
    format!("{count:010}#{cid}")
}

/// A time as a fixed-width string, so that string order is time order.
pub fn time_sort(at: &DateTime<Utc>, cid: &str) -> String {
    format!("{}#{cid}", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// A text value's sort string: lowercased, cut, then the id (ties by id).
pub fn text_sort(value: Option<&str>, cid: &str) -> String {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => format!("{}#{cid}", v.to_lowercase().chars().take(MAX_SORT_CHARS).collect::<String>()),
        None => format!("{NO_VALUE}#{cid}"),
    }
}

/// The sort attributes of a contact, as they are stored on its item.
pub fn contact_sort_attrs(c: &Contact) -> Vec<(String, AttributeValue)> {
    let activity = c.last_activity_at.unwrap_or(c.created_at);
    vec![
        (UPDATED_SORT.into(), s(time_sort(&c.updated_at, &c.id))),
        (ACTIVITY_SORT.into(), s(time_sort(&activity, &c.id))),
        (NAME_SORT.into(), s(text_sort(c.full_name.as_deref(), &c.id))),
        (EMAIL_SORT.into(), s(text_sort(c.email.as_deref(), &c.id))),
        (TYPE_SORT.into(), s(text_sort(Some(c.contact_type.as_str()), &c.id))),
    ]
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
        let (entries, more) = self.sorted_page(list, NEWEST, limit, before).await?;
        Ok((entries.into_iter().map(|(k, _)| k).collect(), more))
    }

    /// Like `sharded_page`, in the given order, after the position `before`
    /// (a sort key value; "before" in the order's own direction). Returns the
    /// base-table keys with their positions, and whether more follow.
    pub(crate) async fn sorted_page(
        &self,
        list: &str,
        order: Order,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<(Item, String)>, bool)> {
        let queries = (0..SHARDS).map(|shard| self.query_shard(order, shard_pk(list, shard), limit, before));
        let mut more = false;
        let mut entries: Vec<Item> = Vec::new();
        for (items, shard_more) in try_join_all(queries).await? {
            more |= shard_more;
            entries.extend(items);
        }
        entries.sort_unstable_by(|a, b| {
            let (a, b) = (get_s(a, order.sort_key), get_s(b, order.sort_key));
            if order.ascending {
                a.cmp(&b)
            } else {
                b.cmp(&a)
            }
        });
        if entries.len() > limit {
            entries.truncate(limit);
            more = true;
        }
        let keys = entries
            .into_iter()
            .map(|mut e| {
                let position = get_s(&e, order.sort_key).unwrap_or_default().to_string();
                e.retain(|k, _| k == "PK" || k == "SK");
                (e, position)
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
            .scan_index_forward(order.ascending)
            .limit(limit as i32)
            .expression_attribute_values(":pk", s(partition));
        req = match before {
            Some(before) => req
                .key_condition_expression(if order.ascending {
                    "GSI1PK = :pk AND #sort > :before"
                } else {
                    "GSI1PK = :pk AND #sort < :before"
                })
                .expression_attribute_names("#sort", order.sort_key)
                .expression_attribute_values(":before", s(before)),
            None => req.key_condition_expression("GSI1PK = :pk"),
        };
        let out = req.send().await.map_err(sdk_error)?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key.is_some()))
    }

    /// How many items `list` holds: a COUNT query per shard, paged to the end
    /// (index pages only, no items read; grows with the list, ~1 MB a page).
    pub(crate) async fn count_list(&self, list: &str) -> Result<u64> {
        let counts = (0..SHARDS).map(|shard| async move {
            let mut total = 0u64;
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(INDEX)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(shard_pk(list, shard)))
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                total += out.count.max(0) as u64;
                start = out.last_evaluated_key;
                if start.is_none() {
                    return Ok::<_, Error>(total);
                }
            }
        });
        Ok(try_join_all(counts).await?.into_iter().sum())
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
    fn sort_strings_order_like_their_values() {
        let t = |s: &str| time_sort(&s.parse::<DateTime<Utc>>().unwrap(), "X");
        assert!(t("2026-01-01T00:00:00Z") < t("2026-01-01T00:00:00.5Z"));
        assert!(t("2026-01-01T00:00:00.999Z") < t("2026-01-01T00:00:01Z"));
        assert!(text_sort(Some("Ann"), "Z") < text_sort(Some("bob"), "A"));
        assert!(text_sort(Some("zoë"), "A") < text_sort(None, "A"));
        assert_eq!(text_sort(Some("  "), "A"), text_sort(None, "A"));
        assert!(text_sort(Some("ann"), "A") < text_sort(Some("ann"), "B"));
    }

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
