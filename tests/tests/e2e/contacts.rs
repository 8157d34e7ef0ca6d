//! Contacts end to end: upsert by identity, uniqueness under concurrency,
//! identity changes, lookups, listing, soft delete and erase.

use std::collections::HashSet;

use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn upsert_creates_then_merges_by_email_phone_or_eid() {
    let app = TestApp::spawn().await;
    let p = app.project().await;

    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "  Ada@Example.COM ", "name": "Ada King Lovelace", "phone": "(415) 555-2671"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["created"], true);
    assert_eq!(r.body["email"], "ada@example.com");
    assert_eq!(r.body["phone"], "+14155552671");
    assert_eq!(r.body["first_name"], "Ada");
    assert_eq!(r.body["last_name"], "King Lovelace");
    assert_eq!(r.body["full_name"], "Ada King Lovelace");
    assert_eq!(r.body["type"], "lead");
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["source"], "api");
    assert!(r.body["referral_code"].as_str().unwrap().starts_with("ref_"));
    let id = r.body["id"].as_str().unwrap().to_string();

    // Same email, any case: same contact, fields merged, nothing else erased.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "ADA@example.com", "company": "Analytical Engines", "tags": ["VIP", "vip"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["created"], false);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["company"], "Analytical Engines");
    assert_eq!(r.body["phone"], "+14155552671");
    assert_eq!(r.body["tags"], json!(["VIP"]));

    // No email: matched by phone in another format.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"phone": "+1 415-555-2671", "eid": "crm-7"}),
        )
        .await;
    assert_eq!((r.status, r.body["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    // Only an eid.
    let r = app
        .post(&p.contacts(), &p.key, json!({"eid": "crm-7", "intent": "high"}))
        .await;
    assert_eq!((r.status, r.body["id"].as_str()), (StatusCode::OK, Some(id.as_str())));

    let r = app.get(&p.contact(&id), &p.key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["eid"], "crm-7");
    assert_eq!(r.body["intent"], "high");

    for q in ["email=ADA%40EXAMPLE.com", "phone=%28415%29%20555-2671", "eid=crm-7"] {
        let r = app.get(&format!("{}?{q}", p.contacts()), &p.key).await;
        assert_eq!(r.body["data"][0]["id"], id, "lookup {q}: {:?}", r.body);
    }
    let r = app
        .get(&format!("{}?email=nobody%40example.com", p.contacts()), &p.key)
        .await;
    assert_eq!(r.body["data"], json!([]));

    // A contact needs an identity.
    let r = app.post(&p.contacts(), &p.key, json!({"name": "Nobody"})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
}

#[tokio::test]
async fn fifty_concurrent_upserts_of_one_new_email_make_one_contact() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let replies = futures::future::join_all((0..50).map(|i| {
        let (app, p) = (&app, &p);
        async move {
            app.post(
                &p.contacts(),
                &p.key,
                json!({"email": "Race@Example.com", "labels": {"n": i.to_string()}}),
            )
            .await
        }
    }))
    .await;
    let failed: Vec<_> = replies
        .iter()
        .filter(|r| !r.status.is_success())
        .map(|r| (r.status, &r.body))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let ids: HashSet<_> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(
        replies.iter().all(|r| r.status.is_success()),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(replies.iter().filter(|r| r.body["created"] == true).count(), 1);
    let list = app.get(&p.contacts(), &p.key).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(list.body["data"][0]["referral_code"].as_str().is_some());
}

#[tokio::test]
async fn identities_are_unique_and_can_change() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let a = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "a@example.com", "phone": "+14155552671"}),
        )
        .await;
    let b = app.post(&p.contacts(), &p.key, json!({"email": "b@example.com"})).await;
    let (a_id, b_id) = (a.body["id"].as_str().unwrap(), b.body["id"].as_str().unwrap());

    // B may not take A's email or phone; nothing of B changes.
    let r = app
        .patch(
            &p.contact(b_id),
            &p.key,
            json!({"email": "A@example.com", "company": "X"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field(), r.code()),
        (StatusCode::CONFLICT, Some("email"), Some("identity_taken"))
    );
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "b@example.com", "phone": "415 555 2671", "company": "Y"}),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, Some("phone")));
    let r = app.get(&p.contact(b_id), &p.key).await;
    assert_eq!(r.body["company"], json!(null));
    assert_eq!(r.body["email"], "b@example.com");

    // A changes its email: the old one is freed, the new one is A's.
    let r = app
        .patch(
            &p.contact(a_id),
            &p.key,
            json!({"email": "a2@example.com", "phone": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["email"], "a2@example.com");
    assert_eq!(r.body["phone"], json!(null));
    let r = app
        .get(&format!("{}?email=a%40example.com", p.contacts()), &p.key)
        .await;
    assert_eq!(r.body["data"], json!([]));
    let r = app
        .patch(&p.contact(b_id), &p.key, json!({"phone": "+14155552671"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "the phone A dropped is free: {:?}", r.body);
    let r = app.post(&p.contacts(), &p.key, json!({"email": "a@example.com"})).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "the email A dropped is free: {:?}",
        r.body
    );

    // A contact keeps at least one identity.
    let r = app.patch(&p.contact(a_id), &p.key, json!({"email": null})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
}

#[tokio::test]
async fn patch_changes_fields_and_null_clears() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app.post(&p.contacts(), &p.key, json!({"email": "p@example.com", "company": "Old", "first_name": "Pat",
        "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"}, "labels": {"plan": "pro"}, "metadata": {"utm": {"source": "x"}}})).await;
    let id = c.body["id"].as_str().unwrap();
    let r = app
        .patch(
            &p.contact(id),
            &p.key,
            json!({"company": null, "last_name": "Doe", "type": "customer", "status": "unsubscribed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["company"], json!(null));
    assert_eq!(r.body["full_name"], "Pat Doe");
    assert_eq!(r.body["type"], "customer");
    assert_eq!(r.body["status"], "unsubscribed");
    assert_eq!(r.body["address"]["city"], "Springfield");
    assert_eq!(r.body["labels"]["plan"], "pro");
    assert_eq!(r.body["metadata"]["utm"]["source"], "x");
    let again = app.get(&p.contact(id), &p.key).await;
    assert_eq!(again.body, r.body);

    let missing = app
        .patch(
            &p.contact("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            &p.key,
            json!({"company": "X"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&p.contact("nonsense"), &p.key).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn listing_is_newest_first_and_pages_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let mut created = Vec::new();
    for i in 0..23 {
        let r = app
            .post(&p.contacts(), &p.key, json!({"email": format!("u{i}@example.com")}))
            .await;
        created.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{}?limit=5&cursor={c}", p.contacts()),
            None => format!("{}?limit=5", p.contacts()),
        };
        let r = app.get(&url, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let page = r.body["data"].as_array().unwrap();
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        // Writes between pages neither shift nor repeat what follows.
        app.post(
            &p.contacts(),
            &p.key,
            json!({"email": format!("late{}@example.com", seen.len())}),
        )
        .await;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);

    let r = app.get(&format!("{}?limit=0", p.contacts()), &p.key).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")));
    let r = app.get(&format!("{}?cursor=garbage", p.contacts()), &p.key).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
    let r = app.get(&format!("{}?sort=shoe_size", p.contacts()), &p.key).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("sort")));
}

#[tokio::test]
async fn soft_delete_hides_and_reserves_erase_frees() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "gone@example.com", "phone": "+14155552671", "name": "Gone Girl"}),
        )
        .await;
    let id = c.body["id"].as_str().unwrap().to_string();

    let r = app.delete(&p.contact(&id), &p.key).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get(&p.contact(&id), &p.key).await;
    assert_eq!(r.body["status"], "deleted");
    assert!(r.body["deleted_at"].as_str().is_some());
    assert_eq!(app.get(&p.contacts(), &p.key).await.body["data"], json!([]));
    assert_eq!(
        app.get(&format!("{}?email=gone%40example.com", p.contacts()), &p.key)
            .await
            .body["data"],
        json!([])
    );
    let r = app
        .get(
            &format!("{}?email=gone%40example.com&include_deleted=true", p.contacts()),
            &p.key,
        )
        .await;
    assert_eq!(r.body["data"][0]["id"], id);
    // The identity stays reserved: another contact cannot take the phone.
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "other@example.com", "phone": "+14155552671"}),
        )
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::CONFLICT, Some("phone")));
    // Signing up again restores the same contact.
    let r = app
        .post(&p.contacts(), &p.key, json!({"email": "gone@example.com"}))
        .await;
    assert_eq!(
        (r.status, r.body["id"].as_str(), r.body["status"].as_str()),
        (StatusCode::OK, Some(id.as_str()), Some("active"))
    );
    assert_eq!(
        app.get(&p.contacts(), &p.key).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Erase: personal data gone, identities free, the id answers 404.
    let r = app.delete(&format!("{}?erase=true", p.contact(&id)), &p.key).await;
    assert_eq!((r.status, &r.body["erased"]), (StatusCode::OK, &json!(true)));
    assert_eq!(app.get(&p.contact(&id), &p.key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&p.contact(&id), &p.key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&p.contacts(), &p.key).await.body["data"], json!([]));
    let r = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "gone@example.com", "phone": "+14155552671"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_ne!(r.body["id"].as_str(), Some(id.as_str()));
    assert_eq!(r.body["name"], json!(null));
}
