//! `rhapi.toml`: the app's own settings file (docs/reference.md, "rhapi.toml"). Optional;
//! read at load and again when it changes. Its schema is [`Settings`]; this file reads the
//! text into it, with the parsers of values that are not plain TOML (sizes, durations) and
//! the checks that need more than one key. What it sets lies between the defaults and the
//! command line ([`crate::settings::Overrides`]). Every mistake is an error naming the
//! file, the key and the line: a typo must never pass as a default.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

use crate::error::{Location, ScriptError};
use crate::settings::{
    parse_duration, parse_size, CacheSettings, CorsSettings, JobsSettings, MetricsSettings,
    PublicSettings, RateLimitRule, RateLimitsSettings, RealtimeSettings, ServerSettings, Settings,
    TlsSettings,
};

/// The file's name, in the app folder.
pub const FILE: &str = "rhapi.toml";

/// A `rhapi.toml` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{FILE}:{line}: {key}: {message}")]
pub struct ConfigError {
    /// `server.body_limit`, or the section or key that is wrong.
    pub key: String,
    /// 1-based line of the key (1 when the file as a whole is wrong).
    pub line: usize,
    pub message: String,
}

impl From<ConfigError> for ScriptError {
    fn from(err: ConfigError) -> ScriptError {
        ScriptError {
            message: format!("{}: {}", err.key, err.message),
            location: Location {
                file: FILE.into(),
                line: Some(err.line),
                column: None,
            },
            hint: None,
        }
    }
}

/// Reads `<dir>/rhapi.toml` over `below` (see [`parse`]); no file is `below` itself.
/// `database` is the SQLite file the app uses, if any: the public folder must not hold it.
pub fn load(
    dir: &Path,
    database: Option<&Path>,
    below: &Settings,
) -> Result<Settings, ConfigError> {
    let text = match crate::app_files::AppFiles::open(dir).read_to_string(Path::new(FILE)) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(ConfigError {
                key: FILE.into(),
                line: 1,
                message: format!("cannot be read: {err}"),
            })
        }
    };
    let settings = parse(&text, below)?;
    if let Err(reason) = exposes_app(dir, &settings.public.dir, database) {
        return Err(invalid(&text, "public", "dir", &reason));
    }
    if let Some(key) = &settings.tls.key {
        if serves_file(dir, &settings.public.dir, key) {
            return Err(invalid(
                &text,
                "tls",
                "key",
                &format!("'{key}' is inside the public folder '{}': anyone could download the private key; keep it outside it", settings.public.dir),
            ));
        }
    }
    Ok(settings)
}

/// Why serving the folder `public` (relative to the app folder `app_dir`) would serve the
/// app itself: route sources, `rhapi.toml`, `.env` or the database. A folder that does not
/// exist serves nothing.
fn exposes_app(app_dir: &Path, public: &str, database: Option<&Path>) -> Result<(), String> {
    let (Ok(root), Ok(app)) = (app_dir.join(public).canonicalize(), app_dir.canonicalize()) else {
        return Ok(());
    };
    let fix = "give the static files a folder of their own, e.g. dir = \"public\"";
    if app.starts_with(&root) {
        let what = if root == app {
            "is the app folder itself"
        } else {
            "contains the app folder"
        };
        return Err(format!(
            "'{public}' {what}: route sources, rhapi.toml, .env and the database would be served; {fix}"
        ));
    }
    if root.starts_with(app.join("pages")) {
        return Err(format!(
            "'{public}' is inside pages/: route sources would be served; {fix}"
        ));
    }
    // An app folder: its route sources, settings or secrets. (`pages/api`, not any
    // `pages/`: a static site may well have a `pages/` folder of HTML.)
    for name in ["pages/api", FILE, ".env"] {
        if root.join(name).exists() {
            return Err(format!(
                "'{public}' holds {name}: it looks like an app folder, whose files would be served; {fix}"
            ));
        }
    }
    if let Some(database) = database.and_then(real_path) {
        if database.starts_with(&root) {
            return Err(format!(
                "'{public}' holds the database ({}): it would be served; {fix}",
                database.strip_prefix(&app).unwrap_or(&database).display()
            ));
        }
    }
    Ok(())
}

/// Whether `file` (relative to `app_dir`, or absolute) lies inside the folder `public`
/// serves.
fn serves_file(app_dir: &Path, public: &str, file: &str) -> bool {
    let (Some(root), Some(file)) = (
        real_path(&app_dir.join(public)),
        real_path(&app_dir.join(file)),
    ) else {
        return false;
    };
    file.starts_with(root)
}

/// `path` with every symlink followed; for a file not created yet, the real path of its
/// nearest folder that exists, and the rest of the path.
fn real_path(path: &Path) -> Option<std::path::PathBuf> {
    path.ancestors().find_map(|folder| {
        let real = folder.canonicalize().ok()?;
        Some(real.join(path.strip_prefix(folder).ok()?))
    })
}

thread_local! {
    /// The settings under the file being parsed (see [`parse`]): what a section or key the
    /// file leaves out keeps.
    static BELOW: RefCell<Settings> = RefCell::new(Settings::default());
}

/// serde's default for `[server]` and for each key it leaves out: the layer below the file.
pub(crate) fn server_below() -> ServerSettings {
    BELOW.with(|below| below.borrow().server.clone())
}

/// serde's default for `[public]` and for each key it leaves out.
pub(crate) fn public_below() -> PublicSettings {
    BELOW.with(|below| below.borrow().public.clone())
}

/// serde's default for `[jobs]` and for each key it leaves out.
pub(crate) fn jobs_below() -> JobsSettings {
    BELOW.with(|below| below.borrow().jobs.clone())
}

/// serde's default for a missing `[cors]` (a `[cors]` section must list its origins).
pub(crate) fn cors_below() -> CorsSettings {
    BELOW.with(|below| below.borrow().cors.clone())
}

/// serde's default for `[cache]` and for each key it leaves out.
pub(crate) fn cache_below() -> CacheSettings {
    BELOW.with(|below| below.borrow().cache.clone())
}

/// serde's default for `[realtime]` and for each key it leaves out.
pub(crate) fn realtime_below() -> RealtimeSettings {
    BELOW.with(|below| below.borrow().realtime.clone())
}

/// serde's default for no `[[rate_limit]]` at all.
pub(crate) fn rate_limit_below() -> Vec<RateLimitRule> {
    BELOW.with(|below| below.borrow().rate_limit.clone())
}

/// serde's default for `[rate_limits]` and for each key it leaves out.
pub(crate) fn rate_limits_below() -> RateLimitsSettings {
    BELOW.with(|below| below.borrow().rate_limits.clone())
}

/// serde's default for `[tls]` and for each key it leaves out.
pub(crate) fn tls_below() -> TlsSettings {
    BELOW.with(|below| below.borrow().tls.clone())
}

/// serde's default for `[metrics]` and for each key it leaves out.
pub(crate) fn metrics_below() -> MetricsSettings {
    BELOW.with(|below| below.borrow().metrics.clone())
}

/// Parses the text of a `rhapi.toml`: `below` with every key the file sets replaced.
pub fn parse(text: &str, below: &Settings) -> Result<Settings, ConfigError> {
    let outer = BELOW.replace(below.clone());
    let parsed = toml::from_str::<Settings>(text);
    BELOW.set(outer);
    let mut settings = parsed.map_err(|err| {
        let at = err.span().map_or(0, |span| span.start);
        let line = text[..at.min(text.len())].matches('\n').count() + 1;
        ConfigError {
            key: key_at(text, line),
            line,
            message: err.message().trim().to_string(),
        }
    })?;
    let dir = &settings.public.dir;
    if dir.is_empty() || Path::new(dir).is_absolute() || dir.split('/').any(|p| p == "..") {
        return Err(invalid(
            text,
            "public",
            "dir",
            "must be a folder inside the app folder",
        ));
    }
    settings.cors = cors_settings(text, settings.cors)?;
    check_tls(text, &settings.tls)?;
    for (i, rule) in settings.rate_limit.iter().enumerate() {
        if let Err((key, message)) = crate::rate_limit::Rule::compile(rule) {
            return Err(ConfigError {
                key: format!("rate_limit.{key}"),
                line: rule_line(text, i, key).unwrap_or(1),
                message,
            });
        }
    }
    Ok(settings)
}

/// `[tls]` names both files or neither, each a non-empty path.
fn check_tls(text: &str, tls: &TlsSettings) -> Result<(), ConfigError> {
    for (key, value) in [("cert", &tls.cert), ("key", &tls.key)] {
        if value.as_deref() == Some("") {
            return Err(invalid(text, "tls", key, "must name a PEM file"));
        }
    }
    match (&tls.cert, &tls.key) {
        (Some(_), None) => Err(invalid(
            text,
            "tls",
            "cert",
            "needs key = \"...\" too: the private key of the certificate (PEM)",
        )),
        (None, Some(_)) => Err(invalid(
            text,
            "tls",
            "key",
            "needs cert = \"...\" too: the certificate chain (PEM)",
        )),
        _ => Ok(()),
    }
}

/// The line of `key = ...` in the `index`th `[[rate_limit]]` (0-based).
fn rule_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let mut seen = 0;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed.replace(' ', "") == "[[rate_limit]]";
            if inside {
                seen += 1;
            }
        } else if inside
            && seen == index + 1
            && trimmed.split('=').next().is_some_and(|k| k.trim() == key)
        {
            return Some(i + 1);
        }
    }
    None
}

/// `cors` checked (each mistake on its key's line) and written as requests compare it:
/// methods uppercase, headers lowercase, origins without a trailing `/`.
fn cors_settings(text: &str, cors: CorsSettings) -> Result<CorsSettings, ConfigError> {
    for origin in cors.origins.iter().filter(|o| *o != "*") {
        if let Err(reason) = check_origin(origin) {
            return Err(invalid(
                text,
                "cors",
                "origins",
                &format!("'{origin}' {reason}"),
            ));
        }
    }
    let any = cors.origins.iter().any(|o| o == "*");
    if cors.origins.len() > 1 && any {
        return Err(invalid(
            text,
            "cors",
            "origins",
            "\"*\" must be the only origin",
        ));
    }
    if any && cors.credentials {
        return Err(invalid(
            text,
            "cors",
            "credentials",
            "credentials = true with origins = [\"*\"] would let every site make signed-in requests: list the origins that may, e.g. origins = [\"https://app.example\"]",
        ));
    }
    let methods = match cors.methods {
        Some(methods) => {
            let mut upper = Vec::new();
            for method in methods {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(invalid(
                        text,
                        "cors",
                        "methods",
                        &format!("'{method}' is not a method"),
                    ));
                }
                upper.push(method.to_ascii_uppercase());
            }
            Some(upper)
        }
        None => None,
    };
    let mut headers = Vec::new();
    for header in cors.headers {
        if actix_web::http::header::HeaderName::try_from(header.as_str()).is_err() {
            return Err(invalid(
                text,
                "cors",
                "headers",
                &format!("'{header}' is not a header name"),
            ));
        }
        headers.push(header.to_ascii_lowercase());
    }
    Ok(CorsSettings {
        origins: cors
            .origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_string())
            .collect(),
        methods,
        headers,
        credentials: cors.credentials,
        max_age: cors.max_age,
    })
}

/// Whether `text` is an origin as a browser sends it in `Origin`: `scheme://host[:port]`,
/// lowercase, without a default port (a trailing `/` is tolerated). Origins are compared
/// exactly, so anything else would silently match no request: the error says why.
fn check_origin(text: &str) -> Result<(), String> {
    const FORM: &str = "write scheme://host[:port], e.g. https://app.example, or \"*\"";
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("is not an origin: {FORM}"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let well_formed = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', ' ', '@']);
    if !well_formed {
        return Err(format!("is not an origin: {FORM}"));
    }
    if authority.contains('*') {
        return Err(
            "has a * inside it: patterns are not supported and it would match no origin; list each origin, or write \"*\" alone for any"
                .into(),
        );
    }
    let lower = text.to_ascii_lowercase();
    if !text.is_ascii() || lower != text {
        return Err(format!(
            "would match no origin: browsers send it lowercase and in ASCII (punycode), e.g. '{lower}'"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` alone: the colons are the address's.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    match port {
        Some(port) if port.parse::<u16>().is_err() => {
            Err(format!("has a port that is not a number: {FORM}"))
        }
        Some(port) if (scheme, port) == ("https", "443") || (scheme, port) == ("http", "80") => {
            Err(format!(
                "would match no origin: browsers leave the default port out, write '{scheme}://{host}'"
            ))
        }
        _ => Ok(()),
    }
}

/// An error at `key` of `[section]`, on the key's line.
fn invalid(text: &str, section: &str, key: &str, message: &str) -> ConfigError {
    ConfigError {
        key: format!("{section}.{key}"),
        line: key_line(text, section, key).unwrap_or(1),
        message: message.to_string(),
    }
}

/// The line of `key = ...` inside `[section]`.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[') {
            current = name.trim_end_matches(']').trim().to_string();
        } else if current == section && trimmed.split('=').next().is_some_and(|k| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
}

/// `section.key` of the key on `line` (1-based), from the text: what an error points at.
fn key_at(text: &str, line: usize) -> String {
    let mut section = String::new();
    for (i, l) in text.lines().enumerate() {
        let trimmed = l.trim();
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name.trim_start_matches('[');
            section = name.trim_end_matches(']').trim().to_string();
            if i + 1 == line {
                return format!("[{section}]");
            }
        } else if i + 1 == line {
            let key = trimmed.split('=').next().unwrap_or("").trim();
            return match (section.is_empty(), key.is_empty()) {
                (_, true) => FILE.to_string(),
                (true, false) => key.to_string(),
                (false, false) => format!("{section}.{key}"),
            };
        }
    }
    FILE.to_string()
}

/// A size: `"10mb"` or a number of bytes.
pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "a size such as \"1mb\" or a number of bytes",
        text: |t| parse_size(t),
        number: |n| usize::try_from(n).map_err(|_| "too large".to_string()),
    })
}

/// A duration: `"10s"`, `"500ms"` or a number of seconds.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "a duration such as \"10s\", \"500ms\" or a number of seconds",
        text: |t| parse_duration(t),
        number: |n| match n {
            0 => Err("must be more than zero".into()),
            n => Ok(Duration::from_secs(n)),
        },
    })
}

/// A whole number of at least 1.
pub(crate) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "a whole number of at least 1",
        text: |t| Err(format!("'{t}' is not a number (write it without quotes)")),
        number: |n| match n {
            0 => Err("must be at least 1".into()),
            n => Ok(n),
        },
    })
}

/// [`positive`], as a count of things in memory (a larger one is as good as no limit).
pub(crate) fn positive_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    positive(d).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// [`positive`], as a number of worker threads.
pub(crate) fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    positive_usize(d).map(Some)
}

/// A port number (0: any free port).
pub(crate) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "a port number from 0 to 65535",
        text: |t| Err(format!("'{t}' is not a number (write it without quotes)")),
        number: |n| {
            u16::try_from(n).map_err(|_| format!("{n} is not a port: the largest is 65535"))
        },
    })
}

/// An address to listen on, e.g. `"0.0.0.0"`, `"127.0.0.1"` or `"::"`.
pub(crate) fn host<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "an address such as \"0.0.0.0\" or \"127.0.0.1\"",
        text: |t| match t.trim() {
            "" => {
                Err("must not be empty: e.g. \"0.0.0.0\" (every address) or \"127.0.0.1\"".into())
            }
            t if t.contains(char::is_whitespace) => Err(format!("'{t}' is not an address")),
            t => Ok(t.to_string()),
        },
        number: |n| {
            Err(format!(
                "{n} is not an address: write it in quotes, e.g. \"0.0.0.0\""
            ))
        },
    })
    .map(Some)
}

/// Where a second listener listens: `"127.0.0.1:9464"`, `"[::1]:9464"`, `"0.0.0.0:9464"`.
pub(crate) fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(TextOrNumber {
        expected: "an address and port such as \"127.0.0.1:9464\"",
        text: |t| {
            let t = t.trim();
            let port = t
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            match port {
                Some((host, Ok(port))) if !host.is_empty() && port > 0 => Ok(t.to_string()),
                _ => Err(format!(
                    "'{t}' is not an address and port: e.g. \"127.0.0.1:9464\""
                )),
            }
        },
        number: |n| {
            Err(format!(
                "{n} is not an address and port: write it in quotes, e.g. \"127.0.0.1:9464\""
            ))
        },
    })
    .map(Some)
}

struct TextOrNumber<T> {
    expected: &'static str,
    text: fn(&str) -> Result<T, String>,
    number: fn(u64) -> Result<T, String>,
}

impl<T> Visitor<'_> for TextOrNumber<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.text)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.number)(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "{v} is negative: expected {}",
                self.expected
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        super::parse(text, &Settings::default())
    }

    #[test]
    fn every_key() {
        let o = parse(
            "[server]\nhost = \"::\"\nport = 8080\nworkers = 3\nbody_limit = \"2mb\"\ntimeout = \"3s\"\nmax_operations = 5\nmax_in_flight = 7\n\
             [public]\ndir = \"static\"\nspa = true\n\
             [cors]\norigins = [\"https://a.example\"]\nmethods = [\"get\"]\nheaders = [\"X-Key\"]\ncredentials = true\nmax_age = 60\n\
             [cache]\nmax = \"1mb\"\n\
             [realtime]\nmax_message = \"1kb\"\nsend_queue = 8\nping_interval = \"5s\"\npong_timeout = 9\nkeep_alive = \"200ms\"\n",
        )
        .unwrap();
        assert_eq!(o.cache.max, 1024 * 1024);
        let realtime = &o.realtime;
        assert_eq!((realtime.max_message, realtime.send_queue), (1024, 8));
        assert_eq!(realtime.ping_interval, Duration::from_secs(5));
        assert_eq!(realtime.pong_timeout, Duration::from_secs(9));
        assert_eq!(realtime.keep_alive, Duration::from_millis(200));
        let server = &o.server;
        assert_eq!(server.host.as_deref(), Some("::"));
        assert_eq!((server.port, server.workers), (8080, Some(3)));
        assert_eq!(server.body_limit, 2 * 1024 * 1024);
        assert_eq!(server.timeout, Duration::from_secs(3));
        assert_eq!(server.body_timeout, Duration::from_secs(5), "the default");
        assert_eq!(server.max_operations, 5);
        assert_eq!(server.max_in_flight, 7);
        assert_eq!(
            o.public,
            PublicSettings {
                dir: "static".into(),
                spa: true
            }
        );
        let cors = o.cors;
        assert_eq!(cors.methods, Some(vec!["GET".to_string()]));
        assert_eq!(cors.headers, vec!["x-key".to_string()]);
        assert!(cors.credentials);
        assert_eq!(cors.max_age, 60);
    }

    #[test]
    fn no_file_is_the_defaults_and_keys_left_out_keep_the_layer_below() {
        assert_eq!(parse("").unwrap(), Settings::default());
        let mut below = Settings::default();
        below.server.timeout = Duration::from_millis(300);
        below.server.max_memory = 1024;
        let o = super::parse("[server]\nmax_operations = 9\n", &below).unwrap();
        assert_eq!(o.server.timeout, Duration::from_millis(300));
        assert_eq!(o.server.max_memory, 1024);
        assert_eq!(o.server.max_operations, 9);
        assert_eq!(super::parse("", &below).unwrap(), below);
    }

    #[test]
    fn listening_keys_are_checked() {
        for (toml, message) in [
            ("[server]\nport = 70000\n", "70000 is not a port"),
            ("[server]\nport = \"80\"\n", "is not a number"),
            ("[server]\nworkers = 0\n", "must be at least 1"),
            ("[server]\nhost = \"\"\n", "must not be empty"),
            ("[server]\nhost = 1\n", "is not an address"),
            ("[server]\nmax_memory = \"1mb\"\n", "unknown field"),
            (
                "[metrics]\nlisten = \"127.0.0.1\"\n",
                "is not an address and port",
            ),
            (
                "[metrics]\nlisten = \":9464\"\n",
                "is not an address and port",
            ),
            ("[metrics]\nlisten = 9464\n", "write it in quotes"),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!(err.line, 2, "{err}");
            assert!(err.message.contains(message), "{toml}: {err}");
        }
    }

    #[test]
    fn tls_names_both_files_and_keeps_the_key_out_of_public() {
        let o = parse("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n").unwrap();
        assert_eq!(o.tls.cert.as_deref(), Some("cert.pem"));
        assert_eq!(o.tls.key.as_deref(), Some("key.pem"));
        for (toml, key, message) in [
            ("[tls]\ncert = \"cert.pem\"\n", "tls.cert", "needs key"),
            ("[tls]\nkey = \"key.pem\"\n", "tls.key", "needs cert"),
            ("[tls]\ncert = \"\"\nkey = \"k\"\n", "tls.cert", "must name"),
            ("[tls]\ncrt = \"c\"\n", "tls.crt", "unknown field"),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!((err.key.as_str(), err.line), (key, 2), "{err}");
            assert!(err.message.contains(message), "{toml}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("public/certs")).unwrap();
        let toml = "[tls]\ncert = \"public/certs/c.pem\"\nkey = \"public/certs/k.pem\"\n";
        std::fs::write(dir.path().join(FILE), toml).unwrap();
        let err = load(dir.path(), None, &Settings::default()).unwrap_err();
        assert_eq!((err.key.as_str(), err.line), ("tls.key", 3), "{err}");
        assert!(err.message.contains("anyone could download"), "{err}");
        // Only the key is secret: a certificate may sit in public/.
        let toml = "[tls]\ncert = \"public/c.pem\"\nkey = \"k.pem\"\n";
        std::fs::write(dir.path().join(FILE), toml).unwrap();
        assert!(load(dir.path(), None, &Settings::default()).is_ok());
    }

    #[test]
    fn the_starter_apps_keys_all_parse() {
        // Its lines are commented out; uncommented, every key must be a valid setting.
        let text: String = include_str!("scaffold/rhapi.toml")
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| line.starts_with('[') || line.contains(" = "))
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(text.contains("host = "), "{text}");
        let settings = parse(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(settings.server.port, 3000);
    }

    #[test]
    fn rate_limit_rules() {
        let o = parse(
            "[[rate_limit]]\npath = \"/api/auth/*\"\nlimit = 10\nper = \"1m\"\nby = \"ip\"\n\
             [[rate_limit]]\npath = \"/api/x\"\nlimit = 1\nper = \"500ms\"\n\
             [rate_limits]\nstore = \"database\"\n",
        )
        .unwrap();
        assert_eq!(o.rate_limit.len(), 2);
        assert_eq!(o.rate_limit[0].per, Duration::from_secs(60));
        assert_eq!(o.rate_limit[1].by, None);
        assert_eq!(o.rate_limits.store, crate::settings::RateStore::Database);
        assert_eq!(o.app(crate::settings::Mode::Dev).rate_limits.len(), 2);
        for (toml, key, line, message) in [
            ("[[rate_limit]]\npath = \"/api/a\"\nlimit = 1\nper = \"1m\"\n\n[[rate_limit]]\npath = \"/auth\"\nlimit = 1\nper = \"1m\"\n", "rate_limit.path", 7, "must start with /api/"),
            ("[[rate_limit]]\npath = \"/api/a\"\nlimit = 1\nper = \"1m\"\nby = \"cookie\"\n", "rate_limit.by", 5, "header:NAME"),
            ("[[rate_limit]]\npath = \"/api/a\"\nlimit = 0\nper = \"1m\"\n", "rate_limit.limit", 3, "at least 1"),
            ("[[rate_limit]]\npath = \"/api/a\"\nlimit = 1\nper = \"soon\"\n", "rate_limit.per", 4, "not a duration"),
            ("[[rate_limit]]\npath = \"/api/a\"\nlimit = 1\nper = \"1m\"\nper_ip = true\n", "rate_limit.per_ip", 5, "unknown field"),
            ("[rate_limits]\nstore = \"redis\"\n", "rate_limits.store", 2, "memory"),
        ] {
            let err = parse(toml).unwrap_err();
            assert_eq!((err.key.as_str(), err.line), (key, line), "{err}");
            assert!(err.message.contains(message), "{err}");
        }
    }

    #[test]
    fn origins_as_browsers_send_them() {
        for origin in [
            "https://app.example",
            "http://localhost:5173/",
            "http://[::1]:8080",
            "http://[::1]",
            "https://xn--caf-dma.example",
        ] {
            assert_eq!(check_origin(origin), Ok(()), "{origin}");
        }
        for origin in [
            "http://*.example",
            "HTTPS://app.example",
            "https://café.example",
            "https://app.example:443",
            "http://app.example:80",
            "http://app.example:99999",
            "app.example",
            "https://app.example/path",
        ] {
            assert!(check_origin(origin).is_err(), "{origin}");
        }
    }

    #[test]
    fn mistakes_name_key_and_line() {
        let err = parse("[server]\ntimeout = \"3s\"\nbodylimit = \"1mb\"\n").unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.line),
            ("server.bodylimit", 3),
            "{err}"
        );
        assert!(err.message.contains("unknown field"), "{err}");
        let err = parse("\n[server]\nbody_limit = \"1 parsec\"\n").unwrap_err();
        assert_eq!(
            (err.key.as_str(), err.line),
            ("server.body_limit", 3),
            "{err}"
        );
        let err = parse("[cors]\norigins = [\"nope\"]\n").unwrap_err();
        assert_eq!((err.key.as_str(), err.line), ("cors.origins", 2), "{err}");
        let err = parse("[serve]\n").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        assert!(parse("[server]\nmax_operations = 0\n").is_err());
        assert!(parse("[server]\nmax_operations = -3\n").is_err());
    }
}
