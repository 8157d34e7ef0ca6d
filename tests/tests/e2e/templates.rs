//! Templates: saved only when every part compiles with known variables,
//! rendered per contact with values escaped in the html part only.

use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

fn url(p: &TestProject) -> String {
    format!("/v1/projects/{}/templates", p.id)
}

async fn contact(app: &TestApp, p: &TestProject, body: Value) -> String {
    let r = app.post(&p.contacts(), &p.key, body).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn templates_render_per_contact_with_html_escaping_only_in_html() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app
        .post(
            &url(&p),
            &p.key,
            json!({
                "name": "Launch",
                "channel": "email",
                "subject": "Hi {{ first_name | default(\"there\") }} at {{ company }}",
                "html": "<p>Hello {{ first_name }}</p><p>Plan: {{ labels.plan | default(\"free\") }}</p>",
                "text": "Hello {{ first_name }} ({{ company }})"
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_string();
    let cid = contact(
        &app,
        &p,
        json!({"email": "ann@example.com", "first_name": "<Ann>", "company": "A & B", "labels": {"plan": "pro"}}),
    )
    .await;
    let r = app
        .post(
            &format!("{}/{tid}/preview", url(&p)),
            &p.key,
            json!({"contact_id": cid}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["subject"], "Hi <Ann> at A & B");
    assert_eq!(r.body["html"], "<p>Hello &lt;Ann&gt;</p><p>Plan: pro</p>");
    assert_eq!(r.body["text"], "Hello <Ann> (A & B)");

    // Missing values take their defaults.
    let bare = contact(&app, &p, json!({"email": "bare@example.com"})).await;
    let r = app
        .post(
            &format!("{}/{tid}/preview", url(&p)),
            &p.key,
            json!({"contact_id": bare}),
        )
        .await;
    assert_eq!(r.body["subject"], "Hi there at ");
    assert_eq!(r.body["html"], "<p>Hello </p><p>Plan: free</p>");

    // A change is checked whole; null clears a part.
    let r = app
        .patch(&format!("{}/{tid}", url(&p)), &p.key, json!({"html": null}))
        .await;
    assert_eq!((r.status, r.body["html"].clone()), (StatusCode::OK, Value::Null));
    let r = app
        .patch(&format!("{}/{tid}", url(&p)), &p.key, json!({"text": null}))
        .await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("html")));
    let r = app
        .post(
            &format!("{}/{tid}/preview", url(&p)),
            &p.key,
            json!({"contact_id": "01J0000000000000000000000A"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn syntax_errors_and_unknown_variables_are_refused_naming_part_line_and_column() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let cases = [
        (
            json!({"name": "x", "channel": "email", "subject": "ok", "html": "<p>a</p>\n<p>{{ first_name </p>"}),
            "html",
            "line 2, column",
        ),
        (
            json!({"name": "x", "channel": "email", "subject": "Hi {{ password }}", "text": "t"}),
            "subject",
            "line 1, column 7: unknown variable `password`",
        ),
        (
            json!({"name": "x", "channel": "sms", "body": "a\n{% if %}"}),
            "body",
            "line 2,",
        ),
        (
            json!({"name": "x", "channel": "email", "subject": "s", "text": "{% include \"/etc/passwd\" %}"}),
            "text",
            "",
        ),
        (
            json!({"name": "x", "channel": "sms", "subject": "s", "body": "b"}),
            "subject",
            "",
        ),
        (json!({"name": "x", "channel": "email", "subject": "s"}), "html", ""),
    ];
    for (body, field, start) in cases {
        let r = app.post(&url(&p), &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}: {:?}",
            r.body
        );
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(start), "{body}: {message}");
    }
    // Nothing was saved: only the starters are there.
    let all = app.get(&url(&p), &p.key).await;
    assert!(all.body["data"].as_array().unwrap().iter().all(|t| t["system"] == true));
}

#[tokio::test]
async fn every_project_has_read_only_starters() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let all = app.get(&url(&p), &p.key).await;
    let starters: Vec<&Value> = all.body["data"].as_array().unwrap().iter().collect();
    assert!(starters.len() >= 3, "{:?}", all.body);
    let sms = app.get(&format!("{}?channel=sms", url(&p)), &p.key).await;
    assert!(sms.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["channel"] == "sms"));
    let id = starters[0]["id"].as_str().unwrap();
    let r = app
        .patch(&format!("{}/{id}", url(&p)), &p.key, json!({"name": "Mine"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, Some("system_template")));
    let r = app.delete(&format!("{}/{id}", url(&p)), &p.key).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let cid = contact(&app, &p, json!({"email": "c@example.com", "first_name": "Cy"})).await;
    let r = app
        .post(&format!("{}/{id}/preview", url(&p)), &p.key, json!({"contact_id": cid}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["subject"].as_str().unwrap().contains("Cy"), "{:?}", r.body);

    // Another project's key reads none of this project's templates.
    let other = app.project().await;
    let mine = app
        .post(
            &url(&p),
            &p.key,
            json!({"name": "Own", "channel": "sms", "body": "hi {{ name }}"}),
        )
        .await;
    let tid = mine.body["id"].as_str().unwrap();
    let r = app
        .get(&format!("/v1/projects/{}/templates/{tid}", other.id), &other.key)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.delete(&format!("{}/{tid}", url(&p)), &p.key).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}
