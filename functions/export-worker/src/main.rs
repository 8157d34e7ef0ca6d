//! The export worker Lambda: runs one asynchronous export a message,
//! streaming its audience into S3.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roster::{store::Store, telemetry, workers, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = roster::aws::sdk_config().await;
    let store = Store::new(roster::aws::dynamodb(&sdk), config.table_name.clone());
    let exports = config
        .exports(store, &sdk)
        .ok_or("EXPORTS_BUCKET or EXPORT_QUEUE_URL is not set")?;
    let exports = &exports;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workers::export_batch(exports, event.payload).await)
    }))
    .await
}
