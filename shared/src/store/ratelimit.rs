//! Fixed-window request counters for the public endpoints: one atomic `ADD`
//! per window and key, expiring with the table's TTL.

use aws_sdk_dynamodb::types::ReturnValue;

use super::{key, n, sdk_error, Store};
use crate::Result;

impl Store {
    /// Counts one hit on `subject` in the window starting at `window_start`
    /// and returns the window's count so far.
    pub async fn hit(&self, subject: &str, window_start: i64, window_secs: i64) -> Result<u64> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RL#{subject}#{window_start}"), "RL")))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(window_start + window_secs * 2))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .attributes
            .and_then(|a| a.get("hits").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
            .unwrap_or(1))
    }
}
