//! Rows per second of the import's read path against a bare `csv`
//! ByteRecord parse of the same file, in the same run. The import path is
//! what the planner and a worker do to every row: the planner's scan into
//! chunks, then per chunk: parse, map the columns, normalize and validate
//! into a contact change. Measured in stages, to show where the time goes.
//! Usage: import-parse [ROWS] → JSON.

use std::time::Instant;

use roster::domain::import::mapping::{self, Field, MappingInput};
use roster::domain::import::row;
use roster::domain::import::scan::{chunk_rows, scan, Scan, LIMITS};
use roster::domain::import::ImportOptions;

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// Scan, then parse each chunk's rows into cells.
    Parse,
    /// … and map the cells to contact fields.
    Map,
    /// … and normalize and validate (email, phone, names) into a change.
    Normalize,
}

/// Rows per second of the import path up to `stage`, and how many rows were valid.
fn run(bytes: &[u8], fields: &[Option<Field>], plan: &Scan, stage: Stage) -> (f64, u64) {
    let opts = ImportOptions::default();
    let t = Instant::now();
    let again = scan(bytes, b',', 0, LIMITS).expect("scan");
    assert_eq!(again.rows, plan.rows);
    let (mut rows, mut valid) = (0u64, 0u64);
    for c in &again.chunks {
        for (_, cells) in chunk_rows(&bytes[c.start as usize..c.end as usize], b',', c.first_line).expect("chunk") {
            rows += 1;
            if stage == Stage::Parse {
                continue;
            }
            let cells: Vec<&str> = cells.iter().collect();
            let input = row::to_input(fields, &cells, &opts, "US");
            let ok = match (stage, input) {
                (Stage::Map, r) => r.is_ok(),
                (_, Ok(r)) => r.input.into_change(&r.country).is_ok(),
                (_, Err(_)) => false,
            };
            valid += ok as u64;
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

    let t = Instant::now();
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
    let mut record = csv::ByteRecord::new();
    let mut bare = 0u64;
    while rdr.read_byte_record(&mut record).expect("csv") {
        bare += 1;
    }
    let bare_rate = bare as f64 / t.elapsed().as_secs_f64();

    let plan = scan(&bytes[..], b',', 0, LIMITS).expect("scan");
    let all = mapping::resolve(&plan.headers, &MappingInput::new(), false)
        .expect("mapping")
        .fields();
    let no_phone = MappingInput::from([("Phone".to_string(), "ignore".to_string())]);
    let without_phone = mapping::resolve(&plan.headers, &no_phone, false)
        .expect("mapping")
        .fields();
    let stage = |name: &str, fields: &[Option<Field>], stage: Stage| {
        let (rate, valid) = run(&bytes, fields, &plan, stage);
        serde_json::json!({"stage": name, "rows_per_second": rate.round(), "ratio": (rate / bare_rate * 1000.0).round() / 1000.0, "valid_rows": valid})
    };
    let stages = vec![
        stage("scan + parse cells", &all, Stage::Parse),
        stage("+ map columns", &all, Stage::Map),
        stage(
            "+ normalize (email, names, company; phone column ignored)",
            &without_phone,
            Stage::Normalize,
        ),
        stage(
            "+ normalize, phone to E.164 too (the import path)",
            &all,
            Stage::Normalize,
        ),
    ];
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "file_mib": (bytes.len() as f64 / 1048576.0 * 10.0).round() / 10.0,
            "chunks": plan.chunks.len(),
            "bare_csv_rows_per_second": bare_rate.round(),
            "stages": stages,
        })
    );
}
