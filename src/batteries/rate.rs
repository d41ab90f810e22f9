//! `rate::check(key, limit, per)`: `true` while `key` has made fewer than `limit` calls in
//! the sliding window `per` ("1m"), and then the call counts; `false` once over it, and a
//! refused call does not count (docs/batteries.md, "rate"). The counters are the app's
//! ([`crate::rate_limit`]): in the process, or in its PostgreSQL with `[rate_limits] store =
//! "database"`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, ImmutableString, Module, NativeCallContext, INT};

use super::{at, budget, script_error, timed_out, ScriptResult};
use crate::app_context::AppContext;
use crate::env::EnvVars;
use crate::rate_limit::{Ask, Limit};
use crate::settings::parse_duration;

/// Longest key: a key is an identity (an address, a user id, an email), not data.
const MAX_KEY: usize = 4096;

/// The `rate` module of an engine of the app `app` in `app_dir`.
pub fn module(app_dir: &Path, env: &Arc<EnvVars>, app: &Arc<AppContext>) -> Module {
    let state = Arc::new(Battery {
        dir: app_dir.to_path_buf(),
        env: Arc::clone(env),
        app: Arc::clone(app),
    });
    let mut module = Module::new();
    module.set_native_fn(
        "check",
        move |ctx: NativeCallContext, key: Dynamic, limit: INT, per: ImmutableString| {
            at(&ctx, state.check(&key, limit, &per))
        },
    );
    module
}

struct Battery {
    dir: PathBuf,
    env: Arc<EnvVars>,
    app: Arc<AppContext>,
}

fn fail(message: impl std::fmt::Display) -> Box<rhai::EvalAltResult> {
    script_error(format!("rate::check: {message}"))
}

impl Battery {
    fn check(&self, key: &Dynamic, limit: INT, per: &str) -> ScriptResult<bool> {
        let key = if let Some(text) = key.read_lock::<ImmutableString>() {
            text.to_string()
        } else if let Ok(n) = key.as_int() {
            n.to_string()
        } else {
            return Err(fail(format!(
                "the key must be a string or an integer, not {}; e.g. \"login:\" + req.ip",
                key.type_name()
            )));
        };
        if key.len() > MAX_KEY {
            return Err(fail(format!("the key is over {MAX_KEY} bytes")));
        }
        let Ok(limit @ 1..) = u64::try_from(limit) else {
            return Err(fail("the limit must be at least 1"));
        };
        let per = parse_duration(per).map_err(fail)?;
        let per_ms = i64::try_from(per.as_millis()).unwrap_or(i64::MAX);
        let scope = format!("script {per_ms}");
        let ask = Ask {
            scope: &scope,
            key: key.as_bytes(),
            limit: Limit { limit, per_ms },
        };
        let now = self.app.clock.now_ms();
        let rate = &self.app.rate;
        let decision = if !rate.wants_database() {
            rate.take_all(&[ask], now, None, budget()?)
        } else {
            let db = crate::db::Target::from_env(&self.dir, &self.env)
                .and_then(|target| self.app.databases.open(&target))
                .map_err(fail)?;
            if !rate.uses(Some(&db)) {
                rate.take_all(&[ask], now, None, budget()?)
            } else {
                let (app, budget) = (Arc::clone(&self.app), budget()?);
                let owned = (scope.clone(), key.clone());
                let work = move || {
                    let ask = Ask {
                        scope: &owned.0,
                        key: owned.1.as_bytes(),
                        limit: Limit { limit, per_ms },
                    };
                    app.rate.take_all(&[ask], now, Some(&db), budget)
                };
                match crate::executor::blocking_on(crate::db::threads(), work) {
                    crate::executor::Waited::Done(result) => result,
                    crate::executor::Waited::TimedOut => return Err(timed_out()),
                }
            }
        };
        Ok(decision.map_err(fail)?.is_some_and(|d| d.allowed))
    }
}
