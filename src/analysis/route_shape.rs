//! What makes a function of a route file a route function, in one place: the HTTP methods
//! a route may define a function for, `handler` and `middleware`, and the WebSocket events.

/// The method functions a route file may define, in `Allow` order.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Route functions take `req`, `res` and `env`, in that order, all optional.
pub const MAX_ARITY: usize = 3;

/// The WebSocket events a route may define a function for (docs/reference.md,
/// "WebSockets"): a route with any of them accepts upgrades.
pub const EVENTS: [&str; 3] = ["on_open", "on_message", "on_close"];

/// The most parameters each event function takes, in [`EVENTS`] order: `on_open(ws, req,
/// env)`, `on_message(ws, msg, env)`, `on_close(ws, code, reason, env)`.
pub const EVENT_ARITY: [usize; 3] = [3, 3, 4];

/// A function the server calls for a request, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteFunction {
    /// `fn GET`, `fn POST`, ...: the index of its method in [`METHODS`].
    Method(usize),
    /// `fn handler`: every method without a function of its own; `()` means 405.
    Handler,
    /// `fn middleware` of a `_middleware.rhai`: not answering hands the request on.
    Middleware,
    /// `fn on_open`, `fn on_message`, `fn on_close`: the index of its event in [`EVENTS`].
    Event(usize),
}

impl RouteFunction {
    /// The route function named `name`, if it is one.
    pub fn of(name: &str) -> Option<Self> {
        match name {
            "handler" => Some(RouteFunction::Handler),
            "middleware" => Some(RouteFunction::Middleware),
            _ => METHODS
                .iter()
                .position(|m| *m == name)
                .map(RouteFunction::Method)
                .or_else(|| {
                    EVENTS
                        .iter()
                        .position(|e| *e == name)
                        .map(RouteFunction::Event)
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_functions_by_name() {
        assert_eq!(RouteFunction::of("GET"), Some(RouteFunction::Method(0)));
        assert_eq!(RouteFunction::of("OPTIONS"), Some(RouteFunction::Method(6)));
        assert_eq!(RouteFunction::of("handler"), Some(RouteFunction::Handler));
        assert_eq!(
            RouteFunction::of("middleware"),
            Some(RouteFunction::Middleware)
        );
        assert_eq!(RouteFunction::of("on_close"), Some(RouteFunction::Event(2)));
        assert_eq!(RouteFunction::of("get"), None);
        assert_eq!(RouteFunction::of("helper"), None);
    }
}
