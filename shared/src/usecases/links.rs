//! Tracked links: a click counts once per recipient and message, redirects
//! at once, and a purchase soon after it is credited to the message (and
//! its broadcast).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::domain::contact::Contact;
use crate::domain::links::is_token;
use crate::domain::message::{MessageState, StatusEvent};
use crate::domain::project::Project;
use crate::store::messages::Engagement;
use crate::store::Store;
use crate::usecases::{activities, as_map, broadcasts};
use crate::{Error, Result};

/// Counts a click on the short link `token`; where it leads.
pub async fn click(store: &Store, token: &str) -> Result<String> {
    if !is_token(token) {
        return Err(Error::NotFound("link"));
    }
    let link = store.get_link(token).await?.ok_or(Error::NotFound("link"))?;
    let (pid, cid, mid) = (&link.project_id, &link.contact_id, &link.message_id);
    let now = Utc::now();
    // The latest click is what a purchase is credited to, first or not.
    store.set_last_click(pid, cid, &link, now).await?;
    if store.first_click(pid, cid, mid, now).await? {
        let change = Engagement {
            clicks: 1,
            clicked_at: Some(now),
            ..Default::default()
        };
        store.add_engagement(pid, cid, &change).await?;
        let event = StatusEvent {
            status: MessageState::Clicked,
            at: now,
            detail: Some(link.url.clone()),
        };
        store.add_message_event(pid, cid, mid, &event, "link:click").await?;
        if let Some(bid) = &link.broadcast_id {
            broadcasts::count_event(store, pid, bid, mid, "clicked").await?;
        }
        let data = json!({ "message_id": mid, "broadcast_id": link.broadcast_id, "url": link.url });
        activities::record(
            store,
            pid,
            cid,
            "link_click",
            Some(format!("Clicked {}", link.url)),
            as_map(data),
        )
        .await?;
    }
    Ok(link.url)
}

/// The message a purchase at `at` is credited to: the contact's latest
/// click, if the purchase came within the project's window after it.
pub async fn attribute(
    store: &Store,
    project: &Project,
    contact: &Contact,
    amount: f64,
    at: DateTime<Utc>,
) -> Result<Option<(String, Option<String>)>> {
    let (Some(mid), Some(clicked)) = (&contact.last_click_message_id, contact.last_click_at) else {
        return Ok(None);
    };
    let window = Duration::days(project.attribution_days as i64);
    if at < clicked || at > clicked + window {
        return Ok(None);
    }
    let pid = project.id.as_str();
    store.add_message_revenue(pid, &contact.id, mid, amount).await?;
    if let Some(bid) = &contact.last_click_broadcast_id {
        store.add_broadcast_amount(pid, bid, mid, "revenue", amount).await?;
    }
    Ok(Some((mid.clone(), contact.last_click_broadcast_id.clone())))
}
