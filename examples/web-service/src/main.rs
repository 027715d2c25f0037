//! A JSON web service with the dependency graph of a typical production axum app
//! (tower-http middleware, tracing, serde, regex, uuid, chrono: over 100 crates).
//! Its handlers are plain async fns (entry jumps bring edits to the Router built at start-up);
//! Hotline's mid-size benchmark edits `greet`.
use std::sync::Mutex;
use std::time::Duration;

use axum::{extract::Path, routing::get, Json, Router};
use regex::Regex;
use serde::Serialize;
use tower_http::{
    compression::CompressionLayer, cors::CorsLayer, timeout::TimeoutLayer, trace::TraceLayer,
};

static VISITS: Mutex<u64> = Mutex::new(0);

#[derive(Serialize)]
struct Greeting {
    id: uuid::Uuid,
    message: String,
    visits: u64,
    at: chrono::DateTime<chrono::Utc>,
}

fn greet(name: &str) -> String {
    format!("hello, {name}\n")
}

async fn hello(
    Path(name): Path<String>,
) -> Result<Json<Greeting>, (axum::http::StatusCode, String)> {
    let valid = Regex::new(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$").expect("valid pattern");
    if !valid.is_match(&name) {
        return Err((
            axum::http::StatusCode::BAD_REQUEST,
            format!("bad name {name:?}\n"),
        ));
    }
    let mut visits = VISITS.lock().unwrap_or_else(|e| e.into_inner());
    *visits += 1;
    tracing::info!(%name, visits = *visits, "greeting");
    Ok(Json(Greeting {
        id: uuid::Uuid::new_v4(),
        message: greet(&name),
        visits: *visits,
        at: chrono::Utc::now(),
    }))
}

async fn health() -> &'static str {
    "ok\n"
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = Router::new()
        .route("/hello/{name}", get(hello))
        .route("/health", get(health))
        .layer(TraceLayer::new_for_http())
        .layer(CompressionLayer::new())
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("cannot bind");
    println!(
        "listening on http://{}",
        listener.local_addr().expect("no local address")
    );
    axum::serve(listener, app).await.expect("server failed");
}
