//! Sending lists and subscriptions: statuses, consent records, counts, and
//! the rule that adding again never undoes an opt-out.

use reqwest::{Method, StatusCode};
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

async fn list(app: &TestApp, p: &TestProject, body: Value) -> String {
    let r = app.post(&format!("/v1/projects/{}/lists", p.id), &p.key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn put_status(app: &TestApp, p: &TestProject, list: &str, cid: &str, body: Value) -> roster_e2e::Reply {
    app.request(
        Method::PUT,
        &format!("/v1/projects/{}/lists/{list}/contacts/{cid}", p.id),
        Some(&p.key),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn lists_validate_their_sender_by_channel() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("/v1/projects/{}/lists", p.id);
    let r = app
        .post(
            &url,
            &p.key,
            json!({"name": "SMS deals", "channel": "sms", "sender": "(415) 555-2671"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["sender"].as_str()),
        (StatusCode::CREATED, Some("+14155552671"))
    );
    for (body, field) in [
        (
            json!({"name": "x", "channel": "sms", "sender": "news@example.com"}),
            "sender",
        ),
        (json!({"name": "x", "channel": "fax", "sender": "1"}), "channel"),
        (json!({"channel": "email", "sender": "news@example.com"}), "name"),
        (json!({"name": "x", "channel": "email"}), "sender"),
    ] {
        let r = app.post(&url, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let id = r.body["id"].as_str().unwrap();
    let r = app
        .patch(&format!("{url}/{id}"), &p.key, json!({"channel": "email"}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("channel"))
    );
    let r = app
        .patch(
            &format!("{url}/{id}"),
            &p.key,
            json!({"name": "SMS offers", "description": "Weekly"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("SMS offers"))
    );
    assert_eq!(app.get(&url, &p.key).await.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(&format!("{url}/{id}"), &p.key).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn status_changes_are_consent_records_and_counts_follow() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let news = list(
        &app,
        &p,
        json!({"name": "News", "channel": "email", "sender": "news@example.com"}),
    )
    .await;
    let c = app.post(&p.contacts(), &p.key, json!({"email": "s@example.com"})).await;
    let cid = c.body["id"].as_str().unwrap().to_string();

    let r = put_status(&app, &p, &news, &cid, json!({"status": "active", "via": "form"})).await;
    assert_eq!(
        (r.status, r.body["changed"].as_bool(), r.body["via"].as_str()),
        (StatusCode::OK, Some(true), Some("form")),
        "{:?}",
        r.body
    );
    let r = put_status(&app, &p, &news, &cid, json!({"status": "active"})).await;
    assert_eq!(r.body["changed"], false);
    let r = put_status(
        &app,
        &p,
        &news,
        &cid,
        json!({"status": "opted_out", "via": "inbound", "note": "replied STOP"}),
    )
    .await;
    assert!(r.body["opted_out_at"].as_str().is_some());
    let r = put_status(&app, &p, &news, &cid, json!({"status": "gone"})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );

    let l = app.get(&format!("/v1/projects/{}/lists/{news}", p.id), &p.key).await;
    assert_eq!(
        (l.body["count_active"].as_i64(), l.body["count_opted_out"].as_i64()),
        (Some(0), Some(1))
    );
    let consent = app.get(&format!("{}/consent", p.contact(&cid)), &p.key).await;
    let changes: Vec<_> = consent.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["from"].clone(), r["to"].clone(), r["via"].clone()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (json!(null), json!("active"), json!("form")),
            (json!("active"), json!("opted_out"), json!("inbound"))
        ]
    );
    assert_eq!(consent.body["data"][1]["note"], "replied STOP");

    // Adding again (add_to_lists on upsert) never undoes the opt-out.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "s@example.com", "add_to_lists": [news]}),
        )
        .await;
    assert_eq!(r.body["lists_updated"], 0);
    let subs = app.get(&format!("{}/lists", p.contact(&cid)), &p.key).await;
    assert_eq!(subs.body["data"][0]["status"], "opted_out");
    // Nor does removing: the opt-out is the record.
    let r = app
        .delete(&format!("/v1/projects/{}/lists/{news}/contacts/{cid}", p.id), &p.key)
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("opted_out")));
    assert_eq!(
        app.delete(&format!("/v1/projects/{}/lists/{news}", p.id), &p.key)
            .await
            .status,
        StatusCode::CONFLICT
    );
    // The timeline shows the changes.
    let t = app
        .get(&format!("{}/timeline?type=list_changed", p.contact(&cid)), &p.key)
        .await;
    assert_eq!(t.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn add_to_lists_on_upsert_adds_once_and_members_are_listed() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let a = list(
        &app,
        &p,
        json!({"name": "A", "channel": "email", "sender": "a@example.com"}),
    )
    .await;
    let b = list(
        &app,
        &p,
        json!({"name": "B", "channel": "email", "sender": "b@example.com"}),
    )
    .await;
    // The seed's spelling works too.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "m@example.com", "addToLists": [a, b]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["lists_updated"].as_u64()),
        (StatusCode::CREATED, Some(2)),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "m@example.com", "add_to_lists": [a]}),
        )
        .await;
    assert_eq!(r.body["lists_updated"], 0);
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "x@example.com", "add_to_lists": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("add_to_lists"))
    );
    assert!(app
        .get(&format!("{}?email=x%40example.com", p.contacts()), &p.key)
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .is_empty());

    for i in 0..6 {
        let r = app
            .post(
                &p.contacts(),
                &p.key,
                json!({"email": format!("n{i}@example.com"), "add_to_lists": [a]}),
            )
            .await;
        let cid = r.body["id"].as_str().unwrap().to_string();
        if i % 2 == 0 {
            put_status(&app, &p, &a, &cid, json!({"status": "unsubscribed"})).await;
        }
    }
    let l = app.get(&format!("/v1/projects/{}/lists/{a}", p.id), &p.key).await;
    assert_eq!(
        (l.body["count_active"].as_i64(), l.body["count_unsubscribed"].as_i64()),
        (Some(4), Some(3))
    );
    let members = app
        .get(
            &format!("/v1/projects/{}/lists/{a}/contacts?status=unsubscribed", p.id),
            &p.key,
        )
        .await;
    assert_eq!(members.status, StatusCode::OK, "{:?}", members.body);
    let emails: Vec<_> = members.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["n4@example.com", "n2@example.com", "n0@example.com"]);
    let page = app
        .get(&format!("/v1/projects/{}/lists/{a}/contacts?limit=4", p.id), &p.key)
        .await;
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/v1/projects/{}/lists/{a}/contacts?limit=4&cursor={next}", p.id),
            &p.key,
        )
        .await;
    assert_eq!(
        page.body["data"].as_array().unwrap().len() + rest.body["data"].as_array().unwrap().len(),
        7
    );

    // An active member can be taken off; the profile lists subscriptions.
    let m = app
        .get(&format!("{}?email=m%40example.com", p.contacts()), &p.key)
        .await;
    let mid = m.body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.delete(&format!("/v1/projects/{}/lists/{b}/contacts/{mid}", p.id), &p.key)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let profile = app.get(&format!("{}/profile", p.contact(&mid)), &p.key).await;
    let on: Vec<_> = profile.body["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["list_id"].as_str().unwrap())
        .collect();
    assert_eq!(on, vec![a.as_str()]);
    let lb = app.get(&format!("/v1/projects/{}/lists/{b}", p.id), &p.key).await;
    assert_eq!(lb.body["count_active"], 0);
}
