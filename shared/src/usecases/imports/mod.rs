//! CSV imports, end to end: a job is created (with a presigned upload URL)
//! or a file is dropped in the bucket; the planner (`plan`) checks the
//! header, counts the rows and fans chunks out through SQS; chunk workers
//! (`chunk`) upsert the rows in batches and commit each batch to the chunk
//! ledger; the last chunk to finish writes the error report and completes
//! the job. A cancelled job gets the report of the rows it committed.

mod batch;
mod chunk;
mod plan;
mod preview;
mod report;

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{is_id, new_id};
use crate::domain::import::mapping::{Field, MappingInput};
use crate::domain::import::{Counts, Import, ImportOptions, ImportState, ImportStatus, StartMode};
use crate::domain::project::Project;
use crate::files::Files;
use crate::queue::Queue;
use crate::store::Store;
use crate::usecases::{decode_cursor, encode_cursor, lists, Page};
use crate::{Error, Result};

pub use chunk::{handle_worker_message, run_chunk};
pub use plan::handle_plan_message;
pub use preview::{preview, Preview, PreviewInput, PreviewRow};

/// What the import use cases need: the table, the imports bucket, and the
/// queues they hand work to (absent where a function never sends).
#[derive(Clone)]
pub struct Importer {
    pub store: Store,
    pub files: Files,
    pub plan_queue: Option<Queue>,
    pub chunk_queue: Option<Queue>,
    /// Rows per chunk the planner cuts.
    pub chunk_rows: u64,
    /// Deliveries of a message of this function's queue before it goes to
    /// the dead-letter queue: a job whose message fails on the last one fails.
    pub max_receives: u32,
}

/// On the plan queue (besides S3's own notifications): start a held import.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanMessage {
    pub project_id: String,
    pub import_id: String,
}

/// One chunk of a planned job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub project_id: String,
    pub import_id: String,
    pub chunk: u32,
}

/// On the chunk queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Import one chunk.
    Chunk(ChunkMessage),
    /// Write the report of a cancelled job from the batches it committed.
    CancelledReport { project_id: String, import_id: String },
}

/// How long an upload URL and a report link stay valid.
pub const LINK_TTL: Duration = Duration::from_secs(3600);

/// Largest file an import takes (S3's single-PUT limit; a presigned PUT is one PUT).
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateImport {
    /// The file's name: `.csv`, `.tsv` or `.txt`.
    pub filename: String,
    /// Column (header, or 0-based position) → field: email, first_name,
    /// last_name, full_name, phone, country_code, company, address_line1,
    /// address_line2, city, state, postal_code, country, type, tags, eid,
    /// `label`, `label:KEY` or `ignore`. Unnamed columns are auto-mapped.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub mapping: MappingInput,
    #[serde(default)]
    pub options: ImportOptions,
    /// `on_upload` (default) or `manual`: wait for `…/start` (preview first).
    #[serde(default)]
    pub start: StartMode,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedImport {
    #[serde(flatten)]
    pub status: ImportStatus,
    /// PUT the file here (any S3 client, or `curl -T file URL`), within an hour.
    pub upload_url: String,
    pub upload_expires_at: chrono::DateTime<Utc>,
}

fn source_prefix(pid: &str) -> String {
    format!("imports/{pid}/")
}

fn check_filename(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "filename",
            "a file name of 1 to 200 characters, without slashes",
        ));
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if !matches!(ext.as_deref(), Some("csv" | "tsv" | "txt")) {
        return Err(Error::invalid("filename", "imports take .csv, .tsv or .txt files"));
    }
    Ok(name.to_string())
}

/// Checks what a caller sets up before any row is read.
async fn check_setup(
    store: &Store,
    pid: &str,
    mapping: &MappingInput,
    options: ImportOptions,
) -> Result<ImportOptions> {
    for (column, field) in mapping {
        if Field::parse(field, column).is_none() {
            return Err(Error::invalid(
                "mapping",
                format!("\"{field}\" (for column \"{column}\") is not a field"),
            ));
        }
    }
    let options = options.validate()?;
    if let Some(list) = &options.list_id {
        lists::check_lists(store, pid, std::slice::from_ref(list))
            .await
            .map_err(|_| Error::invalid("options.list_id", "no such list in this project"))?;
    }
    Ok(options)
}

pub async fn create(ctx: &Importer, project: &Project, input: CreateImport) -> Result<CreatedImport> {
    let pid = project.id.as_str();
    let filename = check_filename(&input.filename)?;
    let options = check_setup(&ctx.store, pid, &input.mapping, input.options).await?;
    let id = new_id();
    let source_key = format!("{}{id}/{filename}", source_prefix(pid));
    let import = Import {
        mapping_input: input.mapping,
        options,
        ..Import::pending(id, filename, source_key, input.start)
    };
    ctx.store.create_import(pid, &import).await?;
    let upload_url = ctx.files.presign_put(&import.source_key, LINK_TTL).await?;
    Ok(CreatedImport {
        status: ImportStatus::new(import, Counts::default(), Utc::now(), None),
        upload_url,
        upload_expires_at: Utc::now() + chrono::Duration::from_std(LINK_TTL).unwrap_or_default(),
    })
}

async fn job(ctx: &Importer, pid: &str, id: &str) -> Result<Import> {
    if !is_id(id) {
        return Err(Error::NotFound("import"));
    }
    ctx.store.get_import(pid, id).await?.ok_or(Error::NotFound("import"))
}

/// The job with its live counters (one query) and, once done, the report link.
pub async fn status(ctx: &Importer, pid: &str, id: &str) -> Result<ImportStatus> {
    if !is_id(id) {
        return Err(Error::NotFound("import"));
    }
    let (mut import, chunks) = ctx
        .store
        .import_with_chunks(pid, id)
        .await?
        .ok_or(Error::NotFound("import"))?;
    import.chunks_done = chunks.iter().filter(|c| c.done).count() as u32;
    let mut counts = Counts::default();
    for c in &chunks {
        counts.add(&c.counts());
    }
    let url = match &import.report_key {
        Some(k) => Some(ctx.files.presign_get(k, LINK_TTL).await?),
        None => None,
    };
    Ok(ImportStatus::new(import, counts, Utc::now(), url))
}

pub async fn list(ctx: &Importer, pid: &str, limit: usize, cursor: Option<&str>) -> Result<Page<Import>> {
    let before = cursor.map(decode_cursor).transpose()?;
    let (data, more) = ctx.store.list_imports(pid, limit, before.as_deref()).await?;
    let next_cursor = if more {
        data.last().map(|j| encode_cursor(&j.id))
    } else {
        None
    };
    Ok(Page { data, next_cursor })
}

/// Stops a pending or running job: workers stop at their next batch; rows
/// already imported stay, and a worker writes the report of their failed and
/// skipped rows (the link appears on the job once it is written).
pub async fn cancel(ctx: &Importer, pid: &str, id: &str) -> Result<ImportStatus> {
    let import = job(ctx, pid, id).await?;
    if !ctx
        .store
        .finish_import(pid, id, ImportState::Cancelled, None, None)
        .await?
    {
        return Err(Error::Conflict {
            code: "import_finished",
            field: None,
            message: format!("the import is {:?} already", import.state).to_lowercase(),
        });
    }
    if import.state == ImportState::Running {
        let report = WorkerMessage::CancelledReport {
            project_id: pid.to_string(),
            import_id: id.to_string(),
        };
        // The job is cancelled either way: a lost report is logged, not a failed cancel.
        let asked = match &ctx.chunk_queue {
            Some(queue) => queue.send(&report).await,
            None => Err(Error::internal("no chunk queue configured")),
        };
        if let Err(e) = asked {
            tracing::error!(import_id = %id, error = %e, "the report of a cancelled import was not asked for");
        }
    }
    status(ctx, pid, id).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartImport {
    /// Replaces the mapping given at creation.
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<MappingInput>,
    /// Replaces the options given at creation.
    pub options: Option<ImportOptions>,
}

/// Starts a job created with `start: manual`, once its file is uploaded.
pub async fn start(ctx: &Importer, project: &Project, id: &str, input: StartImport) -> Result<ImportStatus> {
    let pid = project.id.as_str();
    let import = job(ctx, pid, id).await?;
    if import.state != ImportState::Pending {
        return Err(Error::Conflict {
            code: "import_started",
            field: None,
            message: "the import has started already".into(),
        });
    }
    if ctx.files.size(&import.source_key).await?.is_none() {
        return Err(Error::Conflict {
            code: "file_missing",
            field: None,
            message: "upload the file to upload_url first".into(),
        });
    }
    let mapping = input.mapping.unwrap_or(import.mapping_input);
    let options = check_setup(&ctx.store, pid, &mapping, input.options.unwrap_or(import.options)).await?;
    ctx.store.set_import_setup(pid, id, &mapping, &options).await?;
    let queue = ctx
        .plan_queue
        .as_ref()
        .ok_or_else(|| Error::internal("no plan queue configured"))?;
    queue
        .send(&PlanMessage {
            project_id: pid.to_string(),
            import_id: id.to_string(),
        })
        .await?;
    status(ctx, pid, id).await
}
