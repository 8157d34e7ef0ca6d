//! Search tokens: the prefixes a contact can be found by (email, first,
//! last and full name, company, phone digits), normalized the same way as
//! the query.

use super::contact::{Contact, ContactStatus};

const MAX_TOKEN: usize = 64;

fn norm(s: &str) -> String {
    let t: String = s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    t.chars().take(MAX_TOKEN).collect()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// True when a query is meant as a phone number (digits and punctuation only).
fn is_phoneish(q: &str) -> bool {
    q.chars().any(|c| c.is_ascii_digit()) && q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

/// The tokens of a contact; none for a deleted one (it is hidden from search).
pub fn tokens(c: &Contact) -> Vec<String> {
    if c.status == ContactStatus::Deleted {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: String| {
        if !t.is_empty() && !out.contains(&t) {
            out.push(t);
        }
    };
    for text in [
        c.email.as_deref(),
        c.first_name.as_deref(),
        c.last_name.as_deref(),
        c.full_name.as_deref(),
        c.company.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        push(norm(text));
    }
    if let Some(phone) = c.phone.as_deref() {
        let d = digits(phone);
        // National numbers are typed without the country code: the last 10 digits too.
        if d.len() > 10 {
            push(d[d.len() - 10..].to_string());
        }
        push(d);
    }
    // A token that begins another finds nothing the longer one does not:
    // one index item fewer per contact (a first name inside the full name).
    let longer = out.clone();
    out.retain(|t| !longer.iter().any(|u| u != t && u.starts_with(t.as_str())));
    out
}

/// The prefix to look up for a query; `None` when nothing searchable is left.
pub fn query_prefix(q: &str) -> Option<String> {
    let p = if is_phoneish(q) { digits(q) } else { norm(q) };
    (!p.is_empty()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contact() -> Contact {
        serde_json::from_value::<Contact>(json!({
            "id": "01J0000000000000000000000A", "email": "ann.lee@example.com", "phone": "+14155552671", "eid": null,
            "first_name": "Ann", "last_name": "Lee Smith", "company": "Acme  Corp", "address": null, "source": "api",
            "intent": null, "referral_code": null, "referred_by": null, "last_sent_at": null, "last_clicked_at": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "deleted_at": null, "last_activity_at": null
        }))
        .unwrap()
        .with_derived()
    }

    #[test]
    fn a_contact_is_found_by_each_of_its_prefixes() {
        let t = tokens(&contact());
        assert_eq!(
            t,
            vec![
                "ann.lee@example.com",
                "lee smith",
                "ann lee smith",
                "acme corp",
                "4155552671",
                "14155552671"
            ]
        );
        for q in ["ANN", "lee s", "Acme", "ann.lee@", "(415) 555", "+1 415", "ann lee"] {
            let p = query_prefix(q).unwrap();
            assert!(t.iter().any(|tok| tok.starts_with(&p)), "{q} → {p}");
        }
        assert_eq!(query_prefix("  "), None);
    }

    #[test]
    fn a_token_that_begins_another_is_left_out() {
        let mut c = contact();
        c.email = None;
        c.company = Some("Ann".into());
        let t = tokens(&c.with_derived());
        assert!(!t.contains(&"ann".to_string()), "{t:?}");
        assert!(t.contains(&"ann lee smith".to_string()));
    }

    #[test]
    fn deleted_contacts_have_no_tokens() {
        let mut c = contact();
        c.status = ContactStatus::Deleted;
        assert!(tokens(&c).is_empty());
    }
}
