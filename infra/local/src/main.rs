//! `make dev`: provisions the emulated resources from template.yaml and serves
//! every HTTP function's router on 127.0.0.1:$PORT.

use roster_local::{local_parameters, LocalStack, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    roster::telemetry::init();
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let prefix = std::env::var("STACK_NAME").unwrap_or_else(|_| "roster-local".to_string());
    let template = Template::load(std::env::var("TEMPLATE").unwrap_or_else(|_| "template.yaml".to_string()))?;
    let mut params = local_parameters();
    // Twilio cannot run here: a stand-in takes the SMS (unless TWILIO_API_URL points elsewhere).
    if !params.contains_key("TwilioApiUrl") {
        let port = std::env::var("TWILIO_STUB_PORT").unwrap_or_else(|_| "4010".to_string());
        let stub = roster_local::twilio_stub::TwilioStub::start(&format!("127.0.0.1:{port}")).await?;
        eprintln!(
            "roster: Twilio stand-in on {} (GET {}/recorded lists the SMS sent)",
            stub.url, stub.url
        );
        params.insert("TwilioApiUrl".to_string(), stub.url);
    }
    let local = LocalStack::start(&template, &prefix, &params).await?;
    let state = local.api();
    // DynamoDB kept its data but a fresh S3/SQS emulator lost the files and
    // messages of the jobs then unfinished: they can never end by themselves.
    if std::env::var_os("ROSTER_FAIL_INTERRUPTED").is_some() {
        let failed = roster::usecases::interrupted::fail_all(&state.store).await?;
        if failed > 0 {
            eprintln!(
                "roster: {failed} import or bulk job(s) marked failed, or broadcast(s) paused (resume them), left unfinished by the last run"
            );
        }
    }
    let table = state.config.table_name.clone();
    let bucket = local
        .state("files-api")
        .and_then(|s| s.config.imports_bucket.clone())
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(port, table = %table, "roster local stack is serving");
    eprintln!("roster: listening on http://127.0.0.1:{port} (table {table}, imports bucket {bucket})");
    axum::serve(listener, local.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
