//! The SESv2 adapter: one raw MIME message per call, through the
//! configuration set whose event destination reports what became of it.

use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;
use std::future::Future;
use std::time::Duration;

/// Why the provider (SES, Twilio) did not take a message.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient told the carrier to stop (Twilio 21610): never try again.
    #[error("opted out at the carrier: {0}")]
    OptedOut(String),
    /// Over the account's rate or quota: try again later, it is no failure.
    #[error("throttled: {0}")]
    Throttled(String),
    /// SES refused this message (it will refuse it again).
    #[error("rejected: {0}")]
    Rejected(String),
    /// Anything else (network, SES unavailable): try again.
    #[error("{0}")]
    Other(String),
}

#[derive(Clone)]
pub struct Mailer {
    client: Client,
    configuration_set: Option<String>,
}

impl Mailer {
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        Mailer {
            client,
            configuration_set,
        }
    }

    /// Sends the message; SES's message id on success.
    pub async fn send_raw(&self, from: &str, to: &str, raw: Vec<u8>) -> Result<String, SendError> {
        let content = EmailContent::builder()
            .raw(
                RawMessage::builder()
                    .data(Blob::new(raw))
                    .build()
                    .map_err(|e| SendError::Other(e.to_string()))?,
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(content)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match out {
            Ok(out) => out
                .message_id
                .ok_or_else(|| SendError::Other("SES returned no message id".into())),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Calls `send` again while the provider throttles, waiting `first` and
/// twice as long each time after; the last throttling after `tries` calls.
/// Anything else (sent, refused, no answer) is returned at once.
pub async fn while_throttled<F, Fut>(tries: u32, first: Duration, mut send: F) -> Result<String, SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, SendError>>,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Err(SendError::Throttled(e)) => {
                attempt += 1;
                if attempt >= tries {
                    return Err(SendError::Throttled(e));
                }
                tokio::time::sleep(first * (1 << (attempt - 1).min(6))).await;
            }
            other => return other,
        }
    }
}

fn classify<R: std::fmt::Debug>(
    e: aws_sdk_sesv2::error::SdkError<aws_sdk_sesv2::operation::send_email::SendEmailError, R>,
) -> SendError {
    let text = aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string();
    match e.as_service_error() {
        Some(service) => of_service(service, text),
        None => SendError::Other(text),
    }
}

/// SES's answer, sorted: throttling (retried, never a failure), a refusal
/// of the message, or anything else.
fn of_service(service: &aws_sdk_sesv2::operation::send_email::SendEmailError, text: String) -> SendError {
    use aws_sdk_sesv2::error::ProvideErrorMetadata;
    use aws_sdk_sesv2::operation::send_email::SendEmailError as E;
    match service {
        E::TooManyRequestsException(_) | E::LimitExceededException(_) => SendError::Throttled(text),
        E::MessageRejected(_) | E::BadRequestException(_) | E::MailFromDomainNotVerifiedException(_) => {
            SendError::Rejected(text)
        }
        _ if matches!(service.code(), Some("Throttling" | "ThrottlingException")) => SendError::Throttled(text),
        _ => SendError::Other(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::error::ErrorMetadata;
    use aws_sdk_sesv2::operation::send_email::SendEmailError as E;
    use aws_sdk_sesv2::types::error::{LimitExceededException, MessageRejected, TooManyRequestsException};

    fn kind(e: E) -> &'static str {
        match of_service(&e, String::new()) {
            SendError::Throttled(_) => "throttled",
            SendError::Rejected(_) => "rejected",
            SendError::OptedOut(_) => "opted_out",
            SendError::Other(_) => "other",
        }
    }

    /// A provider that throttles `n` times, then takes the message; counts the calls.
    async fn run(throttles: u32, tries: u32) -> (Result<String, SendError>, u32) {
        let calls = std::cell::Cell::new(0);
        let out = while_throttled(tries, Duration::from_millis(1), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n <= throttles {
                    Err(SendError::Throttled("slow down".into()))
                } else {
                    Ok(format!("id-{n}"))
                }
            }
        })
        .await;
        (out, calls.get())
    }

    #[tokio::test]
    async fn throttling_is_waited_out_and_never_a_failure() {
        let (out, calls) = run(3, 6).await;
        assert_eq!((out.unwrap(), calls), ("id-4".to_string(), 4));
        // Past the tries it stays throttling (the caller leaves it for later), not a refusal.
        let (out, calls) = run(10, 6).await;
        assert!(matches!(out, Err(SendError::Throttled(_))));
        assert_eq!(calls, 6);
        let refused = while_throttled(6, Duration::from_millis(1), || async {
            Err::<String, _>(SendError::Rejected("bad".into()))
        })
        .await;
        assert!(matches!(refused, Err(SendError::Rejected(_))));
    }

    #[test]
    fn throttling_in_every_shape_ses_sends_is_throttling() {
        assert_eq!(
            kind(E::TooManyRequestsException(TooManyRequestsException::builder().build())),
            "throttled"
        );
        assert_eq!(
            kind(E::LimitExceededException(LimitExceededException::builder().build())),
            "throttled"
        );
        assert_eq!(
            kind(E::generic(ErrorMetadata::builder().code("Throttling").build())),
            "throttled"
        );
        assert_eq!(kind(E::MessageRejected(MessageRejected::builder().build())), "rejected");
        assert_eq!(
            kind(E::generic(ErrorMetadata::builder().code("InternalFailure").build())),
            "other"
        );
    }
}
