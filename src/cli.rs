//! The command line: what `dev`, `start`, `routes`, `check` and `migrate` do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::analysis::METHODS;
use crate::app::{App, LoadReport, Route};
use crate::settings::{parse_duration, parse_size, Layers, Limits, Mode, Overrides, ServeSettings};

/// Serve `pages/api/*.rhai` as HTTP API routes, like Next.js API routes.
#[derive(Parser, Debug)]
#[command(name = "rhapi", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve with reload on change, detailed errors, and every request logged.
    Dev(ServeArgs),
    /// Serve for production: generic error bodies, last good version kept on a bad save.
    Start {
        #[command(flatten)]
        serve: ServeArgs,
        /// Do not watch pages/ and .env for changes.
        #[arg(long)]
        no_watch: bool,
    },
    /// Print the route table: pattern, methods, file (exit 0 even when a route is broken).
    Routes {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Compile every script and resolve its imports; exit 1 on any error.
    Check {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Apply migrations/*.sql to the database (DATABASE_URL) and exit.
    Migrate {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Print the pending, running and failed jobs (state, name, id, attempts, next run,
    /// last error); `rhapi jobs [DIR] retry ID` puts a failed job back.
    Jobs {
        /// `[DIR]`, then optionally `retry ID`.
        args: Vec<String>,
    },
    /// Print an OpenAPI 3.1 description of the routes (JSON) on stdout.
    Openapi {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Write Rhai definition files (*.d.rhai) for editors: every function scripts can
    /// call, with docs, and the shapes of req, res, ws and env.
    Types {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
        /// Where to write them (default: DIR/.rhapi/types).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write one executable holding rhapi and the app (pages, jobs, migrations, public,
    /// rhapi.toml, .env.example; never .env or data/): `FILE start` serves it anywhere.
    Bundle {
        /// The app folder (default: the current directory).
        dir: Option<PathBuf>,
        /// The file to write.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Create a starter app in DIR (which must not exist, or be empty).
    New {
        /// The folder to create.
        dir: PathBuf,
    },
    /// Serve the Language Server Protocol on stdin and stdout, for editors (docs/editor.md).
    Lsp,
    /// Run every `fn test_*()` in tests/**/*.test.rhai against the app, in-process; exit 1
    /// when one fails or none ran.
    Test {
        /// The app folder (default: the current directory). A single argument that is not
        /// a folder is taken as FILTER.
        dir: Option<PathBuf>,
        /// Only the tests whose name contains this.
        filter: Option<String>,
        /// Time budget of each test and of each request it sends [10s].
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
        /// Operations budget of each test and of each request it sends [10000000].
        #[arg(long)]
        max_operations: Option<u64>,
    },
}

/// Options of `dev` and `start`. Each one left out keeps its default from
/// [`crate::settings`] (shown in brackets).
#[derive(Args, Debug)]
struct ServeArgs {
    /// The app folder (default: the current directory).
    dir: Option<PathBuf>,
    /// Port to listen on [3000].
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Address to listen on [127.0.0.1 for dev, 0.0.0.0 for start].
    #[arg(long)]
    hostname: Option<String>,
    /// Largest request body: bytes, or e.g. 512kb, 10mb [1mb].
    #[arg(long, value_parser = parse_size)]
    body_limit: Option<usize>,
    /// Time budget of one request's script: seconds, or e.g. 500ms, 2s [10s].
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Longest pause while a request body arrives, then 408: e.g. 5s [5s].
    #[arg(long, value_parser = parse_duration)]
    body_timeout: Option<Duration>,
    /// Operations budget of one request's script [10000000].
    #[arg(long)]
    max_operations: Option<u64>,
    /// Memory one request's script may allocate and keep, e.g. 64mb [64mb].
    #[arg(long, value_parser = parse_size)]
    max_memory: Option<usize>,
    /// Largest string a script may build (0 = no limit of its own; --max-memory applies) [0].
    /// Rhai's size limits re-measure a value after each change: they make lists slow.
    #[arg(long, value_parser = parse_size)]
    max_string_size: Option<usize>,
    /// Largest array a script may build, in items (0 = no limit of its own) [0].
    #[arg(long)]
    max_array_size: Option<usize>,
    /// Largest object map a script may build, in items (0 = no limit of its own) [0].
    #[arg(long)]
    max_map_size: Option<usize>,
    /// Deepest function call nesting in a script [64].
    #[arg(long)]
    max_call_depth: Option<usize>,
    /// HTTP worker threads [one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// Requests held at once; above it new ones get 503 with Retry-After [10000].
    #[arg(long)]
    max_in_flight: Option<usize>,
}

impl ServeArgs {
    /// The command line's layer over `rhapi.toml`: each option given sets its field of
    /// [`crate::settings::Settings`] (and so wins over the file).
    fn overrides(&self) -> Overrides {
        let mut cli = Overrides::default();
        cli.set(self.hostname.clone(), |s, v| s.server.host = Some(v));
        cli.set(self.port, |s, v| s.server.port = v);
        cli.set(self.workers, |s, v| s.server.workers = Some(v));
        cli.set(self.body_limit, |s, v| s.server.body_limit = v);
        cli.set(self.timeout, |s, v| s.server.timeout = v);
        cli.set(self.body_timeout, |s, v| s.server.body_timeout = v);
        cli.set(self.max_operations, |s, v| s.server.max_operations = v);
        cli.set(self.max_in_flight, |s, v| s.server.max_in_flight = v);
        cli.set(self.max_memory, |s, v| s.server.max_memory = v);
        cli.set(self.max_string_size, |s, v| s.server.max_string_size = v);
        cli.set(self.max_array_size, |s, v| s.server.max_array_size = v);
        cli.set(self.max_map_size, |s, v| s.server.max_map_size = v);
        cli.set(self.max_call_depth, |s, v| s.server.max_call_depth = v);
        cli
    }
}

/// Runs the command; the exit code is 1 on any error.
pub fn run(cli: Cli) -> ExitCode {
    // Before any thread starts (it changes the process environment).
    crate::http::claim_inherited_socket();
    crate::logging::init();
    if let Err(err) = open_bundle(&cli.command) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Dev(serve) => serve_app(serve, Mode::Dev, true),
        Command::Start { serve, no_watch } => serve_app(serve, Mode::Start, !no_watch),
        Command::Routes { dir } => print_routes(dir),
        Command::Check { dir } => check(dir),
        Command::Migrate { dir } => migrate(dir),
        Command::New { dir } => new_app(&dir),
        Command::Bundle { dir, out } => bundle(dir, &out),
        Command::Openapi { dir } => openapi(dir),
        Command::Types { dir, out } => types(dir, out),
        Command::Jobs { args } => crate::tools::jobs::run(&args),
        Command::Lsp => lsp(),
        Command::Test {
            dir,
            filter,
            timeout,
            max_operations,
        } => {
            let mut limits = Limits::default();
            limits.timeout = timeout.unwrap_or(limits.timeout);
            limits.max_operations = max_operations.unwrap_or(limits.max_operations);
            run_tests(dir, filter, limits)
        }
    };
    crate::logging::flush();
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            say(format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    };
    crate::logging::flush();
    code
}

/// When this executable is a bundle (`rhapi bundle`), makes its app the one every command
/// reads, for the commands that serve or read an app; refuses the others. A plain binary
/// reads a few bytes of itself and goes on.
fn open_bundle(command: &Command) -> Result<()> {
    let Some(archive) = crate::bundle::detect()? else {
        return Ok(());
    };
    let refused = match command {
        Command::Start { .. }
        | Command::Routes { .. }
        | Command::Check { .. }
        | Command::Migrate { .. }
        | Command::Openapi { .. }
        | Command::Jobs { .. } => {
            crate::bundle::install(archive);
            return Ok(());
        }
        Command::Dev(_) => anyhow::bail!(
            "this executable is a bundled app (rhapi bundle): it serves with `start`, not \
             `dev`, which reloads an app's files as they change (a bundle has none to watch); \
             run `rhapi dev` in the app's folder"
        ),
        Command::Test { .. } => "test",
        Command::Types { .. } => "types",
        Command::New { .. } => "new",
        Command::Bundle { .. } => "bundle",
        Command::Lsp => "lsp",
    };
    anyhow::bail!(
        "this executable is a bundled app (rhapi bundle): it answers start, routes, check, \
         migrate, openapi and jobs; run `rhapi {refused}` in the app's folder instead"
    )
}

pub(crate) fn app_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    dir.canonicalize()
        .with_context(|| format!("cannot open the app folder '{}'", dir.display()))
}

/// [`app_dir`], which must hold `pages/api` (commands that serve or read the routes). A
/// bundle holds its own routes: its folder is only where `.env` and `data/` are.
fn routes_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    let dir = app_dir(dir)?;
    if crate::bundle::current().is_none() {
        crate::tools::require_pages_api(&dir)?;
    }
    Ok(dir)
}

fn serve_app(args: ServeArgs, mode: Mode, watch: bool) -> Result<ExitCode> {
    let dir = routes_dir(args.dir.clone())?;
    let layers = Layers {
        cli: args.overrides(),
        ..Layers::defaults(mode)
    };
    // The log's format first, so that the lines of the load are in it too (a file that
    // does not parse is the load's to report).
    if let Ok(settings) = crate::config::load(&dir, None, &layers.base) {
        crate::logging::set_format(settings.log.format);
    }
    let (app, report) = App::load(&dir, layers);
    crate::logging::set_format(app.settings.log_format);
    crate::env::set_served(&app.context);
    // Where to listen is read once, here: a later change of it in rhapi.toml only warns.
    // A bundle never changes: nothing to watch.
    let bundled = crate::bundle::current().is_some();
    let mut serve = ServeSettings::new(&app.settings.listen, watch && !bundled);
    if mode == Mode::Start {
        app.snapshot().env.0.warn_unset_example_keys(&dir);
    }
    for warning in crate::http::public_warnings(&dir, &app.snapshot().settings.public) {
        tracing::warn!("{warning}");
    }
    if !report.errors.is_empty() {
        print_errors(&report);
        if mode == Mode::Start {
            say(format!(
                "rhapi start: {} route file(s) failed to load; fix them and start again",
                report.errors.len()
            ));
            return Ok(ExitCode::FAILURE);
        }
    }
    if !certificates_and_migrations(&app, &dir, mode, &mut serve) {
        return Ok(ExitCode::FAILURE);
    }
    let from = if bundled {
        if let Err(err) = crate::bundle::extract_public() {
            crate::bundle::remove_public();
            return Err(anyhow::Error::new(err).context("cannot start the bundle"));
        }
        format!("the bundle (.env and data/ in {})", dir.display())
    } else {
        dir.display().to_string()
    };
    tracing::info!(
        "loaded {} routes from {from} in {:.1}ms",
        report.routes,
        report.elapsed.as_secs_f64() * 1000.0
    );
    let app = Arc::new(app);
    let _watcher = if serve.watch {
        Some(crate::watch::start(Arc::clone(&app)).context("cannot watch the app folder")?)
    } else {
        None
    };
    let port = serve.port;
    let served = crate::http::serve(app, serve).map_err(|err| listen_error(err, port));
    crate::bundle::remove_public();
    served?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Loads `[tls]`'s certificates into `serve` and applies the migrations; `false` when the
/// server must not start (a bad certificate; a failed migration under `start`).
fn certificates_and_migrations(
    app: &App,
    dir: &Path,
    mode: Mode,
    serve: &mut ServeSettings,
) -> bool {
    // No last good certificate to fall back on at start, in `dev` too: serving plain HTTP
    // instead would answer clients that expect HTTPS with garbage.
    match load_tls(app) {
        Ok(tls) => serve.tls = tls,
        Err(err) => {
            say(format!("error: {err}"));
            say(format!(
                "rhapi {}: the [tls] certificate cannot be served; fix it and start again",
                if mode == Mode::Dev { "dev" } else { "start" }
            ));
            return false;
        }
    }
    let migrated = crate::db::migrate::apply(dir, &app.snapshot().env.0, &app.context.databases);
    app.context.readiness.migrations_applied(migrated.is_ok());
    if let Err(err) = migrated {
        say(format!("error: {err}"));
        if mode == Mode::Start {
            say("rhapi start: a migration failed; fix it and start again".into());
            return false;
        }
    }
    true
}

/// The certificates of `[tls]`, loaded and checked; `None` without `[tls]`.
fn load_tls(app: &App) -> Result<Option<Arc<crate::tls::Certificates>>, crate::tls::TlsError> {
    crate::tls::TlsFiles::of(&app.dir, &app.settings.listen.tls)
        .map(crate::tls::Certificates::load)
        .transpose()
}

/// A server error; a busy port names the port and how to choose another.
fn listen_error(err: std::io::Error, port: u16) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::AddrInUse {
        anyhow::anyhow!(
            "port {port}: {err}: another server listens there; stop it or choose another port with --port N (or PORT=N)"
        )
    } else {
        anyhow::Error::new(err).context("server error")
    }
}

/// A line for the person (or the collector) reading a server's output: as it is, or an
/// error line of the JSON log.
fn say(text: String) {
    if crate::logging::is_json() {
        tracing::error!("{text}");
    } else {
        eprintln!("{text}");
    }
}

fn print_errors(report: &LoadReport) {
    for err in &report.errors {
        // The hint on a line of its own, as `check` prints its warnings' hints.
        let hintless = crate::error::ScriptError {
            hint: None,
            ..err.clone()
        };
        let message = format!("error: {}", crate::env::redact(&hintless.to_string()));
        match &err.hint {
            Some(hint) => say(format!("{message}\n  hint: {hint}")),
            None => say(message),
        }
    }
}

fn load_for_inspection(dir: Option<PathBuf>) -> Result<(App, LoadReport)> {
    let dir = routes_dir(dir)?;
    let (app, report) = App::load(Path::new(&dir), Layers::defaults(Mode::Start));
    crate::env::set_served(&app.context);
    for warning in crate::http::public_warnings(&dir, &app.snapshot().settings.public) {
        eprintln!("warning: {warning}");
    }
    Ok((app, report))
}

fn print_routes(dir: Option<PathBuf>) -> Result<ExitCode> {
    let (app, report) = load_for_inspection(dir)?;
    let snapshot = app.snapshot();
    let middleware = |file: &str| -> String {
        let files: Vec<String> = snapshot
            .middleware_of(file)
            .iter()
            .map(|slot| match slot {
                Ok(m) => m.script.file.to_string(),
                Err(err) => err.location.file.clone(),
            })
            .collect();
        if files.is_empty() {
            String::new()
        } else {
            format!("  (middleware: {})", files.join(", "))
        }
    };
    let rows: Vec<(String, String, String)> = snapshot
        .routes
        .iter()
        .map(|(pattern, route)| match route {
            Route::Ready(script) => {
                let mut methods: Vec<&str> = METHODS
                    .iter()
                    .zip(script.methods.iter())
                    .filter(|(_, p)| p.is_some())
                    .map(|(m, _)| *m)
                    .collect();
                if script.handler.is_some() {
                    methods.push("*");
                }
                if script.accepts_sockets() {
                    methods.push("WS");
                }
                (
                    pattern.to_string(),
                    methods.join(","),
                    format!("{}{}", script.file, middleware(&script.file)),
                )
            }
            Route::Broken(err) => (
                pattern.to_string(),
                "error".into(),
                err.location.file.clone(),
            ),
        })
        .chain(job_rows(&snapshot))
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let method_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (pattern, methods, file) in rows {
        println!("{pattern:width$}  {methods:method_width$}  {file}");
    }
    // A listing, not a verdict: broken routes show as `error` (details on stderr) and
    // `rhapi check` is the command that fails on them.
    print_errors(&report);
    Ok(ExitCode::SUCCESS)
}

/// The lines of `rhapi routes` for the job files: `job NAME`, `job` (or `error`), the file
/// and its schedule.
fn job_rows(snapshot: &crate::app::Snapshot) -> Vec<(String, String, String)> {
    let row = |(name, job): (&String, &crate::jobs::Job)| match job {
        crate::jobs::Job::Ready(job) => {
            let schedule = job
                .config
                .schedule_text
                .as_deref()
                .map_or(String::new(), |s| format!("  (schedule: {s})"));
            (
                format!("job {name}"),
                "job".to_string(),
                format!("{}{schedule}", job.script.file),
            )
        }
        crate::jobs::Job::Broken(err) => (
            format!("job {name}"),
            "error".to_string(),
            err.location.file.clone(),
        ),
    };
    snapshot.jobs.iter().map(row).collect()
}

fn check(dir: Option<PathBuf>) -> Result<ExitCode> {
    let (app, report) = load_for_inspection(dir)?;
    crate::tools::lint::print_warnings(&app.dir, &app.snapshot().engine);
    let migrations = crate::db::migrate::check(&app.dir);
    for err in &migrations {
        eprintln!("error: {}", crate::env::redact(&err.to_string()));
    }
    let tls = load_tls(&app).err();
    if let Some(err) = &tls {
        eprintln!("error: {err}");
    }
    if report.errors.is_empty() && migrations.is_empty() && tls.is_none() {
        let hint = if report.routes == 0 {
            " (pages/api holds no .rhai route file yet)"
        } else {
            ""
        };
        let jobs = app.snapshot().jobs.len();
        let jobs = if jobs == 0 {
            String::new()
        } else {
            format!(", {jobs} job(s)")
        };
        println!("ok: {} routes{jobs} compiled{hint}", report.routes);
        return Ok(ExitCode::SUCCESS);
    }
    print_errors(&report);
    eprintln!(
        "{} error(s)",
        report.errors.len() + migrations.len() + usize::from(tls.is_some())
    );
    Ok(ExitCode::FAILURE)
}

fn migrate(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = app_dir(dir)?;
    let env = Arc::new(crate::env::EnvVars::load(&dir, Mode::Start));
    let app = crate::app_context::AppContext::new(&env);
    crate::env::set_served(&app);
    match crate::db::migrate::apply(&dir, &env, &app.databases) {
        Ok(applied) => {
            println!("ok: {} migration(s) applied", applied.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run_tests(dir: Option<PathBuf>, filter: Option<String>, limits: Limits) -> Result<ExitCode> {
    // `rhapi test auth`: one argument that is not a folder is the filter.
    let (dir, filter) = match (dir, filter) {
        (Some(only), None) if !only.is_dir() => (None, Some(only.to_string_lossy().into_owned())),
        other => other,
    };
    let dir = routes_dir(dir)?;
    let options = crate::tools::testing::TestOptions { filter, limits };
    let summary = crate::tools::testing::run(&dir, &options);
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `rhapi bundle`: the app is collected, then loaded from the archive as `start` would
/// load it (a bundle that would not start is never written), then written.
fn bundle(dir: Option<PathBuf>, out: &Path) -> Result<ExitCode> {
    let dir = app_dir(dir)?;
    let archive = crate::tools::bundle::collect(&dir)?;
    for warning in crate::http::public_warnings(&dir, &load_public_settings(&dir)) {
        eprintln!("warning: {warning}");
    }
    crate::bundle::install(archive.clone());
    let (app, report) = App::load(&dir, Layers::defaults(Mode::Start));
    crate::env::set_served(&app.context);
    let migrations = crate::db::migrate::check(&dir);
    if !report.errors.is_empty() || !migrations.is_empty() {
        print_errors(&report);
        for err in &migrations {
            eprintln!("error: {}", crate::env::redact(&err.to_string()));
        }
        eprintln!("rhapi bundle: nothing written; fix the errors (rhapi check shows them) and bundle again");
        return Ok(ExitCode::FAILURE);
    }
    let size = crate::tools::bundle::write(&archive, out)?;
    println!("bundled {}:", dir.display());
    for name in archive.app.keys() {
        println!("  {name}");
    }
    let public = archive.public.len();
    if public > 0 {
        let plural = if public == 1 { "" } else { "s" };
        println!("  {}/ ({public} file{plural})", app.settings.public.dir);
    }
    // A bare name runs only as ./NAME.
    let run = if out.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        format!("./{}", out.display())
    } else {
        out.display().to_string()
    };
    println!(
        "wrote {} ({:.1} MB); run it with: {run} start  (.env and data/ are read from the folder it runs in)",
        out.display(),
        size as f64 / 1_048_576.0,
    );
    Ok(ExitCode::SUCCESS)
}

/// The `[public]` settings of the app in `dir` (the defaults when `rhapi.toml` is wrong: the
/// load reports that).
fn load_public_settings(dir: &Path) -> crate::settings::PublicSettings {
    crate::config::load(dir, None, &crate::settings::Settings::default())
        .map(|s| s.public)
        .unwrap_or_else(|_| crate::settings::Settings::default().public)
}

fn new_app(dir: &Path) -> Result<ExitCode> {
    let files = crate::tools::scaffold::create(dir)?;
    println!("created {}:", dir.display());
    for file in files {
        println!("  {file}");
    }
    println!(
        "next: cd {} && rhapi dev   (and rhapi test to run its tests)",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn types(dir: Option<PathBuf>, out: Option<PathBuf>) -> Result<ExitCode> {
    let dir = routes_dir(dir)?;
    let out = out.unwrap_or_else(|| dir.join(crate::tools::types::DEFAULT_DIR));
    let written = crate::tools::types::write(&dir, &out)
        .with_context(|| format!("cannot write the definition files to '{}'", out.display()))?;
    println!(
        "wrote {} definition files to {}",
        written.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn openapi(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = routes_dir(dir)?;
    let (app, _report) = App::load(&dir, Layers::defaults(Mode::Start));
    crate::env::set_served(&app.context);
    let description = crate::tools::openapi::describe(&dir, &app);
    println!("{}", serde_json::to_string_pretty(&description.document)?);
    for err in &description.broken {
        eprintln!("error: {err} (left out of the description)");
    }
    Ok(if description.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `rhapi lsp`: exit 0 after the client's `shutdown` and `exit`, 1 when the input ends
/// without them.
fn lsp() -> Result<ExitCode> {
    let shut_down = crate::lsp::serve(std::io::stdin(), std::io::stdout())?;
    Ok(if shut_down {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
