//! The shapes scripts see: the fields of `req`, the methods of `res` and of `ws`. One list
//! each, read by `rhapi check` (an unknown `req.boby`), `rhapi types` (the definition
//! files) and the editor; `http/request.rs` builds `req` with exactly these fields (a test
//! there holds them together).

/// A field or method a script can use, with what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// `body`, `status`, ...
    pub name: &'static str,
    /// A method's parameters as a definition file writes them (`code: int`); `None` for
    /// a field.
    pub params: Option<&'static str>,
    /// The type of the field, or what the method returns, as a definition file writes it.
    pub returns: &'static str,
    /// One or two sentences.
    pub doc: &'static str,
}

const fn field(name: &'static str, returns: &'static str, doc: &'static str) -> Member {
    Member {
        name,
        params: None,
        returns,
        doc,
    }
}

const fn method(
    name: &'static str,
    params: &'static str,
    returns: &'static str,
    doc: &'static str,
) -> Member {
    Member {
        name,
        params: Some(params),
        returns,
        doc,
    }
}

/// The fields of `req`, in key order.
pub const REQ_FIELDS: &[Member] = &[
    field("body", "?", "The body, parsed by `Content-Type`: JSON to a value, a form or multipart to a map, text to a string; `()` when there is none."),
    field("cookies", "map", "Cookies by name, percent-decoded; the first of two with one name wins."),
    field("headers", "map", "Headers by lowercase name; a repeated header is one string joined with \", \"."),
    field("ip", "string", "The client's address."),
    field("locals", "map", "What middleware handed on; `#{}` when nothing was."),
    field("method", "string", "\"GET\", \"POST\", ..."),
    field("params", "map", "The route params: strings, arrays for catch-alls."),
    field("path", "string", "The decoded path: \"/api/users/42\"."),
    field("query", "map", "The query string as a map of decoded values, route params merged in."),
    field("raw_body", "?", "The body exactly as received, as a blob; `()` when there is none."),
    field("url", "string", "Path and query exactly as received, not decoded."),
];

/// The methods of `res` (the response under construction).
pub const RES_METHODS: &[Member] = &[
    method("status", "code: int", "Response", "Sets the status, 200 to 999."),
    method("set_header", "name: string, value: ?", "Response", "Sets a header; an array value sends it once per item."),
    method("setHeader", "name: string, value: ?", "Response", "`set_header`, by its Node.js name."),
    method("cookie", "name: string, value: string, options: map", "Response", "Adds a `Set-Cookie` header; options `max_age`, `path`, `domain`, `secure`, `http_only`, `same_site` (optional)."),
    method("json", "value: ?", "()", "Sends the value as JSON."),
    method("send", "value: ?", "()", "Sends a string as text, a blob as bytes, anything else as JSON."),
    method("redirect", "status: int, url: string", "()", "Sends a redirect to `url`: 307 unless a 3xx `status` is given first."),
    method("end", "", "()", "Sends an empty body with the status set so far (or closes a stream)."),
    method("write", "value: ?", "Response", "Sends a chunk and keeps the response open (a map or array as one JSON line)."),
    method("event", "event: map", "Response", "Sends one Server-Sent Event: `#{ event, data, id, retry }`."),
    method("subscribe", "topics: ?", "()", "Sends an event stream of every `realtime::publish` on `topics` (a string or an array of strings), with no script running."),
];

/// The members of `ws`, the WebSocket of a route's `on_open`, `on_message` and
/// `on_close`.
pub const WS_MEMBERS: &[Member] = &[
    field("id", "string", "The connection's id."),
    field(
        "state",
        "map",
        "A map kept with the connection between events.",
    ),
    method(
        "send",
        "value: ?",
        "()",
        "Sends a string as text, a blob as binary, a map or array as JSON text.",
    ),
    method(
        "close",
        "code: int, reason: string",
        "()",
        "Closes the connection (code and reason optional).",
    ),
    method(
        "subscribe",
        "topic: string",
        "()",
        "Receives what `realtime::publish(topic, value)` sends.",
    ),
    method(
        "unsubscribe",
        "topic: string",
        "()",
        "Stops receiving a topic.",
    ),
];

#[cfg(test)]
mod tests {
    use std::any::TypeId;
    use std::collections::BTreeSet;

    use super::*;
    use crate::script::res::Res;

    fn engine() -> rhai::Engine {
        crate::script::engine::for_tests()
    }

    /// The list of `res` methods is every function registered on the response type.
    #[test]
    fn res_methods_are_the_engine_s() {
        let registered: BTreeSet<String> = engine()
            .native_functions()
            .into_iter()
            .filter(|f| f.params.first() == Some(&TypeId::of::<Res>()))
            .map(|f| f.name)
            .filter(|name| name != "to_string" && name != "to_debug")
            .collect();
        let listed: BTreeSet<String> = RES_METHODS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(registered, listed);
    }

    /// The list of `ws` members is every function and property registered on the socket
    /// type.
    #[test]
    fn ws_members_are_the_engine_s() {
        let registered: BTreeSet<String> = engine()
            .native_functions()
            .into_iter()
            .filter(|f| f.params.first() == Some(&TypeId::of::<crate::script::socket::Socket>()))
            .map(|f| {
                f.name
                    .trim_start_matches("get$")
                    .trim_start_matches("set$")
                    .to_string()
            })
            .filter(|name| name != "to_string" && name != "to_debug")
            .collect();
        let listed: BTreeSet<String> = WS_MEMBERS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(registered, listed);
    }

    /// Every function `discarded-value` knows as changing nothing exists.
    #[test]
    fn the_pure_functions_exist() {
        let names: BTreeSet<String> = engine()
            .native_functions()
            .into_iter()
            .map(|f| f.name)
            .collect();
        for (pure, in_place) in crate::analysis::rules::discarded_value::PURE {
            assert!(names.contains(*pure), "{pure}");
            assert!(in_place.is_none_or(|f| names.contains(f)), "{in_place:?}");
        }
    }
}
