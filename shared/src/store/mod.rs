//! Everything Roster keeps in DynamoDB goes through this module.
//!
//! One table, string keys `PK`/`SK`, one sparse GSI:
//!
//! | item                | PK                               | SK        | GSI1PK / GSI1SK                          |
//! |---------------------|----------------------------------|-----------|------------------------------------------|
//! | project             | `P#{pid}`                        | `PROJECT` |                                          |
//! | contact             | `P#{pid}#C#{cid}`                | `CONTACT` | `P#{pid}#CONTACTS#{shard}` / `{cid}`     |
//! | identity claim      | `P#{pid}#ID#{kind}#{value}`      | `ID`      |                                          |
//! | idempotency record  | `IDEM#{scope hash}`              | `IDEM`    |                                          |
//!
//! - Every contact is its own partition, so a large import spreads its writes.
//! - GSI1 lists a project's live contacts newest first: the contact id is a
//!   ULID, so it sorts by creation time. The index partition is sharded
//!   ([`index::SHARDS`]) so that no index key takes more than its share of
//!   an import's writes; a page is the merge of one query per shard.
//!   Soft-deleted contacts drop out of it (their GSI1 keys are removed).
//!   Projection is KEYS_ONLY: the page's contacts are then read by key.
//! - Identity claims (email, phone, eid, referral code) make those values
//!   unique per project without transactions: a conditional put claims the
//!   value, then the contact is written with an UpdateItem merge, so racing
//!   writers and a writer that crashed between the two converge on one contact.
//! - `expires_at` is the table's TTL attribute (idempotency records).

pub mod activities;
pub mod batch;
pub mod contacts;
pub mod idempotency;
pub mod index;
pub mod projects;
pub mod ratelimit;
pub mod records;
pub mod referrals;

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

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

pub(crate) fn to_attr<T: serde::Serialize>(v: &T) -> Result<AttributeValue, Error> {
    serde_dynamo::to_attribute_value(v).map_err(Error::internal)
}
