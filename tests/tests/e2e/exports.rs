//! Synchronous CSV exports: the file read back equals the filtered
//! audience, columns as asked, RFC 4180 quoting, formula cells neutralized,
//! the cap said in a header; messages and contact-form messages too.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

/// The file: its headers, its bytes, and its rows read back by a CSV parser.
struct File {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
    rows: Vec<Vec<String>>,
}

async fn download(app: &TestApp, p: &TestProject, path_and_query: &str) -> File {
    let r = app
        .http
        .get(format!("{}/v1/projects/{}/{path_and_query}", app.base, p.id))
        .bearer_auth(&p.key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    let mut rows = Vec::new();
    if status == StatusCode::OK {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(body);
        for record in reader.records() {
            rows.push(record.unwrap().iter().map(str::to_string).collect());
        }
    }
    File {
        status,
        headers,
        bytes,
        rows,
    }
}

async fn upsert(app: &TestApp, p: &TestProject, body: Value) -> String {
    let r = app.post(&p.contacts(), &p.key, body).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

fn column<'a>(file: &'a File, name: &str) -> Vec<&'a str> {
    let i = file.rows[0].iter().position(|h| h == name).unwrap();
    file.rows[1..].iter().map(|r| r[i].as_str()).collect()
}

#[tokio::test]
async fn a_contact_export_is_the_filtered_audience_with_safe_cells() {
    let app = TestApp::spawn_with(&[("ExportSyncRows", "20")]).await;
    let p = app.project().await;
    let list_id = app.email_list(&p, "News", "news@example.com").await;
    let mut vip = BTreeSet::new();
    for i in 0..24 {
        let tags = if i % 2 == 0 { json!(["vip"]) } else { json!(["other"]) };
        let email = format!("person{i:02}@example.com");
        let cid = upsert(&app, &p, json!({"email": email, "first_name": format!("P{i}"), "tags": tags, "labels": {"plan": format!("plan{i}")}})).await;
        if i % 2 == 0 {
            vip.insert(email);
        }
        if i < 3 {
            app.request(
                reqwest::Method::PUT,
                &format!("/v1/projects/{}/lists/{list_id}/contacts/{cid}", p.id),
                Some(&p.key),
                Some(json!({"status": "active"})),
            )
            .await;
        }
    }
    // The cells a spreadsheet would run, a phone, and a value that needs quoting.
    let tricky = upsert(&app, &p, json!({
        "email": "tricky@example.com", "first_name": "=HYPERLINK(\"http://evil.example\",\"x\")", "last_name": "@SUM(A1)",
        "company": "-2+3, \"Acme\" Ltd", "phone": "+14155550100", "tags": ["vip"],
    })).await;
    vip.insert("tricky@example.com".to_string());

    let f = download(&app, &p, "contacts/export.csv?tags=vip").await;
    assert_eq!(f.status, StatusCode::OK);
    assert!(f.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(f.headers.get("x-roster-truncated").is_none());
    assert_eq!(
        f.rows[0],
        [
            "email",
            "name",
            "first_name",
            "last_name",
            "phone",
            "company",
            "source",
            "type",
            "status",
            "tags",
            "referral_code",
            "referral_count",
            "created_at"
        ]
    );
    let emails: BTreeSet<String> = column(&f, "email").into_iter().map(str::to_string).collect();
    assert_eq!(emails, vip, "each selected contact once, no other");
    assert_eq!(f.rows.len() - 1, vip.len());
    let row = f.rows.iter().find(|r| r[0] == "tricky@example.com").unwrap();
    assert_eq!(row[2], "'=HYPERLINK(\"http://evil.example\",\"x\")");
    assert_eq!(row[3], "'@SUM(A1)");
    assert_eq!(row[4], "+14155550100", "a phone number stays a phone number");
    assert_eq!(row[5], "'-2+3, \"Acme\" Ltd", "quoted, and neutralized");
    assert!(
        String::from_utf8_lossy(&f.bytes).contains("\"'-2+3, \"\"Acme\"\" Ltd\""),
        "RFC 4180 quoting"
    );

    // Chosen columns: labels, list memberships, counters; the sort of the list route.
    let f = download(
        &app,
        &p,
        &format!("contacts/export.csv?sort=email&order=asc&columns=email,label:plan,list:{list_id},total_sends"),
    )
    .await;
    assert_eq!(
        f.rows[0],
        ["email", "label:plan", format!("list:{list_id}").as_str(), "total_sends"]
    );
    let listed: Vec<&str> = column(&f, "email");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let p00 = f.rows.iter().find(|r| r[0] == "person00@example.com").unwrap();
    assert_eq!(
        (p00[1].as_str(), p00[2].as_str(), p00[3].as_str()),
        ("plan0", "active", "0")
    );
    let p10 = f.rows.iter().find(|r| r[0] == "person10@example.com").unwrap();
    assert_eq!(p10[2], "", "not on the list");

    // More than the cap (20 here): the first 20 rows, and the header says so.
    let f = download(&app, &p, "contacts/export.csv?bom=true").await;
    assert!(f.bytes.starts_with(b"\xEF\xBB\xBFemail,"));
    assert_eq!(f.rows.len() - 1, 20);
    assert!(f.headers["x-roster-truncated"].to_str().unwrap().contains("/exports"));
    // A search exports what it finds.
    let f = download(&app, &p, "contacts/export.csv?q=tricky").await;
    assert_eq!(column(&f, "email"), ["tricky@example.com"]);

    // Bad input: a clear 422 before any byte.
    for (query, field) in [
        ("columns=email,nope", "columns"),
        ("columns=list:abc", "columns"),
        ("limit=5", "limit"),
        ("q=x&tags=vip", "q"),
    ] {
        let f = download(&app, &p, &format!("contacts/export.csv?{query}")).await;
        assert_eq!(f.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = serde_json::from_slice(&f.bytes).unwrap();
        assert_eq!(body["error"]["field"], field, "{query}");
    }
    let r = app.get(&format!("{}?columns=email", p.contacts()), &p.key).await;
    assert_eq!(r.field(), Some("columns"));
    let _ = tricky;
}

#[tokio::test]
async fn messages_and_contact_messages_export_with_their_filters() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.patch(
        &format!("/v1/projects/{}", p.id),
        &p.key,
        json!({"email_from": "news@example.com"}),
    )
    .await;
    let a = upsert(&app, &p, json!({"email": "a@example.org"})).await;
    for subject in ["First", "=cmd|' /C calc'!A0"] {
        let r = app
            .post(
                &format!("{}/messages", p.contact(&a)),
                &p.key,
                json!({"channel": "email", "subject": subject, "text": "Hello"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    }
    let f = download(&app, &p, "messages/export.csv?channel=email").await;
    assert_eq!(f.status, StatusCode::OK);
    assert_eq!(
        f.rows[0][..6],
        ["id", "created_at", "channel", "direction", "status", "contact_id"]
    );
    assert_eq!(f.rows.len(), 3);
    assert_eq!(
        column(&f, "subject"),
        ["'=cmd|' /C calc'!A0", "First"],
        "newest first, neutralized"
    );
    assert!(column(&f, "status").iter().all(|s| *s == "sent"));
    assert!(column(&f, "contact_id").iter().all(|c| *c == a));
    let f = download(&app, &p, "messages/export.csv?channel=sms").await;
    assert_eq!(f.rows.len(), 1, "the header only");

    // Contact-form messages: content, status, subject, sender, created.
    for (i, text) in ["I have a question", "+1 for the feature"].iter().enumerate() {
        let r = app
            .public(
                &p,
                "messages",
                "10.0.0.9",
                json!({"email": format!("asker{i}@example.org"), "name": "Ann", "subject": "Hi", "message": text}),
            )
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let f = download(&app, &p, "contact-messages/export.csv").await;
    assert_eq!(
        f.rows[0],
        [
            "id",
            "created_at",
            "contact_id",
            "email",
            "name",
            "subject",
            "message",
            "status"
        ]
    );
    assert_eq!(column(&f, "message"), ["'+1 for the feature", "I have a question"]);
    assert_eq!(column(&f, "status"), ["new", "new"]);
    assert_eq!(column(&f, "email"), ["asker1@example.org", "asker0@example.org"]);
    let f = download(&app, &p, "contact-messages/export.csv?q=question").await;
    assert_eq!(column(&f, "message"), ["I have a question"]);

    // Asynchronously: the same files as the synchronous exports, JSON Lines too.
    let export = |body: Value| completed_export(&app, &p, body);
    for (of, filter, path) in [
        (
            "messages",
            json!({"channel": "email"}),
            "messages/export.csv?channel=email",
        ),
        ("messages", json!({"channel": "sms"}), "messages/export.csv?channel=sms"),
        ("contact_messages", json!({}), "contact-messages/export.csv"),
        (
            "contact_messages",
            json!({"q": "question"}),
            "contact-messages/export.csv?q=question",
        ),
    ] {
        let (done, file) = export(json!({"of": of, "filter": filter})).await;
        let sync = download(&app, &p, path).await;
        assert_eq!(
            String::from_utf8(file).unwrap(),
            String::from_utf8(sync.bytes).unwrap(),
            "{of} {filter}"
        );
        assert_eq!(done["of"], of);
        assert_eq!(done["rows_written"].as_u64(), Some(sync.rows.len() as u64 - 1));
    }
    let (_, file) = export(json!({"of": "messages", "format": "jsonl"})).await;
    let lines: Vec<Value> = String::from_utf8(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["subject"], "=cmd|' /C calc'!A0",
        "JSON keeps the value as it is"
    );
    assert_eq!(
        (lines[1]["channel"].clone(), lines[1]["contact_id"].clone()),
        (json!("email"), json!(a))
    );
    let (_, file) = export(json!({"of": "contact_messages", "format": "jsonl", "filter": {"status": "new"}})).await;
    let first: Value = serde_json::from_str(String::from_utf8(file).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["message"].clone(), first["email"].clone()),
        (json!("+1 for the feature"), json!("asker1@example.org"))
    );
    for (body, field) in [
        (json!({"of": "messages", "columns": ["id"]}), "columns"),
        (json!({"of": "messages", "filter": {"tag": "vip"}}), "filter"),
        (
            json!({"of": "contact_messages", "include_deleted": true}),
            "include_deleted",
        ),
        (json!({"of": "letters"}), "of"),
    ] {
        let r = app
            .post(&format!("/v1/projects/{}/exports", p.id), &p.key, body.clone())
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {:?}",
            r.body
        );
    }
}

async fn wait_export(app: &TestApp, p: &TestProject, id: &str) -> Value {
    let url = format!("/v1/projects/{}/exports/{id}", p.id);
    for _ in 0..200 {
        let r = app.get(&url, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        if ["completed", "failed", "cancelled"].contains(&r.body["state"].as_str().unwrap()) {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("export {id} did not end");
}

/// Starts an async export, waits for it to complete, and returns it with
/// its file (whose SHA-256 the manifest states).
async fn completed_export(app: &TestApp, p: &TestProject, body: Value) -> (Value, Vec<u8>) {
    let r = app.post(&format!("/v1/projects/{}/exports", p.id), &p.key, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let done = wait_export(app, p, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed", "{done}");
    let file = fetch(app, done["download_url"].as_str().unwrap()).await;
    assert_eq!(done["manifest"]["sha256"].as_str(), Some(sha256_hex(&file).as_str()));
    (done, file)
}

async fn fetch(app: &TestApp, url: &str) -> Vec<u8> {
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.bytes().await.unwrap().to_vec()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn an_async_export_is_the_audience_with_its_manifest_in_csv_and_json_lines() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let mut vip = BTreeSet::new();
    for i in 0..30 {
        let tags = if i % 3 == 0 { json!(["vip"]) } else { json!([]) };
        let email = format!("a{i:02}@example.com");
        upsert(
            &app,
            &p,
            json!({"email": email, "tags": tags, "labels": {"plan": format!("p{i}")}, "company": "=1+1"}),
        )
        .await;
        if i % 3 == 0 {
            vip.insert(email);
        }
    }
    let r = app
        .post(
            &format!("/v1/projects/{}/exports", p.id),
            &p.key,
            json!({"filter": {"tag": "vip"}, "columns": ["email", "label:plan", "company"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["state"], "pending");
    let id = r.body["id"].as_str().unwrap().to_string();
    let done = wait_export(&app, &p, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        (
            done["rows_written"].as_u64(),
            done["total"].as_u64(),
            done["percent"].as_f64()
        ),
        (Some(10), Some(10), Some(100.0))
    );
    let file = fetch(&app, done["download_url"].as_str().unwrap()).await;
    let manifest = &done["manifest"];
    assert_eq!(manifest["rows"], 10);
    assert_eq!(manifest["bytes"].as_u64(), Some(file.len() as u64));
    assert_eq!(manifest["sha256"].as_str(), Some(sha256_hex(&file).as_str()));
    assert_eq!(manifest["columns"], json!(["email", "label:plan", "company"]));
    assert_eq!(manifest["filter"]["tag"], "vip");
    let mut reader = csv::Reader::from_reader(&file[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["email", "label:plan", "company"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let emails: BTreeSet<String> = rows.iter().map(|r| r[0].to_string()).collect();
    assert_eq!(emails, vip);
    assert_eq!(rows.len(), vip.len(), "none twice");
    assert!(rows.iter().all(|r| &r[2] == "'=1+1"));
    assert_eq!(
        rows.iter().find(|r| &r[0] == "a03@example.com").unwrap()[1].to_string(),
        "p3"
    );

    // A fresh link while the file is kept; the list; no cancelling what has ended.
    let l = app
        .post(&format!("/v1/projects/{}/exports/{id}/link", p.id), &p.key, json!({}))
        .await;
    assert_eq!(l.status, StatusCode::OK);
    assert_eq!(fetch(&app, l.body["download_url"].as_str().unwrap()).await, file);
    let c = app
        .post(&format!("/v1/projects/{}/exports/{id}/cancel", p.id), &p.key, json!({}))
        .await;
    assert_eq!((c.status, c.code()), (StatusCode::CONFLICT, Some("wrong_state")));

    // JSON Lines: every line is JSON, values typed; the whole audience.
    let r = app
        .post(
            &format!("/v1/projects/{}/exports", p.id),
            &p.key,
            json!({"format": "jsonl", "columns": ["email", "tags", "referral_count"]}),
        )
        .await;
    let done = wait_export(&app, &p, r.body["id"].as_str().unwrap()).await;
    let file = fetch(&app, done["download_url"].as_str().unwrap()).await;
    let lines: Vec<Value> = String::from_utf8(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    let vip_line = lines.iter().find(|l| l["email"] == "a00@example.com").unwrap();
    assert_eq!(
        (vip_line["tags"].clone(), vip_line["referral_count"].clone()),
        (json!(["vip"]), json!(0))
    );
    let all = app.get(&format!("/v1/projects/{}/exports", p.id), &p.key).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);

    // Bad input: a clear 422, nothing started.
    for (body, field) in [
        (json!({"columns": ["nope"]}), "columns"),
        (json!({"format": "xml"}), "format"),
        (json!({"format": "jsonl", "bom": true}), "bom"),
        (
            json!({"include_deleted": true, "filter": {"q": "a0"}}),
            "include_deleted",
        ),
    ] {
        let r = app
            .post(&format!("/v1/projects/{}/exports", p.id), &p.key, body.clone())
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn deleted_contacts_are_exported_once_when_asked_for_and_never_listed() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let list_id = app.email_list(&p, "Members", "news@example.com").await;
    let (mut ids, mut everyone) = (Vec::new(), BTreeSet::new());
    for i in 0..12 {
        let email = format!("d{i:02}@example.com");
        let tags = if i % 2 == 0 { json!(["vip"]) } else { json!([]) };
        let lists = if i < 6 { json!([list_id]) } else { json!([]) };
        ids.push(upsert(&app, &p, json!({"email": email, "tags": tags, "add_to_lists": lists})).await);
        everyone.insert(email);
    }
    // Deleted: d00 and d02 (vip, members), d03 (member), d07; d09 deleted, then back.
    for i in [0, 2, 3, 7, 9] {
        let r = app
            .delete(&format!("/v1/projects/{}/contacts/{}", p.id, ids[i]), &p.key)
            .await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    upsert(&app, &p, json!({"email": "d09@example.com"})).await;
    let live = app
        .get(&format!("/v1/projects/{}/contacts?limit=100", p.id), &p.key)
        .await;
    assert_eq!(
        live.body["data"].as_array().unwrap().len(),
        8,
        "the lists never show deleted contacts"
    );

    let export = |filter: Value| {
        let (app, p) = (&app, &p);
        async move {
            let body = json!({"include_deleted": true, "filter": filter, "columns": ["email", "status", "deleted_at"]});
            let (done, file) = completed_export(app, p, body).await;
            assert_eq!(done["manifest"]["include_deleted"], true);
            assert_eq!(done["total"], done["rows_written"], "{done}");
            let mut reader = csv::Reader::from_reader(&file[..]);
            let rows: Vec<(String, String, String)> = reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    (r[0].to_string(), r[1].to_string(), r[2].to_string())
                })
                .collect();
            rows
        }
    };
    let all = export(json!({"all": true})).await;
    assert_eq!(all.len(), 12, "each contact once: {all:?}");
    assert_eq!(all.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>(), everyone);
    let deleted: BTreeSet<&str> = all.iter().filter(|r| r.1 == "deleted").map(|r| r.0.as_str()).collect();
    assert_eq!(
        deleted,
        BTreeSet::from([
            "d00@example.com",
            "d02@example.com",
            "d03@example.com",
            "d07@example.com"
        ])
    );
    // A deleted row has its deleted_at; a live one has none.
    assert!(all.iter().all(|r| (r.1 == "deleted") != r.2.is_empty()), "{all:?}");
    // Live contacts first, then the deleted ones.
    assert!(all[..8].iter().all(|r| r.1 != "deleted"), "{all:?}");

    let vip: BTreeSet<String> = export(json!({"tag": "vip"})).await.into_iter().map(|r| r.0).collect();
    let want: BTreeSet<String> = (0..12).step_by(2).map(|i| format!("d{i:02}@example.com")).collect();
    assert_eq!(vip, want);
    let members: BTreeSet<String> = export(json!({"list_id": list_id}))
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    let want: BTreeSet<String> = (0..6).map(|i| format!("d{i:02}@example.com")).collect();
    assert_eq!(members, want);

    // Without it: the live audience only.
    let r = app
        .post(
            &format!("/v1/projects/{}/exports", p.id),
            &p.key,
            json!({"columns": ["email"]}),
        )
        .await;
    let done = wait_export(&app, &p, r.body["id"].as_str().unwrap()).await;
    assert_eq!(done["rows_written"], 8);
}

#[tokio::test]
async fn an_export_whose_worker_died_is_taken_over_and_ends_with_an_exact_file() {
    let mut app = TestApp::spawn().await;
    let p = app.project().await;
    let mut everyone = BTreeSet::new();
    for i in 0..25 {
        let email = format!("k{i:02}@example.com");
        upsert(&app, &p, json!({"email": email})).await;
        everyone.insert(email);
    }
    // The message waits while no worker runs; a run that died has claimed the export.
    app.local.kill_workers();
    let r = app
        .post(
            &format!("/v1/projects/{}/exports", p.id),
            &p.key,
            json!({"columns": ["email"]}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let store = app.local.api().store.clone();
    assert!(store
        .start_export(&p.id, &id, "01DEAD0000000000000000000A", Some(25))
        .await
        .unwrap());
    let template = app.template.clone();
    let params = app.params.clone();
    app.local.start_workers(&template, &params).unwrap();
    let done = wait_export(&app, &p, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    // The dead run can neither report nor finish it now.
    assert!(!store
        .export_progress(&p.id, &id, "01DEAD0000000000000000000A", 3)
        .await
        .unwrap());
    let file = fetch(&app, done["download_url"].as_str().unwrap()).await;
    let mut reader = csv::Reader::from_reader(&file[..]);
    let emails: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(emails.len(), 25, "no row twice");
    assert_eq!(emails.into_iter().collect::<BTreeSet<_>>(), everyone, "no row lost");
    assert_eq!(done["manifest"]["sha256"].as_str(), Some(sha256_hex(&file).as_str()));
}

#[tokio::test]
async fn a_scheduled_export_runs_in_the_local_runner_within_its_period_and_lists_its_run() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("/v1/projects/{}/export-schedules", p.id);
    let mut everyone = BTreeSet::new();
    for i in 0..5 {
        let email = format!("s{i}@example.com");
        upsert(&app, &p, json!({"email": email})).await;
        everyone.insert(email);
    }
    for (body, field) in [
        (json!({"schedule": "every day"}), "schedule"),
        (json!({"schedule": "cron(0 9 * * MON *)"}), "schedule"),
        (
            json!({"schedule": "rate(1 day)", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (json!({"schedule": "rate(1 day)", "prefix": "../elsewhere"}), "prefix"),
        (json!({"schedule": "rate(1 day)", "columns": ["nope"]}), "columns"),
        (json!({}), "schedule"),
    ] {
        let r = app.post(&url, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {:?}",
            r.body
        );
    }
    // Mondays at 09:00 in Helsinki: the next run is a Monday, 09:00 there.
    let weekly = app
        .post(
            &url,
            &p.key,
            json!({"name": "Weekly", "schedule": "cron(0 9 ? * MON *)", "timezone": "Europe/Helsinki"}),
        )
        .await;
    assert_eq!(weekly.status, StatusCode::CREATED, "{:?}", weekly.body);
    let next: chrono::DateTime<chrono::Utc> = weekly.body["next_run_at"].as_str().unwrap().parse().unwrap();
    let local = next.with_timezone(&roster::domain::schedule::time_zone("Europe/Helsinki").unwrap());
    use chrono::{Datelike, Timelike};
    assert_eq!(
        (local.weekday(), local.hour(), local.minute()),
        (chrono::Weekday::Mon, 9, 0)
    );

    let r = app
        .post(
            &url,
            &p.key,
            json!({"name": "Minutely", "schedule": "rate(1 minute)", "columns": ["email"], "prefix": "daily-audience"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let created: chrono::DateTime<chrono::Utc> = r.body["created_at"].as_str().unwrap().parse().unwrap();
    let first: chrono::DateTime<chrono::Utc> = r.body["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (59..=60).contains(&(first - created).num_seconds()),
        "one period after it was made"
    );

    // The runner's own tick (every minute, as in template.yaml) starts the run.
    let runs_url = format!("{url}/{id}/runs");
    let mut run = Value::Null;
    for _ in 0..300 {
        let r = app.get(&runs_url, &p.key).await;
        if let Some(first) = r.body["data"].as_array().and_then(|d| d.first()) {
            if first["state"] == "completed" {
                run = first.clone();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(run["state"], "completed", "no completed run within two periods");
    assert_eq!(run["schedule_id"], id.as_str());
    let export = wait_export(&app, &p, run["id"].as_str().unwrap()).await;
    let file = fetch(&app, export["download_url"].as_str().unwrap()).await;
    let mut reader = csv::Reader::from_reader(&file[..]);
    let emails: BTreeSet<String> = reader.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(emails, everyone);
    assert!(
        export["download_url"]
            .as_str()
            .unwrap()
            .contains(&format!("/exports/{}/daily-audience/", p.id)),
        "a dated object under the prefix"
    );
    let s = app.get(&format!("{url}/{id}"), &p.key).await;
    assert_eq!(s.body["last_export_id"], run["id"]);
    let next: chrono::DateTime<chrono::Utc> = s.body["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(next > first, "moved on to the next period");

    // Paused: off the due list; deleted: gone, its exports kept.
    let r = app.patch(&format!("{url}/{id}"), &p.key, json!({"paused": true})).await;
    assert_eq!(
        (r.body["paused"].as_bool(), r.body["next_run_at"].is_null()),
        (Some(true), true)
    );
    let r = app
        .patch(&format!("{url}/{id}"), &p.key, json!({"paused": false}))
        .await;
    assert!(r.body["next_run_at"].is_string());
    let list = app.get(&url, &p.key).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    let r = app.delete(&format!("{url}/{id}"), &p.key).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("{url}/{id}"), &p.key).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(
            &format!("/v1/projects/{}/exports/{}", p.id, run["id"].as_str().unwrap()),
            &p.key
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_schedule_may_write_to_the_one_bucket_of_yours_the_deployment_grants() {
    let bucket = format!("dest-{}", ulid::Ulid::new().to_string().to_lowercase());
    let sdk = roster::aws::sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let app = TestApp::spawn_with(&[("ExportDestinationBucket", &bucket)]).await;
    let p = app.project().await;
    let url = format!("/v1/projects/{}/export-schedules", p.id);
    for i in 0..3 {
        upsert(&app, &p, json!({"email": format!("d{i}@example.com")})).await;
    }
    let r = app
        .post(
            &url,
            &p.key,
            json!({"schedule": "rate(1 day)", "bucket": "someone-elses-bucket"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bucket"))
    );
    let r = app
        .post(
            &url,
            &p.key,
            json!({"schedule": "rate(1 day)", "bucket": bucket, "prefix": "crm/contacts", "columns": ["email"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    // The scheduler's tick, as EventBridge Scheduler sends it, a day and a bit later.
    let at = (chrono::Utc::now() + chrono::Duration::hours(25)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    app.send_to_queue("ExportQueue", json!({"step": "tick", "at": at}).to_string())
        .await;
    let mut run = Value::Null;
    for _ in 0..100 {
        let r = app.get(&format!("{url}/{id}/runs"), &p.key).await;
        if let Some(first) = r.body["data"]
            .as_array()
            .and_then(|d| d.first())
            .filter(|f| f["state"] == "completed")
        {
            run = first.clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(run["bucket"], bucket.as_str(), "{run}");
    let export_id = run["id"].as_str().unwrap();
    let started: chrono::DateTime<chrono::Utc> = run["started_at"].as_str().unwrap().parse().unwrap();
    let key = format!("crm/contacts/{}/{export_id}.csv", started.format("%Y-%m-%d"));
    let object = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap();
    let file = object.body.collect().await.unwrap().into_bytes().to_vec();
    let mut reader = csv::Reader::from_reader(&file[..]);
    assert_eq!(reader.records().count(), 3);
    assert!(s3
        .head_object()
        .bucket(&bucket)
        .key(format!("{key}.manifest.json"))
        .send()
        .await
        .is_ok());
    // Its link is signed for that bucket.
    let v = app
        .get(&format!("/v1/projects/{}/exports/{export_id}", p.id), &p.key)
        .await;
    assert_eq!(fetch(&app, v.body["download_url"].as_str().unwrap()).await, file);
}

#[tokio::test]
async fn a_file_of_several_parts_is_uploaded_whole_and_in_order() {
    let app = TestApp::spawn().await;
    let files = roster::files::Files::new(app.local.clients.s3.clone(), app.bucket());
    let part = roster::files::PART_BYTES;
    // Written in uneven pieces that straddle the part boundaries: 2.5 parts.
    let whole: Vec<u8> = (0..part * 5 / 2).map(|i| (i % 251) as u8).collect();
    let mut upload = files.writer("tests/parts.bin", "application/octet-stream");
    for piece in whole.chunks(1_000_003) {
        upload.write(piece).await.unwrap();
    }
    upload.finish().await.unwrap();
    let back = files.get("tests/parts.bin").await.unwrap();
    assert_eq!(back.len(), whole.len());
    assert!(back == whole, "the parts come back whole and in order");
}

#[tokio::test]
async fn contacts_written_while_an_export_runs_are_never_lost_or_there_twice() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    // More than one page of contacts (pages are 1,000).
    let n = 2_300;
    let mut csv = String::from("email,first_name,company\n");
    for i in 0..n {
        csv.push_str(&format!("w{i:04}@example.com,W{i},Before\n"));
    }
    let job = app.import_file(&p, "w.csv", csv.into_bytes(), json!({})).await;
    assert_eq!(job.body["created"], n, "{:?}", job.body);
    let before: BTreeSet<String> = (0..n).map(|i| format!("w{i:04}@example.com")).collect();

    // While the export runs: existing contacts updated (oldest and newest
    // first, so that pages not read yet and pages read already both
    // change), new contacts created.
    let done = std::sync::atomic::AtomicBool::new(false);
    let writer = async {
        let mut k = 0usize;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let who = if k.is_multiple_of(2) {
                k / 2 % n
            } else {
                n - 1 - k / 2 % n
            };
            upsert(
                &app,
                &p,
                json!({"email": format!("w{who:04}@example.com"), "company": "During"}),
            )
            .await;
            upsert(&app, &p, json!({"email": format!("late{k}@example.com")})).await;
            k += 1;
        }
        k
    };
    let export = async {
        let r = app
            .post(
                &format!("/v1/projects/{}/exports", p.id),
                &p.key,
                json!({"columns": ["email", "company"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        let finished = wait_export(&app, &p, r.body["id"].as_str().unwrap()).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        finished
    };
    let (finished, writes) = tokio::join!(export, writer);
    assert_eq!(finished["state"], "completed", "{finished}");
    assert!(writes > 0, "the writes ran alongside the export");
    let file = fetch(&app, finished["download_url"].as_str().unwrap()).await;
    let mut reader = csv::Reader::from_reader(&file[..]);
    let emails: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_string()).collect();
    let unique: BTreeSet<String> = emails.iter().cloned().collect();
    assert_eq!(unique.len(), emails.len(), "no contact twice");
    assert!(
        before.is_subset(&unique),
        "every contact there before the export is in it"
    );
    assert!(unique.iter().all(|e| before.contains(e) || e.starts_with("late")));
    assert_eq!(finished["rows_written"].as_u64(), Some(emails.len() as u64));
}
