//! Asynchronous exports of N contacts (for each N given), run by the export
//! use case in this process against the emulators: DynamoDB through the
//! counting proxy (no delay), S3 the emulator's. For each: a floor that
//! reads the same contacts page by page and writes nothing, then the export
//! (CSV, default columns, into an S3 multipart upload), each with its peak
//! RSS (VmHWM reset before it), and the export's DynamoDB requests per
//! 1,000 rows. Each N is a project of its own, its contacts written as the
//! import writes a new contact's item (the identity claims, search tokens
//! and timeline, which an export never reads, left out: loading them too
//! through the import made dynoxide too slow at 100,000 contacts, about a
//! million items). Usage: export-bench 10000,100000 → one JSON line per N.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use roster::domain::contact::Source;
use roster::domain::project::ProjectSettings;
use roster::usecases::contacts;
use roster::usecases::exports::{self, ExportInput};
use roster::usecases::filter::ContactFilter;
use roster::usecases::projects;
use roster_bench_import::delay::DelayProxy;
use roster_bench_import::{peak_rss_mib, reset_peak_rss, BenchError as Error};

/// Items written a round while loading (100 BatchWriteItems).
const LOAD_BATCH: u64 = 2_500;

/// `n` new contacts (email, names, company, phone, a referral code), each
/// the item an import writes for it.
async fn load(store: &roster::store::Store, project: &roster::domain::project::Project, n: u64) -> Result<(), Error> {
    use roster::domain::contact::ContactInput;
    use roster::store::contacts::{put_request, WriteMode};
    let now = chrono::Utc::now();
    let mut items = Vec::with_capacity(LOAD_BATCH as usize);
    for i in 0..n {
        let input: ContactInput = serde_json::from_value(serde_json::json!({
            "email": format!("person{i}@example.com"),
            "first_name": format!("First{i}"),
            "last_name": format!("Last{i}"),
            "company": format!("Company {}, Inc", i % 997),
            "phone": format!("(415) {:03}-{:04}", 200 + i % 800, i % 10_000),
        }))?;
        let change = input.into_change(&project.default_country)?;
        let (kind, value) = change.match_identity().ok_or("no identity")?;
        let mode = WriteMode::Upsert {
            matched: (kind, value.to_string()),
            held: Vec::new(),
        };
        let mut write = contacts::write_for(&change, mode);
        write.defaults.extend(contacts::creation_defaults(now, Source::Import)?);
        write
            .set
            .push(("referral_code".into(), AttributeValue::S(format!("R{i:07}"))));
        let cid = roster::domain::ids::new_id();
        let (item, _) = store.new_contact_item(&project.id, &cid, write)?;
        items.push(put_request(item)?);
        if items.len() as u64 == LOAD_BATCH || i + 1 == n {
            store.batch_write(std::mem::take(&mut items)).await?;
        }
    }
    Ok(())
}

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
    let proxy = DelayProxy::start(&upstream, Duration::ZERO).await?;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
            .endpoint_url(&proxy.url)
            .build(),
    );
    let export_config = roster::Config::from_vars(|k| export_env.get(k).cloned())?;
    let store = roster::store::Store::new(dynamodb, export_config.table_name.clone());
    let ex = export_config
        .exports(store.clone(), &clients.sdk)
        .ok_or("no exports bucket or queue")?;

    for n in sizes {
        let created = projects::create(
            &store,
            ProjectSettings {
                name: Some(format!("export bench {n}")),
                ..Default::default()
            },
        )
        .await?;
        let project = projects::get(&store, &created.project.id).await?;
        load(&store, &project, n).await?;

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
        proxy.take_items_read();
        reset_peak_rss();
        let t = Instant::now();
        exports::handle_message(&ex, &body, 1).await?;
        let secs = t.elapsed().as_secs_f64();
        let export_rss = peak_rss_mib();
        let counts = proxy.take_counts();
        let items = proxy.take_items_read();
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
                "items_read_per_1000_rows": per_k(items),
                "by_operation_per_1000_rows": counts.iter().map(|(k, v)| (k.clone(), per_k(*v))).collect::<std::collections::BTreeMap<_, _>>(),
            })
        );
    }
    Ok(())
}
