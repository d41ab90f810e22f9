//! Rhai: the engine, compiling route files, and calling a route's handler.

pub mod compile;
pub mod context;
pub mod dispatch;
pub mod engine;
pub mod errors;
pub mod modules;
pub mod response;

pub use compile::{compile_route, RouteScript};
pub use dispatch::{plan, Call, Plan, Reply};
