//! Broadcasts: a template sent to an audience, fanned out through the send
//! queue on the bulk jobs' machinery. `send` (now, or at `send_at` when the
//! scheduler tick finds it due) queues a `plan` message; the planner fixes
//! the audience once (that moment is `started_at`), writes it as chunks of
//! ids with a ledger entry each and sends one `chunk` message per chunk;
//! send workers go through a chunk in batches, reading each recipient's
//! consent as they send, and commit each batch's outcomes to the chunk's
//! ledger.
//!
//! The send ledger: every recipient's message has an id derived from
//! (broadcast, contact), and writing it (if absent) is the claim, made
//! before the provider is called. A redelivered chunk, a retried batch or a
//! resume finds the claims made before: a message already sent is counted
//! as sent and not sent again; a claim with no outcome (a worker that died
//! between the claim and the provider's answer) is counted `uncertain` and
//! never sent again: at most once. A batch is committed only whole, so each
//! recipient is counted once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use utoipa::ToSchema;

use crate::domain::broadcast::{self, Audience, Broadcast, BroadcastState, Outcome, SendProgress, SendTally};
use crate::domain::bulk::{chunks, Filter};
use crate::domain::contact::Contact;
use crate::domain::ids::{derived_id, is_id, new_id};
use crate::domain::list::Channel;
use crate::domain::message::{MessageState, SkipReason};
use crate::domain::project::Project;
use crate::domain::template::{Compiled, Template};
use crate::mailer::SendError;
use crate::queue::Queue;
use crate::store::messages::Engagement;
use crate::store::Store;
use crate::usecases::messages::{self, Messaging};
use crate::usecases::{bulk, decode_cursor, encode_cursor, lists, projects, templates, Page};
use crate::{Error, Result};

/// Recipients sent between two ledger commits.
const BATCH: usize = 50;
/// Recipients sent to at once within a batch, at most (fewer at low rates).
const IN_FLIGHT: usize = 8;
/// Tries of one recipient while the provider throttles (then the batch is
/// left to be delivered again, uncounted).
const THROTTLE_TRIES: u32 = 6;
/// The first wait while throttled (doubling each try: 0.5 s to 8 s).
const THROTTLE_WAIT: Duration = Duration::from_millis(250);

/// What broadcasts need: sending, and the queue their steps go through.
#[derive(Clone)]
pub struct Broadcasts {
    pub ms: Messaging,
    pub queue: Queue,
    /// Recipients per chunk (one SQS message and one worker run each).
    pub chunk_ids: usize,
    /// Send workers that may run at once: each paces at the project's rate divided by this.
    pub workers: u32,
}

/// On the send queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SendMessage {
    /// Fix the audience and fan its chunks out.
    Plan { project_id: String, broadcast_id: String },
    /// Send one chunk of the audience.
    Chunk {
        project_id: String,
        broadcast_id: String,
        chunk: u32,
    },
    /// The scheduler's tick: start what is due (or mark it missed). `at`:
    /// the tick's own time, when later than the clock.
    Tick {
        #[serde(default)]
        at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastInput {
    pub name: Option<String>,
    /// `email` (default) or `sms`.
    pub channel: Option<Channel>,
    pub template_id: Option<String>,
    /// Email: default the consent list's sender, then the project's
    /// `email_from`. SMS: always the list's number (`list_id` is required).
    pub from: Option<String>,
    /// Send the links of its messages as short tracked links (clicks, attributed revenue).
    pub track_links: Option<bool>,
    pub audience: Option<Audience>,
    /// For a filter or ids audience: the list each recipient must be active on.
    pub list_id: Option<String>,
    /// When `send` sends it (RFC 3339, in the future); absent: at once.
    pub send_at: Option<DateTime<Utc>>,
}

/// A broadcast with its counts, which always add up:
/// `recipients = queued + sent + skipped + failed + uncertain`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastView {
    #[serde(flatten)]
    pub broadcast: Broadcast,
    /// Not yet sent to (0 before the audience is read).
    pub queued: u64,
    pub sent: u64,
    /// Not sent because consent (or an address) was missing when sending: the sum of `skipped_by_reason`.
    pub skipped: u64,
    pub skipped_by_reason: std::collections::BTreeMap<String, u64>,
    pub failed: u64,
    /// Claimed by a worker that stopped before the provider answered: not sent again.
    pub uncertain: u64,
    pub delivered: u64,
    pub opened: u64,
    pub clicked: u64,
    pub bounced: u64,
    pub complained: u64,
    /// Revenue of purchases made within the project's `attribution_days` of a click on a tracked link.
    pub revenue: f64,
    /// Share of the audience done (sent, skipped, failed or uncertain).
    pub percent: f64,
    /// Messages sent per second since sending started.
    pub rate: f64,
}

fn view(b: Broadcast, chunks: &[SendProgress], e: broadcast::Engagement) -> BroadcastView {
    let chunks = chunks.iter().filter(|c| c.chunk < b.chunks_total);
    let (mut sent, mut failed, mut uncertain) = (0, 0, 0);
    let mut skipped_by_reason = std::collections::BTreeMap::new();
    for c in chunks {
        sent += c.sent;
        failed += c.failed;
        uncertain += c.uncertain;
        for (r, n) in &c.skipped {
            *skipped_by_reason.entry(r.clone()).or_insert(0) += n;
        }
    }
    let skipped: u64 = skipped_by_reason.values().sum();
    let done = sent + failed + uncertain + skipped;
    let recipients = b.recipients.unwrap_or(0);
    let percent = match (b.state, recipients) {
        (BroadcastState::Completed, _) => 100.0,
        (_, 0) => 0.0,
        (_, r) => (done as f64 * 1000.0 / r as f64).round() / 10.0,
    };
    let rate = match b.started_at {
        Some(start) => {
            let end = b.finished_at.unwrap_or_else(Utc::now);
            let secs = (end - start).num_milliseconds().max(1) as f64 / 1000.0;
            (sent as f64 / secs * 10.0).round() / 10.0
        }
        None => 0.0,
    };
    BroadcastView {
        queued: recipients.saturating_sub(done),
        sent,
        skipped,
        skipped_by_reason,
        failed,
        uncertain,
        delivered: e.delivered,
        opened: e.opened,
        clicked: e.clicked,
        bounced: e.bounced,
        complained: e.complained,
        revenue: (e.revenue * 100.0).round() / 100.0,
        percent,
        rate,
        broadcast: b,
    }
}

/// The broadcast `input` makes (of `old`, or new), checked whole.
async fn build(store: &Store, project: &Project, old: Option<Broadcast>, input: BroadcastInput) -> Result<Broadcast> {
    let now = Utc::now();
    let mut b = old.unwrap_or_else(|| Broadcast {
        id: new_id(),
        name: String::new(),
        channel: Channel::Email,
        template_id: String::new(),
        from: String::new(),
        audience: Audience::default(),
        list_id: None,
        send_at: None,
        state: BroadcastState::Draft,
        reason: None,
        recipients: None,
        chunks_total: 0,
        base_url: None,
        track_links: false,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    });
    if let Some(name) = input.name {
        b.name = crate::domain::normalize::text(&name).ok_or_else(|| Error::invalid("name", "name cannot be empty"))?;
    }
    if let Some(c) = input.channel {
        b.channel = c;
    }
    if let Some(t) = input.track_links {
        b.track_links = t;
    }
    if let Some(t) = input.template_id {
        b.template_id = t;
    }
    if let Some(a) = input.audience {
        a.check()?;
        b.audience = a;
    }
    if input.list_id.is_some() {
        b.list_id = input.list_id;
    }
    if b.audience.list_id.is_some() {
        b.list_id = b.audience.list_id.clone();
    }
    if let Some(at) = input.send_at {
        if at <= now {
            return Err(Error::invalid(
                "send_at",
                "send_at is in the future (leave it out to send at once)",
            ));
        }
        b.send_at = Some(at);
    }
    if b.name.is_empty() {
        b.name = format!("Broadcast {}", now.format("%Y-%m-%d %H:%M"));
    }
    if b.template_id.is_empty() {
        return Err(Error::invalid("template_id", "template_id is required"));
    }
    let template = templates::get(store, &project.id, &b.template_id)
        .await
        .map_err(|_| Error::invalid("template_id", format!("no template {} in this project", b.template_id)))?;
    if template.channel != b.channel {
        return Err(Error::invalid("template_id", "that template is for another channel"));
    }
    b.audience.check()?;
    let sender = match &b.list_id {
        Some(id) => {
            let list = lists::get(store, &project.id, id)
                .await
                .map_err(|_| Error::invalid("list_id", format!("no list {id} in this project")))?;
            if list.channel != b.channel {
                return Err(Error::invalid("list_id", "that list is for another channel"));
            }
            Some(list.sender)
        }
        None => None,
    };
    if b.channel == Channel::Sms {
        messages::check_twilio(project)?;
        if input.from.is_some() {
            return Err(Error::invalid(
                "from",
                "an SMS broadcast is sent from its list's number",
            ));
        }
        b.from = sender.ok_or_else(|| {
            Error::invalid(
                "list_id",
                "an SMS broadcast goes out from a sending list's number: give the list_id of an SMS list",
            )
        })?;
        b.updated_at = now;
        return Ok(b);
    }
    if let Some(from) = input.from {
        b.from = crate::domain::normalize::email(&from).map_err(|m| Error::invalid("from", m))?;
    }
    if b.from.is_empty() {
        b.from = sender
            .or_else(|| project.email_from.clone())
            .ok_or_else(|| Error::invalid("from", "no From address: give one, or set the project's email_from"))?;
    }
    b.updated_at = now;
    Ok(b)
}

pub async fn create(bc: &Broadcasts, project: &Project, input: BroadcastInput) -> Result<BroadcastView> {
    let b = build(&bc.ms.store, project, None, input).await?;
    bc.ms.check_sender(b.channel, &b.from)?;
    bc.ms.store.put_broadcast(&project.id, &b, &[]).await?;
    Ok(view(b, &[], Default::default()))
}

/// Changes a draft (or a scheduled broadcast, which goes back to draft).
pub async fn update(bc: &Broadcasts, project: &Project, id: &str, input: BroadcastInput) -> Result<BroadcastView> {
    let old = load(&bc.ms.store, &project.id, id).await?;
    if !matches!(old.state, BroadcastState::Draft | BroadcastState::Scheduled) {
        return Err(wrong_state(old.state, "changed"));
    }
    let was = old.state;
    let due = old.send_at;
    let mut b = build(&bc.ms.store, project, Some(old), input).await?;
    bc.ms.check_sender(b.channel, &b.from)?;
    b.state = BroadcastState::Draft;
    if !bc.ms.store.put_broadcast(&project.id, &b, &[was]).await? {
        return Err(Error::Conflict {
            code: "changed",
            field: None,
            message: "the broadcast changed meanwhile; read it again".into(),
        });
    }
    if let (BroadcastState::Scheduled, Some(at)) = (was, due) {
        bc.ms.store.delete_due(&project.id, id, &at).await?;
    }
    Ok(view(b, &[], Default::default()))
}

async fn load(store: &Store, pid: &str, id: &str) -> Result<Broadcast> {
    if !is_id(id) {
        return Err(Error::NotFound("broadcast"));
    }
    store.get_broadcast(pid, id).await?.ok_or(Error::NotFound("broadcast"))
}

fn wrong_state(state: BroadcastState, what: &str) -> Error {
    Error::Conflict {
        code: "wrong_state",
        field: None,
        message: format!(
            "a broadcast that is {} cannot be {what}",
            serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ),
    }
}

pub async fn get(store: &Store, pid: &str, id: &str) -> Result<BroadcastView> {
    let (b, chunks) = store
        .broadcast_with_progress(pid, id)
        .await?
        .ok_or(Error::NotFound("broadcast"))?;
    let e = store.broadcast_engagement(pid, id).await?;
    Ok(view(b, &chunks, e))
}

pub async fn list(store: &Store, pid: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Broadcast>> {
    let before = cursor.map(decode_cursor).transpose()?;
    let (data, more) = store.project_broadcasts(pid, limit, before.as_deref()).await?;
    let next_cursor = if more {
        data.last().map(|b: &Broadcast| encode_cursor(&b.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// Sends a draft now, or schedules it for its `send_at`.
pub async fn send(bc: &Broadcasts, project: &Project, id: &str, request_base: Option<&str>) -> Result<BroadcastView> {
    let store = &bc.ms.store;
    let mut b = load(store, &project.id, id).await?;
    if b.state != BroadcastState::Draft {
        return Err(wrong_state(b.state, "sent"));
    }
    // Checked again: the template or the list may have gone since the draft was saved.
    let checked = build(store, project, Some(b.clone()), BroadcastInput::default()).await?;
    bc.ms.check_sender(checked.channel, &checked.from)?;
    b.base_url = Some(bc.ms.base_url(request_base)?);
    match b.send_at {
        Some(at) if at > Utc::now() => {
            b.state = BroadcastState::Scheduled;
            store.put_due(&project.id, id, &at).await?;
        }
        _ => b.state = BroadcastState::Pending,
    }
    b.updated_at = Utc::now();
    if !store.put_broadcast(&project.id, &b, &[BroadcastState::Draft]).await? {
        return Err(wrong_state(BroadcastState::Sending, "sent"));
    }
    if b.state == BroadcastState::Pending {
        bc.queue.send(&plan_message(&project.id, id)).await?;
    }
    info!(broadcast = %id, state = ?b.state, "broadcast sent off");
    get(store, &project.id, id).await
}

fn plan_message(pid: &str, id: &str) -> SendMessage {
    SendMessage::Plan {
        project_id: pid.to_string(),
        broadcast_id: id.to_string(),
    }
}

pub async fn pause(bc: &Broadcasts, pid: &str, id: &str) -> Result<BroadcastView> {
    let store = &bc.ms.store;
    let b = load(store, pid, id).await?;
    store
        .move_broadcast(
            pid,
            id,
            &[BroadcastState::Pending, BroadcastState::Sending],
            BroadcastState::Paused,
            Some("paused"),
        )
        .await?
        .ok_or_else(|| wrong_state(b.state, "paused"))?;
    get(store, pid, id).await
}

/// Carries on from where it stopped: the chunks not done are sent again.
pub async fn resume(bc: &Broadcasts, pid: &str, id: &str) -> Result<BroadcastView> {
    let store = &bc.ms.store;
    let b = load(store, pid, id).await?;
    let to = if b.recipients.is_some() {
        BroadcastState::Sending
    } else {
        BroadcastState::Pending
    };
    let b = store
        .move_broadcast(pid, id, &[BroadcastState::Paused], to, None)
        .await?
        .ok_or_else(|| wrong_state(b.state, "resumed"))?;
    match to {
        BroadcastState::Sending => send_unfinished(bc, pid, &b).await?,
        _ => bc.queue.send(&plan_message(pid, id)).await?,
    }
    get(store, pid, id).await
}

pub async fn cancel(bc: &Broadcasts, pid: &str, id: &str) -> Result<BroadcastView> {
    let store = &bc.ms.store;
    let b = load(store, pid, id).await?;
    let from = [
        BroadcastState::Draft,
        BroadcastState::Scheduled,
        BroadcastState::Pending,
        BroadcastState::Sending,
        BroadcastState::Paused,
    ];
    store
        .move_broadcast(pid, id, &from, BroadcastState::Cancelled, Some("cancelled"))
        .await?
        .ok_or_else(|| wrong_state(b.state, "cancelled"))?;
    if let (BroadcastState::Scheduled, Some(at)) = (b.state, b.send_at) {
        store.delete_due(pid, id, &at).await?;
    }
    get(store, pid, id).await
}

/// One message of the send queue.
pub async fn handle_message(bc: &Broadcasts, body: &str) -> Result<()> {
    let message: SendMessage =
        serde_json::from_str(body).map_err(|e| Error::internal(format!("not a send message: {e}")))?;
    match message {
        SendMessage::Plan {
            project_id,
            broadcast_id,
        } => plan(bc, &project_id, &broadcast_id).await,
        SendMessage::Chunk {
            project_id,
            broadcast_id,
            chunk,
        } => run_chunk(bc, &project_id, &broadcast_id, chunk).await,
        SendMessage::Tick { at } => tick(bc, at.map_or_else(Utc::now, |at| at.max(Utc::now()))).await,
    }
}

/// Starts the scheduled broadcasts due at `now`; one whose time passed more
/// than its project's window ago is marked missed, never sent late.
pub async fn tick(bc: &Broadcasts, now: DateTime<Utc>) -> Result<()> {
    let store = &bc.ms.store;
    for due in store.due_broadcasts(&now).await? {
        let (pid, id) = (&due.project_id, &due.broadcast_id);
        let window = match store.get_project(pid).await? {
            Some(p) => p.missed_after_minutes,
            None => 0,
        };
        if broadcast::is_missed(due.send_at, now, window) {
            let reason = format!(
                "its time ({}) passed more than {window} minutes before sending could start",
                due.send_at.to_rfc3339()
            );
            if store
                .move_broadcast(
                    pid,
                    id,
                    &[BroadcastState::Scheduled],
                    BroadcastState::Missed,
                    Some(&reason),
                )
                .await?
                .is_some()
            {
                warn!(broadcast = %id, "scheduled broadcast missed");
            }
        } else if store
            .move_broadcast(pid, id, &[BroadcastState::Scheduled], BroadcastState::Pending, None)
            .await?
            .is_some()
        {
            bc.queue.send(&plan_message(pid, id)).await?;
            info!(broadcast = %id, "scheduled broadcast due");
        }
        store.delete_due(pid, id, &due.send_at).await?;
    }
    Ok(())
}

async fn plan(bc: &Broadcasts, pid: &str, id: &str) -> Result<()> {
    let store = &bc.ms.store;
    let Some(b) = store.get_broadcast(pid, id).await? else {
        warn!(broadcast = %id, "plan message for a broadcast that does not exist");
        return Ok(());
    };
    match b.state {
        BroadcastState::Pending => {}
        // Planned before: the chunk messages sent then may not all have gone out.
        BroadcastState::Sending => return send_unfinished(bc, pid, &b).await,
        _ => return Ok(()),
    }
    let ids = match audience_ids(store, pid, &b.audience).await {
        Ok(ids) => ids,
        Err(Error::Internal(e)) => return Err(Error::Internal(e)),
        Err(e) => {
            store
                .move_broadcast(
                    pid,
                    id,
                    &[BroadcastState::Pending],
                    BroadcastState::Failed,
                    Some(&e.to_string()),
                )
                .await?;
            return Ok(());
        }
    };
    let parts = chunks(&ids, bc.chunk_ids);
    store.put_send_chunks(pid, id, &parts).await?;
    let base = b.base_url.clone().unwrap_or_default();
    if !store
        .start_broadcast(pid, id, ids.len() as u64, parts.len() as u32, &base)
        .await?
    {
        return Ok(());
    }
    info!(broadcast = %id, recipients = ids.len(), chunks = parts.len(), "broadcast audience fixed");
    if parts.is_empty() {
        store
            .move_broadcast(pid, id, &[BroadcastState::Sending], BroadcastState::Completed, None)
            .await?;
        return Ok(());
    }
    let b = Broadcast {
        chunks_total: parts.len() as u32,
        ..b
    };
    send_unfinished(bc, pid, &b).await
}

/// The audience's contact ids, each once.
async fn audience_ids(store: &Store, pid: &str, a: &Audience) -> Result<Vec<String>> {
    if let Some(ids) = &a.ids {
        return Ok(crate::domain::bulk::distinct(ids));
    }
    let filter = match (&a.list_id, &a.filter) {
        (Some(list_id), _) => Filter {
            list_id: Some(list_id.clone()),
            ..Default::default()
        },
        (None, Some(f)) => f.clone(),
        (None, None) => return Err(Error::invalid("audience", "the broadcast has no audience")),
    };
    bulk::select(store, pid, &filter, usize::MAX).await
}

async fn send_unfinished(bc: &Broadcasts, pid: &str, b: &Broadcast) -> Result<()> {
    let done: Vec<u32> = match bc.ms.store.broadcast_with_progress(pid, &b.id).await? {
        Some((_, chunks)) => chunks.iter().filter(|c| c.done()).map(|c| c.chunk).collect(),
        None => Vec::new(),
    };
    let messages: Vec<SendMessage> = (0..b.chunks_total)
        .filter(|n| !done.contains(n))
        .map(|chunk| SendMessage::Chunk {
            project_id: pid.to_string(),
            broadcast_id: b.id.clone(),
            chunk,
        })
        .collect();
    bc.queue.send_all(&messages).await
}

async fn run_chunk(bc: &Broadcasts, pid: &str, id: &str, chunk: u32) -> Result<()> {
    let store = &bc.ms.store;
    let Some(b) = store.get_broadcast(pid, id).await? else {
        return Ok(());
    };
    if b.state != BroadcastState::Sending {
        // Paused or cancelled: resume sends the unfinished chunks again.
        return Ok(());
    }
    let project = match projects::get(store, pid).await {
        Ok(p) => p,
        Err(Error::NotFound(_)) => {
            store
                .move_broadcast(
                    pid,
                    id,
                    &[BroadcastState::Sending],
                    BroadcastState::Failed,
                    Some("the project was deleted"),
                )
                .await?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let template = match templates::get(store, pid, &b.template_id).await {
        Ok(t) => t,
        Err(Error::NotFound(_)) => {
            return pause_sending(store, pid, id, "its template was deleted; resume after restoring it").await;
        }
        Err(e) => return Err(e),
    };
    if b.channel == Channel::Sms && project.twilio().is_none() {
        return pause_sending(
            store,
            pid,
            id,
            "the project's Twilio account is not set; resume after setting it",
        )
        .await;
    }
    let compiled = Compiled::new(&template)?;
    let Some((progress, ids)) = store.send_chunk(pid, id, chunk).await? else {
        return Err(Error::internal(format!("broadcast {id}: no chunk {chunk}")));
    };
    // Email: the project's rate; SMS: the sending number's. Each worker takes its share.
    let rate = match (b.channel, &b.list_id) {
        (Channel::Sms, Some(list_id)) => store
            .get_list(pid, list_id)
            .await?
            .and_then(|l| l.rate())
            .unwrap_or(crate::domain::list::DEFAULT_SMS_PER_SECOND),
        _ => project.send_rate,
    };
    let pacer = Pacer::new(rate as f64 / bc.workers.max(1) as f64);
    let mut next = progress.next as usize;
    while next < ids.len() {
        // A pause or a cancel takes effect between batches.
        if next != progress.next as usize
            && store
                .get_broadcast(pid, id)
                .await?
                .is_none_or(|b| b.state != BroadcastState::Sending)
        {
            return Ok(());
        }
        let to = (next + BATCH).min(ids.len());
        let outcomes = send_batch(bc, &project, &b, &template, &compiled, &pacer, &ids[next..to]).await?;
        let tally = SendTally::of(&outcomes);
        if !store
            .commit_send_batch(pid, id, chunk, (next as u64, to as u64), &tally)
            .await?
        {
            return Ok(()); // Another delivery of this chunk is ahead of us.
        }
        next = to;
    }
    complete_if_done(store, pid, id).await
}

/// Pauses a sending broadcast that cannot go on by itself, saying why.
async fn pause_sending(store: &Store, pid: &str, id: &str, reason: &str) -> Result<()> {
    store
        .move_broadcast(
            pid,
            id,
            &[BroadcastState::Sending],
            BroadcastState::Paused,
            Some(reason),
        )
        .await?;
    Ok(())
}

async fn complete_if_done(store: &Store, pid: &str, id: &str) -> Result<()> {
    let Some((b, chunks)) = store.broadcast_with_progress(pid, id).await? else {
        return Ok(());
    };
    let done = chunks.iter().filter(|c| c.chunk < b.chunks_total && c.done()).count();
    if b.state == BroadcastState::Sending
        && done == b.chunks_total as usize
        && store
            .move_broadcast(pid, id, &[BroadcastState::Sending], BroadcastState::Completed, None)
            .await?
            .is_some()
    {
        info!(broadcast = %id, "broadcast completed");
    }
    Ok(())
}

/// Every recipient of a batch, `IN_FLIGHT` at a time, outcomes in order. An
/// internal error (or the provider throttling past our tries) fails the
/// batch whole, to be delivered again: what was sent of it is found then.
async fn send_batch(
    bc: &Broadcasts,
    project: &Project,
    b: &Broadcast,
    template: &Template,
    compiled: &Compiled<'_>,
    pacer: &Pacer,
    ids: &[String],
) -> Result<Vec<Outcome>> {
    let contacts = bc.ms.store.get_contacts(&project.id, ids).await?;
    let results: Vec<Result<Outcome>> = stream::iter(ids.iter().cloned())
        .map(|cid| {
            let contact = contacts.iter().find(|c| c.id == cid);
            async move {
                match contact {
                    None => Ok(Outcome::Skipped(SkipReason::Deleted)),
                    Some(c) => send_one(bc, project, b, template, compiled, pacer, c).await,
                }
            }
        })
        .buffered(pacer.in_flight())
        .collect()
        .await;
    results.into_iter().collect()
}

/// The message id of (broadcast, contact): the same on every try.
fn recipient_message_id(b: &Broadcast, cid: &str) -> String {
    let ms = b.started_at.unwrap_or(b.created_at).timestamp_millis().max(0) as u64;
    derived_id(ms, format!("{}#{cid}", b.id).as_bytes())
}

async fn send_one(
    bc: &Broadcasts,
    project: &Project,
    b: &Broadcast,
    template: &Template,
    compiled: &Compiled<'_>,
    pacer: &Pacer,
    contact: &Contact,
) -> Result<Outcome> {
    let store = &bc.ms.store;
    let pid = &project.id;
    let mid = recipient_message_id(b, &contact.id);
    // Claimed before: count what that try did; never send a second time.
    if let Some(m) = store.get_message(pid, &contact.id, &mid).await? {
        return Ok(claimed_outcome(m.status));
    }
    if let Err(reason) = messages::eligibility(store, pid, contact, b.channel, b.list_id.as_deref()).await? {
        return Ok(Outcome::Skipped(reason));
    }
    let to = messages::address_of(contact, b.channel).unwrap_or_default();
    let mut message = messages::new_message(contact, template, b.list_id.clone(), Some(b.id.clone()), &b.from, to);
    message.id = mid;
    let base = b.base_url.clone().unwrap_or_default();
    let prepared = match messages::prepare(&bc.ms, project, contact, compiled, &message, &base, b.track_links) {
        Ok(p) => p,
        Err(e) => {
            message.error = Some(e.to_string());
            message.status = MessageState::Failed;
            store.put_message(pid, &message).await?;
            return Ok(Outcome::Failed);
        }
    };
    prepared.record_on(&mut message);
    // The slot is taken before the claim: a claim waits for nothing but the provider.
    pacer.wait().await;
    // The claim.
    if !store.put_message(pid, &message).await? {
        let m = store.get_message(pid, &contact.id, &message.id).await?;
        return Ok(m.map_or(Outcome::Uncertain, |m| claimed_outcome(m.status)));
    }
    let delivered = messages::hand_over(
        &bc.ms,
        project,
        &message,
        &prepared,
        &base,
        THROTTLE_TRIES,
        THROTTLE_WAIT,
    )
    .await;
    match delivered {
        Ok(provider_id) => {
            store
                .mark_sent(pid, &message, &provider_id, messages::accepted_state(b.channel))
                .await?;
            let change = Engagement {
                sends: 1,
                sent_at: Some(Utc::now()),
                ..Default::default()
            };
            store.add_engagement(pid, &contact.id, &change).await?;
            Ok(Outcome::Sent)
        }
        Err(SendError::Throttled(e)) => {
            // Not sent: the claim is withdrawn, so that the batch's next delivery sends it.
            store.withdraw_claim(pid, &contact.id, &message.id).await?;
            Err(Error::internal(format!("the provider kept throttling: {e}")))
        }
        Err(SendError::OptedOut(e)) => {
            messages::opted_out_at_carrier(store, pid, &message, &e).await?;
            Ok(Outcome::Failed)
        }
        Err(SendError::Rejected(e)) => {
            store.mark_unsent(pid, &message, MessageState::Rejected, &e).await?;
            Ok(Outcome::Failed)
        }
        Err(SendError::Other(e)) => {
            // No answer: it may or may not have gone. Not sent again; reported.
            let why = format!("no answer from the provider: {e}");
            store.mark_unsent(pid, &message, MessageState::Failed, &why).await?;
            Ok(Outcome::Failed)
        }
    }
}

/// Spaces sends evenly at `per_second`, however many are in flight: each
/// send takes the next free slot.
struct Pacer {
    every: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Self {
        Pacer {
            every: Duration::from_secs_f64(1.0 / per_second.max(0.1)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Recipients worth having in flight: enough to keep the rate through
    /// the provider's latency, few enough that consent is read at most about
    /// half a second before each send (one at a time at 1 a second).
    fn in_flight(&self) -> usize {
        let per_second = 1.0 / self.every.as_secs_f64();
        ((per_second / 2.0).ceil() as usize).clamp(1, IN_FLIGHT)
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.every;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

fn claimed_outcome(status: MessageState) -> Outcome {
    match status {
        MessageState::Queued => Outcome::Uncertain,
        MessageState::Failed | MessageState::Rejected => Outcome::Failed,
        _ => Outcome::Sent,
    }
}

/// Counts a provider event on its broadcast; a complaint rate past the limit
/// (after enough sends) pauses the broadcast, saying why.
pub async fn count_event(store: &Store, pid: &str, id: &str, message_id: &str, field: &str) -> Result<()> {
    store.add_broadcast_event(pid, id, message_id, field).await?;
    if field != "complained" {
        return Ok(());
    }
    let v = get(store, pid, id).await?;
    if broadcast::too_many_complaints(v.sent, v.complained) {
        let reason = format!(
            "paused itself: {} complaints in {} sent ({:.2}%, over the {:.1}% limit)",
            v.complained,
            v.sent,
            v.complained as f64 * 100.0 / v.sent as f64,
            broadcast::COMPLAINT_RATE_LIMIT * 100.0
        );
        if store
            .move_broadcast(
                pid,
                id,
                &[BroadcastState::Sending, BroadcastState::Pending],
                BroadcastState::Paused,
                Some(&reason),
            )
            .await?
            .is_some()
        {
            warn!(broadcast = %id, "{reason}");
        }
    }
    Ok(())
}
