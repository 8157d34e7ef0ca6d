//! SMS rules that need no I/O: how many segments a body costs, the keywords
//! a reply can be (STOP, START, HELP), the TwiML answer to an inbound
//! message, Twilio's webhook signature, and what a Twilio status means.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;
use utoipa::ToSchema;

use super::message::MessageState;

/// GSM 03.38's basic character set: one septet each (ESC itself left out).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: ESC + the character, two septets each.
const GSM_EXTENSION: &str = "\u{c}^{}\\[~]|€";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// GSM-7: 160 septets in one message, 153 a segment when split.
    Gsm7,
    /// UCS-2 (UTF-16): 70 units in one message, 67 a segment when split.
    Ucs2,
}

/// What a body costs to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SmsSize {
    pub encoding: Encoding,
    pub characters: usize,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: u32,
    /// The characters (first 10, each once) that force UCS-2, if it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ucs2_because: Vec<String>,
}

impl SmsSize {
    /// A warning worth showing before sending, if any.
    pub fn warning(&self) -> Option<String> {
        (self.encoding == Encoding::Ucs2).then(|| {
            format!(
                "{} forces UCS-2: {} characters a segment instead of 153–160, {} segment(s)",
                self.ucs2_because.join(" "),
                if self.segments > 1 { 67 } else { 70 },
                self.segments
            )
        })
    }
}

fn septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segments of `units` (each a group of 1 or 2 that cannot be split across
/// segments: an escape pair, a surrogate pair), `single` fitting one message
/// and `each` a part of a longer one.
fn count_segments(units: impl Iterator<Item = usize> + Clone, single: usize, each: usize) -> u32 {
    let total: usize = units.clone().sum();
    if total <= single {
        return 1;
    }
    let (mut segments, mut used) = (1u32, 0usize);
    for u in units {
        if used + u > each {
            segments += 1;
            used = 0;
        }
        used += u;
    }
    segments
}

/// The encoding and segment count of `body`, as carriers count them.
pub fn size(body: &str) -> SmsSize {
    let characters = body.chars().count();
    let gsm: Option<Vec<usize>> = body.chars().map(septets).collect();
    match gsm {
        Some(units) => SmsSize {
            encoding: Encoding::Gsm7,
            characters,
            units: units.iter().sum(),
            segments: count_segments(units.iter().copied(), 160, 153),
            ucs2_because: Vec::new(),
        },
        None => {
            let units: Vec<usize> = body.chars().map(char::len_utf16).collect();
            let mut because: Vec<String> = Vec::new();
            for c in body.chars().filter(|c| septets(*c).is_none()) {
                let c = c.to_string();
                if !because.contains(&c) && because.len() < 10 {
                    because.push(c);
                }
            }
            SmsSize {
                encoding: Encoding::Ucs2,
                characters,
                units: units.iter().sum(),
                segments: count_segments(units.iter().copied(), 70, 67),
                ucs2_because: because,
            }
        }
    }
}

/// A reply that is one of the words carriers and Twilio act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// Opted out of the number's list.
    Stop,
    /// Opted out of every SMS list the contact is on.
    StopAll,
    /// Active again on the number's list.
    Start,
    /// Asks for the help text.
    Help,
}

/// The keyword `body` is: a single word, any case, with the spaces and
/// punctuation around it ignored. Anything else is an ordinary message.
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body.trim_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() || word.contains(|c: char| !c.is_alphanumeric()) {
        return None;
    }
    match word.to_uppercase().as_str() {
        "STOP" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => Some(Keyword::Stop),
        "STOPALL" => Some(Keyword::StopAll),
        "START" | "UNSTOP" | "YES" => Some(Keyword::Start),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// The TwiML answer to an inbound message: the reply, or nothing to say.
pub fn twiml(reply: Option<&str>) -> String {
    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    match reply {
        None => format!("{HEAD}<Response/>"),
        Some(text) => format!("{HEAD}<Response><Message>{}</Message></Response>", xml_escape(text)),
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// `X-Twilio-Signature` of a request: base64(HMAC-SHA1(auth token, the
/// full URL followed by every POST parameter, sorted, name then value)).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(signed(auth_token, url, params).finalize().into_bytes())
}

fn signed(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `presented` is Twilio's signature of the request, for the URL as
/// given or with its default port written out or left off (Twilio signs
/// the URL as configured, and its own libraries accept both).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], presented: &str) -> bool {
    let Ok(presented) = STANDARD.decode(presented.trim()) else {
        return false;
    };
    // Constant time: a forged signature learns nothing from how long the check took.
    url_variants(url)
        .iter()
        .any(|u| signed(auth_token, u, params).verify_slice(&presented).is_ok())
}

/// The URL as given, and with its scheme's default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let (scheme, rest, port) = if let Some(r) = url.strip_prefix("https://") {
        ("https://", r, "443")
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http://", r, "80")
    } else {
        return out;
    };
    let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(cut);
    // The host may be `user@host` or `[v6]`; the port is after the last `:` past any `]`.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[host_end..].rfind(':') {
        Some(i) => {
            let i = host_end + i;
            if &authority[i + 1..] == port {
                out.push(format!("{scheme}{}{tail}", &authority[..i]));
            }
        }
        None => out.push(format!("{scheme}{authority}:{port}{tail}")),
    }
    out
}

/// What a Twilio `MessageStatus` means for a message; `None` for the
/// statuses of inbound messages, which change nothing.
pub fn status_of(twilio: &str) -> Option<MessageState> {
    Some(match twilio.trim().to_ascii_lowercase().as_str() {
        "accepted" | "scheduled" | "queued" => MessageState::Accepted,
        "sending" => MessageState::Sending,
        "sent" => MessageState::Sent,
        "delivered" => MessageState::Delivered,
        "read" => MessageState::Opened,
        "undelivered" => MessageState::Undelivered,
        "failed" | "canceled" => MessageState::Failed,
        _ => return None,
    })
}

/// Twilio's error for a number that replied STOP at the carrier.
pub const ERROR_OPTED_OUT: u32 = 21610;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// Twilio's documented example (its security page).
    fn documented() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilio_documented_signature() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &documented()), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", url, &documented(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        // The same request signed with the default port written out.
        assert!(verify(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &documented(),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        let with_port = signature(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &documented(),
        );
        assert!(verify("12345", url, &documented(), &with_port));
    }

    #[test]
    fn forged_signatures_are_refused() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(!verify("12346", url, &documented(), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify("12345", url, &documented(), ""));
        assert!(!verify("12345", url, &documented(), "not base64!"));
        let mut changed = documented();
        changed[2].1 = "1235".into();
        assert!(!verify("12345", url, &changed, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &documented(),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        // Another port is another URL.
        assert!(!verify(
            "12345",
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &documented(),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn url_variants_add_or_drop_only_the_default_port() {
        assert_eq!(
            url_variants("https://a.com/x?y=1"),
            ["https://a.com/x?y=1", "https://a.com:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://a.com:80/x"),
            ["http://a.com:80/x", "http://a.com/x"]
        );
        assert_eq!(url_variants("http://a.com:8080/x"), ["http://a.com:8080/x"]);
        assert_eq!(
            url_variants("https://[::1]/x"),
            ["https://[::1]/x", "https://[::1]:443/x"]
        );
        assert_eq!(url_variants("https://a.com"), ["https://a.com", "https://a.com:443"]);
    }

    #[test]
    fn segments_as_carriers_count_them() {
        let s = size(&"a".repeat(160));
        assert_eq!((s.encoding, s.segments), (Encoding::Gsm7, 1));
        assert_eq!(size(&"a".repeat(161)).segments, 2);
        assert_eq!(size(&"a".repeat(306)).segments, 2);
        assert_eq!(size(&"a".repeat(307)).segments, 3);
        // Extension characters take two septets.
        let s = size(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.segments), (Encoding::Gsm7, 160, 1));
        assert_eq!(size(&"€".repeat(81)).segments, 2);
        // An escape pair is never split: 152 septets + a pair needs a new segment.
        let s = size(&format!("{}€{}", "a".repeat(152), "a".repeat(10)));
        assert_eq!((s.units, s.segments), (164, 2));
        // One emoji forces UCS-2.
        let s = size(&format!("{}🙂", "a".repeat(60)));
        assert_eq!((s.encoding, s.units, s.segments), (Encoding::Ucs2, 62, 1));
        assert_eq!(s.ucs2_because, ["🙂"]);
        assert!(s.warning().unwrap().contains("UCS-2"));
        assert_eq!(size(&"ж".repeat(70)).segments, 1);
        assert_eq!(size(&"ж".repeat(71)).segments, 2);
        assert_eq!(size(&"ж".repeat(134)).segments, 2);
        assert_eq!(size(&"ж".repeat(135)).segments, 3);
        assert_eq!(size("").segments, 1);
        assert!(size("Hello, world!").warning().is_none());
    }

    #[test]
    fn keywords_are_single_words_in_any_case() {
        for (body, k) in [
            ("STOP", Keyword::Stop),
            ("  stop. ", Keyword::Stop),
            ("Unsubscribe!", Keyword::Stop),
            ("cancel", Keyword::Stop),
            ("END", Keyword::Stop),
            ("quit", Keyword::Stop),
            ("Revoke", Keyword::Stop),
            ("optout", Keyword::Stop),
            ("STOPALL", Keyword::StopAll),
            ("start", Keyword::Start),
            ("UNSTOP", Keyword::Start),
            ("yes!!", Keyword::Start),
            ("help?", Keyword::Help),
            ("Info", Keyword::Help),
        ] {
            assert_eq!(keyword(body), Some(k), "{body:?}");
        }
        for body in [
            "stop it",
            "please stop",
            "STOP STOP",
            "stopp",
            "",
            "  ",
            "opt-out",
            "st op",
        ] {
            assert_eq!(keyword(body), None, "{body:?}");
        }
    }

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(twiml(None), r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#);
        assert_eq!(
            twiml(Some("Tom & Jerry <3 \"you\"\u{1}")),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Tom &amp; Jerry &lt;3 &quot;you&quot;</Message></Response>"#
        );
    }

    #[test]
    fn statuses_map_forward() {
        let order = ["queued", "sending", "sent", "delivered"].map(|s| status_of(s).unwrap().rank());
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        assert!(status_of("undelivered").unwrap().rank() > status_of("delivered").unwrap().rank());
        assert_eq!(status_of("received"), None);
    }

    proptest! {
        #[test]
        fn segments_never_shrink_as_a_body_grows(body in "\\PC{0,400}", extra in "\\PC") {
            let a = size(&body);
            let b = size(&format!("{body}{extra}"));
            prop_assert!(b.segments >= a.segments || b.encoding != a.encoding);
            prop_assert!(a.segments >= 1);
            let per = match a.encoding { Encoding::Gsm7 => 153, Encoding::Ucs2 => 67 };
            prop_assert!((a.segments as usize) <= 1 + a.units / (per - 1));
        }

        #[test]
        fn any_changed_parameter_breaks_the_signature(value in "[ -~]{0,40}", other in "[ -~]{0,40}") {
            prop_assume!(value != other);
            let url = "https://example.com/v1/webhooks/twilio/p/sms";
            let p = params(&[("Body", &value), ("From", "+15551234567")]);
            let sig = signature("token", url, &p);
            prop_assert!(verify("token", url, &p, &sig));
            let q = params(&[("Body", &other), ("From", "+15551234567")]);
            prop_assert!(!verify("token", url, &q, &sig));
        }

        #[test]
        fn twiml_never_carries_markup(text in "\\PC{0,80}") {
            let x = twiml(Some(&text));
            let inner = x.strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>"#).unwrap()
                .strip_suffix("</Message></Response>").unwrap();
            prop_assert!(!inner.contains('<') && !inner.contains('>'));
        }
    }
}
