//! BatchWriteItem in chunks of 25, several chunks in flight at once,
//! retrying unprocessed items with jittered backoff. Against DynamoDB's
//! latency a batch of rows is bounded by its rounds of requests, not by
//! their number: a chunk sent after the one before has come back costs a
//! whole round trip. The retry loop is separate from the SDK call so that it
//! can be tested without the emulator (which never returns unprocessed items).

use std::collections::HashSet;
use std::future::Future;

use aws_sdk_dynamodb::types::WriteRequest;
use futures::StreamExt;

use super::{get_s, sdk_error, Store};
use crate::{Error, Result};

/// DynamoDB's cap on one BatchWriteItem.
pub const MAX_BATCH: usize = 25;
/// Batched requests (BatchWriteItem, BatchGetItem, claim transactions) one
/// call keeps in flight.
pub const BATCHES_IN_FLIGHT: usize = 64;
const MAX_ATTEMPTS: u32 = 10;

/// Sends `requests` 25 at a time through `send`, which returns what was left
/// unprocessed; retries that with backoff. Returns how many calls were made.
///
/// Chunks go out together unless an item is named twice: then they go one
/// after another, in order, cut so that no chunk names an item twice
/// (DynamoDB refuses that), and the later write of an item lands last.
pub async fn write_all<F, Fut>(requests: Vec<WriteRequest>, send: F) -> Result<usize>
where
    F: Fn(Vec<WriteRequest>) -> Fut,
    Fut: Future<Output = Result<Vec<WriteRequest>>>,
{
    let (chunks, repeats) = chunks(requests);
    let in_flight = if repeats { 1 } else { BATCHES_IN_FLIGHT };
    // Collected first: a lazy iterator of futures kept in the stream makes it not `Send`.
    let sends: Vec<_> = chunks.into_iter().map(|chunk| write_chunk(chunk, &send)).collect();
    let mut calls = 0;
    let mut done = futures::stream::iter(sends).buffered(in_flight);
    while let Some(n) = done.next().await {
        calls += n?;
    }
    Ok(calls)
}

/// The requests cut into chunks, and whether any item is written twice.
fn chunks(requests: Vec<WriteRequest>) -> (Vec<Vec<WriteRequest>>, bool) {
    let mut all = HashSet::new();
    let mut repeats = false;
    let mut chunks: Vec<Vec<WriteRequest>> = Vec::new();
    let mut in_chunk: HashSet<(String, String)> = HashSet::new();
    for request in requests {
        let key = item_key(&request);
        repeats |= !all.insert(key.clone());
        let full = chunks.last().is_none_or(|c| c.len() == MAX_BATCH);
        if full || in_chunk.contains(&key) {
            chunks.push(Vec::with_capacity(MAX_BATCH));
            in_chunk.clear();
        }
        in_chunk.insert(key);
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(request);
        }
    }
    (chunks, repeats)
}

fn item_key(request: &WriteRequest) -> (String, String) {
    let item = request
        .put_request()
        .map(|p| p.item())
        .or_else(|| request.delete_request().map(|d| d.key()));
    let part = |name| item.and_then(|i| get_s(i, name)).unwrap_or_default().to_string();
    (part("PK"), part("SK"))
}

async fn write_chunk<F, Fut>(mut chunk: Vec<WriteRequest>, send: &F) -> Result<usize>
where
    F: Fn(Vec<WriteRequest>) -> Fut,
    Fut: Future<Output = Result<Vec<WriteRequest>>>,
{
    let mut calls = 0;
    let mut attempt = 0;
    loop {
        calls += 1;
        let unprocessed = send(chunk).await?;
        if unprocessed.is_empty() {
            return Ok(calls);
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
    use std::sync::atomic::{AtomicUsize, Ordering};
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
        let round = AtomicUsize::new(0);
        let calls = write_all((0..60).map(request).collect(), |chunk| {
            let round = round.fetch_add(1, Ordering::SeqCst) + 1;
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

    #[tokio::test]
    async fn an_item_written_twice_goes_in_order_and_never_twice_in_one_chunk() {
        // 30 writes where item 3 comes back at position 10 and item 7 at 29.
        let ids: Vec<usize> = (0..30)
            .map(|i| {
                if i == 10 {
                    3
                } else if i == 29 {
                    7
                } else {
                    i
                }
            })
            .collect();
        let order = Mutex::new(Vec::<Vec<String>>::new());
        write_all(ids.iter().map(|&i| request(i)).collect(), |chunk| {
            order.lock().unwrap().push(chunk.iter().map(id).collect());
            async move { Ok(Vec::new()) }
        })
        .await
        .unwrap();
        let chunks = order.into_inner().unwrap();
        for c in &chunks {
            assert_eq!(
                c.iter().collect::<HashSet<_>>().len(),
                c.len(),
                "a chunk names an item twice: {c:?}"
            );
        }
        let sent: Vec<String> = chunks.concat();
        let expected: Vec<String> = ids.iter().map(|i| format!("K#{i}")).collect();
        assert_eq!(sent, expected, "sent one chunk after another, in order");
    }
}
