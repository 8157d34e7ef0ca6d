//! Tags: unique names ignoring case, exact counts, rename and delete that
//! reach every contact, assignment one by one and in bulk.

use futures::future::join_all;
use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn tags_are_unique_and_counted_exactly() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let tags = format!("/v1/projects/{}/tags", p.id);
    let r = app
        .post(
            &tags,
            &p.key,
            json!({"name": "VIP", "color": "#F0A", "description": "Top customers"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["color"].as_str()),
        (StatusCode::CREATED, Some("#ff00aa"))
    );
    let r = app.post(&tags, &p.key, json!({"name": "vip"})).await;
    assert_eq!(
        (r.status, r.code(), r.field()),
        (StatusCode::CONFLICT, Some("tag_exists"), Some("name"))
    );
    let r = app.post(&tags, &p.key, json!({"name": "x", "color": "red"})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("color")));
    let r = app
        .post(
            &format!("{tags}/batch"),
            &p.key,
            json!({"tags": [{"name": "Early bird"}, {"name": "vIp"}, {"name": "early BIRD"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let created: Vec<_> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["created"].as_bool().unwrap()))
        .collect();
    assert_eq!(created, vec![("Early bird", true), ("VIP", false)]);

    // A contact's tags take the project's spelling; unknown names become tags.
    let a = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "a@example.com", "tags": ["vip", "Newcomer"]}),
        )
        .await;
    assert_eq!(a.body["tags"], json!(["VIP", "Newcomer"]));
    let a_id = a.body["id"].as_str().unwrap().to_string();
    assert_eq!(app.tag_named(&p, "Newcomer").await["contact_count"], 1);

    // Twenty contacts tagged at once, one of them twice: exact counts.
    let mut ids = Vec::new();
    for i in 0..20 {
        let c = app
            .post(&p.contacts(), &p.key, json!({"email": format!("c{i}@example.com")}))
            .await;
        ids.push(c.body["id"].as_str().unwrap().to_string());
    }
    ids.push(ids[0].clone());
    let urls: Vec<String> = ids.iter().map(|id| format!("{}/tags", p.contact(id))).collect();
    let calls = urls
        .iter()
        .map(|url| app.post(url, &p.key, json!({"add": ["Early Bird"]})));
    assert!(join_all(calls).await.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(app.tag_named(&p, "Early bird").await["contact_count"], 20);

    // Bulk: remove from ten, unknown ids reported.
    let mut some: Vec<String> = ids[..10].to_vec();
    some.push("01ARZ3NDEKTSV4RRFFQ69G5FAV".into());
    let r = app
        .post(
            &format!("{tags}/assign"),
            &p.key,
            json!({"contact_ids": some, "remove": ["early bird"], "add": ["VIP"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (
            r.body["updated"].as_u64(),
            r.body["not_found"].as_array().unwrap().len()
        ),
        (Some(10), 1)
    );
    assert_eq!(app.tag_named(&p, "Early bird").await["contact_count"], 10);
    assert_eq!(app.tag_named(&p, "VIP").await["contact_count"], 11);
    let r = app
        .post(
            &format!("{tags}/assign"),
            &p.key,
            json!({"contact_ids": [], "add": ["VIP"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("contact_ids"))
    );

    // Erasing a contact takes it off its tags' counts.
    app.delete(&format!("{}?erase=true", p.contact(&a_id)), &p.key).await;
    assert_eq!(app.tag_named(&p, "Newcomer").await["contact_count"], 0);
    assert_eq!(app.tag_named(&p, "VIP").await["contact_count"], 10);
}

#[tokio::test]
async fn renaming_or_deleting_a_tag_reaches_every_contact() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = app
            .post(
                &p.contacts(),
                &p.key,
                json!({"email": format!("r{i}@example.com"), "tags": ["Beta", "Keep"]}),
            )
            .await;
        ids.push(c.body["id"].as_str().unwrap().to_string());
    }
    let beta = app.tag_named(&p, "Beta").await;
    let url = format!("/v1/projects/{}/tags/{}", p.id, beta["id"].as_str().unwrap());
    let r = app
        .patch(&url, &p.key, json!({"name": "Beta testers", "color": "#00ff00"}))
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("Beta testers")),
        "{:?}",
        r.body
    );
    for id in &ids {
        assert_eq!(
            app.get(&p.contact(id), &p.key).await.body["tags"],
            json!(["Beta testers", "Keep"])
        );
    }
    // The old name is free again, the new one taken.
    assert_eq!(
        app.post(&format!("/v1/projects/{}/tags", p.id), &p.key, json!({"name": "beta"}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.patch(&url, &p.key, json!({"name": "KEEP"})).await.status,
        StatusCode::CONFLICT
    );

    let r = app.delete(&url, &p.key).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for id in &ids {
        assert_eq!(app.get(&p.contact(id), &p.key).await.body["tags"], json!(["Keep"]));
    }
    assert_eq!(app.get(&url, &p.key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.tag_named(&p, "Keep").await["contact_count"], 5);
    // Re-tagging with the deleted name makes a fresh tag.
    app.post(
        &format!("{}/tags", p.contact(&ids[0])),
        &p.key,
        json!({"add": ["Beta testers"]}),
    )
    .await;
    assert_eq!(app.tag_named(&p, "Beta testers").await["contact_count"], 1);
}
