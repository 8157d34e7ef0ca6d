//! Exports as files: the contacts a list query selects, the messages sent
//! and received, and the contact-form messages, as CSV streamed page by
//! page (never built in memory). Synchronous exports stop at
//! [`SYNC_ROWS`] rows.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::{stream, Stream, StreamExt};

use crate::domain::contact::Contact;
use crate::domain::export::{self, Column, BOM};
use crate::domain::list::Subscription;
use crate::domain::message::Message;
use crate::domain::submission::{MessageStatus, Record};
use crate::store::Store;
use crate::usecases::contacts::{self, SortOrder};
use crate::usecases::filter::ContactFilter;
use crate::usecases::messages::{self, MessageFilter};
use crate::usecases::{submissions, Page};
use crate::{Error, Result};

/// Rows a synchronous export writes at most, by default (`EXPORT_SYNC_ROWS`);
/// larger audiences go to an asynchronous export.
pub const SYNC_ROWS: usize = 10_000;
/// Contacts (or messages) read a page.
pub const PAGE: usize = 1000;
/// Contacts whose list memberships are read at once.
const MEMBERSHIP_READS: usize = 8;

/// The contacts an export selects, and how it writes them.
pub struct ContactExport {
    pub q: Option<String>,
    pub filter: ContactFilter,
    pub order: Option<SortOrder>,
    pub columns: Vec<Column>,
    pub bom: bool,
}

/// Whether the query selects more than `cap` contacts.
pub async fn over_cap(store: &Store, pid: &str, e: &ContactExport, cap: usize) -> Result<bool> {
    if e.q.is_none() && e.filter.is_empty() {
        return Ok(store.count_contacts(pid).await? > cap as u64);
    }
    let ids = contacts::select_ids(store, pid, e.q.as_deref(), &e.filter, cap + 1).await?;
    Ok(ids.len() > cap)
}

/// One page of rows (cells already made safe) and where the next starts.
type Rows = (Vec<Vec<String>>, Option<String>);

/// A CSV file streamed from pages: the header row, then each page's rows,
/// up to `cap` rows. RFC 4180 quoting (the `csv` crate); optional UTF-8 BOM.
fn csv_stream<F, Fut>(header: Vec<String>, bom: bool, cap: usize, fetch: F) -> impl Stream<Item = Result<Bytes>> + Send
where
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Rows>> + Send,
{
    let fetch = Arc::new(fetch);
    let head = stream::once(async move {
        let mut out = if bom { BOM.to_vec() } else { Vec::new() };
        out.extend(csv_lines(&[header])?);
        Ok(Bytes::from(out))
    });
    // State: the cursor of the next page (None after the last), rows written.
    let body = stream::unfold((Some(None::<String>), 0usize), move |(next, written)| {
        let fetch = fetch.clone();
        async move {
            let cursor = next?;
            if written >= cap {
                return None;
            }
            match fetch(cursor).await {
                Err(e) => Some((Err(e), (None, written))),
                Ok((mut rows, more)) => {
                    rows.truncate(cap - written);
                    let written = written + rows.len();
                    let next = more.filter(|_| written < cap).map(Some);
                    Some((csv_lines(&rows).map(Bytes::from), (next, written)))
                }
            }
        }
    });
    head.chain(body)
}

fn csv_lines(rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        w.write_record(row).map_err(Error::internal)?;
    }
    w.into_inner().map_err(Error::internal)
}

/// The contacts of `e`, as CSV, at most `cap` rows.
pub fn contacts_csv(
    store: Store,
    pid: String,
    e: ContactExport,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = e.columns.iter().map(Column::header).collect();
    let bom = e.bom;
    let e = Arc::new(e);
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, e) = (store.clone(), pid.clone(), e.clone());
        async move {
            let page = contacts::query(
                &store,
                &pid,
                e.q.as_deref(),
                &e.filter,
                e.order,
                PAGE,
                cursor.as_deref(),
            )
            .await?;
            let rows = contact_rows(&store, &pid, &e.columns, &page.data).await?;
            Ok((rows, page.next_cursor))
        }
    })
}

/// Each contact's cells, with its list memberships read where a column needs them.
async fn contact_rows(store: &Store, pid: &str, columns: &[Column], contacts: &[Contact]) -> Result<Vec<Vec<String>>> {
    let subs = memberships(store, pid, columns, contacts).await?;
    Ok(contacts
        .iter()
        .zip(subs)
        .map(|(c, subs)| {
            columns
                .iter()
                .map(|col| export::cell(&export::value(c, col, &subs)))
                .collect()
        })
        .collect())
}

/// The columns of a messages export.
pub const MESSAGE_COLUMNS: [&str; 17] = [
    "id",
    "created_at",
    "channel",
    "direction",
    "status",
    "contact_id",
    "from",
    "to",
    "subject",
    "body",
    "segments",
    "broadcast_id",
    "template_id",
    "list_id",
    "provider_id",
    "error",
    "revenue",
];

fn message_values(m: &Message) -> Vec<serde_json::Value> {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    MESSAGE_COLUMNS.iter().map(|c| v[*c].take()).collect()
}

fn message_row(m: &Message) -> Vec<String> {
    message_values(m).iter().map(export::cell).collect()
}

/// The project's messages (email and SMS, sent and received) the filter
/// keeps, newest first, as CSV, at most `cap` rows.
pub fn messages_csv(
    store: Store,
    pid: String,
    filter: MessageFilter,
    bom: bool,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect();
    let filter = Arc::new(filter);
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, filter) = (store.clone(), pid.clone(), filter.clone());
        async move {
            let page: Page<Message> = messages::list(&store, &pid, &filter, PAGE, cursor.as_deref()).await?;
            Ok((page.data.iter().map(message_row).collect(), page.next_cursor))
        }
    })
}

/// The columns of a contact-form messages export.
pub const CONTACT_MESSAGE_COLUMNS: [&str; 8] = [
    "id",
    "created_at",
    "contact_id",
    "email",
    "name",
    "subject",
    "message",
    "status",
];

fn contact_message_values(r: &Record) -> Vec<serde_json::Value> {
    let field = |k: &str| r.fields.get(k).cloned().unwrap_or_default();
    vec![
        serde_json::json!(r.id),
        serde_json::json!(r.created_at),
        serde_json::json!(r.contact_id),
        field("email"),
        field("name"),
        serde_json::json!(r.subject),
        serde_json::json!(r.message),
        serde_json::json!(r.status),
    ]
}

fn contact_message_row(r: &Record) -> Vec<String> {
    contact_message_values(r).iter().map(export::cell).collect()
}

/// The contact-form messages (content, status, subject, sender, created),
/// newest first, with the messages page's filters, as CSV.
pub fn contact_messages_csv(
    store: Store,
    pid: String,
    status: Option<MessageStatus>,
    q: Option<String>,
    bom: bool,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = CONTACT_MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect();
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, q) = (store.clone(), pid.clone(), q.clone());
        async move {
            let page = submissions::list_messages(&store, &pid, status, q.as_deref(), PAGE, cursor.as_deref()).await?;
            Ok((page.data.iter().map(contact_message_row).collect(), page.next_cursor))
        }
    })
}

// Asynchronous exports: a job, a worker that streams the audience into an
// S3 multipart upload, and a short-lived link to the finished file.

/// What asynchronous exports need, built once per process.
#[derive(Clone)]
pub struct Exports {
    pub store: Store,
    /// The exports bucket.
    pub files: crate::files::Files,
    /// A bucket of the user's that the template grants (`ExportDestinationBucket`), if any.
    pub destination: Option<crate::files::Files>,
    pub queue: crate::queue::Queue,
    /// How long a download link works.
    pub link_ttl: std::time::Duration,
    /// Deliveries of an export's message before it is failed for good.
    pub max_receives: u32,
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// `contacts` (default), `messages` (email and SMS, sent and received) or
    /// `contact_messages` (the contact-form messages).
    pub of: Option<export::ExportOf>,
    /// Contacts: a bulk selection's filter (`q`, tags, list, …); absent:
    /// everyone. Messages: the messages page's filters (`channel`,
    /// `direction`, `status`, `contact_id`, `broadcast_id`, `number`,
    /// `since`, `until`). Contact messages: `status`, `q`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// Column names (as `columns` of `export.csv`); absent: the defaults.
    /// Messages exports have their columns fixed (those of their `export.csv`).
    pub columns: Option<Vec<String>>,
    /// `csv` (default) or `jsonl`.
    pub format: Option<export::Format>,
    /// CSV: start with a UTF-8 byte order mark (for Excel).
    pub bom: Option<bool>,
    /// Soft-deleted contacts that match the filter too, after the live ones
    /// (those deleted before the export started; not with `q`: search reads
    /// live contacts only).
    pub include_deleted: Option<bool>,
}

/// An export as callers see it: the job, how far it is, and the file once done.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ExportView {
    #[serde(flatten)]
    pub job: crate::domain::export::ExportJob,
    pub percent: f64,
    /// A presigned GET of the file, while it is kept.
    pub download_url: Option<String>,
    pub download_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub manifest: Option<crate::domain::export::Manifest>,
}

/// On the export queue.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum ExportStep {
    /// Run one export.
    Run { project_id: String, export_id: String },
    /// The scheduler's tick: start the scheduled runs that are due.
    Tick {
        #[serde(default)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

fn manifest_key(object_key: &str) -> String {
    format!("{object_key}.manifest.json")
}

/// Refuses a filter the list route would refuse (before any export runs).
pub(crate) async fn check_audience(
    store: &Store,
    pid: &str,
    f: &crate::domain::bulk::Filter,
    include_deleted: bool,
) -> Result<()> {
    let (q, filter) = crate::usecases::bulk::audience(f)?;
    if include_deleted && q.is_some() {
        return Err(Error::invalid(
            "include_deleted",
            "search reads live contacts only: leave out q, or include_deleted",
        ));
    }
    contacts::query(store, pid, q.as_deref(), &filter, None, 1, None).await?;
    Ok(())
}

/// The filters of a contact-form messages export (those of their page).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactMessageFilter {
    pub status: Option<MessageStatus>,
    pub q: Option<String>,
}

/// An export to start (checked already).
pub(crate) struct NewExport {
    pub id: String,
    pub of: export::ExportOf,
    pub filter: crate::domain::bulk::Filter,
    pub message_filter: Option<serde_json::Value>,
    pub columns: Vec<String>,
    pub format: export::Format,
    pub bom: bool,
    pub include_deleted: bool,
    pub schedule_id: Option<String>,
    pub prefix: Option<String>,
    pub bucket: Option<String>,
}

/// Writes the export pending and queues its run.
pub(crate) async fn start(ex: &Exports, pid: &str, e: NewExport) -> Result<crate::domain::export::ExportJob> {
    let job = crate::domain::export::ExportJob {
        id: e.id,
        state: crate::domain::export::ExportState::Pending,
        of: e.of,
        format: e.format,
        columns: e.columns,
        filter: e.filter,
        message_filter: e.message_filter,
        bom: e.bom,
        include_deleted: e.include_deleted,
        rows_written: 0,
        total: None,
        bytes: None,
        sha256: None,
        error: None,
        object_key: None,
        attempt: None,
        schedule_id: e.schedule_id,
        prefix: e.prefix,
        bucket: e.bucket,
        created_at: chrono::Utc::now(),
        started_at: None,
        finished_at: None,
    };
    ex.store.put_export(pid, &job).await?;
    ex.queue
        .send(&ExportStep::Run {
            project_id: pid.to_string(),
            export_id: job.id.clone(),
        })
        .await?;
    Ok(job)
}

/// A filter given as JSON, read as `T` (a 422 on `filter` if it is not one).
fn filter_as<T: serde::de::DeserializeOwned + Default>(v: Option<serde_json::Value>) -> Result<T> {
    v.map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::invalid("filter", e.to_string()))
        .map(Option::unwrap_or_default)
}

fn checked_json<T: serde::Serialize>(v: &T) -> Result<Option<serde_json::Value>> {
    serde_json::to_value(v).map(Some).map_err(Error::internal)
}

pub async fn create(ex: &Exports, pid: &str, input: ExportInput) -> Result<ExportView> {
    let of = input.of.unwrap_or_default();
    let include_deleted = input.include_deleted.unwrap_or(false);
    let everyone = crate::domain::bulk::Filter {
        all: true,
        ..Default::default()
    };
    let fixed = |columns: &[&str]| -> Result<Vec<String>> {
        if input.columns.is_some() {
            return Err(Error::invalid(
                "columns",
                "a messages export has the columns of its export.csv; leave out columns",
            ));
        }
        if include_deleted {
            return Err(Error::invalid(
                "include_deleted",
                "include_deleted is for contact exports",
            ));
        }
        Ok(columns.iter().map(|c| c.to_string()).collect())
    };
    let (filter, message_filter, names) = match of {
        export::ExportOf::Contacts => {
            let names: Vec<String> = match &input.columns {
                Some(c) => c.clone(),
                None => export::DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect(),
            };
            export::columns(Some(&names.join(",")))?;
            let filter = match input.filter {
                Some(v) => filter_as(Some(v))?,
                None => everyone,
            };
            check_audience(&ex.store, pid, &filter, include_deleted).await?;
            (filter, None, names)
        }
        export::ExportOf::Messages => {
            let names = fixed(&MESSAGE_COLUMNS)?;
            let f: MessageFilter = filter_as(input.filter)?;
            // Refused as the messages page refuses it (a bad contact id, a reversed range).
            messages::list(&ex.store, pid, &f, 1, None).await?;
            (everyone, checked_json(&f)?, names)
        }
        export::ExportOf::ContactMessages => {
            let names = fixed(&CONTACT_MESSAGE_COLUMNS)?;
            let f: ContactMessageFilter = filter_as(input.filter)?;
            submissions::list_messages(&ex.store, pid, f.status, f.q.as_deref(), 1, None).await?;
            (everyone, checked_json(&f)?, names)
        }
    };
    let format = input.format.unwrap_or_default();
    if format == export::Format::Jsonl && input.bom.is_some() {
        return Err(Error::invalid("bom", "bom is for CSV"));
    }
    let job = start(
        ex,
        pid,
        NewExport {
            id: crate::domain::ids::new_id(),
            of,
            filter,
            message_filter,
            columns: names,
            format,
            bom: input.bom.unwrap_or(false),
            include_deleted,
            schedule_id: None,
            prefix: None,
            bucket: None,
        },
    )
    .await?;
    view(ex, job, false).await
}

async fn load(store: &Store, pid: &str, id: &str) -> Result<crate::domain::export::ExportJob> {
    store.get_export(pid, id).await?.ok_or(Error::NotFound("export"))
}

/// The export; a finished one with a fresh link to its file.
pub async fn get(ex: &Exports, pid: &str, id: &str) -> Result<ExportView> {
    view(ex, load(&ex.store, pid, id).await?, false).await
}

/// A fresh link for a finished export whose file is still kept (409
/// `expired` once the bucket's lifecycle rule has removed it).
pub async fn link(ex: &Exports, pid: &str, id: &str) -> Result<ExportView> {
    let job = load(&ex.store, pid, id).await?;
    if job.state != crate::domain::export::ExportState::Completed {
        return Err(Error::Conflict {
            code: "not_completed",
            field: None,
            message: "only a completed export has a file to link to".into(),
        });
    }
    view(ex, job, true).await
}

async fn view(ex: &Exports, job: crate::domain::export::ExportJob, must_exist: bool) -> Result<ExportView> {
    let percent = match (job.state, job.total) {
        (crate::domain::export::ExportState::Completed, _) => 100.0,
        (_, Some(t)) if t > 0 => ((job.rows_written as f64 * 1000.0 / t as f64).round() / 10.0).min(99.9),
        _ => 0.0,
    };
    let mut v = ExportView {
        percent,
        download_url: None,
        download_expires_at: None,
        manifest: None,
        job,
    };
    if let (crate::domain::export::ExportState::Completed, Some(key)) = (v.job.state, v.job.object_key.clone()) {
        // A bucket no longer granted (the deployment changed): no link to give.
        let Ok(files) = ex.files_for(v.job.bucket.as_deref()) else {
            return Ok(v);
        };
        if files.head(&key).await?.is_none() {
            if must_exist {
                return Err(Error::Conflict {
                    code: "expired",
                    field: None,
                    message: "the export's file is no longer kept; run the export again".into(),
                });
            }
            return Ok(v);
        }
        v.download_url = Some(files.presign_get(&key, ex.link_ttl).await?);
        v.download_expires_at = Some(chrono::Utc::now() + chrono::Duration::from_std(ex.link_ttl).unwrap_or_default());
        v.manifest = serde_json::from_slice(&files.get(&manifest_key(&key)).await?).ok();
    }
    Ok(v)
}

pub async fn list(
    ex: &Exports,
    pid: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<crate::domain::export::ExportJob>> {
    let before = cursor.map(crate::usecases::decode_cursor).transpose()?;
    let (data, more) = ex.store.project_exports(pid, limit, before.as_deref()).await?;
    let next_cursor = data
        .last()
        .filter(|_| more)
        .map(|j: &crate::domain::export::ExportJob| crate::usecases::encode_cursor(&j.id));
    Ok(Page { data, next_cursor })
}

pub async fn cancel(ex: &Exports, pid: &str, id: &str) -> Result<ExportView> {
    let job = load(&ex.store, pid, id).await?;
    if job.state.is_final() || !ex.store.cancel_export(pid, id).await? {
        return Err(Error::Conflict {
            code: "wrong_state",
            field: None,
            message: "the export has ended already".into(),
        });
    }
    get(ex, pid, id).await
}

/// One export message: runs the export whole. A redelivery (the worker was
/// killed) starts a new run that writes the whole file again under its own
/// key; only the run that owns the export may finish it, so the file named
/// is always one run's complete file.
pub async fn handle_message(ex: &Exports, body: &str, receives: u32) -> Result<()> {
    let (project_id, export_id) = match serde_json::from_str(body) {
        Ok(ExportStep::Run { project_id, export_id }) => (project_id, export_id),
        Ok(ExportStep::Tick { at }) => return crate::usecases::export_schedules::tick(ex, at).await,
        Err(e) => {
            tracing::warn!(error = %e, "not an export message; dropped");
            return Ok(());
        }
    };
    let Some(job) = ex.store.get_export(&project_id, &export_id).await? else {
        return Ok(());
    };
    if job.state.is_final() {
        return Ok(());
    }
    let attempt = crate::domain::ids::new_id();
    match run(ex, &project_id, &job, &attempt).await {
        Ok(()) => Ok(()),
        Err(e) if receives >= ex.max_receives => {
            let why = format!(
                "the export failed {receives} times; the last error: {}",
                public_reason(&e)
            );
            ex.store
                .finish_export(&project_id, &job.id, &attempt, Err(&why))
                .await?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn public_reason(e: &Error) -> String {
    match e {
        Error::Internal(_) => "an internal error (logged)".into(),
        e => e.to_string(),
    }
}

impl Exports {
    /// Where an export's file goes: the exports bucket, or the user's.
    fn files_for(&self, bucket: Option<&str>) -> Result<&crate::files::Files> {
        match bucket {
            None => Ok(&self.files),
            Some(b) => self.destination.as_ref().filter(|d| d.bucket() == b).ok_or_else(|| {
                Error::invalid(
                    "bucket",
                    format!("{b} is not the bucket this deployment may write exports to"),
                )
            }),
        }
    }

    /// Refuses a destination bucket the template does not grant.
    pub(crate) fn check_bucket(&self, bucket: Option<&str>) -> Result<()> {
        self.files_for(bucket).map(|_| ())
    }
}

/// Rows written between two progress updates (and cancel checks).
const PROGRESS_EVERY: u64 = 1000;

/// What an export reads, page by page.
enum Source {
    Contacts {
        q: Option<String>,
        filter: ContactFilter,
        columns: Vec<Column>,
        include_deleted: bool,
    },
    Messages(MessageFilter),
    ContactMessages(ContactMessageFilter),
}

/// How far an export has read: the next page's cursor; contacts: whether
/// it is in the deleted ones (after the live ones).
#[derive(Default)]
struct Position {
    cursor: Option<String>,
    deleted: bool,
}

/// One page, encoded: its lines, how many rows, and where the next starts.
struct Encoded {
    lines: Vec<u8>,
    rows: u64,
    next: Option<Position>,
}

impl Source {
    fn of(job: &crate::domain::export::ExportJob) -> Result<Self> {
        let message_filter = || job.message_filter.clone().unwrap_or_else(|| serde_json::json!({}));
        Ok(match job.of {
            export::ExportOf::Contacts => {
                let (q, filter) = crate::usecases::bulk::audience(&job.filter)?;
                Source::Contacts {
                    q,
                    filter,
                    columns: export::columns(Some(&job.columns.join(",")))?,
                    include_deleted: job.include_deleted,
                }
            }
            export::ExportOf::Messages => {
                Source::Messages(serde_json::from_value(message_filter()).map_err(Error::internal)?)
            }
            export::ExportOf::ContactMessages => {
                Source::ContactMessages(serde_json::from_value(message_filter()).map_err(Error::internal)?)
            }
        })
    }

    fn header(&self) -> Vec<String> {
        match self {
            Source::Contacts { columns, .. } => columns.iter().map(Column::header).collect(),
            Source::Messages(_) => MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect(),
            Source::ContactMessages(_) => CONTACT_MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// The rows it will write, where an index count or a read of the
    /// selection tells (messages: not counted ahead).
    async fn total(&self, store: &Store, pid: &str) -> Result<Option<u64>> {
        let Source::Contacts {
            q,
            filter,
            include_deleted,
            ..
        } = self
        else {
            return Ok(None);
        };
        let mut total = contacts::count(store, pid, q.as_deref(), filter).await?;
        if *include_deleted {
            total += contacts::count_deleted(store, pid, filter).await?;
        }
        Ok(Some(total))
    }

    async fn page(
        &self,
        store: &Store,
        pid: &str,
        format: export::Format,
        started_at: chrono::DateTime<chrono::Utc>,
        at: Position,
    ) -> Result<Encoded> {
        let cursor = at.cursor.as_deref();
        let (lines, rows, next) = match self {
            Source::Contacts {
                q,
                filter,
                columns,
                include_deleted,
            } => {
                // Deleted contacts come after the live ones: those deleted
                // before this run started, so that one deleted while it runs
                // is not there twice (it is in the file if the live pages
                // reached it first).
                let mut page = if at.deleted {
                    contacts::deleted(store, pid, filter, PAGE, cursor).await?
                } else {
                    contacts::query(store, pid, q.as_deref(), filter, None, PAGE, cursor).await?
                };
                if at.deleted {
                    page.data.retain(|c| c.deleted_at.is_some_and(|t| t < started_at));
                }
                let lines = match format {
                    export::Format::Csv => csv_lines(&contact_rows(store, pid, columns, &page.data).await?)?,
                    export::Format::Jsonl => page
                        .data
                        .iter()
                        .zip(memberships(store, pid, columns, &page.data).await?)
                        .flat_map(|(c, subs)| export::json_line(c, columns, &subs))
                        .collect(),
                };
                let next = match page.next_cursor {
                    Some(c) => Some(Position {
                        cursor: Some(c),
                        deleted: at.deleted,
                    }),
                    None if *include_deleted && !at.deleted => Some(Position {
                        cursor: None,
                        deleted: true,
                    }),
                    None => None,
                };
                (lines, page.data.len(), next)
            }
            Source::Messages(filter) => {
                let page: Page<Message> = messages::list(store, pid, filter, PAGE, cursor).await?;
                let lines = encode(format, &MESSAGE_COLUMNS, page.data.iter().map(message_values))?;
                (lines, page.data.len(), page.next_cursor.map(Position::after))
            }
            Source::ContactMessages(f) => {
                let page = submissions::list_messages(store, pid, f.status, f.q.as_deref(), PAGE, cursor).await?;
                let lines = encode(
                    format,
                    &CONTACT_MESSAGE_COLUMNS,
                    page.data.iter().map(contact_message_values),
                )?;
                (lines, page.data.len(), page.next_cursor.map(Position::after))
            }
        };
        Ok(Encoded {
            lines,
            rows: rows as u64,
            next,
        })
    }
}

impl Position {
    fn after(cursor: String) -> Self {
        Position {
            cursor: Some(cursor),
            deleted: false,
        }
    }
}

/// Rows of named values as CSV lines (cells made safe) or JSON Lines.
fn encode(
    format: export::Format,
    names: &[&str],
    rows: impl Iterator<Item = Vec<serde_json::Value>>,
) -> Result<Vec<u8>> {
    match format {
        export::Format::Csv => csv_lines(&rows.map(|r| r.iter().map(export::cell).collect()).collect::<Vec<_>>()),
        export::Format::Jsonl => Ok(rows.flat_map(|r| export::json_object_line(names, r)).collect()),
    }
}

async fn run(ex: &Exports, pid: &str, job: &crate::domain::export::ExportJob, attempt: &str) -> Result<()> {
    use sha2::{Digest, Sha256};
    let store = &ex.store;
    let source = Source::of(job)?;
    let started_at = chrono::Utc::now();
    let total = source.total(store, pid).await?;
    if !store.start_export(pid, &job.id, attempt, total).await? {
        return Ok(()); // Cancelled meanwhile.
    }
    let files = ex.files_for(job.bucket.as_deref())?;
    let date = started_at.format("%Y-%m-%d");
    let ext = job.format.extension();
    // A scheduled run's file is dated, under the schedule's prefix; in the
    // exports bucket each run writes its own key. In the user's bucket the
    // key is the export's: a run that stopped never completed its upload,
    // and two runs of one export write the same whole file.
    let key = match (&job.bucket, &job.prefix) {
        (Some(_), Some(prefix)) => format!("{prefix}/{date}/{}.{ext}", job.id),
        (None, Some(prefix)) => format!("exports/{pid}/{prefix}/{date}/{}/{attempt}.{ext}", job.id),
        (_, None) => format!("exports/{pid}/{}/{attempt}.{ext}", job.id),
    };
    let mut upload = files.writer(&key, job.format.content_type());
    let mut hash = Sha256::new();
    let (mut rows, mut bytes, mut reported) = (0u64, 0u64, 0u64);
    let mut chunk = Vec::new();
    if job.format == export::Format::Csv {
        if job.bom {
            chunk.extend_from_slice(BOM);
        }
        chunk.extend(csv_lines(&[source.header()])?);
    }
    let mut at = Some(Position::default());
    while let Some(position) = at {
        let page = source.page(store, pid, job.format, started_at, position).await?;
        chunk.extend(page.lines);
        rows += page.rows;
        hash.update(&chunk);
        bytes += chunk.len() as u64;
        upload.write(&chunk).await?;
        chunk.clear();
        if rows - reported >= PROGRESS_EVERY {
            reported = rows;
            if !store.export_progress(pid, &job.id, attempt, rows).await? {
                // Cancelled, or a newer run owns it: this run's parts are dropped.
                upload.abort().await?;
                return Ok(());
            }
        }
        at = page.next;
    }
    upload.finish().await?;
    let manifest = crate::domain::export::Manifest {
        export_id: job.id.clone(),
        rows,
        bytes,
        sha256: hex::encode(hash.finalize()),
        format: job.format,
        columns: job.columns.clone(),
        of: job.of,
        filter: job.filter.clone(),
        message_filter: job.message_filter.clone(),
        include_deleted: job.include_deleted,
        started_at,
        finished_at: chrono::Utc::now(),
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
    files
        .put(&manifest_key(&key), manifest_json, "application/json")
        .await?;
    if ex
        .store
        .finish_export(pid, &job.id, attempt, Ok((&manifest, &key)))
        .await?
    {
        tracing::info!(export = %job.id, rows, bytes, "export completed");
    }
    Ok(())
}

/// Each contact's list memberships where a column needs them (else none).
async fn memberships(
    store: &Store,
    pid: &str,
    columns: &[Column],
    contacts: &[Contact],
) -> Result<Vec<Vec<Subscription>>> {
    let mut subs: Vec<Vec<Subscription>> = Vec::with_capacity(contacts.len());
    if export::needs_lists(columns) {
        for chunk in contacts.chunks(MEMBERSHIP_READS) {
            let reads = chunk.iter().map(|c| store.contact_subscriptions(pid, &c.id));
            subs.extend(futures::future::try_join_all(reads).await?);
        }
    } else {
        subs.resize(contacts.len(), Vec::new());
    }
    Ok(subs)
}
