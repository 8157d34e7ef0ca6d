//! Audience search: prefixes of email, names, company and phone digits.

use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::json;

async fn found(app: &TestApp, p: &TestProject, q: &str) -> Vec<String> {
    let url = format!("{}?q={}", p.contacts(), urlencode(q));
    let r = app.get(&url, &p.key).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {:?}", r.body);
    let mut emails: Vec<String> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_string())
        .collect();
    emails.sort();
    emails
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn contacts_are_found_by_any_prefix_and_only_while_it_is_true() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let ann = app.post(&p.contacts(), &p.key, json!({"email": "ann.lee@example.com", "name": "Ann Lee", "company": "Acme Corp", "phone": "(415) 555-2671"})).await;
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "annabel@other.org", "name": "Annabel Stone"}),
    )
    .await;
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "bob@acme.io", "company": "Acme Industries"}),
    )
    .await;

    assert_eq!(
        found(&app, &p, "ANN").await,
        vec!["ann.lee@example.com", "annabel@other.org"]
    );
    assert_eq!(found(&app, &p, "ann lee").await, vec!["ann.lee@example.com"]);
    assert_eq!(
        found(&app, &p, "acme").await,
        vec!["ann.lee@example.com", "bob@acme.io"]
    );
    assert_eq!(found(&app, &p, "stone").await, vec!["annabel@other.org"]);
    assert_eq!(found(&app, &p, "bob@").await, vec!["bob@acme.io"]);
    assert_eq!(found(&app, &p, "(415) 555").await, vec!["ann.lee@example.com"]);
    assert_eq!(found(&app, &p, "+1 415 555 26").await, vec!["ann.lee@example.com"]);
    assert!(found(&app, &p, "zzz").await.is_empty());

    // Changes move the index with them.
    let id = ann.body["id"].as_str().unwrap();
    app.patch(&p.contact(id), &p.key, json!({"company": "Globex"})).await;
    assert_eq!(found(&app, &p, "acme").await, vec!["bob@acme.io"]);
    assert_eq!(found(&app, &p, "glob").await, vec!["ann.lee@example.com"]);
    app.delete(&p.contact(id), &p.key).await;
    assert_eq!(found(&app, &p, "ann").await, vec!["annabel@other.org"]);
    app.post(&p.contacts(), &p.key, json!({"email": "ann.lee@example.com"}))
        .await;
    assert_eq!(
        found(&app, &p, "ann").await,
        vec!["ann.lee@example.com", "annabel@other.org"]
    );
    app.delete(&format!("{}?erase=true", p.contact(id)), &p.key).await;
    assert_eq!(found(&app, &p, "ann").await, vec!["annabel@other.org"]);
    assert!(
        !app.dump_table().await.contains("globex"),
        "no search token outlives an erase"
    );

    let r = app.get(&format!("{}?q=%20", p.contacts()), &p.key).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("q")));
}

#[tokio::test]
async fn search_results_page_without_repeats() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    for i in 0..23 {
        app.post(
            &p.contacts(),
            &p.key,
            json!({"email": format!("user{i:02}@example.com")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut url = format!("{}?q=user&limit=5", p.contacts());
    loop {
        let r = app.get(&url, &p.key).await;
        seen.extend(
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["email"].as_str().unwrap().to_string()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{}?q=user&limit=5&cursor={c}", p.contacts()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("user{i:02}@example.com")).collect();
    assert_eq!(seen, expected, "in match order, each once");
}
