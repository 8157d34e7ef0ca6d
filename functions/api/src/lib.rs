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
use roster::{store::Store, Config};

pub use openapi::ApiDoc;

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares: built once per process.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(config: Config, dynamodb: roster::store::DynamoClient) -> Self {
        AppState {
            store: Store::new(dynamodb, config.table_name.clone()),
            config: Arc::new(config),
        }
    }

    /// Loads AWS settings from the environment (and `AWS_ENDPOINT_URL`, locally).
    pub async fn from_env(config: Config) -> Self {
        let sdk = roster::aws::sdk_config().await;
        Self::new(config, roster::aws::dynamodb(&sdk))
    }
}

pub fn router(state: AppState) -> Router {
    routes::router(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
