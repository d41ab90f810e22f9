//! Every setting, in one place: the schema of `rhapi.toml` ([`Settings`], one section a
//! struct, each default next to its field), and what the app and the server are handed
//! from it ([`AppSettings`], [`ServeSettings`]).
//!
//! The layers, lowest first: the defaults ([`Default`]), `rhapi.toml` ([`crate::config`]),
//! the command line ([`Overrides`]). The `[server]` keys `host`, `port` and `workers`, and
//! `[tls]`, are restart-only ([`Settings::keep_restart_only`]); every other key is picked up when
//! `rhapi.toml` is saved. To add a key: a field (with its default) in its section here, its
//! parser in `config.rs` if it is not a plain TOML value, and a flag in `cli.rs` if the
//! command line sets it too.

use std::time::Duration;

use serde::Deserialize;

/// Which command is serving: `dev` shows details, `start` is for production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `rhapi dev`: detailed errors in responses, `.env.example` fallback.
    Dev,
    /// `rhapi start`: generic error bodies, last good version kept on a bad save.
    Start,
}

/// The schema of `rhapi.toml`: one field a section. A section left out of the file keeps
/// the values below it; so does a key left out of a section.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: listening (restart-only) and request limits (reloadable).
    #[serde(default = "crate::config::server_below")]
    pub server: ServerSettings,
    /// `[public]`: static files (reloadable).
    #[serde(default = "crate::config::public_below")]
    pub public: PublicSettings,
    /// `[cors]`: cross-origin requests (reloadable).
    #[serde(default = "crate::config::cors_below")]
    pub cors: CorsSettings,
    /// `[cache]`: the in-process cache of `cache::` (reloadable).
    #[serde(default = "crate::config::cache_below")]
    pub cache: CacheSettings,
    /// `[jobs]`: the job runner (reloadable).
    #[serde(default = "crate::config::jobs_below")]
    pub jobs: JobsSettings,
    /// `[[rate_limit]]`: one entry a rule (reloadable).
    #[serde(default = "crate::config::rate_limit_below")]
    pub rate_limit: Vec<RateLimitRule>,
    /// `[rate_limits]`: where the counters live (reloadable).
    #[serde(default = "crate::config::rate_limits_below")]
    pub rate_limits: RateLimitsSettings,
    /// `[realtime]`: WebSockets, event streams and publishes (reloadable; a connection keeps
    /// the values it opened with).
    #[serde(default = "crate::config::realtime_below")]
    pub realtime: RealtimeSettings,
    /// `[tls]`: HTTPS (restart-only; the files themselves are reloaded when they change).
    #[serde(default = "crate::config::tls_below")]
    pub tls: TlsSettings,
    /// `[metrics]`: the Prometheus listener (restart-only).
    #[serde(default = "crate::config::metrics_below")]
    pub metrics: MetricsSettings,
}

/// `[metrics]` (docs/reference.md, "Health and metrics").
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::metrics_below")]
pub struct MetricsSettings {
    /// `host:port` of a second listener that serves only `GET /metrics`; `None` (the
    /// default): no metrics, and nothing counted. Restart-only.
    #[serde(deserialize_with = "crate::config::listen_address")]
    pub listen: Option<String>,
}

/// `[tls]`: the certificate chain and private key to serve HTTPS with (PEM files, relative
/// to the app folder or absolute). Both or neither: checked in `config.rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::tls_below")]
pub struct TlsSettings {
    /// The certificate chain, the server's own certificate first.
    pub cert: Option<String>,
    /// The private key of that certificate (PKCS#8, RSA or EC).
    pub key: Option<String>,
}

/// `[realtime]` (docs/reference.md, "WebSockets" and "Publish and subscribe").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::realtime_below")]
pub struct RealtimeSettings {
    /// Largest message in bytes: a WebSocket message received, a publish.
    #[serde(deserialize_with = "crate::config::size")]
    pub max_message: usize,
    /// Messages waiting to be sent to one connection (WebSocket or event stream); a
    /// connection whose queue is full is closed and its queue dropped.
    #[serde(deserialize_with = "crate::config::positive_usize")]
    pub send_queue: usize,
    /// How often an idle WebSocket is pinged.
    #[serde(deserialize_with = "crate::config::duration")]
    pub ping_interval: Duration,
    /// A WebSocket that answers no ping for this long is closed.
    #[serde(deserialize_with = "crate::config::duration")]
    pub pong_timeout: Duration,
    /// How often an idle event stream sends a `: keep-alive` comment (so that a client
    /// that has gone is noticed).
    #[serde(deserialize_with = "crate::config::duration")]
    pub keep_alive: Duration,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        RealtimeSettings {
            max_message: 64 * 1024,
            send_queue: 256,
            ping_interval: Duration::from_secs(30),
            pong_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// `[cache]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::cache_below")]
pub struct CacheSettings {
    /// Bytes the entries may count for together (each about the size of its JSON); the
    /// least recently used go first past it. 0 keeps nothing.
    #[serde(deserialize_with = "crate::config::size")]
    pub max: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max: crate::cache::DEFAULT_MAX,
        }
    }
}

/// `[jobs]`: how the server runs jobs (docs/reference.md, "Jobs").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::jobs_below")]
pub struct JobsSettings {
    /// Jobs run at once in this instance, all jobs together.
    #[serde(deserialize_with = "crate::config::positive_usize")]
    pub concurrency: usize,
    /// Added to a job's timeout to make its lease: past it, a job whose process died runs
    /// again.
    #[serde(deserialize_with = "crate::config::duration")]
    pub lease_grace: Duration,
    /// How long completed jobs are kept before they are deleted.
    #[serde(deserialize_with = "crate::config::duration")]
    pub keep_completed: Duration,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            concurrency: 4,
            lease_grace: Duration::from_secs(30),
            keep_completed: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// `[server]`. Keys marked "command line only" are not read from the file (a typo check
/// refuses them there) but are settings all the same.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::server_below")]
pub struct ServerSettings {
    /// Address to listen on; `None`: 127.0.0.1 for `dev`, 0.0.0.0 for `start`.
    /// Restart-only.
    #[serde(deserialize_with = "crate::config::host")]
    pub host: Option<String>,
    /// Port to listen on. Restart-only.
    #[serde(deserialize_with = "crate::config::port")]
    pub port: u16,
    /// Actix workers (HTTP event loops); `None`: one per core. Restart-only.
    #[serde(deserialize_with = "crate::config::workers")]
    pub workers: Option<usize>,
    /// Largest request body accepted, in bytes.
    #[serde(deserialize_with = "crate::config::size")]
    pub body_limit: usize,
    /// Wall-clock budget of one request's script.
    #[serde(deserialize_with = "crate::config::duration")]
    pub timeout: Duration,
    /// Longest pause while a request body arrives; past it, 408 and the connection closed.
    #[serde(deserialize_with = "crate::config::duration")]
    pub body_timeout: Duration,
    /// Rhai operations budget of one request's script.
    #[serde(deserialize_with = "crate::config::positive")]
    pub max_operations: u64,
    /// Requests held at once; above it new ones get 503.
    #[serde(deserialize_with = "crate::config::positive_usize")]
    pub max_in_flight: usize,
    /// Bytes one request's script may allocate and keep. Command line only.
    #[serde(skip)]
    pub max_memory: usize,
    /// Rhai's own limits, 0 = off: largest string in bytes, array and map in items. Off by
    /// default: each re-measures a whole value after every change (see `memory.rs`).
    /// Command line only.
    #[serde(skip)]
    pub max_string_size: usize,
    #[serde(skip)]
    pub max_array_size: usize,
    #[serde(skip)]
    pub max_map_size: usize,
    /// Deepest function call nesting. Command line only.
    #[serde(skip)]
    pub max_call_depth: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: None,
            port: 3000,
            workers: None,
            body_limit: 1024 * 1024,
            timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(5),
            max_operations: 10_000_000,
            max_in_flight: 10_000,
            max_memory: 64 * 1024 * 1024,
            max_string_size: 0,
            max_array_size: 0,
            max_map_size: 0,
            max_call_depth: 64,
        }
    }
}

impl ServerSettings {
    /// The limits a script runs under.
    pub fn limits(&self) -> Limits {
        Limits {
            timeout: self.timeout,
            max_operations: self.max_operations,
            max_memory: self.max_memory,
            max_string_size: self.max_string_size,
            max_array_size: self.max_array_size,
            max_map_size: self.max_map_size,
            max_call_depth: self.max_call_depth,
        }
    }

    /// These settings with the script limits replaced by `limits` (`rhapi test`'s budget).
    pub fn with_limits(mut self, limits: &Limits) -> ServerSettings {
        self.timeout = limits.timeout;
        self.max_operations = limits.max_operations;
        self.max_memory = limits.max_memory;
        self.max_string_size = limits.max_string_size;
        self.max_array_size = limits.max_array_size;
        self.max_map_size = limits.max_map_size;
        self.max_call_depth = limits.max_call_depth;
        self
    }
}

impl Settings {
    /// Puts back the restart-only values of `running` (what the server listens with) and
    /// names the keys whose new value therefore does not apply.
    pub fn keep_restart_only(&mut self, running: &Settings) -> Vec<&'static str> {
        let mut ignored = Vec::new();
        let (new, old) = (&mut self.server, &running.server);
        keep(&mut ignored, "server.host", &mut new.host, &old.host);
        keep(&mut ignored, "server.port", &mut new.port, &old.port);
        keep(
            &mut ignored,
            "server.workers",
            &mut new.workers,
            &old.workers,
        );
        let (new, old) = (&mut self.tls, &running.tls);
        keep(&mut ignored, "tls.cert", &mut new.cert, &old.cert);
        keep(&mut ignored, "tls.key", &mut new.key, &old.key);
        keep(
            &mut ignored,
            "metrics.listen",
            &mut self.metrics.listen,
            &running.metrics.listen,
        );
        ignored
    }

    /// What the app needs in `mode`.
    pub fn app(&self, mode: Mode) -> AppSettings {
        let server = &self.server;
        AppSettings {
            mode,
            limits: server.limits(),
            body_limit: server.body_limit,
            body_timeout: server.body_timeout,
            max_in_flight: server.max_in_flight,
            public: self.public.clone(),
            cors: self.cors.clone(),
            cache: self.cache.clone(),
            jobs: self.jobs.clone(),
            realtime: self.realtime.clone(),
            // Checked when the file was read (`config.rs`): every rule compiles.
            rate_limits: self
                .rate_limit
                .iter()
                .filter_map(|rule| crate::rate_limit::Rule::compile(rule).ok())
                .collect(),
            listen: Listen {
                hostname: server.host.clone().unwrap_or_else(|| {
                    match mode {
                        Mode::Dev => "127.0.0.1",
                        Mode::Start => "0.0.0.0",
                    }
                    .to_string()
                }),
                port: server.port,
                workers: server
                    .workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                tls: self.tls.clone(),
                metrics: self.metrics.listen.clone(),
            },
        }
    }
}

fn keep<T: PartialEq + Clone>(
    ignored: &mut Vec<&'static str>,
    key: &'static str,
    new: &mut T,
    old: &T,
) {
    if new != old {
        ignored.push(key);
        *new = old.clone();
    }
}

/// The command line's layer over `rhapi.toml`: each flag given writes its field of
/// [`Settings`]. Kept, not applied once, because every reload of the file applies it again.
#[derive(Clone, Default)]
pub struct Overrides(Vec<Write>);

/// One value of a layer, written into the settings.
type Write = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

impl Overrides {
    /// When `value` was given, `write` puts it into the settings.
    pub fn set<T: Clone + Send + Sync + 'static>(
        &mut self,
        value: Option<T>,
        write: fn(&mut Settings, T),
    ) {
        if let Some(value) = value {
            self.0
                .push(std::sync::Arc::new(move |s| write(s, value.clone())));
        }
    }

    /// `settings` with this layer's values over them.
    pub fn over(&self, mut settings: Settings) -> Settings {
        for write in &self.0 {
            write(&mut settings);
        }
        settings
    }
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Overrides({} values)", self.0.len())
    }
}

/// The layers a load starts from: everything but `rhapi.toml`, which lies between them.
#[derive(Clone, Debug)]
pub struct Layers {
    pub mode: Mode,
    /// The values under `rhapi.toml`: the defaults (or `rhapi test`'s budget).
    pub base: Settings,
    /// The command line, over `rhapi.toml`.
    pub cli: Overrides,
}

impl Layers {
    /// The defaults of `mode` and nothing over them.
    pub fn defaults(mode: Mode) -> Layers {
        Layers {
            mode,
            base: Settings::default(),
            cli: Overrides::default(),
        }
    }
}

/// Limits a script runs under, per request (from [`ServerSettings`]).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock budget of one request's script.
    pub timeout: Duration,
    /// Rhai operations budget of one request's script.
    pub max_operations: u64,
    /// Bytes one request's script may allocate and keep.
    pub max_memory: usize,
    /// Rhai's own limits, 0 = off: largest string in bytes, array and map in items.
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Deepest function call nesting.
    pub max_call_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        ServerSettings::default().limits()
    }
}

/// Where static files come from (`[public]` of `rhapi.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::public_below")]
pub struct PublicSettings {
    /// The folder, relative to the app folder.
    pub dir: String,
    /// Answer every HTML 404 outside `/api` with `index.html` and 200 (a single-page app).
    pub spa: bool,
}

impl Default for PublicSettings {
    fn default() -> Self {
        PublicSettings {
            dir: "public".into(),
            spa: false,
        }
    }
}

/// Cross-origin requests (`[cors]` of `rhapi.toml`). Off while `origins` is empty. A
/// `[cors]` section must list `origins`; its other keys have defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Allowed origins (`https://app.example`), or `["*"]` for any.
    pub origins: Vec<String>,
    /// Methods a preflight allows; `None`: the route's own methods.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Request headers a preflight allows, lowercase.
    #[serde(default = "CorsSettings::default_headers")]
    pub headers: Vec<String>,
    /// Cookies and `Authorization` cross-origin (`Access-Control-Allow-Credentials`).
    #[serde(default)]
    pub credentials: bool,
    /// How long a browser may cache a preflight, in seconds.
    #[serde(default = "CorsSettings::default_max_age")]
    pub max_age: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            origins: Vec::new(),
            methods: None,
            headers: CorsSettings::default_headers(),
            credentials: false,
            max_age: CorsSettings::default_max_age(),
        }
    }
}

impl CorsSettings {
    fn default_headers() -> Vec<String> {
        vec!["content-type".into()]
    }

    fn default_max_age() -> u64 {
        600
    }

    /// Whether any origin is allowed at all.
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }
}

/// One `[[rate_limit]]` rule: at most `limit` requests `per` window on the paths `path`
/// matches, counted by `by`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// A route path; `[id]` or `:id` is any one segment, a last `*` the rest of the path.
    pub path: String,
    /// Requests allowed per window.
    #[serde(deserialize_with = "crate::config::positive")]
    pub limit: u64,
    /// The window.
    #[serde(deserialize_with = "crate::config::duration")]
    pub per: Duration,
    /// `"ip"` or `"header:NAME"`; `None`: the rule's requests share one counter.
    #[serde(default)]
    pub by: Option<String>,
}

/// `[rate_limits]`: where rate-limit counters live.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default = "crate::config::rate_limits_below")]
pub struct RateLimitsSettings {
    /// `"memory"` (the process) or `"database"` (the app's PostgreSQL, shared by instances).
    pub store: RateStore,
    /// Keys the process keeps counters for at most (per app); past it, idle keys go first,
    /// then the least recently counted.
    #[serde(deserialize_with = "crate::config::positive_usize")]
    pub max_keys: usize,
}

impl Default for RateLimitsSettings {
    fn default() -> Self {
        RateLimitsSettings {
            store: RateStore::Memory,
            max_keys: crate::rate_limit::DEFAULT_MAX_KEYS,
        }
    }
}

/// Where rate-limit counters live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateStore {
    /// In the process: each instance counts its own requests.
    Memory,
    /// In the app's PostgreSQL: every instance on it shares the counts (on SQLite, in the
    /// process).
    Database,
}

/// What the app itself needs, whatever serves it (a server, `check`, `routes`), resolved
/// from [`Settings`] by [`Settings::app`]. A reload of `rhapi.toml` changes it for the
/// requests that start after it (but never `listen`).
#[derive(Clone, Debug)]
pub struct AppSettings {
    pub mode: Mode,
    pub limits: Limits,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Longest pause while a request body arrives; past it, 408 and the connection closed.
    pub body_timeout: Duration,
    /// Requests held at once; above it new ones get 503 (`--max-in-flight`).
    pub max_in_flight: usize,
    pub public: PublicSettings,
    pub cors: CorsSettings,
    pub cache: CacheSettings,
    pub jobs: JobsSettings,
    pub realtime: RealtimeSettings,
    /// The `[[rate_limit]]` rules, in the file's order.
    pub rate_limits: std::sync::Arc<[crate::rate_limit::Rule]>,
    /// Where to listen: read at start only.
    pub listen: Listen,
}

impl AppSettings {
    /// Development mode shows script errors to the client.
    pub fn is_dev(&self) -> bool {
        self.mode == Mode::Dev
    }
}

/// Where and with how many threads to listen (`[server]` `host`, `port`, `workers`), and
/// whether over TLS (`[tls]`), resolved for the mode: restart-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub hostname: String,
    pub port: u16,
    /// Actix workers, at least 1.
    pub workers: usize,
    /// The certificate files, relative to the app folder; none: plain HTTP.
    pub tls: TlsSettings,
    /// Where `/metrics` is served (`[metrics] listen`), if anywhere.
    pub metrics: Option<String>,
}

/// What serving needs besides the app: where to listen, how many threads, watching.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub hostname: String,
    pub port: u16,
    /// Actix workers (HTTP event loops).
    pub workers: usize,
    /// Watch `pages/` and `.env*` and reload on change.
    pub watch: bool,
    /// Serve HTTPS with these certificates (loaded by the caller, which reports a bad file
    /// before the server starts).
    pub tls: Option<std::sync::Arc<crate::tls::Certificates>>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<String>,
}

impl ServeSettings {
    /// Listening as `listen` says, watching when `watch`.
    pub fn new(listen: &Listen, watch: bool) -> ServeSettings {
        ServeSettings {
            hostname: listen.hostname.clone(),
            port: listen.port,
            workers: listen.workers,
            watch,
            tls: None,
            metrics: listen.metrics.clone(),
        }
    }
}

/// Parses a byte size: `1048576`, `512kb`, `10mb`, `1gb` (powers of 1024, case-insensitive).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = split_number(&lower);
    let factor: usize = match unit {
        "" | "b" => 1,
        "kb" | "k" => 1024,
        "mb" | "m" => 1024 * 1024,
        "gb" | "g" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "unknown size unit in '{text}': use b, kb, mb or gb"
            ))
        }
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size: write bytes or e.g. 512kb, 10mb"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// Parses a duration: `10` (seconds), `2s`, `500ms`, `1m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = split_number(&lower);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write seconds or e.g. 500ms, 2s"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "unknown duration unit in '{text}': use ms, s, m, h or d"
            ))
        }
    };
    if duration.is_zero() {
        return Err(format!("duration '{text}' must be more than zero"));
    }
    Ok(duration)
}

fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_writes_over_what_is_below() {
        let mut cli = Overrides::default();
        cli.set(Some(8080u16), |s, v| s.server.port = v);
        cli.set(None::<usize>, |s, v| s.server.body_limit = v);
        let mut file = Settings::default();
        file.server.port = 4000;
        file.server.body_limit = 10;
        let settings = cli.over(file);
        assert_eq!(
            (settings.server.port, settings.server.body_limit),
            (8080, 10)
        );
        let app = settings.app(Mode::Start);
        assert_eq!(app.listen.hostname, "0.0.0.0");
        assert_eq!(app.listen.port, 8080);
        assert!(app.listen.workers >= 1);
        assert_eq!(
            Settings::default().app(Mode::Dev).listen.hostname,
            "127.0.0.1"
        );
    }

    #[test]
    fn restart_only_keys_keep_the_running_values() {
        let running = Settings::default();
        let mut reloaded = Settings::default();
        reloaded.server.port = 4000;
        reloaded.server.workers = Some(2);
        reloaded.server.body_limit = 10;
        reloaded.tls.cert = Some("new.pem".into());
        reloaded.metrics.listen = Some("127.0.0.1:9464".into());
        let ignored = reloaded.keep_restart_only(&running);
        assert_eq!(
            ignored,
            [
                "server.port",
                "server.workers",
                "tls.cert",
                "metrics.listen"
            ]
        );
        assert_eq!(reloaded.tls.cert, None);
        assert_eq!(reloaded.server.port, 3000);
        assert_eq!(reloaded.server.workers, None);
        assert_eq!(reloaded.metrics.listen, None);
        assert_eq!(reloaded.server.body_limit, 10, "reloadable");
        assert!(reloaded.keep_restart_only(&running).is_empty());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("512kb"), Ok(512 * 1024));
        assert_eq!(parse_size("10MB"), Ok(10 * 1024 * 1024));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5tb").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
