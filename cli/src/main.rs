//! `roster`: imports from the command line.
//!
//! ```sh
//! export ROSTER_PROJECT=01J… ROSTER_KEY=sk_…   # ROSTER_URL defaults to http://127.0.0.1:3000
//! roster import people.csv --tag Imported
//! roster imports list
//! roster imports show 01J…
//! roster imports cancel 01J…
//! ```

use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

#[derive(Parser)]
#[command(name = "roster", version, about = "Roster from the command line")]
struct Cli {
    /// The API's base URL.
    #[arg(long, env = "ROSTER_URL", default_value = "http://127.0.0.1:3000", global = true)]
    url: String,
    /// Project id.
    #[arg(long, short, env = "ROSTER_PROJECT", global = true)]
    project: Option<String>,
    /// The project's secret key (sk_…).
    #[arg(long, env = "ROSTER_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Uploads a CSV, TSV or TXT file and follows the import to the end.
    Import(ImportArgs),
    /// Imports of the project.
    #[command(subcommand)]
    Imports(ImportsCommand),
}

#[derive(clap::Args)]
struct ImportArgs {
    file: std::path::PathBuf,
    /// COLUMN=FIELD (repeatable), e.g. "E-mail=email" or "Plan=label:plan".
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    mapping: Vec<String>,
    /// A tag added to every imported contact.
    #[arg(long)]
    tag: Option<String>,
    /// A sending list every imported contact joins.
    #[arg(long)]
    list: Option<String>,
    /// upsert (default), create_only or update_only.
    #[arg(long)]
    mode: Option<String>,
    /// lead, customer or employee.
    #[arg(long = "type")]
    contact_type: Option<String>,
    /// Country of national phone numbers (ISO code).
    #[arg(long)]
    default_country: Option<String>,
    /// Empty cells clear fields (by default they never erase data).
    #[arg(long)]
    blank_overwrites: bool,
    /// Unmapped columns become labels.
    #[arg(long)]
    labels: bool,
    /// Upload and print the job id, without waiting.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Subcommand)]
enum ImportsCommand {
    List,
    Show { id: String },
    Cancel { id: String },
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method, format!("{}/v1/projects/{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {e}", self.base))?;
        let status = res.status();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            let msg = value["error"]["message"].as_str().unwrap_or("no details");
            let field = value["error"]["field"]
                .as_str()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            Err(format!("{status}: {msg}{field}"))
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("roster: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let project = cli.project.ok_or("set --project or ROSTER_PROJECT")?;
    let key = cli.key.ok_or("set --key or ROSTER_KEY (the project's sk_… key)")?;
    let client = Client {
        http: reqwest::Client::new(),
        base: cli.url.trim_end_matches('/').to_string(),
        key,
    };
    let imports = format!("{project}/imports");
    match cli.command {
        Command::Import(args) => import(&client, &imports, args).await,
        Command::Imports(ImportsCommand::List) => {
            let page = client.call(reqwest::Method::GET, &imports, None).await?;
            for job in page["data"].as_array().into_iter().flatten() {
                println!("{}", list_line(job));
            }
            Ok(())
        }
        Command::Imports(ImportsCommand::Show { id }) => {
            let job = client
                .call(reqwest::Method::GET, &format!("{imports}/{id}"), None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&job).unwrap_or_default());
            Ok(())
        }
        Command::Imports(ImportsCommand::Cancel { id }) => {
            let job = client
                .call(
                    reqwest::Method::POST,
                    &format!("{imports}/{id}/cancel"),
                    Some(json!({})),
                )
                .await?;
            summary(&settled(&client, &imports, job).await?);
            Ok(())
        }
    }
}

async fn import(client: &Client, imports: &str, args: ImportArgs) -> Result<(), String> {
    let filename = args
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the file needs a name")?
        .to_string();
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    let size = file.metadata().await.map_err(|e| e.to_string())?.len();
    let mut mapping = Map::new();
    for m in &args.mapping {
        let (column, field) = m.split_once('=').ok_or(format!("--map {m}: use COLUMN=FIELD"))?;
        mapping.insert(column.to_string(), Value::String(field.to_string()));
    }
    let mut options = Map::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            options.insert(k.to_string(), v);
        }
    };
    set("tag", args.tag.map(Value::String));
    set("list_id", args.list.map(Value::String));
    set("mode", args.mode.map(Value::String));
    set("type", args.contact_type.map(Value::String));
    set("default_country", args.default_country.map(Value::String));
    set("blank_overwrites", args.blank_overwrites.then_some(Value::Bool(true)));
    set("unmapped_as_labels", args.labels.then_some(Value::Bool(true)));
    let created = client
        .call(
            reqwest::Method::POST,
            imports,
            Some(json!({"filename": filename, "mapping": mapping, "options": options})),
        )
        .await?;
    let id = created["id"].as_str().ok_or("no import id in the reply")?.to_string();
    let url = created["upload_url"].as_str().ok_or("no upload URL in the reply")?;

    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("uploading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
            .map_err(|e| e.to_string())?,
    );
    let stream = tokio_util::io::ReaderStream::new(bar.wrap_async_read(file));
    let res = client
        .http
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .map_err(|e| format!("upload failed: {e}"))?;
    bar.finish_and_clear();
    if !res.status().is_success() {
        return Err(format!("upload refused: {}", res.status()));
    }
    eprintln!("uploaded {filename} ({size} bytes); import {id}");
    if args.no_wait {
        println!("{id}");
        return Ok(());
    }

    let bar = ProgressBar::new_spinner()
        .with_style(ProgressStyle::with_template("{spinner} {msg}").map_err(|e| e.to_string())?);
    bar.enable_steady_tick(Duration::from_millis(120));
    let rows_style =
        ProgressStyle::with_template("importing {bar:40} {pos}/{len} rows {msg}").map_err(|e| e.to_string())?;
    let job = loop {
        let job = client
            .call(reqwest::Method::GET, &format!("{imports}/{id}"), None)
            .await?;
        let state = job["state"].as_str().unwrap_or("");
        match job["rows_total"].as_u64() {
            None => bar.set_message(format!("{state}: reading the file…")),
            Some(total) => {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                    bar.set_style(rows_style.clone());
                }
                bar.set_position(job["processed"].as_u64().unwrap_or(0));
                let rate = job["rows_per_second"]
                    .as_f64()
                    .map_or(String::new(), |r| format!("{r:.0}/s"));
                let eta = job["eta_seconds"]
                    .as_u64()
                    .map_or(String::new(), |s| format!(" ETA {s}s"));
                bar.set_message(format!(
                    "{rate}{eta}  created {} updated {} skipped {} failed {}",
                    job["created"], job["updated"], job["skipped"], job["failed"]
                ));
            }
        }
        if matches!(state, "completed" | "failed" | "cancelled") {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    let job = settled(client, imports, job).await?;
    summary(&job);
    if job["state"] == "completed" {
        Ok(())
    } else {
        Err(format!("import {}", job["state"].as_str().unwrap_or("ended")))
    }
}

/// One import a line: id, state, rows, the file, and why it failed when it did.
fn list_line(job: &Value) -> String {
    // The list carries the file's row count; a job read alone, its progress too.
    let rows = match (job["processed"].as_u64(), job["rows_total"].as_u64()) {
        (Some(done), Some(total)) => format!("{done}/{total} rows"),
        (None, Some(total)) => format!("{total} rows"),
        _ => "-".into(),
    };
    let mut line = format!(
        "{}  {:<10} {:>19}  {}",
        job["id"].as_str().unwrap_or(""),
        job["state"].as_str().unwrap_or(""),
        rows,
        job["filename"].as_str().unwrap_or("")
    );
    if let Some(e) = job["error"].as_str() {
        line.push_str(&format!("  ({e})"));
    }
    line
}

/// A cancelled job, once the batches running at the cancel are counted and
/// the report of its failed and skipped rows is written (a worker does both
/// shortly after the cancel; given up on after 15 seconds).
async fn settled(client: &Client, imports: &str, mut job: Value) -> Result<Value, String> {
    let problems = |j: &Value| j["failed"].as_u64().unwrap_or(0) + j["skipped"].as_u64().unwrap_or(0);
    let Some(id) = job["id"].as_str().map(str::to_string) else {
        return Ok(job);
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = job["processed"].as_u64();
    while job["state"] == "cancelled" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        job = client
            .call(reqwest::Method::GET, &format!("{imports}/{id}"), None)
            .await?;
        let still = job["processed"].as_u64() == last;
        last = job["processed"].as_u64();
        if still && (problems(&job) == 0 || !job["error_report_url"].is_null()) {
            break;
        }
    }
    Ok(job)
}

fn summary(job: &Value) {
    let id = job["id"].as_str().unwrap_or("");
    let state = job["state"].as_str().unwrap_or("");
    let processed = job["processed"].as_u64().unwrap_or(0);
    match job["rows_total"].as_u64() {
        Some(rows) if state == "completed" || processed == rows => println!(
            "{id} {state}: {rows} rows, {} created, {} updated, {} skipped, {} failed",
            job["created"], job["updated"], job["skipped"], job["failed"]
        ),
        Some(rows) => println!(
            "{id} {state}: {processed} of {rows} rows processed, {} created, {} updated, {} skipped, {} failed",
            job["created"], job["updated"], job["skipped"], job["failed"]
        ),
        // Refused before its rows were counted: nothing was imported.
        None => println!("{id} {state}: nothing imported"),
    }
    if let Some(e) = job["error"].as_str() {
        println!("error: {e}");
    }
    if let Some(url) = job["error_report_url"].as_str() {
        println!("error report (failed and skipped rows): {url}");
    }
}
