//! A stand-in for Twilio's REST API, which cannot run here: it takes
//! `POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (form
//! body, basic auth), answers in Twilio's shapes (201 with a `sid`; errors
//! with `code` and `message`), and records every request it was sent.
//! `GET /recorded` lists them (for `make dev`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

/// One request to the stand-in.
#[derive(Clone, Debug, Serialize)]
pub struct SentSms {
    pub at: DateTime<Utc>,
    pub account_sid: String,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    pub params: Vec<(String, String)>,
    /// The SID answered, if the message was taken.
    pub sid: Option<String>,
}

impl SentSms {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Recorder {
    sent: Vec<SentSms>,
    /// Refusals by recipient: HTTP status, Twilio error code, message.
    refuse: HashMap<String, (u16, u32, String)>,
    /// Requests still to answer with 429.
    throttle: u32,
}

#[derive(Clone)]
pub struct TwilioStub {
    pub url: String,
    recorder: Arc<Mutex<Recorder>>,
}

impl TwilioStub {
    /// Serves the stand-in on `addr` (port 0: any free port).
    pub async fn start(addr: &str) -> std::io::Result<TwilioStub> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let recorder = Arc::new(Mutex::new(Recorder::default()));
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(create_message))
            .route("/recorded", get(recorded))
            .with_state(recorder.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TwilioStub { url, recorder })
    }

    /// Every request so far, oldest first.
    pub fn sent(&self) -> Vec<SentSms> {
        self.lock().sent.clone()
    }

    /// Answers messages to `to` with this Twilio error from now on.
    pub fn refuse(&self, to: &str, status: u16, code: u32, message: &str) {
        self.lock()
            .refuse
            .insert(to.to_string(), (status, code, message.to_string()));
    }

    /// Answers the next `n` requests with 429 (code 20429), as Twilio does over its rate.
    pub fn throttle_next(&self, n: u32) {
        self.lock().throttle = n;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "code": code, "message": message, "status": status.as_u16(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
    });
    (status, Json(body)).into_response()
}

async fn create_message(
    State(recorder): State<Arc<Mutex<Recorder>>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut r = recorder.lock().unwrap_or_else(|e| e.into_inner());
    let mut entry = SentSms {
        at: Utc::now(),
        account_sid: account_sid.clone(),
        authorization: authorization.clone(),
        params: params.clone(),
        sid: None,
    };
    let to = params
        .iter()
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let answer = if authorization.is_none() {
        error(401, 20003, "Authenticate")
    } else if r.throttle > 0 {
        r.throttle -= 1;
        error(429, 20429, "Too Many Requests")
    } else if let Some((status, code, message)) = r.refuse.get(&to) {
        error(*status, *code, message)
    } else {
        let sid = format!("SM{:032x}", ulid::Ulid::new().0);
        entry.sid = Some(sid.clone());
        let body = json!({
            "sid": sid, "account_sid": account_sid, "to": to, "status": "queued",
            "from": params.iter().find(|(k, _)| k == "From").map(|(_, v)| v.clone()),
            "messaging_service_sid": params.iter().find(|(k, _)| k == "MessagingServiceSid").map(|(_, v)| v.clone()),
            "body": params.iter().find(|(k, _)| k == "Body").map(|(_, v)| v.clone()),
            "num_segments": "1", "direction": "outbound-api", "error_code": null, "error_message": null,
        });
        (StatusCode::CREATED, Json(body)).into_response()
    };
    r.sent.push(entry);
    answer
}

async fn recorded(State(recorder): State<Arc<Mutex<Recorder>>>) -> Json<Vec<SentSms>> {
    Json(recorder.lock().unwrap_or_else(|e| e.into_inner()).sent.clone())
}
