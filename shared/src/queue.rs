//! The SQS adapter: messages out (workers receive theirs from their event
//! source, or from the local runner's poller).

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use serde::Serialize;

use crate::{Error, Result};

#[derive(Clone)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
        }
    }

    pub async fn send<T: Serialize>(&self, message: &T) -> Result<()> {
        self.send_all(std::slice::from_ref(message)).await
    }

    /// Sends every message, ten per call (SQS's batch size); entries SQS
    /// refuses are sent again, and a second refusal is an error.
    pub async fn send_all<T: Serialize>(&self, messages: &[T]) -> Result<()> {
        for batch in messages.chunks(10) {
            let mut pending: Vec<SendMessageBatchRequestEntry> = batch
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let body = serde_json::to_string(m).map_err(Error::internal)?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(Error::internal)
                })
                .collect::<Result<_>>()?;
            for attempt in 0..3 {
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| Error::Internal(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                if failed.is_empty() {
                    break;
                }
                if attempt == 2 {
                    return Err(Error::internal(format!("SQS refused {} messages", failed.len())));
                }
                pending.retain(|e| failed.contains(&e.id()));
            }
        }
        Ok(())
    }
}
