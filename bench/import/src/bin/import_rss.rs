//! Peak resident memory of the planner and of the chunk worker on a large
//! file in the emulator's S3. Runs both in this process, one after the
//! other, resetting the peak between them. Usage: import-rss MIB [CHUNKS] → JSON.

use std::time::Instant;

use roster::domain::project::ProjectSettings;
use roster::usecases::imports::{self, ChunkMessage, CreateImport, PlanMessage};
use roster::usecases::projects;
use roster_bench_import::{bench_stack, peak_rss_mib, reset_peak_rss, upload, write_people};

#[tokio::main]
async fn main() -> Result<(), roster_bench_import::BenchError> {
    let mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let chunks_to_run: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let (clients, config) = bench_stack("brss").await?;
    let store = roster::store::Store::new(clients.dynamodb.clone(), config.table_name.clone());
    let importer = config.importer(store.clone(), &clients.sdk)?;

    let project = projects::create(
        &store,
        ProjectSettings {
            name: Some("rss".into()),
            ..Default::default()
        },
    )
    .await?;
    let project = projects::get(&store, &project.project.id).await?;
    let path = std::env::temp_dir().join(format!("roster-rss-{mib}.csv"));
    let rows = write_people(&path, mib * 1024 * 1024, u64::MAX)?;
    let job = imports::create(
        &importer,
        &project,
        CreateImport {
            filename: "big.csv".into(),
            start: roster::domain::import::StartMode::Manual,
            ..Default::default()
        },
    )
    .await?;
    let id = job.status.import.id.clone();
    upload(&importer, &job.status.import.source_key, &path).await?;
    let _ = std::fs::remove_file(&path);

    reset_peak_rss();
    let t = Instant::now();
    let plan = serde_json::to_string(&PlanMessage {
        project_id: project.id.clone(),
        import_id: id.clone(),
    })?;
    imports::handle_plan_message(&importer, &plan, 1).await?;
    let plan_secs = t.elapsed().as_secs_f64();
    let planner_peak = peak_rss_mib();
    let status = imports::status(&importer, &project.id, &id).await?;

    reset_peak_rss();
    let t = Instant::now();
    for chunk in 0..chunks_to_run as u32 {
        let msg = ChunkMessage {
            project_id: project.id.clone(),
            import_id: id.clone(),
            chunk,
        };
        imports::run_chunk(&importer, &msg, false).await?;
    }
    let work_secs = t.elapsed().as_secs_f64();
    let worker_peak = peak_rss_mib();
    let done = imports::status(&importer, &project.id, &id).await?;
    imports::cancel(&importer, &project.id, &id).await?;
    println!(
        "{}",
        serde_json::json!({
            "file_mib": mib,
            "rows": rows,
            "rows_total": status.import.rows_total,
            "chunks_total": status.import.chunks_total,
            "plan_seconds": (plan_secs * 10.0).round() / 10.0,
            "planner_peak_rss_mib": planner_peak,
            "chunks_run": chunks_to_run,
            "rows_imported": done.processed,
            "worker_seconds": (work_secs * 10.0).round() / 10.0,
            "worker_peak_rss_mib": worker_peak,
        })
    );
    Ok(())
}
