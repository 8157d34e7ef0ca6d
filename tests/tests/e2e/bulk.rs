//! Bulk operations: by ids or by filter, the typed DELETE confirmation.

use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn bulk_actions_by_ids_and_by_filter() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let bulk = format!("{}/bulk", p.contacts());
    let list_id = app.email_list(&p, "N", "n@example.com").await;
    let mut ids = Vec::new();
    for i in 0..12 {
        let tags = if i < 7 { json!(["Trial"]) } else { json!([]) };
        let r = app
            .post(
                &p.contacts(),
                &p.key,
                json!({"email": format!("b{i}@example.com"), "tags": tags}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }

    // By filter: every contact tagged Trial, on later pages too.
    let r = app
        .post(
            &bulk,
            &p.key,
            json!({"selection": {"filter": {"tag": "trial"}}, "action": "add_to_list", "list_id": list_id}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["matched"].as_u64(), r.body["updated"].as_u64()),
        (StatusCode::OK, Some(7), Some(7)),
        "{:?}",
        r.body
    );
    let r = app
        .post(
            &bulk,
            &p.key,
            json!({"selection": {"filter": {"list_id": list_id}}, "action": "set_type", "type": "customer"}),
        )
        .await;
    assert_eq!(r.body["updated"], 7);
    assert_eq!(app.get(&p.contact(&ids[0]), &p.key).await.body["type"], "customer");
    assert_eq!(app.get(&p.contact(&ids[11]), &p.key).await.body["type"], "lead");
    let r = app
        .post(
            &bulk,
            &p.key,
            json!({"selection": {"filter": {"q": "b1"}}, "action": "tag", "tags": ["Ones"]}),
        )
        .await;
    assert_eq!(r.body["matched"], 3, "b1, b10, b11: {:?}", r.body);
    let r = app.post(&bulk, &p.key, json!({"selection": {"ids": [ids[0], ids[1], "01ARZ3NDEKTSV4RRFFQ69G5FAV"]}, "action": "untag", "tags": ["Trial"]})).await;
    assert_eq!(
        (r.body["updated"].as_u64(), r.body["failed"].as_array().unwrap().len()),
        (Some(2), 1)
    );
    assert_eq!(app.tag_named(&p, "Trial").await["contact_count"], 5);

    // Deleting needs the typed confirmation; without it nothing is deleted.
    for confirm in [json!(null), json!("delete"), json!("yes")] {
        let r = app
            .post(
                &bulk,
                &p.key,
                json!({"selection": {"filter": {"all": true}}, "action": "delete", "confirm": confirm}),
            )
            .await;
        assert_eq!((r.status, r.field()), (StatusCode::BAD_REQUEST, Some("confirm")));
    }
    assert_eq!(
        app.get(&format!("{}?limit=100", p.contacts()), &p.key).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    let r = app
        .post(
            &bulk,
            &p.key,
            json!({"selection": {"filter": {"tag": "Trial"}}, "action": "delete", "confirm": "DELETE"}),
        )
        .await;
    assert_eq!(r.body["updated"], 5);
    assert_eq!(
        app.get(&format!("{}?limit=100", p.contacts()), &p.key).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    for (body, field) in [
        (json!({"selection": {}, "action": "tag", "tags": ["x"]}), "selection"),
        (
            json!({"selection": {"ids": []}, "action": "tag", "tags": ["x"]}),
            "selection.ids",
        ),
        (json!({"selection": {"ids": [ids[0]]}, "action": "tag"}), "tags"),
        (
            json!({"selection": {"ids": [ids[0]]}, "action": "add_to_list"}),
            "list_id",
        ),
        (
            json!({"selection": {"filter": {"tag": "x", "all": true}}, "action": "set_type", "type": "lead"}),
            "selection.filter.all",
        ),
        (
            json!({"selection": {"filter": {"tags": ["x"], "status": "active", "q": "a"}}, "action": "untag", "tags": ["x"]}),
            "selection.filter.q",
        ),
        (
            json!({"selection": {"filter": {"tagz": "x"}}, "action": "untag", "tags": ["x"]}),
            "selection.filter.tagz",
        ),
        (json!({"selection": {"ids": [ids[0]]}, "action": "explode"}), "action"),
    ] {
        let r = app.post(&bulk, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
}
