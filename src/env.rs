//! The server's environment: `.env` loading, the `env` module scripts see, and redaction of
//! secret values from anything the server itself prints or sends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use rhai::{Dynamic, Engine, Module};

use crate::app_context::AppContext;
use crate::app_files::AppFiles;
use crate::settings::Mode;

/// The app this process serves (`dev`, `start`, and the commands that load one app), for
/// lines written outside any run; `rhapi test` sets none (it loads an app per test file).
static SERVED: std::sync::RwLock<Option<Arc<AppContext>>> = std::sync::RwLock::new(None);

/// Makes `app` the one whose secrets [`redact`] hides outside runs.
pub fn set_served(app: &Arc<AppContext>) {
    if let Ok(mut served) = SERVED.write() {
        *served = Some(Arc::clone(app));
    }
}

/// Replaces secret values in `text` with `[redacted]`: the values of the environment of the
/// run on this thread, or outside a run, of the app this process serves.
pub fn redact(text: &str) -> String {
    match current() {
        Some(env) => env.redact(text),
        None => text.to_string(),
    }
}

/// Whether `text` holds a secret value of the current environment (in any of its forms).
pub fn holds_secret(text: &str) -> bool {
    current().is_some_and(|env| env.holds_secret(text))
}

/// The environment whose secrets are hidden here and now (see [`redact`]): for a caller
/// that redacts several texts at once (a JSON log line's fields).
pub fn current() -> Option<Arc<EnvVars>> {
    crate::script::context::env().or_else(|| SERVED.read().ok()?.as_ref().map(|app| app.env()))
}

/// Replaces one known secret (a URL's password, which may appear in a message apart from
/// the env value that holds it) with `[redacted]`.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "[redacted]"),
        _ => text.to_string(),
    }
}

/// Values shorter than this, in characters, are too common to redact without mangling
/// messages (docs/reference.md, "env").
const MIN_REDACTED_CHARS: usize = 8;

/// Keys whose values are meant to be seen (sent to browsers, printed): never redacted.
const PUBLIC_PREFIX: &str = "PUBLIC_";

/// The environment scripts see: the process environment, then `.env.local`, then `.env`.
#[derive(Debug, Default)]
pub struct EnvVars {
    values: BTreeMap<String, String>,
    secrets: Secrets,
}

impl EnvVars {
    /// Loads the environment of the app in `app_dir`. Warnings (fallbacks, unset keys, bad
    /// lines) are logged with file names and keys, never values.
    pub fn load(app_dir: &Path, mode: Mode) -> EnvVars {
        let process: BTreeMap<String, String> = std::env::vars().collect();
        let mut values = process.clone();
        let mut secrets = Vec::new();

        // `.env.example` is read for its keys even when it is not the fallback; its bad
        // lines are then `warn_unset_example_keys`'s to report.
        let files = AppFiles::open(app_dir);
        let use_example = mode == Mode::Dev && !files.is_file(Path::new(".env"));
        let listed = read_listing(&files, &[".env.local", ".env", ".env.example"], |name| {
            name != ".env.example" || use_example
        });
        for (name, loaded) in &listed {
            let fallback = *name == ".env.example";
            if fallback && !use_example {
                continue;
            }
            let mut taken = Vec::new();
            for (key, value) in loaded {
                if values.contains_key(key) {
                    continue; // an earlier source wins
                }
                secrets.push((key.as_str(), value.as_str()));
                taken.push(key.as_str());
                values.insert(key.clone(), value.clone());
            }
            if fallback && !taken.is_empty() {
                tracing::warn!(
                    "no .env file: took {} from .env.example (copy it to .env and set real values)",
                    taken.join(", ")
                );
            }
        }
        secrets.extend(listed_from_process(&listed, &process));
        let secrets = Secrets::new(secrets);
        EnvVars { values, secrets }
    }

    /// The environment of `rhapi test`: the process environment, then `.env.test`, then
    /// `.env.example` (never `.env`: tests do not see real secrets). `DATABASE_URL` is only
    /// ever taken from `.env.test`; otherwise it is `database_url`, a database of the test
    /// file's own (a `DATABASE_URL` left in the shell must not point tests at real data).
    pub fn for_tests(app_dir: &Path, database_url: &str) -> EnvVars {
        let mut process: BTreeMap<String, String> = std::env::vars().collect();
        process.remove("DATABASE_URL");
        let mut values = process.clone();
        let mut secrets = Vec::new();
        let files = AppFiles::open(app_dir);
        let listed = read_listing(&files, &[".env.test", ".env.example"], |_| true);
        for (name, loaded) in &listed {
            for (key, value) in loaded {
                if values.contains_key(key) || (key == "DATABASE_URL" && *name != ".env.test") {
                    continue;
                }
                secrets.push((key.as_str(), value.as_str()));
                values.insert(key.clone(), value.clone());
            }
        }
        secrets.extend(listed_from_process(&listed, &process));
        let secrets = Secrets::new(secrets);
        values
            .entry("DATABASE_URL".to_string())
            .or_insert_with(|| database_url.to_string());
        EnvVars { values, secrets }
    }

    /// Whether `.env.test` sets `DATABASE_URL` (then every test file shares that database).
    pub fn test_database_is_shared(app_dir: &Path) -> bool {
        read_dotenv(&AppFiles::open(app_dir), ".env.test", false)
            .iter()
            .any(|(key, value)| key == "DATABASE_URL" && !value.trim().is_empty())
    }

    /// Warns about the keys `.env.example` lists that are unset (names only). `rhapi start`
    /// calls it: it matters when serving, not for `check` or `routes`.
    pub fn warn_unset_example_keys(&self, app_dir: &Path) {
        let files = AppFiles::open(app_dir);
        if !files.is_file(Path::new(".env.example")) {
            return;
        }
        let unset: Vec<String> = read_dotenv(&files, ".env.example", true)
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

    /// Replaces every secret value in `text`, in each of its escaped forms, with
    /// `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }

    /// `value` with this environment's secrets redacted from its strings, and from the
    /// strings inside its maps and arrays: what a script's `catch` block binds, so that an
    /// error message never hands a secret to a script (docs/reference.md, "env").
    pub fn redact_value(&self, value: Dynamic) -> Dynamic {
        if self.secrets.forms.is_empty() {
            return value;
        }
        self.secrets.redact_value(value, 0)
    }

    /// Whether `text` holds a secret value (in any of its forms).
    pub fn holds_secret(&self, text: &str) -> bool {
        self.secrets.found_in(text)
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

/// The keys `.env.example` of the app in `app_dir` lists, in its order (never a value of
/// any file); empty without the file.
pub fn example_keys(app_dir: &Path) -> Vec<String> {
    read_dotenv(&AppFiles::open(app_dir), ".env.example", false)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// Each dotenv file of `names` that exists, with its pairs, in the order given; bad lines
/// are logged for the files `warn` accepts.
fn read_listing<'n>(
    files: &AppFiles,
    names: &[&'n str],
    warn: impl Fn(&str) -> bool,
) -> Vec<(&'n str, Vec<(String, String)>)> {
    names
        .iter()
        .filter(|name| files.is_file(Path::new(name)))
        .map(|name| {
            let pairs = read_dotenv(files, name, warn(name));
            (*name, pairs)
        })
        .collect()
}

/// The keys the dotenv files list whose values come from the process environment: how
/// Docker, systemd and Kubernetes pass secrets, so they are secrets too.
fn listed_from_process<'a>(
    listed: &'a [(&str, Vec<(String, String)>)],
    process: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    listed
        .iter()
        .flat_map(|(_, pairs)| pairs)
        .filter_map(|(key, _)| process.get_key_value(key))
        .map(|(key, value)| (key.as_str(), value.as_str()))
}

/// The secret values of an environment, in every form they take in output: as they are,
/// escaped as `debug` and Rhai's printing of maps and arrays escape strings (Rust's `{:?}`),
/// and escaped as in JSON. Computed once when the environment loads; longest first, so that
/// a secret holding another is replaced whole.
#[derive(Debug, Default)]
struct Secrets {
    forms: Vec<String>,
}

impl Secrets {
    /// The forms of the values of `pairs` that are secrets: not under a `PUBLIC_` key, and
    /// at least [`MIN_REDACTED_CHARS`] long.
    fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Secrets {
        let mut forms = BTreeSet::new();
        for (key, value) in pairs {
            if key.starts_with(PUBLIC_PREFIX) || value.chars().count() < MIN_REDACTED_CHARS {
                continue;
            }
            let debug = format!("{value:?}");
            let json = serde_json::Value::from(value).to_string();
            for quoted in [debug, json] {
                forms.insert(quoted[1..quoted.len() - 1].to_string());
            }
            forms.insert(value.to_string());
        }
        let mut forms: Vec<String> = forms.into_iter().collect();
        forms.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets { forms }
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.forms {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }

    /// [`redact_value`] below `depth` levels of maps and arrays.
    fn redact_value(&self, mut value: Dynamic, depth: usize) -> Dynamic {
        // Deeper values are data the script built itself, not an error message.
        const MAX_DEPTH: usize = 16;
        if value.is_string() {
            let text = value.into_immutable_string().unwrap_or_default();
            return if self.found_in(&text) {
                self.redact(&text).into()
            } else {
                text.into()
            };
        }
        if depth >= MAX_DEPTH {
            return value;
        }
        if value.is_map() {
            if let Some(mut map) = value.write_lock::<rhai::Map>() {
                for item in map.values_mut() {
                    *item = self.redact_value(std::mem::take(item), depth + 1);
                }
            }
        } else if let Some(mut array) = value.write_lock::<rhai::Array>() {
            for item in array.iter_mut() {
                *item = self.redact_value(std::mem::take(item), depth + 1);
            }
        }
        value
    }

    fn found_in(&self, text: &str) -> bool {
        self.forms
            .iter()
            .any(|secret| text.contains(secret.as_str()))
    }
}

/// Reads the dotenv file `name` of the app into key/value pairs; a missing file is empty, a
/// bad line is skipped (and logged with its file when `warn`).
fn read_dotenv(files: &AppFiles, name: &str, warn: bool) -> Vec<(String, String)> {
    let Ok(bytes) = files.read(Path::new(name)) else {
        return Vec::new();
    };
    let iter = dotenvy::from_read_iter(bytes.as_slice());
    let mut pairs = Vec::new();
    for item in iter {
        match item {
            Ok(pair) => pairs.push(pair),
            Err(_) if !warn => {}
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

    fn env_with(pairs: &[(&str, &str)]) -> EnvVars {
        EnvVars {
            values: BTreeMap::new(),
            secrets: Secrets::new(pairs.iter().copied()),
        }
    }

    #[test]
    fn redacts_longest_first() {
        let env = env_with(&[("A", "secret-value"), ("B", "secret-v")]);
        assert_eq!(
            env.redact("got secret-value and secret-v"),
            "got [redacted] and [redacted]"
        );
    }

    #[test]
    fn redacts_the_debug_and_json_forms() {
        let pem = "-----BEGIN KEY-----\nab\"c\\d\n-----END KEY-----";
        let env = env_with(&[("PEM", pem)]);
        let debug = format!("#{{\"k\": {pem:?}}}");
        let json = serde_json::json!({ "k": pem }).to_string();
        assert_eq!(env.redact(&debug), "#{\"k\": \"[redacted]\"}");
        assert_eq!(env.redact(&json), "{\"k\":\"[redacted]\"}");
        assert!(env.holds_secret(&json) && !env.holds_secret("nothing"));
    }

    #[test]
    fn what_a_catch_binds_is_redacted() {
        let env = Arc::new(env_with(&[("KEY", "s3cr3t-value")]));
        let mut engine = Engine::new();
        let hook = Arc::clone(&env);
        engine.on_catch(move |value, _| hook.secrets.redact_value(value, 0));
        let caught = |script: &str| engine.eval::<Dynamic>(script).unwrap().to_string();
        // The map Rhai makes from an error, and a thrown value.
        let message = r#"let m = (); try { parse_int("s3cr3t-value"); } catch (e) { m = e; } m"#;
        let thrown = r#"let m = (); try { throw ["s3cr3t-value"]; } catch (e) { m = e; } m"#;
        let message = caught(message);
        assert!(message.contains("[redacted]") && !message.contains("s3cr3t"));
        assert_eq!(caught(thrown), r#"["[redacted]"]"#);
    }

    #[test]
    fn short_values_and_public_keys_are_not_secrets() {
        let env = env_with(&[
            ("SHORT", "1234567"),
            ("PUBLIC_SITE", "https://site.example"),
        ]);
        let text = "1234567 https://site.example";
        assert_eq!(env.redact(text), text);
    }
}
