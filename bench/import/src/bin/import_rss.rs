//! Peak resident memory of the planner and of the chunk worker on a large
//! file in the emulator's S3. Runs both in this process, one after the
//! other, resetting the peak between them. Usage: import-rss MIB [CHUNKS] → JSON.

use std::io::Read;
use std::time::Instant;

use roster::domain::project::ProjectSettings;
use roster::usecases::imports::{self, ChunkMessage, CreateImport, PlanMessage};
use roster::usecases::projects;
use roster_bench_import::{peak_rss_mib, reset_peak_rss, write_people};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mib: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let chunks_to_run: usize = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let template = roster_local::Template::load("template.yaml")?;
    let clients = roster_local::Clients::from_env().await;
    let prefix = format!(
        "brss{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    let stack = template.provision(&prefix, &clients).await?;
    let env = template.function_env("ImportPlannerFunction", &stack, &roster_local::local_parameters())?;
    let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
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
    let mut upload = importer.files.writer(&job.status.import.source_key, "text/csv");
    let mut file = std::fs::File::open(&path)?;
    let mut block = vec![0u8; 8 * 1024 * 1024];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        upload.write(&block[..n]).await?;
    }
    upload.finish().await?;
    drop(block);
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
