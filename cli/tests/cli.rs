//! The `roster` binary against the real app (the e2e harness: the local
//! stack on a random port, workers in process, the emulated AWS services).

use std::process::Output;

use roster_e2e::{TestApp, TestProject};
use serde_json::json;

/// Runs `roster ARGS` for the project off the runtime's threads, so the app
/// (and its import workers) keep running while the command waits on them.
async fn roster(app: &TestApp, p: &TestProject, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_roster"));
    cmd.args(args)
        .env("ROSTER_URL", &app.base)
        .env("ROSTER_PROJECT", &p.id)
        .env("ROSTER_KEY", &p.key);
    let out: Output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run roster");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_follows_a_file_to_its_summary_and_imports_lists_shows_and_cancels() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let dir = std::env::temp_dir().join(format!("roster-cli-{}", p.id));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("people.csv");
    std::fs::write(
        &file,
        "E-mail;Full Name;Mobile\nann@example.com;Ann Lee;(415) 555-2671\nANN@example.com;Ann Lee;\nbob@example.com;Bob Stone;\nnot-an-email;Nobody;\n",
    )
    .unwrap();

    let (ok, out) = roster(&app, &p, &["import", file.to_str().unwrap(), "--tag", "CLI"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("completed: 4 rows, 2 created, 1 updated, 0 skipped, 1 failed"),
        "{out}"
    );
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("error report (failed and skipped rows): "))
        .unwrap_or_else(|| panic!("no report link: {out}"));
    let csv = app.http.get(report).send().await.unwrap().text().await.unwrap();
    assert!(csv.contains("not-an-email") && csv.contains("email"), "{csv}");
    let ann = app
        .get(&format!("{}?email=ann@example.com", p.contacts()), &p.key)
        .await;
    let ann = &ann.body["data"][0];
    assert_eq!(ann["phone"], "+14155552671", "{ann:?}");
    assert_eq!(ann["tags"], json!(["CLI"]));

    // A workbook under a .csv name: refused, and the command fails saying why.
    let book = dir.join("book.csv");
    std::fs::write(&book, b"PK\x03\x04\x14\x00\x06\x00").unwrap();
    let (ok, out) = roster(&app, &p, &["import", book.to_str().unwrap()]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("failed: nothing imported") && out.contains(".xlsx"),
        "{out}"
    );

    let (ok, list) = roster(&app, &p, &["imports", "list"]).await;
    assert!(ok, "{list}");
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("completed") && l.contains(" 4 rows") && l.contains("people.csv")),
        "{list}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("failed") && l.contains("book.csv") && l.contains("ZIP")),
        "{list}"
    );

    let id = lines
        .iter()
        .find(|l| l.contains("people.csv"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let (ok, shown) = roster(&app, &p, &["imports", "show", id]).await;
    assert!(ok, "{shown}");
    let job: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!((job["created"].as_u64(), job["failed"].as_u64()), (Some(2), Some(1)));

    // An import held for a manual start is cancelled from the command line.
    let held_id = app.held_import(&p, "later.csv", None).await;
    let (ok, out) = roster(&app, &p, &["imports", "cancel", &held_id]).await;
    assert!(ok && out.contains("cancelled"), "{out}");
    let (ok, out) = roster(&app, &p, &["imports", "cancel", &held_id]).await;
    assert!(!ok, "an ended import cannot be cancelled again: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}
