//! Identifiers: ULIDs for every record, random codes for what people see.

use rand::{distr::Alphanumeric, Rng};

pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A ULID fixed by its inputs: the time part from `ms`, the random part from
/// a hash of `seed`. A retried step that derives its id this way finds the
/// record its first try wrote.
pub fn derived_id(ms: u64, seed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(seed);
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&hash[..10]);
    ulid::Ulid::from_parts(ms, u128::from_be_bytes(random)).to_string()
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
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_id(1_700_000_000_000, b"import/1/row/2");
        assert_eq!(a, derived_id(1_700_000_000_000, b"import/1/row/2"));
        assert_ne!(a, derived_id(1_700_000_000_000, b"import/1/row/3"));
        assert!(is_id(&a));
    }

    #[test]
    fn referral_codes_have_the_documented_shape() {
        let code = new_referral_code();
        assert!(code.starts_with("ref_"));
        assert_eq!(code.len(), 12);
        assert!(code[4..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
