//! SMS: sends through a local stand-in for Twilio's REST API (it records
//! what it was sent), inbound webhooks and status callbacks posted as
//! Twilio posts them (form-encoded, signed with `X-Twilio-Signature`),
//! keywords, tracked links and attributed revenue.

use std::time::Duration;

use reqwest::StatusCode;
use roster::domain::sms::signature;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8";
const OUR_NUMBER: &str = "+14155550100";

struct Sms {
    p: TestProject,
    list_id: String,
}

/// A project with Twilio set and an SMS list on our number.
async fn sms_project(app: &TestApp, per_second: Option<u32>) -> Sms {
    let p = app.project().await;
    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            &p.key,
            json!({"twilio_account_sid": SID, "twilio_auth_token": TOKEN, "sms_help_text": "Acme: help at acme.example"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut list = json!({"name": "Texts", "channel": "sms", "sender": OUR_NUMBER});
    if let Some(rate) = per_second {
        list["messages_per_second"] = json!(rate);
    }
    let r = app.post(&format!("/v1/projects/{}/lists", p.id), &p.key, list).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["messages_per_second"], per_second.unwrap_or(1));
    Sms {
        list_id: r.body["id"].as_str().unwrap().to_string(),
        p,
    }
}

/// A contact with this phone, active on the list (or with another status).
async fn member(app: &TestApp, s: &Sms, phone: &str, status: &str) -> String {
    let r = app
        .post(&s.p.contacts(), &s.p.key, json!({"phone": phone, "first_name": "Ann"}))
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let cid = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .request(
            reqwest::Method::PUT,
            &format!("/v1/projects/{}/lists/{}/contacts/{cid}", s.p.id, s.list_id),
            Some(&s.p.key),
            Some(json!({"status": status})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    cid
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Posts a webhook as Twilio does, signed for `signed_url` (default: the
/// URL it is posted to) with `token`, or unsigned.
async fn webhook(
    app: &TestApp,
    path: &str,
    form: &[(String, String)],
    token: Option<&str>,
    signed_url: Option<&str>,
) -> (StatusCode, String) {
    let url = format!("{}{path}", app.base);
    let mut req = app.http.post(&url).form(form);
    if let Some(t) = token {
        req = req.header("X-Twilio-Signature", signature(t, signed_url.unwrap_or(&url), form));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

fn inbound_form(sid: &str, from: &str, body: &str) -> Vec<(String, String)> {
    params(&[
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", OUR_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
        ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
    ])
}

fn status_form(sid: &str, status: &str, error: Option<&str>) -> Vec<(String, String)> {
    let mut f = params(&[
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", SID),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("From", OUR_NUMBER),
        ("ApiVersion", "2010-04-01"),
    ]);
    if let Some(code) = error {
        f.push(("ErrorCode".into(), code.into()));
    }
    f
}

fn inbound_path(p: &TestProject) -> String {
    format!("/v1/webhooks/twilio/{}/sms", p.id)
}

const EMPTY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

fn twiml(text: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>"#)
}

async fn send(app: &TestApp, s: &Sms, cid: &str, body: Value) -> roster_e2e::Reply {
    app.post(&format!("{}/messages", s.p.contact(cid)), &s.p.key, body)
        .await
}

async fn messages_of(app: &TestApp, s: &Sms, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/projects/{}/messages?{query}", s.p.id), &s.p.key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

async fn status_on_list(app: &TestApp, s: &Sms, cid: &str) -> String {
    let r = app.get(&format!("{}/lists", s.p.contact(cid)), &s.p.key).await;
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sub| sub["list_id"] == s.list_id.as_str())
        .map_or("none".into(), |sub| sub["status"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn twilio_settings_are_checked_and_the_token_never_returned() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("/v1/projects/{}", p.id);
    for (body, field) in [
        (json!({"twilio_account_sid": "AC123"}), "twilio_account_sid"),
        (
            json!({"twilio_account_sid": "MG0123456789abcdef0123456789abcdef"}),
            "twilio_account_sid",
        ),
        (json!({"twilio_auth_token": "short"}), "twilio_auth_token"),
        (
            json!({"twilio_messaging_service_sid": "AC0123456789abcdef0123456789abcdef"}),
            "twilio_messaging_service_sid",
        ),
        (json!({"sms_help_text": "  "}), "sms_help_text"),
    ] {
        let r = app.patch(&url, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let r = app.get(&url, &p.key).await;
    assert_eq!(r.body["twilio_auth_token_set"], false);
    let r = app
        .patch(
            &url,
            &p.key,
            json!({"twilio_account_sid": SID, "twilio_auth_token": TOKEN}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for r in [r, app.get(&url, &p.key).await] {
        assert_eq!(r.body["twilio_account_sid"], SID);
        assert_eq!(r.body["twilio_auth_token_set"], true);
        assert!(!r.body.to_string().contains(TOKEN), "{}", r.body);
        assert!(r.body["sms_help_text"].as_str().unwrap().contains("STOP"));
    }
    // A list's rate is SMS-only and bounded.
    let lists = format!("/v1/projects/{}/lists", p.id);
    let r = app
        .post(
            &lists,
            &p.key,
            json!({"name": "N", "channel": "email", "sender": "a@example.com", "messages_per_second": 5}),
        )
        .await;
    assert_eq!(r.field(), Some("messages_per_second"));
    let r = app
        .post(
            &lists,
            &p.key,
            json!({"name": "N", "channel": "sms", "sender": OUR_NUMBER, "messages_per_second": 0}),
        )
        .await;
    assert_eq!(r.field(), Some("messages_per_second"));
}

#[tokio::test]
async fn one_off_sms_goes_through_twilio_and_refusals_send_nothing() {
    let app = TestApp::spawn().await;
    let s = sms_project(&app, None).await;
    let cid = member(&app, &s, "+14155550111", "active").await;

    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Hi {{ first_name }}, your order shipped.", "list_id": s.list_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["status"], "accepted");
    assert_eq!(r.body["segments"], 1);
    assert_eq!(r.body["body"], "Hi Ann, your order shipped.");
    assert_eq!(
        (r.body["to"].as_str(), r.body["from"].as_str()),
        (Some("+14155550111"), Some(OUR_NUMBER))
    );
    let sent = app.twilio.sent();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(req.account_sid, SID);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"));
    assert_eq!(req.authorization.as_deref(), Some(format!("Basic {basic}").as_str()));
    assert_eq!(req.param("To"), Some("+14155550111"));
    assert_eq!(req.param("From"), Some(OUR_NUMBER));
    assert_eq!(req.param("Body"), Some("Hi Ann, your order shipped."));
    assert!(req
        .param("StatusCallback")
        .unwrap()
        .contains(&format!("/v1/webhooks/twilio/{}/status?cid={cid}&mid=", s.p.id)));
    assert_eq!(r.body["provider_id"].as_str(), req.sid.as_deref());
    let profile = app.get(&s.p.contact(&cid), &s.p.key).await;
    assert_eq!(
        (
            profile.body["total_sends"].as_u64(),
            profile.body["messages_out"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // UCS-2: 71 Cyrillic letters are two segments; the preview warns before sending.
    let long = "ж".repeat(71);
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": long, "list_id": s.list_id}),
    )
    .await;
    assert_eq!(r.body["segments"], 2, "{:?}", r.body);
    let t = app
        .post(
            &format!("/v1/projects/{}/templates", s.p.id),
            &s.p.key,
            json!({"name": "Emoji", "channel": "sms", "body": "Hi {{ first_name }} 🎉"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{:?}", t.body);
    let preview = app
        .post(
            &format!(
                "/v1/projects/{}/templates/{}/preview",
                s.p.id,
                t.body["id"].as_str().unwrap()
            ),
            &s.p.key,
            json!({"contact_id": cid}),
        )
        .await;
    assert_eq!(preview.body["sms"]["encoding"], "ucs2", "{:?}", preview.body);
    assert_eq!(preview.body["sms"]["ucs2_because"], json!(["🎉"]));
    assert!(preview.body["warning"].as_str().unwrap().contains("UCS-2"));

    // Throttled twice, then taken: sent once.
    app.twilio.throttle_next(2);
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Third", "list_id": s.list_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(app.twilio.sent().iter().filter(|q| q.sid.is_some()).count(), 3);

    // One-off sends from one number keep to its rate (1 a second here): three at once go out a second apart.
    let start = app.twilio.sent().len();
    let sends = (0..3).map(|i| {
        send(
            &app,
            &s,
            &cid,
            json!({"channel": "sms", "body": format!("burst {i}"), "list_id": s.list_id}),
        )
    });
    for r in futures::future::join_all(sends).await {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    }
    let burst: Vec<_> = app.twilio.sent()[start..].iter().map(|q| q.at).collect();
    assert_eq!(burst.len(), 3);
    assert!((burst[2] - burst[0]).num_milliseconds() >= 1000, "{burst:?}");

    // Refusals: nothing reaches Twilio.
    let before = app.twilio.sent().len();
    let opted = member(&app, &s, "+14155550112", "opted_out").await;
    let r = send(
        &app,
        &s,
        &opted,
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("opted_out")));
    let stranger = app
        .post(&s.p.contacts(), &s.p.key, json!({"phone": "+14155550113"}))
        .await;
    let stranger = stranger.body["id"].as_str().unwrap().to_string();
    let r = send(
        &app,
        &s,
        &stranger,
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("not_on_list")));
    let r = send(&app, &s, &cid, json!({"channel": "sms", "body": "x"})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("list_id"))
    );
    let emailonly = app
        .post(&s.p.contacts(), &s.p.key, json!({"email": "e@example.com"}))
        .await;
    let r = send(
        &app,
        &s,
        emailonly.body["id"].as_str().unwrap(),
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("no_address")));
    app.delete(&s.p.contact(&stranger), &s.p.key).await;
    let r = send(
        &app,
        &s,
        &stranger,
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("deleted")));
    assert_eq!(app.twilio.sent().len(), before);

    // Twilio 21610 (STOP at the carrier): not sent, and the subscription is opted out.
    let carrier = member(&app, &s, "+14155550114", "active").await;
    app.twilio
        .refuse("+14155550114", 400, 21610, "Attempt to send to unsubscribed recipient");
    let r = send(
        &app,
        &s,
        &carrier,
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, Some("opted_out")),
        "{:?}",
        r.body
    );
    assert_eq!(status_on_list(&app, &s, &carrier).await, "opted_out");
    // Another 4xx fails that message with Twilio's reason.
    let bad = member(&app, &s, "+14155550115", "active").await;
    app.twilio
        .refuse("+14155550115", 400, 21211, "Invalid 'To' Phone Number");
    let r = send(
        &app,
        &s,
        &bad,
        json!({"channel": "sms", "body": "x", "list_id": s.list_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("rejected")));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("21211"));
    let failed = messages_of(&app, &s, &format!("contact_id={bad}")).await;
    assert_eq!(failed[0]["status"], "rejected");
    assert!(failed[0]["error"]
        .as_str()
        .unwrap()
        .contains("Invalid 'To' Phone Number"));
}

#[tokio::test]
async fn webhooks_are_verified_and_inbound_messages_threaded() {
    let app = TestApp::spawn().await;
    let s = sms_project(&app, None).await;
    let path = inbound_path(&s.p);
    let form = inbound_form("SM00000000000000000000000000000001", "+14155550199", "Hello there");

    // Forged (another token), missing, or signed for another URL: 403, nothing stored.
    for (token, url) in [
        (Some("0000000000000000000000000000dead"), None),
        (None, None),
        (Some(TOKEN), Some("https://elsewhere.example/v1/webhooks")),
    ] {
        let (status, _) = webhook(&app, &path, &form, token, url).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let mut tampered = form.clone();
    let signed = signature(TOKEN, &format!("{}{path}", app.base), &form);
    tampered[5].1 = "Hello there!".into();
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .form(&tampered)
        .header("X-Twilio-Signature", signed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let unknown = webhook(
        &app,
        "/v1/webhooks/twilio/01J00000000000000000000000/sms",
        &form,
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(unknown.0, StatusCode::FORBIDDEN);
    assert!(messages_of(&app, &s, "").await.is_empty());
    let r = app
        .get(&format!("{}?phone=%2B14155550199", s.p.contacts()), &s.p.key)
        .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(0), "{:?}", r.body);

    // Signed right, with a query string in the URL: a new number becomes a contact, subscribed via inbound.
    let with_query = format!("{path}?source=twilio");
    let (status, body) = webhook(&app, &with_query, &form, Some(TOKEN), None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, EMPTY));
    let r = app
        .get(&format!("{}?phone=%2B14155550199", s.p.contacts()), &s.p.key)
        .await;
    let contact = r.body["data"][0].clone();
    let cid = contact["id"].as_str().unwrap().to_string();
    assert_eq!(contact["source"], "sms");
    assert_eq!(contact["messages_in"], 1);
    assert_eq!(status_on_list(&app, &s, &cid).await, "active");
    let subs = app.get(&format!("{}/lists", s.p.contact(&cid)), &s.p.key).await;
    assert_eq!(subs.body["data"][0]["via"], "inbound");
    let inbound = messages_of(&app, &s, "direction=inbound").await;
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        (
            inbound[0]["status"].as_str(),
            inbound[0]["body"].as_str(),
            inbound[0]["from"].as_str(),
            inbound[0]["to"].as_str()
        ),
        (
            Some("received"),
            Some("Hello there"),
            Some("+14155550199"),
            Some(OUR_NUMBER)
        )
    );
    assert_eq!(inbound[0]["list_id"], s.list_id.as_str());

    // Twilio retries (same MessageSid): the same answer, nothing changed.
    let (status, body) = webhook(&app, &with_query, &form, Some(TOKEN), None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, EMPTY));
    assert_eq!(messages_of(&app, &s, "direction=inbound").await.len(), 1);
    let again = app.get(&s.p.contact(&cid), &s.p.key).await;
    assert_eq!(again.body["messages_in"], 1);

    // The thread: our reply and theirs, on the contact's messages.
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Hi! How can we help?", "list_id": s.list_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let reply = inbound_form(
        "SM00000000000000000000000000000002",
        "+14155550199",
        "Where is my order?",
    );
    assert_eq!(webhook(&app, &path, &reply, Some(TOKEN), None).await.0, StatusCode::OK);
    let thread = app.get(&format!("{}/messages", s.p.contact(&cid)), &s.p.key).await;
    let bodies: Vec<&str> = thread.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["Where is my order?", "Hi! How can we help?", "Hello there"]);
    // Threaded per our number: another number of ours has no messages with them.
    let ours = app
        .get(
            &format!("{}/messages?channel=sms&number=%2B14155550100", s.p.contact(&cid)),
            &s.p.key,
        )
        .await;
    assert_eq!(ours.body["data"].as_array().unwrap().len(), 3);
    let other = app
        .get(
            &format!("{}/messages?number=%2B14155550101", s.p.contact(&cid)),
            &s.p.key,
        )
        .await;
    assert_eq!(other.body["data"].as_array().unwrap().len(), 0);
    let timeline = app.get(&format!("{}/timeline", s.p.contact(&cid)), &s.p.key).await;
    let kinds: Vec<&str> = timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "sms_received").count(), 2, "{kinds:?}");
}

#[tokio::test]
async fn the_default_port_may_be_written_or_left_out() {
    let app = TestApp::spawn_with(&[("PublicBaseUrl", "https://sms.example.test")]).await;
    let s = sms_project(&app, None).await;
    let path = inbound_path(&s.p);
    // Twilio was configured with the port written out, or without; the API knows its URL without it.
    // Another port is another URL.
    for (n, signed_for, expected) in [
        (3, "https://sms.example.test:443", StatusCode::OK),
        (4, "https://sms.example.test", StatusCode::OK),
        (5, "https://sms.example.test:8443", StatusCode::FORBIDDEN),
    ] {
        let form = inbound_form(&format!("SM{n:032}"), "+14155550198", "hi");
        let (status, _) = webhook(&app, &path, &form, Some(TOKEN), Some(&format!("{signed_for}{path}"))).await;
        assert_eq!(status, expected, "{signed_for}");
    }
    assert_eq!(messages_of(&app, &s, "direction=inbound").await.len(), 2);
}

#[tokio::test]
async fn keywords_change_consent_and_are_answered_in_twiml() {
    let app = TestApp::spawn().await;
    let s = sms_project(&app, None).await;
    let path = inbound_path(&s.p);
    let project = app.get(&format!("/v1/projects/{}", s.p.id), &s.p.key).await;
    let opt_out = project.body["sms_opt_out_text"].as_str().unwrap().to_string();
    let opt_in = project.body["sms_opt_in_text"].as_str().unwrap().to_string();
    let mut n = 10;
    let mut next_sid = || {
        n += 1;
        format!("SM{n:032}")
    };
    for (i, word) in [
        "STOP",
        " stop. ",
        "Unsubscribe",
        "cancel",
        "END",
        "quit",
        "Revoke",
        "OPTOUT",
    ]
    .iter()
    .enumerate()
    {
        let phone = format!("+1415555{:04}", 200 + i);
        let cid = member(&app, &s, &phone, "active").await;
        let (status, body) = webhook(&app, &path, &inbound_form(&next_sid(), &phone, word), Some(TOKEN), None).await;
        assert_eq!((status, body), (StatusCode::OK, twiml(&opt_out)), "{word:?}");
        assert_eq!(status_on_list(&app, &s, &cid).await, "opted_out", "{word:?}");
        let consent = app.get(&format!("{}/consent", s.p.contact(&cid)), &s.p.key).await;
        let last = consent.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["to"] == "opted_out")
            .cloned()
            .unwrap();
        assert_eq!(last["via"], "inbound", "{word:?}");
    }
    // START / UNSTOP / YES: active again, with a consent record each time.
    let phone = "+14155550300";
    let cid = member(&app, &s, phone, "active").await;
    for word in ["STOP", "start", "STOP", "Unstop", "STOP", "yes!"] {
        let (_, body) = webhook(&app, &path, &inbound_form(&next_sid(), phone, word), Some(TOKEN), None).await;
        let expected = if word == "STOP" { &opt_out } else { &opt_in };
        assert_eq!(&body, &twiml(expected), "{word}");
    }
    assert_eq!(status_on_list(&app, &s, &cid).await, "active");
    let consent = app.get(&format!("{}/consent", s.p.contact(&cid)), &s.p.key).await;
    assert_eq!(consent.body["data"].as_array().unwrap().len(), 7, "{:?}", consent.body);
    // An opted-in contact receives again.
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Welcome back", "list_id": s.list_id}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    // HELP / INFO: the project's help text, escaped; consent untouched.
    for word in ["help", "INFO?"] {
        let (_, body) = webhook(&app, &path, &inbound_form(&next_sid(), phone, word), Some(TOKEN), None).await;
        assert_eq!(body, twiml("Acme: help at acme.example"));
    }
    app.patch(
        &format!("/v1/projects/{}", s.p.id),
        &s.p.key,
        json!({"sms_help_text": "Tom & Jerry <help@acme.example>"}),
    )
    .await;
    let (_, body) = webhook(
        &app,
        &path,
        &inbound_form(&next_sid(), phone, "HELP"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(body, twiml("Tom &amp; Jerry &lt;help@acme.example&gt;"));
    assert_eq!(status_on_list(&app, &s, &cid).await, "active");
    // A sentence with a keyword in it is an ordinary message.
    let (_, body) = webhook(
        &app,
        &path,
        &inbound_form(&next_sid(), phone, "please stop texting at night"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(body, EMPTY);
    assert_eq!(status_on_list(&app, &s, &cid).await, "active");

    // STOPALL: every SMS list of the number's contact, and no SMS on a list joined later.
    let second = app
        .post(
            &format!("/v1/projects/{}/lists", s.p.id),
            &s.p.key,
            json!({"name": "Alerts", "channel": "sms", "sender": "+14155550101"}),
        )
        .await;
    let second_id = second.body["id"].as_str().unwrap().to_string();
    app.request(
        reqwest::Method::PUT,
        &format!("/v1/projects/{}/lists/{second_id}/contacts/{cid}", s.p.id),
        Some(&s.p.key),
        Some(json!({"status": "active"})),
    )
    .await;
    let (_, body) = webhook(
        &app,
        &path,
        &inbound_form(&next_sid(), phone, "STOPALL"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(body, twiml(&opt_out));
    let subs = app.get(&format!("{}/lists", s.p.contact(&cid)), &s.p.key).await;
    assert!(
        subs.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "opted_out"),
        "{:?}",
        subs.body
    );
    let before = app.twilio.sent().len();
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "x", "list_id": second_id}),
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("opted_out")));
    assert_eq!(app.twilio.sent().len(), before);
}

#[tokio::test]
async fn status_callbacks_move_messages_forward_only() {
    let app = TestApp::spawn().await;
    let s = sms_project(&app, None).await;
    let cid = member(&app, &s, "+14155550400", "active").await;
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Your code is 1234", "list_id": s.list_id}),
    )
    .await;
    let mid = r.body["id"].as_str().unwrap().to_string();
    let sid = r.body["provider_id"].as_str().unwrap().to_string();
    let callback = app.twilio.sent()[0].param("StatusCallback").unwrap().to_string();
    let path = callback.strip_prefix(&app.base).unwrap().to_string();
    let message_url = format!("/v1/projects/{}/messages/{mid}", s.p.id);

    // Unsigned or forged: nothing changes.
    assert_eq!(
        webhook(&app, &path, &status_form(&sid, "delivered", None), None, None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        webhook(
            &app,
            &path,
            &status_form(&sid, "delivered", None),
            Some("0000000000000000000000000000beef"),
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get(&message_url, &s.p.key).await.body["status"], "accepted");

    for (status, expected) in [
        ("queued", "accepted"),
        ("sending", "sending"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
        ("sending", "delivered"),
    ] {
        let (code, _) = webhook(&app, &path, &status_form(&sid, status, None), Some(TOKEN), None).await;
        assert_eq!(code, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get(&message_url, &s.p.key).await.body["status"],
            expected,
            "after {status}"
        );
    }
    let m = app.get(&message_url, &s.p.key).await.body;
    let history: Vec<&str> = m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    // Each status once, however often Twilio repeats it; the late `sent` is on record.
    assert_eq!(
        history,
        ["queued", "accepted", "accepted", "sending", "delivered", "sent"]
    );
    let timeline = app.get(&format!("{}/timeline", s.p.contact(&cid)), &s.p.key).await;
    assert!(timeline.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["type"] == "sms_delivered"));

    // Undelivered with an error code: final, the code kept; found by its SID alone too.
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Second", "list_id": s.list_id}),
    )
    .await;
    let sid2 = r.body["provider_id"].as_str().unwrap().to_string();
    let by_sid = format!("/v1/webhooks/twilio/{}/status", s.p.id);
    webhook(
        &app,
        &by_sid,
        &status_form(&sid2, "undelivered", Some("30003")),
        Some(TOKEN),
        None,
    )
    .await;
    webhook(&app, &by_sid, &status_form(&sid2, "sent", None), Some(TOKEN), None).await;
    let m = app
        .get(
            &format!("/v1/projects/{}/messages/{}", s.p.id, r.body["id"].as_str().unwrap()),
            &s.p.key,
        )
        .await
        .body;
    assert_eq!(
        (m["status"].as_str(), m["error"].as_str()),
        (Some("undelivered"), Some("Twilio error 30003"))
    );

    // 21610 in a callback: the number opted out at the carrier.
    let r = send(
        &app,
        &s,
        &cid,
        json!({"channel": "sms", "body": "Third", "list_id": s.list_id}),
    )
    .await;
    let sid3 = r.body["provider_id"].as_str().unwrap().to_string();
    webhook(
        &app,
        &by_sid,
        &status_form(&sid3, "failed", Some("21610")),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status_on_list(&app, &s, &cid).await, "opted_out");
}

#[tokio::test]
async fn sms_broadcasts_send_at_the_numbers_rate_and_track_clicks() {
    let app = TestApp::spawn().await;
    // 2 a second from the number; each of the 2 send workers takes half.
    let s = sms_project(&app, Some(2)).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(member(&app, &s, &format!("+1415555{:04}", 500 + i), "active").await);
    }
    let opted = member(&app, &s, "+14155550510", "opted_out").await;
    let carrier = member(&app, &s, "+14155550511", "active").await;
    app.twilio
        .refuse("+14155550511", 400, 21610, "Attempt to send to unsubscribed recipient");
    let t = app
        .post(&format!("/v1/projects/{}/templates", s.p.id), &s.p.key, json!({"name": "Sale", "channel": "sms", "body": "Hi {{ first_name }}: 20% off today https://shop.example/sale?c=1. Reply STOP to opt out"}))
        .await;
    let b = app
        .post(
            &format!("/v1/projects/{}/broadcasts", s.p.id),
            &s.p.key,
            json!({"name": "Sale", "channel": "sms", "template_id": t.body["id"], "audience": {"list_id": s.list_id}, "track_links": true}),
        )
        .await;
    assert_eq!(b.status, StatusCode::CREATED, "{:?}", b.body);
    assert_eq!(b.body["from"], OUR_NUMBER);
    let bid = b.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/projects/{}/broadcasts/{bid}/send", s.p.id),
            &s.p.key,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let url = format!("/v1/projects/{}/broadcasts/{bid}", s.p.id);
    let mut view = Value::Null;
    for _ in 0..120 {
        view = app.get(&url, &s.p.key).await.body;
        if view["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(
        (
            view["recipients"].as_u64(),
            view["sent"].as_u64(),
            view["failed"].as_u64()
        ),
        (Some(7), Some(5), Some(1)),
        "{view}"
    );
    assert_eq!(view["skipped_by_reason"]["opted_out"], 1);
    assert_eq!(status_on_list(&app, &s, &carrier).await, "opted_out");
    assert_eq!(status_on_list(&app, &s, &opted).await, "opted_out");

    // At the number's rate: one chunk, one worker, 1 a second.
    let taken: Vec<_> = app
        .twilio
        .sent()
        .into_iter()
        .filter(|q| q.param("To") != Some("+14155550511"))
        .collect();
    assert_eq!(taken.len(), 5);
    for pair in taken.windows(2) {
        let gap = (pair[1].at - pair[0].at).num_milliseconds();
        assert!(
            gap >= 900,
            "sends {gap} ms apart at 1/s: {:?}",
            taken.iter().map(|q| q.at).collect::<Vec<_>>()
        );
    }
    // Each recipient's link is their own short link; the segments are stored.
    let body = taken[0].param("Body").unwrap();
    assert!(!body.contains("shop.example"), "{body}");
    let short = body
        .split_whitespace()
        .find(|w| w.contains("/l/"))
        .unwrap()
        .trim_end_matches('.');
    let token = short.rsplit('/').next().unwrap().to_string();
    assert_eq!(token.len(), 22);
    let to = taken[0].param("To").unwrap().to_string();
    let msgs = messages_of(&app, &s, &format!("broadcast_id={bid}")).await;
    assert!(msgs.iter().all(|m| m["segments"].as_u64() >= Some(1)));

    // A click redirects at once and counts once per recipient and message.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..2 {
        let r = no_redirect.get(format!("{}/l/{token}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()["location"], "https://shop.example/sale?c=1");
    }
    let r = no_redirect
        .get(format!("{}/l/AAAAAAAAAAAAAAAAAAAAAA", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let clicker = app
        .get(
            &format!("{}?phone={}", s.p.contacts(), to.replace('+', "%2B")),
            &s.p.key,
        )
        .await
        .body["data"][0]
        .clone();
    let cid = clicker["id"].as_str().unwrap().to_string();
    assert_eq!(clicker["total_clicks"], 1);
    assert!(clicker["last_clicked_at"].is_string());
    let view = app.get(&url, &s.p.key).await.body;
    assert_eq!(view["clicked"], 1);

    // A purchase within the window is credited to the message and its broadcast; one without a click is not.
    let r = app
        .post(
            &format!("/v1/projects/{}/events", s.p.id),
            &s.p.key,
            json!({"type": "purchase", "contact_id": cid, "amount": 49.5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let other = ids.iter().find(|c| **c != cid).unwrap();
    app.post(
        &format!("/v1/projects/{}/events", s.p.id),
        &s.p.key,
        json!({"type": "purchase", "contact_id": other, "amount": 10}),
    )
    .await;
    let view = app.get(&url, &s.p.key).await.body;
    assert_eq!(view["revenue"], 49.5, "{view}");
    let m = messages_of(&app, &s, &format!("contact_id={cid}")).await;
    assert_eq!(m[0]["revenue"], 49.5);
    assert_eq!(m[0]["status"], "clicked");
    let timeline = app.get(&format!("{}/timeline", s.p.contact(&cid)), &s.p.key).await;
    assert_eq!(
        timeline.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"] == "link_click")
            .count(),
        1
    );
}

#[tokio::test]
async fn tracked_links_work_in_email_too() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.patch(
        &format!("/v1/projects/{}", p.id),
        &p.key,
        json!({"email_from": "news@example.com"}),
    )
    .await;
    let c = app
        .post(&p.contacts(), &p.key, json!({"email": "reader@example.org"}))
        .await;
    let cid = c.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("{}/messages", p.contact(&cid)),
            &p.key,
            json!({"channel": "email", "subject": "News", "text": "Read https://blog.example/post today",
                   "html": "<p><a href=\"https://blog.example/post\">Read</a></p>", "track_links": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let raw = app
        .raw_emails()
        .await
        .into_iter()
        .find(|m| m.contains("reader@example.org"))
        .unwrap();
    assert!(!raw.contains("https://blog.example/post"), "{raw}");
    let at = raw.find("/l/").unwrap();
    let token = &raw[at + 3..at + 25];
    assert_eq!(
        raw.matches(&format!("/l/{token}")).count(),
        2,
        "the text and the html link: {raw}"
    );
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(format!("{}/l/{token}", app.base)).send().await.unwrap();
    assert_eq!(
        (r.status(), r.headers()["location"].to_str().unwrap()),
        (StatusCode::FOUND, "https://blog.example/post")
    );
    let contact = app.get(&p.contact(&cid), &p.key).await;
    assert_eq!(contact.body["total_clicks"], 1);
}
