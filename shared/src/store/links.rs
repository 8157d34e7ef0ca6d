//! Tracked links (`LINK#{token}`, sort key `LINK`): what a short link stands
//! for. The token is the whole key, so a click is one read.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::contacts::{conditional, contact_pk};
use super::{from_item, key, s, to_attr, Item, Store};
use crate::domain::links::Link;
use crate::domain::message::Message;
use crate::{Error, Result};

/// A short link's target and whose it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackedLink {
    pub project_id: String,
    pub contact_id: String,
    pub message_id: String,
    pub broadcast_id: Option<String>,
    pub url: String,
    pub created_at: DateTime<Utc>,
}

fn link_key(token: &str) -> Item {
    key(format!("LINK#{token}"), "LINK")
}

impl Store {
    /// Stores the links of one message (before it is sent).
    pub async fn put_links(&self, pid: &str, m: &Message, links: &[Link]) -> Result<()> {
        let now = Utc::now();
        let mut requests = Vec::with_capacity(links.len());
        for l in links {
            let target = TrackedLink {
                project_id: pid.to_string(),
                contact_id: m.contact_id.clone(),
                message_id: m.id.clone(),
                broadcast_id: m.broadcast_id.clone(),
                url: l.url.clone(),
                created_at: now,
            };
            let mut item: Item = serde_dynamo::to_item(&target).map_err(Error::internal)?;
            item.extend(link_key(&l.token));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(Error::internal)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await?;
        Ok(())
    }

    pub async fn get_link(&self, token: &str) -> Result<Option<TrackedLink>> {
        self.get_one(link_key(token)).await?.map(from_item).transpose()
    }

    /// Marks the message clicked once: true for its first click (of any of
    /// its links), false after, or if the message is gone.
    pub async fn first_click(&self, pid: &str, cid: &str, mid: &str, at: DateTime<Utc>) -> Result<bool> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &format!("M#{mid}"))))
            .update_expression("SET clicked_at = :at")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(clicked_at)")
            .expression_attribute_values(":at", to_attr(&at)?)
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Adds attributed revenue to a message.
    pub async fn add_message_revenue(&self, pid: &str, cid: &str, mid: &str, amount: f64) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &format!("M#{mid}"))))
            .update_expression("ADD revenue :a")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":a", super::n(amount))
            .send()
            .await;
        conditional(out)?;
        Ok(())
    }

    /// Remembers the contact's latest click (message, broadcast, when), for
    /// attributing a purchase soon after it.
    pub async fn set_last_click(&self, pid: &str, cid: &str, link: &TrackedLink, at: DateTime<Utc>) -> Result<()> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), super::contacts::CONTACT_SK)))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":m", s(&link.message_id))
            .expression_attribute_values(":at", to_attr(&at)?);
        let expr = match &link.broadcast_id {
            Some(b) => {
                req = req.expression_attribute_values(":b", s(b));
                "SET last_click_message_id = :m, last_click_broadcast_id = :b, last_click_at = :at"
            }
            None => "SET last_click_message_id = :m, last_click_at = :at REMOVE last_click_broadcast_id",
        };
        conditional(req.update_expression(expr).send().await)?;
        Ok(())
    }
}
