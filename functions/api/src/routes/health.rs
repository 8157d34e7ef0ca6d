use axum::Json;
use serde_json::{json, Value};

/// Liveness: answers without touching AWS.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
