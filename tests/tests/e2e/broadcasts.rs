//! Broadcasts through the send queue and the send workers: counts that add
//! up, consent read at send time (an unsubscribe mid-broadcast), pause and
//! resume, a killed worker (no second copy, nobody skipped unclaimed), and a
//! schedule found too late marked missed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use reqwest::{Method, StatusCode};
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

struct Setup {
    p: TestProject,
    list_id: String,
    template_id: String,
    /// Contact id → address.
    contacts: Vec<(String, String)>,
}

/// A project sending at `rate` per second, an email list of `n` members, a template.
async fn setup(app: &TestApp, n: usize, rate: u32) -> Setup {
    let p = app.project().await;
    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            &p.key,
            json!({"email_from": "news@example.com", "send_rate": rate}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let list_id = app.email_list(&p, "Members", "news@example.com").await;
    let t = app
        .post(
            &format!("/v1/projects/{}/templates", p.id),
            &p.key,
            json!({"name": "Launch", "channel": "email", "subject": "News for {{ first_name | default(\"you\") }}",
                   "html": "<p>Hi {{ first_name }}</p><a href=\"{{ unsubscribe_url }}\">unsubscribe</a>", "text": "Hi {{ first_name }}"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let contacts: Vec<(String, String)> = stream::iter(0..n)
        .map(|i| {
            let (p, list_id, tag) = (&p, &list_id, &tag);
            async move {
                let email = format!("m{i}-{tag}@example.org");
                let r = app
                    .post(
                        &p.contacts(),
                        &p.key,
                        json!({"email": email, "first_name": format!("M{i}"), "add_to_lists": [list_id]}),
                    )
                    .await;
                assert!(r.status.is_success(), "{:?}", r.body);
                (r.body["id"].as_str().unwrap().to_string(), email)
            }
        })
        .buffered(8)
        .collect()
        .await;
    Setup {
        template_id: t.body["id"].as_str().unwrap().to_string(),
        p,
        list_id,
        contacts,
    }
}

fn url(p: &TestProject) -> String {
    format!("/v1/projects/{}/broadcasts", p.id)
}

async fn create(app: &TestApp, s: &Setup, extra: Value) -> String {
    let mut body =
        json!({"name": "Launch", "channel": "email", "template_id": s.template_id, "audience": {"list_id": s.list_id}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app.post(&url(&s.p), &s.p.key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["state"], "draft");
    r.body["id"].as_str().unwrap().to_string()
}

async fn act(app: &TestApp, p: &TestProject, id: &str, action: &str) -> roster_e2e::Reply {
    app.post(&format!("{}/{id}/{action}", url(p)), &p.key, json!({})).await
}

fn assert_adds_up(b: &Value) {
    let n = |k: &str| b[k].as_u64().unwrap_or(0);
    let by_reason: u64 = b["skipped_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, n("skipped"), "{b:?}");
    if b["recipients"].is_u64() {
        assert_eq!(
            n("queued") + n("sent") + n("skipped") + n("failed") + n("uncertain"),
            n("recipients"),
            "counts must add up: {b:?}"
        );
    }
}

/// Polls the broadcast (checking its counts add up at every read) until `done` holds.
async fn wait(app: &TestApp, p: &TestProject, id: &str, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = app.get(&format!("{}/{id}", url(p)), &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_adds_up(&r.body);
        if done(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "broadcast never got there: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many emails the emulator's SES took for each of these addresses.
async fn copies(app: &TestApp, addresses: &[String]) -> HashMap<String, usize> {
    let raws = app.raw_emails().await;
    addresses
        .iter()
        .map(|a| {
            let to = format!("To: {a}\r\n");
            (a.clone(), raws.iter().filter(|r| r.contains(&to)).count())
        })
        .collect()
}

async fn set_status(app: &TestApp, s: &Setup, cid: &str, status: &str) {
    let r = app
        .request(
            Method::PUT,
            &format!("/v1/projects/{}/lists/{}/contacts/{cid}", s.p.id, s.list_id),
            Some(&s.p.key),
            Some(json!({"status": status})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn a_broadcast_reaches_each_active_member_once_and_counts_every_skip() {
    let app = TestApp::spawn().await;
    let s = setup(&app, 30, 1000).await;
    set_status(&app, &s, &s.contacts[0].0, "unsubscribed").await;
    set_status(&app, &s, &s.contacts[1].0, "suppressed").await;
    let r = app.delete(&s.p.contact(&s.contacts[2].0), &s.p.key).await;
    assert!(r.status.is_success());
    let id = create(&app, &s, json!({})).await;
    let r = act(&app, &s.p, &id, "send").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(act(&app, &s.p, &id, "send").await.code(), Some("wrong_state"));
    let b = wait(&app, &s.p, &id, 60, |b| b["state"] == "completed").await;
    // A deleted contact leaves the list's audience when it is read.
    assert_eq!(b["recipients"], 29, "{b:?}");
    assert_eq!(
        (b["sent"].as_u64(), b["skipped"].as_u64(), b["failed"].as_u64()),
        (Some(27), Some(2), Some(0)),
        "{b:?}"
    );
    assert_eq!(b["skipped_by_reason"]["unsubscribed"], 1);
    assert_eq!(b["skipped_by_reason"]["suppressed"], 1);
    assert_eq!((b["queued"].as_u64(), b["percent"].as_f64()), (Some(0), Some(100.0)));
    let addresses: Vec<String> = s.contacts.iter().map(|c| c.1.clone()).collect();
    let copies = copies(&app, &addresses).await;
    for (i, a) in addresses.iter().enumerate() {
        assert_eq!(copies[a], usize::from(i >= 3), "{a}");
    }
    // Each message is on record with its broadcast, and carries its own unsubscribe link.
    let msgs = app
        .get(
            &format!("/v1/projects/{}/messages?broadcast_id={id}&limit=100", s.p.id),
            &s.p.key,
        )
        .await;
    assert_eq!(msgs.body["data"].as_array().unwrap().len(), 27, "{:?}", msgs.body);
    let listed = app.get(&url(&s.p), &s.p.key).await;
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
    assert_eq!(act(&app, &s.p, &id, "pause").await.code(), Some("wrong_state"));

    // Named by id, a contact deleted since, or not on the consent list, is skipped with its reason.
    let outsider = app
        .post(
            &s.p.contacts(),
            &s.p.key,
            json!({"email": format!("out-{}", s.contacts[3].1)}),
        )
        .await;
    let ids = json!([s.contacts[2].0, s.contacts[3].0, outsider.body["id"]]);
    let by_ids = create(&app, &s, json!({"audience": {"ids": ids}, "list_id": s.list_id})).await;
    act(&app, &s.p, &by_ids, "send").await;
    let b = wait(&app, &s.p, &by_ids, 60, |b| b["state"] == "completed").await;
    assert_eq!(
        (b["recipients"].as_u64(), b["sent"].as_u64()),
        (Some(3), Some(1)),
        "{b:?}"
    );
    assert_eq!(
        (
            b["skipped_by_reason"]["deleted"].as_u64(),
            b["skipped_by_reason"]["not_on_list"].as_u64()
        ),
        (Some(1), Some(1)),
        "{b:?}"
    );
}

#[tokio::test]
async fn an_unsubscribe_mid_broadcast_is_honoured_and_pause_resume_carries_on() {
    let app = TestApp::spawn().await;
    // 10 a second over 2 workers: one worker sends 5 a second, a batch of 50 in 10 s.
    let s = setup(&app, 120, 10).await;
    let id = create(&app, &s, json!({})).await;
    act(&app, &s.p, &id, "send").await;
    wait(&app, &s.p, &id, 60, |b| b["sent"].as_u64() >= Some(50)).await;
    let r = act(&app, &s.p, &id, "pause").await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("paused")),
        "{:?}",
        r.body
    );
    // Let the batch in flight (if any) land: every message it claimed is then counted.
    let mut reached: Vec<String> = Vec::new();
    let mut sent_before = 0;
    let mut settled = false;
    for _ in 0..60 {
        let paused = wait(&app, &s.p, &id, 30, |b| b["state"] == "paused").await;
        sent_before = paused["sent"].as_u64().unwrap();
        let msgs = app
            .get(
                &format!("/v1/projects/{}/messages?broadcast_id={id}&limit=1000", s.p.id),
                &s.p.key,
            )
            .await;
        reached = msgs.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["contact_id"].as_str().unwrap().to_string())
            .collect();
        // Settled: everything claimed is counted, and stays so (a batch that
        // began just before the pause claims its first recipient within 0.2 s).
        if reached.len() as u64 == sent_before {
            if settled {
                break;
            }
            settled = true;
        } else {
            settled = false;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(sent_before < 120, "{sent_before}");
    assert_eq!(reached.len() as u64, sent_before);
    // Everyone not reached yet unsubscribes now: they must get nothing.
    let rest: Vec<&(String, String)> = s.contacts.iter().filter(|c| !reached.contains(&c.0)).collect();
    for (cid, _) in &rest {
        set_status(&app, &s, cid, "unsubscribed").await;
    }
    let r = act(&app, &s.p, &id, "resume").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let b = wait(&app, &s.p, &id, 90, |b| b["state"] == "completed").await;
    assert_eq!(b["sent"].as_u64(), Some(sent_before), "{b:?}");
    assert_eq!(
        b["skipped_by_reason"]["unsubscribed"].as_u64(),
        Some(rest.len() as u64),
        "{b:?}"
    );
    let addresses: Vec<String> = rest.iter().map(|c| c.1.clone()).collect();
    assert!(copies(&app, &addresses).await.values().all(|n| *n == 0));
}

#[tokio::test]
async fn a_killed_send_worker_never_sends_a_second_copy_and_skips_no_one_unclaimed() {
    let mut app = TestApp::spawn().await;
    let s = setup(&app, 150, 10).await;
    let id = create(&app, &s, json!({})).await;
    act(&app, &s.p, &id, "send").await;
    wait(&app, &s.p, &id, 60, |b| b["sent"].as_u64() >= Some(50)).await;
    // Killed wherever it is (a batch may be half sent), then started again:
    // the chunk comes back once its visibility runs out.
    app.local.kill_workers();
    let template = app.template.clone();
    let params = app.params.clone();
    app.local.start_workers(&template, &params).unwrap();
    let b = wait(&app, &s.p, &id, 150, |b| b["state"] == "completed").await;
    let (sent, uncertain) = (b["sent"].as_u64().unwrap(), b["uncertain"].as_u64().unwrap());
    assert_eq!(
        sent + uncertain + b["skipped"].as_u64().unwrap() + b["failed"].as_u64().unwrap(),
        150,
        "{b:?}"
    );
    let addresses: Vec<String> = s.contacts.iter().map(|c| c.1.clone()).collect();
    let copies = copies(&app, &addresses).await;
    assert!(copies.values().all(|n| *n <= 1), "a second copy went out: {copies:?}");
    let emails: u64 = copies.values().map(|n| *n as u64).sum();
    assert!(
        sent <= emails && emails <= sent + uncertain,
        "{emails} emails for {b:?}"
    );
    // Everyone was claimed (a message on record) or skipped.
    let msgs = app
        .get(
            &format!("/v1/projects/{}/messages?broadcast_id={id}&limit=1000", s.p.id),
            &s.p.key,
        )
        .await;
    assert_eq!(
        msgs.body["data"].as_array().unwrap().len() as u64,
        sent + uncertain + b["failed"].as_u64().unwrap()
    );
}

async fn tick(app: &TestApp, at: chrono::DateTime<chrono::Utc>) {
    let body = json!({"step": "tick", "at": at.to_rfc3339()}).to_string();
    app.send_to_queue("SendQueue", body).await;
}

#[tokio::test]
async fn a_schedule_found_too_late_is_missed_and_one_on_time_is_sent() {
    let app = TestApp::spawn().await;
    let s = setup(&app, 3, 1000).await;
    let now = chrono::Utc::now();
    let r = app
        .post(&url(&s.p), &s.p.key, json!({"template_id": s.template_id, "audience": {"list_id": s.list_id}, "send_at": now - chrono::Duration::minutes(1)}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("send_at"))
    );
    let late = create(&app, &s, json!({"send_at": now + chrono::Duration::seconds(30)})).await;
    let on_time = create(&app, &s, json!({"send_at": now + chrono::Duration::seconds(31)})).await;
    for id in [&late, &on_time] {
        let r = act(&app, &s.p, id, "send").await;
        assert_eq!(
            (r.status, r.body["state"].as_str()),
            (StatusCode::ACCEPTED, Some("scheduled")),
            "{:?}",
            r.body
        );
    }
    // The on-time one is cancelled and sent again as a fresh draft would be; the
    // tick as Scheduler sends it, 2 hours after the late one's time (the
    // project's window is 60 minutes): nothing ran meanwhile.
    let r = act(&app, &s.p, &on_time, "cancel").await;
    assert_eq!(r.body["state"], "cancelled");
    tick(&app, now + chrono::Duration::hours(2)).await;
    let b = wait(&app, &s.p, &late, 30, |b| b["state"] == "missed").await;
    assert!(b["reason"].as_str().unwrap().contains("60 minutes"), "{b:?}");
    assert_eq!(b["sent"], 0);

    // A schedule the tick finds within the window is sent.
    let due = create(
        &app,
        &s,
        json!({"send_at": chrono::Utc::now() + chrono::Duration::seconds(2)}),
    )
    .await;
    act(&app, &s.p, &due, "send").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    tick(&app, chrono::Utc::now()).await;
    let b = wait(&app, &s.p, &due, 60, |b| b["state"] == "completed").await;
    assert_eq!(b["sent"], 3, "{b:?}");
    let addresses: Vec<String> = s.contacts.iter().map(|c| c.1.clone()).collect();
    // The late and the cancelled ones sent nothing: one email each, from the third.
    assert!(copies(&app, &addresses).await.values().all(|n| *n == 1));
}

#[tokio::test]
async fn drafts_are_checked_and_only_drafts_change() {
    let app = TestApp::spawn().await;
    let s = setup(&app, 1, 1000).await;
    for (body, field) in [
        (json!({"audience": {"list_id": s.list_id}}), "template_id"),
        (json!({"template_id": s.template_id}), "audience"),
        (
            json!({"template_id": s.template_id, "audience": {"list_id": s.list_id, "ids": ["x"]}}),
            "audience",
        ),
        (
            json!({"template_id": "00000000000000000000000003", "audience": {"list_id": s.list_id}}),
            "template_id",
        ),
        (
            json!({"template_id": s.template_id, "audience": {"list_id": "01J0000000000000000000000A"}}),
            "list_id",
        ),
        (
            json!({"template_id": s.template_id, "audience": {"list_id": s.list_id}, "from": "x@elsewhere.test"}),
            "from",
        ),
    ] {
        let r = app.post(&url(&s.p), &s.p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {:?}",
            r.body
        );
    }
    let id = create(&app, &s, json!({})).await;
    let r = app
        .patch(&format!("{}/{id}", url(&s.p)), &s.p.key, json!({"name": "Renamed"}))
        .await;
    assert_eq!((r.status, r.body["name"].as_str()), (StatusCode::OK, Some("Renamed")));
    act(&app, &s.p, &id, "send").await;
    wait(&app, &s.p, &id, 60, |b| b["state"] == "completed").await;
    let r = app
        .patch(&format!("{}/{id}", url(&s.p)), &s.p.key, json!({"name": "Again"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("wrong_state")));
    let other = app.project().await;
    let r = app
        .get(&format!("/v1/projects/{}/broadcasts/{id}", other.id), &other.key)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_complaint_rate_over_the_limit_after_1000_sends_pauses_the_broadcast() {
    let app = TestApp::spawn().await;
    // 60 a second over 2 workers: 1,000 sends take about half a minute, the rest as long.
    let s = setup(&app, 2000, 60).await;
    let id = create(&app, &s, json!({})).await;
    act(&app, &s.p, &id, "send").await;
    wait(&app, &s.p, &id, 120, |b| b["sent"].as_u64() >= Some(1000)).await;
    let msgs = app
        .get(
            &format!("/v1/projects/{}/messages?broadcast_id={id}&limit=50", s.p.id),
            &s.p.key,
        )
        .await;
    // Six sent ones (a claim in flight has no SES id yet).
    let sent: Vec<Value> = msgs.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["provider_id"].is_string())
        .take(6)
        .cloned()
        .collect();
    assert_eq!(sent.len(), 6);
    let fixture =
        std::fs::read_to_string(format!("{}/fixtures/ses/complaint.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    // Six complaints: over 0.3% of anything up to 2,000 sent.
    for m in &sent {
        let record = fixture
            .replace(
                "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                m["provider_id"].as_str().unwrap(),
            )
            .replace("recipient@example.com", m["to"].as_str().unwrap());
        let body =
            json!({"Type": "Notification", "MessageId": ulid::Ulid::new().to_string(), "Message": record}).to_string();
        app.send_to_queue("SesEventsQueue", body).await;
    }
    // Counted, each once; the pause comes as soon as the rate is over the limit.
    let b = wait(&app, &s.p, &id, 60, |b| b["state"] != "sending" && b["complained"] == 6).await;
    assert_eq!(b["state"], "paused", "{b:?}");
    assert!(b["reason"].as_str().unwrap().contains("complaints"), "{b:?}");
    assert_eq!(b["complained"], 6, "{b:?}");
    let r = act(&app, &s.p, &id, "cancel").await;
    assert_eq!(r.body["state"], "cancelled");
    assert!(r.body["sent"].as_u64().unwrap() < 2000, "{:?}", r.body);
}
