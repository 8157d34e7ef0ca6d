//! Rows per second of the import's read path against a bare `csv`
//! ByteRecord parse of the same file, in the same run. Two functions touch
//! every row: the planner scans the file once into chunks (record boundaries
//! only), and a chunk worker parses, maps, normalizes and validates each of
//! its rows into a contact change. Each is measured on its own, the worker in
//! stages to show where the time goes, and then the two together.
//! Usage: import-parse [ROWS] → JSON.

use std::time::Instant;

use roster::domain::import::mapping::{self, Field, MappingInput};
use roster::domain::import::row;
use roster::domain::import::scan::{scan, ChunkRows, Scan, LIMITS};
use roster::domain::import::{ImportOptions, BATCH_ROWS};

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// Parse each chunk's rows into cells.
    Parse,
    /// … and map the cells to contact fields.
    Map,
    /// … and normalize and validate (email, phone, names) into a change.
    Normalize,
}

/// Rows per second of a bare `csv` parse: records read, fields untouched.
fn bare_csv(bytes: &[u8]) -> f64 {
    let t = Instant::now();
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    while rdr.read_byte_record(&mut record).expect("csv") {
        rows += 1;
    }
    rows as f64 / t.elapsed().as_secs_f64()
}

/// Rows per second of the planner's scan.
fn planner(bytes: &[u8], plan: &Scan) -> f64 {
    let t = Instant::now();
    let again = scan(bytes, b',', 0, LIMITS).expect("scan");
    assert_eq!(again.rows, plan.rows);
    again.rows as f64 / t.elapsed().as_secs_f64()
}

/// Rows per second of the chunk workers' path up to `stage`, over every
/// chunk of the plan, and how many rows were valid.
fn worker(bytes: &[u8], fields: &[Option<Field>], plan: &Scan, stage: Stage) -> (f64, u64) {
    let opts = ImportOptions::default();
    let t = Instant::now();
    let (mut rows, mut valid) = (0u64, 0u64);
    // As the worker reads: one batch of records, refilled in place.
    let mut batch = vec![(0u64, csv::StringRecord::new()); BATCH_ROWS];
    for c in &plan.chunks {
        let mut reader = ChunkRows::new(&bytes[c.start as usize..c.end as usize], b',', c.first_line);
        loop {
            let n = reader.fill(&mut batch).expect("chunk");
            rows += n as u64;
            if stage != Stage::Parse {
                for (_, cells) in &batch[..n] {
                    let input = row::to_input(fields, cells, &opts, "US");
                    let ok = match (stage, input) {
                        (Stage::Map, r) => r.is_ok(),
                        (_, Ok(r)) => r.input.into_change(&r.country).is_ok(),
                        (_, Err(_)) => false,
                    };
                    valid += ok as u64;
                }
            }
            if n < batch.len() {
                break;
            }
        }
    }
    (rows as f64 / t.elapsed().as_secs_f64(), valid)
}

fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!("roster-parse-{rows}.csv"));
    roster_bench_import::write_people(&path, u64::MAX, rows).expect("write the file");
    let bytes = std::fs::read(&path).expect("read the file");
    let _ = std::fs::remove_file(&path);

    // The best of three: a slow first pass (cold caches) would flatter the ratios.
    let bare_rate = (0..3).map(|_| bare_csv(&bytes)).fold(0.0, f64::max);

    let plan = scan(&bytes[..], b',', 0, LIMITS).expect("scan");
    let all = mapping::resolve(&plan.headers, &MappingInput::new(), false)
        .expect("mapping")
        .fields();
    let no_phone = MappingInput::from([("Phone".to_string(), "ignore".to_string())]);
    let without_phone = mapping::resolve(&plan.headers, &no_phone, false)
        .expect("mapping")
        .fields();
    let row = |name: &str, rate: f64, valid: Option<u64>| serde_json::json!({"stage": name, "rows_per_second": rate.round(), "ratio": (rate / bare_rate * 1000.0).round() / 1000.0, "valid_rows": valid});
    // Warm-up: the phone metadata loads on first use (once per process,
    // at a cold start in Lambda), not a cost of the rows.
    let t = Instant::now();
    let _ = roster::domain::normalize::phone("(415) 555-2671", "US");
    let phone_load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let scan_rate = planner(&bytes, &plan);
    let mut stages = vec![row("planner: scan into chunks", scan_rate, None)];
    let mut full = 0.0;
    for (name, fields, stage) in [
        ("worker: parse cells", &all, Stage::Parse),
        ("+ map columns", &all, Stage::Map),
        (
            "+ normalize (email, names, company, city; phone column ignored)",
            &without_phone,
            Stage::Normalize,
        ),
        (
            "+ normalize, phone to E.164 too (the worker's path)",
            &all,
            Stage::Normalize,
        ),
    ] {
        let (rate, valid) = worker(&bytes, fields, &plan, stage);
        full = rate;
        stages.push(row(name, rate, (stage != Stage::Parse).then_some(valid)));
    }
    // Seconds a row costs the two functions together.
    let both = 1.0 / (1.0 / scan_rate + 1.0 / full);
    stages.push(row("planner + worker, every row (the whole import's CPU)", both, None));
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "file_mib": (bytes.len() as f64 / 1048576.0 * 10.0).round() / 10.0,
            "chunks": plan.chunks.len(),
            "bare_csv_rows_per_second": bare_rate.round(),
            "phone_metadata_load_ms": phone_load_ms.round(),
            "stages": stages,
        })
    );
}
