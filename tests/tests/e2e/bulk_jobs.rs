//! Bulk selections over 1,000 contacts: a job through SQS with progress and
//! a final count, acting on the selection as it was when the job started;
//! delivered twice, it still counts every contact once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use roster::usecases::bulk::{self, BulkMessage};
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

const PEOPLE: usize = 1_050;

async fn import_people(app: &TestApp, p: &TestProject) {
    let mut csv = String::from("email,first_name\n");
    for i in 0..PEOPLE {
        csv.push_str(&format!("wave{i}@example.com,Person{i}\n"));
    }
    let job = app.import_file(p, "people.csv", csv.into_bytes(), json!({})).await;
    assert_eq!(
        (job.body["state"].as_str(), job.body["created"].as_u64()),
        (Some("completed"), Some(PEOPLE as u64)),
        "{:?}",
        job.body
    );
}

fn check_adds_up(job: &Value) {
    let n = |k: &str| job[k].as_u64().unwrap_or(0);
    assert_eq!(n("updated") + n("failed"), n("processed"), "{job:?}");
    if let Some(matched) = job["matched"].as_u64() {
        assert!(n("processed") <= matched, "{job:?}");
    }
}

/// Polls the job until `until` holds (at most 3 minutes), checking the counts at every read.
async fn poll_job(app: &TestApp, p: &TestProject, location: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = app.get(location, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        check_adds_up(&r.body);
        if until(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "bulk job stuck: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tagged(app: &TestApp, p: &TestProject) -> Value {
    let r = app
        .get(&format!("{}?tags=wave&total=true&limit=1", p.contacts()), &p.key)
        .await;
    r.body["total"].clone()
}

#[tokio::test]
async fn a_selection_over_1000_contacts_runs_as_a_job_on_the_selection_it_started_with() {
    let mut app = TestApp::spawn_with(&[("BulkChunkIds", "400")]).await;
    let p = app.project().await;
    import_people(&app, &p).await;
    let bulk_url = format!("{}/bulk", p.contacts());

    // Everyone, by filter: more than 1,000 → 202 and a job.
    let r = app
        .post(
            &bulk_url,
            &p.key,
            json!({"selection": {"filter": {"all": true}}, "action": "tag", "tags": ["Wave"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/v1/projects/{}/bulk-jobs/{}", p.id, r.body["id"].as_str().unwrap())
    );
    assert_eq!(
        (r.body["action"].as_str(), r.body["processed"].as_u64()),
        (Some("tag"), Some(0))
    );

    // Once the selection is read, a new contact is not part of it.
    let started = poll_job(&app, &p, &location, |j| j["matched"].is_u64()).await;
    assert_eq!(started["matched"], PEOPLE);
    let late = app
        .post(&p.contacts(), &p.key, json!({"email": "late@example.com"}))
        .await;
    let late_id = late.body["id"].as_str().unwrap().to_string();

    let done = poll_job(&app, &p, &location, |j| {
        j["state"] != "pending" && j["state"] != "running"
    })
    .await;
    assert_eq!(
        (
            done["state"].as_str(),
            done["matched"].as_u64(),
            done["processed"].as_u64(),
            done["updated"].as_u64(),
            done["failed"].as_u64(),
            done["percent"].as_f64()
        ),
        (
            Some("completed"),
            Some(1050),
            Some(1050),
            Some(1050),
            Some(0),
            Some(100.0)
        ),
        "{done:?}"
    );
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    // Who carries the tag, counted from the membership index. (`contact_count` is
    // an ADD per contact; the emulator runs requests in threads without a lock,
    // so two ADDs racing on one item can lose an increment there, never on
    // DynamoDB: exact counts are checked where writes do not race, in tags.rs.)
    assert_eq!(tagged(&app, &p).await, 1050);
    assert_eq!(app.get(&p.contact(&late_id), &p.key).await.body["tags"], json!([]));

    // By ids (1,001 of them and two that are no contacts), with every message
    // handled twice, by calling the worker directly.
    app.local.kill_workers();
    let mut ids: Vec<Value> = app
        .all_contacts(&p)
        .await
        .into_iter()
        .filter(|c| c["id"] != late_id.as_str())
        .take(1001)
        .map(|c| c["id"].clone())
        .collect();
    ids.push(json!("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    ids.push(json!("01ARZ3NDEKTSV4RRFFQ69G5FAW"));
    let r = app
        .post(
            &bulk_url,
            &p.key,
            json!({"selection": {"ids": ids}, "action": "untag", "tags": ["wave"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(
        (r.body["state"].as_str(), r.body["matched"].as_u64()),
        (Some("pending"), Some(1003))
    );
    let job_id = r.body["id"].as_str().unwrap().to_string();
    let jobs = app.local.api().jobs.clone().unwrap();
    let plan = serde_json::to_string(&BulkMessage::Plan {
        project_id: p.id.clone(),
        job_id: job_id.clone(),
    })
    .unwrap();
    bulk::handle_message(&jobs, &plan).await.unwrap();
    bulk::handle_message(&jobs, &plan).await.unwrap();
    for chunk in 0..3 {
        let message = serde_json::to_string(&BulkMessage::Chunk {
            project_id: p.id.clone(),
            job_id: job_id.clone(),
            chunk,
        })
        .unwrap();
        // Delivered twice, one after the other. (At the same time the ledger's
        // conditional commit decides, and DynamoDB makes that atomic; the
        // emulator runs requests in threads without a lock and, under load,
        // was seen letting two racing conditional writes both through.)
        bulk::handle_message(&jobs, &message).await.unwrap();
        bulk::handle_message(&jobs, &message).await.unwrap();
    }
    // A late delivery that read the ledger before a batch was committed cannot commit it again.
    let stale = roster::domain::bulk::BatchOutcome {
        updated: 100,
        ..Default::default()
    };
    assert!(!jobs
        .store
        .commit_bulk_batch(&p.id, &job_id, 0, (0, 100), &stale)
        .await
        .unwrap());
    let done = app
        .get(&format!("/v1/projects/{}/bulk-jobs/{job_id}", p.id), &p.key)
        .await
        .body;
    assert_eq!(
        (
            done["state"].as_str(),
            done["matched"].as_u64(),
            done["processed"].as_u64(),
            done["updated"].as_u64(),
            done["failed"].as_u64()
        ),
        (Some("completed"), Some(1003), Some(1003), Some(1001), Some(2)),
        "{done:?}"
    );
    let failed: Vec<&str> = done["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAW"]);
    assert_eq!(tagged(&app, &p).await, 1050 - 1001);

    // Unknown jobs are 404; bad selections are refused before any job exists.
    let r = app.get(&format!("/v1/projects/{}/bulk-jobs/nope", p.id), &p.key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let too_many: Vec<String> = (0..10_001).map(|i| format!("id{i}")).collect();
    let r = app
        .post(
            &bulk_url,
            &p.key,
            json!({"selection": {"ids": too_many}, "action": "untag", "tags": ["x"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("selection.ids"))
    );
}
