//! Recurring exports. A schedule names its next run; the scheduler's tick
//! (EventBridge Scheduler every minute into the export queue, the local
//! runner alike) starts every run that is due as an ordinary export, whose
//! worker retries a failure and then records it on the run.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::info;
use utoipa::ToSchema;

use crate::domain::bulk::Filter;
use crate::domain::export::{self, ExportJob, ExportSchedule, Format};
use crate::domain::ids::new_id;
use crate::domain::schedule::{time_zone, Schedule};
use crate::usecases::exports::{self, Exports};
use crate::{Error, Result};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    pub name: Option<String>,
    /// EventBridge Scheduler's syntax: `cron(0 9 ? * MON *)`, `rate(1 day)`, `rate(1 minute)`.
    pub schedule: Option<String>,
    /// IANA time zone the cron fields are read in (default `UTC`).
    pub timezone: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Filter>,
    pub columns: Option<Vec<String>>,
    pub format: Option<Format>,
    pub bom: Option<bool>,
    /// Soft-deleted contacts too (not with a `q` filter).
    pub include_deleted: Option<bool>,
    /// Where each run's dated file goes (default `scheduled/{id}`): under
    /// the project's exports, or in `bucket`.
    pub prefix: Option<String>,
    /// A bucket of yours to write to instead: the one the deployment grants
    /// (`ExportDestinationBucket`); `""` goes back to the exports bucket.
    pub bucket: Option<String>,
    pub paused: Option<bool>,
}

fn check_prefix(p: &str) -> Result<String> {
    let p = p.trim().trim_matches('/');
    let ok = !p.is_empty()
        && p.len() <= 200
        && p.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !ok {
        return Err(Error::invalid(
            "prefix",
            "prefix is a path of letters, digits, - _ . and /, up to 200 characters",
        ));
    }
    Ok(p.to_string())
}

/// The schedule `input` makes of `old` (or new), checked whole; its next run from `now`.
async fn build(
    ex: &Exports,
    pid: &str,
    old: Option<&ExportSchedule>,
    input: ScheduleInput,
    now: DateTime<Utc>,
) -> Result<ExportSchedule> {
    let id = old.map_or_else(new_id, |o| o.id.clone());
    let mut s = old.cloned().unwrap_or_else(|| ExportSchedule {
        id: id.clone(),
        name: String::new(),
        schedule: String::new(),
        timezone: "UTC".into(),
        filter: Filter {
            all: true,
            ..Default::default()
        },
        columns: export::DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect(),
        format: Format::Csv,
        bom: false,
        include_deleted: false,
        prefix: format!("scheduled/{id}"),
        bucket: None,
        paused: false,
        next_run_at: None,
        last_run_at: None,
        last_export_id: None,
        created_at: now,
        updated_at: now,
    });
    let timing_changed = input.schedule.is_some() || input.timezone.is_some() || input.paused.is_some();
    if let Some(n) = input.name {
        s.name = crate::domain::normalize::text(&n).ok_or_else(|| Error::invalid("name", "name cannot be empty"))?;
    }
    if let Some(e) = input.schedule {
        s.schedule = e.trim().to_string();
    }
    if let Some(tz) = input.timezone {
        s.timezone = time_zone(&tz)?.name().to_string();
    }
    if let Some(f) = input.filter {
        s.filter = f;
    }
    if let Some(c) = input.columns {
        s.columns = c;
    }
    if let Some(f) = input.format {
        s.format = f;
    }
    if let Some(b) = input.bom {
        s.bom = b;
    }
    if let Some(d) = input.include_deleted {
        s.include_deleted = d;
    }
    if let Some(p) = input.prefix {
        s.prefix = check_prefix(&p)?;
    }
    if let Some(b) = input.bucket {
        s.bucket = Some(b.trim().to_string()).filter(|b| !b.is_empty());
    }
    ex.check_bucket(s.bucket.as_deref())?;
    if let Some(p) = input.paused {
        s.paused = p;
    }
    if s.schedule.is_empty() {
        return Err(Error::invalid(
            "schedule",
            "schedule is required, e.g. cron(0 9 ? * MON *) or rate(1 day)",
        ));
    }
    let schedule = Schedule::parse(&s.schedule)?;
    let tz = time_zone(&s.timezone)?;
    export::columns(Some(&s.columns.join(",")))?;
    if s.format == Format::Jsonl && s.bom {
        return Err(Error::invalid("bom", "bom is for CSV"));
    }
    exports::check_audience(&ex.store, pid, &s.filter, s.include_deleted).await?;
    if s.name.is_empty() {
        s.name = format!("Export {}", s.schedule);
    }
    if timing_changed || old.is_none() {
        s.next_run_at = if s.paused {
            None
        } else {
            schedule.next_after(now, s.created_at, &tz)
        };
    }
    s.updated_at = now;
    Ok(s)
}

pub async fn create(ex: &Exports, pid: &str, input: ScheduleInput) -> Result<ExportSchedule> {
    let s = build(ex, pid, None, input, Utc::now()).await?;
    ex.store.put_schedule(pid, None, &s).await?;
    Ok(s)
}

pub async fn get(ex: &Exports, pid: &str, id: &str) -> Result<ExportSchedule> {
    ex.store
        .get_schedule(pid, id)
        .await?
        .ok_or(Error::NotFound("export schedule"))
}

pub async fn list(ex: &Exports, pid: &str) -> Result<Vec<ExportSchedule>> {
    let mut all = ex.store.project_schedules(pid).await?;
    all.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(all)
}

/// Changes a schedule; pausing takes it off the due list, resuming puts
/// its next run (from now) back.
pub async fn update(ex: &Exports, pid: &str, id: &str, input: ScheduleInput) -> Result<ExportSchedule> {
    let old = get(ex, pid, id).await?;
    let s = build(ex, pid, Some(&old), input, Utc::now()).await?;
    ex.store.put_schedule(pid, Some(&old), &s).await?;
    Ok(s)
}

/// Deletes a schedule; the exports it ran stay (with their files, while kept).
pub async fn delete(ex: &Exports, pid: &str, id: &str) -> Result<()> {
    let s = get(ex, pid, id).await?;
    ex.store.delete_schedule(pid, &s).await
}

/// The schedule's runs (its exports), newest first, each with its outcome.
pub async fn runs(ex: &Exports, pid: &str, id: &str, limit: usize) -> Result<Vec<ExportJob>> {
    get(ex, pid, id).await?;
    ex.store.schedule_runs(pid, id, limit).await
}

/// The tick: starts every run due at `at` (the tick's own time, or now if
/// later), each once however often the tick comes.
pub async fn tick(ex: &Exports, at: Option<DateTime<Utc>>) -> Result<()> {
    let now = at.map_or_else(Utc::now, |t| t.max(Utc::now()));
    for due in ex.store.due_schedules(now).await? {
        let (pid, id) = (&due.project_id, &due.schedule_id);
        let Some(s) = ex.store.get_schedule(pid, id).await? else {
            // Deleted since: its due entry goes with the claim's refusal.
            ex.store.claim_schedule_run(pid, id, due.due_at, None, "-").await?;
            continue;
        };
        let next = match (Schedule::parse(&s.schedule), time_zone(&s.timezone)) {
            (Ok(schedule), Ok(tz)) => schedule.next_after(due.due_at.max(now), s.created_at, &tz),
            _ => None,
        };
        let export_id = new_id();
        if !ex
            .store
            .claim_schedule_run(pid, id, due.due_at, next, &export_id)
            .await?
        {
            continue;
        }
        let job = exports::start(
            ex,
            pid,
            exports::NewExport {
                id: export_id,
                of: export::ExportOf::Contacts,
                filter: s.filter.clone(),
                message_filter: None,
                columns: s.columns.clone(),
                format: s.format,
                bom: s.bom,
                include_deleted: s.include_deleted,
                schedule_id: Some(s.id.clone()),
                prefix: Some(s.prefix.clone()),
                bucket: s.bucket.clone(),
            },
        )
        .await?;
        info!(schedule = %s.id, export = %job.id, due = %due.due_at, "scheduled export started");
    }
    Ok(())
}
