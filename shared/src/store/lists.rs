//! Sending lists (`P#{pid}#LISTS`, `L#{id}`, with a counter per status),
//! subscriptions (in the contact's partition, `SUB#{list id}`, and on the
//! sharded GSI1 list `P#{pid}#LIST#{list id}`) and consent records (in the
//! contact's partition, `CONSENT#{ulid}`, oldest first).

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::Utc;

use super::contacts::{conditional, contact_pk};
use super::index::index_attrs;
use super::{from_item, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::list::{ConsentRecord, SendingList, Subscription, SubscriptionStatus, ValidList};
use crate::{Error, Result};

fn lists_pk(pid: &str) -> String {
    format!("P#{pid}#LISTS")
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
        self.get_one(key(lists_pk(pid), &format!("L#{id}")))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn all_lists(&self, pid: &str) -> Result<Vec<SendingList>> {
        self.query_all(lists_pk(pid), None)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
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
        let out = req.update_expression(format!("SET {}", sets.join(", "))).send().await;
        match conditional(out)? {
            Some(out) => out.attributes.map(from_item).transpose(),
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
        Ok(())
    }

    /// Moves the list's per-status counters (atomic `ADD`s, one request).
    pub async fn add_list_counts(&self, pid: &str, id: &str, deltas: &[(SubscriptionStatus, i64)]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(lists_pk(pid), &format!("L#{id}"))))
            .condition_expression("attribute_exists(PK)");
        let mut adds = Vec::new();
        for (i, (status, delta)) in deltas.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            req = req
                .expression_attribute_names(format!("#c{i}"), status.counter())
                .expression_attribute_values(format!(":c{i}"), n(delta));
        }
        let out = req.update_expression(format!("ADD {}", adds.join(", "))).send().await;
        conditional(out).map(|_| ())
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
