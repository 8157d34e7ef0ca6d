//! Spawns the HTTP functions behind the local gateway on a random port, wired
//! from template.yaml to their own freshly provisioned table in the emulator,
//! so tests run in parallel.
//! Run through `make test`, which starts the emulator and sets AWS_ENDPOINT_URL.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub mod strict_json;

pub const ADMIN: &str = "test-admin-token-0001";
/// The stack's unsubscribe-link secret (a test can forge with another).
pub const SIGNING_SECRET: &str = "test-signing-secret-0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub table: String,
    /// The stack behind the app: its queues, bucket and running workers.
    pub local: roster_local::LocalStack,
    pub template: roster_local::Template,
    pub params: HashMap<String, String>,
    /// The stand-in for Twilio's REST API this app sends SMS to.
    pub twilio: roster_local::twilio_stub::TwilioStub,
}

pub struct TestProject {
    pub id: String,
    pub key: String,
    pub publishable_key: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `error.field` of an error reply.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }

    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// With template parameters set (e.g. a small `ImportChunkRows`).
    pub async fn spawn_with(parameters: &[(&str, &str)]) -> TestApp {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "end-to-end tests need the emulator: run them with `make test` (infra/with-moto.sh)"
        );
        // Errors are logged (internal details never reach responses): show them with the test output.
        roster::telemetry::init_for_tests();
        let template = roster_local::Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
        let prefix = format!("t{}", ulid::Ulid::new().to_string().to_lowercase());
        let mut params = HashMap::from([
            ("AdminToken".to_string(), ADMIN.to_string()),
            ("SigningSecret".to_string(), SIGNING_SECRET.to_string()),
        ]);
        let twilio = roster_local::twilio_stub::TwilioStub::start("127.0.0.1:0")
            .await
            .unwrap();
        params.insert("TwilioApiUrl".to_string(), twilio.url.clone());
        params.extend(parameters.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let local = roster_local::LocalStack::start(&template, &prefix, &params)
            .await
            .unwrap();
        let table = local.api().config.table_name.clone();
        let router = local.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            table,
            local,
            template,
            params,
            twilio,
        }
    }

    /// Every item in this app's table, as text: for checks that no personal
    /// data is left anywhere.
    pub async fn dump_table(&self) -> String {
        let sdk = roster::aws::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let mut out = String::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items() {
                out.push_str(&format!("{item:?}\n"));
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return out,
            }
        }
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::reply(req).await
    }

    pub async fn reply(req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if json {
            if let Err(e) = strict_json::check_unique_keys(&text) {
                panic!("a JSON reply ({status}) is not JSON with unique keys: {e}\n{text}");
            }
        }
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    pub async fn project(&self) -> TestProject {
        let r = self
            .post("/v1/projects", ADMIN, serde_json::json!({"name": "Test"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        TestProject {
            id: r.body["id"].as_str().unwrap().to_string(),
            key: r.body["api_key"].as_str().unwrap().to_string(),
            publishable_key: r.body["publishable_key"].as_str().unwrap().to_string(),
        }
    }

    /// A new email sending list of the project, sent from `sender`; its id.
    pub async fn email_list(&self, p: &TestProject, name: &str, sender: &str) -> String {
        let list = self
            .post(
                &format!("/v1/projects/{}/lists", p.id),
                &p.key,
                serde_json::json!({"name": name, "channel": "email", "sender": sender}),
            )
            .await;
        assert_eq!(list.status, StatusCode::CREATED, "{:?}", list.body);
        list.body["id"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// The project's tag of this name (`null` if there is none).
    pub async fn tag_named(&self, p: &TestProject, name: &str) -> Value {
        let all = self.get(&format!("/v1/projects/{}/tags", p.id), &p.key).await;
        all.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// A public submission with the publishable key (and a client address).
    pub async fn public(&self, p: &TestProject, path: &str, ip: &str, body: Value) -> Reply {
        let req = self
            .http
            .post(format!("{}/v1/public/{}/{path}", self.base, p.id))
            .header("X-Publishable-Key", &p.publishable_key)
            .header("X-Forwarded-For", ip)
            .json(&body);
        Self::reply(req).await
    }
}

impl TestProject {
    pub fn contacts(&self) -> String {
        format!("/v1/projects/{}/contacts", self.id)
    }

    pub fn imports(&self) -> String {
        format!("/v1/projects/{}/imports", self.id)
    }

    pub fn contact(&self, cid: &str) -> String {
        format!("/v1/projects/{}/contacts/{cid}", self.id)
    }
}

/// Messaging: what the emulator's SES took, and events put on a queue as AWS would.
impl TestApp {
    /// Every raw message the emulator's SES took (its state at `/moto-api/data.json`), long headers unfolded.
    pub async fn raw_emails(&self) -> Vec<String> {
        let base = std::env::var("AWS_ENDPOINT_URL").unwrap();
        // moto serializes every backend for this page; while other tests
        // write to it, that can fail (an error page, not JSON): ask again.
        let mut data = Value::Null;
        for attempt in 0..10 {
            let body = self
                .http
                .get(format!("{base}/moto-api/data.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            match serde_json::from_str(&body) {
                Ok(v) => {
                    data = v;
                    break;
                }
                Err(e) if attempt == 9 => panic!("moto's data.json: {e}: {body:.200}"),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
        data["ses"]["RawMessage"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|m| m["raw_data"].as_str())
                    .map(|raw| raw.replace("\r\n ", " "))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends a message body to one of the stack's queues (by its logical id in template.yaml).
    pub async fn send_to_queue(&self, queue: &str, body: String) {
        let url = self.local.stack.names[queue].clone();
        self.local
            .clients
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

/// Imports: files in, finished jobs out.
impl TestApp {
    pub fn bucket(&self) -> String {
        self.local
            .state("files-api")
            .unwrap()
            .config
            .imports_bucket
            .clone()
            .unwrap()
    }

    /// PUTs bytes to a presigned URL, as a browser or `curl -T` would.
    pub async fn upload(&self, url: &str, bytes: Vec<u8>) {
        let res = self.http.put(url).body(bytes).send().await.unwrap();
        assert!(
            res.status().is_success(),
            "upload: {} {}",
            res.status(),
            res.text().await.unwrap()
        );
    }

    /// Drops a file in the imports bucket with the S3 SDK, as any S3 client would.
    pub async fn drop_file(&self, key: &str, bytes: Vec<u8>) {
        self.local
            .clients
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }

    /// Creates an import, uploads the file and waits for the job to end.
    pub async fn import_file(&self, p: &TestProject, filename: &str, bytes: Vec<u8>, setup: Value) -> Reply {
        let mut body = setup;
        body["filename"] = Value::String(filename.to_string());
        let created = self.post(&p.imports(), &p.key, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        self.upload(created.body["upload_url"].as_str().unwrap(), bytes).await;
        self.wait_import(p, created.body["id"].as_str().unwrap()).await
    }

    /// Creates an import held for a manual start, uploads `bytes` if given,
    /// and returns its id.
    pub async fn held_import(&self, p: &TestProject, filename: &str, bytes: Option<Vec<u8>>) -> String {
        let created = self
            .post(
                &p.imports(),
                &p.key,
                serde_json::json!({"filename": filename, "start": "manual"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        if let Some(bytes) = bytes {
            self.upload(created.body["upload_url"].as_str().unwrap(), bytes).await;
        }
        created.body["id"].as_str().unwrap().to_string()
    }

    /// Polls the job until it is completed, failed or cancelled (at most 3 minutes),
    /// checking at every read that the counters add up.
    pub async fn wait_import(&self, p: &TestProject, id: &str) -> Reply {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let r = self.get(&format!("{}/{id}", p.imports()), &p.key).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            assert_counts_add_up(&r.body);
            if matches!(r.body["state"].as_str(), Some("completed" | "failed" | "cancelled")) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "import did not finish: {:?}",
                r.body
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The contact with this email (`Null` if none), by the exact lookup.
    pub async fn by_email(&self, p: &TestProject, email: &str) -> Value {
        let r = self.get(&format!("{}?email={email}", p.contacts()), &p.key).await;
        r.body["data"][0].clone()
    }

    /// Every contact of the project (follows the cursor to the end).
    pub async fn all_contacts(&self, p: &TestProject) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = self.get(&format!("{}?limit=1000{cursor}", p.contacts()), &p.key).await;
            out.extend(r.body["data"].as_array().unwrap().iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return out,
            }
        }
    }
}

pub fn assert_counts_add_up(job: &Value) {
    let n = |k: &str| job[k].as_u64().unwrap_or(0);
    assert_eq!(
        n("created") + n("updated") + n("skipped") + n("failed"),
        n("processed"),
        "counters must add up: {job:?}"
    );
    if let Some(total) = job["rows_total"].as_u64() {
        assert!(n("processed") <= total, "{job:?}");
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/imports/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}
