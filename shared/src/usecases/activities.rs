//! The timeline: activities callers post and the ones Roster records itself.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::activity::{validate_type, Activity, ActivityInput, Origin};
use crate::store::activities::activity_id;
use crate::store::Store;
use crate::usecases::{contacts, decode_cursor, encode_cursor, Page};
use crate::{Error, Result};

/// Records a system activity now.
pub async fn record(
    store: &Store,
    pid: &str,
    cid: &str,
    kind: &str,
    summary: Option<String>,
    data: Map<String, Value>,
) -> Result<Activity> {
    let now = Utc::now();
    let activity = Activity {
        id: activity_id(now),
        contact_id: cid.to_string(),
        kind: kind.to_string(),
        origin: Origin::System,
        occurred_at: now,
        summary,
        data,
    };
    store.put_activity(pid, &activity).await?;
    Ok(activity)
}

/// An activity posted through the API.
pub async fn post(store: &Store, pid: &str, cid: &str, input: ActivityInput) -> Result<Activity> {
    let now = Utc::now();
    let input = input.validated(now)?;
    contacts::get(store, pid, cid).await?;
    let occurred_at: DateTime<Utc> = input.occurred_at.unwrap_or(now);
    let activity = Activity {
        id: activity_id(occurred_at),
        contact_id: cid.to_string(),
        kind: input.kind,
        origin: Origin::Api,
        occurred_at,
        summary: input.summary,
        data: input.data.unwrap_or_default(),
    };
    store.put_activity(pid, &activity).await?;
    Ok(activity)
}

/// Newest first; `types` (comma-separated) keeps only those types.
pub async fn timeline(
    store: &Store,
    pid: &str,
    cid: &str,
    limit: usize,
    cursor: Option<&str>,
    types: Option<&str>,
) -> Result<Page<Activity>> {
    contacts::get(store, pid, cid).await?;
    let types: Vec<String> = types
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for t in &types {
        validate_type(t, "type")?;
    }
    if types.len() > 20 {
        return Err(Error::invalid("type", "at most 20 types"));
    }
    let before = cursor.map(decode_cursor).transpose()?;
    let (data, more) = store
        .list_activities(pid, cid, limit, before.as_deref(), &types)
        .await?;
    let next_cursor = if more {
        data.last().map(|a| encode_cursor(&a.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}
