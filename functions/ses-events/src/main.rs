//! The SES events Lambda: delivery, bounce, complaint, open, click and the
//! rest, from the configuration set's event destination via SQS.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use roster::{store::Store, telemetry, workers, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = roster::aws::sdk_config().await;
    let store = Store::new(roster::aws::dynamodb(&sdk), config.table_name.clone());
    let store = &store;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(workers::ses_batch(store, event.payload).await)
    }))
    .await
}
