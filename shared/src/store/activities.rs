//! Timeline items, kept in the contact's own partition (`SK = A#{ulid}`, the
//! ULID carrying the time the activity occurred, so the partition sorts by it).

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::contacts::{conditional, contact_pk, CONTACT_SK};
use super::index::time_sort;
use super::{from_item, key, s, sdk_error, to_attr, Item, Store};
use crate::domain::activity::Activity;
use crate::Result;

pub const ACTIVITY_PREFIX: &str = "A#";

/// An id that sorts by when the activity occurred.
pub fn activity_id(occurred_at: DateTime<Utc>) -> String {
    let ms = occurred_at.timestamp_millis().max(0) as u64;
    ulid::Ulid::from_parts(ms, rand::random()).to_string()
}

fn activity_item(pid: &str, activity: &Activity) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(activity).map_err(crate::Error::internal)?;
    item.extend(key(
        contact_pk(pid, &activity.contact_id),
        &format!("{ACTIVITY_PREFIX}{}", activity.id),
    ));
    Ok(item)
}

impl Store {
    /// Writes the activity and moves `last_activity_at` forward (never back).
    pub async fn put_activity(&self, pid: &str, activity: &Activity) -> Result<()> {
        self.put_one(activity_item(pid, activity)?).await?;
        self.touch_last_activity(pid, &activity.contact_id, activity.occurred_at)
            .await
    }

    /// The activity's item as a write to batch with others (`last_activity_at`
    /// is then the caller's to set).
    pub fn activity_put(&self, pid: &str, activity: &Activity) -> Result<aws_sdk_dynamodb::types::WriteRequest> {
        super::contacts::put_request(activity_item(pid, activity)?)
    }

    pub async fn touch_last_activity(&self, pid: &str, cid: &str, at: DateTime<Utc>) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .update_expression("SET last_activity_at = :at, act_sort = :sort")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(erased_at) AND (attribute_not_exists(last_activity_at) OR last_activity_at < :at)")
            .expression_attribute_values(":at", to_attr(&at)?)
            .expression_attribute_values(":sort", s(time_sort(&at, cid)))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    /// Newest first, before the activity id `before` if given, optionally of
    /// the given types only. Returns the page and whether more may follow.
    pub async fn list_activities(
        &self,
        pid: &str,
        cid: &str,
        limit: usize,
        before: Option<&str>,
        types: &[String],
    ) -> Result<(Vec<Activity>, bool)> {
        let mut out: Vec<Activity> = Vec::new();
        let mut start: Option<Item> = None;
        let upper = match before {
            Some(b) => format!("{ACTIVITY_PREFIX}{b}"),
            None => format!("{ACTIVITY_PREFIX}\u{10FFFF}"),
        };
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(contact_pk(pid, cid)))
                .expression_attribute_values(":lo", s(ACTIVITY_PREFIX))
                .expression_attribute_values(":hi", s(upper.clone()))
                .scan_index_forward(false)
                .limit((limit + 1) as i32)
                .set_exclusive_start_key(start.take());
            if !types.is_empty() {
                let names: Vec<String> = (0..types.len()).map(|i| format!(":t{i}")).collect();
                req = req
                    .filter_expression(format!("#type IN ({})", names.join(", ")))
                    .expression_attribute_names("#type", "type");
                for (name, t) in names.iter().zip(types) {
                    req = req.expression_attribute_values(name, AttributeValue::S(t.clone()));
                }
            }
            let page = req.send().await.map_err(sdk_error)?;
            for item in page.items.unwrap_or_default() {
                // BETWEEN is inclusive: skip the cursor's own item.
                if before.is_some_and(|b| super::get_s(&item, "id") == Some(b)) {
                    continue;
                }
                out.push(from_item(item)?);
            }
            if out.len() > limit {
                out.truncate(limit);
                return Ok((out, true));
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok((out, false)),
            }
        }
    }
}
