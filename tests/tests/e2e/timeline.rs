//! The activity timeline: system activities, posted ones, order, filters, paging.

use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn writes_leave_system_activities() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app.post(&p.contacts(), &p.key, json!({"email": "t@example.com"})).await;
    let id = c.body["id"].as_str().unwrap();
    app.patch(&p.contact(id), &p.key, json!({"type": "customer", "company": "Acme"}))
        .await;
    // A write that changes nothing records nothing.
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "t@example.com", "company": "Acme"}),
    )
    .await;

    let t = app.get(&format!("{}/timeline", p.contact(id)), &p.key).await;
    assert_eq!(t.status, StatusCode::OK, "{:?}", t.body);
    let kinds: Vec<_> = t.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["contact_updated", "contact_created"]);
    let updated = &t.body["data"][0];
    assert_eq!(updated["origin"], "system");
    assert_eq!(updated["data"]["fields"], json!(["company", "type"]));
    assert_eq!(
        updated["data"]["changes"]["type"],
        json!({"from": "lead", "to": "customer"})
    );
    let contact = app.get(&p.contact(id), &p.key).await;
    assert_eq!(contact.body["last_activity_at"], updated["occurred_at"]);
}

#[tokio::test]
async fn posted_activities_page_newest_first_and_filter_by_type() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app.post(&p.contacts(), &p.key, json!({"email": "a@example.com"})).await;
    let id = c.body["id"].as_str().unwrap();
    let url = format!("{}/activities", p.contact(id));
    let kinds = [
        "page_visit",
        "form_submission",
        "email_open",
        "email_click",
        "meeting_booked",
        "file_download",
        "chat",
        "deal_change",
        "webinar_attended",
    ];
    for (i, kind) in kinds.iter().enumerate() {
        let at = format!("2026-01-{:02}T10:00:00Z", i + 1);
        let r = app
            .post(&url, &p.key, json!({"type": kind, "occurred_at": at, "data": {"n": i}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{kind}: {:?}", r.body);
        assert_eq!(r.body["origin"], "api");
    }
    for (body, field) in [
        (json!({"type": "contact_created"}), "type"),
        (json!({"type": "Not Snake"}), "type"),
        (
            json!({"type": "page_visit", "occurred_at": "2999-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (json!({"type": "page_visit", "extra": 1}), "extra"),
    ] {
        let r = app.post(&url, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let r = app
        .post(
            &format!("{}/activities", p.contact("01ARZ3NDEKTSV4RRFFQ69G5FAV")),
            &p.key,
            json!({"type": "chat"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Pages of 4, newest first: the creation (now) and then January backwards.
    let mut seen = Vec::new();
    let mut next = format!("{}/timeline?limit=4", p.contact(id));
    loop {
        let r = app.get(&next, &p.key).await;
        let page = r.body["data"].as_array().unwrap();
        assert!(page.len() <= 4);
        seen.extend(page.iter().map(|a| a["type"].as_str().unwrap().to_string()));
        match r.body["next_cursor"].as_str() {
            Some(c) => next = format!("{}/timeline?limit=4&cursor={c}", p.contact(id)),
            None => break,
        }
    }
    let mut expected: Vec<String> = kinds.iter().rev().map(|k| k.to_string()).collect();
    expected.insert(0, "contact_created".into());
    assert_eq!(seen, expected);

    let r = app
        .get(
            &format!("{}/timeline?type=email_open,email_click", p.contact(id)),
            &p.key,
        )
        .await;
    let kinds: Vec<_> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["email_click", "email_open"]);
    // An old activity does not move last_activity_at back.
    let contact = app.get(&p.contact(id), &p.key).await;
    assert!(contact.body["last_activity_at"].as_str().unwrap() > "2026-02");
}

#[tokio::test]
async fn erase_leaves_no_personal_data_anywhere() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app.post(&p.contacts(), &p.key, json!({"email": "forget.me@example.com", "phone": "+14155552671", "name": "Forget Me", "eid": "crm-forget"})).await;
    let id = c.body["id"].as_str().unwrap();
    app.post(
        &format!("{}/activities", p.contact(id)),
        &p.key,
        json!({"type": "page_visit", "data": {"email": "forget.me@example.com"}}),
    )
    .await;
    assert!(app.dump_table().await.contains("forget.me@example.com"));
    let r = app.delete(&format!("{}?erase=true", p.contact(id)), &p.key).await;
    assert_eq!(r.status, StatusCode::OK);
    let dump = app.dump_table().await;
    for needle in ["forget.me", "4155552671", "Forget", "crm-forget"] {
        assert!(!dump.contains(needle), "{needle} is still stored:\n{dump}");
    }
}
