//! Audience sorts: every sort in both directions, paged and whole, with
//! filters, and kept in step with the writes that move a contact.

use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

/// Every page of `query` at `limit`, as the contacts' first names (or "-").
async fn walk(app: &TestApp, p: &TestProject, query: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = format!("{}?limit={limit}&{query}", p.contacts());
    loop {
        let r = app.get(&url, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
        out.extend(r.body["data"].as_array().unwrap().iter().map(label));
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{}?limit={limit}&{query}&cursor={c}", p.contacts()),
            None => return out,
        }
    }
}

fn label(c: &Value) -> String {
    c["first_name"]
        .as_str()
        .or(c["email"].as_str())
        .unwrap_or("-")
        .to_string()
}

/// The same order whether read two at a time or all at once.
async fn sorted(app: &TestApp, p: &TestProject, query: &str) -> Vec<String> {
    let whole = walk(app, p, query, 100).await;
    assert_eq!(
        walk(app, p, query, 2).await,
        whole,
        "{query}: pages differ from one read"
    );
    whole
}

#[tokio::test]
async fn every_sort_in_both_directions_pages_exactly() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let specs = [
        json!({"email": "carol@example.com", "first_name": "Carol", "last_name": "Young", "type": "customer"}),
        json!({"email": "alice@example.com", "first_name": "alice", "last_name": "Zed"}),
        json!({"email": "bob@example.com", "first_name": "Bob", "type": "employee"}),
        json!({"phone": "+14155552671", "first_name": "Dave"}),
        json!({"email": "erin@example.com"}),
    ];
    let mut ids = Vec::new();
    for s in specs {
        let r = app.post(&p.contacts(), &p.key, s).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    assert_eq!(
        sorted(&app, &p, "").await,
        names(&["erin@example.com", "Dave", "Bob", "alice", "Carol"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=created_at&order=asc").await,
        names(&["Carol", "alice", "Bob", "Dave", "erin@example.com"])
    );
    // Names case-insensitive, by full name; no name last.
    assert_eq!(
        sorted(&app, &p, "sort=name").await,
        names(&["alice", "Bob", "Carol", "Dave", "erin@example.com"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=name&order=desc").await,
        names(&["erin@example.com", "Dave", "Carol", "Bob", "alice"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=email").await,
        names(&["alice", "Bob", "Carol", "erin@example.com", "Dave"])
    );
    // Type, then the oldest first within a type.
    assert_eq!(
        sorted(&app, &p, "sort=type").await,
        names(&["Carol", "Bob", "alice", "Dave", "erin@example.com"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=type&order=desc").await,
        names(&["erin@example.com", "Dave", "alice", "Bob", "Carol"])
    );

    // A change moves a contact in the update and activity orders; a first
    // name written alone still sorts by the whole name.
    let r = app
        .request(
            reqwest::Method::PATCH,
            &p.contact(&ids[2]),
            Some(&p.key),
            Some(json!({"company": "Acme"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app
        .request(
            reqwest::Method::PATCH,
            &p.contact(&ids[0]),
            Some(&p.key),
            Some(json!({"first_name": "Aaron"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        sorted(&app, &p, "sort=updated_at").await,
        names(&["Aaron", "Bob", "erin@example.com", "Dave", "alice"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=last_activity_at").await,
        names(&["Aaron", "Bob", "erin@example.com", "Dave", "alice"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=updated_at&order=asc").await,
        names(&["alice", "Dave", "erin@example.com", "Bob", "Aaron"])
    );
    assert_eq!(
        sorted(&app, &p, "sort=name").await,
        names(&["Aaron", "alice", "Bob", "Dave", "erin@example.com"])
    );

    // Filters read the project's contacts in the sort asked for.
    assert_eq!(
        sorted(&app, &p, "has_email=true&sort=email&order=desc").await,
        names(&["erin@example.com", "Aaron", "Bob", "alice"])
    );
    assert_eq!(
        sorted(&app, &p, "type=lead&sort=name").await,
        names(&["alice", "Dave", "erin@example.com"])
    );

    // A soft-deleted contact leaves every order.
    assert_eq!(app.delete(&p.contact(&ids[1]), &p.key).await.status, StatusCode::OK);
    for q in [
        "sort=name",
        "sort=email",
        "sort=type",
        "sort=updated_at",
        "sort=last_activity_at",
    ] {
        assert!(!sorted(&app, &p, q).await.contains(&"alice".to_string()), "{q}");
    }
}

#[tokio::test]
async fn sorts_refuse_what_they_cannot_do() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    for i in 0..3 {
        app.post(
            &p.contacts(),
            &p.key,
            json!({"email": format!("s{i}@example.com"), "tags": ["T"]}),
        )
        .await;
    }
    let r = app.get(&format!("{}?sort=name&limit=1", p.contacts()), &p.key).await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    // A cursor belongs to its sort and direction.
    for other in ["sort=email", "sort=name&order=desc", ""] {
        let r = app
            .get(&format!("{}?{other}&cursor={cursor}", p.contacts()), &p.key)
            .await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor")),
            "{other}"
        );
    }
    let cases = [
        "sort=shoe_size",
        "order=sideways",
        "q=s1&sort=name",
        "q=s1&order=asc",
        "tags=T&sort=name",
    ];
    for q in cases {
        let r = app.get(&format!("{}?{q}", p.contacts()), &p.key).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {:?}", r.body);
    }
    let r = app.get(&format!("{}?tags=T&sort=name", p.contacts()), &p.key).await;
    assert_eq!(r.field(), Some("sort"));
    // Newest first is what a tag filter gives, asked for or not.
    let r = app
        .get(&format!("{}?tags=T&sort=created_at&order=desc", p.contacts()), &p.key)
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn total_counts_what_the_query_selects() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    for i in 0..7 {
        let tags = if i % 3 == 0 { json!(["VIP"]) } else { json!([]) };
        app.post(
            &p.contacts(),
            &p.key,
            json!({"email": format!("t{i}@example.com"), "first_name": if i < 2 { "Tess" } else { "Ray" }, "tags": tags}),
        )
        .await;
    }
    let gone = app
        .post(&p.contacts(), &p.key, json!({"email": "gone@example.com"}))
        .await;
    app.delete(&p.contact(gone.body["id"].as_str().unwrap()), &p.key).await;
    let total = |query: &'static str| {
        let (app, p) = (&app, &p);
        async move {
            let r = app
                .get(&format!("{}?limit=1&total=true&{query}", p.contacts()), &p.key)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
            r.body["total"].as_u64()
        }
    };
    assert_eq!(total("").await, Some(7));
    assert_eq!(total("sort=name&order=desc").await, Some(7));
    assert_eq!(total("tags=VIP").await, Some(3));
    assert_eq!(total("exclude_tags=VIP&has_email=true").await, Some(4));
    assert_eq!(total("q=tess").await, Some(2));
    assert_eq!(total("email=t1%40example.com").await, Some(1));
    // Not asked for, not given.
    let r = app.get(&p.contacts(), &p.key).await;
    assert!(r.body.get("total").is_none(), "{:?}", r.body);
    let r = app.get(&format!("{}?q=tess&tags=VIP", p.contacts()), &p.key).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("q")));
}
