//! Floor 3: floor-sdk plus the api's other client (SQS), each client sending
//! one request per invocation, so the binary links the SDK's request path
//! (orchestrator, retries, signing, HTTP/2, an operation's serializer and
//! deserializer) that floor-sdk, which never sends, leaves out. `make bloat`
//! gives the api's size against both.
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = roster::aws::sdk_config().await;
    let dynamodb = roster::aws::dynamodb(&sdk);
    let sqs = roster::aws::sqs(&sdk);
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let queue = std::env::var("QUEUE_URL").unwrap_or_default();
    run(service_fn(move |_req: Request| {
        let (dynamodb, sqs, table, queue) = (dynamodb.clone(), sqs.clone(), table.clone(), queue.clone());
        async move {
            let got = dynamodb
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("floor".into()))
                .key("sk", AttributeValue::S("floor".into()))
                .send()
                .await?;
            sqs.send_message().queue_url(queue).message_body("floor").send().await?;
            Ok::<_, Error>(Response::new(Body::from(if got.item.is_some() {
                "found"
            } else {
                "none"
            })))
        }
    }))
    .await
}
