//! Merging two contacts: preview first, then everything moves to the survivor.

use reqwest::{Method, StatusCode};
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn merge_moves_everything_to_the_survivor() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let list_id = app.email_list(&p, "News", "n@example.com").await;

    // The other contact: signed up on the waitlist, referred a friend, wrote a message, opted out.
    let w = app
        .public(
            &p,
            "waitlist",
            "1.2.3.4",
            json!({"email": "old@example.com", "name": "Olive Old"}),
        )
        .await;
    let code = w.body["referral_code"].as_str().unwrap().to_string();
    app.public(
        &p,
        "waitlist",
        "1.2.3.5",
        json!({"email": "friend@example.com", "ref": code}),
    )
    .await;
    app.public(
        &p,
        "messages",
        "1.2.3.4",
        json!({"email": "old@example.com", "message": "hello"}),
    )
    .await;
    let other = app
        .get(&format!("{}?email=old%40example.com", p.contacts()), &p.key)
        .await
        .body["data"][0]
        .clone();
    let other_id = other["id"].as_str().unwrap().to_string();
    app.patch(
        &p.contact(&other_id),
        &p.key,
        json!({"phone": "+14155552671", "tags": ["Beta"], "eid": "crm-9"}),
    )
    .await;
    app.request(
        Method::PUT,
        &format!("/v1/projects/{}/lists/{list_id}/contacts/{other_id}", p.id),
        Some(&p.key),
        Some(json!({"status": "opted_out"})),
    )
    .await;

    // The survivor: created through the API, active on the same list.
    let s = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "new@example.com", "company": "Acme", "tags": ["VIP"], "add_to_lists": [list_id]}),
        )
        .await;
    let sid = s.body["id"].as_str().unwrap().to_string();
    let url = format!("{}/merge", p.contact(&sid));

    let preview = app
        .post(&url, &p.key, json!({"other_id": other_id, "preview": true}))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{:?}", preview.body);
    assert_eq!(preview.body["preview"], true);
    assert_eq!(preview.body["contact"]["phone"], "+14155552671");
    assert_eq!(preview.body["contact"]["first_name"], "Olive");
    assert_eq!(preview.body["moves"]["identities"], json!(["phone", "eid"]));
    assert_eq!(preview.body["moves"]["tags"], json!(["Beta"]));
    assert_eq!(preview.body["moves"]["referred"], 1);
    // A preview changes nothing.
    assert_eq!(app.get(&p.contact(&other_id), &p.key).await.status, StatusCode::OK);
    assert_eq!(app.get(&p.contact(&sid), &p.key).await.body["phone"], json!(null));

    let r = app.post(&url, &p.key, json!({"other_id": other_id})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let c = &r.body["contact"];
    assert_eq!(
        (c["email"].as_str(), c["phone"].as_str(), c["eid"].as_str()),
        (Some("new@example.com"), Some("+14155552671"), Some("crm-9"))
    );
    assert_eq!(
        (c["company"].as_str(), c["first_name"].as_str()),
        (Some("Acme"), Some("Olive"))
    );
    assert_eq!(c["tags"], json!(["VIP", "Beta"]));
    assert_eq!(
        (
            c["source"].as_str(),
            c["referral_count"].as_u64(),
            c["messages_in"].as_u64()
        ),
        (Some("waitlist"), Some(1), Some(1))
    );

    // The other one is gone; its identities lead to the survivor, its old email is free.
    assert_eq!(
        app.get(&p.contact(&other_id), &p.key).await.status,
        StatusCode::NOT_FOUND
    );
    for q in ["phone=%2B14155552671", "eid=crm-9"] {
        assert_eq!(
            app.get(&format!("{}?{q}", p.contacts()), &p.key).await.body["data"][0]["id"],
            sid
        );
    }
    assert!(app
        .get(&format!("{}?email=old%40example.com", p.contacts()), &p.key)
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .is_empty());
    // Referral data, records, activity and the stricter list status moved.
    let friend = app
        .get(&format!("{}?email=friend%40example.com", p.contacts()), &p.key)
        .await
        .body["data"][0]
        .clone();
    assert_eq!(friend["referred_by"], sid);
    let refs = app.get(&format!("{}/referrals", p.contact(&sid)), &p.key).await;
    assert_eq!(refs.body["referred"]["data"][0]["id"], friend["id"]);
    let profile = app.get(&format!("{}/profile", p.contact(&sid)), &p.key).await;
    assert_eq!(profile.body["waitlist_signups"].as_array().unwrap().len(), 1);
    assert_eq!(profile.body["messages"][0]["message"], "hello");
    assert_eq!(
        profile.body["lists"][0]["status"], "opted_out",
        "an opt-out survives a merge"
    );
    let l = app.get(&format!("/v1/projects/{}/lists/{list_id}", p.id), &p.key).await;
    assert_eq!(
        (l.body["count_active"].as_i64(), l.body["count_opted_out"].as_i64()),
        (Some(0), Some(1))
    );
    let msgs = app
        .get(&format!("/v1/projects/{}/contact-messages", p.id), &p.key)
        .await;
    assert_eq!(msgs.body["data"][0]["contact_id"], sid);
    let t = app
        .get(
            &format!("{}/timeline?type=contacts_merged,waitlist_signup", p.contact(&sid)),
            &p.key,
        )
        .await;
    let kinds: Vec<_> = t.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["contacts_merged", "waitlist_signup"]);
    let tags = app.get(&format!("/v1/projects/{}/tags", p.id), &p.key).await;
    let beta = tags.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Beta")
        .unwrap()
        .clone();
    assert_eq!(beta["contact_count"], 1);

    let r = app.post(&url, &p.key, json!({"other_id": sid})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("other_id"))
    );
    let r = app.post(&url, &p.key, json!({"other_id": other_id})).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("other_id"))
    );
}
