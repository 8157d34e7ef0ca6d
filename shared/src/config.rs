//! Typed configuration, read once from the environment at start-up.

use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct Config {
    /// The single DynamoDB table (single-table design).
    pub table_name: String,
    /// Operator token for `POST /v1/projects` and project administration.
    pub admin_token: String,
    /// Import files, their UTF-8 copies and error reports.
    pub imports_bucket: Option<String>,
    /// Where S3 notifications and start requests for the import planner go.
    pub plan_queue_url: Option<String>,
    /// Where the planner sends one message per chunk.
    pub chunk_queue_url: Option<String>,
    /// Rows per import chunk.
    pub import_chunk_rows: u64,
    /// Deliveries of a message of this function's queue before it goes to
    /// the dead-letter queue (the queue's maxReceiveCount).
    pub queue_max_receives: u32,
    /// Where bulk jobs are planned and their chunks worked.
    pub bulk_queue_url: Option<String>,
    /// Contact ids per bulk job chunk.
    pub bulk_chunk_ids: usize,
    /// Signs one-click unsubscribe links (HMAC-SHA256); messaging is off without it.
    pub signing_secret: Option<String>,
    /// The SES identity (a domain) emails are sent from: a project's
    /// `email_from` must be on it.
    pub sender_domain: Option<String>,
    /// The SES configuration set every email goes through (its events reach Roster).
    pub email_configuration_set: Option<String>,
    /// The base URL recipients reach the API at (links in messages); empty:
    /// taken from the request that sends.
    pub public_base_url: Option<String>,
    /// Where broadcasts are planned and their batches sent.
    pub send_queue_url: Option<String>,
    /// Recipients per broadcast chunk.
    pub send_chunk_ids: usize,
    /// Send workers that may run at once (the send queue's MaximumConcurrency).
    pub send_workers: u32,
    /// Twilio's REST API (a local stand-in in tests and `make dev`).
    pub twilio_api_url: String,
    /// Rows a synchronous export writes at most.
    pub export_sync_rows: usize,
    /// Where asynchronous exports are written.
    pub exports_bucket: Option<String>,
    /// A bucket of the user's that export schedules may write to.
    pub export_destination_bucket: Option<String>,
    pub export_queue_url: Option<String>,
    /// Seconds a download link of a finished export works.
    pub export_link_seconds: u64,
}

pub const DEFAULT_ADMIN_TOKEN: &str = "dev-admin-token";

impl Config {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The import pipeline's adapters, built on clients made once per process.
    pub fn importer(
        &self,
        store: crate::store::Store,
        sdk: &aws_config::SdkConfig,
    ) -> Result<crate::usecases::imports::Importer> {
        let bucket = self
            .imports_bucket
            .clone()
            .ok_or_else(|| Error::internal("IMPORTS_BUCKET is not set"))?;
        let sqs = crate::aws::sqs(sdk);
        let queue = |url: &Option<String>| url.clone().map(|u| crate::queue::Queue::new(sqs.clone(), u));
        Ok(crate::usecases::imports::Importer {
            store,
            files: crate::files::Files::new(crate::aws::s3(sdk), bucket),
            plan_queue: queue(&self.plan_queue_url),
            chunk_queue: queue(&self.chunk_queue_url),
            chunk_rows: self.import_chunk_rows,
            max_receives: self.queue_max_receives,
        })
    }

    /// Bulk jobs' adapters; `None` where no bulk queue is configured.
    pub fn jobs(&self, store: crate::store::Store, sdk: &aws_config::SdkConfig) -> Option<crate::usecases::bulk::Jobs> {
        let url = self.bulk_queue_url.clone()?;
        Some(crate::usecases::bulk::Jobs {
            store,
            queue: crate::queue::Queue::new(crate::aws::sqs(sdk), url),
            chunk_ids: self.bulk_chunk_ids,
        })
    }

    /// Messaging's adapters; `None` where no signing secret is configured.
    pub fn messaging(
        &self,
        store: crate::store::Store,
        sdk: &aws_config::SdkConfig,
    ) -> Option<crate::usecases::messages::Messaging> {
        let secret = self.signing_secret.clone()?;
        Some(crate::usecases::messages::Messaging {
            store,
            mailer: crate::mailer::Mailer::new(crate::aws::sesv2(sdk), self.email_configuration_set.clone()),
            secret: std::sync::Arc::from(secret.into_bytes()),
            sender_domain: self.sender_domain.clone(),
            public_base_url: self.public_base_url.clone(),
            twilio: crate::twilio::Twilio::new(&self.twilio_api_url),
        })
    }

    /// Asynchronous exports' adapters; `None` without their bucket and queue.
    pub fn exports(
        &self,
        store: crate::store::Store,
        sdk: &aws_config::SdkConfig,
    ) -> Option<crate::usecases::exports::Exports> {
        Some(crate::usecases::exports::Exports {
            store,
            files: crate::files::Files::new(crate::aws::s3(sdk), self.exports_bucket.clone()?),
            destination: self
                .export_destination_bucket
                .clone()
                .map(|b| crate::files::Files::new(crate::aws::s3(sdk), b)),
            queue: crate::queue::Queue::new(crate::aws::sqs(sdk), self.export_queue_url.clone()?),
            link_ttl: std::time::Duration::from_secs(self.export_link_seconds),
            max_receives: self.queue_max_receives,
        })
    }

    /// Broadcasts' adapters; `None` without messaging or a send queue.
    pub fn broadcasts(
        &self,
        store: crate::store::Store,
        sdk: &aws_config::SdkConfig,
    ) -> Option<crate::usecases::broadcasts::Broadcasts> {
        let url = self.send_queue_url.clone()?;
        Some(crate::usecases::broadcasts::Broadcasts {
            ms: self.messaging(store, sdk)?,
            queue: crate::queue::Queue::new(crate::aws::sqs(sdk), url),
            chunk_ids: self.send_chunk_ids,
            workers: self.send_workers,
        })
    }

    /// From any source of variables (the local runner resolves them from `template.yaml`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let table_name = var("TABLE_NAME").ok_or_else(|| Error::internal("TABLE_NAME is not set"))?;
        let admin_token = var("ADMIN_TOKEN").unwrap_or_else(|| DEFAULT_ADMIN_TOKEN.to_string());
        if admin_token.len() < 8 {
            return Err(Error::internal("ADMIN_TOKEN must be at least 8 characters"));
        }
        Ok(Config {
            table_name,
            admin_token,
            imports_bucket: var("IMPORTS_BUCKET"),
            plan_queue_url: var("PLAN_QUEUE_URL"),
            chunk_queue_url: var("CHUNK_QUEUE_URL"),
            import_chunk_rows: positive(&var, "IMPORT_CHUNK_ROWS", crate::domain::import::CHUNK_ROWS)?,
            queue_max_receives: positive(&var, "QUEUE_MAX_RECEIVES", 5)?,
            bulk_queue_url: var("BULK_QUEUE_URL"),
            bulk_chunk_ids: positive(&var, "BULK_CHUNK_IDS", 1000)?,
            signing_secret: match var("SIGNING_SECRET").filter(|s| !s.is_empty()) {
                Some(s) if s.len() < 32 => {
                    return Err(Error::internal("SIGNING_SECRET must be at least 32 characters"))
                }
                other => other,
            },
            sender_domain: var("SENDER_DOMAIN")
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty()),
            email_configuration_set: var("EMAIL_CONFIGURATION_SET").filter(|s| !s.is_empty()),
            public_base_url: var("PUBLIC_BASE_URL")
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty()),
            send_queue_url: var("SEND_QUEUE_URL"),
            send_chunk_ids: positive(&var, "SEND_CHUNK_IDS", 1000)?,
            send_workers: positive(&var, "SEND_WORKERS", 1)?,
            twilio_api_url: var("TWILIO_API_URL")
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| crate::twilio::DEFAULT_API_URL.to_string()),
            export_sync_rows: positive(&var, "EXPORT_SYNC_ROWS", crate::usecases::exports::SYNC_ROWS)?,
            exports_bucket: var("EXPORTS_BUCKET").filter(|b| !b.is_empty()),
            export_destination_bucket: var("EXPORT_DESTINATION_BUCKET")
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty()),
            export_queue_url: var("EXPORT_QUEUE_URL").filter(|u| !u.is_empty()),
            export_link_seconds: positive(&var, "EXPORT_LINK_SECONDS", 900)?,
        })
    }
}

/// A positive number from `name`, or `default` when it is not set.
fn positive<T: std::str::FromStr + PartialOrd + Default>(
    var: impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| Error::internal(format!("{name} must be a positive number"))),
    }
}
