//! What the email provider reports back, applied once per event: the
//! message's status, the contact's engagement and timeline, and consent
//! (a permanent bounce suppresses the address; a complaint unsubscribes
//! and suppresses).

use serde_json::json;
use tracing::{info, warn};

use crate::domain::list::{Channel, Via};
use crate::domain::message::{SkipReason, StatusEvent};
use crate::domain::ses_event::{self, EventKind};
use crate::store::messages::Engagement;
use crate::store::Store;
use crate::usecases::{activities, broadcasts, lists, unsubscribe};
use crate::{Error, Result};

/// Deliveries after which an event for a message Roster does not know is
/// dropped (its record may lag the event by moments; past that it is not ours).
const UNKNOWN_MESSAGE_TRIES: u32 = 3;

/// Applies one queue message of the SES events queue. A redelivered or
/// duplicated event changes nothing.
pub async fn handle_ses_message(store: &Store, body: &str, receives: u32) -> Result<()> {
    let event = match ses_event::parse(body) {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(()),
        Err(e) => {
            // Retrying cannot make it readable: drop it, loudly.
            warn!(error = %e, "an SES events message that is not an event record was dropped");
            return Ok(());
        }
    };
    let Some(at) = store
        .message_by_provider_id(Channel::Email, &event.ses_message_id)
        .await?
    else {
        if receives < UNKNOWN_MESSAGE_TRIES {
            return Err(Error::internal(format!(
                "no message for SES id {} yet; trying again",
                event.ses_message_id
            )));
        }
        warn!(ses = %event.ses_message_id, kind = event.kind.name(), "an SES event for no message of Roster's was dropped");
        return Ok(());
    };
    let (pid, cid, mid) = (&at.project_id, &at.contact_id, &at.message_id);
    let step = StatusEvent {
        status: event.kind.status(),
        at: event.at,
        detail: event.detail.clone(),
    };
    let Some(message) = store.add_message_event(pid, cid, mid, &step, &event.key).await? else {
        return Ok(()); // Seen before, or the message is gone.
    };
    info!(message_id = %mid, kind = event.kind.name(), "SES event recorded");
    let counter = match &event.kind {
        EventKind::Delivery => Some("delivered"),
        EventKind::Open => Some("opened"),
        EventKind::Click { .. } => Some("clicked"),
        EventKind::Bounce { permanent: true } => Some("bounced"),
        EventKind::Complaint => Some("complained"),
        _ => None,
    };
    if let (Some(bid), Some(field)) = (&message.broadcast_id, counter) {
        broadcasts::count_event(store, pid, bid, mid, field).await?;
    }
    match &event.kind {
        EventKind::Open => {
            let change = Engagement {
                opens: 1,
                opened_at: Some(event.at),
                ..Default::default()
            };
            store.add_engagement(pid, cid, &change).await?;
            let data = json!({"message_id": mid, "broadcast_id": message.broadcast_id});
            activities::record(
                store,
                pid,
                cid,
                "email_open",
                Some("Opened an email".into()),
                super::as_map(data),
            )
            .await?;
        }
        EventKind::Click { link } => {
            let change = Engagement {
                clicks: 1,
                clicked_at: Some(event.at),
                ..Default::default()
            };
            store.add_engagement(pid, cid, &change).await?;
            let data = json!({"message_id": mid, "broadcast_id": message.broadcast_id, "link": link});
            activities::record(
                store,
                pid,
                cid,
                "email_click",
                Some("Clicked a link in an email".into()),
                super::as_map(data),
            )
            .await?;
        }
        EventKind::Bounce { permanent: true } => {
            let note = Some(format!("permanent bounce of message {mid}"));
            unsubscribe::channel_wide(store, pid, cid, Channel::Email, SkipReason::Suppressed, Some(mid), note).await?;
        }
        EventKind::Complaint => {
            let note = Some(format!("complaint about message {mid}"));
            if let Some(list_id) = &message.list_id {
                lists::unsubscribe_if_listed(store, pid, list_id, cid, Via::Feedback, note.clone()).await?;
            }
            unsubscribe::channel_wide(store, pid, cid, Channel::Email, SkipReason::Suppressed, Some(mid), note).await?;
        }
        _ => {}
    }
    Ok(())
}
