//! One-click unsubscribe links: each names a project, a contact, the list
//! (or none: the whole channel) and the message, signed with HMAC-SHA256 so
//! that no one can make or alter one. Holding the link is the permission:
//! it works without a login, as RFC 8058 requires.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ids::is_id;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    pub project_id: String,
    pub contact_id: String,
    pub list_id: Option<String>,
    pub message_id: String,
}

/// Bytes of the MAC kept in a link (128 bits).
const MAC_BYTES: usize = 16;

fn mac(secret: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(payload);
    mac
}

impl Unsubscribe {
    fn payload(&self) -> String {
        format!(
            "v1.{}.{}.{}.{}",
            self.project_id,
            self.contact_id,
            self.list_id.as_deref().unwrap_or(""),
            self.message_id
        )
    }

    /// `base64url(payload).base64url(mac)`: URL-safe, no padding.
    pub fn sign(&self, secret: &[u8]) -> String {
        let payload = self.payload();
        let tag = mac(secret, payload.as_bytes()).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES])
        )
    }

    /// The link's contents if `secret` signed it; `None` for anything else.
    pub fn verify(secret: &[u8], token: &str) -> Option<Unsubscribe> {
        let (payload, tag) = token.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != MAC_BYTES {
            return None;
        }
        // Constant time: the comparison does not tell how much of a forged tag was right.
        mac(secret, &payload).verify_truncated_left(&tag).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut fields = payload.split('.');
        if fields.next()? != "v1" {
            return None;
        }
        let (pid, cid, list, mid) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        if fields.next().is_some() || !is_id(pid) || !is_id(cid) || !is_id(mid) || !(list.is_empty() || is_id(list)) {
            return None;
        }
        Some(Unsubscribe {
            project_id: pid.into(),
            contact_id: cid.into(),
            list_id: (!list.is_empty()).then(|| list.to_string()),
            message_id: mid.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn link(list: Option<&str>) -> Unsubscribe {
        Unsubscribe {
            project_id: "01J0000000000000000000000A".into(),
            contact_id: "01J0000000000000000000000B".into(),
            list_id: list.map(str::to_string),
            message_id: "01J0000000000000000000000C".into(),
        }
    }

    #[test]
    fn a_signed_link_verifies_with_its_secret_only() {
        for l in [link(None), link(Some("01J0000000000000000000000D"))] {
            let token = l.sign(b"secret-one");
            assert_eq!(Unsubscribe::verify(b"secret-one", &token), Some(l.clone()));
            assert_eq!(Unsubscribe::verify(b"secret-two", &token), None);
        }
    }

    #[test]
    fn an_altered_link_is_refused() {
        let token = link(None).sign(b"s");
        let (payload, tag) = token.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD
            .encode("v1.01J0000000000000000000000A.01J0000000000000000000000E..01J0000000000000000000000C");
        assert_eq!(Unsubscribe::verify(b"s", &format!("{other}.{tag}")), None);
        assert_eq!(Unsubscribe::verify(b"s", payload), None);
        assert_eq!(Unsubscribe::verify(b"s", ""), None);
        assert_eq!(Unsubscribe::verify(b"s", &format!("{payload}.{}", &tag[1..])), None);
    }

    proptest! {
        /// No change of a single character of a link still verifies.
        #[test]
        fn any_one_character_changed_is_refused(at in 0usize..200, c in "[A-Za-z0-9_.-]") {
            let token = link(Some("01J0000000000000000000000D")).sign(b"s");
            let at = at % token.len();
            let mut changed = token.clone();
            changed.replace_range(at..at + 1, &c);
            prop_assume!(changed != token);
            prop_assert_eq!(Unsubscribe::verify(b"s", &changed), None);
        }
    }
}
