//! Bad input gets a clear error in the documented shape, and nothing stored changes.

use reqwest::StatusCode;
use roster_e2e::TestApp;
use serde_json::json;

#[tokio::test]
async fn bad_bodies_are_refused_with_the_right_status_and_field() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("{}{}", app.base, p.contacts());
    let send = |body: Vec<u8>, content_type: &'static str| {
        let req = app
            .http
            .post(&url)
            .bearer_auth(&p.key)
            .header("content-type", content_type)
            .body(body);
        TestApp::reply(req)
    };

    let r = send(b"{\"email\": ".to_vec(), "application/json").await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    let r = send(b"".to_vec(), "application/json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = send(b"email=a@b.com".to_vec(), "application/x-www-form-urlencoded").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let big = format!(
        "{{\"email\":\"a@example.com\",\"metadata\":{{\"x\":\"{}\"}}}}",
        "y".repeat(1024 * 1024 + 10)
    );
    let r = send(big.into_bytes(), "application/json").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let r = send(b"[1,2]".to_vec(), "application/json").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    for (body, field) in [
        (json!({"email": "a@example.com", "emial": "typo"}), "emial"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "a@example.com", "phone": "12"}), "phone"),
        (json!({"email": "a@example.com", "type": "alien"}), "type"),
        (json!({"email": "a@example.com", "intent": 3}), "intent"),
        (
            json!({"email": "a@example.com", "address": {"town": "x"}}),
            "address.town",
        ),
        (json!({"email": "a@example.com", "tags": "vip"}), "tags"),
        (
            json!({"email": "a@example.com", "metadata": {"x": "y".repeat(40_000)}}),
            "metadata",
        ),
    ] {
        let r = app.post(&p.contacts(), &p.key, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {:?}", r.body);
        assert_eq!(r.field(), Some(field), "{body}: {:?}", r.body);
        assert_eq!(r.code(), Some("validation_failed"));
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // None of that stored anything.
    assert_eq!(app.get(&p.contacts(), &p.key).await.body["data"], json!([]));
}

#[tokio::test]
async fn a_bad_update_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let c = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "keep@example.com", "company": "Kept", "phone": "+14155552671"}),
        )
        .await;
    let id = c.body["id"].as_str().unwrap();
    let before = app.get(&p.contact(id), &p.key).await.body;
    for body in [
        json!({"company": "Changed", "phone": "nope"}),
        json!({"company": "Changed", "email": "bad@"}),
        json!({"company": "Changed", "unknown": 1}),
        json!({"company": "Changed", "status": "deleted"}),
    ] {
        let r = app.patch(&p.contact(id), &p.key, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(app.get(&p.contact(id), &p.key).await.body, before);
}
