//! Asynchronous exports of N contacts (for each N given), run by the export
//! use case in this process against the emulators: DynamoDB through the
//! counting proxy (no delay), S3 the emulator's. For each: a floor that
//! reads the same contacts page by page and writes nothing, then the export
//! (CSV, default columns, into an S3 multipart upload), each with its peak
//! RSS (VmHWM reset before it), and the export's DynamoDB requests per
//! 1,000 rows. Each N is a project of its own, loaded through the import
//! pipeline. Usage: export-bench 10000,100000 → one JSON line per N.

use std::time::{Duration, Instant};

use roster::domain::project::ProjectSettings;
use roster::usecases::contacts;
use roster::usecases::exports::{self, ExportInput};
use roster::usecases::filter::ContactFilter;
use roster::usecases::imports;
use roster::usecases::projects;
use roster_bench_import::delay::DelayProxy;
use roster_bench_import::{peak_rss_mib, planned_import, reset_peak_rss, write_people, BenchError as Error};

const LOAD_CHUNK_ROWS: u64 = 10_000;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sizes: Vec<u64> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "10000,100000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(|_| "set AWS_ENDPOINT_URL_DYNAMODB")?;
    let template = roster_local::Template::load("template.yaml")?;
    let clients = roster_local::Clients::from_env().await;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let params = roster_local::local_parameters();
    let stack = template.provision(&format!("bex{secs}"), &clients, &params).await?;
    let env = |f: &str| template.function_env(f, &stack, &params);
    let export_env = env("ExportWorkerFunction")?;
    let import_env = env("ImportPlannerFunction")?;
    let proxy = DelayProxy::start(&upstream, Duration::ZERO).await?;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
            .endpoint_url(&proxy.url)
            .build(),
    );
    let export_config = roster::Config::from_vars(|k| export_env.get(k).cloned())?;
    let mut import_config = roster::Config::from_vars(|k| import_env.get(k).cloned())?;
    let store = roster::store::Store::new(dynamodb, export_config.table_name.clone());
    let ex = export_config
        .exports(store.clone(), &clients.sdk)
        .ok_or("no exports bucket or queue")?;

    for n in sizes {
        // Load: one project, n new contacts, imported in chunks of 10,000
        // (one chunk of 100,000 slows as it goes).
        import_config.import_chunk_rows = LOAD_CHUNK_ROWS;
        let importer = import_config.importer(store.clone(), &clients.sdk)?;
        let created = projects::create(
            &store,
            ProjectSettings {
                name: Some(format!("export bench {n}")),
                ..Default::default()
            },
        )
        .await?;
        let project = projects::get(&store, &created.project.id).await?;
        let path = std::env::temp_dir().join(format!("roster-export-{n}.csv"));
        write_people(&path, u64::MAX, n)?;
        let first = planned_import(&importer, &project, &path).await?;
        for chunk in 0..n.div_ceil(LOAD_CHUNK_ROWS) {
            let message = imports::ChunkMessage {
                chunk: chunk as u32,
                ..first.clone()
            };
            imports::run_chunk(&importer, &message, false).await?;
        }

        // Floor: the same contacts, read page by page, nothing written.
        reset_peak_rss();
        let rss_before = peak_rss_mib();
        let t = Instant::now();
        let (mut floor_rows, mut cursor) = (0u64, None::<String>);
        loop {
            let page = contacts::query(
                &store,
                &project.id,
                None,
                &ContactFilter::default(),
                None,
                exports::PAGE,
                cursor.as_deref(),
            )
            .await?;
            floor_rows += page.data.len() as u64;
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let floor_secs = t.elapsed().as_secs_f64();
        let floor_rss = peak_rss_mib();

        // The export, as the worker runs it.
        let started = exports::create(&ex, &project.id, ExportInput::default()).await?;
        let body =
            serde_json::json!({"step": "run", "project_id": project.id, "export_id": started.job.id}).to_string();
        proxy.take_counts();
        reset_peak_rss();
        let t = Instant::now();
        exports::handle_message(&ex, &body, 1).await?;
        let secs = t.elapsed().as_secs_f64();
        let export_rss = peak_rss_mib();
        let counts = proxy.take_counts();
        let done = exports::get(&ex, &project.id, &started.job.id).await?;
        let rows = done.job.rows_written;
        let requests: u64 = counts.values().sum();
        let per_k = |v: u64| (v as f64 * 1000.0 / rows.max(1) as f64 * 10.0).round() / 10.0;
        println!(
            "{}",
            serde_json::json!({
                "contacts": n,
                "state": done.job.state,
                "rows": rows,
                "bytes": done.job.bytes,
                "floor_rows": floor_rows,
                "floor_seconds": (floor_secs * 100.0).round() / 100.0,
                "floor_rows_per_second": (floor_rows as f64 / floor_secs).round(),
                "export_seconds": (secs * 100.0).round() / 100.0,
                "rows_per_second": (rows as f64 / secs).round(),
                "ratio": ((floor_secs / secs) * 1000.0).round() / 1000.0,
                "rss_before_mib": rss_before,
                "floor_peak_rss_mib": floor_rss,
                "export_peak_rss_mib": export_rss,
                "dynamodb_requests_per_1000_rows": per_k(requests),
                "by_operation_per_1000_rows": counts.iter().map(|(k, v)| (k.clone(), per_k(*v))).collect::<std::collections::BTreeMap<_, _>>(),
            })
        );
    }
    Ok(())
}
