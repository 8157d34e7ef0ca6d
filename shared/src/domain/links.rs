//! Tracked links: each link in a message can be sent as a short link
//! (`{base}/l/{token}`) that counts the click and redirects. The token is
//! 128 random bits: it names no person and cannot be guessed or counted up.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;

/// One link of one message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub token: String,
    pub url: String,
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `token` has a token's shape (22 base64url characters): anything
/// else is refused without a read.
pub fn is_token(token: &str) -> bool {
    token.len() == 22
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The short link of `token`.
pub fn short_url(base: &str, token: &str) -> String {
    format!("{}/l/{token}", base.trim_end_matches('/'))
}

/// Where the `http(s)://` links of `text` start and end. A link ends at
/// white space, a quote or an angle bracket; punctuation that ends a
/// sentence (`.`, `,`, `)` …) after it is not part of it.
fn spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find_scheme(&text[from..]) {
        let start = from + i;
        let rest = &text[start..];
        let mut end = start
            + rest
                .find(|c: char| c.is_whitespace() || "\"'<>".contains(c))
                .unwrap_or(rest.len());
        while end > start && text[..end].ends_with(['.', ',', ';', ':', '!', '?', ')', ']']) {
            end -= 1;
        }
        let scheme_len = if rest.starts_with("https://") { 8 } else { 7 };
        if end > start + scheme_len {
            out.push((start, end));
        }
        from = end.max(start + scheme_len);
    }
    out
}

fn find_scheme(text: &str) -> Option<usize> {
    match (text.find("http://"), text.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `text` with every link replaced by a short link, and the links made.
/// The same URL twice gets one token.
pub fn track(text: &str, base: &str) -> (String, Vec<Link>) {
    let mut links: Vec<Link> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in spans(text) {
        let url = &text[start..end];
        let token = match links.iter().find(|l| l.url == url) {
            Some(l) => l.token.clone(),
            None => {
                let token = new_token();
                links.push(Link {
                    token: token.clone(),
                    url: url.to_string(),
                });
                token
            }
        };
        out.push_str(&text[last..start]);
        out.push_str(&short_url(base, &token));
        last = end;
    }
    out.push_str(&text[last..]);
    (out, links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn links_are_replaced_and_sentence_punctuation_kept() {
        let (text, links) = track(
            "Sale! https://shop.example/sale?x=1. See (https://shop.example/faq) or https://shop.example/sale?x=1",
            "https://r.example",
        );
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].url, "https://shop.example/sale?x=1");
        assert_eq!(links[1].url, "https://shop.example/faq");
        let a = short_url("https://r.example", &links[0].token);
        let b = short_url("https://r.example", &links[1].token);
        assert_eq!(text, format!("Sale! {a}. See ({b}) or {a}"));
    }

    #[test]
    fn text_without_links_is_unchanged() {
        for t in ["", "no links here", "http:// alone", "mailto:a@b.c"] {
            let (out, links) = track(t, "https://r.example");
            assert_eq!((out.as_str(), links.len()), (t, 0));
        }
    }

    #[test]
    fn tokens_are_random_and_shaped() {
        let a = new_token();
        assert!(is_token(&a));
        assert_ne!(a, new_token());
        assert!(!is_token("short"));
        assert!(!is_token(&format!("{}=", &a[..21])));
    }

    proptest! {
        #[test]
        fn every_link_survives_as_its_short_link(words in proptest::collection::vec("[a-z]{1,8}", 0..6), n in 0usize..4) {
            let urls: Vec<String> = (0..n).map(|i| format!("https://x.example/p{i}?q={i}")).collect();
            let text = words.iter().chain(urls.iter()).cloned().collect::<Vec<_>>().join(" ");
            let (out, links) = track(&text, "https://r.example");
            prop_assert_eq!(links.len(), n);
            for l in &links {
                prop_assert!(out.contains(&short_url("https://r.example", &l.token)));
                prop_assert!(!out.contains(&l.url));
            }
        }
    }
}
