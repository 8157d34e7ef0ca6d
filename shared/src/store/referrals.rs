//! Referral links and counters. The referrer's partition holds one link item
//! per contact it referred (`SK = REFD#{cid}`), which is how "whom they
//! referred" is listed; the referee holds `referred_by`, set once.

use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::contacts::{conditional, contact_pk, is_conditional, CONTACT_SK};
use super::{from_item, key, n, s, sdk_error, to_attr, Item, Store};
use crate::Result;

const LINK_PREFIX: &str = "REFD#";

#[derive(Debug, Serialize, Deserialize)]
pub struct ReferralLink {
    pub contact_id: String,
    pub linked_at: DateTime<Utc>,
}

impl Store {
    pub async fn put_referral_link(&self, pid: &str, referrer: &str, referee: &str) -> Result<()> {
        let mut item: Item = key(contact_pk(pid, referrer), &format!("{LINK_PREFIX}{referee}"));
        item.insert("contact_id".into(), s(referee));
        item.insert("linked_at".into(), to_attr(&Utc::now())?);
        self.put_one(item).await?;
        Ok(())
    }

    pub async fn delete_referral_link(&self, pid: &str, referrer: &str, referee: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, referrer), &format!("{LINK_PREFIX}{referee}"))))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Sets `referred_by` if the contact has none yet; false if it had one
    /// (or is gone). Only the first of racing referrals wins.
    pub async fn set_referred_by(&self, pid: &str, cid: &str, referrer: &str) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET referred_by = :r")
            .condition_expression(
                "attribute_exists(PK) AND attribute_not_exists(erased_at) AND attribute_not_exists(referred_by)",
            )
            .expression_attribute_values(":r", s(referrer))
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }

    /// Atomic `ADD`s on a live contact's counters (`referral_count`,
    /// `messages_in`, `total_revenue`, …). Returns the new values.
    pub async fn add_to_contact(&self, pid: &str, cid: &str, counters: &[(&str, f64)]) -> Result<Option<Item>> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erased_at)")
            .return_values(ReturnValue::UpdatedNew);
        let mut adds = Vec::new();
        for (i, (field, amount)) in counters.iter().enumerate() {
            adds.push(format!("#c{i} :c{i}"));
            req = req
                .expression_attribute_names(format!("#c{i}"), *field)
                .expression_attribute_values(format!(":c{i}"), n(amount));
        }
        match req.update_expression(format!("ADD {}", adds.join(", "))).send().await {
            Ok(out) => Ok(out.attributes),
            Err(e) if is_conditional(&e) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Contacts `referrer` referred, in the order they joined, after `after`.
    pub async fn referral_links(
        &self,
        pid: &str,
        referrer: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<ReferralLink>, bool)> {
        let lower = match after {
            Some(a) => format!("{LINK_PREFIX}{a}\u{0}"),
            None => LINK_PREFIX.to_string(),
        };
        let mut links: Vec<ReferralLink> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(contact_pk(pid, referrer)))
                .expression_attribute_values(":lo", s(lower.clone()))
                .expression_attribute_values(":hi", s(format!("{LINK_PREFIX}\u{10FFFF}")))
                .limit((limit + 1 - links.len()) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                links.push(from_item(item)?);
            }
            // A page can stop short of the limit (1 MB per Query): keep
            // reading until the page is full or the links run out.
            if links.len() > limit {
                links.truncate(limit);
                return Ok((links, true));
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok((links, false)),
            }
        }
    }

    /// Several contacts by id, in that order (missing and erased ones left out).
    pub async fn get_contacts(&self, pid: &str, ids: &[String]) -> Result<Vec<crate::domain::contact::Contact>> {
        let keys = ids.iter().map(|cid| key(contact_pk(pid, cid), CONTACT_SK)).collect();
        let mut out = Vec::new();
        for item in self.batch_get(keys).await? {
            if let super::contacts::StoredContact::Live(c) = super::contacts::contact_from(item)? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
