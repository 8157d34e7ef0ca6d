//! Referrals (set once, no self-referral or cycles, exact counts under
//! concurrency) and events (a purchase turns a lead into a customer).

use futures::future::join_all;
use reqwest::StatusCode;
use roster_e2e::{TestApp, TestProject};
use serde_json::{json, Value};

async fn join(app: &TestApp, p: &TestProject, email: &str, code: Option<&str>) -> Value {
    let mut body = json!({"email": email});
    if let Some(c) = code {
        body["ref"] = json!(c);
    }
    let r = app.public(p, "waitlist", &format!("9.{}.0.1", email.len()), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn id_of(app: &TestApp, p: &TestProject, email: &str) -> String {
    let r = app
        .get(&format!("{}?email={}", p.contacts(), email.replace('@', "%40")), &p.key)
        .await;
    r.body["data"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn referrals_are_set_once_and_refuse_self_and_cycles() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let root = join(&app, &p, "root@example.com", None).await;
    let root_code = root["referral_code"].as_str().unwrap().to_string();
    let b = join(&app, &p, "b@example.com", Some(&root_code.to_uppercase())).await;
    assert_eq!(b["referral"], "applied");
    let b_code = b["referral_code"].as_str().unwrap().to_string();
    let c = join(&app, &p, "c@example.com", Some(&b_code)).await;
    assert_eq!(c["referral"], "applied");

    // Set once: a second code does not move it.
    assert_eq!(
        join(&app, &p, "c@example.com", Some(&root_code)).await["referral"],
        "already_referred"
    );
    assert_eq!(
        join(&app, &p, "root@example.com", Some(&root_code)).await["referral"],
        "self_referral"
    );
    // root ← b ← c: root taking c's code would close a loop.
    let c_code = c["referral_code"].as_str().unwrap().to_string();
    assert_eq!(
        join(&app, &p, "root@example.com", Some(&c_code)).await["referral"],
        "cycle"
    );
    assert_eq!(
        join(&app, &p, "d@example.com", Some("ref_nosuchcode")).await["referral"],
        "invalid_code"
    );
    // A code of another project is not valid here.
    let other = app.project().await;
    let foreign = join(&app, &other, "x@example.com", None).await;
    assert_eq!(
        join(&app, &p, "e@example.com", foreign["referral_code"].as_str()).await["referral"],
        "invalid_code"
    );

    let (root_id, b_id, c_id) = (
        id_of(&app, &p, "root@example.com").await,
        id_of(&app, &p, "b@example.com").await,
        id_of(&app, &p, "c@example.com").await,
    );
    let r = app.get(&format!("{}/referrals", p.contact(&c_id)), &p.key).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let chain: Vec<_> = r.body["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(chain, vec![b_id.as_str(), root_id.as_str()]);
    let r = app.get(&format!("{}/referrals", p.contact(&root_id)), &p.key).await;
    assert_eq!(r.body["referral_count"], 1);
    assert_eq!(r.body["referred"]["data"][0]["id"], b_id);
    let contact = app.get(&p.contact(&b_id), &p.key).await;
    assert_eq!(
        (
            contact.body["referred_by"].as_str(),
            contact.body["referral_count"].as_u64()
        ),
        (Some(root_id.as_str()), Some(1))
    );
}

#[tokio::test]
async fn referral_counts_stay_exact_under_concurrent_signups() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let root = join(&app, &p, "popular@example.com", None).await;
    let code = root["referral_code"].as_str().unwrap().to_string();
    let signups = (0..25).map(|i| {
        let (app, p, code) = (&app, &p, code.clone());
        async move {
            // Each friend signs up twice at once: one referral each, all the same.
            let email = format!("friend{i}@example.com");
            let body = json!({"email": email, "ref": code});
            join_all([
                app.public(p, "waitlist", &format!("12.0.{i}.1"), body.clone()),
                app.public(p, "waitlist", &format!("12.0.{i}.2"), body),
            ])
            .await
        }
    });
    for pair in join_all(signups).await {
        assert!(
            pair.iter().all(|r| r.status == StatusCode::CREATED),
            "{:?}",
            pair.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
    }
    let root_id = id_of(&app, &p, "popular@example.com").await;
    let contact = app.get(&p.contact(&root_id), &p.key).await;
    assert_eq!(contact.body["referral_count"], 25);
    // Whom they referred, paginated: 25 in pages of 10, no repeats.
    let mut seen = std::collections::HashSet::new();
    let mut url = format!("{}/referrals?limit=10", p.contact(&root_id));
    loop {
        let r = app.get(&url, &p.key).await;
        for x in r.body["referred"]["data"].as_array().unwrap() {
            assert!(seen.insert(x["id"].as_str().unwrap().to_string()));
        }
        match r.body["referred"]["next_cursor"].as_str() {
            Some(c) => url = format!("{}/referrals?limit=10&cursor={c}", p.contact(&root_id)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn the_first_purchase_makes_a_customer() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    let events = format!("/v1/projects/{}/events", p.id);
    let lead = app
        .post(
            &p.contacts(),
            &p.key,
            json!({"email": "buyer@example.com", "tags": ["Newsletter"]}),
        )
        .await;
    let id = lead.body["id"].as_str().unwrap();
    assert_eq!(lead.body["type"], "lead");

    let r = app.post(&events, &p.key, json!({"type": "purchase", "email": "BUYER@example.com", "amount": 49.5, "currency": "eur", "offer": "Pro yearly", "tags": ["Customer", "newsletter"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["became_customer"], true);
    assert_eq!(r.body["contact"]["type"], "customer");
    assert_eq!(r.body["contact"]["total_revenue"], 49.5);
    assert_eq!(r.body["contact"]["tags"], json!(["Newsletter", "Customer"]));
    assert_eq!(r.body["activity"]["data"]["currency"], "EUR");

    let r = app
        .post(
            &events,
            &p.key,
            json!({"type": "purchase", "contact_id": id, "amount": 10}),
        )
        .await;
    assert_eq!(
        (
            r.body["became_customer"].as_bool(),
            r.body["contact"]["total_revenue"].as_f64()
        ),
        (Some(false), Some(59.5))
    );

    let r = app
        .post(
            &events,
            &p.key,
            json!({"type": "meeting_booked", "contact_id": id, "data": {"with": "sales"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["activity"]["type"].as_str()),
        (StatusCode::CREATED, Some("meeting_booked"))
    );
    let t = app.get(&format!("{}/timeline", p.contact(id)), &p.key).await;
    let kinds: Vec<_> = t.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "meeting_booked",
            "purchase",
            "contact_updated",
            "purchase",
            "contact_created"
        ]
    );
    let became = &t.body["data"][2];
    assert_eq!(
        became["data"]["changes"]["type"],
        json!({"from": "lead", "to": "customer"})
    );

    // A purchase from someone new creates them, as a customer.
    let r = app
        .post(
            &events,
            &p.key,
            json!({"type": "purchase", "email": "new.buyer@example.com", "amount": 5}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["contact"]["type"].as_str()),
        (StatusCode::CREATED, Some("customer"))
    );

    for (body, field) in [
        (json!({"type": "purchase", "contact_id": id}), "amount"),
        (json!({"type": "purchase", "contact_id": id, "amount": -1}), "amount"),
        (
            json!({"type": "purchase", "contact_id": id, "amount": 1, "currency": "euros"}),
            "currency",
        ),
        (json!({"type": "page_visit", "contact_id": id, "amount": 1}), "amount"),
        (json!({"type": "contact_created", "contact_id": id}), "type"),
        (json!({"type": "purchase", "amount": 1}), "contact_id"),
        (
            json!({"type": "purchase", "amount": 1, "email": "a@b.co", "contact_id": id}),
            "contact_id",
        ),
    ] {
        let r = app.post(&events, &p.key, body.clone()).await;
        assert_eq!(
            (r.status, r.field()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body}"
        );
    }
    let r = app
        .post(
            &events,
            &p.key,
            json!({"type": "purchase", "contact_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "amount": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let after = app.get(&p.contact(id), &p.key).await;
    assert_eq!(after.body["total_revenue"], 59.5, "refused events changed nothing");

    // A manual type or intent change is on the timeline too.
    app.patch(&p.contact(id), &p.key, json!({"intent": "high"})).await;
    let t = app
        .get(&format!("{}/timeline?type=contact_updated", p.contact(id)), &p.key)
        .await;
    assert_eq!(
        t.body["data"][0]["data"]["changes"]["intent"],
        json!({"from": null, "to": "high"})
    );
}

#[tokio::test]
async fn the_audience_sorts_by_referral_count() {
    let app = TestApp::spawn().await;
    let p = app.project().await;
    // a: 3 referrals, b: 1, c: 2, d: 0 (and the friends themselves: 0).
    let mut codes = Vec::new();
    for name in ["a", "b", "c", "d"] {
        codes.push(
            join(&app, &p, &format!("{name}@example.com"), None).await["referral_code"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut n = 0;
    for (code, count) in codes.iter().zip([3, 1, 2, 0]) {
        for _ in 0..count {
            n += 1;
            join(&app, &p, &format!("f{n}@example.com"), Some(code)).await;
        }
    }
    let mut order = Vec::new();
    let mut url = format!("{}?sort=referral_count&limit=2", p.contacts());
    loop {
        let r = app.get(&url, &p.key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        order.extend(r.body["data"].as_array().unwrap().iter().map(|c| {
            (
                c["email"].as_str().unwrap().to_string(),
                c["referral_count"].as_u64().unwrap(),
            )
        }));
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("{}?sort=referral_count&limit=2&cursor={c}", p.contacts()),
            None => break,
        }
    }
    assert_eq!(order.len(), 10);
    let top: Vec<_> = order.iter().take(3).map(|(e, c)| (e.as_str(), *c)).collect();
    assert_eq!(
        top,
        vec![("a@example.com", 3), ("c@example.com", 2), ("b@example.com", 1)]
    );
    assert!(order.windows(2).all(|w| w[0].1 >= w[1].1));

    // A cursor belongs to its sort.
    let r = app.get(&format!("{}?limit=2", p.contacts()), &p.key).await;
    let cursor = r.body["next_cursor"].as_str().unwrap();
    let r = app
        .get(&format!("{}?sort=referral_count&cursor={cursor}", p.contacts()), &p.key)
        .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
}
