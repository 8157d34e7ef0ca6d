//! `Idempotency-Key`: a retry returns the first result; another body with the same key is refused.

use reqwest::StatusCode;
use roster_e2e::{TestApp, ADMIN};
use serde_json::{json, Value};

async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> roster_e2e::Reply {
    let req = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body);
    TestApp::reply(req).await
}

#[tokio::test]
async fn a_retry_returns_the_first_response() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let body = json!({"email": "idem@example.com", "company": "First"});
    let first = post_with_key(&app, &p.contacts(), &p.key, "k-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Meanwhile the contact changes; the retry still answers as the first call did.
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "idem@example.com", "company": "Later"}),
    )
    .await;
    let retry = post_with_key(&app, &p.contacts(), &p.key, "k-1", body.clone()).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body);
    assert_eq!(
        retry.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()),
        Some("true")
    );

    let other = post_with_key(
        &app,
        &p.contacts(),
        &p.key,
        "k-1",
        json!({"email": "other@example.com"}),
    )
    .await;
    assert_eq!(
        (other.status, other.code(), other.field()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused"),
            Some("Idempotency-Key")
        )
    );
    assert_eq!(
        app.get(&format!("{}?email=other%40example.com", p.contacts()), &p.key)
            .await
            .body["data"],
        json!([])
    );

    // Project creation too: a retried POST /v1/projects makes one project.
    let a = post_with_key(&app, "/v1/projects", ADMIN, "proj-1", json!({"name": "Once"})).await;
    let b = post_with_key(&app, "/v1/projects", ADMIN, "proj-1", json!({"name": "Once"})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["id"], b.body["id"]);
}

#[tokio::test]
async fn concurrent_retries_create_once() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let path = p.contacts();
    let replies =
        futures::future::join_all((0..8).map(|_| post_with_key(&app, &path, &p.key, "same", json!({"eid": "E-1"}))))
            .await;
    let ok: Vec<_> = replies.iter().filter(|r| r.status.is_success()).collect();
    assert!(!ok.is_empty());
    assert!(ok
        .iter()
        .all(|r| r.body["id"] == ok[0].body["id"] && r.status == StatusCode::CREATED));
    // The rest were told a request with that key is still running.
    assert!(replies
        .iter()
        .all(|r| r.status.is_success() || r.status == StatusCode::CONFLICT));
}
