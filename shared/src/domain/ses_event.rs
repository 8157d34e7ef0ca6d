//! SES event publishing records, as they reach the events queue: wrapped in
//! an SNS notification (`Message` is the record as a JSON string), in an
//! EventBridge event (`detail` is the record), or bare (SNS raw delivery).
//! Every event type SES publishes is read; none is dropped.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::message::MessageState;

/// What one SES record says happened to one message.
#[derive(Clone, Debug, PartialEq)]
pub struct SesEvent {
    /// SES's message id (`mail.messageId`): how the message is found.
    pub ses_message_id: String,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    /// The provider's detail (bounce type, link, reason), for the history.
    pub detail: Option<String>,
    /// Names this event among the message's: a redelivered record has the same.
    pub key: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Send,
    Delivery,
    /// `Permanent`: the address will never take mail; `Transient` (or
    /// `Undetermined`): recorded only.
    Bounce {
        permanent: bool,
    },
    Complaint,
    Reject,
    Open,
    Click {
        link: Option<String>,
    },
    RenderingFailure,
    DeliveryDelay,
    /// A subscription preference change made through SES's own pages.
    Subscription,
}

impl EventKind {
    /// The message status this event stands for.
    pub fn status(&self) -> MessageState {
        match self {
            EventKind::Send => MessageState::Sent,
            EventKind::Delivery => MessageState::Delivered,
            EventKind::Bounce { permanent: true } => MessageState::Bounced,
            // A transient bounce may still be delivered: it is a delay, not an end.
            EventKind::Bounce { permanent: false } => MessageState::Delayed,
            EventKind::Complaint => MessageState::Complained,
            EventKind::Reject => MessageState::Rejected,
            EventKind::Open => MessageState::Opened,
            EventKind::Click { .. } => MessageState::Clicked,
            EventKind::RenderingFailure => MessageState::Failed,
            EventKind::DeliveryDelay => MessageState::Delayed,
            EventKind::Subscription => MessageState::Delivered,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Send => "send",
            EventKind::Delivery => "delivery",
            EventKind::Bounce { .. } => "bounce",
            EventKind::Complaint => "complaint",
            EventKind::Reject => "reject",
            EventKind::Open => "open",
            EventKind::Click { .. } => "click",
            EventKind::RenderingFailure => "rendering_failure",
            EventKind::DeliveryDelay => "delivery_delay",
            EventKind::Subscription => "subscription",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not an SES event record: {0}")]
    NotSes(String),
}

#[derive(Deserialize)]
struct Mail {
    #[serde(rename = "messageId")]
    message_id: String,
    timestamp: Option<DateTime<Utc>>,
}

/// The SES record inside a queue message body, whichever way it came.
fn unwrap(body: &str) -> Result<Value, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    // SNS notification: the record is the `Message` string.
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner = v
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| ParseError::NotSes("an SNS notification without Message".into()))?;
        return serde_json::from_str(inner).map_err(|e| ParseError::NotJson(format!("SNS Message: {e}")));
    }
    // EventBridge: the record is `detail`.
    if v.get("source").and_then(Value::as_str) == Some("aws.ses") {
        return v
            .get("detail")
            .cloned()
            .ok_or_else(|| ParseError::NotSes("an EventBridge event without detail".into()));
    }
    Ok(v)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    str_at(v, path).and_then(|t| DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc)))
}

/// Reads one queue message body. `Ok(None)`: a message that carries no event
/// (an SNS subscription confirmation), nothing to do.
pub fn parse(body: &str) -> Result<Option<SesEvent>, ParseError> {
    let outer: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    if outer.get("Type").and_then(Value::as_str) == Some("SubscriptionConfirmation") {
        return Ok(None);
    }
    let record = unwrap(body)?;
    // `notificationType` where the records come from identity notifications.
    let event_type = str_at(&record, &["eventType"])
        .or_else(|| str_at(&record, &["notificationType"]))
        .ok_or_else(|| ParseError::NotSes("no eventType".into()))?;
    let mail: Mail = record
        .get("mail")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| ParseError::NotSes(format!("mail: {e}")))?
        .ok_or_else(|| ParseError::NotSes("no mail object".into()))?;
    let (kind, at, detail, distinct) = match event_type {
        "Send" => (EventKind::Send, None, None, String::new()),
        "Delivery" => (
            EventKind::Delivery,
            time_at(&record, &["delivery", "timestamp"]),
            str_at(&record, &["delivery", "smtpResponse"]).map(str::to_string),
            String::new(),
        ),
        "Bounce" => {
            let bounce_type = str_at(&record, &["bounce", "bounceType"]).unwrap_or("Undetermined");
            let sub = str_at(&record, &["bounce", "bounceSubType"]).unwrap_or("");
            (
                EventKind::Bounce {
                    permanent: bounce_type == "Permanent",
                },
                time_at(&record, &["bounce", "timestamp"]),
                Some(format!("{bounce_type} {sub}").trim().to_string()),
                str_at(&record, &["bounce", "feedbackId"]).unwrap_or("").to_string(),
            )
        }
        "Complaint" => (
            EventKind::Complaint,
            time_at(&record, &["complaint", "timestamp"]),
            str_at(&record, &["complaint", "complaintFeedbackType"]).map(str::to_string),
            str_at(&record, &["complaint", "feedbackId"]).unwrap_or("").to_string(),
        ),
        "Reject" => (
            EventKind::Reject,
            None,
            str_at(&record, &["reject", "reason"]).map(str::to_string),
            String::new(),
        ),
        "Open" => {
            let at = time_at(&record, &["open", "timestamp"]);
            (
                EventKind::Open,
                at,
                None,
                at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            )
        }
        "Click" => {
            let at = time_at(&record, &["click", "timestamp"]);
            let link = str_at(&record, &["click", "link"]).map(str::to_string);
            let distinct = format!(
                "{}|{}",
                at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                link.clone().unwrap_or_default()
            );
            (EventKind::Click { link: link.clone() }, at, link, distinct)
        }
        "Rendering Failure" => (
            EventKind::RenderingFailure,
            None,
            str_at(&record, &["failure", "errorMessage"]).map(str::to_string),
            String::new(),
        ),
        "DeliveryDelay" => {
            let at = time_at(&record, &["deliveryDelay", "timestamp"]);
            (
                EventKind::DeliveryDelay,
                at,
                str_at(&record, &["deliveryDelay", "delayType"]).map(str::to_string),
                at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            )
        }
        "Subscription" => {
            let at = time_at(&record, &["subscription", "timestamp"]);
            (
                EventKind::Subscription,
                at,
                None,
                at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            )
        }
        other => return Err(ParseError::NotSes(format!("unknown eventType {other:?}"))),
    };
    let at = at.or(mail.timestamp).unwrap_or_else(Utc::now);
    let key = format!("{}:{}", kind.name(), distinct);
    Ok(Some(SesEvent {
        ses_message_id: mail.message_id,
        kind,
        at,
        detail,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNCE: &str = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"recipient@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2017-08-05T00:41:02.669Z","feedbackId":"01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000","reportingMTA":"dsn; mta.example.com"},"mail":{"timestamp":"2017-08-05T00:40:02.012Z","source":"Sender Name <sender@example.com>","sourceArn":"arn:aws:ses:us-east-1:123456789012:identity/sender@example.com","sendingAccountId":"123456789012","messageId":"EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000","destination":["recipient@example.com"]}}"#;

    fn sns(record: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
            "Message": record,
            "Timestamp": "2017-08-05T00:41:03.000Z",
            "SignatureVersion": "1"
        })
        .to_string()
    }

    fn eventbridge(record: &str) -> String {
        serde_json::json!({
            "version": "0", "id": "5d3d4c7c-6d6f-4a1e-8a5a-7f0f2f0a0a0a",
            "detail-type": "Email Bounced", "source": "aws.ses", "account": "123456789012",
            "time": "2017-08-05T00:41:03Z", "region": "us-east-1", "resources": [],
            "detail": serde_json::from_str::<Value>(record).unwrap()
        })
        .to_string()
    }

    #[test]
    fn the_three_shapes_read_the_same() {
        let bare = parse(BOUNCE).unwrap().unwrap();
        assert_eq!(parse(&sns(BOUNCE)).unwrap().unwrap(), bare);
        assert_eq!(parse(&eventbridge(BOUNCE)).unwrap().unwrap(), bare);
        assert_eq!(bare.kind, EventKind::Bounce { permanent: true });
        assert_eq!(
            bare.ses_message_id,
            "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
        );
        assert_eq!(bare.detail.as_deref(), Some("Permanent General"));
        assert_eq!(bare.kind.status(), MessageState::Bounced);
    }

    #[test]
    fn transient_bounces_are_not_an_end() {
        let t = BOUNCE.replace("\"Permanent\"", "\"Transient\"");
        let e = parse(&t).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::Bounce { permanent: false });
        assert_eq!(e.kind.status(), MessageState::Delayed);
    }

    #[test]
    fn clicks_on_two_links_are_two_events_and_a_redelivery_is_one() {
        let click = |link: &str| {
            format!(
                r#"{{"eventType":"Click","click":{{"ipAddress":"192.0.2.1","link":"{link}","linkTags":{{}},"timestamp":"2017-08-09T23:51:25.570Z","userAgent":"Mozilla/5.0"}},"mail":{{"messageId":"m1","timestamp":"2017-08-09T23:50:05.795Z"}}}}"#
            )
        };
        let a = parse(&click("https://a.example")).unwrap().unwrap();
        let b = parse(&click("https://b.example")).unwrap().unwrap();
        assert_ne!(a.key, b.key);
        assert_eq!(parse(&sns(&click("https://a.example"))).unwrap().unwrap().key, a.key);
    }

    #[test]
    fn confirmations_carry_nothing_and_garbage_is_an_error() {
        assert_eq!(
            parse(r#"{"Type":"SubscriptionConfirmation","SubscribeURL":"https://x"}"#),
            Ok(None)
        );
        assert!(matches!(parse("not json"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse(r#"{"eventType":"Bounce"}"#), Err(ParseError::NotSes(_))));
        assert!(matches!(
            parse(r#"{"eventType":"Teleport","mail":{"messageId":"x"}}"#),
            Err(ParseError::NotSes(_))
        ));
    }
}
