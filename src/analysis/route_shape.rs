//! What makes a function of a route file a route function, in one place: the HTTP methods
//! a route may define a function for, and `handler` and `middleware`.

/// The method functions a route file may define, in `Allow` order.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Route functions take `req`, `res` and `env`, in that order, all optional.
pub const MAX_ARITY: usize = 3;

/// A function the server calls for a request, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteFunction {
    /// `fn GET`, `fn POST`, ...: the index of its method in [`METHODS`].
    Method(usize),
    /// `fn handler`: every method without a function of its own; `()` means 405.
    Handler,
    /// `fn middleware` of a `_middleware.rhai`: not answering hands the request on.
    Middleware,
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
                .map(RouteFunction::Method),
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
        assert_eq!(RouteFunction::of("get"), None);
        assert_eq!(RouteFunction::of("helper"), None);
    }
}
