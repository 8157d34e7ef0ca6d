//! Sending lists (`P#{pid}#LISTS`, `L#{id}`; a counter per status, spread
//! over 32 counter shards `P#{pid}#LISTN#{id}#{shard}` and summed on read),
//! subscriptions (in the contact's partition, `SUB#{list id}`, and on the
//! sharded GSI1 list `P#{pid}#LIST#{list id}`) and consent records (in the
//! contact's partition, `CONSENT#{ulid}`, oldest first).

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::Utc;

use super::contacts::{conditional, contact_pk, delete_request};
use super::index::{index_attrs, shard_of, SHARDS};
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::list::{ConsentRecord, SendingList, Subscription, SubscriptionStatus, ValidList};
use crate::{Error, Result};

fn lists_pk(pid: &str) -> String {
    format!("P#{pid}#LISTS")
}

const COUNT_SK: &str = "N";

/// One of a list's counter shards (partition keys apart, so none is hot).
fn count_pk(pid: &str, list_id: &str, shard: u32) -> String {
    format!("P#{pid}#LISTN#{list_id}#{shard:02}")
}

fn sub_sk(list_id: &str) -> String {
    format!("SUB#{list_id}")
}

impl Store {
    pub async fn put_list(&self, pid: &str, list: &SendingList) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(list).map_err(Error::internal)?;
        item.extend(key(lists_pk(pid), &format!("L#{}", list.id)));
        self.put_one(item).await?;
        Ok(())
    }

    pub async fn get_list(&self, pid: &str, id: &str) -> Result<Option<SendingList>> {
        let Some(item) = self.get_one(key(lists_pk(pid), &format!("L#{id}"))).await? else {
            return Ok(None);
        };
        Ok(self.with_list_counts(pid, vec![from_item(item)?]).await?.pop())
    }

    pub async fn all_lists(&self, pid: &str) -> Result<Vec<SendingList>> {
        let lists = self
            .query_all(lists_pk(pid), None)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<SendingList>>>()?;
        self.with_list_counts(pid, lists).await
    }

    /// Adds each list's counter shards to the counts kept on its item.
    async fn with_list_counts(&self, pid: &str, mut lists: Vec<SendingList>) -> Result<Vec<SendingList>> {
        let keys = lists
            .iter()
            .flat_map(|l| (0..SHARDS).map(|shard| key(count_pk(pid, &l.id, shard), COUNT_SK)))
            .collect();
        for item in self.batch_get(keys).await? {
            let list_id = get_s(&item, "list_id").unwrap_or_default();
            let Some(list) = lists.iter_mut().find(|l| l.id == list_id) else {
                continue;
            };
            let count = |status: SubscriptionStatus| -> i64 {
                item.get(&status.counter())
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            list.count_active += count(SubscriptionStatus::Active);
            list.count_opted_out += count(SubscriptionStatus::OptedOut);
            list.count_suppressed += count(SubscriptionStatus::Suppressed);
            list.count_invalid += count(SubscriptionStatus::Invalid);
            list.count_unsubscribed += count(SubscriptionStatus::Unsubscribed);
        }
        Ok(lists)
    }

    pub async fn update_list(&self, pid: &str, id: &str, v: &ValidList) -> Result<Option<SendingList>> {
        let mut sets = vec!["updated_at = :now".to_string()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(lists_pk(pid), &format!("L#{id}"))))
            .condition_expression("attribute_exists(PK)")
            .return_values(ReturnValue::AllNew)
            .expression_attribute_values(":now", to_attr(&Utc::now())?);
        for (field, value) in [
            ("name", &v.name),
            ("sender", &v.sender),
            ("description", &v.description),
        ] {
            if let Some(value) = value {
                sets.push(format!("#{field} = :{field}"));
                req = req
                    .expression_attribute_names(format!("#{field}"), field)
                    .expression_attribute_values(format!(":{field}"), s(value));
            }
        }
        if let Some(rate) = v.messages_per_second {
            sets.push("messages_per_second = :mps".into());
            req = req.expression_attribute_values(":mps", super::n(rate));
        }
        let out = req.update_expression(format!("SET {}", sets.join(", "))).send().await;
        match conditional(out)? {
            Some(out) => match out.attributes {
                Some(item) => Ok(self.with_list_counts(pid, vec![from_item(item)?]).await?.pop()),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub async fn delete_list(&self, pid: &str, id: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(lists_pk(pid), &format!("L#{id}"))))
            .send()
            .await
            .map_err(sdk_error)?;
        let shards = (0..SHARDS)
            .map(|shard| delete_request(key(count_pk(pid, id, shard), COUNT_SK)))
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(shards).await?;
        Ok(())
    }

    /// Moves the list's per-status counts for a change of `cid`'s
    /// subscription (atomic `ADD`s, one request), on one of the list's
    /// counter shards: an import adding every row to a list writes each
    /// shard at 1/32 of its row rate. Counts are the sum of the shards, so
    /// which shard takes a change does not matter for them.
    pub async fn add_list_counts(
        &self,
        pid: &str,
        id: &str,
        cid: &str,
        deltas: &[(SubscriptionStatus, i64)],
    ) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(count_pk(pid, id, shard_of(cid)), COUNT_SK)))
            .expression_attribute_values(":list", s(id));
        let mut adds = Vec::new();
        for (i, (status, delta)) in deltas.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            req = req
                .expression_attribute_names(format!("#c{i}"), status.counter())
                .expression_attribute_values(format!(":c{i}"), n(delta));
        }
        req.update_expression(format!("ADD {} SET list_id = :list", adds.join(", ")))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    pub async fn get_subscription(&self, pid: &str, list_id: &str, cid: &str) -> Result<Option<Subscription>> {
        self.get_one(key(contact_pk(pid, cid), &sub_sk(list_id)))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Writes the subscription if it still has status `expected` (`None`: if
    /// there is none). False when someone changed it first.
    pub async fn put_subscription(
        &self,
        pid: &str,
        sub: &Subscription,
        expected: Option<SubscriptionStatus>,
    ) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(sub).map_err(Error::internal)?;
        item.extend(key(contact_pk(pid, &sub.contact_id), &sub_sk(&sub.list_id)));
        item.extend(index_attrs(&format!("P#{pid}#LIST#{}", sub.list_id), &sub.contact_id));
        let req = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let req = match expected {
            None => req.condition_expression("attribute_not_exists(PK)"),
            Some(status) => req
                .condition_expression("#status = :expected")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":expected", to_attr(&status)?),
        };
        conditional(req.send().await).map(|o| o.is_some())
    }

    /// Deletes the subscription if it still has status `expected`.
    pub async fn delete_subscription(
        &self,
        pid: &str,
        list_id: &str,
        cid: &str,
        expected: SubscriptionStatus,
    ) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &sub_sk(list_id))))
            .condition_expression("#status = :expected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":expected", to_attr(&expected)?)
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }

    pub async fn contact_subscriptions(&self, pid: &str, cid: &str) -> Result<Vec<Subscription>> {
        self.query_prefix(pid, cid, "SUB#").await
    }

    pub async fn put_consent(&self, pid: &str, record: &ConsentRecord) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(record).map_err(Error::internal)?;
        item.extend(key(
            contact_pk(pid, &record.contact_id),
            &format!("CONSENT#{}", record.id),
        ));
        self.put_one(item).await?;
        Ok(())
    }

    pub async fn consent_history(&self, pid: &str, cid: &str) -> Result<Vec<ConsentRecord>> {
        self.query_prefix(pid, cid, "CONSENT#").await
    }

    /// Every item of the contact's partition under a sort-key prefix.
    async fn query_prefix<T: serde::de::DeserializeOwned>(&self, pid: &str, cid: &str, prefix: &str) -> Result<Vec<T>> {
        self.partition_items(pid, cid, prefix)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// A page of the list's subscriptions, newest member first.
    pub async fn list_subscriptions(
        &self,
        pid: &str,
        list_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Subscription>, bool)> {
        let (keys, more) = self
            .sharded_page(&format!("P#{pid}#LIST#{list_id}"), limit, before)
            .await?;
        let subs = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        Ok((subs, more))
    }
}
