//! Nobody is lost over a secondary field: an import row or a public signup
//! whose phone is not a valid number, or is another contact's, still keeps
//! its person (without that phone, which stays visible as `phone_raw`) and
//! says what was left out. The API, whose caller can correct the request,
//! still refuses it.

use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::{json, Value};

async fn report(app: &TestApp, job: &Value) -> Vec<String> {
    let url = job["error_report_url"].as_str().expect("a report link");
    let text = app.http.get(url).send().await.unwrap().text().await.unwrap();
    let mut lines: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_uk_file_in_a_us_project_imports_every_person() {
    let app = TestApp::spawn().await;
    let p = app.project().await; // default country US
    let file = "email,name,mobile\n\
                ann@example.co.uk,Ann Smith,07911 123456\n\
                bob@example.co.uk,Bob Jones,+44 7400 123456\n\
                cat@example.co.uk,Cat Brown,+44 121 234 5678\n";
    let job = app.import_file(&p, "uk.csv", file.as_bytes().to_vec(), json!({})).await;
    let b = &job.body;
    assert_eq!(b["state"], "completed", "{b:?}");
    let n = |k: &str| b[k].as_u64().unwrap();
    assert_eq!(
        (n("processed"), n("created"), n("failed"), n("warnings")),
        (3, 3, 0, 1),
        "{b:?}"
    );

    // International numbers mean the same in a US project as anywhere.
    assert_eq!(app.by_email(&p, "bob@example.co.uk").await["phone"], "+447400123456");
    assert_eq!(app.by_email(&p, "cat@example.co.uk").await["phone"], "+441212345678");
    // A UK national number is not a US number: Ann is kept, her number shown as given.
    let ann = app.by_email(&p, "ann@example.co.uk").await;
    assert_eq!(ann["first_name"], "Ann");
    assert!(ann["phone"].is_null(), "{ann:?}");
    assert_eq!(ann["phone_raw"], "07911 123456");

    let lines = report(&app, b).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("2,warning,\"phone \"\"07911 123456\"\": phone is not a valid number"),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with(",\"ann@example.co.uk,Ann Smith,07911 123456\""),
        "{lines:?}"
    );

    // With the row's country given, the same number is read as British.
    let file = "email,mobile,country code\nann@example.co.uk,07911 123456,GB\n";
    let job = app
        .import_file(&p, "uk2.csv", file.as_bytes().to_vec(), json!({}))
        .await;
    assert_eq!(job.body["updated"], 1, "{:?}", job.body);
    let ann = app.by_email(&p, "ann@example.co.uk").await;
    assert_eq!(ann["phone"], "+447911123456");
    assert!(
        ann.get("phone_raw").is_none_or(Value::is_null),
        "a stored phone clears phone_raw: {ann:?}"
    );
}

#[tokio::test]
async fn an_import_row_whose_phone_is_another_contacts_still_keeps_its_person() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let first = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "owner@example.com", "phone": "+1 415 555 2671"}),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let file = "email,phone\nnew@example.com,(415) 555-2671\n";
    let job = app
        .import_file(&p, "shared.csv", file.as_bytes().to_vec(), json!({}))
        .await;
    let b = &job.body;
    assert_eq!(
        (b["created"].as_u64(), b["failed"].as_u64(), b["warnings"].as_u64()),
        (Some(1), Some(0), Some(1)),
        "{b:?}"
    );
    let new = app.by_email(&p, "new@example.com").await;
    assert!(new["phone"].is_null(), "{new:?}");
    assert_eq!(new["phone_raw"], "+14155552671");
    let owner = app.by_email(&p, "owner@example.com").await;
    assert_eq!(owner["phone"], "+14155552671", "the owner keeps the number");
    let lines = report(&app, b).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("another contact has this phone"), "{lines:?}");

    // A row whose only identity is a bad phone has nobody to keep: it fails.
    let file = "phone,name\n07911 123456,Nobody\n";
    let job = app
        .import_file(&p, "only-phone.csv", file.as_bytes().to_vec(), json!({}))
        .await;
    assert_eq!(
        (job.body["failed"].as_u64(), job.body["warnings"].as_u64()),
        (Some(1), Some(0)),
        "{:?}",
        job.body
    );
}

#[tokio::test]
async fn a_signup_with_a_foreign_mobile_is_kept_and_the_api_still_refuses_it() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    // A Chinese mobile, internationally written: valid in a US project.
    let r = app
        .public(
            &p,
            "waitlist",
            "10.0.0.1",
            json!({"email": "li@example.cn", "phone": "+86 131 2345 6789"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(app.by_email(&p, "li@example.cn").await["phone"], "+8613123456789");

    // A Beijing number written nationally is no US number: the signup is kept anyway.
    let r = app
        .public(
            &p,
            "waitlist",
            "10.0.0.2",
            json!({"email": "wang@example.cn", "name": "Wang Fang", "phone": "010 6552 9988"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["referral_code"].is_string());
    let wang = app.by_email(&p, "wang@example.cn").await;
    assert_eq!(wang["first_name"], "Wang");
    assert!(wang["phone"].is_null());
    assert_eq!(wang["phone_raw"], "010 6552 9988");
    let profile = app
        .get(&format!("{}/profile", p.contact(wang["id"].as_str().unwrap())), &p.key)
        .await;
    let signup = &profile.body["waitlist_signups"][0];
    assert_eq!(signup["fields"]["phone"], "010 6552 9988", "{:?}", profile.body);
    assert_eq!(signup["warnings"][0]["field"], "phone", "{:?}", profile.body);
    assert_eq!(signup["warnings"][0]["value"], "010 6552 9988");

    // A contact form whose phone another contact has keeps the message and its person.
    let r = app
        .public(
            &p,
            "messages",
            "10.0.0.3",
            json!({"email": "zhang@example.cn", "phone": "+86 131 2345 6789", "message": "Hello"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let zhang = app.by_email(&p, "zhang@example.cn").await;
    assert!(zhang["phone"].is_null());
    assert_eq!(zhang["phone_raw"], "+8613123456789");

    // The API caller can fix the request, so the API refuses it whole.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "api@example.cn", "phone": "010 6552 9988"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.field(), Some("phone"));
    assert!(app.by_email(&p, "api@example.cn").await.is_null());
}

#[tokio::test]
async fn a_contact_whose_phone_could_not_be_stored_joins_an_sms_list_as_invalid() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let list = |name: &str, channel: &str, sender: &str| json!({"name": name, "channel": channel, "sender": sender});
    let sms = app
        .post(
            &format!("/v1/projects/{}/lists", p.id),
            &p.key,
            list("Texts", "sms", "+14155550100"),
        )
        .await;
    let email = app
        .post(
            &format!("/v1/projects/{}/lists", p.id),
            &p.key,
            list("News", "email", "news@example.com"),
        )
        .await;
    let (sms, email) = (sms.body["id"].as_str().unwrap(), email.body["id"].as_str().unwrap());
    for list_id in [sms, email] {
        let file = "email,phone\nbad@example.com,12345\ngood@example.com,+1 415 555 2672\n";
        let job = app
            .import_file(
                &p,
                "lists.csv",
                file.as_bytes().to_vec(),
                json!({"options": {"list_id": list_id}}),
            )
            .await;
        assert_eq!(job.body["state"], "completed", "{:?}", job.body);
    }
    let status_on = |subs: &Value, list_id: &str| {
        subs["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["list_id"] == list_id)
            .map(|s| s["status"].clone())
    };
    let bad = app.by_email(&p, "bad@example.com").await;
    let subs = app
        .get(&format!("{}/lists", p.contact(bad["id"].as_str().unwrap())), &p.key)
        .await;
    assert_eq!(status_on(&subs.body, sms), Some(json!("invalid")), "{:?}", subs.body);
    assert_eq!(status_on(&subs.body, email), Some(json!("active")), "{:?}", subs.body);
    let good = app.by_email(&p, "good@example.com").await;
    let subs = app
        .get(&format!("{}/lists", p.contact(good["id"].as_str().unwrap())), &p.key)
        .await;
    assert_eq!(status_on(&subs.body, sms), Some(json!("active")), "{:?}", subs.body);
}
