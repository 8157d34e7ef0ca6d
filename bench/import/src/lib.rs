//! Synthetic files shaped like real exports: email, names, company, a
//! national phone number and a city.

use std::io::Write;

pub fn write_people(path: &std::path::Path, min_bytes: u64, max_rows: u64) -> std::io::Result<u64> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(f, "Email,First Name,Last Name,Company,Phone,City")?;
    let (mut bytes, mut rows) = (0u64, 0u64);
    while bytes < min_bytes && rows < max_rows {
        let line = format!(
            "person{rows}@example.com,First{rows},Last{rows},\"Company {}, Inc\",(415) {:03}-{:04},Springfield\n",
            rows % 997,
            200 + rows % 800,
            rows % 10_000
        );
        f.write_all(line.as_bytes())?;
        bytes += line.len() as u64;
        rows += 1;
    }
    f.flush()?;
    Ok(rows)
}

/// Peak resident memory of this process so far, in MiB (VmHWM).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

/// Starts a new peak (Linux: writing 5 to clear_refs resets VmHWM).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub mod delay;

pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// A stack of its own (table, bucket, queues from template.yaml, named
/// `{prefix}{seconds}`) in the emulators, and the import functions' config.
pub async fn bench_stack(prefix: &str) -> Result<(roster_local::Clients, roster::Config), BenchError> {
    let template = roster_local::Template::load("template.yaml")?;
    let clients = roster_local::Clients::from_env().await;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let stack = template
        .provision(
            &format!("{prefix}{seconds}"),
            &clients,
            &roster_local::local_parameters(),
        )
        .await?;
    // The planner's environment: the chunk queue too.
    let env = template.function_env("ImportPlannerFunction", &stack, &roster_local::local_parameters())?;
    let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
    Ok((clients, config))
}

/// Uploads a file to the import's source key (multipart, 8 MiB parts).
pub async fn upload(
    importer: &roster::usecases::imports::Importer,
    key: &str,
    path: &std::path::Path,
) -> Result<(), BenchError> {
    use std::io::Read;
    let mut upload = importer.files.writer(key, "text/csv");
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; 8 * 1024 * 1024];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        upload.write(&block[..n]).await?;
    }
    upload.finish().await?;
    Ok(())
}

/// A new import of the file at `path` into `project`, uploaded and planned as
/// the planner plans it: the message of its first chunk, ready to run.
pub async fn planned_import(
    importer: &roster::usecases::imports::Importer,
    project: &roster::domain::project::Project,
    path: &std::path::Path,
) -> Result<roster::usecases::imports::ChunkMessage, BenchError> {
    use roster::usecases::imports::{self, ChunkMessage, CreateImport, PlanMessage};
    let job = imports::create(
        importer,
        project,
        CreateImport {
            filename: "people.csv".into(),
            ..Default::default()
        },
    )
    .await?;
    let import_id = job.status.import.id.clone();
    upload(importer, &job.status.import.source_key, path).await?;
    let plan = serde_json::to_string(&PlanMessage {
        project_id: project.id.clone(),
        import_id: import_id.clone(),
    })?;
    imports::handle_plan_message(importer, &plan, 1).await?;
    Ok(ChunkMessage {
        project_id: project.id.clone(),
        import_id,
        chunk: 0,
    })
}
