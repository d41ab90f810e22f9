//! `rhapi test [DIR] [FILTER]`: runs every `fn test_*()` of the app's `tests/**/*.test.rhai`.
//!
//! Each test file gets the app loaded anew, with its own SQLite database (migrations
//! applied) unless `.env.test` names a `DATABASE_URL`, and the environment of `.env.test`
//! then `.env.example`. `request(method, path, options)` sends a request through the same
//! actix app `rhapi dev` serves ([`crate::http::app`]), in-process: a thread per test file
//! runs that app, and the test's thread waits for each answer, so route scripts never run
//! nested inside the test script.
//!
//! The app is loaded with a test context ([`crate::app_context::AppContext::for_tests`]):
//! `mail::send` fills its outbox (`sent_mail()`), and `set_time(ms)` freezes its clock;
//! both are reset before each test.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, Uri};
use actix_web::test::TestRequest;
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Scope, AST};

use crate::app::App;
use crate::env::EnvVars;
use crate::script::errors::locate;
use crate::script::ScriptResult;
use crate::settings::{Layers, Limits, Mode};
use crate::tools::test_socket::{self, TestSocket};

/// Where test files live in an app, and how their names end.
const TEST_DIR: &str = "tests";
const TEST_SUFFIX: &str = ".test.rhai";
/// Thrown by the test engine's progress callback when a test is over its time budget.
const TEST_TIMEOUT_TOKEN: &str = "rhapi:test-timeout";
/// How long `request()` waits past the route's own budget before calling the app hung.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// What to run, and under which budget.
pub struct TestOptions {
    /// Only tests whose name contains this.
    pub filter: Option<String>,
    /// The budget of each test and of each request it sends (the route budget).
    pub limits: Limits,
}

/// The totals of a run.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

impl Summary {
    /// A run passes when something ran and nothing failed.
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}

/// How one test, or a file that could not run at all, ended.
struct TestOutcome {
    /// `test_name`, or empty for a failure of the whole file.
    name: String,
    took: Duration,
    /// Where (`file:line:col`, or the file) and why it failed.
    failure: Option<(String, String)>,
}

/// Runs the tests of the app in `dir`, printing one line per test and the totals.
pub fn run(dir: &Path, options: &TestOptions) -> Summary {
    crate::logging::set_request_lines(false);
    let files = test_files(dir);
    let started = Instant::now();
    report_route_errors(dir, &options.limits);
    // A shared database (`.env.test`'s DATABASE_URL) means one file at a time.
    let parallel = if EnvVars::test_database_is_shared(dir) {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let next = AtomicUsize::new(0);
    let summary = Mutex::new(Summary::default());
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(files.len()) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(file) = files.get(index) else { break };
                let outcomes = run_file(dir, file, index, options);
                let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner());
                print_outcomes(&crate::routes::display_path(dir, file), &outcomes);
                for outcome in &outcomes {
                    if outcome.failure.is_some() {
                        summary.failed += 1;
                    } else {
                        summary.passed += 1;
                    }
                }
            });
        }
    });
    let summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    crate::logging::flush();
    if files.is_empty() {
        println!(
            "no test files: put `fn test_...() {{ }}` functions in {TEST_DIR}/**/*{TEST_SUFFIX}"
        );
    } else if summary.passed + summary.failed == 0 {
        match &options.filter {
            Some(filter) => println!("no test name contains '{filter}'"),
            None => println!("no `fn test_...()` functions in {TEST_DIR}/**/*{TEST_SUFFIX}"),
        }
    }
    println!(
        "{} passed, {} failed ({:.2}s)",
        summary.passed,
        summary.failed,
        started.elapsed().as_secs_f64()
    );
    summary
}

/// `DIR/tests/**/*.test.rhai`, sorted.
fn test_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(TEST_SUFFIX))
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir.join(TEST_DIR), &mut files);
    files.sort();
    files
}

/// `dev`'s settings with the test budget under `rhapi.toml` (which, as before, wins).
fn test_layers(limits: &Limits) -> Layers {
    let mut layers = Layers::defaults(Mode::Dev);
    layers.base.server = layers.base.server.with_limits(limits);
    layers
}

/// Routes that do not load are said once, before the tests (their requests answer 500).
fn report_route_errors(dir: &Path, limits: &Limits) {
    let env = Arc::new(EnvVars::for_tests(dir, "sqlite::memory-unused"));
    let (_app, report) = App::load_with_env(dir, test_layers(limits), Arc::clone(&env));
    for err in &report.errors {
        eprintln!("warning: {}", env.redact(&err.to_string()));
    }
}

fn print_outcomes(file: &str, outcomes: &[TestOutcome]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for outcome in outcomes {
        let name = if outcome.name.is_empty() {
            String::new()
        } else {
            format!("  {}", outcome.name)
        };
        let _ = match &outcome.failure {
            None => writeln!(
                out,
                "ok    {file}{name} ({:.1}ms)",
                outcome.took.as_secs_f64() * 1000.0
            ),
            Some((location, reason)) => writeln!(out, "FAIL  {location}{name}: {reason}"),
        };
    }
    let _ = out.flush();
}

/// A failure of the whole file (it does not compile, its database cannot be set up).
fn file_failure(location: impl ToString, reason: String) -> Vec<TestOutcome> {
    vec![TestOutcome {
        name: String::new(),
        took: Duration::ZERO,
        failure: Some((location.to_string(), reason)),
    }]
}

/// Runs the tests of one file against a fresh copy of the app.
fn run_file(dir: &Path, file: &Path, index: usize, options: &TestOptions) -> Vec<TestOutcome> {
    let display = crate::routes::display_path(dir, file);
    let source = match std::fs::read_to_string(file) {
        Ok(source) => source,
        Err(err) => return file_failure(&display, format!("cannot read the file: {err}")),
    };
    let scratch = std::env::temp_dir().join(format!(
        "rhapi-test-{}-{index}-{:08x}",
        std::process::id(),
        random_u32()
    ));
    if let Err(err) = std::fs::create_dir_all(&scratch) {
        return file_failure(&display, format!("cannot create a scratch folder: {err}"));
    }
    let database_url = format!("sqlite:{}", scratch.join("app.db").display());
    let env = Arc::new(EnvVars::for_tests(dir, &database_url));
    let outcomes = run_file_in(dir, file, &display, &source, env, options);
    let _ = std::fs::remove_dir_all(&scratch);
    outcomes
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

fn run_file_in(
    dir: &Path,
    file: &Path,
    display: &str,
    source: &str,
    env: Arc<EnvVars>,
    options: &TestOptions,
) -> Vec<TestOutcome> {
    let limits = &options.limits;
    // What the tests (and the migrations) log is redacted of this file's secrets.
    let _secrets = crate::script::context::EnvGuard::enter(&env);
    let context = crate::app_context::AppContext::for_tests(&env);
    let (app, _report) =
        App::load_with_context(dir, test_layers(limits), Arc::clone(&env), context);
    let engine = test_engine(dir, limits, &env, &app.context);
    crate::script::modules::start_loading(file);
    let compiled = engine.compile_into_self_contained(&Scope::new(), source);
    let _ = crate::script::modules::finish_loading();
    let mut ast = match compiled {
        Ok(ast) => ast,
        Err(err) => {
            let located = locate(&err, display);
            return file_failure(located.location, located.message);
        }
    };
    ast.set_source(display);
    let tests = test_names(&ast, options.filter.as_deref());
    if tests.is_empty() {
        return Vec::new();
    }

    if let Err(err) = crate::db::migrate::apply(dir, &env, &app.context.databases) {
        return file_failure(display, format!("migrations: {err}"));
    }
    let context = Arc::clone(&app.context);
    let server = crate::http::Shared::new(Arc::new(app));
    let harness = match Harness::start(server) {
        Ok(harness) => harness,
        Err(err) => return file_failure(display, format!("cannot start the app: {err}")),
    };
    let answer_wait = limits.timeout + ANSWER_GRACE;
    HARNESS.with(|h| *h.borrow_mut() = Some((harness.jobs.clone(), answer_wait)));

    let outcomes = tests
        .into_iter()
        .map(|name| {
            // Each test starts with the clock running and no mail sent.
            context.clock.freeze(None);
            if let Some(outbox) = &context.outbox {
                outbox.clear();
            }
            run_test(&engine, &ast, display, &name, limits, &env)
        })
        .collect();

    HARNESS.with(|h| *h.borrow_mut() = None);
    harness.stop();
    outcomes
}

/// The `fn test_*()` of `ast` (no parameters), in the order they appear, filtered.
fn test_names(ast: &AST, filter: Option<&str>) -> Vec<String> {
    let mut tests: Vec<(usize, String)> = ast
        .iter_fn_def()
        .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
        .filter(|f| filter.is_none_or(|filter| f.name.contains(filter)))
        .map(|f| {
            (
                f.body.start_position().line().unwrap_or(0),
                f.name.to_string(),
            )
        })
        .collect();
    tests.sort();
    tests.into_iter().map(|(_, name)| name).collect()
}

fn run_test(
    engine: &Engine,
    ast: &AST,
    display: &str,
    name: &str,
    limits: &Limits,
    env: &EnvVars,
) -> TestOutcome {
    let started = Instant::now();
    DEADLINE.with(|d| d.set(Some(started + limits.timeout)));
    let options = crate::script::run::call_options();
    let result = engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), ast, name, ());
    DEADLINE.with(|d| d.set(None));
    let failure = result.err().map(|err| {
        let (mut location, message) = failure_message(&err, display, limits, env);
        // Budget errors come without a position: point at the test.
        if location.line.is_none() {
            if let Some(f) = ast.iter_fn_def().find(|f| f.name == name) {
                location.line = f.body.start_position().line();
            }
        }
        (location.to_string(), message)
    });
    TestOutcome {
        name: name.to_string(),
        took: started.elapsed(),
        failure,
    }
}

/// Where a failed test failed, and why; a test over its budget says 504, as the route
/// would have answered.
fn failure_message(
    err: &EvalAltResult,
    display: &str,
    limits: &Limits,
    env: &EnvVars,
) -> (crate::error::Location, String) {
    let located = locate(err, display);
    let message = match err.unwrap_inner() {
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_immutable_string().unwrap_or_default() == TEST_TIMEOUT_TOKEN =>
        {
            format!(
                "timed out (504): over the {:?} time budget of a test, the route budget (--timeout)",
                limits.timeout
            )
        }
        EvalAltResult::ErrorTooManyOperations(_) => format!(
            "timed out (504): over the operations budget of a test (--max-operations {})",
            limits.max_operations
        ),
        _ => env.redact(&located.message),
    };
    (located.location, message)
}

thread_local! {
    /// The running test's deadline (read by the test engine's progress callback).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The app of the file whose tests run on this thread, and how long to wait for it.
    static HARNESS: RefCell<Option<(tokio::sync::mpsc::UnboundedSender<Ask>, Duration)>> =
        const { RefCell::new(None) };
}

/// The engine test files run on: the routes' engine (batteries, `env::`, `print`), the test
/// functions, and a progress callback that enforces the test's own budget.
fn test_engine(
    dir: &Path,
    limits: &Limits,
    env: &Arc<EnvVars>,
    app: &Arc<crate::app_context::AppContext>,
) -> Engine {
    let mut engine = crate::script::engine::build(dir, limits, env, app);
    engine.on_progress(|ops| {
        if ops & 0xFF != 0 {
            return None;
        }
        let over = DEADLINE.with(|d| d.get().is_some_and(|d| Instant::now() >= d));
        over.then(|| Dynamic::from(TEST_TIMEOUT_TOKEN))
    });
    register_asserts(&mut engine);
    register_app_controls(&mut engine, app);
    engine.register_fn(
        "request",
        |ctx: NativeCallContext, method: &str, path: &str| request(&ctx, method, path, Map::new()),
    );
    engine.register_fn("run_jobs", |ctx: NativeCallContext| run_jobs(&ctx));
    engine.register_fn("socket", |ctx: NativeCallContext, path: &str| {
        socket(&ctx, path, Map::new())
    });
    engine.register_fn(
        "socket",
        |ctx: NativeCallContext, path: &str, options: Map| socket(&ctx, path, options),
    );
    TestSocket::register(&mut engine);
    engine.register_fn(
        "request",
        |ctx: NativeCallContext, method: &str, path: &str, options: Map| {
            request(&ctx, method, path, options)
        },
    );
    engine
}

/// `set_time(ms)` / `set_time(())`: freezes the app's clock at `ms` (or lets it run);
/// `sent_mail()`: the maps given to `mail::send` since the test began.
fn register_app_controls(engine: &mut Engine, app: &Arc<crate::app_context::AppContext>) {
    let context = Arc::clone(app);
    engine.register_fn(
        "set_time",
        move |ctx: NativeCallContext, ms: i64| -> ScriptResult<()> {
            if !(crate::batteries::time::MIN_MS..=crate::batteries::time::MAX_MS).contains(&ms) {
                return Err(assertion(
                    &ctx,
                    format!("set_time: {ms} is out of range (years 0000 to 9999)"),
                ));
            }
            context.clock.freeze(Some(ms));
            Ok(())
        },
    );
    let context = Arc::clone(app);
    engine.register_fn("set_time", move |_: ()| context.clock.freeze(None));
    let context = Arc::clone(app);
    engine.register_fn("sent_mail", move || {
        context
            .outbox
            .as_ref()
            .map(|outbox| outbox.sent())
            .unwrap_or_default()
    });
}

/// A failed assertion: an error at the position of the call.
fn assertion(ctx: &NativeCallContext, message: String) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into(), ctx.call_position()).into()
}

/// `a == b` as Rhai sees it (`1 == 1.0`, maps and arrays by value); values of types without
/// `==` compare by their printed form and type.
fn equal(ctx: &NativeCallContext, a: &Dynamic, b: &Dynamic) -> bool {
    match ctx.call_native_fn::<bool>("==", (a.clone(), b.clone())) {
        Ok(equal) => equal,
        Err(_) => a.type_name() == b.type_name() && format!("{a:?}") == format!("{b:?}"),
    }
}

fn register_asserts(engine: &mut Engine) {
    engine.register_fn(
        "assert",
        |ctx: NativeCallContext, cond: bool| -> ScriptResult<()> {
            if cond {
                Ok(())
            } else {
                Err(assertion(&ctx, "assertion failed".into()))
            }
        },
    );
    engine.register_fn(
        "assert",
        |ctx: NativeCallContext, cond: bool, message: Dynamic| -> ScriptResult<()> {
            if cond {
                Ok(())
            } else {
                let message = message
                    .clone()
                    .into_string()
                    .unwrap_or_else(|_| message.to_string());
                Err(assertion(&ctx, format!("assertion failed: {message}")))
            }
        },
    );
    // `assert_eq(a, b)`, `assert_eq(a, b, message)`, and the same for `assert_ne`.
    fn compare(
        ctx: &NativeCallContext,
        want_equal: bool,
        left: &Dynamic,
        right: &Dynamic,
        message: Option<&Dynamic>,
    ) -> ScriptResult<()> {
        if equal(ctx, left, right) == want_equal {
            return Ok(());
        }
        let name = if want_equal { "assert_eq" } else { "assert_ne" };
        let note = message
            .map(|m| {
                format!(
                    ": {}",
                    m.clone().into_string().unwrap_or_else(|_| m.to_string())
                )
            })
            .unwrap_or_default();
        let both = if want_equal { "" } else { " (both equal)" };
        Err(assertion(
            ctx,
            format!("{name} failed{both}{note}\n      left:  {left:?}\n      right: {right:?}"),
        ))
    }
    for (name, want_equal) in [("assert_eq", true), ("assert_ne", false)] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, left: Dynamic, right: Dynamic| {
                compare(&ctx, want_equal, &left, &right, None)
            },
        );
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, left: Dynamic, right: Dynamic, message: Dynamic| {
                compare(&ctx, want_equal, &left, &right, Some(&message))
            },
        );
    }
}

/// A request as the test sent it, checked and ready to cross to the app's thread.
struct Outgoing {
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Vec<u8>>,
}

/// The app's answer.
struct Incoming {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Exchange = (Outgoing, mpsc::Sender<Result<Incoming, String>>);

/// What a test asks of the app's thread.
enum Ask {
    /// A request, answered on the sender.
    Request(Exchange),
    /// `run_jobs()`: how many jobs ran, or why they could not.
    RunJobs(mpsc::Sender<Result<usize, String>>),
    /// `socket(path)`: the test's end of the socket, or the answer that refused it.
    Socket(Outgoing, mpsc::Sender<Result<TestSocket, String>>),
}

/// The thread that runs one test file's copy of the app.
struct Harness {
    jobs: tokio::sync::mpsc::UnboundedSender<Ask>,
    thread: std::thread::JoinHandle<()>,
}

impl Harness {
    fn start(server: crate::http::Shared) -> std::io::Result<Harness> {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Ask>();
        let served = Arc::clone(&server.app);
        let thread = std::thread::Builder::new()
            .name("rhapi-test-app".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = crate::http::app(actix_web::web::Data::new(server));
                    let service = actix_web::test::init_service(app).await;
                    while let Some(ask) = queue.recv().await {
                        let (outgoing, reply) = match ask {
                            Ask::Request(exchange) => exchange,
                            Ask::RunJobs(reply) => {
                                let ran = crate::jobs::runner::run_due(&served).await;
                                let _ = reply
                                    .send(ran.map_err(|e| served.context.redact(&e.to_string())));
                                continue;
                            }
                            Ask::Socket(outgoing, reply) => {
                                let _ = reply.send(open_socket(&service, outgoing).await);
                                continue;
                            }
                        };
                        let request = test_request(outgoing).to_request();
                        let result = actix_web::test::try_call_service(&service, request).await;
                        let answer = read_answer(result).await;
                        // `request()` returns when the whole run has ended, code after
                        // the response included (its run goes on detached).
                        while crate::executor::detached_runs() > 0 {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let _ = reply.send(answer);
                    }
                });
            })?;
        Ok(Harness { jobs, thread })
    }

    fn stop(self) {
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

/// Sends the upgrade `outgoing` describes; on 101, starts the socket's client side on
/// this thread and hands the test its end; else the refusal, as `request()` shows it.
async fn open_socket<S, B>(service: &S, outgoing: Outgoing) -> Result<TestSocket, String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: MessageBody + 'static,
{
    let (frames, frames_in) = tokio::sync::mpsc::unbounded_channel();
    let request = test_socket::upgrade_request(&outgoing.uri, outgoing.headers, frames_in);
    let response = match actix_web::test::try_call_service(service, request).await {
        Ok(response) if response.status() == actix_web::http::StatusCode::SWITCHING_PROTOCOLS => {
            response.map_into_boxed_body()
        }
        other => {
            let refused = read_answer(other).await?;
            return Err(format!(
                "the upgrade was refused: {} {}",
                refused.status,
                String::from_utf8_lossy(&refused.body)
            ));
        }
    };
    let (to_app, from_test) = tokio::sync::mpsc::unbounded_channel();
    let (to_test, from_app) = mpsc::channel();
    actix_web::rt::spawn(test_socket::pump(
        response.into_body(),
        frames,
        from_test,
        to_test,
    ));
    Ok(TestSocket::new(to_app, from_app, ANSWER_GRACE))
}

/// The request `outgoing` describes, from a client at 127.0.0.1.
fn test_request(outgoing: Outgoing) -> TestRequest {
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let mut request = TestRequest::default()
        .method(outgoing.method)
        .uri(&outgoing.uri)
        .peer_addr(peer);
    for header in outgoing.headers {
        request = request.append_header(header);
    }
    if let Some(body) = outgoing.body {
        request = request.set_payload(body);
    }
    request
}

/// The whole answer of the app (an error the app returned becomes its response, as the
/// server would send it).
async fn read_answer<B: MessageBody + 'static>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<Incoming, String> {
    let response = match result {
        Ok(response) => response.map_into_boxed_body(),
        Err(err) => ServiceResponse::new(
            TestRequest::default().to_http_request(),
            err.error_response(),
        ),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .map_err(|_| "the response body could not be read".to_string())?;
    Ok(Incoming {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// `request(method, path)`, `request(method, path, #{ headers, body, cookies })`.
fn request(ctx: &NativeCallContext, method: &str, path: &str, options: Map) -> ScriptResult<Map> {
    let fail = |message: String| -> Box<EvalAltResult> {
        EvalAltResult::ErrorRuntime(format!("request: {message}").into(), ctx.call_position())
            .into()
    };
    let outgoing = outgoing(method, path, options).map_err(fail)?;
    let (jobs, wait) = HARNESS
        .with(|h| h.borrow().clone())
        .ok_or_else(|| fail("only tests can send requests".into()))?;
    let (reply, answer) = mpsc::channel();
    jobs.send(Ask::Request((outgoing, reply)))
        .map_err(|_| fail("the app has stopped".into()))?;
    let incoming = match answer.recv_timeout(wait) {
        Ok(Ok(incoming)) => incoming,
        Ok(Err(message)) => return Err(fail(message)),
        Err(_) => return Err(fail(format!("no answer within {wait:?}"))),
    };
    Ok(response_map(incoming))
}

/// `socket(path)`, `socket(path, #{ headers, cookies })`: a WebSocket to the app (see
/// [`test_socket`]); an upgrade the app refuses is an error naming its answer.
fn socket(ctx: &NativeCallContext, path: &str, options: Map) -> ScriptResult<TestSocket> {
    let fail = |message: String| -> Box<EvalAltResult> {
        EvalAltResult::ErrorRuntime(format!("socket: {message}").into(), ctx.call_position()).into()
    };
    let outgoing = outgoing("GET", path, options).map_err(fail)?;
    let (jobs, wait) = HARNESS
        .with(|h| h.borrow().clone())
        .ok_or_else(|| fail("only tests can open sockets".into()))?;
    let (reply, answer) = mpsc::channel();
    jobs.send(Ask::Socket(outgoing, reply))
        .map_err(|_| fail("the app has stopped".into()))?;
    match answer.recv_timeout(wait) {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(message)) => Err(fail(message)),
        Err(_) => Err(fail(format!("no answer within {wait:?}"))),
    }
}

/// `run_jobs()`: runs every job due at the app's `time::now()`, in the app, until none is
/// due; returns how many ran.
fn run_jobs(ctx: &NativeCallContext) -> ScriptResult<i64> {
    let fail = |message: String| -> Box<EvalAltResult> {
        EvalAltResult::ErrorRuntime(format!("run_jobs: {message}").into(), ctx.call_position())
            .into()
    };
    let (jobs, wait) = HARNESS
        .with(|h| h.borrow().clone())
        .ok_or_else(|| fail("only tests can run jobs".into()))?;
    let (reply, answer) = mpsc::channel();
    jobs.send(Ask::RunJobs(reply))
        .map_err(|_| fail("the app has stopped".into()))?;
    match answer.recv_timeout(wait.saturating_mul(crate::jobs::runner::MOST_DUE_RUNS as u32)) {
        Ok(Ok(ran)) => Ok(i64::try_from(ran).unwrap_or(i64::MAX)),
        Ok(Err(message)) => Err(fail(message)),
        Err(_) => Err(fail("the jobs did not end".into())),
    }
}

/// Checks a request's parts and encodes its body (a map or an array as JSON).
fn outgoing(method: &str, path: &str, options: Map) -> Result<Outgoing, String> {
    let method = Method::from_str(&method.to_ascii_uppercase())
        .map_err(|_| format!("'{method}' is not an HTTP method"))?;
    if !path.starts_with('/') || Uri::from_str(path).is_err() {
        return Err(format!(
            "'{path}' is not a path (it must start with / and be URL-encoded)"
        ));
    }
    let mut headers = OutgoingHeaders::default();
    let mut body = None;
    for (key, value) in options {
        match key.as_str() {
            "headers" => {
                let map = value
                    .try_cast::<Map>()
                    .ok_or("headers must be a map of name: value")?;
                for (name, value) in map {
                    headers.add(&name, &text_of(&value))?;
                }
            }
            "cookies" => {
                let map = value
                    .try_cast::<Map>()
                    .ok_or("cookies must be a map of name: value")?;
                let pairs: Vec<String> = map
                    .iter()
                    .map(|(name, value)| format!("{name}={}", text_of(value)))
                    .collect();
                if !pairs.is_empty() {
                    headers.add("cookie", &pairs.join("; "))?;
                }
            }
            "body" => body = Some(value),
            other => {
                return Err(format!(
                    "unknown option '{other}' (there are headers, body, cookies)"
                ))
            }
        }
    }
    let body = body.map(|value| headers.body(value)).transpose()?;
    Ok(Outgoing {
        method,
        uri: path.to_string(),
        headers: headers.list,
        body,
    })
}

/// A string as it is, anything else as it prints.
fn text_of(value: &Dynamic) -> String {
    value
        .clone()
        .into_string()
        .unwrap_or_else(|_| value.to_string())
}

/// The headers of a test request, and whether one of them is its content type.
#[derive(Default)]
struct OutgoingHeaders {
    list: Vec<(HeaderName, HeaderValue)>,
    has_content_type: bool,
}

impl OutgoingHeaders {
    fn add(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name = HeaderName::from_str(name).map_err(|_| format!("bad header name '{name}'"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("bad value for the header '{name}'"))?;
        self.has_content_type |= name == http::header::CONTENT_TYPE;
        self.list.push((name, value));
        Ok(())
    }

    /// The body's bytes: a blob as it is, a string as UTF-8, anything else as JSON, with
    /// the content type that says so unless the test set one.
    fn body(&mut self, value: Dynamic) -> Result<Vec<u8>, String> {
        let (bytes, content_type) = if value.is_blob() {
            let bytes = value.try_cast::<rhai::Blob>().unwrap_or_default();
            (bytes, "application/octet-stream")
        } else if value.is_string() {
            let text = value.into_string().unwrap_or_default();
            (text.into_bytes(), "text/plain; charset=utf-8")
        } else {
            let json = serde_json::to_vec(&value).map_err(|err| format!("body: {err}"))?;
            (json, "application/json")
        };
        if !self.has_content_type {
            self.add("content-type", content_type)?;
        }
        Ok(bytes)
    }
}

/// `#{ status, headers, body, json, cookies }`.
fn response_map(incoming: Incoming) -> Map {
    let mut headers = Map::new();
    let mut cookies = Map::new();
    for (name, value) in &incoming.headers {
        if name == "set-cookie" {
            if let Some((cookie, rest)) = value.split_once('=') {
                let raw = rest.split(';').next().unwrap_or_default();
                let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
                cookies.insert(cookie.trim().into(), decoded.into_owned().into());
            }
        }
        let joined = match headers.get(name.as_str()) {
            Some(previous) => format!("{previous}, {value}"),
            None => value.clone(),
        };
        headers.insert(name.as_str().into(), joined.into());
    }
    let json = serde_json::from_slice::<serde_json::Value>(&incoming.body)
        .ok()
        .and_then(|value| rhai::serde::to_dynamic(value).ok())
        .unwrap_or(Dynamic::UNIT);
    let body = match String::from_utf8(incoming.body) {
        Ok(text) => Dynamic::from(text),
        Err(err) => Dynamic::from_blob(err.into_bytes()),
    };
    let mut map = Map::new();
    map.insert(
        "status".into(),
        Dynamic::from_int(i64::from(incoming.status)),
    );
    map.insert("headers".into(), headers.into());
    map.insert("cookies".into(), cookies.into());
    map.insert("body".into(), body);
    map.insert("json".into(), json);
    map
}
