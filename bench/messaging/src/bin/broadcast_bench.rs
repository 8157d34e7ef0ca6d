//! A broadcast to a list of N contacts through one send worker, in this
//! process, against the emulators: DynamoDB through the counting proxy
//! (`roster_bench_import::delay`, no delay), SES and SQS the emulator's.
//! Reports the wall time from `send` to `completed`, the SQS messages the
//! broadcast went through, the SES calls, DynamoDB requests per 1,000
//! recipients by operation, and the emulator's busy time.
//! Usage: broadcast-bench RECIPIENTS → one JSON line.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use roster::domain::broadcast::{Audience, BroadcastState};
use roster::domain::contact::ContactInput;
use roster::domain::list::{Channel, ListInput};
use roster::domain::project::ProjectSettings;
use roster::domain::template::TemplateInput;
use roster::usecases::broadcasts::{self, BroadcastInput};
use roster::usecases::{contacts, lists, projects, templates};
use roster_bench_import::delay::DelayProxy;
use roster_bench_import::BenchError as Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(|_| "set AWS_ENDPOINT_URL_DYNAMODB")?;
    let template = roster_local::Template::load("template.yaml")?;
    let clients = roster_local::Clients::from_env().await;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let params = roster_local::local_parameters();
    let stack = template.provision(&format!("bbc{secs}"), &clients, &params).await?;
    let env = template.function_env("SendWorkerFunction", &stack, &params)?;
    let config = roster::Config::from_vars(|k| env.get(k).cloned())?;
    let proxy = DelayProxy::start(&upstream, Duration::ZERO).await?;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&clients.sdk)
            .endpoint_url(&proxy.url)
            .build(),
    );
    let store = roster::store::Store::new(dynamodb, config.table_name.clone());
    let bc = config.broadcasts(store.clone(), &clients.sdk).ok_or("no send queue")?;

    let created = projects::create(
        &store,
        ProjectSettings {
            name: Some("broadcast bench".into()),
            email_from: Some("news@example.com".into()),
            send_rate: Some(1000),
            ..Default::default()
        },
    )
    .await?;
    let project = projects::get(&store, &created.project.id).await?;
    let list = lists::create(
        &store,
        &project,
        ListInput {
            name: Some("Everyone".into()),
            channel: Some(Channel::Email),
            sender: Some("news@example.com".into()),
            description: None,
            messages_per_second: None,
        },
    )
    .await?;
    let loaded = Instant::now();
    let results: Vec<roster::Result<_>> = stream::iter(0..n)
        .map(|i| {
            let (store, project, list_id) = (&store, &project, list.id.clone());
            async move {
                let input = ContactInput {
                    email: Some(Some(format!("person{i}@example.org"))),
                    first_name: Some(Some(format!("Person{i}"))),
                    add_to_lists: Some(vec![list_id]),
                    ..Default::default()
                };
                contacts::upsert(store, project, input).await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let loading = loaded.elapsed().as_secs_f64();
    let t = templates::create(
        &store,
        &project.id,
        TemplateInput {
            name: Some("News".into()),
            channel: Some(Channel::Email),
            subject: Some(Some("News for {{ first_name | default(\"you\") }}".into())),
            html: Some(Some(
                "<p>Hi {{ first_name }}</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>".into(),
            )),
            text: Some(Some("Hi {{ first_name }}\nUnsubscribe: {{ unsubscribe_url }}".into())),
            body: None,
        },
    )
    .await?;
    let b = broadcasts::create(
        &bc,
        &project,
        BroadcastInput {
            template_id: Some(t.id.clone()),
            audience: Some(Audience {
                list_id: Some(list.id.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    let id = b.broadcast.id.clone();
    proxy.take_counts();
    proxy.take_upstream_busy();
    let start = Instant::now();
    broadcasts::send(&bc, &project, &id, Some("https://api.example.com")).await?;
    // One send worker: this loop is its poller.
    let queue_url = stack.names.get("SendQueue").cloned().ok_or("no SendQueue")?;
    let mut sqs_messages = 0u64;
    loop {
        let got = clients
            .sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await?;
        for m in got.messages.unwrap_or_default() {
            sqs_messages += 1;
            broadcasts::handle_message(&bc, m.body.as_deref().unwrap_or_default()).await?;
            clients
                .sqs
                .delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await?;
        }
        let state = store.get_broadcast(&project.id, &id).await?.map(|b| b.state);
        if matches!(state, Some(s) if s.is_final()) {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let busy = proxy.take_upstream_busy().as_secs_f64();
    let counts = proxy.take_counts();
    let v = broadcasts::get(&store, &project.id, &id).await?;
    let requests: u64 = counts.values().sum();
    let per_1000 = |x: u64| (x as f64 * 1000.0 / n as f64 * 10.0).round() / 10.0;
    println!(
        "{}",
        serde_json::json!({
            "recipients": v.broadcast.recipients,
            "state": v.broadcast.state,
            "completed": v.broadcast.state == BroadcastState::Completed,
            "sent": v.sent, "skipped": v.skipped, "failed": v.failed, "uncertain": v.uncertain,
            "contacts_loaded_seconds": (loading * 10.0).round() / 10.0,
            "seconds": (wall * 10.0).round() / 10.0,
            "recipients_per_second": (n as f64 / wall).round(),
            "emulator_busy_seconds": (busy * 10.0).round() / 10.0,
            "sqs_messages": sqs_messages,
            "ses_calls": v.sent + v.failed,
            "dynamodb_requests": requests,
            "dynamodb_per_1000": per_1000(requests),
            "by_operation_per_1000": counts.iter().map(|(k, c)| (k.clone(), per_1000(*c))).collect::<std::collections::BTreeMap<_, _>>(),
        })
    );
    Ok(())
}
