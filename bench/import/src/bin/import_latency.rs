//! One chunk worker's rows/s against DynamoDB's latency: every DynamoDB
//! request of the worker goes through a proxy that holds it for a fixed
//! delay (`roster_bench_import::delay`); S3 is the emulator's, undelayed.
//! For each delay: a file of ROWS new contacts (email, names, company,
//! phone, city) imported as one chunk, then the same file again (every row
//! an existing contact). The emulator answers one request at a time (where
//! DynamoDB answers many side by side), so the time it was busy is reported
//! too, and the rate without it: the worker's own rate at that latency.
//! Usage: import-latency ROWS DELAYS_MS → JSON lines.

use std::time::{Duration, Instant};

use roster::domain::project::ProjectSettings;
use roster::usecases::imports;
use roster::usecases::projects;
use roster_bench_import::delay::DelayProxy;
use roster_bench_import::{bench_stack, planned_import, write_people, BenchError as Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rows: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let delays: Vec<u64> = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "0,5,10".into())
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .map_err(|_| "set AWS_ENDPOINT_URL_DYNAMODB to the local DynamoDB")?;
    let (clients, mut config) = bench_stack("blat").await?;
    // The whole file is one chunk: one worker's rate.
    config.import_chunk_rows = rows;
    let path = std::env::temp_dir().join(format!("roster-latency-{rows}.csv"));
    write_people(&path, u64::MAX, rows)?;

    for delay in delays {
        let proxy = DelayProxy::start(&upstream, Duration::from_millis(delay)).await?;
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
                .endpoint_url(&proxy.url)
                .build(),
        );
        let store = roster::store::Store::new(dynamodb, config.table_name.clone());
        let importer = config.importer(store.clone(), &clients.sdk)?;
        let created = projects::create(
            &store,
            ProjectSettings {
                name: Some(format!("latency {delay} ms")),
                ..Default::default()
            },
        )
        .await?;
        let project = projects::get(&store, &created.project.id).await?;
        for pass in ["all new", "all existing"] {
            let msg = planned_import(&importer, &project, &path).await?;
            let id = msg.import_id.clone();
            proxy.take_counts();
            proxy.take_upstream_busy();
            let t = Instant::now();
            imports::run_chunk(&importer, &msg, false).await?;
            let secs = t.elapsed().as_secs_f64();
            let counts = proxy.take_counts();
            let busy = proxy.take_upstream_busy().as_secs_f64();
            // Against a DynamoDB that answers every request within the delay,
            // side by side: the run less the time spent queued in the emulator.
            let own = (secs - busy).max(0.001);
            let status = imports::status(&importer, &project.id, &id).await?;
            let requests: u64 = counts.values().sum();
            println!(
                "{}",
                serde_json::json!({
                    "delay_ms": delay,
                    "pass": pass,
                    "rows": rows,
                    "state": status.import.state,
                    "created": status.counts.created,
                    "updated": status.counts.updated,
                    "failed": status.counts.failed,
                    "seconds": (secs * 100.0).round() / 100.0,
                    "rows_per_second": (rows as f64 / secs).round(),
                    "emulator_busy_seconds": (busy * 100.0).round() / 100.0,
                    "rows_per_second_less_emulator": (rows as f64 / own).round(),
                    "requests": requests,
                    "requests_per_1000_rows": (requests as f64 * 1000.0 / rows as f64).round(),
                    "by_operation": counts,
                })
            );
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
