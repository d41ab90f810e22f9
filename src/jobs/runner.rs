//! The server's job runner: one task per server process that claims due jobs from the
//! app's database and runs each on an HTTP worker as a script run of its own
//! (`executor::spawn`, with the budgets, memory ceiling and redaction of a request, and the
//! snapshot it started with), then records how it ended. It also enqueues the ticks of
//! scheduled jobs. It wakes on an enqueue in this process, on PostgreSQL's `NOTIFY` from
//! any instance, when a run ends, and otherwise when the next delayed job is due (at most
//! [`POLL`] apart). Database calls run on tokio's blocking threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_rt::ArbiterHandle;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::queue::{self, Claimed, Ended, Wanted};
use super::{Job, JobScript};
use crate::app::{App, Snapshot};
use crate::db::{Conn, Database, DbError, Listener, Target};
use crate::metrics::JobEnd;

/// The longest sleep between two looks at the queue (other processes' changes on SQLite,
/// `rhapi jobs retry`, a reload that added jobs).
const POLL: Duration = Duration::from_secs(1);

/// Time one database call of the runner may take.
const DB_BUDGET: Duration = Duration::from_secs(10);

/// How often completed jobs past `keep_completed` are deleted (more often when they are
/// kept for less).
const CLEAN_EVERY_MS: i64 = 60_000;

/// The HTTP workers jobs run on: each registers itself as it starts.
#[derive(Default)]
pub struct Workers(Mutex<Vec<ArbiterHandle>>);

impl Workers {
    /// Adds the worker this is called on.
    pub fn register_current(&self) {
        let mut workers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        workers.push(actix_rt::Arbiter::current());
    }

    fn pick(&self, n: usize) -> Option<ArbiterHandle> {
        let workers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (!workers.is_empty()).then(|| workers[n % workers.len()].clone())
    }
}

/// How a stopping server lets the runner finish: no job starts after [`Stop::drain`], and
/// it returns once the running ones have ended.
#[derive(Default)]
pub struct Stop {
    stopping: std::sync::atomic::AtomicBool,
    /// The runner says it has nothing running any more (once stopping).
    drained: tokio::sync::Notify,
    /// Wakes the runner to see that it is stopping.
    wake: tokio::sync::Notify,
}

impl Stop {
    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Starts no more jobs and waits for the running ones to end, until `grace` at most.
    pub async fn drain(&self, grace: tokio::time::Instant) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
        let _ = tokio::time::timeout_at(grace, self.drained.notified()).await;
    }
}

/// How a run ended, sent back to the runner.
#[derive(Clone)]
struct Done {
    id: i64,
    name: String,
    attempt: i64,
    attempts: u32,
    ended: Ended,
}

/// Starts the runner on this thread's actix runtime.
pub fn start(app: Arc<App>, workers: Arc<Workers>) -> Arc<Stop> {
    let mut runner = Runner::idle(&app);
    runner.workers = workers;
    let stop = Arc::clone(&runner.stop);
    actix_web::rt::spawn(runner.run());
    stop
}

struct Runner {
    app: Arc<App>,
    workers: Arc<Workers>,
    dispatched: usize,
    /// Runs in progress in this process, by job name.
    running: HashMap<String, usize>,
    done: UnboundedSender<Done>,
    finished: UnboundedReceiver<Done>,
    db: Option<(Target, Arc<Database>)>,
    /// Ends not written yet (the database was unreachable): written at the next chance, so
    /// that a run that completed is never run again.
    unrecorded: Vec<Done>,
    listener: Option<Listener>,
    /// When a schedule may next tick (app clock).
    next_tick: i64,
    next_clean: i64,
    stop: Arc<Stop>,
}

impl Runner {
    /// A runner of `app` with nothing running yet.
    fn idle(app: &Arc<App>) -> Runner {
        let (done, finished) = unbounded_channel();
        Runner {
            app: Arc::clone(app),
            workers: Arc::default(),
            dispatched: 0,
            running: HashMap::new(),
            done,
            finished,
            db: None,
            unrecorded: Vec::new(),
            listener: None,
            next_tick: i64::MIN,
            next_clean: i64::MIN,
            stop: Arc::default(),
        }
    }

    async fn run(mut self) {
        loop {
            let wait = match self.round().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::error!("jobs: {}", self.app.context.redact(&err.to_string()));
                    self.db = None;
                    POLL * 5
                }
            };
            self.sleep(wait).await;
        }
    }

    /// One look at the queue: schedules, clean-up, claims; returns how long to sleep.
    async fn round(&mut self) -> Result<Duration, DbError> {
        if self.stop.stopping() {
            if self.in_progress() == 0 {
                self.stop.drained.notify_one();
            }
            return Ok(POLL);
        }
        let snapshot = self.app.snapshot();
        if snapshot.jobs.is_empty() {
            return Ok(POLL);
        }
        let db = self.database(&snapshot).await?;
        if !self.unrecorded.is_empty() {
            self.record(Vec::new()).await;
        }
        let app = Arc::clone(&self.app);
        let clock = &app.context.clock;
        let mut now = clock.now_ms();
        if now >= self.next_tick {
            self.next_tick = self.tick(&snapshot, &db, now).await?;
        }
        if now >= self.next_clean {
            let keep = i64::try_from(snapshot.settings.jobs.keep_completed.as_millis())
                .unwrap_or(i64::MAX);
            let before = now.saturating_sub(keep);
            blocking(&db, move |conn| {
                queue::delete_completed(conn.as_dyn(), DB_BUDGET, before)
            })
            .await?;
            self.next_clean = now + CLEAN_EVERY_MS.min(keep);
        }
        let free = snapshot
            .settings
            .jobs
            .concurrency
            .saturating_sub(self.in_progress());
        if free == 0 {
            // Every slot is taken: the next run's end wakes the runner; only a schedule's
            // tick may come first.
            let until = u64::try_from(self.next_tick.saturating_sub(now)).unwrap_or(0);
            return Ok(Duration::from_millis(until).clamp(Duration::from_millis(5), POLL));
        }
        let (mut wanted, ready) = self.wanted(&snapshot);
        let names: Vec<String> = wanted.iter().map(|w| w.name.clone()).collect();
        if free > 0 && !wanted.is_empty() {
            let at_once = queue::can_claim_at_once(db.dialect(), &wanted, free);
            let claimed = blocking(&db, move |conn| {
                if at_once {
                    return queue::claim_at_once(conn.as_dyn(), DB_BUDGET, now, &wanted, free);
                }
                crate::db::in_transaction(conn, DB_BUDGET, |conn| {
                    queue::claim(conn.as_dyn(), DB_BUDGET, now, &mut wanted, free)
                })
            })
            .await?;
            let full = claimed.len() == free;
            for job in claimed {
                if let Some(script) = ready.get(&job.name) {
                    self.dispatch(&snapshot, script, job);
                }
            }
            if full {
                return Ok(Duration::ZERO);
            }
        }
        let next = blocking(&db, move |conn| {
            queue::next_due(conn.as_dyn(), DB_BUDGET, &names)
        })
        .await?;
        now = clock.now_ms();
        let until = next.unwrap_or(i64::MAX).min(self.next_tick);
        let wait = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
        Ok(Duration::from_millis(wait).clamp(Duration::from_millis(5), POLL))
    }

    fn in_progress(&self) -> usize {
        self.running.values().sum()
    }

    /// The jobs that may run now (loaded, under their own concurrency), and room for each.
    fn wanted(&self, snapshot: &Snapshot) -> (Vec<Wanted>, HashMap<String, Arc<JobScript>>) {
        let settings = &snapshot.settings;
        let mut wanted = Vec::new();
        let mut ready = HashMap::new();
        for (name, job) in &snapshot.jobs {
            let Job::Ready(script) = job else { continue };
            let busy = self.running.get(name).copied().unwrap_or(0);
            let room = script
                .config
                .concurrency
                .unwrap_or(usize::MAX)
                .saturating_sub(busy);
            // At its own concurrency: neither claimed nor waited for (its next end wakes
            // the runner), so that its backlog neither fills claims nor keeps the runner
            // polling.
            if room == 0 {
                continue;
            }
            let timeout = script.config.timeout.unwrap_or(settings.limits.timeout);
            let lease = timeout + settings.jobs.lease_grace;
            ready.insert(name.clone(), Arc::clone(script));
            wanted.push(Wanted {
                name: name.clone(),
                room,
                attempts: script.config.attempts,
                lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            });
        }
        (wanted, ready)
    }

    /// Enqueues the due tick of each scheduled job; returns when the next one is due.
    async fn tick(
        &self,
        snapshot: &Snapshot,
        db: &Arc<Database>,
        now: i64,
    ) -> Result<i64, DbError> {
        let mut next = now + POLL.as_millis() as i64 * 60;
        for (name, job) in &snapshot.jobs {
            let Job::Ready(script) = job else { continue };
            let Some(schedule) = script.config.schedule.clone() else {
                continue;
            };
            let name = name.clone();
            let due = blocking(db, move |conn| {
                crate::db::in_transaction(conn, DB_BUDGET, |conn| {
                    let next_after = |ms| schedule.next_after(ms);
                    queue::tick(conn.as_dyn(), DB_BUDGET, &name, &next_after, now)
                })
            })
            .await?;
            next = next.min(due.unwrap_or(i64::MAX));
        }
        Ok(next)
    }

    /// Runs `job` on a worker (round robin) as a script run of its own.
    fn dispatch(&mut self, snapshot: &Arc<Snapshot>, script: &Arc<JobScript>, job: Claimed) {
        *self.running.entry(job.name.clone()).or_default() += 1;
        let (snapshot, script, done) =
            (Arc::clone(snapshot), Arc::clone(script), self.done.clone());
        let work = async move { run_on_worker(&snapshot, &script, job, done) };
        self.dispatched += 1;
        match self.workers.pick(self.dispatched) {
            Some(worker) => {
                worker.spawn(work);
            }
            None => {
                actix_web::rt::spawn(work);
            }
        }
    }

    /// Waits `wait`, or less: an enqueue here, a notification, a run that ended.
    async fn sleep(&mut self, wait: Duration) {
        if wait.is_zero() {
            self.record_finished().await;
            return;
        }
        let woken = self.app.context.jobs.woken();
        let stopping = self.stop.wake.notified();
        let notified = async {
            match self.listener.as_mut() {
                Some(listener) => {
                    listener.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = woken => {}
            () = stopping => {}
            () = notified => {}
            Some(done) = self.finished.recv() => self.record(vec![done]).await,
            () = tokio::time::sleep(wait) => {}
        }
        self.record_finished().await;
    }

    /// Records every run that has ended.
    async fn record_finished(&mut self) {
        let mut ended = Vec::new();
        while let Ok(done) = self.finished.try_recv() {
            ended.push(done);
        }
        if !ended.is_empty() {
            self.record(ended).await;
        }
    }

    async fn record(&mut self, new: Vec<Done>) {
        let metrics = &self.app.context.metrics;
        for done in &new {
            if let Some(n) = self.running.get_mut(&done.name) {
                *n = n.saturating_sub(1);
            }
            let end = match done.ended {
                Ended::Completed => JobEnd::Completed,
                Ended::Failed(_) if done.attempt < i64::from(done.attempts) => JobEnd::Retried,
                Ended::Failed(_) => JobEnd::Failed,
            };
            metrics.job_ended(&done.name, end);
        }
        let mut ended = std::mem::take(&mut self.unrecorded);
        ended.extend(new);
        if ended.is_empty() {
            return;
        }
        let Some((_, db)) = self.db.clone() else {
            self.unrecorded = ended;
            return;
        };
        let kept = ended.clone();
        let now = self.app.context.clock.now_ms();
        // One transaction for the lot: one commit (one sync on SQLite) however many ended;
        // one end is one statement, atomic as it is (no BEGIN and COMMIT round trips).
        let recorded = blocking(&db, move |conn| {
            if ended.len() == 1 {
                record_all(conn, &ended, now)
            } else {
                crate::db::in_transaction(conn, DB_BUDGET, |conn| record_all(conn, &ended, now))
            }
        })
        .await;
        if let Err(err) = recorded {
            // Tried again at the next round; the rows keep their lease meanwhile.
            self.unrecorded = kept;
            tracing::error!(
                "jobs: cannot record a run's end: {}",
                self.app.context.redact(&err.to_string())
            );
        }
    }

    /// The app's database (opened again when `DATABASE_URL` changed), with its tables and,
    /// on PostgreSQL, a listener.
    async fn database(&mut self, snapshot: &Snapshot) -> Result<Arc<Database>, DbError> {
        let target = Target::from_env(&self.app.dir, &snapshot.env.0)?;
        if let Some((current, db)) = &self.db {
            if *current == target {
                return Ok(Arc::clone(db));
            }
        }
        let (app, opening) = (Arc::clone(&self.app), target.clone());
        // Connecting blocks (PostgreSQL's client runs a runtime of its own).
        let opened = tokio::task::spawn_blocking(move || {
            let db = app.context.databases.open(&opening)?;
            let mut conn = db.get(DB_BUDGET)?;
            queue::create_tables(conn.as_dyn(), DB_BUDGET)?;
            let listener = match Listener::open(&opening) {
                Ok(listener) => {
                    listener.listen(queue::CHANNEL)?;
                    Some(listener)
                }
                Err(_) => None,
            };
            Ok::<_, DbError>((db, listener))
        })
        .await
        .unwrap_or_else(|err| Err(DbError::Sql(format!("the job runner's call failed: {err}"))));
        let (db, listener) = opened?;
        self.app.context.jobs.mark_tables_ready();
        self.listener = listener;
        self.db = Some((target, Arc::clone(&db)));
        Ok(db)
    }
}

/// Runs `f` on a connection of `db`, on a blocking thread.
async fn blocking<T: Send + 'static>(
    db: &Arc<Database>,
    f: impl FnOnce(&mut Conn) -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    let db = Arc::clone(db);
    let joined = tokio::task::spawn_blocking(move || {
        let mut conn = db.get(DB_BUDGET)?;
        f(&mut conn)
    })
    .await;
    joined.unwrap_or_else(|err| Err(DbError::Sql(format!("the job runner's call failed: {err}"))))
}

/// Jobs `run_jobs()` runs at most in one call (a job that enqueues itself at once would
/// otherwise never let it end).
pub const MOST_DUE_RUNS: usize = 1_000;

/// `rhapi test`'s `run_jobs()`: runs the jobs due at the app's clock one after another, on
/// this thread, until none is due; returns how many ran.
pub async fn run_due(app: &Arc<App>) -> Result<usize, String> {
    let snapshot = app.snapshot();
    let target = Target::from_env(&app.dir, &snapshot.env.0).map_err(|e| e.to_string())?;
    let db = app
        .context
        .databases
        .open(&target)
        .map_err(|e| e.to_string())?;
    blocking(&db, |conn| queue::create_tables(conn.as_dyn(), DB_BUDGET))
        .await
        .map_err(|e| e.to_string())?;
    app.context.jobs.mark_tables_ready();
    let idle = Runner::idle(app);
    for ran in 0..MOST_DUE_RUNS {
        let now = app.context.clock.now_ms();
        let (mut wanted, ready) = idle.wanted(&snapshot);
        let claimed = blocking(&db, move |conn| {
            crate::db::in_transaction(conn, DB_BUDGET, |conn| {
                queue::claim(conn.as_dyn(), DB_BUDGET, now, &mut wanted, 1)
            })
        })
        .await
        .map_err(|e| e.to_string())?;
        let Some(job) = claimed.into_iter().next() else {
            return Ok(ran);
        };
        let Some(script) = ready.get(&job.name) else {
            return Ok(ran);
        };
        let (call, deadline) = call_for(&snapshot, script);
        let (id, attempt, attempts) = (job.id, job.attempt, script.config.attempts);
        let payload = job.payload;
        let ran_job = crate::executor::run::<crate::script::context::Saved, _>(
            deadline,
            move || call.run_job(&payload),
            |_| {},
        )
        .await;
        let ended = match ran_job {
            crate::executor::Ran::Finished(Ok(())) => Ended::Completed,
            crate::executor::Ran::Finished(Err(err)) => {
                Ended::Failed(snapshot.env.0.redact(&err.to_string()))
            }
            _ => Ended::Failed("internal error while running the job".into()),
        };
        let now = app.context.clock.now_ms();
        blocking(&db, move |conn| {
            queue::finish(conn.as_dyn(), DB_BUDGET, id, attempt, attempts, &ended, now)
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    Err(format!(
        "more than {MOST_DUE_RUNS} jobs were due (does a job enqueue itself without a delay?)"
    ))
}

/// The run of `script`'s `fn run` with the snapshot's budgets, and its deadline.
fn call_for(snapshot: &Snapshot, script: &JobScript) -> (crate::script::Call, Instant) {
    let limits = &snapshot.settings.limits;
    let timeout = script.config.timeout.unwrap_or(limits.timeout);
    let deadline = Instant::now() + timeout;
    let call = crate::script::Call {
        engine: Arc::clone(&snapshot.engine),
        script: Arc::clone(&script.script),
        target: crate::script::methods::Target {
            function: "run",
            arity: script.arity,
            handler: false,
            middleware: false,
        },
        env: snapshot.env.clone(),
        deadline,
        max_memory: limits.max_memory,
        hold: None,
    };
    (call, deadline)
}

/// On the worker: the job's run, as a script run of its own; its end goes to `done`.
fn run_on_worker(
    snapshot: &Snapshot,
    script: &JobScript,
    job: Claimed,
    done: UnboundedSender<Done>,
) {
    let (call, deadline) = call_for(snapshot, script);
    let env = Arc::clone(&snapshot.env.0);
    let attempts = script.config.attempts;
    let Claimed {
        id,
        name,
        payload,
        attempt,
    } = job;
    let after = move |ran: Option<Result<(), crate::error::ScriptError>>| {
        let ended = match ran {
            Some(Ok(())) => Ended::Completed,
            Some(Err(err)) => Ended::Failed(env.redact(&err.to_string())),
            None => Ended::Failed(
                "internal error while running the job (a panic; see the server log)".into(),
            ),
        };
        if let Ended::Failed(error) = &ended {
            let what = if attempt >= i64::from(attempts) {
                "failed for good"
            } else {
                "failed, will retry"
            };
            tracing::warn!(
                "job {name} #{id} attempt {attempt}/{attempts} {what}: {}",
                crate::logging::escape(error)
            );
        }
        let _ = done.send(Done {
            id,
            name,
            attempt,
            attempts,
            ended,
        });
    };
    crate::executor::spawn::<crate::script::context::Saved, _>(
        deadline,
        move || call.run_job(&payload),
        after,
    );
}

/// Records the end of each run in `ended`.
fn record_all(conn: &mut Conn, ended: &[Done], now: i64) -> Result<(), DbError> {
    for done in ended {
        queue::finish(
            conn.as_dyn(),
            DB_BUDGET,
            done.id,
            done.attempt,
            done.attempts,
            &done.ended,
            now,
        )?;
    }
    Ok(())
}
