//! The send worker Lambda: plans broadcasts, sends their chunks, and runs
//! the scheduler's tick, one send-queue message at a time.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roster::{store::Store, telemetry, workers, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = roster::aws::sdk_config().await;
    let store = Store::new(roster::aws::dynamodb(&sdk), config.table_name.clone());
    let broadcasts = config
        .broadcasts(store, &sdk)
        .ok_or("SEND_QUEUE_URL and SIGNING_SECRET must be set")?;
    let broadcasts = &broadcasts;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workers::send_batch(broadcasts, event.payload).await)
    }))
    .await
}
