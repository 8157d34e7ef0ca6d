//! Audience filters: fields, tags (all / any / none), lists, created range, has email / phone.

use reqwest::{Method, StatusCode};
use roster_e2e::{TestApp, TestProject};
use serde_json::json;

async fn emails(app: &TestApp, p: &TestProject, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = format!("{}?limit=2&{query}", p.contacts());
    loop {
        let r = app.get(&url, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
        out.extend(
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["email"].as_str().unwrap_or("-").to_string()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{}?limit=2&{query}&cursor={c}", p.contacts()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn filters_select_exactly_and_page_through() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let list_id = app.email_list(&p, "L", "l@example.com").await;
    let specs = [
        json!({"email": "a@example.com", "type": "customer", "intent": "high", "tags": ["VIP", "Beta"], "add_to_lists": [list_id]}),
        json!({"email": "b@example.com", "tags": ["VIP"], "phone": "+14155552671"}),
        json!({"email": "c@example.com", "tags": ["Beta"], "source": "manual", "add_to_lists": [list_id]}),
        json!({"email": "d@example.com", "type": "customer"}),
        json!({"phone": "+14155552672"}),
    ];
    let mut ids = Vec::new();
    for s in specs {
        let r = app.post(&p.contacts(), &p.key, s).await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let mid = app.get(&p.contact(&ids[2]), &p.key).await.body["created_at"]
        .as_str()
        .unwrap()
        .to_string();
    app.request(
        Method::PUT,
        &format!("/v1/projects/{}/lists/{list_id}/contacts/{}", p.id, ids[2]),
        Some(&p.key),
        Some(json!({"status": "unsubscribed"})),
    )
    .await;

    assert_eq!(
        emails(&app, &p, "type=customer").await,
        vec!["d@example.com", "a@example.com"]
    );
    assert_eq!(
        emails(&app, &p, "tags=vip").await,
        vec!["b@example.com", "a@example.com"]
    );
    assert_eq!(emails(&app, &p, "tags=VIP,beta").await, vec!["a@example.com"]);
    assert_eq!(
        emails(&app, &p, "any_tags=vip,beta").await,
        vec!["c@example.com", "b@example.com", "a@example.com"]
    );
    assert_eq!(
        emails(&app, &p, "any_tags=vip,beta&exclude_tags=beta").await,
        vec!["b@example.com"]
    );
    assert_eq!(emails(&app, &p, "tags=nosuchtag").await, Vec::<String>::new());
    assert_eq!(
        emails(&app, &p, &format!("list_id={list_id}")).await,
        vec!["c@example.com", "a@example.com"]
    );
    assert_eq!(
        emails(&app, &p, &format!("list_id={list_id}&list_status=active")).await,
        vec!["a@example.com"]
    );
    assert_eq!(emails(&app, &p, "intent=high").await, vec!["a@example.com"]);
    assert_eq!(emails(&app, &p, "source=manual").await, vec!["c@example.com"]);
    assert_eq!(emails(&app, &p, "has_email=false").await, vec!["-"]);
    assert_eq!(
        emails(&app, &p, "has_phone=true&has_email=true").await,
        vec!["b@example.com"]
    );
    let enc = mid.replace(':', "%3A").replace('+', "%2B");
    assert_eq!(
        emails(&app, &p, &format!("created_after={enc}")).await,
        vec!["-", "d@example.com", "c@example.com"]
    );
    assert_eq!(
        emails(&app, &p, &format!("created_before={enc}&type=lead")).await,
        vec!["b@example.com"]
    );

    let r = app.get(&format!("{}?type=alien", p.contacts()), &p.key).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("type")));
    let r = app.get(&format!("{}?list_status=active", p.contacts()), &p.key).await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("list_status"))
    );
}
