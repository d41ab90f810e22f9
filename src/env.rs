//! The server's environment: `.env` loading, the `env` module scripts see, and redaction of
//! secret values from anything the server itself prints or sends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Module};

use crate::settings::Mode;

/// The environment currently loaded, for redacting log lines written anywhere.
static CURRENT: std::sync::RwLock<Option<Arc<EnvVars>>> = std::sync::RwLock::new(None);

/// Makes `env` the one whose secrets [`redact`] hides.
pub fn set_current(env: &Arc<EnvVars>) {
    if let Ok(mut current) = CURRENT.write() {
        *current = Some(Arc::clone(env));
    }
}

/// Replaces the current environment's secret values in `text` with `[redacted]`.
pub fn redact(text: &str) -> String {
    match CURRENT.read().ok().and_then(|c| c.clone()) {
        Some(env) => env.redact(text),
        None => text.to_string(),
    }
}

/// Replaces one known secret (a URL's password, which may appear in a message apart from
/// the env value that holds it) with `[redacted]`.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "[redacted]"),
        _ => text.to_string(),
    }
}

/// Values shorter than this are too common to redact without mangling messages.
const MIN_REDACTED_LEN: usize = 4;

/// The environment scripts see: the process environment, then `.env.local`, then `.env`.
#[derive(Debug, Default)]
pub struct EnvVars {
    values: BTreeMap<String, String>,
    /// Values loaded from files, longest first, to be replaced by `[redacted]` in output.
    secrets: Vec<String>,
}

impl EnvVars {
    /// Loads the environment of the app in `app_dir`. Warnings (fallbacks, unset keys, bad
    /// lines) are logged with file names and keys, never values.
    pub fn load(app_dir: &Path, mode: Mode) -> EnvVars {
        let mut values: BTreeMap<String, String> = std::env::vars().collect();
        let mut secrets = BTreeSet::new();

        let mut files = vec![".env.local"];
        let has_env = app_dir.join(".env").is_file();
        if has_env {
            files.push(".env");
        } else if mode == Mode::Dev && app_dir.join(".env.example").is_file() {
            files.push(".env.example");
        }
        for name in files {
            let loaded = read_dotenv(&app_dir.join(name), name);
            let mut taken = Vec::new();
            for (key, value) in loaded {
                if values.contains_key(&key) {
                    continue; // an earlier source wins
                }
                if value.len() >= MIN_REDACTED_LEN {
                    secrets.insert(value.clone());
                }
                taken.push(key.clone());
                values.insert(key, value);
            }
            if name == ".env.example" && !taken.is_empty() {
                tracing::warn!(
                    "no .env file: took {} from .env.example (copy it to .env and set real values)",
                    taken.join(", ")
                );
            }
        }
        let mut secrets: Vec<String> = secrets.into_iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        EnvVars { values, secrets }
    }

    /// The environment of `rhapi test`: the process environment, then `.env.test`, then
    /// `.env.example` (never `.env`: tests do not see real secrets). `DATABASE_URL` is only
    /// ever taken from `.env.test`; otherwise it is `database_url`, a database of the test
    /// file's own (a `DATABASE_URL` left in the shell must not point tests at real data).
    pub fn for_tests(app_dir: &Path, database_url: &str) -> EnvVars {
        let mut values: BTreeMap<String, String> = std::env::vars().collect();
        values.remove("DATABASE_URL");
        let mut secrets = BTreeSet::new();
        for name in [".env.test", ".env.example"] {
            for (key, value) in read_dotenv(&app_dir.join(name), name) {
                if values.contains_key(&key) || (key == "DATABASE_URL" && name != ".env.test") {
                    continue;
                }
                if value.len() >= MIN_REDACTED_LEN {
                    secrets.insert(value.clone());
                }
                values.insert(key, value);
            }
        }
        values
            .entry("DATABASE_URL".to_string())
            .or_insert_with(|| database_url.to_string());
        let mut secrets: Vec<String> = secrets.into_iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        EnvVars { values, secrets }
    }

    /// Whether `.env.test` sets `DATABASE_URL` (then every test file shares that database).
    pub fn test_database_is_shared(app_dir: &Path) -> bool {
        read_dotenv(&app_dir.join(".env.test"), ".env.test")
            .iter()
            .any(|(key, value)| key == "DATABASE_URL" && !value.trim().is_empty())
    }

    /// Warns about the keys `.env.example` lists that are unset (names only). `rhapi start`
    /// calls it: it matters when serving, not for `check` or `routes`.
    pub fn warn_unset_example_keys(&self, app_dir: &Path) {
        if !app_dir.join(".env.example").is_file() {
            return;
        }
        let unset: Vec<String> = read_dotenv(&app_dir.join(".env.example"), ".env.example")
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| !self.values.contains_key(key))
            .collect();
        if !unset.is_empty() {
            tracing::warn!(
                "keys listed in .env.example are unset: {}",
                unset.join(", ")
            );
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Replaces every secret value in `text` with `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }

    /// The `env` module: `env::NAME` for each variable and `env::get("NAME")`.
    pub fn module(self: &Arc<Self>) -> Module {
        let mut module = Module::new();
        for (key, value) in &self.values {
            module.set_var(key.as_str(), value.clone());
        }
        let vars = Arc::clone(self);
        module.set_native_fn("get", move |key: &str| {
            Ok(vars
                .get(key)
                .map_or(Dynamic::UNIT, |v| v.to_string().into()))
        });
        module
    }
}

/// Reads a dotenv file into key/value pairs; a missing file is empty, a bad line is logged
/// with its file and skipped.
fn read_dotenv(path: &Path, name: &str) -> Vec<(String, String)> {
    let Ok(iter) = dotenvy::from_path_iter(path) else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for item in iter {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(dotenvy::Error::LineParse(_, index)) => {
                tracing::warn!("{name}: cannot parse the line at byte {index}; it is skipped");
            }
            Err(err) => {
                tracing::warn!("{name}: {}", error_kind(&err));
            }
        }
    }
    pairs
}

// dotenvy errors can quote the offending line, which may hold a secret: say only the kind.
fn error_kind(err: &dotenvy::Error) -> &'static str {
    match err {
        dotenvy::Error::Io(_) => "cannot be read",
        dotenvy::Error::EnvVar(_) => "refers to a variable that is not valid",
        _ => "has a line that cannot be parsed; it is skipped",
    }
}

/// The optional third handler parameter: the environment as a read-only map
/// (`env.NAME`, `env["NAME"]`; an unset name is `()`).
#[derive(Clone)]
pub struct EnvMap(pub Arc<EnvVars>);

impl EnvMap {
    /// Registers the type with an engine: indexing only, no setters, no printing of values.
    pub fn register(engine: &mut Engine) {
        engine
            .register_type_with_name::<EnvMap>("Env")
            .register_indexer_get(|env: &mut EnvMap, key: &str| -> Dynamic {
                env.0
                    .get(key)
                    .map_or(Dynamic::UNIT, |v| v.to_string().into())
            })
            .register_fn("to_string", |_: &mut EnvMap| "env".to_string())
            .register_fn("to_debug", |_: &mut EnvMap| "env".to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let env = EnvVars {
            values: BTreeMap::new(),
            secrets: vec!["secret-value".into(), "secret".into()],
        };
        assert_eq!(
            env.redact("got secret-value and secret"),
            "got [redacted] and [redacted]"
        );
    }
}
