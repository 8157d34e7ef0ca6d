//! Projects, keys and the walls between projects.

use reqwest::{Method, StatusCode};
use roster_e2e::{TestApp, ADMIN};
use serde_json::json;

#[tokio::test]
async fn creating_a_project_needs_the_operator_token() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::POST, "/v1/projects", None, Some(json!({"name": "x"})))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let r = app.post("/v1/projects", "wrong-token-000", json!({"name": "x"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post(
            "/v1/projects",
            ADMIN,
            json!({"name": "Launch", "default_country": "fi", "allowed_origins": ["https://Example.com/"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["api_key"].as_str().unwrap().starts_with("sk_"));
    assert!(r.body["publishable_key"].as_str().unwrap().starts_with("pk_"));
    assert_eq!(r.body["default_country"], "FI");
    assert_eq!(r.body["allowed_origins"], json!(["https://example.com"]));
    let r = app.post("/v1/projects", ADMIN, json!({})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")));
}

#[tokio::test]
async fn a_key_never_reaches_another_projects_data() {
    let app = TestApp::spawn().await;
    let a = app.project().await;
    let b = app.project().await;
    let c = app
        .post(&a.contacts(), &a.key, json!({"email": "secret@example.com"}))
        .await;
    let cid = c.body["id"].as_str().unwrap();

    // B's key on A's routes: refused, and nothing of A's leaks.
    for (method, path) in [
        (Method::GET, a.contacts()),
        (Method::GET, a.contact(cid)),
        (Method::GET, format!("{}?email=secret%40example.com", a.contacts())),
        (Method::DELETE, a.contact(cid)),
        (Method::GET, format!("/v1/projects/{}", a.id)),
    ] {
        let r = app.request(method.clone(), &path, Some(&b.key), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {:?}", r.body);
        assert!(!r.body.to_string().contains("secret@"), "{:?}", r.body);
    }
    let r = app.post(&a.contacts(), &b.key, json!({"email": "x@example.com"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A's contact id under B's project is simply not there.
    assert_eq!(app.get(&b.contact(cid), &b.key).await.status, StatusCode::NOT_FOUND);
    // The same email in B is a different contact.
    let r = app
        .post(&b.contacts(), &b.key, json!({"email": "secret@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_ne!(r.body["id"].as_str(), Some(cid));

    // No key, a malformed key, a forged key for A, or A's publishable key: 401.
    for token in [
        None,
        Some("nonsense"),
        Some(&*format!("sk_{}_{}", a.id, "x".repeat(32))),
        Some(&*a.publishable_key),
    ] {
        let r = app.request(Method::GET, &a.contacts(), token, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert_eq!(app.get(&a.contacts(), ADMIN).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_rotate_and_settings_change() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app
        .post(
            &format!("/v1/projects/{}/keys/rotate", p.id),
            &p.key,
            json!({"kind": "secret"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let new_key = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(app.get(&p.contacts(), &p.key).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&p.contacts(), &new_key).await.status, StatusCode::OK);
    // The operator can rotate too (a lost key).
    let r = app
        .post(
            &format!("/v1/projects/{}/keys/rotate", p.id),
            ADMIN,
            json!({"kind": "publishable"}),
        )
        .await;
    assert!(r.body["key"].as_str().unwrap().starts_with("pk_"));

    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            &new_key,
            json!({"default_country": "GB", "name": "Renamed"}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["default_country"], &r.body["name"]),
        (StatusCode::OK, &json!("GB"), &json!("Renamed"))
    );
    assert!(r.body.get("secret_key_hash").is_none());
    // National numbers now read as British.
    let r = app
        .post(&p.contacts(), &new_key, json!({"phone": "020 7946 0958"}))
        .await;
    assert_eq!(r.body["phone"], "+442079460958");
    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            ADMIN,
            json!({"default_country": "Britain"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("default_country"))
    );
    let r = app
        .get(&format!("/v1/projects/{}", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), ADMIN)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_openapi_describe_every_route() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = app.request(Method::GET, "/v1/openapi.json", None, None).await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/v1/projects", "post"),
        ("/v1/projects/{pid}", "get"),
        ("/v1/projects/{pid}", "patch"),
        ("/v1/projects/{pid}/keys/rotate", "post"),
        ("/v1/projects/{pid}/contacts", "post"),
        ("/v1/projects/{pid}/contacts", "get"),
        ("/v1/projects/{pid}/contacts/{cid}", "get"),
        ("/v1/projects/{pid}/contacts/{cid}", "patch"),
        ("/v1/projects/{pid}/contacts/{cid}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    let r = app.request(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, Some("not_found")));
}

/// The HTTP API is four functions behind API Gateway's routes (template.yaml):
/// every documented operation, sent as a client would, reaches a function
/// whose router has it — neither API Gateway's 404 (no route in the
/// template) nor a function's own "no such route" (the template sends it to
/// the wrong function).
#[tokio::test]
async fn every_documented_route_reaches_a_function_that_serves_it() {
    let app = TestApp::spawn().await;
    let doc = app.request(Method::GET, "/v1/openapi.json", None, None).await.body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let r = app.request(method.clone(), &concrete, None, None).await;
            let unrouted = r.body == json!({"message": "Not Found"})
                || r.body["error"]["message"] == "no such route"
                || r.status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(!unrouted, "{method} {path}: {} {}", r.status, r.body);
            checked += 1;
        }
    }
    assert_eq!(checked, 85, "operations documented");
}
