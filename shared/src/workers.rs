//! The SQS-driven functions' handlers: one batch of messages in, the ids of
//! the messages that failed out (`ReportBatchItemFailures`), so that only
//! those are delivered again and, after a few tries, go to the DLQ. The
//! Lambdas and the local runner call exactly these.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::error;

use crate::usecases::bulk::{self, Jobs};
use crate::usecases::imports::{self, Importer, WorkerMessage};
use crate::Error;

/// One message's body, and how many times it has been delivered (more than
/// once: a handler failed or died on it before).
struct Received {
    body: String,
    receives: u32,
}

async fn each_message<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Received) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.unwrap_or_default();
        let receives = message.attributes.get("ApproximateReceiveCount");
        let received = Received {
            body: message.body.unwrap_or_default(),
            receives: receives.and_then(|n| n.parse().ok()).unwrap_or(1),
        };
        if let Err(e) = handle(received).await {
            error!(message_id = %id, error = %e, "message failed; it will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The import planner: S3 notifications and start requests.
pub async fn plan_batch(ctx: &Importer, event: SqsEvent) -> SqsBatchResponse {
    // Boxed: the use case's future is deep enough to exhaust the compiler's layout limit inline.
    each_message(event, |d| async move {
        Box::pin(imports::handle_plan_message(ctx, &d.body, d.receives)).await
    })
    .await
}

/// The chunk worker: one chunk (or one cancelled job's report) per message.
pub async fn chunk_batch(ctx: &Importer, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |d| async move {
        let msg: WorkerMessage =
            serde_json::from_str(&d.body).map_err(|e| Error::internal(format!("not a chunk message: {e}")))?;
        Box::pin(imports::handle_worker_message(ctx, &msg, d.receives)).await
    })
    .await
}

/// The bulk worker: plans a bulk job or works one chunk of it, per message.
pub async fn bulk_batch(jobs: &Jobs, event: SqsEvent) -> SqsBatchResponse {
    each_message(
        event,
        |d| async move { Box::pin(bulk::handle_message(jobs, &d.body)).await },
    )
    .await
}

/// The SES events consumer: one event record per message.
pub async fn ses_batch(store: &crate::store::Store, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |d| async move {
        Box::pin(crate::usecases::feedback::handle_ses_message(
            store, &d.body, d.receives,
        ))
        .await
    })
    .await
}

/// The send worker: plans a broadcast, sends one chunk of it, or runs the scheduler's tick.
pub async fn send_batch(broadcasts: &crate::usecases::broadcasts::Broadcasts, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |d| async move {
        Box::pin(crate::usecases::broadcasts::handle_message(broadcasts, &d.body)).await
    })
    .await
}

/// The export worker: one export a message, run whole.
pub async fn export_batch(exports: &crate::usecases::exports::Exports, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |d| async move {
        Box::pin(crate::usecases::exports::handle_message(exports, &d.body, d.receives)).await
    })
    .await
}
