//! Floor 2: lambda_http plus building the AWS SDK configuration and the DynamoDB client, which
//! every function builds; it never sends a request.
use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = roster::aws::sdk_config().await;
    let dynamodb = roster::aws::dynamodb(&sdk);
    run(service_fn(move |_req: Request| {
        let _client = dynamodb.clone();
        async { Ok::<_, Error>(Response::new(Body::from("hello"))) }
    }))
    .await
}
