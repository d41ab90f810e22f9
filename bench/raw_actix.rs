//! The ceiling for bench/run.sh: the bench app's routes as plain actix-web handlers doing the
//! same work in Rust (serde_json, rusqlite), with no scripting. One worker; port from argv[1].
//!
//! Run: cargo run --release --example raw-actix -- 8081 [bench/app/data/app.db] [PUBLIC_DIR]
//!
//! With PUBLIC_DIR (bench/features.py), that folder is also served at `/` by plain
//! `actix_files::Files`, after the routes: the ceiling for rhapi's `public/`.

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

thread_local! {
    /// One connection per worker thread to the bench app's SQLite file (argv[2]).
    static DB: std::cell::RefCell<Option<rusqlite::Connection>> = const { std::cell::RefCell::new(None) };
}

static DB_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs `f` on this worker's connection, opening it on first use.
fn with_db<T>(f: impl FnOnce(&rusqlite::Connection) -> Option<T>) -> Option<T> {
    DB.with(|db| {
        let mut db = db.borrow_mut();
        if db.is_none() {
            let file = DB_PATH
                .get()
                .map(String::as_str)
                .unwrap_or("bench/app/data/app.db");
            *db = rusqlite::Connection::open(file).ok();
        }
        f(db.as_ref()?)
    })
}

#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    price: i64,
}

/// GET /api/items: the first 50 rows, as a JSON array.
async fn items() -> HttpResponse {
    let rows = with_db(|conn| {
        let mut stmt = conn
            .prepare_cached("SELECT id, name, price FROM items ORDER BY id LIMIT 50")
            .ok()?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    price: r.get(2)?,
                })
            })
            .ok()?;
        // Bound first: the rows borrow `stmt`, which must outlive them.
        #[allow(clippy::let_and_return)]
        let rows = rows.collect::<Result<Vec<_>, _>>().ok();
        rows
    });
    match rows {
        Some(rows) => HttpResponse::Ok().json(rows),
        None => HttpResponse::InternalServerError()
            .content_type(ContentType::json())
            .body(r#"{"error":"Internal Server Error"}"#),
    }
}

async fn item(path: web::Path<i64>) -> HttpResponse {
    let id = path.into_inner();
    let row = with_db(|conn| {
        let mut stmt = conn
            .prepare_cached("SELECT id, name, price FROM items WHERE id = ?1")
            .ok()?;
        stmt.query_row([id], |r| {
            Ok(serde_json::json!({
                "id": r.get::<_, i64>(0)?,
                "name": r.get::<_, String>(1)?,
                "price": r.get::<_, i64>(2)?,
            }))
        })
        .ok()
    });
    match row {
        Some(row) => HttpResponse::Ok().json(row),
        None => HttpResponse::NotFound()
            .content_type(ContentType::json())
            .body(r#"{"error":"no such item"}"#),
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    if let Some(path) = std::env::args().nth(2) {
        let _ = DB_PATH.set(path);
    }
    let public = std::env::args().nth(3);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let mut app = App::new()
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/api/hello", web::get().to(hello))
                .route("/api/echo", web::post().to(echo))
                .route("/api/users/{id}", web::get().to(user))
                .route("/api/work", web::get().to(work))
                .route("/api/items", web::get().to(items))
                .route("/api/items/{id}", web::get().to(item));
            if let Some(dir) = &public {
                app = app.service(actix_files::Files::new("/", dir));
            }
            app
        })
        .workers(1)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
