//! Idempotency records: the first response to a POST with an
//! `Idempotency-Key`, kept for 24 hours and replayed to retries.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::Utc;

use super::{get_s, key, n, s, sdk_error, Item, Store};
use crate::Result;

const SK: &str = "IDEM";
/// How long a replayable response is kept.
const KEEP_SECS: i64 = 24 * 3600;
/// How long a request in flight holds its key; after that a retry may run
/// again (the first attempt is presumed dead).
const LEASE_SECS: i64 = 60;

fn pk(scope: &str) -> String {
    format!("IDEM#{scope}")
}

#[derive(Debug, PartialEq)]
pub enum Idempotency {
    /// First time this key is seen: run the request, then `complete` or `abandon`.
    Started,
    /// Another request with this key is running now.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
    /// The stored first response.
    Replay { status: u16, body: String },
}

impl Store {
    pub async fn begin_idempotent(&self, scope: &str, request_hash: &str) -> Result<Idempotency> {
        let now = Utc::now().timestamp();
        let mut item = key(pk(scope), SK);
        item.insert("request_hash".into(), s(request_hash));
        item.insert("state".into(), s("pending"));
        item.insert("lease_until".into(), n(now + LEASE_SECS));
        item.insert("expires_at".into(), n(now + KEEP_SECS));
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(PK) OR expires_at < :now OR (#state = :pending AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match out {
            Ok(_) => return Ok(Idempotency::Started),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                e
            }
            Err(e) => return Err(sdk_error(e)),
        };
        let old: Option<Item> = match err.into_service_error() {
            PutItemError::ConditionalCheckFailedException(e) => e.item,
            _ => None,
        };
        let old = match old {
            Some(old) => old,
            None => {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key(pk(scope), SK)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                match got.item {
                    Some(item) => item,
                    None => return Box::pin(self.begin_idempotent(scope, request_hash)).await,
                }
            }
        };
        if get_s(&old, "request_hash") != Some(request_hash) {
            return Ok(Idempotency::Mismatch);
        }
        if get_s(&old, "state") != Some("done") {
            return Ok(Idempotency::InProgress);
        }
        let status = old
            .get("status")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        let body = get_s(&old, "body").unwrap_or_default().to_string();
        Ok(Idempotency::Replay { status, body })
    }

    pub async fn complete_idempotent(&self, scope: &str, status: u16, body: &str) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(scope), SK)))
            .update_expression("SET #state = :done, #status = :status, body = :body REMOVE lease_until")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":status", n(status))
            .expression_attribute_values(":body", s(body))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Forgets the key so that a retry runs the request again (used when the
    /// first attempt failed on our side).
    pub async fn abandon_idempotent(&self, scope: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk(scope), SK)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
