//! What each battery function takes, returns and does, for the definition files of
//! `rhapi types` and the editor. docs/batteries.md says the same at length; a test below
//! fails when a battery function is added or removed without its line here.

/// One function of a battery module (or a global of rhapi's).
pub struct FnDoc {
    /// `db::query`, or `sleep` for a global.
    pub name: &'static str,
    /// Its parameters as a definition file writes them.
    pub params: &'static str,
    /// What it returns, as a definition file writes it.
    pub returns: &'static str,
    pub doc: &'static str,
}

const fn f(
    name: &'static str,
    params: &'static str,
    returns: &'static str,
    doc: &'static str,
) -> FnDoc {
    FnDoc {
        name,
        params,
        returns,
        doc,
    }
}

/// Every function of the batteries, one line per overload.
pub const BATTERY_FNS: &[FnDoc] = &[
    f("db::query", "sql: string", "array", "Runs a query; an array of row maps (a NULL column is `()` and still in the map)."),
    f("db::query", "sql: string, params: array", "array", "Runs a query with parameters (`?` or `$1`); an array of row maps (a NULL column is `()` and still in the map)."),
    f("db::query_one", "sql: string", "?", "Runs a query; its first row map, or `()` when there is none."),
    f("db::query_one", "sql: string, params: array", "?", "Runs a query with parameters; its first row map, or `()` when there is none."),
    f("db::execute", "sql: string", "?", "Runs a statement; `#{ rows_affected, last_insert_id }` (`()` on PostgreSQL: use `RETURNING` with `db::query`)."),
    f("db::execute", "sql: string, params: array", "?", "Runs a statement with parameters; `#{ rows_affected, last_insert_id }` (`()` on PostgreSQL: use `RETURNING` with `db::query`)."),
    f("db::transaction", "work: Fn", "?", "Runs `work` (a closure) in a transaction: commits when it returns (its value), rolls back and re-raises on an error; nested calls are savepoints."),
    f("crypto::hash_password", "password: string", "string", "An argon2id hash of the password (a PHC string)."),
    f("crypto::verify_password", "password: string, hash: string", "bool", "Whether the password matches a hash made by `hash_password`."),
    f("crypto::random_token", "bytes: int", "string", "That many random bytes as URL-safe base64."),
    f("crypto::uuid", "", "string", "A random UUID (v4)."),
    f("crypto::sha256", "data: ?", "string", "SHA-256 of a string or blob, as lowercase hex."),
    f("crypto::hmac_sha256", "key: ?, data: ?", "string", "HMAC-SHA-256 of `data` with `key` (strings or blobs), as lowercase hex."),
    f("crypto::equal", "a: ?, b: ?", "bool", "Whether two strings or blobs are equal, in a time that depends only on their lengths (compare signatures with it)."),
    f("http::get", "url: string", "map", "A GET request; `#{ status, headers, body, json }`."),
    f("http::get", "url: string, options: map", "map", "A GET request with `#{ headers, timeout_ms }`; `#{ status, headers, body, json }`."),
    f("http::post", "url: string, body: ?", "map", "A POST request (a map or array body is sent as JSON); `#{ status, headers, body, json }`."),
    f("http::post", "url: string, body: ?, options: map", "map", "A POST request with `#{ headers, timeout_ms }`; `#{ status, headers, body, json }`."),
    f("http::request", "request: map", "map", "Any request: `#{ method, url, headers, body, timeout_ms }`; `#{ status, headers, body, json }`."),
    f("jwt::sign", "claims: map, secret: string", "string", "An HS256 token of the claims."),
    f("jwt::sign", "claims: map, secret: string, options: map", "string", "An HS256 token of the claims, with `#{ expires_in }` (seconds)."),
    f("jwt::verify", "token: string, secret: string", "?", "The claims of a valid, unexpired HS256 token, else `()`."),
    f("mail::send", "mail: map", "()", "Sends a mail: `#{ to, from, subject, text, html, cc, bcc, reply_to }` (SMTP settings from the environment)."),
    f("log::info", "message: ?", "()", "A server log line at level info, tagged with the file and line."),
    f("log::warn", "message: ?", "()", "A server log line at level warn, tagged with the file and line."),
    f("log::error", "message: ?", "()", "A server log line at level error, tagged with the file and line."),
    f("time::now", "", "int", "The app's wall clock: milliseconds since the Unix epoch (as `Date.now()`)."),
    f("time::iso", "ms: int", "string", "An instant as RFC 3339 text in UTC, with milliseconds: \"2026-12-05T14:00:00.000Z\"."),
    f("time::parse", "text: string", "int", "The milliseconds of an RFC 3339 timestamp (a date alone is midnight UTC); a time without a zone is an error."),
    f("time::add", "ms: int, duration: ?", "int", "`ms` moved by a duration string (\"10m\", \"-1d\") or an integer of milliseconds."),
    f("cache::get", "key: string", "?", "The cached value (a copy), or `()` when the key is missing or expired."),
    f("cache::set", "key: string, value: ?", "()", "Caches a copy of a value JSON can hold, until evicted."),
    f("cache::set", "key: string, value: ?, ttl: ?", "()", "Caches a copy of a value JSON can hold for `ttl` (\"30s\" or milliseconds)."),
    f("cache::delete", "key: string", "()", "Removes a key from the cache."),
    f("jobs::enqueue", "name: string, payload: ?", "int", "Stores a job for `jobs/NAME.rhai` with a payload JSON can hold; its id. Inside `db::transaction`, enqueued when it commits."),
    f("jobs::enqueue", "name: string, payload: ?, options: map", "int", "Stores a job with `#{ delay, key }` (`delay` as \"10m\" or milliseconds; a `key` already waiting gives the first job's id); its id."),
    f("rate::check", "key: ?, limit: int, per: string", "bool", "`true` while `key` is under `limit` calls per `per` (\"1m\"), and the call counts; `false` over it, not counted."),
    f("realtime::publish", "topic: string, value: ?", "()", "Sends `value` (a string as text, a blob as binary, anything else as JSON) to every subscriber of `topic`: WebSockets and `res.subscribe` streams, on every instance on PostgreSQL."),
    f("env::get", "name: string", "?", "The value of an environment variable, or `()` when it is unset."),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::BATTERY_FNS;

    /// Every function of a battery module has its line, with its arity, and no line is
    /// left over.
    #[test]
    fn every_battery_function_is_documented() {
        let engine = crate::script::engine::for_tests();
        let registered: BTreeSet<(String, usize)> = engine
            .native_functions()
            .into_iter()
            .filter(|f| f.name.contains("::"))
            .map(|f| (f.name, f.params.len()))
            .collect();
        let documented: BTreeSet<(String, usize)> = BATTERY_FNS
            .iter()
            .map(|f| {
                let arity = if f.params.is_empty() {
                    0
                } else {
                    f.params.split(',').count()
                };
                (f.name.to_string(), arity)
            })
            .collect();
        assert_eq!(registered, documented);
    }
}
