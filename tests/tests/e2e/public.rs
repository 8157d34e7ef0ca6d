//! Public submission endpoints: keys, CORS, honeypot, rate limits, records,
//! fill-blanks upserts and the source upgrade.

use futures::future::join_all;
use reqwest::StatusCode;
use roster_e2e::{TestApp, ADMIN};
use serde_json::{json, Value};

async fn contact_by_email(app: &TestApp, p: &roster_e2e::TestProject, email: &str) -> Value {
    let r = app
        .get(&format!("{}?email={}", p.contacts(), email.replace('@', "%40")), &p.key)
        .await;
    r.body["data"][0].clone()
}

#[tokio::test]
async fn waitlist_signup_creates_a_linked_record_and_a_referral_code() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app
        .public(
            &p,
            "waitlist",
            "1.1.1.1",
            json!({"email": "Wait@Example.com", "name": "Wai Ting", "metadata": {"utm": "x"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["kind"], "waitlist");
    let code = r.body["referral_code"].as_str().unwrap().to_string();
    assert!(code.starts_with("ref_"));
    // No personal data in the public reply.
    assert!(!r.body.to_string().contains("wait@"));

    let c = contact_by_email(&app, &p, "wait@example.com").await;
    assert_eq!(
        (c["source"].as_str(), c["referral_code"].as_str()),
        (Some("waitlist"), Some(code.as_str()))
    );
    assert_eq!(c["first_name"], "Wai");
    assert_eq!(c["metadata"]["utm"], "x");
    let profile = app
        .get(&format!("{}/profile", p.contact(c["id"].as_str().unwrap())), &p.key)
        .await;
    assert_eq!(profile.status, StatusCode::OK, "{:?}", profile.body);
    assert_eq!(profile.body["waitlist_signups"][0]["id"], r.body["id"]);
    assert_eq!(profile.body["waitlist_signups"][0]["fields"]["name"], "Wai Ting");
    let kinds: Vec<_> = profile.body["recent_activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["waitlist_signup", "contact_created"]);

    // The key may come as ?key=; the secret key or none is refused; unknown fields are named.
    let url = format!("{}/v1/public/{}/waitlist?key={}", app.base, p.id, p.publishable_key);
    let r = TestApp::reply(app.http.post(&url).json(&json!({"email": "q@example.com"}))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let url = format!("{}/v1/public/{}/waitlist", app.base, p.id);
    let r = TestApp::reply(
        app.http
            .post(&url)
            .header("X-Publishable-Key", &p.key)
            .json(&json!({"email": "q@example.com"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = TestApp::reply(app.http.post(&url).json(&json!({"email": "q@example.com"}))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .public(
            &p,
            "waitlist",
            "1.1.1.1",
            json!({"email": "q@example.com", "favourite": "x"}),
        )
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("favourite"))
    );
    let r = app.public(&p, "waitlist", "1.1.1.1", json!({"name": "No Email"})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
}

#[tokio::test]
async fn forms_keep_every_field_and_fill_blanks_without_erasing() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "f@example.com", "company": "Known Co", "phone": "+14155552671"}),
    )
    .await;
    let r = app.public(&p, "forms/demo-request", "2.2.2.2", json!({"email": "F@example.com", "name": "Fay Form", "company": "Other Co", "phone": "+14155550000", "team_size": 12, "notes": "call me"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let c = contact_by_email(&app, &p, "f@example.com").await;
    assert_eq!(c["company"], "Known Co", "a submission never overwrites");
    assert_eq!(c["phone"], "+14155552671");
    assert_eq!(c["full_name"], "Fay Form", "but fills blanks");
    assert_eq!(c["source"], "form");
    // The phone the form carried was not taken for this contact: it is still free.
    let other = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "g@example.com", "phone": "+14155550000"}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);

    // An HTML form post works too.
    let url = format!("{}/v1/public/{}/forms/newsletter", app.base, p.id);
    let r = TestApp::reply(
        app.http
            .post(&url)
            .header("X-Publishable-Key", &p.publishable_key)
            .form(&[("email", "html@example.com"), ("plan", "pro")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let c = contact_by_email(&app, &p, "html@example.com").await;
    let profile = app
        .get(&format!("{}/profile", p.contact(c["id"].as_str().unwrap())), &p.key)
        .await;
    let sub = &profile.body["form_submissions"][0];
    assert_eq!(
        (sub["form_id"].as_str(), sub["fields"]["plan"].as_str()),
        (Some("newsletter"), Some("pro"))
    );

    let r = app
        .public(&p, "forms/bad%20id", "2.2.2.2", json!({"email": "x@example.com"}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("form_id"))
    );
}

#[tokio::test]
async fn contact_messages_are_kept_listed_searched_and_triaged() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    for (email, subject, message) in [
        ("m1@example.com", "Pricing", "How much is the pro plan?"),
        ("m2@example.com", "Bug", "The export button does nothing"),
        ("m1@example.com", "Pricing again", "Any discount for nonprofits?"),
    ] {
        let r = app
            .public(
                &p,
                "messages",
                "3.3.3.3",
                json!({"email": email, "name": "Em", "subject": subject, "message": message}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let r = app
        .public(&p, "messages", "3.3.3.3", json!({"email": "m3@example.com"}))
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message"))
    );

    let all = app
        .get(&format!("/v1/projects/{}/contact-messages", p.id), &p.key)
        .await;
    let subjects: Vec<_> = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, vec!["Pricing again", "Bug", "Pricing"]);
    assert!(all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "new"));

    let bug_id = all.body["data"][1]["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/v1/projects/{}/contact-messages/{bug_id}", p.id),
            &p.key,
            json!({"status": "replied"}),
        )
        .await;
    assert_eq!((r.status, r.body["status"].as_str()), (StatusCode::OK, Some("replied")));
    let r = app
        .patch(
            &format!("/v1/projects/{}/contact-messages/{bug_id}", p.id),
            &p.key,
            json!({"status": "lost"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .patch(
            &format!("/v1/projects/{}/contact-messages/01ARZ3NDEKTSV4RRFFQ69G5FAV", p.id),
            &p.key,
            json!({"status": "read"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let new = app
        .get(&format!("/v1/projects/{}/contact-messages?status=new", p.id), &p.key)
        .await;
    assert_eq!(new.body["data"].as_array().unwrap().len(), 2);
    let found = app
        .get(&format!("/v1/projects/{}/contact-messages?q=DISCOUNT", p.id), &p.key)
        .await;
    assert_eq!(found.body["data"][0]["subject"], "Pricing again");
    assert_eq!(found.body["data"].as_array().unwrap().len(), 1);
    let paged = app
        .get(&format!("/v1/projects/{}/contact-messages?limit=2", p.id), &p.key)
        .await;
    let next = paged.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/v1/projects/{}/contact-messages?limit=2&cursor={next}", p.id),
            &p.key,
        )
        .await;
    assert_eq!(rest.body["data"][0]["subject"], "Pricing");

    let c = contact_by_email(&app, &p, "m1@example.com").await;
    assert_eq!(
        (c["messages_in"].as_u64(), c["source"].as_str()),
        (Some(2), Some("contact_form"))
    );
}

#[tokio::test]
async fn chat_conversations_start_append_and_keep_a_summary() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app
        .public(
            &p,
            "chat",
            "4.4.4.4",
            json!({"email": "chat@example.com", "message": "Hi, is there a free tier?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let conv = r.body["id"].as_str().unwrap().to_string();
    let r = app.public(&p, "chat", "4.4.4.4", json!({"conversation_id": conv, "role": "bot", "message": "Yes, up to 1,000 contacts.", "summary": "Asked about the free tier"})).await;
    assert_eq!(
        (r.status, r.body["id"].as_str()),
        (StatusCode::CREATED, Some(conv.as_str()))
    );
    let r = app
        .public(
            &p,
            "chat",
            "4.4.4.4",
            json!({"conversation_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "message": "hello?"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.public(&p, "chat", "4.4.4.4", json!({"message": "anonymous"})).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));

    let c = contact_by_email(&app, &p, "chat@example.com").await;
    assert_eq!(
        (c["source"].as_str(), c["messages_in"].as_u64()),
        (Some("chat"), Some(1))
    );
    let profile = app
        .get(&format!("{}/profile", p.contact(c["id"].as_str().unwrap())), &p.key)
        .await;
    let chat = &profile.body["chats"][0];
    assert_eq!(chat["summary"], "Asked about the free tier");
    let roles: Vec<_> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["visitor", "bot"]);
}

#[tokio::test]
async fn the_honeypot_drops_bots_silently() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    for path in ["waitlist", "forms/x", "messages", "chat"] {
        let r = app
            .public(
                &p,
                path,
                "5.5.5.5",
                json!({"email": "bot@example.com", "message": "buy", "_hp": "http://spam.example"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{path}");
    }
    assert_eq!(app.get(&p.contacts(), &p.key).await.body["data"], json!([]));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let r = app
        .patch(
            &format!("/v1/projects/{}", p.id),
            ADMIN,
            json!({"public_rate_per_ip": 3, "public_rate_per_project": 5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            app.public(&p, "waitlist", "6.6.6.6", json!({"email": format!("r{i}@example.com")}))
                .await,
        );
    }
    assert!(statuses[..3].iter().all(|r| r.status == StatusCode::CREATED));
    let limited = &statuses[3];
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // Another address still gets through, until the project's own limit.
    let r = app
        .public(&p, "waitlist", "7.7.7.7", json!({"email": "other@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .public(&p, "waitlist", "8.8.8.8", json!({"email": "third@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The limited submissions stored nothing.
    assert!(contact_by_email(&app, &p, "r3@example.com").await.is_null());
}

#[tokio::test]
async fn cors_is_limited_to_the_allowed_origins() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    app.patch(
        &format!("/v1/projects/{}", p.id),
        ADMIN,
        json!({"allowed_origins": ["https://launch.example.com"]}),
    )
    .await;
    let url = format!("{}/v1/public/{}/waitlist", app.base, p.id);
    let pre = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://launch.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://launch.example.com"
    );
    assert!(pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-publishable-key"));

    let ok = TestApp::reply(
        app.http
            .post(&url)
            .header("Origin", "https://launch.example.com")
            .header("X-Publishable-Key", &p.publishable_key)
            .json(&json!({"email": "o@example.com"})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(ok.headers["access-control-allow-origin"], "https://launch.example.com");
    let evil = TestApp::reply(
        app.http
            .post(&url)
            .header("Origin", "https://evil.example")
            .header("X-Publishable-Key", &p.publishable_key)
            .json(&json!({"email": "e@example.com"})),
    )
    .await;
    assert_eq!(
        (evil.status, evil.code()),
        (StatusCode::FORBIDDEN, Some("origin_not_allowed"))
    );
    assert!(evil.headers.get("access-control-allow-origin").is_none());
    assert!(contact_by_email(&app, &p, "e@example.com").await.is_null());
}

#[tokio::test]
async fn public_posts_are_idempotent() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let url = format!("{}/v1/public/{}/messages", app.base, p.id);
    let send = || {
        TestApp::reply(
            app.http
                .post(&url)
                .header("X-Publishable-Key", &p.publishable_key)
                .header("Idempotency-Key", "msg-1")
                .json(&json!({"email": "i@example.com", "message": "once"})),
        )
    };
    let (a, b) = (send().await, send().await);
    assert_eq!(a.body["id"], b.body["id"]);
    let list = app
        .get(&format!("/v1/projects/{}/contact-messages", p.id), &p.key)
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

const CHANNELS: [(&str, &str); 3] = [("waitlist", "waitlist"), ("chat", "chat"), ("messages", "contact_form")];

fn body_for(path: &str, email: &str) -> Value {
    json!({"email": email, "message": "hello"})
        .as_object()
        .map(|m| {
            let mut m = m.clone();
            if path == "waitlist" {
                m.remove("message");
            }
            Value::Object(m)
        })
        .unwrap()
}

#[tokio::test]
async fn the_source_is_the_highest_intent_channel_in_any_order() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for (n, order) in orders.iter().enumerate() {
        let email = format!("perm{n}@example.com");
        let mut best = 0u8;
        for &i in order {
            let (path, source) = CHANNELS[i];
            let r = app
                .public(&p, path, &format!("10.0.0.{n}"), body_for(path, &email))
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{path}: {:?}", r.body);
            // After each step the source is the best channel seen so far.
            let rank = |s: &str| match s {
                "waitlist" => 3,
                "chat" => 2,
                _ => 1,
            };
            best = best.max(rank(source));
            let c = contact_by_email(&app, &p, &email).await;
            assert_eq!(rank(c["source"].as_str().unwrap()), best, "order {order:?}");
        }
        assert_eq!(contact_by_email(&app, &p, &email).await["source"], "waitlist");
    }
    // An API write does not lower it.
    app.post(
        &p.contacts(),
        &p.key,
        json!({"email": "perm0@example.com", "source": "manual"}),
    )
    .await;
    assert_eq!(
        contact_by_email(&app, &p, "perm0@example.com").await["source"],
        "waitlist"
    );
}

#[tokio::test]
async fn racing_submissions_end_on_the_highest_channel_and_one_contact() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let calls = (0..12).map(|i| {
        let (path, _) = CHANNELS[i % 3];
        let app = &app;
        let p = &p;
        async move {
            app.public(p, path, &format!("11.0.0.{i}"), body_for(path, "race@example.com"))
                .await
        }
    });
    let replies = join_all(calls).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::CREATED),
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let all = app.get(&p.contacts(), &p.key).await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(all.body["data"][0]["source"], "waitlist");
}
