//! CSV imports end to end: presigned upload and dropped files, messy files,
//! mapping and preview, options and modes, progress that adds up, the error
//! report, cancel, and redelivery that never double counts.

use reqwest::StatusCode;
use roster_e2e::{assert_counts_add_up, fixture, TestApp, TestProject};
use serde_json::{json, Value};

#[tokio::test]
async fn a_messy_file_imports_with_exact_counts_and_an_error_report() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let list_id = app.email_list(&p, "News", "news@example.com").await;
    let setup = json!({"options": {"tag": "Imported", "list_id": list_id, "unmapped_as_labels": true}});
    let job = app.import_file(&p, "messy.csv", fixture("messy.csv"), setup).await;
    let b = &job.body;
    assert_eq!(b["state"], "completed", "{b:?}");
    assert_eq!(
        (b["encoding"].as_str(), b["delimiter"].as_str()),
        (Some("utf8-bom"), Some("semicolon"))
    );
    assert_eq!(
        b["mapping"],
        json!([
            "email",
            "full_name",
            "phone",
            "country_code",
            "company",
            "tags",
            "label:Shoe size",
            "city"
        ])
    );
    // 8 rows (blank lines and the all-empty row are not rows): ada twice (one contact),
    // grace, zoe, and a bad phone (kept without it: a warning); no identity (skipped);
    // a bad email, a ragged row (failed).
    let counts = |k: &str| b[k].as_u64().unwrap();
    assert_eq!(
        (
            counts("rows_total"),
            counts("processed"),
            counts("created"),
            counts("updated"),
            counts("skipped"),
            counts("failed")
        ),
        (8, 8, 4, 1, 1, 2),
        "{b:?}"
    );
    assert_eq!(counts("warnings"), 1, "{b:?}");
    assert_eq!(b["percent"], 100.0);

    let ada = app.by_email(&p, "ada@example.com").await;
    assert_eq!(
        (ada["first_name"].as_str(), ada["last_name"].as_str()),
        (Some("Ada"), Some("Lovelace"))
    );
    assert_eq!(
        ada["phone"], "+447911123456",
        "national number completed by the country-code column"
    );
    assert_eq!(ada["company"], "Analytical Engines; Ltd");
    assert_eq!(ada["source"], "import");
    assert_eq!(ada["labels"]["Shoe size"], "38");
    let mut tags: Vec<&str> = ada["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["Imported", "beta", "early", "vip"]);
    let grace = app.by_email(&p, "grace@example.com").await;
    // The quoted newline kept the field whole (text fields collapse white space).
    assert_eq!(grace["address"]["city"], "Arlington Virginia");
    assert_eq!(grace["phone"], "+14155552671");
    let zoe = app.by_email(&p, "zoe@example.com").await;
    assert_eq!(
        (zoe["full_name"].as_str(), zoe["company"].as_str()),
        (Some("Zoë Saldaña"), Some("Café Crème"))
    );
    assert_eq!(app.all_contacts(&p).await.len(), 4, "one contact per person");
    let bad_phone = app.by_email(&p, "bad-phone@example.com").await;
    assert_eq!(
        (bad_phone["phone"].clone(), bad_phone["phone_raw"].clone()),
        (Value::Null, json!("12"))
    );
    // Tags are looked up once a batch; each contact counts once (ada's two rows too).
    assert_eq!(app.tag_named(&p, "Imported").await["contact_count"], 4);
    assert_eq!(app.tag_named(&p, "vip").await["contact_count"], 1);
    let subs = app
        .get(&format!("{}/lists", p.contact(ada["id"].as_str().unwrap())), &p.key)
        .await;
    assert_eq!(subs.body["data"][0]["via"], "import", "{:?}", subs.body);

    // The report: one line per failed, skipped or warned row, with its line and values.
    let url = b["error_report_url"].as_str().expect("a report link");
    let report = app.http.get(url).send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    assert_eq!(lines[0], "row,outcome,reason,values");
    let mut rest = lines[1..].to_vec();
    rest.sort_by_key(|l| l.split(',').next().and_then(|n| n.parse::<u64>().ok()));
    assert_eq!(
        rest[0],
        "7,failed,email is not a valid address,\"not-an-email,Bad Row,,,,,,\""
    );
    assert_eq!(
        rest[1],
        "8,skipped,\"has no email, phone or external id\",\",Nobody Here,,,,,,\""
    );
    assert_eq!(
        rest[2],
        "9,failed,has 3 fields where the header has 8,\"ragged@example.com,Too,Few\""
    );
    assert!(
        rest[3].starts_with("12,warning,\"phone \"\"12\"\": phone is not"),
        "{report}"
    );
}

#[tokio::test]
async fn files_dropped_in_the_bucket_import_with_auto_mapping_in_any_encoding() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.drop_file(
        &format!("imports/{}/From Excel (Windows).csv", p.id),
        fixture("windows1252.csv"),
    )
    .await;
    app.drop_file(&format!("imports/{}/unicode text.txt", p.id), fixture("unicode.txt"))
        .await;
    app.drop_file(&format!("imports/{}/pipes.txt", p.id), fixture("pipes.txt"))
        .await;
    app.drop_file(&format!("imports/{}/no bom.csv", p.id), fixture("utf16_no_bom.csv"))
        .await;
    // The dropped files become jobs of their own.
    let mut jobs = Vec::new();
    for _ in 0..150 {
        jobs = app.get(&p.imports(), &p.key).await.body["data"]
            .as_array()
            .unwrap()
            .clone();
        if jobs.len() == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    for job in &jobs {
        let done = app.wait_import(&p, job["id"].as_str().unwrap()).await;
        assert_eq!(done.body["state"], "completed", "{:?}", done.body);
        match done.body["filename"].as_str().unwrap() {
            "From Excel (Windows).csv" => assert_eq!(done.body["encoding"], "windows1252"),
            "unicode text.txt" => {
                assert_eq!(
                    (done.body["encoding"].as_str(), done.body["delimiter"].as_str()),
                    (Some("utf16le"), Some("tab"))
                )
            }
            "no bom.csv" => {
                assert_eq!(
                    (done.body["encoding"].as_str(), done.body["created"].as_u64()),
                    (Some("utf16le"), Some(2))
                )
            }
            "pipes.txt" => {
                assert_eq!(done.body["delimiter"], "pipe");
                assert_eq!(
                    (done.body["created"].as_u64(), done.body["failed"].as_u64()),
                    (Some(2), Some(1))
                );
            }
            other => panic!("unexpected job {other}"),
        }
    }
    let rene = app.by_email(&p, "rene@example.com").await;
    assert_eq!(
        (rene["first_name"].as_str(), rene["last_name"].as_str()),
        (Some("René"), Some("Müller"))
    );
    assert_eq!(rene["company"], "Société Générale");
    assert_eq!(app.by_email(&p, "lars@example.com").await["last_name"], "Ørsted");
    let bjork = app.by_email(&p, "bjork@example.com").await;
    assert_eq!(bjork["last_name"], "Guðmundsdóttir");
    assert_eq!(app.by_email(&p, "jose@example.com").await["phone"], "+34612345678");
    let ann = app.by_email(&p, "ann@example.com").await;
    assert_eq!(
        (ann["type"].as_str(), ann["eid"].as_str()),
        (Some("customer"), Some("crm-1"))
    );
}

#[tokio::test]
async fn preview_shows_what_would_happen_then_start_applies_a_new_mapping() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "ann@example.com", "first_name": "Annie"}),
    )
    .await;
    let created = app
        .post(
            &p.imports(),
            &p.key,
            json!({"filename": "pipes.txt", "start": "manual"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let preview_path = format!("{}/{id}/preview", p.imports());
    let early = app.post(&preview_path, &p.key, json!({})).await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::CONFLICT, Some("file_missing"))
    );
    app.upload(created.body["upload_url"].as_str().unwrap(), fixture("pipes.txt"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        app.get(&format!("{}/{id}", p.imports()), &p.key).await.body["state"],
        "pending",
        "held until started"
    );

    let r = app.post(&preview_path, &p.key, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.body["encoding"].as_str(), r.body["delimiter"].as_str()),
        (Some("utf8"), Some("pipe"))
    );
    assert_eq!(r.body["headers"], json!(["email", "name", "type", "external id"]));
    assert_eq!(r.body["mapping"], json!(["email", "full_name", "type", "eid"]));
    let rows = r.body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0]["row"].as_u64(), rows[0]["outcome"].as_str()),
        (Some(2), Some("would_update"))
    );
    assert_eq!(rows[0]["values"]["first_name"], "Ann");
    assert_eq!(rows[0]["values"]["last_name"], "Lee");
    assert_eq!(rows[1]["outcome"], "would_fail");
    assert!(rows[1]["reason"].as_str().unwrap().contains("vendor"));
    assert_eq!(rows[2]["outcome"], "would_create");
    // Another mapping, tried first: the type column ignored.
    let r = app
        .post(
            &preview_path,
            &p.key,
            json!({"mapping": {"type": "ignore"}, "options": {"mode": "create_only"}}),
        )
        .await;
    let rows = r.body["rows"].as_array().unwrap();
    assert_eq!(r.body["mapping"], json!(["email", "full_name", null, "eid"]));
    assert_eq!(
        (rows[0]["outcome"].as_str(), rows[1]["outcome"].as_str()),
        (Some("would_skip"), Some("would_create"))
    );
    let bad = app
        .post(&preview_path, &p.key, json!({"mapping": {"nope": "email"}}))
        .await;
    assert_eq!(
        (bad.status, bad.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("mapping"))
    );

    let started = app
        .post(
            &format!("{}/{id}/start", p.imports()),
            &p.key,
            json!({"mapping": {"type": "ignore"}}),
        )
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let done = app.wait_import(&p, &id).await;
    assert_eq!(
        (
            done.body["created"].as_u64(),
            done.body["updated"].as_u64(),
            done.body["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{:?}",
        done.body
    );
    let again = app
        .post(&format!("{}/{id}/start", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn modes_and_blank_cells() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "old@example.com", "company": "Keep Ltd", "first_name": "Old"}),
    )
    .await;
    let file = "email,company,first name\nold@example.com,,Olde\nnew@example.com,New Co,New\n"
        .as_bytes()
        .to_vec();

    let r = app
        .import_file(&p, "a.csv", file.clone(), json!({"options": {"mode": "update_only"}}))
        .await;
    assert_eq!(
        (r.body["updated"].as_u64(), r.body["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{:?}",
        r.body
    );
    let old = app.by_email(&p, "old@example.com").await;
    assert_eq!(
        (old["company"].as_str(), old["first_name"].as_str()),
        (Some("Keep Ltd"), Some("Olde")),
        "an empty cell erases nothing"
    );
    assert!(app.by_email(&p, "new@example.com").await.is_null());

    let r = app
        .import_file(
            &p,
            "b.csv",
            file.clone(),
            json!({"options": {"mode": "create_only", "type": "customer"}}),
        )
        .await;
    assert_eq!(
        (r.body["created"].as_u64(), r.body["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{:?}",
        r.body
    );
    assert_eq!(app.by_email(&p, "new@example.com").await["type"], "customer");

    let r = app
        .import_file(&p, "c.csv", file, json!({"options": {"blank_overwrites": true}}))
        .await;
    assert_eq!(r.body["updated"].as_u64(), Some(2), "{:?}", r.body);
    assert!(
        app.by_email(&p, "old@example.com").await["company"].is_null(),
        "blank_overwrites clears"
    );
}

#[tokio::test]
async fn files_without_a_header_or_an_identity_column_fail_clearly() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app.import_file(&p, "x.csv", fixture("no_header.csv"), json!({})).await;
    assert_eq!(r.body["state"], "failed");
    assert!(r.body["error"].as_str().unwrap().contains("header row"), "{:?}", r.body);
    let r = app
        .import_file(&p, "y.csv", fixture("no_identity.csv"), json!({}))
        .await;
    assert_eq!(r.body["state"], "failed");
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("email, phone or external id"),
        "{:?}",
        r.body
    );
    let r = app.import_file(&p, "z.csv", Vec::new(), json!({})).await;
    assert_eq!(
        (r.body["state"].as_str(), r.body["error"].as_str()),
        (Some("failed"), Some("the file is empty"))
    );
    assert!(app.all_contacts(&p).await.is_empty(), "nothing stored");

    // Set-up errors are refused before any upload.
    let bad = app.post(&p.imports(), &p.key, json!({"filename": "x.xlsx"})).await;
    assert_eq!(
        (bad.status, bad.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("filename"))
    );
    let bad = app
        .post(
            &p.imports(),
            &p.key,
            json!({"filename": "x.csv", "options": {"list_id": "nope"}}),
        )
        .await;
    assert_eq!(bad.field(), Some("options.list_id"));
    let bad = app
        .post(
            &p.imports(),
            &p.key,
            json!({"filename": "x.csv", "mapping": {"a": "shoe"}}),
        )
        .await;
    assert_eq!(bad.field(), Some("mapping"));
    let other = app.project().await;
    let r = app.get(&p.imports(), &other.key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn workbooks_and_quotes_never_closed_are_refused_before_anything_is_stored() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let failed = |r: &roster_e2e::Reply| {
        assert_eq!(r.body["state"], "failed", "{:?}", r.body);
        r.body["error"].as_str().unwrap_or_default().to_string()
    };

    // An Excel workbook saved under a .csv name (a ZIP archive inside).
    let mut workbook = b"PK\x03\x04\x14\x00\x06\x00\x08\x00".to_vec();
    workbook.extend(std::iter::repeat_n(0u8, 300));
    let error = failed(&app.import_file(&p, "contacts.csv", workbook, json!({})).await);
    assert!(
        error.contains("Excel workbook (.xlsx)") && error.contains("save it as CSV"),
        "{error}"
    );

    // A quote opened on line 4 and never closed swallows lines 5 and 6: the
    // file is refused, rather than 3 contacts made and 2 silently lost.
    let error = failed(
        &app.import_file(&p, "quotes.csv", fixture("unclosed_quote.csv"), json!({}))
            .await,
    );
    assert!(error.contains("line 4") && error.contains("never closed"), "{error}");
    // The preview, which reads the whole of a small file, says the same.
    let held_id = app
        .held_import(&p, "quotes.csv", Some(fixture("unclosed_quote.csv")))
        .await;
    let preview = app
        .post(&format!("{}/{held_id}/preview", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(
        (
            preview.status,
            preview.field(),
            preview.body["error"]["message"].as_str()
        ),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("file"), Some(error.as_str())),
        "{:?}",
        preview.body
    );

    // The same, early in a file too big to read into one row: the scan stops
    // at 1 MiB, memory stays flat, and the message names where it started.
    let mut big = b"email,name\nann@example.com,Ann\n\nbob@example.com,\"Bob\n".to_vec();
    big.extend(std::iter::repeat_n(&b"someone@example.com,Some One\n"[..], 60_000).flatten());
    let error = failed(&app.import_file(&p, "big.csv", big, json!({})).await);
    assert!(error.contains("line 3") && error.contains("1 MiB"), "{error}");
    assert!(app.all_contacts(&p).await.is_empty(), "nothing stored");

    // Excel's `sep=;` first line names the delimiter; the header is line 2.
    let id = app.held_import(&p, "excel.csv", Some(fixture("excel_sep.csv"))).await;
    let preview = app
        .post(&format!("{}/{id}/preview", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(preview.body["delimiter"], "semicolon", "{:?}", preview.body);
    assert_eq!(preview.body["headers"], json!(["E-mail", "Name", "Company"]));
    assert_eq!(preview.body["rows"][0]["row"], 3);
    assert_eq!(preview.body["rows"][0]["values"]["company"], "Semi, Colon & Co");
    let started = app
        .post(&format!("{}/{id}/start", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let done = app.wait_import(&p, &id).await;
    assert_eq!(
        (done.body["state"].as_str(), done.body["created"].as_u64()),
        (Some("completed"), Some(2)),
        "{:?}",
        done.body
    );
    assert_eq!(app.by_email(&p, "sep2@example.com").await["last_name"], "Sep");
}

fn people(n: usize, dup_every: usize) -> Vec<u8> {
    let mut s = String::from("email,first_name,last_name,company\n");
    for i in 0..n {
        // Every `dup_every`-th row repeats an earlier person in upper case.
        let who = if dup_every > 0 && i % dup_every == dup_every - 1 {
            i - 1
        } else {
            i
        };
        let email = format!("person{who}@example.com");
        let email = if who != i { email.to_uppercase() } else { email };
        s.push_str(&format!("{email},First{who},Last{who},Co {}\n", who % 7));
    }
    s.into_bytes()
}

#[tokio::test]
async fn chunks_run_in_parallel_and_redelivery_never_double_counts() {
    let app = TestApp::spawn_with(&[("ImportChunkRows", "25")]).await;
    let p = app.project().await;
    let r = app.import_file(&p, "people.csv", people(120, 10), json!({})).await;
    let b = r.body.clone();
    assert_eq!(b["chunks_total"], 5);
    assert_eq!(
        (b["rows_total"].as_u64(), b["created"].as_u64(), b["updated"].as_u64()),
        (Some(120), Some(108), Some(12)),
        "{b:?}"
    );
    assert_eq!(app.all_contacts(&p).await.len(), 108);

    // Imported contacts are whole contacts: searchable, on the timeline, and
    // their referral codes work.
    let found = app.get(&format!("{}?q=person10", p.contacts()), &p.key).await;
    let emails: Vec<&str> = found.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert!(
        emails.contains(&"person10@example.com") && emails.contains(&"person100@example.com"),
        "{emails:?}"
    );
    let ten = &found.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["email"] == "person10@example.com")
        .unwrap()
        .clone();
    assert_eq!(ten["source"], "import");
    let timeline = app
        .get(&format!("{}/timeline", p.contact(ten["id"].as_str().unwrap())), &p.key)
        .await;
    assert_eq!(timeline.body["data"][0]["type"], "contact_created");
    let code = ten["referral_code"].as_str().unwrap();
    let signup = app
        .public(
            &p,
            "waitlist",
            "10.0.0.1",
            json!({"email": "friend@example.com", "ref": code}),
        )
        .await;
    assert!(signup.status.is_success(), "{:?}", signup.body);
    assert_eq!(
        app.get(&p.contact(ten["id"].as_str().unwrap()), &p.key).await.body["referral_count"],
        1
    );

    // The same file again: every row updates, nobody is created.
    let again = app.import_file(&p, "people.csv", people(120, 10), json!({})).await;
    assert_eq!(
        (again.body["created"].as_u64(), again.body["updated"].as_u64()),
        (Some(0), Some(120)),
        "{:?}",
        again.body
    );
    assert_eq!(app.all_contacts(&p).await.len(), 109, "108 imported and the friend");

    // Every chunk message delivered again, after the job completed: nothing changes.
    let id = b["id"].as_str().unwrap();
    for chunk in 0..5 {
        let message = json!({"step": "chunk", "project_id": p.id, "import_id": id, "chunk": chunk});
        assert!(!deliver(&app, message, 2).await);
    }
    let again = app.get(&format!("{}/{id}", p.imports()), &p.key).await;
    for k in [
        "rows_total",
        "processed",
        "created",
        "updated",
        "skipped",
        "failed",
        "state",
    ] {
        assert_eq!(again.body[k], b[k], "{k}");
    }
    assert_eq!(app.all_contacts(&p).await.len(), 109);
}

/// Starts an import of `file` and waits (at most 12 s) until 100 of its
/// rows are committed; its id.
async fn past_its_first_batch(app: &TestApp, p: &TestProject, file: Vec<u8>) -> String {
    let created = app.post(&p.imports(), &p.key, json!({"filename": "big.csv"})).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    app.upload(created.body["upload_url"].as_str().unwrap(), file).await;
    for _ in 0..600 {
        let r = app.get(&format!("{}/{id}", p.imports()), &p.key).await;
        if r.body["processed"].as_u64().unwrap_or(0) >= 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    id
}

#[tokio::test]
async fn killing_the_workers_mid_import_still_ends_with_exact_counts() {
    // One chunk of three batches (100, 100, 50 rows): killed after its first
    // batch, the chunk resumes in its middle, past the rows it committed.
    let mut app = TestApp::spawn_with(&[("ImportChunkRows", "250")]).await;
    let p = app.project().await;
    // Wait for a committed batch, then kill every worker wherever it is.
    let id = past_its_first_batch(&app, &p, people(300, 0)).await;
    app.local.kill_workers();
    let stopped = app.get(&format!("{}/{id}", p.imports()), &p.key).await;
    assert_eq!(stopped.body["state"], "running");
    let processed = stopped.body["processed"].as_u64().unwrap();
    assert!((100..300).contains(&processed), "{:?}", stopped.body);
    // A new runner picks the messages up again once they are visible.
    let params = app.params.clone();
    app.local.start_workers(&app.template, &params).unwrap();
    let done = app.wait_import(&p, &id).await;
    assert_eq!(
        (
            done.body["state"].as_str(),
            done.body["created"].as_u64(),
            done.body["processed"].as_u64()
        ),
        (Some("completed"), Some(300), Some(300)),
        "{:?}",
        done.body
    );
    assert_eq!(app.all_contacts(&p).await.len(), 300, "no duplicates");
}

#[tokio::test]
async fn a_file_uploaded_again_mid_import_leaves_both_imports_exact() {
    let mut app = TestApp::spawn_with(&[("ImportChunkRows", "250")]).await;
    let p = app.project().await;
    let key = format!("imports/{}/people.csv", p.id);
    // Four chunks of 250 (batches of up to 200 rows): the workers are
    // stopped with most of the file still to import.
    let rows = 1000;
    app.drop_file(&key, people(rows as usize, 0)).await;
    let first = loop {
        let list = app.get(&p.imports(), &p.key).await;
        let job = list.body["data"][0].clone();
        if let Some(id) = job["id"].as_str() {
            let r = app.get(&format!("{}/{id}", p.imports()), &p.key).await;
            if r.body["processed"].as_u64().unwrap_or(0) >= 100 {
                break id.to_string();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    app.local.kill_workers();
    let before = app.get(&format!("{}/{first}", p.imports()), &p.key).await.body;
    // Another file under the same key, its rows at other offsets.
    let mut other = String::from("email,company\n");
    for i in 0..40 {
        other.push_str(&format!("other{i}@example.org,Somewhere Else Incorporated {i}\n"));
    }
    app.drop_file(&key, other.into_bytes()).await;
    let params = app.params.clone();
    app.local.start_workers(&app.template, &params).unwrap();

    // The first import goes on reading the version it planned, to the end.
    let old = app.wait_import(&p, &first).await.body;
    assert_eq!(
        (
            old["state"].as_str(),
            old["created"].as_u64(),
            old["processed"].as_u64()
        ),
        (Some("completed"), Some(rows), Some(rows)),
        "{old:?}"
    );
    assert!(before["processed"].as_u64().unwrap() < rows, "{before:?}");
    let second = loop {
        let list = app.get(&p.imports(), &p.key).await;
        let other = list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] != first.as_str())
            .and_then(|j| j["id"].as_str().map(str::to_string));
        if let Some(id) = other {
            break app.wait_import(&p, &id).await.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        (second["state"].as_str(), second["created"].as_u64()),
        (Some("completed"), Some(40)),
        "{second:?}"
    );
    // Every contact is a row of one file or the other, whole.
    let all = app.all_contacts(&p).await;
    assert_eq!(all.len() as u64, rows + 40);
    for c in &all {
        let email = c["email"].as_str().unwrap();
        let whole = match email.strip_prefix("person") {
            Some(rest) => c["first_name"] == format!("First{}", rest.trim_end_matches("@example.com")),
            None => email.starts_with("other") && c["company"].as_str().unwrap().starts_with("Somewhere"),
        };
        assert!(whole, "{c:?}");
    }
}

#[tokio::test]
async fn identity_claims_made_together_are_all_or_none() {
    use roster::domain::contact::IdentityKind::Email;
    let app = TestApp::spawn().await;
    let sdk = roster::aws::sdk_config().await;
    let store = roster::store::Store::new(aws_sdk_dynamodb::Client::new(&sdk), app.table.clone());
    let claim = |v: &str, cid: &str| (Email, v.to_string(), cid.to_string());
    assert!(store
        .claim_all("p1", &[claim("a@x.io", "c1"), claim("b@x.io", "c2")])
        .await
        .unwrap());
    assert_eq!(
        store.identity_owner("p1", Email, "b@x.io").await.unwrap().as_deref(),
        Some("c2")
    );
    // One value already held: the transaction is refused and claims nothing.
    assert!(!store
        .claim_all(
            "p1",
            &[claim("c@x.io", "c3"), claim("a@x.io", "c3"), claim("d@x.io", "c4")]
        )
        .await
        .unwrap());
    assert_eq!(
        store.identity_owner("p1", Email, "a@x.io").await.unwrap().as_deref(),
        Some("c1")
    );
    for free in ["c@x.io", "d@x.io"] {
        assert_eq!(store.identity_owner("p1", Email, free).await.unwrap(), None, "{free}");
    }
    let too_many: Vec<_> = (0..101).map(|i| claim(&format!("{i}@x.io"), "c5")).collect();
    assert!(store.claim_all("p1", &too_many).await.is_err());

    // Rows whose transaction is refused are claimed one by one: the row that
    // meets a held value gets nothing and gives back what it took.
    let row = |cid: &str, values: &[&str]| {
        let values = values.iter().map(|v| (Email, v.to_string())).collect();
        (cid.to_string(), values)
    };
    let held = store
        .claim_rows(
            "p1",
            &[
                row("c6", &["e@x.io"]),
                row("c7", &["f@x.io", "a@x.io"]),
                row("c8", &["g@x.io", "h@x.io"]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(held, [true, false, true]);
    for (value, owner) in [
        ("e@x.io", Some("c6")),
        ("f@x.io", None),
        ("a@x.io", Some("c1")),
        ("h@x.io", Some("c8")),
    ] {
        assert_eq!(
            store.identity_owner("p1", Email, value).await.unwrap().as_deref(),
            owner,
            "{value}"
        );
    }
    // One value named by two rows: exactly one row gets it; the other keeps nothing.
    let twice = [row("c9", &["i@x.io"]), row("c10", &["j@x.io", "i@x.io"])];
    let held = store.claim_rows("p1", &twice).await.unwrap();
    assert!(held == [true, false] || held == [false, true], "{held:?}");
    let winner = if held[0] { "c9" } else { "c10" };
    assert_eq!(
        store.identity_owner("p1", Email, "i@x.io").await.unwrap().as_deref(),
        Some(winner)
    );
    let j = store.identity_owner("p1", Email, "j@x.io").await.unwrap();
    assert_eq!(j.as_deref(), if held[1] { Some("c10") } else { None });
    // 150 rows of one value each: two transactions, every row claimed.
    let many: Vec<_> = (0..150)
        .map(|i| row(&format!("m{i}"), &[&format!("m{i}@x.io")]))
        .collect();
    assert!(store.claim_rows("p1", &many).await.unwrap().iter().all(|ok| *ok));
    assert_eq!(
        store.identity_owner("p1", Email, "m149@x.io").await.unwrap().as_deref(),
        Some("m149")
    );
}

#[tokio::test]
async fn the_same_people_imported_twice_at_once_are_each_one_contact() {
    let app = TestApp::spawn_with(&[("ImportChunkRows", "40")]).await;
    let p = app.project().await;
    // The two jobs race for the same emails; a claim transaction that loses
    // one is redone row by row, so every person is created exactly once.
    let (a, b) = tokio::join!(
        app.import_file(&p, "a.csv", people(200, 0), json!({})),
        app.import_file(&p, "b.csv", people(200, 0), json!({}))
    );
    for r in [&a, &b] {
        assert_eq!(r.body["state"], "completed", "{:?}", r.body);
        assert_eq!(r.body["failed"], 0, "{:?}", r.body);
        assert_counts_add_up(&r.body);
    }
    let created = a.body["created"].as_u64().unwrap() + b.body["created"].as_u64().unwrap();
    let updated = a.body["updated"].as_u64().unwrap() + b.body["updated"].as_u64().unwrap();
    assert_eq!((created, updated), (200, 200), "{:?} {:?}", a.body, b.body);
    let all = app.all_contacts(&p).await;
    let emails: std::collections::HashSet<_> = all.iter().map(|c| c["email"].as_str().unwrap().to_string()).collect();
    assert_eq!((all.len(), emails.len()), (200, 200));
}

/// `n` people, every tenth with an email that is not one (its row fails).
fn people_some_bad(n: usize) -> Vec<u8> {
    let mut s = String::from("email,first_name\n");
    for i in 0..n {
        let email = if i % 10 == 9 {
            format!("bad{i}")
        } else {
            format!("person{i}@example.com")
        };
        s.push_str(&format!("{email},First{i}\n"));
    }
    s.into_bytes()
}

/// Polls a cancelled job until its report holds as many rows as it counted
/// failed and skipped (at most a minute); returns the job and the report's rows.
async fn cancelled_report(app: &TestApp, p: &TestProject, id: &str) -> (Value, Vec<String>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let job = app.wait_import(p, id).await.body;
        assert_eq!(job["state"], "cancelled", "{job:?}");
        let problems = job["failed"].as_u64().unwrap() + job["skipped"].as_u64().unwrap();
        let rows: Vec<String> = match job["error_report_url"].as_str() {
            Some(url) => {
                let report = app.http.get(url).send().await.unwrap().text().await.unwrap();
                assert!(report.starts_with("row,outcome,reason,values\n"), "{report}");
                report.lines().skip(1).map(str::to_string).collect()
            }
            None => Vec::new(),
        };
        if rows.len() as u64 == problems {
            return (job, rows);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the report has {} rows for {problems} counted: {job:?}",
            rows.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn cancel_stops_an_import_and_keeps_counts_consistent() {
    let app = TestApp::spawn_with(&[("ImportChunkRows", "50")]).await;
    let p = app.project().await;
    let created = app.post(&p.imports(), &p.key, json!({"filename": "c.csv"})).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    app.upload(created.body["upload_url"].as_str().unwrap(), people_some_bad(400))
        .await;
    let r = app
        .post(&format!("{}/{id}/cancel", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["state"], "cancelled");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // A batch already running when the cancel came finishes, is counted,
    // and its failed rows are in the report.
    let (after, report) = cancelled_report(&app, &p, &id).await;
    let processed = after["processed"].as_u64().unwrap();
    assert!(processed < 400, "{after:?}");
    assert_eq!(
        app.all_contacts(&p).await.len() as u64,
        after["created"].as_u64().unwrap()
    );
    assert!(
        report
            .iter()
            .all(|l| l.contains(",failed,email is not a valid address,\"bad")),
        "{report:?}"
    );
    let r = app
        .post(&format!("{}/{id}/cancel", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

/// Hands one message to the chunk worker, as the queue would: `receives`
/// is its ApproximateReceiveCount (more than 1: a delivery before it failed
/// or died). Whether the worker failed on it.
async fn deliver(app: &TestApp, body: Value, receives: u32) -> bool {
    let importer = app.local.state("files-api").unwrap().importer.clone().unwrap();
    let mut m = aws_lambda_events::sqs::SqsMessage::default();
    m.message_id = Some("by-hand".into());
    m.body = Some(body.to_string());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    let mut event = aws_lambda_events::sqs::SqsEvent::default();
    event.records.push(m);
    let out = roster::workers::chunk_batch(&importer, event).await;
    !out.batch_item_failures.is_empty()
}

/// Each chunk's committed rows (`next_row`), from the ledger.
async fn committed(app: &TestApp, p: &TestProject, id: &str) -> Vec<(u32, u64, u64)> {
    let store = &app.local.state("files-api").unwrap().importer.as_ref().unwrap().store;
    let (_, chunks) = store.import_with_chunks(&p.id, id).await.unwrap().unwrap();
    chunks.iter().map(|c| (c.chunk, c.next_row, c.rows)).collect()
}

#[tokio::test]
async fn a_cancelled_import_reports_the_rows_it_imported() {
    // One chunk of three batches (100, 100, 50 rows) and one of 50.
    let mut app = TestApp::spawn_with(&[("ImportChunkRows", "250")]).await;
    let p = app.project().await;
    let id = past_its_first_batch(&app, &p, people_some_bad(300)).await;
    // Killed wherever they are (perhaps half way through a batch), the
    // workers leave the rest to this test, which delivers by hand.
    app.local.kill_workers();
    let r = app
        .post(&format!("{}/{id}/cancel", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(r.body["state"], "cancelled", "{:?}", r.body);
    assert!(r.body["error_report_url"].is_null(), "{:?}", r.body);
    let at_cancel = committed(&app, &p, &id).await;

    // A chunk message seen for the first time after the cancel imports nothing;
    // one delivered before finishes the one batch its last delivery may have
    // been writing, so that whatever it wrote is counted.
    for (chunk, ..) in &at_cancel {
        let message = json!({"step": "chunk", "project_id": p.id, "import_id": id, "chunk": chunk});
        let before = committed(&app, &p, &id).await;
        assert!(!deliver(&app, message.clone(), 1).await);
        assert_eq!(committed(&app, &p, &id).await, before);
        assert!(!deliver(&app, message, 2).await);
    }
    let after: Vec<_> = at_cancel
        .iter()
        .map(|&(chunk, next, rows)| (chunk, (next + 100).min(rows), rows))
        .collect();
    assert_eq!(committed(&app, &p, &id).await, after, "at the cancel: {at_cancel:?}");

    // The report the cancel asked for, of every committed batch.
    let report = json!({"step": "cancelled_report", "project_id": p.id, "import_id": id});
    assert!(!deliver(&app, report, 1).await);
    let job = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
    let processed: u64 = after.iter().map(|(_, next, _)| next).sum();
    assert_eq!(job["processed"].as_u64(), Some(processed), "{job:?}");
    // Every tenth row of each batch failed; nothing else is reported.
    assert_eq!(job["failed"].as_u64(), Some(processed / 10), "{job:?}");
    assert_eq!(job["skipped"], 0);
    let url = job["error_report_url"].as_str().expect("a report link");
    let report = app.http.get(url).send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(lines.len() as u64, processed / 10, "{report}");
    for line in lines {
        // Row 0 of the file is on line 2.
        let row = line.split(',').next().unwrap().parse::<u64>().unwrap() - 2;
        assert_eq!(row % 10, 9, "{line}");
        assert!(line.ends_with(&format!("\"bad{row},First{row}\"")), "{line}");
    }
    // Whatever the killed workers wrote is counted.
    assert_eq!(
        app.all_contacts(&p).await.len() as u64,
        job["created"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn a_chunk_failing_on_its_last_try_fails_the_import_and_keeps_what_it_did() {
    let mut app = TestApp::spawn_with(&[("ImportChunkRows", "250")]).await;
    let p = app.project().await;
    // Windows-1252: the rows are read from a UTF-8 copy the planner writes.
    let mut file = b"email,first_name,company\n".to_vec();
    for i in 0..300 {
        let email = if i % 10 == 9 {
            format!("bad{i}")
        } else {
            format!("person{i}@example.com")
        };
        file.extend(format!("{email},First{i},Caf").into_bytes());
        file.extend(b"\xE9\n");
    }
    let id = past_its_first_batch(&app, &p, file).await;
    app.local.kill_workers();
    let job = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
    assert_eq!(job["encoding"], "windows1252", "{job:?}");
    assert!(
        committed(&app, &p, &id).await[0].1 < 250,
        "chunk 0 has rows left: {job:?}"
    );
    // The copy is gone: no delivery of chunk 0 can read its rows.
    let copy = job["data_key"].as_str().unwrap();
    app.local
        .clients
        .s3
        .delete_object()
        .bucket(app.bucket())
        .key(copy)
        .send()
        .await
        .unwrap();
    let message = json!({"step": "chunk", "project_id": p.id, "import_id": id, "chunk": 0});

    // Before the last try, the job waits for the next one.
    assert!(deliver(&app, message.clone(), 4).await);
    let running = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
    assert_eq!(running["state"], "running", "{running:?}");
    // On the last, the message goes to the dead-letter queue and the job fails, saying where.
    assert!(deliver(&app, message, 5).await);
    let job = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
    assert_eq!(job["state"], "failed", "{job:?}");
    let error = job["error"].as_str().unwrap();
    assert!(
        error.starts_with("the rows from line 2 on could not be imported after 5 tries"),
        "{error}"
    );
    assert!(
        !error.contains("NoSuchKey"),
        "internal details stay in the logs: {error}"
    );
    // The rows committed before stay, counted and reported. (A batch the
    // killed worker was half way through cannot be finished without the file:
    // those contacts stay, uncounted, as the job failed.)
    assert_eq!(job["processed"], running["processed"], "{job:?}");
    let contacts = app.all_contacts(&p).await.len() as u64;
    assert!(contacts >= job["created"].as_u64().unwrap(), "{contacts}: {job:?}");
    let url = job["error_report_url"].as_str().expect("a report link");
    let report = app.http.get(url).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        report.lines().count() as u64 - 1,
        job["failed"].as_u64().unwrap(),
        "{report}"
    );
}

#[tokio::test]
async fn planning_that_fails_on_its_last_try_fails_the_import() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let id = app.held_import(&p, "people.csv", Some(people(10, 0))).await;
    // A planner whose chunk queue does not exist: every try fails once the file is read.
    let mut planner = app.local.state("files-api").unwrap().importer.clone().unwrap();
    let nowhere = format!(
        "{}/000000000000/no-such-queue",
        std::env::var("AWS_ENDPOINT_URL").unwrap()
    );
    planner.chunk_queue = Some(roster::queue::Queue::new(app.local.clients.sqs.clone(), nowhere));
    let message = json!({"project_id": p.id, "import_id": id}).to_string();
    let tries = planner.max_receives;
    for receives in [1, tries - 1] {
        assert!(
            roster::usecases::imports::handle_plan_message(&planner, &message, receives)
                .await
                .is_err()
        );
        let job = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
        assert!(job["error"].is_null(), "it waits for the next try: {job:?}");
    }
    assert!(
        roster::usecases::imports::handle_plan_message(&planner, &message, tries)
            .await
            .is_err()
    );
    let job = app.get(&format!("{}/{id}", p.imports()), &p.key).await.body;
    assert_eq!(job["state"], "failed", "{job:?}");
    assert_eq!(
        job["error"],
        "the file could not be read into chunks after 5 tries (an internal error, logged)"
    );
    assert!(app.all_contacts(&p).await.is_empty());
}

#[tokio::test]
async fn a_classic_mac_file_keeps_its_accents_and_line_numbers() {
    // Mac Roman, every line ended by a CR alone (Excel for Mac's "CSV (Macintosh)").
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let id = app
        .held_import(&p, "old mac.csv", Some(fixture("mac_classic.csv")))
        .await;
    let preview = app
        .post(&format!("{}/{id}/preview", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(preview.body["encoding"], "mac-roman", "{:?}", preview.body);
    let rows = preview.body["rows"].as_array().unwrap();
    let lines: Vec<_> = rows.iter().map(|r| r["row"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 4, 5, 7, 8], "{:?}", preview.body);
    assert_eq!(rows[0]["values"]["last_name"], "Müller");

    let started = app
        .post(&format!("{}/{id}/start", p.imports()), &p.key, json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{:?}", started.body);
    let done = app.wait_import(&p, &id).await.body;
    assert_eq!(
        (
            done["state"].as_str(),
            done["encoding"].as_str(),
            done["created"].as_u64(),
            done["failed"].as_u64(),
            done["skipped"].as_u64()
        ),
        (Some("completed"), Some("mac-roman"), Some(3), Some(1), Some(1)),
        "{done:?}"
    );
    let rene = app.by_email(&p, "rene@example.com").await;
    assert_eq!(
        (rene["last_name"].as_str(), rene["company"].as_str()),
        (Some("Müller"), Some("Société Générale"))
    );
    assert_eq!(app.by_email(&p, "zoe@example.com").await["last_name"], "Ångström");
    assert_eq!(app.by_email(&p, "quoted@example.com").await["first_name"], "Multi Line");
    let url = done["error_report_url"].as_str().expect("a report link");
    let report = app.http.get(url).send().await.unwrap().text().await.unwrap();
    let mut lines: Vec<&str> = report.lines().skip(1).collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{report}");
    assert!(
        lines[0].starts_with("4,failed,email is not a valid address"),
        "{report}"
    );
    assert!(lines[1].starts_with("7,skipped,"), "{report}");
}
