//! The Twilio adapter: one REST call a message
//! (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
//! basic auth). The base URL comes from `TWILIO_API_URL`, so tests and
//! `make dev` talk to a local stand-in.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::sms::ERROR_OPTED_OUT;
use crate::mailer::SendError;

pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

#[derive(Clone)]
pub struct Twilio {
    /// Built at the first message, not at start-up: building it loads the
    /// TLS root certificates again (bench/README.md: the api's init time),
    /// and most invocations never send an SMS.
    http: Arc<OnceLock<reqwest::Client>>,
    base_url: String,
}

/// One SMS to send.
pub struct Outgoing<'a> {
    pub account_sid: &'a str,
    pub auth_token: &'a str,
    /// The list's number; left out when a Messaging Service picks one of its pool.
    pub from: &'a str,
    pub messaging_service_sid: Option<&'a str>,
    pub to: &'a str,
    pub body: &'a str,
    /// Where Twilio reports what became of the message.
    pub status_callback: Option<&'a str>,
}

#[derive(Deserialize)]
struct Accepted {
    sid: String,
}

#[derive(Deserialize)]
struct Refused {
    code: Option<u32>,
    message: Option<String>,
}

impl Twilio {
    pub fn new(base_url: &str) -> Self {
        Twilio {
            http: Arc::default(),
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
    }

    /// Sends the message; Twilio's message SID on success.
    pub async fn send(&self, m: &Outgoing<'_>) -> Result<String, SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, m.account_sid);
        let mut form = vec![("To", m.to), ("Body", m.body)];
        match m.messaging_service_sid {
            Some(service) => form.push(("MessagingServiceSid", service)),
            None => form.push(("From", m.from)),
        }
        if let Some(cb) = m.status_callback {
            form.push(("StatusCallback", cb));
        }
        let reply = self
            .http()
            .post(url)
            .basic_auth(m.account_sid, Some(m.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(|e| SendError::Other(format!("Twilio could not be reached: {}", without_url(e))))?;
        let status = reply.status();
        let body = reply.bytes().await.unwrap_or_default();
        if status.is_success() {
            return serde_json::from_slice::<Accepted>(&body)
                .map(|a| a.sid)
                .map_err(|_| SendError::Other("Twilio accepted the message but returned no sid".into()));
        }
        let refused: Option<Refused> = serde_json::from_slice(&body).ok();
        Err(classify(status.as_u16(), refused))
    }
}

/// Twilio's refusal, sorted: throttled or unavailable (retried), the
/// recipient opted out at the carrier, or this message refused.
fn classify(status: u16, refused: Option<Refused>) -> SendError {
    let code = refused.as_ref().and_then(|r| r.code);
    let text = match (&code, refused.as_ref().and_then(|r| r.message.as_deref())) {
        (Some(c), Some(m)) => format!("Twilio error {c}: {m}"),
        (Some(c), None) => format!("Twilio error {c}"),
        (None, Some(m)) => format!("Twilio HTTP {status}: {m}"),
        (None, None) => format!("Twilio HTTP {status}"),
    };
    match status {
        429 | 500..=599 => SendError::Throttled(text),
        _ if code == Some(ERROR_OPTED_OUT) => SendError::OptedOut(text),
        _ => SendError::Rejected(text),
    }
}

/// reqwest's error text carries the URL; the account SID in it is no secret,
/// but keep log lines short and free of it anyway.
fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u32) -> Option<Refused> {
        Some(Refused {
            code: Some(code),
            message: Some("m".into()),
        })
    }

    #[test]
    fn refusals_are_sorted() {
        assert!(matches!(classify(429, refused(20429)), SendError::Throttled(_)));
        assert!(matches!(classify(503, None), SendError::Throttled(_)));
        assert!(matches!(classify(400, refused(21610)), SendError::OptedOut(_)));
        match classify(400, refused(21211)) {
            SendError::Rejected(t) => assert_eq!(t, "Twilio error 21211: m"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(classify(401, None), SendError::Rejected(_)));
    }
}
