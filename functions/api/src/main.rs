//! The api Lambda: telemetry, config, clients once, then the operator's routes.

use lambda_http::{run, Error};
use roster::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = roster::aws::sdk_config().await;
    let (_, router) = roster_api::functions::api(config, &sdk)?;
    run(router).await
}
