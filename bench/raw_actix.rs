//! The ceiling for bench/run.sh: the bench app's routes as plain actix-web handlers doing the
//! same work in Rust (serde_json), with no scripting. One worker; port from argv[1].
//!
//! Run: cargo run --release --example raw-actix -- 8081

use std::collections::HashMap;

use actix_web::{http::header::ContentType, web, App, HttpResponse, HttpServer};
use serde::Serialize;

#[derive(Serialize)]
struct Item {
    id: i64,
    name: String,
    price: i64,
    tags: [&'static str; 2],
    active: bool,
}

#[derive(Serialize)]
struct Work {
    count: usize,
    items: Vec<Item>,
}

async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "message": "Hello from API route!" }))
}

async fn echo(body: web::Bytes) -> HttpResponse {
    // The same round trip rhapi makes: parse the JSON body, serialise it back.
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) => HttpResponse::Ok().json(value),
        Err(_) => HttpResponse::BadRequest()
            .content_type(ContentType::json())
            .body(r#"{"error":"Invalid JSON body"}"#),
    }
}

async fn user(path: web::Path<String>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let id = path.into_inner();
    HttpResponse::Ok().json(serde_json::json!({
        "id": id,
        "fields": query.get("fields"),
        "sort": query.get("sort"),
    }))
}

async fn work() -> HttpResponse {
    let items: Vec<Item> = (0..100)
        .map(|i| Item {
            id: i,
            name: format!("item {i}"),
            price: i * 3,
            tags: ["a", "b"],
            active: i % 2 == 0,
        })
        .collect();
    HttpResponse::Ok().json(Work {
        count: items.len(),
        items,
    })
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/api/hello", web::get().to(hello))
                .route("/api/echo", web::post().to(echo))
                .route("/api/users/{id}", web::get().to(user))
                .route("/api/work", web::get().to(work))
        })
        .workers(1)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
