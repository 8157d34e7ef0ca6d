//! The error report: each batch's failed and skipped rows are written as a
//! part (`reports/{pid}/{id}/parts/{chunk}-{from}.csv`) before the batch is
//! committed, and the report joins the parts in file order.
//!
//! A completed job's report is joined once, by the worker that sees every
//! chunk done. A stopped job's (cancelled, or failed on a chunk) is joined
//! from the parts of the batches the ledger shows committed (a part whose
//! batch never committed is left out, as its rows are not counted): first by
//! the worker the cancel sends (or the one that failed it), then again by any
//! worker whose batch was already running when the job stopped.
//! Each join is stored only if it holds more parts than the stored one, so
//! the report ends with every committed batch whichever join finishes last.

use std::collections::HashMap;

use tracing::info;

use super::Importer;
use crate::domain::import::{ImportState, REPORT_HEADER};
use crate::{Error, Result};

fn parts_prefix(pid: &str, id: &str) -> String {
    format!("reports/{pid}/{id}/parts/")
}

/// Where the report rows of the batch of `chunk` starting at its row `from` go.
pub(super) fn part_key(pid: &str, id: &str, chunk: u32, from: u64) -> String {
    format!("{}{chunk:06}-{from:06}.csv", parts_prefix(pid, id))
}

/// The chunk and first row of a part, from its key.
fn part_of(key: &str) -> Option<(u32, u64)> {
    let name = key.rsplit('/').next()?.strip_suffix(".csv")?;
    let (chunk, from) = name.split_once('-')?;
    Some((chunk.parse().ok()?, from.parse().ok()?))
}

/// Joins the report parts into one CSV at `key`, streamed part by part.
async fn join(ctx: &Importer, parts: &[String], key: &str) -> Result<()> {
    let mut upload = ctx.files.writer(key, "text/csv; charset=utf-8");
    let mut header = csv::Writer::from_writer(Vec::new());
    header.write_record(REPORT_HEADER).map_err(Error::internal)?;
    upload.write(&header.into_inner().map_err(Error::internal)?).await?;
    for part in parts {
        let bytes = ctx.files.get(part).await?;
        upload.write(&bytes).await?;
    }
    upload.finish().await
}

/// Writes the report of a job whose every chunk is done and completes the job.
pub(super) async fn complete(ctx: &Importer, pid: &str, id: &str) -> Result<()> {
    let parts = ctx.files.list(&parts_prefix(pid, id)).await?;
    let report_key = if parts.is_empty() {
        None
    } else {
        let key = format!("reports/{pid}/{id}/errors.csv");
        join(ctx, &parts, &key).await?;
        Some(key)
    };
    if ctx
        .store
        .finish_import(pid, id, ImportState::Completed, None, report_key.as_deref())
        .await?
    {
        info!(import_id = %id, "import completed");
    }
    Ok(())
}

/// Writes (again) the report of a cancelled or failed job from its committed batches.
pub(super) async fn for_stopped(ctx: &Importer, pid: &str, id: &str) -> Result<()> {
    let Some((job, chunks)) = ctx.store.import_with_chunks(pid, id).await? else {
        return Ok(());
    };
    if !matches!(job.state, ImportState::Cancelled | ImportState::Failed) {
        return Ok(());
    }
    let committed: HashMap<u32, u64> = chunks.iter().map(|c| (c.chunk, c.next_row)).collect();
    let parts: Vec<String> = ctx
        .files
        .list(&parts_prefix(pid, id))
        .await?
        .into_iter()
        .filter(|key| part_of(key).is_some_and(|(chunk, from)| committed.get(&chunk).is_some_and(|next| from < *next)))
        .collect();
    let count = parts.len() as u32;
    if count <= job.report_parts.unwrap_or(0) {
        return Ok(());
    }
    // Named by its part count: two joins of as many parts join the same parts.
    let key = format!("reports/{pid}/{id}/errors-{count}.csv");
    join(ctx, &parts, &key).await?;
    if ctx.store.set_stopped_report(pid, id, &key, count).await? {
        info!(import_id = %id, parts = count, "report of a stopped import written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_keys_name_their_batch() {
        let key = part_key("p1", "i1", 3, 1200);
        assert_eq!(key, "reports/p1/i1/parts/000003-001200.csv");
        assert_eq!(part_of(&key), Some((3, 1200)));
        assert_eq!(part_of("reports/p1/i1/parts/errors.csv"), None);
        assert_eq!(part_of("reports/p1/i1/parts/x-1.csv"), None);
    }
}
