//! The sharded GSI1 lists: a project-wide list (contacts, contact messages,
//! chats) is spread over [`SHARDS`] index partitions by a hash of the item id;
//! GSI1SK is the item's ULID, so each shard is newest first and a page is the
//! merge of one query per shard. Projection is KEYS_ONLY; the page's items
//! are then read by key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use futures::StreamExt;

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
/// contact moves between lists (live, deleted) in all of them at once.
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
        Some(v) => format!(
            "{}#{cid}",
            v.to_lowercase().chars().take(MAX_SORT_CHARS).collect::<String>()
        ),
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
pub fn hash_of(id: &str) -> u32 {
    id.bytes()
        .fold(0x811c9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x01000193))
}

pub fn shard_of(id: &str) -> u32 {
    hash_of(id) % SHARDS
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

/// How rarely a page may need a second read of some shard.
const SECOND_READ_CHANCE: f64 = 0.01;

/// Entries read from each shard at first: the fewest for which, a page's
/// entries falling into shards at random (ids are hashed to shards, so they
/// do), the chance that some shard holds more of the page than that (and is
/// read again) stays under [`SECOND_READ_CHANCE`]. The number of a shard's
/// entries in a page is close to Poisson with mean `limit / shards`; the
/// bound is a union over the shards. Never more than `limit`. A KEYS_ONLY
/// entry is ~150 bytes, so a shard's first read stays in one 4 KB read unit.
fn first_read(limit: usize, shards: u32) -> usize {
    let mean = limit as f64 / shards as f64;
    // P(X = k) and P(X < k), built up term by term.
    let (mut term, mut below, mut k) = ((-mean).exp(), 0.0, 0usize);
    while k < limit && shards as f64 * (1.0 - below) > SECOND_READ_CHANCE {
        below += term;
        k += 1;
        term *= mean / k as f64;
    }
    k.max(1)
}

/// One page of `limit` entries from `shards` sorted streams, merged on the
/// string attribute `key`. Each shard is first read for [`first_read`]
/// entries; only a shard whose last entry read still falls inside the page
/// (it holds more of the page than that) is read again, from there. So a
/// page reads one index page per shard (a second one of some shard in under
/// 1% of pages) and at most `shards × first_read` entries, whatever the size
/// of the list. `fetch(shard, n, after)` reads up to `n` entries of a shard
/// after the position `after`, in order, and says whether more may follow.
pub(crate) async fn merge_shards<F, Fut>(
    shards: u32,
    limit: usize,
    key: &str,
    ascending: bool,
    after: Option<&str>,
    fetch: F,
) -> Result<(Vec<Item>, bool)>
where
    F: Fn(u32, usize, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<Item>, bool)>>,
{
    let cmp = |a: &Item, b: &Item| {
        let (a, b) = (get_s(a, key), get_s(b, key));
        if ascending {
            a.cmp(&b)
        } else {
            b.cmp(&a)
        }
    };
    let share = first_read(limit, shards);
    let first = (0..shards).map(|shard| fetch(shard, share, after.map(str::to_string)));
    // Per shard: entries read so far, and whether more may follow.
    let mut read: Vec<(Vec<Item>, bool)> = try_join_all(first).await?;
    loop {
        let mut all: Vec<&Item> = read.iter().flat_map(|(items, _)| items.iter()).collect();
        all.sort_unstable_by(|a, b| cmp(a, b));
        let cutoff = all
            .get(limit.saturating_sub(1))
            .copied()
            .filter(|_| all.len() >= limit)
            .cloned();
        let again: Vec<(u32, String)> = read
            .iter()
            .enumerate()
            .filter(|(_, (items, more))| *more && !items.is_empty())
            .filter(|(_, (items, _))| {
                let last = items.last().expect("not empty");
                // A shard whose last entry is the page's last has nothing more for it.
                cutoff.as_ref().is_none_or(|c| cmp(last, c) == std::cmp::Ordering::Less)
            })
            .map(|(shard, (items, _))| {
                let last = items.last().and_then(|l| get_s(l, key)).unwrap_or_default();
                (shard as u32, last.to_string())
            })
            .collect();
        if again.is_empty() {
            break;
        }
        let next = again
            .iter()
            .map(|(shard, last)| fetch(*shard, share * 2, Some(last.clone())));
        for ((shard, _), (items, more)) in again.iter().zip(try_join_all(next).await?) {
            let entry = &mut read[*shard as usize];
            entry.0.extend(items);
            entry.1 = more;
        }
    }
    let mut more = read.iter().any(|(_, more)| *more);
    let mut all: Vec<Item> = read.into_iter().flat_map(|(items, _)| items).collect();
    all.sort_unstable_by(&cmp);
    if all.len() > limit {
        all.truncate(limit);
        more = true;
    }
    Ok((all, more))
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
        let (entries, more) = merge_shards(
            SHARDS,
            limit,
            order.sort_key,
            order.ascending,
            before,
            |shard, n, after| self.query_shard(order, shard_pk(list, shard), n, after),
        )
        .await?;
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
        before: Option<String>,
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
        Ok(self.read_shards(list, true).await?.0)
    }

    /// Every id (`GSI1SK`) on `list`, in no particular order: each shard
    /// read to its end at once (index pages only, ~1 MB each), so a whole
    /// selection costs a query per shard rather than one per shard per page.
    pub(crate) async fn all_list_ids(&self, list: &str) -> Result<Vec<String>> {
        Ok(self.read_shards(list, false).await?.1)
    }

    /// Every shard of `list` read to its end, all at once: how many entries,
    /// and (unless `count_only`) their ids.
    async fn read_shards(&self, list: &str, count_only: bool) -> Result<(u64, Vec<String>)> {
        let shards = (0..SHARDS).map(|shard| async move {
            let (mut count, mut ids) = (0u64, Vec::new());
            let mut start: Option<Item> = None;
            loop {
                let req = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(INDEX)
                    .key_condition_expression("GSI1PK = :pk")
                    .expression_attribute_values(":pk", s(shard_pk(list, shard)))
                    .set_exclusive_start_key(start);
                let req = if count_only {
                    req.select(aws_sdk_dynamodb::types::Select::Count)
                } else {
                    req.projection_expression("GSI1SK")
                };
                let out = req.send().await.map_err(sdk_error)?;
                count += out.count.max(0) as u64;
                ids.extend(
                    out.items()
                        .iter()
                        .filter_map(|i| get_s(i, "GSI1SK").map(str::to_string)),
                );
                start = out.last_evaluated_key;
                if start.is_none() {
                    return Ok::<_, Error>((count, ids));
                }
            }
        });
        let read = try_join_all(shards).await?;
        Ok((
            read.iter().map(|r| r.0).sum(),
            read.into_iter().flat_map(|r| r.1).collect(),
        ))
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
        // Chunks of 100 keys in flight together: one round trip for a batch's reads.
        let reads: Vec<_> = keys
            .chunks(100)
            .map(|chunk| self.batch_get_chunk(chunk.to_vec()))
            .collect();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let mut done = futures::stream::iter(reads).buffer_unordered(super::batch::BATCHES_IN_FLIGHT);
        while let Some(items) = done.next().await {
            found.extend(items?.into_iter().map(|item| (key_pair(&item), item)));
        }
        Ok(order.into_iter().filter_map(|k| found.remove(&k)).collect())
    }

    /// Up to 100 keys, asked again for those DynamoDB left unprocessed.
    async fn batch_get_chunk(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
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
            found.extend(
                out.responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default(),
            );
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
        Ok(found)
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

    /// Shards of sorted values; the merged page must equal a full sort, page
    /// after page, however the values fall into shards.
    #[tokio::test]
    async fn merged_pages_equal_one_sorted_list() {
        use rand::Rng;
        let mut rng = rand::rng();
        for round in 0..200 {
            let shards = rng.random_range(1..6u32);
            let total = rng.random_range(0..60usize);
            // Skewed: some rounds put most values in one shard.
            let skew = round % 2 == 0;
            let mut data: Vec<Vec<String>> = vec![Vec::new(); shards as usize];
            for i in 0..total {
                let shard = if skew && rng.random_bool(0.8) {
                    0
                } else {
                    rng.random_range(0..shards)
                };
                data[shard as usize].push(format!("{:04}", i * 7 % 1000));
            }
            let ascending = rng.random_bool(0.5);
            for d in data.iter_mut() {
                d.sort();
                if !ascending {
                    d.reverse();
                }
            }
            let mut expected: Vec<String> = data.concat();
            expected.sort();
            if !ascending {
                expected.reverse();
            }
            let limit = rng.random_range(1..12usize);
            let fetch = |shard: u32, n: usize, after: Option<String>| {
                let rows: Vec<Item> = data[shard as usize]
                    .iter()
                    .filter(|v| after.as_ref().is_none_or(|a| if ascending { *v > a } else { *v < a }))
                    .take(n + 1)
                    .map(|v| HashMap::from([("k".to_string(), s(v.clone()))]))
                    .collect();
                let more = rows.len() > n;
                async move { Ok((rows.into_iter().take(n).collect::<Vec<_>>(), more)) }
            };
            let mut got = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, more) = merge_shards(shards, limit, "k", ascending, after.as_deref(), fetch)
                    .await
                    .unwrap();
                assert!(page.len() <= limit);
                got.extend(page.iter().map(|i| get_s(i, "k").unwrap().to_string()));
                if !more {
                    break;
                }
                after = got.last().cloned();
            }
            assert_eq!(got, expected, "shards {shards}, limit {limit}, ascending {ascending}");
        }
    }

    #[test]
    fn first_reads_cover_a_page_but_rarely_need_a_second() {
        assert_eq!(first_read(50, 32), 8);
        assert_eq!(first_read(50, 128), 5);
        assert_eq!(first_read(1, 32), 1);
        assert_eq!(first_read(3, 1), 3);
        for limit in 1..=200 {
            for shards in [1, 2, 32, 128] {
                let n = first_read(limit, shards);
                assert!(
                    n <= limit && n >= limit.div_ceil(shards as usize).min(limit),
                    "{limit} over {shards}: {n}"
                );
            }
        }
        // Pages of 50 hashed ids over 32 shards: how often does a shard hold more than its first read?
        let (pages, first) = (10_000, first_read(50, SHARDS));
        let over = (0..pages)
            .filter(|_| {
                let mut per_shard = [0usize; SHARDS as usize];
                for _ in 0..50 {
                    per_shard[shard_of(&crate::domain::ids::new_id()) as usize] += 1;
                }
                per_shard.iter().any(|n| *n >= first)
            })
            .count();
        assert!(over * 100 < pages * 2, "{over} of {pages} pages need a second read");
    }

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
