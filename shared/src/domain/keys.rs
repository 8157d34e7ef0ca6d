//! API keys. A key is shown once; only its SHA-256 is stored. Keys are 190+
//! bits of randomness, so a fast hash is the right tool (no password stretching).
//! The project id is part of the key so that a key presented for the wrong
//! project is refused before any data is read.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::random_alnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `sk_…`: full access to one project's data. Server-side only.
    Secret,
    /// `pk_…`: public submission endpoints only; safe to embed in a page.
    Publishable,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => "sk_",
            KeyKind::Publishable => "pk_",
        }
    }
}

pub fn new_key(kind: KeyKind, project_id: &str) -> String {
    format!("{}{}_{}", kind.prefix(), project_id, random_alnum(32))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The project a key claims to belong to, if it is shaped like a key of `kind`.
pub fn key_project(kind: KeyKind, key: &str) -> Option<&str> {
    let rest = key.strip_prefix(kind.prefix())?;
    let (project, secret) = rest.split_once('_')?;
    (project.len() == 26 && secret.len() == 32).then_some(project)
}

pub fn key_matches(key: &str, stored_hash: &str) -> bool {
    hash_key(key).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time comparison for the operator token.
pub fn token_matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_project_and_matches_only_its_hash() {
        let pid = crate::domain::ids::new_id();
        let key = new_key(KeyKind::Secret, &pid);
        assert_eq!(key_project(KeyKind::Secret, &key), Some(pid.as_str()));
        assert_eq!(key_project(KeyKind::Publishable, &key), None);
        let hash = hash_key(&key);
        assert!(key_matches(&key, &hash));
        assert!(!key_matches(&new_key(KeyKind::Secret, &pid), &hash));
        assert!(!hash.contains(&key[..10]));
    }

    #[test]
    fn malformed_keys_name_no_project() {
        for bad in ["", "sk_", "sk_abc", "pk_x_y", "Bearer sk_"] {
            assert_eq!(key_project(KeyKind::Secret, bad), None, "{bad}");
        }
    }
}
