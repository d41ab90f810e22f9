//! The HTTP side: actix-web server, request -> `req`, reply -> response.

mod compress;
mod context;
mod cors;
mod file_cache;
mod handler;
mod in_flight;
mod multipart;
mod ops;
mod public;
mod rate_limit;
pub mod request;
pub mod response;
mod websocket;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, HttpServer};

use crate::app::App;
use crate::settings::ServeSettings;

pub use public::warnings as public_warnings;

/// What every HTTP worker shares.
pub struct Shared {
    pub app: Arc<App>,
    pub in_flight: in_flight::InFlight,
}

impl Shared {
    /// What the workers of one server (or one `rhapi test` file) share.
    pub fn new(app: Arc<App>) -> Shared {
        Shared {
            app,
            in_flight: in_flight::InFlight::default(),
        }
    }
}

/// The actix app each HTTP worker runs. `rhapi test` runs the same one in-process, so
/// whatever answers a request here (services, and any wrapping added later) is what its
/// `request()` goes through.
pub fn app(
    server: web::Data<Shared>,
) -> actix_web::App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(server)
        .wrap_fn(|mut req, service| {
            public::normalize_range(&mut req);
            service.call(req)
        })
        .default_service(web::to(handler::handle))
}

/// How long running requests may take to finish after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often a stopping server looks whether its last connection has ended.
const SHUTDOWN_POLL: Duration = Duration::from_millis(10);

/// Connections open right now, all workers together.
static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Held by each connection (in its connection data) for as long as it is open.
struct OpenConnection;

impl OpenConnection {
    fn new() -> OpenConnection {
        OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The listening socket rhapi was started with, claimed by [`claim_inherited_socket`].
static INHERITED: std::sync::Mutex<Option<std::io::Result<std::net::TcpListener>>> =
    std::sync::Mutex::new(None);

/// Claims the listening socket rhapi was started with, if any: systemd's socket activation
/// (`LISTEN_PID` is this process, `LISTEN_FDS` at least 1: the socket is fd 3). [`serve`]
/// then listens on it, and the host and port settings do not apply. The tests use it too,
/// to start each server on a port they bound themselves. Called first thing, before any
/// thread starts: it clears both variables, so nothing rhapi starts inherits them.
pub fn claim_inherited_socket() {
    let ours = std::env::var("LISTEN_PID").is_ok_and(|pid| pid == std::process::id().to_string());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok());
    if !ours || fds.unwrap_or(0) < 1 {
        return;
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    let claimed = listening_socket_at(3);
    *INHERITED.lock().unwrap_or_else(|e| e.into_inner()) = Some(claimed);
}

/// fd `fd` as a TCP listener, once it is known to be one (a listening stream socket with an
/// IP address); closed when rhapi starts another program.
fn listening_socket_at(fd: std::os::fd::RawFd) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let int_option = |option: libc::c_int| -> std::io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are valid for writes of the sizes given.
        let done = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        if done == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(value)
    };
    let not_a_listener = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "LISTEN_FDS: fd 3 is not a listening TCP socket",
        )
    };
    if int_option(libc::SO_TYPE)? != libc::SOCK_STREAM || int_option(libc::SO_ACCEPTCONN)? != 1 {
        return Err(not_a_listener());
    }
    // SAFETY: fd 3 was handed over as a listening socket (the protocol of LISTEN_FDS, and
    // checked above); nothing else in the process owns it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    // A Unix socket has no IP address: an error here.
    listener.local_addr()?;
    // SAFETY: fcntl on a descriptor this process owns.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `app` until SIGINT or SIGTERM, then lets running requests finish.
pub fn serve(app: Arc<App>, settings: ServeSettings) -> std::io::Result<()> {
    let dev = app.settings.is_dev();
    let jobs_app = Arc::clone(&app);
    let stopping_app = Arc::clone(&app);
    let realtime_app = Arc::clone(&app);
    let server = web::Data::new(Shared::new(app));
    let metrics_of = server.clone();
    // Jobs run on the HTTP workers, each of which registers itself as it starts.
    let workers = Arc::new(crate::jobs::runner::Workers::default());
    let registry = Arc::clone(&workers);
    actix_web::rt::System::new().block_on(async move {
        // Bound first: when the app's port says it is ready, `/metrics` answers too.
        let metrics = match &settings.metrics {
            Some(addr) => Some(ops::metrics_server(addr, metrics_of)?),
            None => None,
        };
        let running = start_http(server, registry, &settings, dev)?;
        if let Some(tls) = &settings.tls {
            tls.reload_on_change()?;
        }
        let jobs = crate::jobs::runner::start(jobs_app, workers);
        crate::realtime::remote::start(realtime_app);
        let handle = running.handle();
        let stopped = async move {
            let signal = shutdown_signal().await?;
            tracing::info!("{signal}: finishing running requests and jobs, then stopping");
            // `/_rhapi/ready` answers 503 on the connections still open.
            stopping_app.context.readiness.stopping();
            // Streams end at their next write instead of running out the grace.
            crate::script::stream::shut_down();
            let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
            // Jobs, and code running after its response (its connection may be gone), run
            // on the workers: stop accepting, start no more jobs, and let both finish
            // before the workers stop (up to the grace).
            handle.pause().await;
            jobs.drain(grace).await;
            wait_until(grace, || crate::executor::detached_runs_in_process() == 0).await;
            // Stops accepting, closes idle keep-alive connections, and lets the others
            // finish (up to the grace).
            actix_web::rt::spawn(async move { handle.stop(true).await });
            // actix looks at its connections once a second only: done as soon as the last
            // one has ended (or the grace is over, like actix).
            wait_until(grace, || OPEN_CONNECTIONS.load(Ordering::Relaxed) == 0).await;
            Some(())
        };
        let metrics = metrics.map(|server| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let served = tokio::select! {
            served = running => served,
            Some(()) = stopped => Ok(()),
        };
        if let Some(metrics) = metrics {
            metrics.stop(false).await;
        }
        served
    })
}

/// Starts the HTTP workers on the inherited socket or the configured address, over TLS
/// when `settings.tls` says so, and says where it is ready.
fn start_http(
    server: web::Data<Shared>,
    registry: Arc<crate::jobs::runner::Workers>,
    settings: &ServeSettings,
    dev: bool,
) -> std::io::Result<actix_web::dev::Server> {
    let http = HttpServer::new(move || {
        registry.register_current();
        self::app(server.clone())
    })
    .workers(settings.workers)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    // actix stops at once on SIGINT; both signals must let running requests finish.
    .disable_signals()
    .on_connect(|_, data| {
        data.insert(OpenConnection::new());
    });
    let inherited = INHERITED.lock().unwrap_or_else(|e| e.into_inner()).take();
    let address = (settings.hostname.as_str(), settings.port);
    let http = match (inherited, &settings.tls) {
        (Some(listener), None) => http.listen(listener?)?,
        (None, None) => http.bind(address)?,
        // HTTP/2 and HTTP/1.1 by ALPN; actix marks these connections' scheme `https`.
        (Some(listener), Some(tls)) => http.listen_rustls_0_23(listener?, tls_config(tls)?)?,
        (None, Some(tls)) => http.bind_rustls_0_23(address, tls_config(tls)?)?,
    };
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    for addr in http.addrs() {
        tracing::info!(
            "rhapi {} ready on {scheme}://{addr}",
            if dev { "dev" } else { "start" }
        );
    }
    Ok(http.run())
}

fn tls_config(tls: &Arc<crate::tls::Certificates>) -> std::io::Result<rustls::ServerConfig> {
    tls.server_config().map_err(std::io::Error::other)
}

/// Polls `done` until it holds or `deadline` passes.
async fn wait_until(deadline: tokio::time::Instant, done: impl Fn() -> bool) {
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(SHUTDOWN_POLL).await;
    }
}

/// Waits for SIGINT or SIGTERM and names it; `None` if signals cannot be listened to.
async fn shutdown_signal() -> Option<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).ok()?;
    let mut terminate = signal(SignalKind::terminate()).ok()?;
    tokio::select! {
        _ = interrupt.recv() => Some("SIGINT"),
        _ = terminate.recv() => Some("SIGTERM"),
    }
}
