//! `rhapi jobs [DIR]`: one line per pending, running or failed job of the app's queue;
//! `rhapi jobs [DIR] retry ID`: a failed job back in the queue, its attempts reset.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::db::Target;
use crate::jobs::queue::{self, Listed};
use crate::settings::Mode;

/// Time each database call may take.
const BUDGET: Duration = Duration::from_secs(30);

/// Runs `rhapi jobs` with its arguments (`[DIR] [retry ID]`).
pub fn run(args: &[String]) -> Result<ExitCode> {
    let (dir, rest) = match args {
        [first, rest @ ..] if first != "retry" => (Some(PathBuf::from(first)), rest),
        rest => (None, rest),
    };
    let retry = match rest {
        [] => None,
        [verb, id] if verb == "retry" => Some(
            id.parse::<i64>()
                .with_context(|| format!("retry {id}: a job id is a whole number"))?,
        ),
        _ => bail!("usage: rhapi jobs [DIR] [retry ID]"),
    };
    let dir = crate::cli::app_dir(dir)?;
    let env = Arc::new(crate::env::EnvVars::load(&dir, Mode::Start));
    let app = crate::app_context::AppContext::new(&env);
    crate::env::set_served(&app);
    let target = Target::from_env(&dir, &env)?;
    let db = app.databases.open(&target)?;
    let mut conn = db.get(BUDGET)?;
    queue::create_tables(conn.as_dyn(), BUDGET)?;
    let Some(id) = retry else {
        for job in queue::list(conn.as_dyn(), BUDGET)? {
            println!("{}", crate::env::redact(&line(&job)));
        }
        return Ok(ExitCode::SUCCESS);
    };
    let now = app.clock.now_ms();
    if queue::retry(conn.as_dyn(), BUDGET, id, now)? {
        println!("ok: job {id} is queued again");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: there is no failed job {id} (rhapi jobs lists them)");
        Ok(ExitCode::FAILURE)
    }
}

/// `state name id attempts next error`, one line (a failed job has no next run).
fn line(job: &Listed) -> String {
    let next = if job.state == "failed" {
        "-".to_string()
    } else {
        iso(job.run_at)
    };
    let error = job.last_error.as_deref().unwrap_or("-");
    format!(
        "{:<9} {} id={} attempts={} next={} error={}",
        job.state,
        job.name,
        job.id,
        job.attempts,
        next,
        crate::logging::escape(error)
    )
}

/// `2026-12-05T14:00:00.000Z`.
fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}
