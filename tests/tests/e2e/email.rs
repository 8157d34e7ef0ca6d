//! Email: one-off sends read back from the emulator's SES, the refusals that
//! send nothing, RFC 8058 one-click unsubscribe, and SES feedback events in
//! the shapes SNS and EventBridge deliver them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

/// A project that sends from the template's default sending domain.
async fn sending_project(app: &TestApp) -> TestProject {
    let p = app.project().await;
    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            &p.key,
            json!({"email_from": "news@example.com", "email_from_name": "Acme News", "reply_to": "help@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["email_from"], "news@example.com");
    assert_eq!(r.body["send_rate"], 10);
    p
}

#[tokio::test]
async fn sender_settings_are_checked_against_the_sending_domain() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("/v1/projects/{}", p.id);
    for (body, field) in [
        (json!({"email_from": "news@elsewhere.test"}), "email_from"),
        (json!({"email_from": "not an address"}), "email_from"),
        (json!({"reply_to": "nope"}), "reply_to"),
        (json!({"send_rate": 0}), "send_rate"),
        (json!({"missed_after_minutes": 20000}), "missed_after_minutes"),
    ] {
        let r = app.patch(&url, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {:?}",
            r.body
        );
    }
    let r = app
        .patch(
            &url,
            &p.key,
            json!({"email_from": "News@Mail.Example.com", "send_rate": 50}),
        )
        .await;
    assert_eq!(
        (r.body["email_from"].as_str(), r.body["send_rate"].as_u64()),
        (Some("news@mail.example.com"), Some(50))
    );
}

fn unique_address(tag: &str) -> String {
    format!("{tag}-{}@example.org", ulid::Ulid::new().to_string().to_lowercase())
}

async fn contact(app: &TestApp, p: &TestProject, body: Value) -> String {
    let r = app.post(&p.contacts(), &p.key, body).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn send(app: &TestApp, p: &TestProject, cid: &str, body: Value) -> roster_e2e::Reply {
    app.post(&format!("{}/messages", p.contact(cid)), &p.key, body).await
}

fn hello() -> Value {
    json!({"channel": "email", "subject": "Hi {{ first_name | default(\"there\") }}", "html": "<p>Hello {{ first_name }}</p>", "text": "Hello {{ first_name }}"})
}

/// The raw messages the emulator's SES took for `to`.
async fn sent_to(app: &TestApp, to: &str) -> Vec<String> {
    let to = format!("To: {to}\r\n");
    app.raw_emails().await.into_iter().filter(|r| r.contains(&to)).collect()
}

async fn email_list(app: &TestApp, p: &TestProject, name: &str) -> String {
    app.email_list(p, name, "news@example.com").await
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[tokio::test]
async fn a_one_off_email_is_sent_with_one_click_unsubscribe_and_recorded() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let to = unique_address("ann");
    let cid = contact(&app, &p, json!({"email": to, "first_name": "Ann <3"})).await;
    let r = send(&app, &p, &cid, hello()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["status"], "sent");
    assert_eq!(r.body["direction"], "outbound");
    assert_eq!(r.body["subject"], "Hi Ann <3");
    let mid = r.body["id"].as_str().unwrap().to_string();
    assert!(r.body["provider_id"].is_string());

    let raw = sent_to(&app, &to).await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    let raw = &raw[0];
    assert_eq!(header(raw, "List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    let link = header(raw, "List-Unsubscribe").unwrap();
    assert!(link.starts_with(&format!("<{}/v1/unsubscribe/", app.base)), "{link}");
    assert_eq!(header(raw, "From"), Some("\"Acme News\" <news@example.com>"));
    assert_eq!(header(raw, "Reply-To"), Some("help@example.com"));
    // Escaped in the html part only.
    assert!(raw.contains("Hello Ann &lt;3"), "{raw}");
    assert!(raw.contains("Hello Ann <3"), "{raw}");

    // On record: the contact's conversation, the project's messages, the counters, the timeline.
    let mine = app.get(&format!("{}/messages", p.contact(&cid)), &p.key).await;
    assert_eq!(mine.body["data"][0]["id"], mid.as_str());
    let all = app
        .get(
            &format!("/v1/projects/{}/messages?channel=email&status=sent", p.id),
            &p.key,
        )
        .await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1, "{:?}", all.body);
    let none = app
        .get(&format!("/v1/projects/{}/messages?direction=inbound", p.id), &p.key)
        .await;
    assert_eq!(none.body["data"].as_array().unwrap().len(), 0);
    let later = app
        .get(
            &format!("/v1/projects/{}/messages?since=2099-01-01T00:00:00Z", p.id),
            &p.key,
        )
        .await;
    assert_eq!(later.body["data"].as_array().unwrap().len(), 0);
    let c = app.get(&p.contact(&cid), &p.key).await;
    assert_eq!(
        (c.body["total_sends"].as_u64(), c.body["messages_out"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(c.body["last_sent_at"].is_string());
    let timeline = app.get(&format!("{}/timeline", p.contact(&cid)), &p.key).await;
    assert!(timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "message_sent"));
}

#[tokio::test]
async fn a_contact_who_may_not_receive_email_is_refused_and_nothing_is_sent() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let list_id = email_list(&app, &p, "News").await;
    let phone_only = contact(&app, &p, json!({"phone": "+14155552671"})).await;
    let r = send(&app, &p, &phone_only, hello()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some("no_address")),
        "{:?}",
        r.body
    );

    let to = unique_address("bob");
    let bob = contact(&app, &p, json!({"email": to})).await;
    let mut on_list = hello();
    on_list["list_id"] = json!(list_id);
    let r = send(&app, &p, &bob, on_list.clone()).await;
    assert_eq!(r.code(), Some("not_on_list"), "{:?}", r.body);
    let r = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/projects/{}/lists/{list_id}/contacts/{bob}", p.id),
            Some(&p.key),
            Some(json!({"status": "unsubscribed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = send(&app, &p, &bob, on_list).await;
    assert_eq!(r.code(), Some("unsubscribed"), "{:?}", r.body);

    let mut foreign = hello();
    foreign["from"] = json!("someone@elsewhere.test");
    let r = send(&app, &p, &bob, foreign).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("from")));
    let r = send(
        &app,
        &p,
        &bob,
        json!({"channel": "email", "subject": "{{ nope }}", "text": "t"}),
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("subject"))
    );

    let r = app.delete(&p.contact(&bob), &p.key).await;
    assert!(r.status.is_success());
    let r = send(&app, &p, &bob, hello()).await;
    assert!(matches!(r.code(), Some("deleted") | Some("not_found")), "{:?}", r.body);
    assert!(sent_to(&app, &to).await.is_empty());
    let all = app.get(&format!("/v1/projects/{}/messages", p.id), &p.key).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 0, "{:?}", all.body);
}

#[tokio::test]
async fn one_click_unsubscribe_takes_a_post_and_a_get_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let list_id = email_list(&app, &p, "Weekly").await;
    let to = unique_address("cy");
    let cid = contact(&app, &p, json!({"email": to, "add_to_lists": [list_id]})).await;
    let mut body = hello();
    body["list_id"] = json!(list_id);
    assert_eq!(send(&app, &p, &cid, body.clone()).await.status, StatusCode::ACCEPTED);
    let raw = sent_to(&app, &to).await.pop().unwrap();
    let link = header(&raw, "List-Unsubscribe").unwrap();
    let url = link.trim_start_matches('<').split('>').next().unwrap().to_string();
    let consent_before = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;

    // A link scanner's GET: a page with a button, nothing changed.
    let page = app.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\">") && html.contains("Weekly"),
        "{html}"
    );
    let consent_after_get = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;
    assert_eq!(consent_before.body, consent_after_get.body);

    // Tampered, or signed with another secret: 403 and nothing changed.
    let token = url.rsplit('/').next().unwrap();
    let mut tampered = token.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let forged = roster::domain::unsubscribe::Unsubscribe::verify(roster_e2e::SIGNING_SECRET.as_bytes(), token)
        .unwrap()
        .sign(b"another deployment's secret, 32 bytes");
    for bad in [tampered, forged, "garbage".to_string()] {
        let r = app
            .http
            .post(format!("{}/v1/unsubscribe/{bad}", app.base))
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{bad}");
    }
    let consent = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;
    assert_eq!(consent.body, consent_before.body);

    // The mail client's one-click POST (RFC 8058), no login; again changes nothing more.
    for _ in 0..2 {
        let r = app
            .http
            .post(&url)
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let subs = app.get(&format!("{}/lists", p.contact(&cid)), &p.key).await;
    assert_eq!(subs.body["data"][0]["status"], "unsubscribed", "{:?}", subs.body);
    let consent = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;
    let records = consent.body["data"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        (records[1]["to"].as_str(), records[1]["via"].as_str()),
        (Some("unsubscribed"), Some("email"))
    );
    let timeline = app.get(&format!("{}/timeline", p.contact(&cid)), &p.key).await;
    assert!(timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "list_changed"));
    assert_eq!(send(&app, &p, &cid, body).await.code(), Some("unsubscribed"));
}

/// The fixture, for this message, in the shape SNS or EventBridge delivers it.
fn ses_record(name: &str, ses_id: &str, to: &str, shape: &str) -> String {
    let path = format!("{}/fixtures/ses/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let record = std::fs::read_to_string(path)
        .unwrap()
        .replace("EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000", ses_id)
        .replace("recipient@example.com", to);
    match shape {
        "sns" => json!({
            "Type": "Notification",
            "MessageId": ulid::Ulid::new().to_string(),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:EmailEventsTopic",
            "Message": record,
            "Timestamp": "2017-08-05T00:41:03.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        })
        .to_string(),
        _ => json!({
            "version": "0",
            "id": ulid::Ulid::new().to_string(),
            "detail-type": "Email event",
            "source": "aws.ses",
            "account": "123456789012",
            "time": "2017-08-05T00:41:03Z",
            "region": "us-east-1",
            "resources": [],
            "detail": serde_json::from_str::<Value>(&record).unwrap()
        })
        .to_string(),
    }
}

async fn put_event(app: &TestApp, body: String) {
    app.send_to_queue("SesEventsQueue", body).await;
}

/// Polls the message until `done` holds (at most 30 s).
async fn wait_message(app: &TestApp, p: &TestProject, mid: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = app.get(&format!("/v1/projects/{}/messages/{mid}", p.id), &p.key).await;
        if done(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "message never got there: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sent_message(app: &TestApp, p: &TestProject, cid: &str, list_id: Option<&str>) -> (String, String) {
    let mut body = hello();
    if let Some(l) = list_id {
        body["list_id"] = json!(l);
    }
    let r = send(app, p, cid, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["provider_id"].as_str().unwrap().to_string(),
    )
}

fn history(m: &Value) -> Vec<String> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn ses_events_in_both_shapes_move_status_engagement_and_consent_once() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let to = unique_address("dee");
    let cid = contact(&app, &p, json!({"email": to})).await;
    let (mid, ses_id) = sent_message(&app, &p, &cid, None).await;

    // Send, delivery, open, click; the open and the click twice (a redelivery), in both shapes.
    for (name, shape) in [
        ("send", "sns"),
        ("delivery", "eventbridge"),
        ("open", "sns"),
        ("open", "eventbridge"),
        ("click", "eventbridge"),
        ("click", "sns"),
        ("delivery_delay", "sns"),
        ("bounce_transient", "eventbridge"),
    ] {
        put_event(&app, ses_record(name, &ses_id, &to, shape)).await;
    }
    let m = wait_message(&app, &p, &mid, |m| history(m).len() >= 8).await;
    assert_eq!(m["status"], "clicked", "{m:?}");
    let mut steps = history(&m);
    steps.sort();
    assert_eq!(
        steps,
        [
            "clicked",
            "delayed",
            "delayed",
            "delivered",
            "opened",
            "queued",
            "sent",
            "sent"
        ],
        "{m:?}"
    );
    let c = app.get(&p.contact(&cid), &p.key).await;
    assert_eq!(
        (c.body["total_opens"].as_u64(), c.body["total_clicks"].as_u64()),
        (Some(1), Some(1)),
        "{:?}",
        c.body
    );
    assert!(c.body["last_opened_at"].is_string() && c.body["last_clicked_at"].is_string());
    let timeline = app.get(&format!("{}/timeline", p.contact(&cid)), &p.key).await;
    let kinds: Vec<&str> = timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "email_open").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "email_click").count(), 1, "{kinds:?}");
    // A transient bounce is recorded only: still sendable.
    let (second, _) = sent_message(&app, &p, &cid, None).await;
    assert!(!second.is_empty());

    // A permanent bounce suppresses the address: no email goes to it afterwards.
    put_event(&app, ses_record("bounce_permanent", &ses_id, &to, "sns")).await;
    let m = wait_message(&app, &p, &mid, |m| m["status"] == "bounced").await;
    assert!(history(&m).contains(&"bounced".to_string()));
    let r = send(&app, &p, &cid, hello()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some("suppressed")),
        "{:?}",
        r.body
    );
}

#[tokio::test]
async fn a_complaint_unsubscribes_from_the_list_and_suppresses() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let list_id = email_list(&app, &p, "Promos").await;
    let to = unique_address("eve");
    let cid = contact(&app, &p, json!({"email": to, "add_to_lists": [list_id]})).await;
    let (mid, ses_id) = sent_message(&app, &p, &cid, Some(&list_id)).await;
    for shape in ["eventbridge", "sns"] {
        put_event(&app, ses_record("complaint", &ses_id, &to, shape)).await;
    }
    let m = wait_message(&app, &p, &mid, |m| m["status"] == "complained").await;
    assert_eq!(history(&m).iter().filter(|s| *s == "complained").count(), 1, "{m:?}");
    // The consent changes land after the status: wait for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let subs = app.get(&format!("{}/lists", p.contact(&cid)), &p.key).await;
        if subs.body["data"][0]["status"] == "suppressed" {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", subs.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let consent = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;
    let to_states: Vec<&str> = consent.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["to"].as_str())
        .collect();
    assert_eq!(
        to_states,
        ["active", "unsubscribed", "suppressed"],
        "{:?}",
        consent.body
    );
    let r = send(&app, &p, &cid, hello()).await;
    assert_eq!(r.code(), Some("suppressed"), "{:?}", r.body);
}

#[tokio::test]
async fn reject_and_rendering_failure_end_a_message_and_garbage_is_dropped() {
    let app = TestApp::spawn().await;
    let p = sending_project(&app).await;
    let to = unique_address("fay");
    let cid = contact(&app, &p, json!({"email": to})).await;
    let (rejected, ses_a) = sent_message(&app, &p, &cid, None).await;
    let (failed, ses_b) = sent_message(&app, &p, &cid, None).await;
    put_event(&app, "not json at all".to_string()).await;
    put_event(&app, ses_record("reject", &ses_a, &to, "sns")).await;
    put_event(&app, ses_record("rendering_failure", &ses_b, &to, "eventbridge")).await;
    let m = wait_message(&app, &p, &rejected, |m| m["status"] == "rejected").await;
    assert_eq!(
        m["history"].as_array().unwrap().last().unwrap()["detail"],
        "Bad content"
    );
    wait_message(&app, &p, &failed, |m| m["status"] == "failed").await;
}
