//! Running one call of a route's function, and the return-value rules: what a returned
//! value, a `throw` or an error answers (see docs/reference.md, "Handlers").

use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::header::{HeaderName, HeaderValue};
use rhai::Caches;
use rhai::{CallFnOptions, Dynamic, Engine, Scope};

use super::compile::RouteScript;
use super::context::{RunGuard, Saved};
use super::errors::{classify, Failure};
use super::methods::{self, Target};
use super::res::{encode_value, Res, ScriptResponse};
use super::stream::{Stream, CLIENT_CLOSED, SHUTTING_DOWN};
use crate::env::{EnvMap, EnvVars};
use crate::error::ScriptError;
use crate::executor::Ran;

/// How a run ended.
pub enum Reply {
    /// A response to deliver.
    Sent(ScriptResponse),
    /// `handler` returned without answering: 405.
    NotAllowed(Option<String>),
    /// `throw #{ status, ... }`, with the headers and cookies the run set before it
    /// (`Retry-After`, `WWW-Authenticate`).
    Thrown {
        status: u16,
        body: Vec<u8>,
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// Over budget: 504.
    Timeout(ScriptError),
    /// Runtime error: 500.
    Failed(ScriptError),
    /// The response went out as a stream; nothing more to send.
    Streamed,
    /// No room for another run (no stack could be allocated): 503.
    Busy,
    /// A middleware did not answer: run the next one, or the route.
    Passed(super::middleware::Passed),
}

/// One call of a route's function: everything a run needs but `req`, which it takes by
/// value.
pub struct Call {
    pub engine: Arc<Engine>,
    pub script: Arc<RouteScript>,
    pub target: Target,
    pub env: EnvMap,
    pub deadline: Instant,
    /// Bytes the run may allocate and keep.
    pub max_memory: usize,
    /// Kept until the run has ended, its detached part included (the request's place in
    /// `--max-in-flight`: code after the response still counts).
    pub hold: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// The id of the request the call serves (its log lines carry it); `None` for a job.
    pub request_id: Option<rhai::ImmutableString>,
}

/// How a run of a route's (or a middleware's) function ended, for the HTTP side.
pub enum Outcome {
    /// A whole response (or an error) to deliver.
    Reply(Reply),
    /// A response streamed while the script goes on.
    Stream(Stream),
}

impl Call {
    /// Runs the call with `req` on a coroutine of this worker ([`crate::executor`]); returns
    /// when it ends, or when it starts streaming its response (it goes on, detached).
    pub async fn start(mut self, req: Dynamic) -> Outcome {
        let file = Arc::clone(&self.script.file);
        let env = Arc::clone(&self.env.0);
        let hold = self.hold.take();
        let request_id = self.request_id.clone();
        let after = move |reply| {
            // The detached part ends outside the request's handler: its lines need the id.
            let _scope = request_id.as_ref().map(crate::logging::RequestScope::enter);
            after_handed_out(reply, &env);
            drop(hold);
        };
        let ran = crate::executor::run::<Saved, _>(self.deadline, move || self.run(req), after);
        match ran.await {
            Ran::Finished(reply) => Outcome::Reply(reply),
            Ran::HandedOut(handed) => match handed.downcast::<Stream>() {
                Ok(stream) => Outcome::Stream(*stream),
                Err(handed) => match handed.downcast::<Reply>() {
                    Ok(reply) => Outcome::Reply(*reply),
                    Err(_) => unreachable!("a script run hands out its stream or its reply"),
                },
            },
            Ran::NoRoom => Outcome::Reply(Reply::Busy),
            Ran::Panicked => Outcome::Reply(Reply::Failed(panicked(&file))),
        }
    }

    /// This call's run begins on this thread: its file, environment, deadline, memory
    /// budget and request id, until the guard drops.
    fn enter(&self) -> RunGuard {
        RunGuard::enter(
            self.script.file.clone(),
            &self.env.0,
            self.deadline,
            self.max_memory,
            self.request_id.clone(),
        )
    }

    /// Runs the call on this thread (in its coroutine) with `req`.
    pub fn run(&self, req: Dynamic) -> Reply {
        let _guard = self.enter();
        let res = Res::default();
        // Only the parameters the function declares: `fn GET(req, res)` never sees `env`.
        let mut args = Vec::with_capacity(self.target.arity);
        if self.target.arity > 0 {
            args.push(req);
        }
        if self.target.arity > 1 {
            args.push(Dynamic::from(res.clone()));
        }
        if self.target.arity > 2 {
            args.push(Dynamic::from(self.env.clone()));
        }
        let mut scope = Scope::new();
        let options = call_options();
        let mut caches = self.script.caches.take(&self.engine);
        let result = self.engine.call_fn_with_caches::<Dynamic>(
            options,
            &mut scope,
            &self.script.ast,
            self.target.function,
            args,
            &mut caches,
        );
        self.script.caches.give_back(&self.engine, caches);
        match result {
            Ok(value) => self.returned(value, &res),
            Err(err) => self.failed(&err, &res),
        }
    }

    /// Runs the call as a job's `fn run` on this thread (in its coroutine), with the job's
    /// payload (its JSON text) and `env`: `Ok` when it returned, else what ended it (a
    /// throw, an error or the budget), located in the job file.
    pub fn run_job(&self, payload: &str) -> Result<(), ScriptError> {
        self.run_for_effect(|| {
            let payload: Dynamic = serde_json::from_str(payload).map_err(|err| {
                ScriptError::in_file(&self.script.file, format!("the payload is not JSON: {err}"))
            })?;
            Ok(vec![payload])
        })
    }

    /// Runs the call as a WebSocket event on this thread (in its coroutine) with `args`
    /// (`ws` and the event's values; `env` follows when the function declares it): `Ok`
    /// when it returned, else what ended it, located in the route file.
    pub fn run_event(&self, args: Vec<Dynamic>) -> Result<(), ScriptError> {
        self.run_for_effect(|| Ok(args))
    }

    /// Runs a function whose value is not used (a job, an event) with the arguments
    /// `args` makes inside the run's budget, then `env`, cut to the function's arity.
    fn run_for_effect(
        &self,
        args: impl FnOnce() -> Result<Vec<Dynamic>, ScriptError>,
    ) -> Result<(), ScriptError> {
        let _guard = self.enter();
        let mut args = args()?;
        args.push(Dynamic::from(self.env.clone()));
        args.truncate(self.target.arity);
        let mut caches = self.script.caches.take(&self.engine);
        let result = self.engine.call_fn_with_caches::<Dynamic>(
            call_options(),
            &mut Scope::new(),
            &self.script.ast,
            self.target.function,
            args,
            &mut caches,
        );
        self.script.caches.give_back(&self.engine, caches);
        let Err(err) = result else {
            return Ok(());
        };
        Err(match classify(&err, &self.script.file) {
            Failure::Timeout(e) | Failure::Error(e) => self.with_hint(self.with_position(e)),
            Failure::Thrown { body, .. } => ScriptError::in_file(
                &self.script.file,
                format!("threw {}", String::from_utf8_lossy(&body)),
            ),
        })
    }

    fn returned(&self, value: Dynamic, res: &Res) -> Reply {
        if res.is_streaming() {
            return Reply::Streamed;
        }
        if self.target.middleware {
            return super::middleware::reply(value, res);
        }
        if let Some(sent) = res.take() {
            return Reply::Sent(sent);
        }
        if value.is_unit() {
            return if self.target.handler {
                Reply::NotAllowed(methods::allow(&self.script))
            } else {
                Reply::Sent(ScriptResponse {
                    status: 204,
                    ..ScriptResponse::default()
                })
            };
        }
        match encode_value(value) {
            Ok((body, content_type)) => Reply::Sent(ScriptResponse {
                status: 200,
                body,
                content_type,
                etag: true,
                ..ScriptResponse::default()
            }),
            Err(err) => self.failed(&err, res),
        }
    }

    /// Rhai drops the position of limit errors (sizes, stack depth) on the way out of
    /// function calls: point at the function that was called, and say so.
    fn with_position(&self, mut err: ScriptError) -> ScriptError {
        if err.location.line.is_none() && err.location.file == *self.script.file {
            if let Some((line, column)) = self.script.function_position(self.target.function) {
                err.location.line = Some(line);
                err.location.column = Some(column);
                err.message = format!("{} (in fn {})", err.message, self.target.function);
            }
        }
        err
    }

    fn failed(&self, err: &rhai::EvalAltResult, res: &Res) -> Reply {
        let failure = classify(err, &self.script.file);
        if res.is_streaming() {
            return match failure {
                // The client went away, or the server is stopping: the run ends quietly.
                Failure::Error(e) if e.message == CLIENT_CLOSED || e.message == SHUTTING_DOWN => {
                    Reply::Streamed
                }
                Failure::Error(e) => Reply::Failed(self.with_hint(self.with_position(e))),
                Failure::Timeout(e) => Reply::Timeout(e),
                Failure::Thrown { .. } => Reply::Streamed,
            };
        }
        // A response already sent is the one delivered; the error is only logged.
        if let Some(sent) = res.take_sent() {
            if let Failure::Error(e) | Failure::Timeout(e) = &failure {
                tracing::error!(
                    "{} (after the response was sent)",
                    crate::logging::clean(&e.to_string())
                );
            }
            return Reply::Sent(sent);
        }
        match failure {
            Failure::Timeout(e) => Reply::Timeout(e),
            Failure::Thrown { status, body } => Reply::Thrown {
                status,
                body,
                headers: res.take().map(|shaped| shaped.headers).unwrap_or_default(),
            },
            Failure::Error(e) => Reply::Failed(self.with_hint(self.with_position(e))),
        }
    }

    /// The hint of a run-time error that is a JavaScript habit; the top-level constants
    /// are this route's (a function reading one without `global::`).
    fn with_hint(&self, mut err: ScriptError) -> ScriptError {
        let consts = if err.location.file == *self.script.file {
            top_level_constants(&self.script.ast)
        } else {
            Vec::new()
        };
        err.hint = crate::analysis::hints::for_runtime_error(&err.message, &consts);
        err
    }
}

/// The names of the `const`s at the top level of `ast`.
fn top_level_constants(ast: &rhai::AST) -> Vec<String> {
    ast.statements()
        .iter()
        .filter_map(|stmt| match stmt {
            rhai::Stmt::Var(var, flags, _) if flags.contains(rhai::ASTFlags::CONSTANT) => {
                Some(var.0.name.to_string())
            }
            _ => None,
        })
        .collect()
}

/// The message of a run that panicked.
const PANICKED: &str = "internal error while running the script (a panic; see the server log)";

/// The error of a run that panicked: a 500, never a dead worker.
fn panicked(file: &str) -> ScriptError {
    ScriptError::in_file(file, PANICKED)
}

/// Whether `err` is the error of a run that panicked (rhapi's fault, not the script's).
pub fn is_panic(err: &ScriptError) -> bool {
    err.message == PANICKED && err.location.line.is_none()
}

/// What a run ended with after it handed its response out (a stream, or a response sent
/// before the script's end): only errors matter, and they are logged, never sent.
fn after_handed_out(reply: Option<Reply>, env: &EnvVars) {
    let err = match reply {
        Some(Reply::Failed(err) | Reply::Timeout(err)) => err.to_string(),
        Some(_) => return,
        None => "internal error (a panic; see the server log)".into(),
    };
    tracing::error!(
        "{} (after the response was sent)",
        crate::logging::escape(&env.redact(&err))
    );
}

/// Rhai's function-resolution caches of one route script, kept from one run to the next so
/// that each run does not look up every function it calls again (`call_fn_with_caches`,
/// vendor/rhai/PATCHES.md). A run takes a set and gives it back when it ends; runs that are
/// suspended at the same time each hold their own. A set is only valid for the engine it
/// was filled with (the engine is rebuilt when limits or `.env` change).
#[derive(Default)]
pub struct KeptCaches(Mutex<Vec<(Arc<Engine>, Caches)>>);

/// Sets kept per script: more runs of one script at once than this start with empty caches.
const KEPT_CACHES: usize = 64;

impl KeptCaches {
    fn take(&self, engine: &Arc<Engine>) -> Caches {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match kept.pop() {
            Some((filled_by, caches)) if Arc::ptr_eq(&filled_by, engine) => caches,
            _ => Caches::new(),
        }
    }

    fn give_back(&self, engine: &Arc<Engine>, caches: Caches) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT_CACHES {
            kept.push((Arc::clone(engine), caches));
        }
    }
}

/// How a script function is called, by the server and by `rhapi test`: the file's top
/// level runs first (its `const`s and `import`s), and the scope is rewound after the call.
/// The scope is dropped right after anyway; rewinding lets the function's last expression
/// move its locals out instead of cloning them (vendor/rhai/PATCHES.md, patch 5).
pub fn call_options() -> CallFnOptions<'static> {
    CallFnOptions::new().eval_ast(true).rewind_scope(true)
}

#[cfg(test)]
mod tests {
    use rhai::module_resolvers::StaticModuleResolver;
    use rhai::{Caches, Dynamic, Engine, Module, Scope};

    fn call(engine: &Engine, ast: &rhai::AST, name: &str, caches: &mut Caches) -> Option<i64> {
        let options = super::call_options();
        engine
            .call_fn_with_caches::<Dynamic>(options, &mut Scope::new(), ast, name, (), caches)
            .ok()
            .and_then(|v| v.as_int().ok())
    }

    /// Kept caches give what fresh ones give: a function seen through an imported module in
    /// one call is not found by a plain call in the next (as on stock Rhai).
    #[test]
    fn kept_caches_do_not_leak_an_imported_namespace() {
        let mut engine = Engine::new();
        let module_ast = engine
            .compile("fn helper() { 1 } fn f() { helper() }")
            .unwrap();
        let module = Module::eval_ast_as_new(Scope::new(), &module_ast, &engine).unwrap();
        let mut resolver = StaticModuleResolver::new();
        resolver.insert("m", module);
        engine.set_module_resolver(resolver);
        let ast = engine
            .compile(r#"fn a() { import "m" as m; m::f() + m::f() } fn b() { helper() } fn c() { 2 + 3 }"#)
            .unwrap();

        let mut caches = Caches::new();
        assert_eq!(call(&engine, &ast, "c", &mut caches), Some(5));
        assert_eq!(call(&engine, &ast, "c", &mut caches), Some(5));
        assert_eq!(call(&engine, &ast, "a", &mut caches), Some(2));
        assert_eq!(call(&engine, &ast, "b", &mut caches), None);
        assert_eq!(call(&engine, &ast, "b", &mut Caches::new()), None);
        assert_eq!(call(&engine, &ast, "c", &mut caches), Some(5));
    }

    /// How script function `f` ends, called the way the server calls it.
    fn outcome(source: &str) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        let mut engine = Engine::new();
        engine.set_max_operations(1_000);
        let ast = engine.compile(source).unwrap();
        let options = super::call_options();
        let caches = &mut Caches::new();
        engine.call_fn_with_caches::<Dynamic>(options, &mut Scope::new(), &ast, "f", (), caches)
    }

    /// The value script function `f` returns, as JSON.
    fn returns(source: &str) -> String {
        serde_json::to_string(&outcome(source).unwrap()).unwrap()
    }

    /// A function's last expression moves its locals out instead of cloning them (patch 5
    /// in vendor/rhai/PATCHES.md) only where nothing after can read them: each answer here
    /// is the one stock Rhai gives.
    #[test]
    fn last_use_moves_give_what_copies_give() {
        // Read twice: the first item is a copy, the second may move.
        assert_eq!(
            returns("fn f() { let a = [1, 2]; #{ x: a, y: a } }"),
            r#"{"x":[1,2],"y":[1,2]}"#
        );
        // Read after the move point, by a method call, a nested literal or a block.
        assert_eq!(
            returns("fn f() { let a = [1, 2]; #{ a: a, n: a.len() } }"),
            r#"{"a":[1,2],"n":2}"#
        );
        assert_eq!(
            returns("fn f() { let a = [1, 2]; [a, [a]] }"),
            "[[1,2],[[1,2]]]"
        );
        assert_eq!(
            returns("fn f() { let a = 7; [a, { let b = a; b + 1 }] }"),
            "[7,8]"
        );
        // Read by name at run time, or through a closure that captured it.
        assert_eq!(
            returns(r#"fn f() { let a = [1]; [a, eval("a")] }"#),
            "[[1],[1]]"
        );
        assert_eq!(
            returns(r#"fn f() { let a = [1]; [a, is_def_var("a")] }"#),
            "[[1],true]"
        );
        assert_eq!(
            returns("fn f() { let a = [1]; let g = || a.len(); [a, g.call()] }"),
            "[[1],1]"
        );
        assert_eq!(
            returns("fn f() { let a = [1]; let g = || a; [a, g.call()] }"),
            "[[1],[1]]"
        );
        // A bare variable and `return`; a parameter; a constant; a shadowed name.
        assert_eq!(returns("fn f() { let a = #{ k: [1] }; a }"), r#"{"k":[1]}"#);
        assert_eq!(
            returns("fn f() { let a = [3]; if a.len() > 0 { return [a, a]; } 0 }"),
            "[[3],[3]]"
        );
        assert_eq!(
            returns("fn g(p) { [p, p.len()] } fn f() { let a = [1, 2]; [g(a), a] }"),
            "[[[1,2],2],[1,2]]"
        );
        assert_eq!(returns("fn f() { const C = [5]; [C, C] }"), "[[5],[5]]");
        assert_eq!(
            returns("fn f() { let a = 1; { let a = 2; } let a = [a, 3]; [a, a] }"),
            "[[1,3],[1,3]]"
        );
        // A global constant the function reads is not its local.
        assert_eq!(
            returns("const G = [9]; fn f() { [global::G, global::G] }"),
            "[[9],[9]]"
        );
    }

    /// The lone argument of a method chain's last call, and a local's property, move only
    /// where nothing after can read them (patch 7): the receiver is read after its argument.
    #[test]
    fn last_call_argument_moves_give_what_copies_give() {
        // The receiver is the argument, or inside it.
        assert_eq!(returns("fn f() { let a = [1, 2]; a.contains(a) }"), "false");
        assert_eq!(
            returns("fn f() { let q = #{ b: [1, 2] }; q.b.contains(q.b) }"),
            "false"
        );
        assert_eq!(
            returns("fn f() { let a = [1]; a.contains(#{ x: a }) }"),
            "false"
        );
        assert_eq!(
            returns("fn f() { let a = [1]; a.len().to_string().contains([a].len().to_string()) }"),
            "true"
        );
        // Moved: the answers are the copies' answers.
        assert_eq!(
            returns("fn f() { let q = #{ b: [3] }; let r = [[3]]; r.contains(q.b) }"),
            "true"
        );
        assert_eq!(returns("fn f() { let q = #{ b: [3] }; q.b }"), "[3]");
        assert_eq!(
            returns("fn f() { let q = #{ b: [3] }; return q.b; }"),
            "[3]"
        );
        assert_eq!(
            returns("fn f() { let a = [1]; let r = [#{ x: [1] }]; r.contains(#{ x: a }) }"),
            "true"
        );
        // A parameter is the callee's own copy.
        assert_eq!(
            returns("fn g(p) { [1].contains(p.k) } fn f() { let m = #{ k: 1 }; [g(m), m.k] }"),
            "[true,1]"
        );
        // Shared with a closure, or missing: read as usual.
        assert_eq!(
            returns("fn f() { let q = #{ b: 1 }; let g = || q.b; [1].contains(g.call()) }"),
            "true"
        );
        assert_eq!(returns("fn f() { let q = #{ b: 1 }; q.c }"), "null");
        // Before a closing `()` (what a route whose body ends in `;` gets, docs/reference.md):
        // the last call still sees its receiver, and the body still returns `()`.
        assert_eq!(
            returns("fn f() { let a = [1, 2]; a.contains(a); () }"),
            "null"
        );
        assert_eq!(
            returns("fn f() { let a = [[1]]; let b = [1]; a.contains(b); () }"),
            "null"
        );
        assert_eq!(
            returns("fn f() { let a = [1, 2]; a.contains(a); }"),
            "false"
        );
    }

    /// `string + INT` computed in place (patch 8 in vendor/rhai/PATCHES.md, which the server
    /// turns on) gives the call's answer, needs the same operation limit and fails the same
    /// size check.
    #[test]
    fn string_and_int_concatenation_gives_what_the_call_gives() {
        /// The answer (or error) with the patch on or off, and the smallest operation limit
        /// the script runs under.
        fn run(source: &str, fast: bool, max_string: usize) -> (String, u64) {
            let eval = |max_operations: u64| {
                let mut engine = Engine::new();
                engine
                    .set_fast_string_concat(fast)
                    .set_max_string_size(max_string)
                    .set_max_operations(max_operations);
                match engine.eval::<Dynamic>(source) {
                    Ok(value) => serde_json::to_string(&value).unwrap(),
                    Err(err) => format!("error: {err}"),
                }
            };
            let limit = (1..500)
                .find(|&n| !eval(n).contains("Too many operations"))
                .expect("runs under 500 operations");
            (eval(0), limit)
        }

        let cases = [
            (r#""item " + 42"#, 0),
            (r#"42 + " items""#, 0),
            (r#"let i = 7; "" + i"#, 0),
            (r#""x" + -9223372036854775807 + "y""#, 0),
            (r#"let s = ""; for i in 0..20 { s = s + i + ","; } s"#, 0),
            (r#"let a = []; for i in 0..3 { a.push("n" + i); } a"#, 0),
            (r#""abcde" + 12"#, 6),
            (r#""abc" + 12"#, 6),
            (r#""x" + 1.5"#, 0),
            (r#""x" + true"#, 0),
            (r#"1 + 2"#, 0),
        ];
        for (source, max_string) in cases {
            let stock = run(source, false, max_string);
            assert_eq!(run(source, true, max_string), stock, "{source}");
        }
        assert_eq!(run(r#""item " + 42"#, true, 0).0, r#""item 42""#);
        assert!(run(r#""abcde" + 12"#, true, 6).0.starts_with("error: "));
    }

    /// The data-race check of a native call's arguments skips its walk while no shared value
    /// is write-locked (patch 6 in vendor/rhai/PATCHES.md) and still finds a locked one:
    /// pushing onto a captured array a closure that holds that same array fails as on stock
    /// Rhai, before and after calls that do not race.
    #[test]
    fn a_locked_shared_value_is_still_a_data_race() {
        let race = "fn f() { let a = []; let g = || a.len(); a.push(g); a.len() }";
        let fine = "fn f() { let a = []; let b = []; let g = || a.len(); b.push(g); b.len() }";
        for _ in 0..2 {
            assert_eq!(returns(fine), "1");
            let err = outcome(race).unwrap_err();
            assert!(
                matches!(*err, rhai::EvalAltResult::ErrorDataRace(ref what, ..) if what.contains("push")),
                "expected a data race on push, got {err}"
            );
        }
        assert_eq!(
            returns("fn f() { let a = [1, #{ b: [2] }]; a.push(a); a.len() }"),
            "3"
        );
    }
}
