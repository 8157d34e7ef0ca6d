//! The HTTP API: its routes, in four functions (`functions`), each an axum
//! router served by `lambda_http` in AWS and all of them by the local runner
//! on a TCP port. Handlers parse, call one use case, map the result.

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
    /// The table and the configuration: what every function needs. The
    /// adapters each function adds are built by its own constructor below,
    /// so that a function links and starts only the AWS clients it calls.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        AppState {
            store: Store::new(roster::aws::dynamodb(sdk), config.table_name.clone()),
            config: Arc::new(config),
            importer: None,
            jobs: None,
            messaging: None,
            broadcasts: None,
            exports: None,
        }
    }
}

/// The HTTP functions of `template.yaml`: what each builds at start-up and
/// the routes it serves. Each Lambda serves one; the local runner serves them
/// all, each request to the function API Gateway would choose.
pub mod functions {
    use super::*;

    /// `api`: the operator's api (DynamoDB; SQS for bulk jobs).
    pub fn api(config: Config, sdk: &aws_config::SdkConfig) -> roster::Result<(AppState, Router)> {
        let mut state = AppState::new(config, sdk);
        state.jobs = state.config.jobs(state.store.clone(), sdk);
        Ok(serve(routes::operator(), state))
    }

    /// `public-api`: capture, webhooks, links and unsubscribe (DynamoDB only).
    pub fn public_api(config: Config, sdk: &aws_config::SdkConfig) -> roster::Result<(AppState, Router)> {
        let state = AppState::new(config, sdk);
        Ok(serve(routes::public(state.clone()), state))
    }

    /// `files-api`: imports and exports (DynamoDB, S3, SQS).
    pub fn files_api(config: Config, sdk: &aws_config::SdkConfig) -> roster::Result<(AppState, Router)> {
        let mut state = AppState::new(config, sdk);
        if state.config.imports_bucket.is_some() {
            state.importer = Some(state.config.importer(state.store.clone(), sdk)?);
        }
        state.exports = state.config.exports(state.store.clone(), sdk);
        Ok(serve(routes::files(), state))
    }

    /// `messaging-api`: templates, messages and broadcasts (DynamoDB, SQS, SES, Twilio).
    pub fn messaging_api(config: Config, sdk: &aws_config::SdkConfig) -> roster::Result<(AppState, Router)> {
        let mut state = AppState::new(config, sdk);
        state.messaging = state.config.messaging(state.store.clone(), sdk);
        state.broadcasts = state.config.broadcasts(state.store.clone(), sdk);
        Ok(serve(routes::messaging(), state))
    }

    fn serve(routes: Router<AppState>, state: AppState) -> (AppState, Router) {
        let router = routes::fallbacks(routes)
            .layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state.clone());
        (state, router)
    }
}
