//! Rhai: the engine, compiling route files, the method rules, and running a call.

pub mod catalogue;
pub mod compile;
pub mod context;
pub mod engine;
pub mod errors;
pub mod methods;
pub mod middleware;
pub mod modules;
pub mod res;
pub mod route_config;
pub mod run;
pub mod shapes;
pub mod socket;
pub mod stream;

pub use compile::{compile_job, compile_route, RouteScript};
pub use methods::{plan, Plan};
pub use run::{Call, Outcome, Reply};

/// What a function registered with the engine returns: a value, or a script error.
pub type ScriptResult<T> = Result<T, Box<rhai::EvalAltResult>>;
