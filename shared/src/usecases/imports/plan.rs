//! The planner: from an uploaded file to a running job with its chunks on
//! the queue. Safe to run again on the same file (redelivery, a crash half
//! way): chunk ledger entries are only created once and duplicate chunk
//! messages are harmless.

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;
use tracing::{error, info, warn};

use super::{ChunkMessage, Importer, PlanMessage, WorkerMessage, MAX_FILE_BYTES};
use crate::domain::ids::{derived_id, is_id};
use crate::domain::import::line_ends;
use crate::domain::import::scan::{self, ChunkLimits, Scan, ScanError, LIMITS};
use crate::domain::import::sniff::{self, TextEncoding};
use crate::domain::import::{mapping, Import, ImportState, StartMode};
use crate::domain::normalize;
use crate::domain::project::Project;
use crate::files::Version;
use crate::store::imports::Planned;
use crate::{Error, Result};

/// Bytes read to sniff the encoding and delimiter.
const SAMPLE_BYTES: u64 = 64 * 1024;

/// The parts of an S3 event notification the planner reads (every field
/// optional: the emulator leaves out some that AWS sends).
#[derive(Debug, Deserialize)]
struct S3Notification {
    #[serde(rename = "Records", default)]
    records: Vec<S3Record>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    event_name: Option<String>,
    event_time: Option<chrono::DateTime<Utc>>,
    s3: S3Entity,
}

#[derive(Debug, Deserialize)]
struct S3Entity {
    object: S3Object,
}

#[derive(Debug, Deserialize)]
struct S3Object {
    key: Option<String>,
    sequencer: Option<String>,
}

/// One message of the plan queue, delivered for the `receives`th time: an
/// S3 notification (its test event is ignored) or a request to start a held
/// import.
pub async fn handle_plan_message(ctx: &Importer, body: &str, receives: u32) -> Result<()> {
    let last_try = receives >= ctx.max_receives;
    let value: Value = serde_json::from_str(body).map_err(|e| Error::internal(format!("not JSON: {e}")))?;
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(());
    }
    if value.get("Records").is_some() {
        let event: S3Notification = serde_json::from_value(value).map_err(Error::internal)?;
        for record in event.records {
            let created = record
                .event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated"));
            let Some(raw_key) = record.s3.object.key.as_deref().filter(|_| created) else {
                continue;
            };
            let key = crate::files::decode_event_key(raw_key);
            let seed = format!("{key}#{}", record.s3.object.sequencer.as_deref().unwrap_or(""));
            let at = record.event_time.unwrap_or_else(Utc::now);
            on_upload(ctx, &key, at.timestamp_millis().max(0) as u64, &seed, last_try).await?;
        }
        return Ok(());
    }
    let msg: PlanMessage = serde_json::from_value(value).map_err(Error::internal)?;
    let Some(project) = ctx.store.get_project(&msg.project_id).await? else {
        return Ok(());
    };
    match ctx.store.get_import(&msg.project_id, &msg.import_id).await? {
        Some(job) => plan(ctx, &project, job, last_try).await,
        None => Ok(()),
    }
}

/// A file landed under `imports/{pid}/`: the job it was uploaded for, or a
/// new one with auto-mapping (its id derived from the event, so a
/// redelivered notification finds the same job).
async fn on_upload(ctx: &Importer, key: &str, event_ms: u64, seed: &str, last_try: bool) -> Result<()> {
    let mut parts = key.splitn(3, '/');
    let (Some("imports"), Some(pid), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let Some(project) = ctx.store.get_project(pid).await? else {
        warn!(key_prefix = %format!("imports/{pid}/"), "file for an unknown project ignored");
        return Ok(());
    };
    if let Some((id, _)) = rest.split_once('/').filter(|(id, _)| is_id(id)) {
        if let Some(job) = ctx.store.get_import(pid, id).await? {
            if job.source_key == key {
                if job.start == StartMode::Manual {
                    return Ok(());
                }
                return plan(ctx, &project, job, last_try).await;
            }
        }
    }
    let id = derived_id(event_ms, seed.as_bytes());
    let filename = rest.rsplit('/').next().unwrap_or(rest).to_string();
    let job = Import::pending(id.clone(), filename, key.to_string(), StartMode::OnUpload);
    ctx.store.create_import(pid, &job).await?;
    let job = ctx.store.get_import(pid, &id).await?.ok_or(Error::NotFound("import"))?;
    plan(ctx, &project, job, last_try).await
}

/// Why a file cannot be imported at all, in words for the job's `error`.
#[derive(Debug)]
struct Refused(String);

/// Plans the job; on the message's last delivery (`last_try`), an error
/// fails the job instead of leaving it waiting for a delivery that never
/// comes (the error itself is logged, not shown).
async fn plan(ctx: &Importer, project: &Project, job: Import, last_try: bool) -> Result<()> {
    let id = job.id.clone();
    let planned = plan_job(ctx, project, job).await;
    if let (Err(e), true) = (&planned, last_try) {
        error!(import_id = %id, error = %e, "planning failed on its last try; import failed");
        let reason = format!(
            "the file could not be read into chunks after {} tries (an internal error, logged)",
            ctx.max_receives
        );
        ctx.store
            .finish_import(&project.id, &id, ImportState::Failed, Some(&reason), None)
            .await?;
    }
    planned
}

async fn plan_job(ctx: &Importer, project: &Project, mut job: Import) -> Result<()> {
    let pid = project.id.as_str();
    if job.state.is_final() {
        return Ok(());
    }
    let head = ctx.files.head(&job.source_key).await?;
    if job.state == ImportState::Running {
        if let (Some(planned), Some(now)) = (&job.source_version, &head) {
            if now.version_id.as_ref() != Some(planned) {
                // Its upload URL used again mid-import: the chunks are offsets
                // into the version planned, and they keep reading it.
                warn!(import_id = %job.id, "file uploaded again to a running import; the new upload is not read");
                return Ok(());
            }
        }
    }
    let planned = match plan_file(ctx, project, &mut job, head).await? {
        Ok(scan) => scan,
        Err(Refused(reason)) => {
            info!(import_id = %job.id, reason = %reason, "import refused");
            ctx.store
                .finish_import(pid, &job.id, ImportState::Failed, Some(&reason), None)
                .await?;
            return Ok(());
        }
    };
    if job.state == ImportState::Pending {
        let started = ctx
            .store
            .start_import(
                pid,
                Planned {
                    import: &job,
                    started_at: Utc::now(),
                },
            )
            .await?;
        if !started {
            // Cancelled meanwhile, or another delivery got here first.
            let Some(now) = ctx.store.get_import(pid, &job.id).await? else {
                return Ok(());
            };
            if now.state != ImportState::Running {
                return Ok(());
            }
        }
    }
    for chunk in &planned.chunks {
        ctx.store.put_chunk(pid, &job.id, chunk).await?;
    }
    if planned.chunks.is_empty() {
        ctx.store
            .finish_import(pid, &job.id, ImportState::Completed, None, None)
            .await?;
        return Ok(());
    }
    let queue = ctx
        .chunk_queue
        .as_ref()
        .ok_or_else(|| Error::internal("no chunk queue configured"))?;
    let messages: Vec<WorkerMessage> = planned
        .chunks
        .iter()
        .map(|c| {
            WorkerMessage::Chunk(ChunkMessage {
                project_id: pid.to_string(),
                import_id: job.id.clone(),
                chunk: c.chunk,
            })
        })
        .collect();
    queue.send_all(&messages).await?;
    info!(import_id = %job.id, rows = planned.rows, chunks = planned.chunks.len(), "import planned");
    Ok(())
}

/// Sniffs, checks the header and mapping, then scans the whole file once
/// (as UTF-8; other encodings, and files with CR line ends, are copied to a
/// UTF-8 object with LF line ends as they are read).
/// `head`: the file's size and version, as the planner found them.
async fn plan_file(
    ctx: &Importer,
    project: &Project,
    job: &mut Import,
    head: Option<Version>,
) -> Result<std::result::Result<Scan, Refused>> {
    let pid = project.id.as_str();
    let Some(Version { size, version_id }) = head else {
        return Ok(Err(Refused("the file was not uploaded".into())));
    };
    if size > MAX_FILE_BYTES {
        return Ok(Err(Refused("the file is larger than 5 GiB".into())));
    }
    // Every read is of this upload, whatever is uploaded to the key meanwhile.
    let version = version_id.as_deref();
    let sample = ctx
        .files
        .read_range(&job.source_key, version, 0, SAMPLE_BYTES.min(size))
        .await?;
    if let Some(why) = sniff::not_text(&sample) {
        return Ok(Err(Refused(why.into())));
    }
    let sniff::Sample {
        mut encoding,
        text,
        cr_only,
    } = sniff::read_sample(&sample);
    let delimiter = sniff::delimiter(&text);
    let headers = match first_record(&text, delimiter) {
        Some(h) => h,
        None => return Ok(Err(Refused("the file is empty".into()))),
    };
    if let Err(refused) = check_header(&headers) {
        return Ok(Err(refused));
    }
    let mapping = match mapping::resolve(&headers, &job.mapping_input, job.options.unmapped_as_labels) {
        Ok(m) => m,
        Err(e) => return Ok(Err(Refused(e.to_string()))),
    };
    if !mapping.has_identity() {
        return Ok(Err(Refused(format!(
            "no column maps to email, phone or external id (columns: {}); map one",
            headers.join(", ")
        ))));
    }

    let limits = ChunkLimits {
        rows: ctx.chunk_rows,
        ..LIMITS
    };
    let mut scanned = None;
    if encoding.is_utf8() && !cr_only {
        let body = ctx.files.stream(&job.source_key, version).await?.into_async_read();
        match scan_blocking(body, encoding.bom_len(), delimiter, limits).await? {
            Ok(s) => {
                scanned = Some(s);
                job.data_key = Some(job.source_key.clone());
            }
            Err(ScanError::NotUtf8(_)) => encoding = sniff::eight_bit(false),
            Err(e) => return Ok(Err(Refused(e.to_string()))),
        }
    }
    let scan = match scanned {
        Some(s) => s,
        None => {
            let data_key = format!("work/{pid}/{}.utf8.csv", job.id);
            let source = (job.source_key.as_str(), version);
            let mut reading = Reading {
                encoding,
                cr_only,
                delimiter,
                limits,
            };
            let mut copied = copy_and_scan(ctx, source, &data_key, reading).await?;
            if matches!(copied, Err(ScanError::NotUtf8(_))) {
                // Past the sample, bytes that are not UTF-8: read it again as 8-bit text.
                reading.encoding = sniff::eight_bit(cr_only);
                encoding = reading.encoding;
                copied = copy_and_scan(ctx, source, &data_key, reading).await?;
            }
            match copied {
                Ok(s) => {
                    job.data_key = Some(data_key);
                    s
                }
                Err(e) => return Ok(Err(Refused(e.to_string()))),
            }
        }
    };
    job.source_version = version_id;
    if let Some(refused) = open_quote_at_the_end(ctx, job, &scan, delimiter).await? {
        return Ok(Err(refused));
    }
    job.encoding = Some(encoding);
    job.delimiter = Some(sniff::delimiter_name(delimiter).to_string());
    job.mapping = Some(mapping.0);
    job.rows_total = Some(scan.rows);
    job.chunks_total = Some(scan.chunks.len() as u32);
    job.headers = Some(scan.headers.clone());
    Ok(Ok(scan))
}

/// A quote never closed reads everything after it into one cell of the last
/// row, rows included: refused, rather than importing that row as one contact
/// and losing the rows it swallowed. (Past `MAX_ROW_BYTES` the scan stops.)
async fn open_quote_at_the_end(ctx: &Importer, job: &Import, scan: &Scan, delimiter: u8) -> Result<Option<Refused>> {
    let (Some((start, line)), Some(last), Some(key)) = (scan.last_row, scan.chunks.last(), &job.data_key) else {
        return Ok(None);
    };
    let raw = ctx.files.read_range(key, job.data_version(), start, last.end).await?;
    Ok(scan::ends_in_open_quote(&raw, delimiter).then(|| Refused(ScanError::OpenQuote(line).to_string())))
}

/// The header row of a sample, if there is one.
pub(super) fn first_record(text: &str, delimiter: u8) -> Option<Vec<String>> {
    let mut rdr = scan::reader(text.as_bytes(), delimiter);
    let mut record = csv::ByteRecord::new();
    while rdr.read_byte_record(&mut record).ok()? {
        let line = record.position().map_or(1, csv::Position::line);
        if line == 1 && scan::is_excel_separator(&record) {
            continue;
        }
        if !scan::is_blank(&record) {
            return Some(
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).trim().to_string())
                    .collect(),
            );
        }
    }
    None
}

/// A first row holding an email address or a phone number is data, not a header.
fn check_header(headers: &[String]) -> std::result::Result<(), Refused> {
    let data = headers.iter().find(|h| {
        normalize::email(h).is_ok()
            || (h.chars().filter(char::is_ascii_digit).count() >= 7
                && h.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)))
    });
    match data {
        Some(cell) => Err(Refused(format!(
            "the first row must be a header row naming the columns, but it holds data (\"{cell}\"); add a header such as email,first_name,last_name"
        ))),
        None => Ok(()),
    }
}

/// Scans the stream on a blocking thread (the CSV reader is synchronous).
async fn scan_blocking<R: AsyncRead + Unpin + Send + 'static>(
    body: R,
    bom: usize,
    delimiter: u8,
    limits: ChunkLimits,
) -> Result<std::result::Result<Scan, ScanError>> {
    tokio::task::spawn_blocking(move || scan_past_bom(SyncIoBridge::new(body), bom, delimiter, limits))
        .await
        .map_err(Error::internal)
}

/// Skips the `bom` bytes a UTF-8 file starts with, then scans the rest
/// (chunk offsets count the BOM's bytes, so they are offsets into the object).
fn scan_past_bom(
    input: impl std::io::Read,
    bom: usize,
    delimiter: u8,
    limits: ChunkLimits,
) -> std::result::Result<Scan, ScanError> {
    use std::io::Read;
    let mut input = std::io::BufReader::with_capacity(256 * 1024, input);
    let mut skipped = vec![0u8; bom];
    input
        .read_exact(&mut skipped)
        .map_err(|e| ScanError::Read(e.to_string()))?;
    scan::scan(input, delimiter, bom as u64, limits)
}

/// How a file's text is read.
#[derive(Clone, Copy)]
struct Reading {
    encoding: TextEncoding,
    /// Lines end in CR alone (`line_ends`).
    cr_only: bool,
    delimiter: u8,
    limits: ChunkLimits,
}

/// Scans the file (`(key, version)`) while copying it to `data_key` as UTF-8
/// with LF line ends. UTF-8 is copied byte for byte (its BOM too, skipped as
/// the direct scan skips it), so bytes that are not UTF-8 stop the scan
/// rather than being replaced.
async fn copy_and_scan(
    ctx: &Importer,
    (key, version): (&str, Option<&str>),
    data_key: &str,
    reading: Reading,
) -> Result<std::result::Result<Scan, ScanError>> {
    let Reading {
        encoding,
        cr_only,
        delimiter,
        limits,
    } = reading;
    let body = ctx.files.stream(key, version).await?.into_async_read();
    let mut upload = ctx.files.writer(data_key, "text/csv; charset=utf-8");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let scanning = tokio::task::spawn_blocking(move || {
        let body = SyncIoBridge::new(body);
        let (text, bom): (Box<dyn std::io::Read + Send>, usize) = if encoding.is_utf8() {
            (Box::new(body), encoding.bom_len())
        } else {
            let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding.encoding()))
                .bom_override(true)
                .build(body);
            (Box::new(decoded), 0)
        };
        let text: Box<dyn std::io::Read + Send> = if cr_only {
            Box::new(line_ends::CrToLf(text))
        } else {
            text
        };
        scan_past_bom(Tee { inner: text, tx }, bom, delimiter, limits)
    });
    while let Some(block) = rx.recv().await {
        upload.write(&block).await?;
    }
    let scan = scanning.await.map_err(Error::internal)?;
    if scan.is_ok() {
        upload.finish().await?;
    }
    Ok(scan)
}

/// Passes reads through and sends a copy of every block read.
struct Tee<R> {
    inner: R,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

impl<R: std::io::Read> std::io::Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.tx
                .blocking_send(buf[..n].to_vec())
                .map_err(|_| std::io::Error::other("the upload stopped"))?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_in_the_first_row_is_not_a_header() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_header(&h(&["email", "name"])).is_ok());
        assert!(check_header(&h(&["ada@example.com", "Ada"]))
            .unwrap_err()
            .0
            .contains("header row"));
        assert!(check_header(&h(&["+1 (415) 555-2671", "Ada"])).is_err());
        assert_eq!(first_record("\n\nemail;name\nx", b';'), Some(h(&["email", "name"])));
        assert_eq!(first_record("sep=;\nemail;name\nx", b';'), Some(h(&["email", "name"])));
    }
}
