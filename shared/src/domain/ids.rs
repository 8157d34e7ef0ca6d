//! Identifiers: ULIDs for every record, random codes for what people see.

use rand::{distr::Alphanumeric, Rng};

pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// True for a canonical (upper-case Crockford) ULID.
pub fn is_id(s: &str) -> bool {
    s.len() == 26 && ulid::Ulid::from_string(s).is_ok_and(|u| u.to_string() == s)
}

pub fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `ref_` + 8 lower-case letters and digits: short enough to type, ~41 bits of entropy.
pub fn new_referral_code() -> String {
    format!("ref_{}", random_alnum(8).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = new_id();
        assert!(is_id(&id));
        assert!(!is_id(&id.to_ascii_lowercase()));
        assert!(!is_id("not-an-id"));
    }

    #[test]
    fn referral_codes_have_the_documented_shape() {
        let code = new_referral_code();
        assert!(code.starts_with("ref_"));
        assert_eq!(code.len(), 12);
        assert!(code[4..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
