//! BatchWriteItem in chunks of 25, retrying unprocessed items with jittered
//! backoff. The retry loop is separate from the SDK call so that it can be
//! tested without the emulator (which never returns unprocessed items).

use std::future::Future;

use aws_sdk_dynamodb::types::WriteRequest;

use super::{sdk_error, Store};
use crate::{Error, Result};

/// DynamoDB's cap on one BatchWriteItem.
pub const MAX_BATCH: usize = 25;
const MAX_ATTEMPTS: u32 = 10;

/// Sends `requests` 25 at a time through `send`, which returns what was left
/// unprocessed; retries that with backoff. Returns how many calls were made.
pub async fn write_all<F, Fut>(requests: Vec<WriteRequest>, mut send: F) -> Result<usize>
where
    F: FnMut(Vec<WriteRequest>) -> Fut,
    Fut: Future<Output = Result<Vec<WriteRequest>>>,
{
    let mut calls = 0;
    let mut queue = requests;
    while !queue.is_empty() {
        let rest = queue.split_off(queue.len().min(MAX_BATCH));
        let mut chunk = std::mem::replace(&mut queue, rest);
        let mut attempt = 0;
        loop {
            calls += 1;
            let unprocessed = send(chunk).await?;
            if unprocessed.is_empty() {
                break;
            }
            attempt += 1;
            if attempt >= MAX_ATTEMPTS {
                return Err(Error::internal(format!(
                    "{} writes still unprocessed after {MAX_ATTEMPTS} tries",
                    unprocessed.len()
                )));
            }
            super::contacts::backoff(attempt).await;
            chunk = unprocessed;
        }
    }
    Ok(calls)
}

impl Store {
    pub async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<usize> {
        write_all(requests, |chunk| async move {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, chunk)
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    use std::collections::HashSet;
    use std::sync::Mutex;

    fn request(i: usize) -> WriteRequest {
        let key = super::super::key(format!("K#{i}"), "X");
        WriteRequest::builder()
            .delete_request(DeleteRequest::builder().set_key(Some(key)).build().unwrap())
            .build()
    }

    fn id(r: &WriteRequest) -> String {
        r.delete_request().unwrap().key()["PK"].as_s().unwrap().clone()
    }

    // Real backoffs (no paused clock): a paused clock needs tokio's test-util,
    // which would give tests another tokio build than make dev's, and every SDK crate with it.
    #[tokio::test]
    async fn chunks_of_25_and_unprocessed_items_are_retried_until_done() {
        let seen = Mutex::new(Vec::<String>::new());
        let sizes = Mutex::new(Vec::new());
        let mut round = 0;
        let calls = write_all((0..60).map(request).collect(), |chunk| {
            round += 1;
            sizes.lock().unwrap().push(chunk.len());
            // Every other call leaves its last three items unprocessed.
            let keep = if round % 2 == 1 && chunk.len() > 3 {
                chunk.len() - 3
            } else {
                chunk.len()
            };
            let (done, left) = chunk.split_at(keep);
            seen.lock().unwrap().extend(done.iter().map(id));
            let left = left.to_vec();
            async move { Ok(left) }
        })
        .await
        .unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 60);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 60, "no item written twice");
        assert!(sizes.lock().unwrap().iter().all(|&n| n <= MAX_BATCH));
        assert!(calls > 3);
    }

    #[tokio::test]
    async fn gives_up_when_nothing_ever_goes_through() {
        let result = write_all(vec![request(1)], |chunk| async move { Ok(chunk) }).await;
        assert!(result.is_err());
    }
}
