//! Settings and their defaults, in one place: what the app needs ([`AppSettings`]) and what
//! serving it needs ([`ServeSettings`]). `rhapi.toml` ([`crate::config`]) and then the command
//! line override these defaults, through [`Overrides`].

use std::time::Duration;

/// Which command is serving: `dev` shows details, `start` is for production.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `rhapi dev`: detailed errors in responses, `.env.example` fallback.
    Dev,
    /// `rhapi start`: generic error bodies, last good version kept on a bad save.
    Start,
}

/// Limits a script runs under, per request.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock budget of one request's script.
    pub timeout: Duration,
    /// Rhai operations budget of one request's script.
    pub max_operations: u64,
    /// Bytes one request's script may allocate and keep.
    pub max_memory: usize,
    /// Rhai's own limits, 0 = off: largest string in bytes, array and map in items. Off by
    /// default: each re-measures a whole value after every change (see `memory.rs`).
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Deepest function call nesting.
    pub max_call_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            max_operations: 10_000_000,
            max_memory: 64 * 1024 * 1024,
            max_string_size: 0,
            max_array_size: 0,
            max_map_size: 0,
            max_call_depth: 64,
        }
    }
}

/// Where static files come from (`[public]` of `rhapi.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Cross-origin requests (`[cors]` of `rhapi.toml`). Off while `origins` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsSettings {
    /// Allowed origins (`https://app.example`), or `["*"]` for any.
    pub origins: Vec<String>,
    /// Methods a preflight allows; `None`: the route's own methods.
    pub methods: Option<Vec<String>>,
    /// Request headers a preflight allows, lowercase.
    pub headers: Vec<String>,
    /// Cookies and `Authorization` cross-origin (`Access-Control-Allow-Credentials`).
    pub credentials: bool,
    /// How long a browser may cache a preflight, in seconds.
    pub max_age: u64,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            origins: Vec::new(),
            methods: None,
            headers: vec!["content-type".into()],
            credentials: false,
            max_age: 600,
        }
    }
}

impl CorsSettings {
    /// Whether any origin is allowed at all.
    pub fn enabled(&self) -> bool {
        !self.origins.is_empty()
    }
}

/// What the app itself needs, whatever serves it (a server, `check`, `routes`). The
/// defaults, then `rhapi.toml`, then the command line; a reload of `rhapi.toml` changes
/// them for the requests that start after it.
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
}

impl AppSettings {
    /// The defaults of `mode`: [`Limits::default`], a 1 MB body limit that must not pause
    /// for 5 s, 10,000 requests in flight, `public/` without SPA fallback, no CORS.
    pub fn defaults(mode: Mode) -> AppSettings {
        AppSettings {
            mode,
            limits: Limits::default(),
            body_limit: 1024 * 1024,
            body_timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
            public: PublicSettings::default(),
            cors: CorsSettings::default(),
        }
    }

    /// These settings with every value `layer` sets replaced.
    pub fn with(mut self, layer: &Overrides) -> AppSettings {
        if let Some(n) = layer.body_limit {
            self.body_limit = n;
        }
        if let Some(t) = layer.timeout {
            self.limits.timeout = t;
        }
        if let Some(t) = layer.body_timeout {
            self.body_timeout = t;
        }
        if let Some(n) = layer.max_operations {
            self.limits.max_operations = n;
        }
        if let Some(n) = layer.max_in_flight {
            self.max_in_flight = n;
        }
        if let Some(public) = &layer.public {
            self.public = public.clone();
        }
        if let Some(cors) = &layer.cors {
            self.cors = cors.clone();
        }
        self
    }
}

/// Settings one source sets (the command line, or `rhapi.toml`); `None` keeps the value
/// below it. The order is defaults < `rhapi.toml` < command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub body_limit: Option<usize>,
    pub body_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub max_operations: Option<u64>,
    pub max_in_flight: Option<usize>,
    pub public: Option<PublicSettings>,
    pub cors: Option<CorsSettings>,
}

impl AppSettings {
    /// Development mode shows script errors to the client.
    pub fn is_dev(&self) -> bool {
        self.mode == Mode::Dev
    }
}

/// What serving needs besides the app: where to listen, how many threads, request limits.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub hostname: String,
    pub port: u16,
    /// Actix workers (HTTP event loops).
    pub workers: usize,
    /// Watch `pages/` and `.env*` and reload on change.
    pub watch: bool,
}

impl ServeSettings {
    /// The defaults of `mode`: `dev` listens on 127.0.0.1, `start` on every address; port
    /// 3000; one worker per core; watching on.
    pub fn defaults(mode: Mode) -> ServeSettings {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServeSettings {
            hostname: match mode {
                Mode::Dev => "127.0.0.1",
                Mode::Start => "0.0.0.0",
            }
            .to_string(),
            port: 3000,
            workers: cores,
            watch: true,
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

/// Parses a duration: `10` (seconds), `2s`, `500ms`, `1m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, unit) = split_number(&lower);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write seconds or e.g. 500ms, 2s"))?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        _ => return Err(format!("unknown duration unit in '{text}': use ms, s or m")),
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
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
