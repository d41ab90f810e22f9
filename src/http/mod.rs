//! The HTTP side: actix-web server, request -> `req`, reply -> response.

mod handler;
mod multipart;
pub mod request;
pub mod response;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpServer};

use crate::app::App;
use crate::executor::Executor;

/// What every HTTP worker shares.
pub struct Server {
    pub app: Arc<App>,
    pub executor: Executor,
}

/// How long running requests may take to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` until SIGINT or SIGTERM, then lets running requests finish.
pub fn serve(app: Arc<App>, script_threads: usize) -> std::io::Result<()> {
    let settings = app.settings.clone();
    let server = web::Data::new(Server {
        app,
        executor: Executor::new(script_threads)?,
    });
    actix_web::rt::System::new().block_on(async move {
        let http = HttpServer::new(move || {
            actix_web::App::new()
                .app_data(server.clone())
                .default_service(web::to(handler::handle))
        })
        .workers(settings.workers)
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .bind((settings.hostname.as_str(), settings.port))?;
        for addr in http.addrs() {
            tracing::info!(
                "rhapi {} ready on http://{addr}",
                if settings.is_dev() { "dev" } else { "start" }
            );
        }
        http.run().await
    })
}
