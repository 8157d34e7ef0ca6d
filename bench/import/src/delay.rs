//! A proxy in front of the local DynamoDB that holds every request for a
//! fixed delay before passing it on: DynamoDB's in-region latency, so that
//! a worker's rounds of requests cost what they cost on AWS. It counts the
//! requests by operation (`X-Amz-Target`) on the way, the items the reads
//! returned (Query and Scan `Count`, GetItem's item, BatchGetItem's), and the time the
//! emulator was busy (at least one request passed on and not yet answered):
//! the local emulator serves one request at a time, where DynamoDB serves
//! them side by side within its latency, so that time is the emulator's
//! and not the worker's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;

struct Proxy {
    upstream: String,
    delay: Duration,
    client: reqwest::Client,
    counts: Mutex<BTreeMap<String, u64>>,
    items_read: Mutex<u64>,
    upstream_busy: Mutex<Busy>,
}

/// Requests passed on and not answered yet, since when, and the busy time so far.
#[derive(Default)]
struct Busy {
    outstanding: u32,
    since: Option<Instant>,
    total: Duration,
}

impl Proxy {
    fn busy(&self) -> std::sync::MutexGuard<'_, Busy> {
        self.upstream_busy.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running proxy: its URL and the requests counted so far.
#[derive(Clone)]
pub struct DelayProxy {
    pub url: String,
    proxy: Arc<Proxy>,
}

impl DelayProxy {
    /// Listens on a free local port and forwards to `upstream` after `delay`.
    pub async fn start(upstream: &str, delay: Duration) -> std::io::Result<DelayProxy> {
        let proxy = Arc::new(Proxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            delay,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .map_err(std::io::Error::other)?,
            counts: Mutex::new(BTreeMap::new()),
            items_read: Mutex::new(0),
            upstream_busy: Mutex::new(Busy::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(DelayProxy { url, proxy })
    }

    /// Requests by operation since the last call, and resets the count.
    pub fn take_counts(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.proxy.counts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Items the reads returned since the last call; resets the count.
    pub fn take_items_read(&self) -> u64 {
        std::mem::take(&mut *self.proxy.items_read.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How long the emulator was busy since the last call; resets it.
    pub fn take_upstream_busy(&self) -> Duration {
        let mut guard = self.proxy.busy();
        let busy = &mut *guard;
        // A busy stretch still open is counted up to now and goes on from now.
        if let Some(since) = busy.since.as_mut() {
            let now = Instant::now();
            busy.total += now - *since;
            *since = now;
        }
        std::mem::take(&mut busy.total)
    }
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Result<Response, StatusCode> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(|_| StatusCode::BAD_REQUEST)?;
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("other")
        .to_string();
    *proxy
        .counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(operation.clone())
        .or_default() += 1;
    tokio::time::sleep(proxy.delay).await;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    headers.remove("host");
    {
        let mut busy = proxy.busy();
        if busy.outstanding == 0 {
            busy.since = Some(Instant::now());
        }
        busy.outstanding += 1;
    }
    let sent = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => read_whole(answer).await,
        Err(e) => Err(e),
    };
    {
        let mut busy = proxy.busy();
        busy.outstanding -= 1;
        if busy.outstanding == 0 {
            if let Some(since) = busy.since.take() {
                busy.total += since.elapsed();
            }
        }
    }
    let (status, answer_headers, bytes) = answer.map_err(|_| StatusCode::BAD_GATEWAY)?;
    if status.is_success() {
        let n = items_read(&operation, &bytes);
        *proxy.items_read.lock().unwrap_or_else(|e| e.into_inner()) += n;
    }
    let mut response = Response::builder().status(status);
    for (name, value) in &answer_headers {
        if name != HeaderName::from_static("transfer-encoding") && name != HeaderName::from_static("content-length") {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(bytes))
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

/// The whole answer, read before the emulator counts as done with it.
async fn read_whole(answer: reqwest::Response) -> reqwest::Result<(StatusCode, HeaderMap, Bytes)> {
    let (status, headers) = (answer.status(), answer.headers().clone());
    Ok((status, headers, answer.bytes().await?))
}

/// The items a read's answer holds (0 for any other operation).
fn items_read(operation: &str, body: &[u8]) -> u64 {
    if !matches!(operation, "Query" | "Scan" | "GetItem" | "BatchGetItem") {
        return 0;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match operation {
        "GetItem" => u64::from(v.get("Item").is_some()),
        "BatchGetItem" => v["Responses"].as_object().map_or(0, |tables| {
            tables
                .values()
                .filter_map(|items| items.as_array())
                .map(|items| items.len() as u64)
                .sum()
        }),
        _ => v["Count"].as_u64().unwrap_or(0),
    }
}
