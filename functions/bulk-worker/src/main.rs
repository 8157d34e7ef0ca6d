//! The bulk worker Lambda: plans bulk jobs and works their chunks, one
//! message at a time.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roster::{store::Store, telemetry, workers, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = roster::aws::sdk_config().await;
    let store = Store::new(roster::aws::dynamodb(&sdk), config.table_name.clone());
    let jobs = config.jobs(store, &sdk).ok_or("BULK_QUEUE_URL is not set")?;
    let jobs = &jobs;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workers::bulk_batch(jobs, event.payload).await)
    }))
    .await
}
