//! An axum (tokio) server with plain handlers: the Router is built once at start-up, and an
//! edited handler answers the next request (entry jumps redirect the old code to the new)
//! while the listener, the runtime and open connections live on.
use axum::{extract::Path, routing::get, Router};

fn greet(name: &str) -> String {
    format!("hello, {name}\n")
}

async fn hello(Path(name): Path<String>) -> String {
    greet(&name)
}

async fn health() -> &'static str {
    "ok\n"
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let app = Router::new().route("/hello/{name}", get(hello)).route("/health", get(health));
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("cannot bind");
    println!("listening on http://{}", listener.local_addr().expect("no local address"));
    axum::serve(listener, app).await.expect("server failed");
}
