//! Error types, and how each becomes an HTTP response.

use actix_web::http::{ConnectionType, StatusCode};
use actix_web::HttpResponse;
use serde_json::json;

/// Where in a script something went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Relative to the app dir: `pages/api/hello.rhai`.
    pub file: String,
    /// 1-based; `None` when Rhai gives no position.
    pub line: Option<usize>,
    /// 1-based; `None` when Rhai gives no position.
    pub column: Option<usize>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}", self.file),
            (Some(line), None) => write!(f, "{}:{line}", self.file),
            _ => f.write_str(&self.file),
        }
    }
}

/// A script error with its location: a route that failed to load, or a request's script
/// that failed at run time. Shown as `FILE:LINE:COL: MESSAGE`, and ` (hint: ...)` after it
/// when the error is a JavaScript habit (`crate::analysis::hints`).
#[derive(Clone, Debug, thiserror::Error)]
pub struct ScriptError {
    pub message: String,
    pub location: Location,
    /// The Rhai form to write instead, when the error is a JavaScript habit.
    pub hint: Option<&'static str>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        match self.hint {
            Some(hint) => write!(f, " (hint: {hint})"),
            None => Ok(()),
        }
    }
}

impl ScriptError {
    /// An error of a whole file, without a line (a file that cannot be read, a conflict).
    pub fn in_file(file: &str, message: impl Into<String>) -> ScriptError {
        ScriptError {
            message: message.into(),
            location: Location {
                file: file.to_string(),
                line: None,
                column: None,
            },
            hint: None,
        }
    }

    /// The `dev` body: `{"error", "file", "line", "column"}`, and `"hint"` when there is one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "error": self.message,
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
        });
        if let Some(hint) = self.hint {
            body["hint"] = hint.into();
        }
        body
    }
}

/// A JSON error response `{"error": message}`.
pub fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

/// A JSON response from a `serde_json::Value`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

/// Request problems the server answers itself, before any script runs.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("Bad Request")]
    BadRequest,
    #[error("Invalid JSON body")]
    InvalidJson,
    #[error("Payload Too Large")]
    PayloadTooLarge,
    /// The body paused too long, or did not arrive within the route's time budget.
    #[error("Request Timeout: the request body did not arrive in time")]
    BodyTimeout,
}

impl RequestError {
    /// The response a client gets.
    pub fn response(&self) -> HttpResponse {
        let status = match self {
            RequestError::BadRequest | RequestError::InvalidJson => StatusCode::BAD_REQUEST,
            RequestError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyTimeout => {
                // The rest of the body may still come: the connection cannot be reused.
                let mut response = error_response(StatusCode::REQUEST_TIMEOUT, &self.to_string());
                response
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
                return response;
            }
        };
        error_response(status, &self.to_string())
    }
}
