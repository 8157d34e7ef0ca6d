//! Tags. The project's tags share one partition (`P#{pid}#TAGS`, `T#{id}`);
//! a name claim (`P#{pid}#TAGNAME#{lower name}`) keeps names unique ignoring
//! case. Who carries a tag is one membership item per contact, in the
//! contact's partition (`TAG#{tag id}`) and on the sharded GSI1 list
//! `P#{pid}#TAG#{tag id}`; `contact_count` moves with each membership change,
//! on one of the tag's 32 counter shards (`P#{pid}#TAGN#{tag id}#{shard}`,
//! by contact), summed when the tag is read.

use chrono::Utc;

use super::contacts::{conditional, contact_from, contact_pk, delete_request, StoredContact, CONTACT_SK};
use super::index::{index_attrs, shard_of, time_sort, SHARDS};
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::contact::{Contact, ContactStatus};
use crate::domain::tag::{name_key, Tag};
use crate::{Error, Result};

fn tags_pk(pid: &str) -> String {
    format!("P#{pid}#TAGS")
}

fn name_pk(pid: &str, name: &str) -> String {
    format!("P#{pid}#TAGNAME#{}", name_key(name))
}

const NAME_SK: &str = "TN";
const COUNT_SK: &str = "N";

/// One of a tag's counter shards (partition keys apart, so none is hot).
fn count_pk(pid: &str, tag_id: &str, shard: u32) -> String {
    format!("P#{pid}#TAGN#{tag_id}#{shard:02}")
}

pub fn members_list(pid: &str, tag_id: &str) -> String {
    format!("P#{pid}#TAG#{tag_id}")
}

impl Store {
    /// Claims the tag's name and stores it; `Err(existing id)` if the name is taken.
    pub async fn create_tag(&self, pid: &str, tag: &Tag) -> Result<std::result::Result<(), String>> {
        if let Some(owner) = self.claim_tag_name(pid, &tag.name, &tag.id).await? {
            return Ok(Err(owner));
        }
        let mut item: Item = serde_dynamo::to_item(tag).map_err(Error::internal)?;
        item.extend(key(tags_pk(pid), &format!("T#{}", tag.id)));
        self.put_one(item).await?;
        Ok(Ok(()))
    }

    /// `None` when claimed for `tag_id`, else the id that holds the name.
    async fn claim_tag_name(&self, pid: &str, name: &str, tag_id: &str) -> Result<Option<String>> {
        let mut item = key(name_pk(pid, name), NAME_SK);
        item.insert("tag_id".into(), s(tag_id));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR tag_id = :id")
            .expression_attribute_values(":id", s(tag_id))
            .send()
            .await;
        if conditional(out)?.is_some() {
            return Ok(None);
        }
        Ok(Some(self.tag_id_by_name(pid, name).await?.unwrap_or_default()))
    }

    async fn release_tag_name(&self, pid: &str, name: &str, tag_id: &str) -> Result<()> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(name_pk(pid, name), NAME_SK)))
            .condition_expression("tag_id = :id")
            .expression_attribute_values(":id", s(tag_id))
            .send()
            .await;
        conditional(out).map(|_| ())
    }

    pub async fn tag_id_by_name(&self, pid: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .get_one(key(name_pk(pid, name), NAME_SK))
            .await?
            .and_then(|i| get_s(&i, "tag_id").map(str::to_string)))
    }

    pub async fn get_tag(&self, pid: &str, id: &str) -> Result<Option<Tag>> {
        let Some(tag) = self.get_one(key(tags_pk(pid), &format!("T#{id}"))).await? else {
            return Ok(None);
        };
        Ok(self.with_tag_counts(pid, vec![from_item(tag)?]).await?.pop())
    }

    pub async fn list_tags(&self, pid: &str) -> Result<Vec<Tag>> {
        let tags = self
            .query_all(tags_pk(pid), None)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Tag>>>()?;
        self.with_tag_counts(pid, tags).await
    }

    /// Adds each tag's counter shards to the count kept on its item.
    async fn with_tag_counts(&self, pid: &str, mut tags: Vec<Tag>) -> Result<Vec<Tag>> {
        let keys = tags
            .iter()
            .flat_map(|t| (0..SHARDS).map(|shard| key(count_pk(pid, &t.id, shard), COUNT_SK)))
            .collect();
        for item in self.batch_get(keys).await? {
            let tag_id = get_s(&item, "tag_id").unwrap_or_default();
            let count: i64 = item
                .get("n")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if let Some(t) = tags.iter_mut().find(|t| t.id == tag_id) {
                t.contact_count += count;
            }
        }
        Ok(tags)
    }

    /// Renames (claiming the new name first) and/or changes color and
    /// description. `Err(existing id)` if the new name belongs to another tag.
    pub async fn update_tag(
        &self,
        pid: &str,
        tag: &Tag,
        name: Option<&str>,
        color: Option<&str>,
        description: Option<&str>,
    ) -> Result<std::result::Result<Tag, String>> {
        if let Some(name) = name {
            if name_key(name) != name_key(&tag.name) {
                if let Some(owner) = self.claim_tag_name(pid, name, &tag.id).await? {
                    return Ok(Err(owner));
                }
            }
        }
        let mut sets = vec!["updated_at = :now".to_string()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tags_pk(pid), &format!("T#{}", tag.id))))
            .condition_expression("attribute_exists(PK)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .expression_attribute_values(":now", to_attr(&Utc::now())?);
        for (field, value) in [("name", name), ("color", color), ("description", description)] {
            if let Some(v) = value {
                sets.push(format!("#{field} = :{field}"));
                req = req
                    .expression_attribute_names(format!("#{field}"), field)
                    .expression_attribute_values(format!(":{field}"), s(v));
            }
        }
        let out = req.update_expression(format!("SET {}", sets.join(", "))).send().await;
        let Some(out) = conditional(out)? else {
            return Err(Error::NotFound("tag"));
        };
        let updated: Tag = from_item(out.attributes.unwrap_or_default())?;
        if name_key(&updated.name) != name_key(&tag.name) {
            self.release_tag_name(pid, &tag.name, &tag.id).await?;
        }
        Ok(Ok(updated))
    }

    pub async fn delete_tag(&self, pid: &str, tag: &Tag) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tags_pk(pid), &format!("T#{}", tag.id))))
            .send()
            .await
            .map_err(sdk_error)?;
        let shards = (0..SHARDS)
            .map(|shard| delete_request(key(count_pk(pid, &tag.id, shard), COUNT_SK)))
            .collect::<Result<Vec<_>>>()?;
        self.batch_write(shards).await?;
        self.release_tag_name(pid, &tag.name, &tag.id).await
    }

    /// Moves the tag's count for a membership of `cid` made or removed. The
    /// count is spread over counter shards (by contact, as the member lists
    /// are), so that a large import tagging every row never writes one item
    /// per row: 20,000 rows/s put 625 writes/s on each shard.
    pub async fn add_tag_count(&self, pid: &str, tag_id: &str, cid: &str, delta: i64) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(count_pk(pid, tag_id, shard_of(cid)), COUNT_SK)))
            .update_expression("ADD n :d SET tag_id = :tag")
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":tag", s(tag_id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// True if the contact did not carry the tag before.
    pub async fn add_membership(&self, pid: &str, tag_id: &str, cid: &str) -> Result<bool> {
        let mut item = key(contact_pk(pid, cid), &format!("TAG#{tag_id}"));
        item.insert("tag_id".into(), s(tag_id));
        item.insert("contact_id".into(), s(cid));
        item.extend(index_attrs(&members_list(pid, tag_id), cid));
        self.put_if_absent(item).await
    }

    /// True if the contact carried the tag.
    pub async fn remove_membership(&self, pid: &str, tag_id: &str, cid: &str) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &format!("TAG#{tag_id}"))))
            .condition_expression("attribute_exists(PK)")
            .send()
            .await;
        conditional(out).map(|o| o.is_some())
    }

    /// The ids of every contact carrying the tag (deleted ones included), in no particular order.
    pub async fn all_tag_member_ids(&self, pid: &str, tag_id: &str) -> Result<Vec<String>> {
        self.all_list_ids(&members_list(pid, tag_id)).await
    }

    /// Ids of contacts carrying the tag, newest first, after `before`.
    pub async fn tag_members(
        &self,
        pid: &str,
        tag_id: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        let (keys, more) = self.sharded_page(&members_list(pid, tag_id), limit, before).await?;
        let ids = keys
            .iter()
            .filter_map(|k| get_s(k, "PK"))
            .filter_map(|pk| pk.rsplit('#').next().map(str::to_string))
            .collect();
        Ok((ids, more))
    }

    /// Changes a contact's tag names without losing a concurrent change
    /// (compare-and-set on `updated_at`, retried). Returns (before, after);
    /// `None` if there is no such contact (or, with `skip_deleted`, it is deleted).
    pub async fn edit_contact_tags(
        &self,
        pid: &str,
        cid: &str,
        skip_deleted: bool,
        edit: impl Fn(&mut Vec<String>),
    ) -> Result<Option<(Contact, Contact)>> {
        for _ in 0..5 {
            let Some(StoredContact::Live(current)) = self.get_contact(pid, cid).await? else {
                return Ok(None);
            };
            if skip_deleted && current.status == ContactStatus::Deleted {
                return Ok(None);
            }
            let mut tags = current.tags.clone();
            edit(&mut tags);
            if tags == current.tags {
                return Ok(Some((current.clone(), current)));
            }
            let now = Utc::now();
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
                .update_expression("SET tags = :tags, updated_at = :now, upd_sort = :sort")
                .condition_expression("updated_at = :prev")
                .expression_attribute_values(":tags", to_attr(&tags)?)
                .expression_attribute_values(":now", to_attr(&now)?)
                .expression_attribute_values(":sort", s(time_sort(&now, cid)))
                .expression_attribute_values(":prev", to_attr(&current.updated_at)?)
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            if let Some(out) = conditional(out)? {
                if let StoredContact::Live(after) = contact_from(out.attributes.unwrap_or_default())? {
                    return Ok(Some((current, after)));
                }
            }
        }
        Err(Error::internal("tags kept changing under us"))
    }
}
