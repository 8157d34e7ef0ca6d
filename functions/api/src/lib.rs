//! The HTTP API: one axum router, served by `lambda_http` in AWS and by the
//! local runner on a TCP port. Handlers parse, call one use case, map the result.

mod cors;
pub mod error;
mod extract;
mod idempotency;
mod openapi;
mod routes;

use std::sync::Arc;

use axum::{extract::DefaultBodyLimit, middleware, Router};
use roster::usecases::{broadcasts::Broadcasts, bulk::Jobs, exports::Exports, imports::Importer, messages::Messaging};
use roster::{store::Store, Config};

pub use openapi::ApiDoc;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares: built once per process.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// Absent where no imports bucket is configured (imports answer 503).
    pub importer: Option<Importer>,
    /// Absent where no bulk queue is configured (larger selections are refused).
    pub jobs: Option<Jobs>,
    /// Absent where no signing secret is configured (sending answers 503).
    pub messaging: Option<Messaging>,
    /// Absent without messaging or a send queue (broadcasts answer 503).
    pub broadcasts: Option<Broadcasts>,
    /// Absent without an exports bucket and queue (asynchronous exports answer 503).
    pub exports: Option<Exports>,
}

impl AppState {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> roster::Result<Self> {
        let store = Store::new(roster::aws::dynamodb(sdk), config.table_name.clone());
        let importer = match config.imports_bucket {
            Some(_) => Some(config.importer(store.clone(), sdk)?),
            None => None,
        };
        Ok(AppState {
            jobs: config.jobs(store.clone(), sdk),
            messaging: config.messaging(store.clone(), sdk),
            broadcasts: config.broadcasts(store.clone(), sdk),
            exports: config.exports(store.clone(), sdk),
            store,
            config: Arc::new(config),
            importer,
        })
    }

    /// Loads AWS settings from the environment (and `AWS_ENDPOINT_URL`, locally).
    pub async fn from_env(config: Config) -> roster::Result<Self> {
        let sdk = roster::aws::sdk_config().await;
        Self::new(config, &sdk)
    }
}

pub fn router(state: AppState) -> Router {
    routes::router(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
