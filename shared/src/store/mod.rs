//! Everything Roster keeps in DynamoDB goes through this module.
//!
//! One table, string keys `PK`/`SK`, seven sparse KEYS_ONLY GSIs, all
//! partitioned by `GSI1PK`: GSI1 sorts by `GSI1SK`, GSI2 by `ref_sort`, and
//! GSI3–7 order the contact lists by `upd_sort`, `act_sort`, `name_sort`,
//! `email_sort` and `type_sort` (value + `#{cid}`, see `index::contact_sort_attrs`):
//!
//! | item                   | PK                          | SK                  | index keys                                   |
//! |------------------------|-----------------------------|---------------------|----------------------------------------------|
//! | project                | `P#{pid}`                   | `PROJECT`           |                                              |
//! | contact                | `P#{pid}#C#{cid}`           | `CONTACT`           | GSI1PK `P#{pid}#CONTACTS#{shard}` (deleted: `DELETED`), GSI1SK `{cid}`, `ref_sort`, the five sort attributes |
//! | activity (timeline)    | `P#{pid}#C#{cid}`           | `A#{ulid}`          |                                              |
//! | waitlist signup, form  | `P#{pid}#C#{cid}`           | `R#{kind}#{id}`     |                                              |
//! | message, chat          | `P#{pid}#C#{cid}`           | `R#{kind}#{id}`     | GSI1PK `P#{pid}#MESSAGES#{shard}` (or `CHATS`), GSI1SK `{id}` |
//! | referral link          | `P#{pid}#C#{referrer}`      | `REFD#{cid}`        |                                              |
//! | tag membership         | `P#{pid}#C#{cid}`           | `TAG#{tag id}`      | GSI1PK `P#{pid}#TAG#{tag id}#{shard}`, GSI1SK `{cid}` |
//! | subscription           | `P#{pid}#C#{cid}`           | `SUB#{list id}`     | GSI1PK `P#{pid}#LIST#{list id}#{shard}`, GSI1SK `{cid}` |
//! | consent record         | `P#{pid}#C#{cid}`           | `CONSENT#{ulid}`    |                                              |
//! | message (email, SMS)   | `P#{pid}#C#{cid}`           | `M#{id}`            | GSI1PK `P#{pid}#MSGS#{shard}`, GSI1SK `{id}` |
//! | channel opt-out        | `P#{pid}#C#{cid}`           | `OPTOUT#{channel}`  |                                              |
//! | provider id → message  | `PMID#{channel}#{provider id}` | `PMID`           |                                              |
//! | tracked link           | `LINK#{token}`              | `LINK`              |                                              |
//! | export job             | `P#{pid}#EXPORT#{id}`       | `EXPORT`            | GSI1PK `P#{pid}#EXPORTS#{shard}`, GSI1SK `{id}` |
//! | template               | `P#{pid}#TEMPLATES`         | `T#{id}`            |                                              |
//! | broadcast, its ledger  | `P#{pid}#BCAST#{id}`        | `BCAST`, `CHUNK#{n}`, `IDS#{n}` | GSI1PK `P#{pid}#BCASTS#{shard}`, GSI1SK `{id}` (the broadcast) |
//! | broadcast counter shard| `P#{pid}#BCN#{id}#{shard}`  | `N`                 |                                              |
//! | scheduled broadcast    | `BCAST_DUE`                 | `{send_at}#{pid}#{id}` |                                           |
//! | tag, tag name claim    | `P#{pid}#TAGS`, `P#{pid}#TAGNAME#{name}` | `T#{id}`, `TN` |                                   |
//! | tag counter shard      | `P#{pid}#TAGN#{tag id}#{shard}` | `N`             |                                              |
//! | sending list           | `P#{pid}#LISTS`             | `L#{id}`            |                                              |
//! | search token           | `P#{pid}#Q#{shard of 128}`  | `{token}#{cid}`     |                                              |
//! | import job             | `P#{pid}#IMPORT#{id}`       | `IMPORT`            | GSI1PK `P#{pid}#IMPORTS`, GSI1SK `{id}`      |
//! | import chunk ledger    | `P#{pid}#IMPORT#{id}`       | `CHUNK#{n}`         |                                              |
//! | bulk job, its ledger   | `P#{pid}#BULK#{id}`         | `BULK`, `CHUNK#{n}` |                                              |
//! | bulk job's ids         | `P#{pid}#BULK#{id}`         | `IDS#{n}`           | (expire after 30 days)                       |
//! | identity claim         | `P#{pid}#ID#{kind}#{value}` | `ID`                |                                              |
//! | idempotency record     | `IDEM#{scope hash}`         | `IDEM`              |                                              |
//! | rate-limit window      | `RL#{subject}#{window}`     | `RL`                |                                              |
//!
//! - Every contact is its own partition (its item, timeline and records), so
//!   a large import spreads its writes and a profile is a few queries of one
//!   partition; erasing a contact deletes its partition.
//! - GSI1 holds project-wide lists newest first (ids are ULIDs); GSI2 orders
//!   the contact lists by `ref_sort` (zero-padded referral count + id). Each
//!   list is sharded ([`index::SHARDS`]) so that no index key takes more than
//!   its share of an import's writes; a page is the merge of one query per
//!   shard, then one batch read of the page's items. A soft-deleted contact
//!   moves to a list of its own (GSI1PK `P#{pid}#DELETED#{shard}`), which
//!   only an export that asks for deleted contacts reads.
//! - Identity claims (email, phone, eid, referral code) make those values
//!   unique per project without transactions: a conditional put claims the
//!   value, then the contact is written with an UpdateItem merge, so racing
//!   writers and a writer that crashed between the two converge on one contact.
//! - Counters (referrals, messages, revenue, rate limits) are atomic `ADD`s;
//!   a tag's `contact_count` is spread over 32 counter shards (by contact)
//!   so that an import tagging every row has no hot item.
//! - `expires_at` is the table's TTL attribute (idempotency, rate limits).

pub mod activities;
pub mod batch;
pub mod broadcasts;
pub mod bulk;
pub mod contacts;
pub mod exports;
pub mod idempotency;
pub mod imports;
pub mod index;
pub mod interrupted;
pub mod links;
pub mod lists;
pub mod messages;
pub mod projects;
pub mod ratelimit;
pub mod records;
pub mod referrals;
pub mod search;
pub mod tags;
pub mod templates;

pub use aws_sdk_dynamodb::Client as DynamoClient;
use aws_sdk_dynamodb::{error::SdkError, types::AttributeValue, Client};
use std::collections::HashMap;

use crate::Error;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: impl Into<String>, sk: &str) -> Item {
    HashMap::from([("PK".to_string(), s(pk)), ("SK".to_string(), s(sk))])
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// SDK failures are internal errors: the detail goes to the log, not the caller.
pub(crate) fn sdk_error<E, R>(e: SdkError<E, R>) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    Error::Internal(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
}

impl Store {
    /// One item by key, read consistently.
    pub(crate) async fn get_one(&self, key: Item) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }

    /// Writes an item unconditionally.
    pub(crate) async fn put_one(&self, item: Item) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Writes an item unless one with its key exists; `false` if one did.
    pub(crate) async fn put_if_absent(&self, item: Item) -> Result<bool, Error> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        Ok(contacts::conditional(out)?.is_some())
    }

    /// Moves a job item (an import's, a bulk job's) to its final `state`
    /// unless it is in one already: `state` is `pending` or `running` until
    /// then. Sets `finished_at`, and `error` and the `extra` attributes given.
    pub(crate) async fn finish_job(
        &self,
        key: Item,
        state: AttributeValue,
        error: Option<&str>,
        extra: &[(&str, AttributeValue)],
    ) -> Result<bool, Error> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(PK) AND #state IN (:pending, :running)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", state)
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":running", s("running"))
            .expression_attribute_values(":now", to_attr(&chrono::Utc::now())?);
        let mut expr = "SET #state = :state, finished_at = :now".to_string();
        let error = error.map(|e| ("error", s(e)));
        for (i, (name, value)) in error.iter().chain(extra).enumerate() {
            expr.push_str(&format!(", #x{i} = :x{i}"));
            req = req
                .expression_attribute_names(format!("#x{i}"), *name)
                .expression_attribute_values(format!(":x{i}"), value.clone());
        }
        Ok(contacts::conditional(req.update_expression(expr).send().await)?.is_some())
    }

    /// A job item (sort key `job_sk`) and its ledger items (`CHUNK#…`), read
    /// from the job's partition in one query over `range`.
    pub(crate) async fn job_with_ledger<J, C>(
        &self,
        pk: String,
        job_sk: &str,
        range: SkRange<'_>,
    ) -> Result<Option<(J, Vec<C>)>, Error>
    where
        J: serde::de::DeserializeOwned,
        C: serde::de::DeserializeOwned,
    {
        let mut job = None;
        let mut chunks = Vec::new();
        for item in self.query_range(pk, range).await? {
            match get_s(&item, "SK") {
                Some(sk) if sk == job_sk => job = Some(from_item::<J>(item)?),
                Some(sk) if sk.starts_with("CHUNK#") => chunks.push(from_item::<C>(item)?),
                _ => {}
            }
        }
        Ok(job.map(|j| (j, chunks)))
    }

    /// Every item of partition `pk` (with a sort-key prefix, if given),
    /// following `LastEvaluatedKey` to the end.
    pub(crate) async fn query_all(&self, pk: String, prefix: Option<&str>) -> Result<Vec<Item>, Error> {
        self.query_range(pk, prefix.map_or(SkRange::Any, SkRange::Prefix)).await
    }

    /// Every item of partition `pk` whose sort key is in `range`, to the end.
    pub(crate) async fn query_range(&self, pk: String, range: SkRange<'_>) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            req = match range {
                SkRange::Prefix(p) => req
                    .key_condition_expression("PK = :pk AND begins_with(SK, :sk)")
                    .expression_attribute_values(":sk", s(p)),
                SkRange::Below(b) => req
                    .key_condition_expression("PK = :pk AND SK < :sk")
                    .expression_attribute_values(":sk", s(b)),
                SkRange::Any => req.key_condition_expression("PK = :pk"),
            };
            let out = req.send().await.map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }
}

/// Which sort keys of a partition a query reads.
#[derive(Clone, Copy)]
pub(crate) enum SkRange<'a> {
    Any,
    Prefix(&'a str),
    Below(&'a str),
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

pub(crate) fn to_attr<T: serde::Serialize>(v: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(v).map_err(Error::internal)
}
