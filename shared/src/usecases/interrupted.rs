//! After a restart of the local stack: jobs whose files and queue messages
//! were lost with the in-memory S3 and SQS are failed with the reason,
//! instead of showing `running` forever. A broadcast keeps everything it
//! needs in DynamoDB (its audience, ledger and claims): it is paused with the
//! reason instead, and `resume` carries on exactly where it stopped.

use tracing::info;

use crate::domain::broadcast::BroadcastState;
use crate::domain::bulk::JobState;
use crate::domain::import::ImportState;
use crate::store::interrupted::Unfinished;
use crate::store::Store;
use crate::Result;

pub const BROADCAST_REASON: &str = "interrupted: the local stack was restarted while this broadcast was sending, \
and its queue messages (kept in memory by the SQS emulator) are gone; resume it to carry on where it stopped";

pub const REASON: &str = "interrupted: the local stack was restarted while this job was unfinished, \
and its files and queue messages (kept in memory by the S3 and SQS emulator) are gone; start it again";

/// Fails every pending or running import, bulk job and export, and pauses every
/// pending or sending broadcast; how many.
pub async fn fail_all(store: &Store) -> Result<usize> {
    let jobs = store.unfinished_jobs().await?;
    let mut failed = 0;
    for job in &jobs {
        let done = match job {
            Unfinished::Import { pid, id } => {
                store
                    .finish_import(pid, id, ImportState::Failed, Some(REASON), None)
                    .await?
            }
            Unfinished::Bulk { pid, id } => store.finish_bulk_job(pid, id, JobState::Failed, Some(REASON)).await?,
            Unfinished::Broadcast { pid, id } => store
                .move_broadcast(
                    pid,
                    id,
                    &[BroadcastState::Pending, BroadcastState::Sending],
                    BroadcastState::Paused,
                    Some(BROADCAST_REASON),
                )
                .await?
                .is_some(),
            Unfinished::Export { pid, id } => store.fail_export(pid, id, REASON).await?,
        };
        if done {
            info!(job = ?job, "interrupted job failed");
            failed += 1;
        }
    }
    Ok(failed)
}
