//! The api Lambda: telemetry, config, clients once, then the shared router.

use lambda_http::{run, Error};
use roster::{telemetry, Config};
use roster_api::{router, AppState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let state = AppState::from_env(config).await?;
    run(router(state)).await
}
