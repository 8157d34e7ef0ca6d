//! The email as sent: a MIME message built with lettre, carrying RFC 8058
//! one-click unsubscribe headers (every email, every time).

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::template::Rendered;
use crate::{Error, Result};

/// Who sends, to whom, and the links that let them leave.
pub struct Envelope<'a> {
    pub from: &'a str,
    pub from_name: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub to: &'a str,
    /// The signed, per-recipient HTTPS link (`POST` unsubscribes).
    pub unsubscribe_url: &'a str,
    /// A mailbox that also unsubscribes, where the project set one.
    pub unsubscribe_mailto: Option<&'a str>,
    /// Roster's message id, so a reply or a report can be traced to it.
    pub message_id: &'a str,
    pub domain: &'a str,
}

/// Whether an address is on the sending domain (or one of its subdomains).
pub fn on_domain(address: &str, domain: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(_, d)| d == domain || d.ends_with(&format!(".{domain}")))
}

/// A From address off the sending domain, refused as input `field`.
pub fn check_on_domain(field: &str, address: &str, domain: &str) -> Result<()> {
    if on_domain(address, domain) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{address} is not on the sending domain {domain}; emails go out from addresses @{domain}"),
        ))
    }
}

fn mailbox(field: &str, name: Option<&str>, address: &str) -> Result<Mailbox> {
    let address = address
        .parse()
        .map_err(|e| Error::invalid(field, format!("{address:?} is not an address: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

/// The raw message (RFC 5322) for these parts: `multipart/alternative` with
/// both, or the one there is.
pub fn mime(env: &Envelope, parts: &Rendered) -> Result<Vec<u8>> {
    let mut builder = lettre::Message::builder()
        .from(mailbox("email_from", env.from_name, env.from)?)
        .to(mailbox("to", None, env.to)?)
        .subject(parts.subject.clone().unwrap_or_default())
        .message_id(Some(format!("<{}@{}>", env.message_id, env.domain)));
    if let Some(reply_to) = env.reply_to {
        builder = builder.reply_to(mailbox("reply_to", None, reply_to)?);
    }
    let mut unsubscribe = format!("<{}>", env.unsubscribe_url);
    if let Some(mailto) = env.unsubscribe_mailto {
        unsubscribe.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
    }
    builder = builder
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            unsubscribe,
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".into(),
        ));
    let message = match (&parts.text, &parts.html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone())),
        (Some(text), None) => builder.singlepart(SinglePart::plain(text.clone())),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
        (None, None) => return Err(Error::invalid("html", "an email needs html or text")),
    }
    .map_err(|e| Error::invalid("email", format!("cannot build the message: {e}")))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope<'a>() -> Envelope<'a> {
        Envelope {
            from: "news@example.com",
            from_name: Some("Acme News"),
            reply_to: Some("help@example.com"),
            to: "ann@example.org",
            unsubscribe_url: "https://api.example.com/v1/unsubscribe/abc.def",
            unsubscribe_mailto: Some("unsubscribe@example.com"),
            message_id: "01J0000000000000000000000A",
            domain: "example.com",
        }
    }

    #[test]
    fn every_email_carries_one_click_unsubscribe() {
        let parts = Rendered {
            subject: Some("Hello Ann – news".into()),
            html: Some("<p>Hi</p>".into()),
            text: Some("Hi".into()),
            body: None,
        };
        // Long headers are folded (a line break and a space): read them unfolded.
        let raw = String::from_utf8(mime(&envelope(), &parts).unwrap())
            .unwrap()
            .replace("\r\n ", " ");
        assert!(
            raw.contains("List-Unsubscribe: <https://api.example.com/v1/unsubscribe/abc.def>, <mailto:unsubscribe@example.com?subject=unsubscribe>\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("From: \"Acme News\" <news@example.com>\r\n"), "{raw}");
        assert!(raw.contains("Reply-To: help@example.com\r\n"), "{raw}");
        assert!(
            raw.contains("Message-ID: <01J0000000000000000000000A@example.com>\r\n"),
            "{raw}"
        );
        // A non-ASCII subject is encoded, not sent raw.
        assert!(raw.contains("Subject: Hello Ann =?utf-8?"), "{raw}");
    }

    #[test]
    fn senders_are_on_the_domain_or_below_it() {
        assert!(on_domain("news@example.com", "example.com"));
        assert!(on_domain("news@mail.example.com", "example.com"));
        assert!(!on_domain("news@badexample.com", "example.com"));
        assert!(!on_domain("example.com", "example.com"));
    }

    #[test]
    fn one_part_is_sent_alone_and_bad_addresses_name_their_field() {
        let text_only = Rendered {
            subject: Some("s".into()),
            text: Some("plain".into()),
            ..Default::default()
        };
        let raw = String::from_utf8(mime(&envelope(), &text_only).unwrap()).unwrap();
        assert!(raw.contains("Content-Type: text/plain"), "{raw}");
        assert!(!raw.contains("multipart"), "{raw}");
        let bad = Envelope {
            to: "not an address",
            ..envelope()
        };
        match mime(&bad, &text_only) {
            Err(Error::Validation { field, .. }) => assert_eq!(field.as_deref(), Some("to")),
            other => panic!("{other:?}"),
        }
    }
}
