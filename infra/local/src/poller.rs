//! Drives an SQS-fed function the way Lambda's event source mapping does:
//! receive a batch, call the handler, delete what succeeded, leave the
//! reported failures to come back (and reach the DLQ after the queue's
//! maxReceiveCount). Messages in hand are kept invisible while they run.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use futures::future::BoxFuture;
use tracing::warn;

/// Pollers per function locally (Lambda would run up to the template's MaximumConcurrency).
pub const LOCAL_CONCURRENCY: usize = 4;

/// Locally, a message a killed runner held is seen again this soon.
const VISIBILITY_SECS: i32 = 20;

pub type Handler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// The handler a function's binary runs, over that function's own clients
/// (built from its environment as its Lambda would).
pub fn handler_for(
    binary: &str,
    config: &roster::Config,
    store: roster::store::Store,
    sdk: &aws_config::SdkConfig,
) -> roster::Result<Option<Handler>> {
    let missing = |what: &str| roster::Error::internal(format!("{binary}: {what} is not set"));
    Ok(match binary {
        "import-planner" => {
            let ctx = Arc::new(config.importer(store, sdk)?);
            Some(Arc::new(move |event| {
                let ctx = ctx.clone();
                Box::pin(async move { roster::workers::plan_batch(&ctx, event).await })
            }))
        }
        "import-worker" => {
            let ctx = Arc::new(config.importer(store, sdk)?);
            Some(Arc::new(move |event| {
                let ctx = ctx.clone();
                Box::pin(async move { roster::workers::chunk_batch(&ctx, event).await })
            }))
        }
        "bulk-worker" => {
            let ctx = Arc::new(config.jobs(store, sdk).ok_or_else(|| missing("BULK_QUEUE_URL"))?);
            Some(Arc::new(move |event| {
                let ctx = ctx.clone();
                Box::pin(async move { roster::workers::bulk_batch(&ctx, event).await })
            }))
        }
        "send-worker" => {
            let ctx = Arc::new(
                config
                    .broadcasts(store, sdk)
                    .ok_or_else(|| missing("SEND_QUEUE_URL or SIGNING_SECRET"))?,
            );
            Some(Arc::new(move |event| {
                let ctx = ctx.clone();
                Box::pin(async move { roster::workers::send_batch(&ctx, event).await })
            }))
        }
        "export-worker" => {
            let ctx = Arc::new(
                config
                    .exports(store, sdk)
                    .ok_or_else(|| missing("EXPORTS_BUCKET or EXPORT_QUEUE_URL"))?,
            );
            Some(Arc::new(move |event| {
                let ctx = ctx.clone();
                Box::pin(async move { roster::workers::export_batch(&ctx, event).await })
            }))
        }
        "ses-events" => {
            let store = Arc::new(store);
            Some(Arc::new(move |event| {
                let store = store.clone();
                Box::pin(async move { roster::workers::ses_batch(&store, event).await })
            }))
        }
        _ => None,
    })
}

pub async fn poll(sqs: aws_sdk_sqs::Client, url: String, batch_size: i32, handler: Handler) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(batch_size.clamp(1, 10))
            .visibility_timeout(VISIBILITY_SECS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let handles: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                (
                    m.message_id.clone().unwrap_or_default(),
                    m.receipt_handle.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut event = SqsEvent::default();
        event.records = messages
            .into_iter()
            .map(|m| {
                let mut msg = SqsMessage::default();
                msg.message_id = m.message_id;
                msg.receipt_handle = m.receipt_handle;
                msg.body = m.body;
                // As Lambda passes them: a handler can tell a message seen before.
                msg.attributes = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, value)| (name.as_str().to_string(), value))
                    .collect();
                msg
            })
            .collect();
        // In this task, not a spawned one: a killed poller must stop keeping
        // its messages hidden, or they would never come back.
        let response = tokio::select! {
            r = handler(event) => r,
            _ = keep_invisible(&sqs, &url, &handles) => unreachable!("the heartbeat never ends"),
        };
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = handles
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| !failed.contains(&id.as_str()))
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty() {
            if let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(done))
                .send()
                .await
            {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "delete failed; messages will come back");
            }
        }
    }
}

async fn keep_invisible(sqs: &aws_sdk_sqs::Client, url: &str, handles: &[(String, String)]) {
    loop {
        tokio::time::sleep(Duration::from_secs(VISIBILITY_SECS as u64 / 2)).await;
        for (_, receipt) in handles {
            let _ = sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(receipt)
                .visibility_timeout(VISIBILITY_SECS)
                .send()
                .await;
        }
    }
}

/// A schedule's input sent to its queue every `every`, with the scheduled
/// time filled in where EventBridge Scheduler fills it.
pub async fn tick(sqs: aws_sdk_sqs::Client, url: String, every: Duration, input: String) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    interval.tick().await; // The first tick is immediate; the schedule's first is one period in.
    loop {
        interval.tick().await;
        let body = input.replace(
            "<aws.scheduler.scheduled-time>",
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        if let Err(e) = sqs.send_message().queue_url(&url).message_body(body).send().await {
            warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "a scheduled message could not be sent");
        }
    }
}
