//! Source records (waitlist signups, form submissions, contact messages, chat
//! conversations), kept in their contact's partition (`SK = R#{kind}#{id}`).
//! Messages and chats are also on a project-wide GSI1 list, which is how the
//! team lists them and how one is found by id.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::Utc;

use super::contacts::{conditional, contact_pk};
use super::index::index_attrs;
use super::{from_item, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::submission::{ChatMessage, MessageStatus, Record, RecordKind, MAX_CHAT_MESSAGES};
use crate::{Error, Result};

fn record_sk(kind: RecordKind, id: &str) -> String {
    format!("R#{}#{id}", kind.as_str())
}

/// The project-wide list a kind of record is on, if any.
fn record_list(pid: &str, kind: RecordKind) -> Option<String> {
    match kind {
        RecordKind::Message => Some(format!("P#{pid}#MESSAGES")),
        RecordKind::Chat => Some(format!("P#{pid}#CHATS")),
        RecordKind::Waitlist | RecordKind::Form => None,
    }
}

impl Store {
    pub async fn put_record(&self, pid: &str, record: &Record) -> Result<()> {
        let mut item: Item = serde_dynamo::to_item(record).map_err(Error::internal)?;
        item.extend(key(
            contact_pk(pid, &record.contact_id),
            &record_sk(record.kind, &record.id),
        ));
        if let Some(list) = record_list(pid, record.kind) {
            item.extend(index_attrs(&list, &record.id));
        }
        self.put_one(item).await?;
        Ok(())
    }

    /// A message or chat by id (two requests: the index, then the item).
    pub async fn find_record(&self, pid: &str, kind: RecordKind, id: &str) -> Result<Option<Record>> {
        let Some(list) = record_list(pid, kind) else {
            return Ok(None);
        };
        let Some(keys) = self.index_lookup(&list, id).await? else {
            return Ok(None);
        };
        self.get_one(keys).await?.map(from_item).transpose()
    }

    /// A contact's records of one kind, newest first.
    pub async fn contact_records(&self, pid: &str, cid: &str, kind: RecordKind, limit: usize) -> Result<Vec<Record>> {
        let prefix = format!("R#{}#", kind.as_str());
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(contact_pk(pid, cid)))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(false)
            .limit(limit as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// The project's messages or chats, newest first, after `before`.
    pub async fn project_records(
        &self,
        pid: &str,
        kind: RecordKind,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Record>, bool)> {
        let Some(list) = record_list(pid, kind) else {
            return Ok((Vec::new(), false));
        };
        let (keys, more) = self.sharded_page(&list, limit, before).await?;
        let records = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        Ok((records, more))
    }

    pub async fn set_message_status(
        &self,
        pid: &str,
        record: &Record,
        status: MessageStatus,
    ) -> Result<Option<Record>> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                contact_pk(pid, &record.contact_id),
                &record_sk(record.kind, &record.id),
            )))
            .update_expression("SET #status = :status, updated_at = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", to_attr(&status)?)
            .expression_attribute_values(":now", to_attr(&Utc::now())?)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match conditional(out)? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }

    /// Appends to a conversation (refused once it holds the maximum) and
    /// sets its summary if given. `None` if it is gone or full.
    pub async fn append_chat(
        &self,
        pid: &str,
        record: &Record,
        messages: &[ChatMessage],
        summary: Option<&str>,
    ) -> Result<Option<Record>> {
        let mut expression = "SET messages = list_append(messages, :m), updated_at = :now".to_string();
        let mut values = vec![
            (":m", to_attr(&messages)?),
            (":now", to_attr(&Utc::now())?),
            (":room", n(MAX_CHAT_MESSAGES.saturating_sub(messages.len()) + 1)),
        ];
        if let Some(summary) = summary {
            expression.push_str(", summary = :summary");
            values.push((":summary", AttributeValue::S(summary.to_string())));
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                contact_pk(pid, &record.contact_id),
                &record_sk(RecordKind::Chat, &record.id),
            )))
            .update_expression(expression)
            .condition_expression("attribute_exists(PK) AND size(messages) < :room")
            .return_values(ReturnValue::AllNew);
        for (name, value) in values {
            req = req.expression_attribute_values(name, value);
        }
        match conditional(req.send().await)? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }
}
