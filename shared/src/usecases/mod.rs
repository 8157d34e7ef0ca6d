//! What a caller can do, one function each: validate, apply the domain rules,
//! drive the store. Entry points (HTTP handlers, workers) call these and
//! nothing below them.

pub mod activities;
pub mod broadcasts;
pub mod bulk;
pub mod contacts;
pub mod events;
pub mod export_schedules;
pub mod exports;
pub mod feedback;
pub mod filter;
pub mod imports;
pub mod interrupted;
pub mod links;
pub mod lists;
pub mod merge;
pub mod messages;
pub mod profile;
pub mod projects;
pub mod referrals;
pub mod sms_webhooks;
pub mod submissions;
pub mod tags;
pub mod templates;
pub mod unsubscribe;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;

use crate::{Error, Result};

/// A page of a list; `next_cursor` is `None` on the last page.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A JSON object's map (activity data is built with `json!`).
pub(crate) fn as_map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;

pub fn limit(requested: Option<usize>) -> Result<usize> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid("limit", format!("limit is between 1 and {MAX_LIMIT}"))),
    }
}

/// Cursors are opaque to callers: a versioned position, base64url-encoded.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{position}"))
}

pub fn decode_cursor(cursor: &str) -> Result<String> {
    let bad = || Error::invalid("cursor", "cursor is not one this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("v1:").map(str::to_string).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor("01J0000000000000000000000A");
        assert_eq!(decode_cursor(&c).unwrap(), "01J0000000000000000000000A");
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:x")).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }
}
