//! Messages (in the contact's partition, `M#{id}`, and on the project-wide
//! sharded GSI1 list `P#{pid}#MSGS`), the provider id → message pointer
//! (`PMID#{channel}#{provider id}`, `PMID`: provider events carry only
//! their own id), and a contact's opt-out of a whole channel (`OPTOUT#{channel}`).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::contacts::{conditional, contact_pk, CONTACT_SK};
use super::index::index_attrs;
use super::{from_item, get_s, key, n, s, sdk_error, to_attr, Item, Store};
use crate::domain::list::Channel;
use crate::domain::message::{ChannelOptOut, Message, MessageState, StatusEvent};
use crate::{Error, Result};

fn message_sk(mid: &str) -> String {
    format!("M#{mid}")
}

fn messages_list(pid: &str) -> String {
    format!("P#{pid}#MSGS")
}

fn channel_str(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
    }
}

fn pointer_pk(channel: Channel, provider_id: &str) -> String {
    format!("PMID#{}#{provider_id}", channel_str(channel))
}

fn pointer_item(channel: Channel, provider_id: &str, to: &MessageRef) -> Item {
    Item::from([
        ("PK".to_string(), s(pointer_pk(channel, provider_id))),
        ("SK".to_string(), s("PMID")),
        ("project_id".to_string(), s(&to.project_id)),
        ("contact_id".to_string(), s(&to.contact_id)),
        ("message_id".to_string(), s(&to.message_id)),
    ])
}

/// Where a provider's message id leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub project_id: String,
    pub contact_id: String,
    pub message_id: String,
}

impl Store {
    /// Writes a new message; false if one with its id exists (a retried step).
    pub async fn put_message(&self, pid: &str, m: &Message) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(m).map_err(Error::internal)?;
        item.extend(key(contact_pk(pid, &m.contact_id), &message_sk(&m.id)));
        item.extend(index_attrs(&messages_list(pid), &m.id));
        self.put_if_absent(item).await
    }

    pub async fn get_message(&self, pid: &str, cid: &str, mid: &str) -> Result<Option<Message>> {
        self.get_one(key(contact_pk(pid, cid), &message_sk(mid)))
            .await?
            .map(from_item)
            .transpose()
    }

    /// A message by id alone (the index, then the item).
    pub async fn find_message(&self, pid: &str, mid: &str) -> Result<Option<Message>> {
        let Some(keys) = self.index_lookup(&messages_list(pid), mid).await? else {
            return Ok(None);
        };
        self.get_one(keys).await?.map(from_item).transpose()
    }

    /// Records the provider's acceptance: `status` (`sent` for SES,
    /// `accepted` for Twilio), its id, and the pointer its events will be
    /// matched by.
    pub async fn mark_sent(&self, pid: &str, m: &Message, provider_id: &str, status: MessageState) -> Result<Message> {
        let now = Utc::now();
        let target = MessageRef {
            project_id: pid.to_string(),
            contact_id: m.contact_id.clone(),
            message_id: m.id.clone(),
        };
        self.put_one(pointer_item(m.channel, provider_id, &target)).await?;
        let event = StatusEvent {
            status,
            at: now,
            detail: None,
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, &m.contact_id), &message_sk(&m.id))))
            .update_expression(
                "SET #status = :sent, provider_id = :pid, history = list_append(history, :h), updated_at = :now",
            )
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", to_attr(&status)?)
            .expression_attribute_values(":pid", s(provider_id))
            .expression_attribute_values(":h", to_attr(&vec![event])?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        conditional(out)?
            .and_then(|o| o.attributes)
            .map(from_item)
            .transpose()?
            .ok_or(Error::NotFound("message"))
    }

    /// Ends a message that was not sent: `failed` (or another end) with why.
    pub async fn mark_unsent(&self, pid: &str, m: &Message, status: MessageState, error: &str) -> Result<()> {
        let now = Utc::now();
        let event = StatusEvent {
            status,
            at: now,
            detail: Some(error.to_string()),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, &m.contact_id), &message_sk(&m.id))))
            .update_expression("SET #status = :s, #error = :e, history = list_append(history, :h), updated_at = :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":s", to_attr(&status)?)
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":h", to_attr(&vec![event])?)
            .expression_attribute_values(":now", to_attr(&now)?)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Takes back a claim the provider never took (throttled): the message
    /// goes, if it is still queued, so that a later try sends it.
    pub async fn withdraw_claim(&self, pid: &str, cid: &str, mid: &str) -> Result<()> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &message_sk(mid))))
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":queued", to_attr(&MessageState::Queued)?)
            .send()
            .await;
        conditional(out)?;
        Ok(())
    }

    /// Claims a provider id for a message not yet written (an inbound SMS
    /// by its `MessageSid`); false if it is claimed already (a retry).
    pub async fn claim_provider_id(&self, channel: Channel, provider_id: &str, target: &MessageRef) -> Result<bool> {
        self.put_if_absent(pointer_item(channel, provider_id, target)).await
    }

    /// Keeps the provider's error code on a message.
    pub async fn set_message_error(&self, pid: &str, cid: &str, mid: &str, error: &str) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), &message_sk(mid))))
            .update_expression("SET #error = :e")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":e", s(error))
            .send()
            .await;
        conditional(out)?;
        Ok(())
    }

    /// The message a provider id belongs to.
    pub async fn message_by_provider_id(&self, channel: Channel, provider_id: &str) -> Result<Option<MessageRef>> {
        let Some(item) = self.get_one(key(pointer_pk(channel, provider_id), "PMID")).await? else {
            return Ok(None);
        };
        let field = |name: &str| get_s(&item, name).map(str::to_string).unwrap_or_default();
        Ok(Some(MessageRef {
            project_id: field("project_id"),
            contact_id: field("contact_id"),
            message_id: field("message_id"),
        }))
    }

    /// Adds a provider event to a message once: `event_key` names the event
    /// (a redelivered one has the same), and the status moves only forward
    /// (by [`MessageState::rank`]). `None` if the message is gone or the event
    /// was recorded before.
    pub async fn add_message_event(
        &self,
        pid: &str,
        cid: &str,
        mid: &str,
        event: &StatusEvent,
        event_key: &str,
    ) -> Result<Option<Message>> {
        for _ in 0..5 {
            let Some(item) = self.get_one(key(contact_pk(pid, cid), &message_sk(mid))).await? else {
                return Ok(None);
            };
            let seen = item
                .get("event_keys")
                .and_then(|v| v.as_ss().ok())
                .is_some_and(|keys| keys.iter().any(|k| k == event_key));
            if seen {
                return Ok(None);
            }
            let m: Message = from_item(item)?;
            let status = if event.status.rank() >= m.status.rank() {
                event.status
            } else {
                m.status
            };
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(contact_pk(pid, cid), &message_sk(mid))))
                .update_expression(
                    "SET #status = :s, history = list_append(history, :h), updated_at = :now ADD event_keys :k",
                )
                .condition_expression("updated_at = :seen AND NOT contains(event_keys, :key)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":s", to_attr(&status)?)
                .expression_attribute_values(":h", to_attr(&vec![event.clone()])?)
                .expression_attribute_values(":now", to_attr(&Utc::now())?)
                .expression_attribute_values(":seen", to_attr(&m.updated_at)?)
                .expression_attribute_values(":k", AttributeValue::Ss(vec![event_key.to_string()]))
                .expression_attribute_values(":key", s(event_key))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            // Refused: the event is in already, or the message moved; the next read tells which.
            if let Some(out) = conditional(out)? {
                return out.attributes.map(from_item).transpose();
            }
        }
        Err(Error::internal("the message kept changing under us"))
    }

    /// A contact's messages, newest first, from `before` (a message id).
    pub async fn contact_messages(
        &self,
        pid: &str,
        cid: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Message>, bool)> {
        let upper = message_sk(before.unwrap_or("~"));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(contact_pk(pid, cid)))
            .expression_attribute_values(":lo", s("M#"))
            // BETWEEN is inclusive: the cursor's own message is left out below.
            .expression_attribute_values(":hi", s(upper))
            .scan_index_forward(false)
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(sdk_error)?;
        let mut messages: Vec<Message> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        messages.retain(|m| Some(m.id.as_str()) != before);
        let more = messages.len() > limit || out.last_evaluated_key.is_some() && messages.len() == limit;
        messages.truncate(limit);
        Ok((messages, more))
    }

    /// A page of the project's messages, newest first, after `before`.
    pub async fn project_messages(
        &self,
        pid: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<(Vec<Message>, bool)> {
        let (keys, more) = self.sharded_page(&messages_list(pid), limit, before).await?;
        let messages = self
            .batch_get(keys)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        Ok((messages, more))
    }

    pub async fn channel_opt_out(&self, pid: &str, cid: &str, channel: Channel) -> Result<Option<ChannelOptOut>> {
        self.get_one(key(contact_pk(pid, cid), &format!("OPTOUT#{}", channel_str(channel))))
            .await?
            .map(from_item)
            .transpose()
    }

    /// Ends a contact's opt-out of a whole channel if it is of the kind the
    /// person can take back (opted out, unsubscribed): a suppression stays.
    pub async fn lift_channel_opt_out(&self, pid: &str, cid: &str, channel: Channel) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(
                contact_pk(pid, cid),
                &format!("OPTOUT#{}", channel_str(channel)),
            )))
            .condition_expression("attribute_exists(PK) AND #rank = :rank")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":rank", n(opt_out_rank(crate::domain::message::SkipReason::OptedOut)))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Records an opt-out of a whole channel. A stronger one is never
    /// replaced by a weaker (a suppression stays when an unsubscribe follows).
    pub async fn put_channel_opt_out(&self, pid: &str, cid: &str, o: &ChannelOptOut) -> Result<bool> {
        let mut item: Item = serde_dynamo::to_item(o).map_err(Error::internal)?;
        item.extend(key(contact_pk(pid, cid), &format!("OPTOUT#{}", channel_str(o.channel))));
        let rank = opt_out_rank(o.reason);
        item.insert("rank".into(), n(rank));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #rank < :rank")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":rank", n(rank))
            .send()
            .await;
        Ok(conditional(out)?.is_some())
    }

    /// Moves a contact's engagement counters (atomic `ADD`s) and the times
    /// of the latest send, open and click.
    pub async fn add_engagement(&self, pid: &str, cid: &str, change: &Engagement) -> Result<()> {
        let mut adds = Vec::new();
        let mut sets = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(pid, cid), CONTACT_SK)))
            .condition_expression("attribute_exists(PK)");
        for (field, value) in [
            ("total_sends", change.sends),
            ("total_opens", change.opens),
            ("total_clicks", change.clicks),
            ("messages_out", change.sends),
            ("messages_in", change.received),
        ] {
            if value > 0 {
                adds.push(format!("{field} :{field}"));
                req = req.expression_attribute_values(format!(":{field}"), n(value));
            }
        }
        for (field, at) in [
            ("last_sent_at", change.sent_at),
            ("last_opened_at", change.opened_at),
            ("last_clicked_at", change.clicked_at),
        ] {
            if let Some(at) = at {
                sets.push(format!("{field} = :{field}"));
                req = req.expression_attribute_values(format!(":{field}"), to_attr(&at)?);
            }
        }
        if adds.is_empty() && sets.is_empty() {
            return Ok(());
        }
        let mut expr = String::new();
        if !sets.is_empty() {
            expr.push_str(&format!("SET {} ", sets.join(", ")));
        }
        if !adds.is_empty() {
            expr.push_str(&format!("ADD {}", adds.join(", ")));
        }
        // A contact erased since is no error: there is nothing left to count on.
        conditional(req.update_expression(expr).send().await)?;
        Ok(())
    }
}

/// Counter moves for one contact.
#[derive(Clone, Debug, Default)]
pub struct Engagement {
    pub sends: u64,
    pub opens: u64,
    pub clicks: u64,
    /// Inbound messages.
    pub received: u64,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
}

/// Suppressed (the address itself) is stronger than unsubscribed.
fn opt_out_rank(reason: crate::domain::message::SkipReason) -> u8 {
    use crate::domain::message::SkipReason as R;
    match reason {
        R::Suppressed | R::Invalid => 2,
        _ => 1,
    }
}
