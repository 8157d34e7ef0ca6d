//! Canonical forms for the values that identify a person, so that the same
//! person typed two ways is one contact.

use rlibphonenumber::{PhoneNumberFormat, Region, PHONE_NUMBER_UTIL};

pub const MAX_EMAIL_LEN: usize = 254;

/// Trimmed, lower-cased, and valid: a local part, one `@`, and a dotted domain.
pub fn email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("email is empty");
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err("email is longer than 254 characters");
    }
    if !email_address::EmailAddress::is_valid(&email) {
        return Err("email is not a valid address");
    }
    let (local, domain) = email.rsplit_once('@').ok_or("email is not a valid address")?;
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || !labels_ok || local.starts_with('"') {
        return Err("email is not a valid address");
    }
    Ok(email)
}

/// A country as an ISO 3166-1 alpha-2 code, upper-cased: one that
/// libphonenumber has numbers for, since it is what national numbers are read in.
pub fn country(raw: &str) -> Result<String, &'static str> {
    let code = raw.trim().to_ascii_uppercase();
    region(&code)
        .map(|_| code)
        .ok_or("not an ISO 3166-1 alpha-2 country code")
}

/// E.164 (`+14155551234`), as Google's libphonenumber reads the number
/// (through `rlibphonenumber`, a port that agrees with it on every example
/// number: `tests/phone_corpus.rs`). Numbers without a `+` are national
/// numbers of `default_country`; `00` is read as the international prefix
/// everywhere, as most of the world dials it, and the default country's own
/// international prefix (`011` in the US) is understood too.
pub fn phone(raw: &str, default_country: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("phone is empty");
    }
    if trimmed.len() > 40 {
        return Err("phone is too long");
    }
    let international;
    let text = match trimmed.strip_prefix("00") {
        Some(rest) => {
            international = format!("+{rest}");
            international.as_str()
        }
        None => trimmed,
    };
    let parsed = PHONE_NUMBER_UTIL
        .parse(text, region(default_country))
        .map_err(|_| "phone is not a phone number")?;
    if !parsed.is_valid() {
        return Err("phone is not a valid number for its country");
    }
    Ok(parsed.format_as(PhoneNumberFormat::E164).into_owned())
}

/// The region of a two-letter code that libphonenumber has metadata for.
fn region(code: &str) -> Option<Region> {
    let region = Region::from_code(code).ok()?;
    PHONE_NUMBER_UTIL.get_country_code_for_region(region).map(|_| region)
}

/// The region whose national numbers a calling code stands for: the main
/// one of a shared code (US for 1), `001` for a non-geographic code (800).
pub fn region_of_calling_code(code: u16) -> Option<String> {
    PHONE_NUMBER_UTIL
        .get_region_for_country_code(i32::from(code))
        .map(|r| r.as_region_str().to_string())
}

/// Collapses runs of white space and trims; `None` when nothing is left.
pub fn text(raw: &str) -> Option<String> {
    if is_tidy(raw) {
        Some(raw.to_owned())
    } else {
        collapse(raw)
    }
}

/// `text`, keeping `raw`'s buffer when there is nothing to collapse.
pub fn tidy(raw: String) -> Option<String> {
    if is_tidy(&raw) {
        Some(raw)
    } else {
        collapse(&raw)
    }
}

fn collapse(raw: &str) -> Option<String> {
    let joined = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Not empty, and its only white space single spaces between words: what
/// `text` would return unchanged. Most cells are; checking is cheaper than
/// splitting and joining.
fn is_tidy(raw: &str) -> bool {
    // Bytes while the text is ASCII (most cells are): no decoding.
    let mut after_space = true;
    for &b in raw.as_bytes() {
        match b {
            b' ' if after_space => return false,
            b' ' => after_space = true,
            b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => return false,
            0x80.. => return is_tidy_unicode(raw),
            _ => after_space = false,
        }
    }
    !after_space
}

fn is_tidy_unicode(raw: &str) -> bool {
    let mut after_space = true;
    for c in raw.chars() {
        if c.is_whitespace() {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    !after_space
}

/// A full name splits at its first space: the first word is the first name,
/// the rest the last name ("Mary Ann Smith" → "Mary" + "Ann Smith").
pub fn split_full_name(full: &str) -> (Option<String>, Option<String>) {
    let full = text(full).unwrap_or_default();
    match full.split_once(' ') {
        Some((first, last)) => (Some(first.to_string()), Some(last.to_string())),
        None if full.is_empty() => (None, None),
        None => (Some(full), None),
    }
}

pub fn join_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    text(&format!("{} {}", first.unwrap_or(""), last.unwrap_or("")))
}

/// Tags: trimmed, inner white space collapsed, de-duplicated case-insensitively
/// (first spelling wins), order kept.
pub fn tags(raw: &[String]) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    for tag in raw {
        let Some(tag) = text(tag) else {
            return Err("tags cannot be empty");
        };
        if tag.chars().count() > 64 {
            return Err("a tag is at most 64 characters");
        }
        if !out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            out.push(tag);
        }
    }
    if out.len() > 100 {
        return Err("a contact has at most 100 tags");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(email("  Jane.Doe@Example.COM ").unwrap(), "jane.doe@example.com");
        assert_eq!(email("a+tag@sub.example.co.uk").unwrap(), "a+tag@sub.example.co.uk");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "a@b",
            "a@@b.com",
            "a@b..com",
            "@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b.com.",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(phone("(415) 555-2671", "US").unwrap(), "+14155552671");
        assert_eq!(phone("+1 415 555 2671", "FI").unwrap(), "+14155552671");
        assert_eq!(phone("050 123 4567", "FI").unwrap(), "+358501234567");
        assert_eq!(phone("0044 20 7946 0958", "US").unwrap(), "+442079460958");
        assert_eq!(phone("+358501234567", "US").unwrap(), "+358501234567");
        // A non-geographic code (international freephone) shares its region id, 001, with others.
        assert_eq!(phone("+800 1000 0000", "GB").unwrap(), "+80010000000");
    }

    #[test]
    fn bad_phones_are_refused() {
        for bad in ["", "abc", "123", "+1 555", "+999 12345678"] {
            assert!(phone(bad, "US").is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn countries_are_iso_codes() {
        assert_eq!(country(" fi ").unwrap(), "FI");
        assert!(country("Finland").is_err());
        assert!(country("XX").is_err());
    }

    #[test]
    fn names_split_and_join() {
        assert_eq!(
            split_full_name("  Mary  Ann Smith "),
            (Some("Mary".into()), Some("Ann Smith".into()))
        );
        assert_eq!(split_full_name("Cher"), (Some("Cher".into()), None));
        assert_eq!(split_full_name("   "), (None, None));
        assert_eq!(join_name(Some("Mary"), Some("Smith")).as_deref(), Some("Mary Smith"));
        assert_eq!(join_name(None, Some("Smith")).as_deref(), Some("Smith"));
        assert_eq!(join_name(None, None), None);
    }

    #[test]
    fn tags_are_deduplicated_case_insensitively() {
        let raw = vec!["VIP".to_string(), " vip ".to_string(), "Early  bird".to_string()];
        assert_eq!(tags(&raw).unwrap(), vec!["VIP", "Early bird"]);
        assert!(tags(&["  ".to_string()]).is_err());
    }

    proptest! {
        #[test]
        fn email_normalization_is_idempotent(local in "[A-Za-z0-9._%+-]{1,20}", domain in "[A-Za-z0-9]{1,10}", tld in "[A-Za-z]{2,6}", pad in " {0,3}") {
            let raw = format!("{pad}{local}@{domain}.{tld}{pad}");
            if let Ok(once) = email(&raw) {
                prop_assert_eq!(email(&once).unwrap(), once.clone());
                prop_assert_eq!(once.clone(), once.to_lowercase());
                prop_assert_eq!(once.trim(), once.as_str());
            }
        }

        #[test]
        fn phone_normalization_is_idempotent(digits in "[2-9][0-9]{2}[2-9][0-9]{6}") {
            if let Ok(once) = phone(&digits, "US") {
                prop_assert!(once.starts_with('+'));
                prop_assert_eq!(phone(&once, "US").unwrap(), once.clone());
                prop_assert_eq!(phone(&once, "FI").unwrap(), once);
            }
        }

        #[test]
        fn split_then_join_keeps_the_words(words in proptest::collection::vec("[A-Za-z]{1,8}", 0..5)) {
            let full = words.join(" ");
            let (first, last) = split_full_name(&full);
            let joined = join_name(first.as_deref(), last.as_deref()).unwrap_or_default();
            prop_assert_eq!(joined, full);
        }

        #[test]
        fn tidy_text_is_left_as_it_is(s in "[ a\u{a0}\u{85}\u{2003}\u{1c}\u{b}\u{c}\r\t\né]{0,8}") {
            let split = s.split_whitespace().collect::<Vec<_>>().join(" ");
            let expected = (!split.is_empty()).then_some(split);
            prop_assert_eq!(text(&s), expected.clone());
            prop_assert_eq!(tidy(s), expected);
        }

        #[test]
        fn text_never_has_outer_or_double_spaces(s in "\\PC{0,40}") {
            if let Some(t) = text(&s) {
                prop_assert_eq!(t.trim(), t.as_str());
                prop_assert!(!t.contains("  "));
            }
        }
    }
}
