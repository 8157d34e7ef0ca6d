//! A proxy in front of the local DynamoDB that holds every request for a
//! fixed delay before passing it on: DynamoDB's in-region latency, so that
//! a worker's rounds of requests cost what they cost on AWS. It counts the
//! requests by operation (`X-Amz-Target`) on the way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;

struct Proxy {
    upstream: String,
    delay: Duration,
    client: reqwest::Client,
    counts: Mutex<BTreeMap<String, u64>>,
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
        .entry(operation)
        .or_default() += 1;
    tokio::time::sleep(proxy.delay).await;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    headers.remove("host");
    let answer = proxy
        .client
        .request(parts.method, format!("{}{path}", proxy.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != HeaderName::from_static("transfer-encoding") && name != HeaderName::from_static("content-length") {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    response
        .body(Body::from(bytes))
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}
