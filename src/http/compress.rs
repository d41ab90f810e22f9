//! Response compression, as `next start` does it: text types over 1 KB, compressed with
//! brotli when the client accepts it, else gzip; never a range, never an already compressed
//! type (docs/reference.md, "Compression"). Responses that could be compressed carry
//! `Vary: Accept-Encoding` either way.
//!
//! Not actix-web's `Compress` middleware: it compresses every size and type but images and
//! video, answers 406 to an `Accept-Encoding` it cannot meet, and moves bodies over 1 KB to
//! a blocking thread; the rules here are a few lines over the same `brotli` and `flate2`.

use std::io::Write;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};

/// Bodies up to this size are sent as they are: compressing them gains nothing.
pub const MIN_SIZE: usize = 1024;

/// Bodies over this size are compressed on the CPU threads ([`crate::cpu`]), not on the
/// HTTP worker: from about this size compressing takes over a millisecond.
pub const OFF_WORKER_SIZE: usize = 64 * 1024;

/// A content coding rhapi writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The extension of a precompressed sibling file (`app.js.br`).
    pub fn extension(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gz",
        }
    }
}

/// The codings the request accepts, best first (`br`, then `gzip`); `q=0` refuses one.
pub fn accepted(req: &HttpRequest) -> Vec<Coding> {
    let mut br = false;
    let mut gzip = false;
    let mut star = false;
    for value in req.headers().get_all(header::ACCEPT_ENCODING) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            match name.as_str() {
                "br" => br = !refused,
                "gzip" | "x-gzip" => gzip = !refused,
                "*" => star = !refused,
                _ => {}
            }
        }
    }
    let mut codings = Vec::new();
    if br || star {
        codings.push(Coding::Brotli);
    }
    if gzip || star {
        codings.push(Coding::Gzip);
    }
    codings
}

/// Whether a `Content-Type` is text that compresses (HTML, CSS, JavaScript, JSON, XML, SVG,
/// plain text...). Images, fonts, archives and media are compressed already.
pub fn compressible(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/wasm"
                | "application/manifest+json"
                | "image/svg+xml"
                | "application/x-javascript"
        )
}

/// `bytes` compressed with `coding`.
pub fn encode(bytes: &[u8], coding: Coding) -> Vec<u8> {
    match coding {
        Coding::Brotli => {
            let mut out = Vec::with_capacity(bytes.len() / 3);
            {
                // Quality 5: within a few per cent of the best size at a tenth of its time.
                let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                let _ = writer.write_all(bytes);
            }
            out
        }
        Coding::Gzip => {
            let mut writer = flate2::write::GzEncoder::new(
                Vec::with_capacity(bytes.len() / 3),
                flate2::Compression::new(6),
            );
            let _ = writer.write_all(bytes);
            writer.finish().unwrap_or_default()
        }
    }
}

/// `bytes` compressed with `coding`: here when small, on the CPU threads when over
/// [`OFF_WORKER_SIZE`] (the worker serves other requests meanwhile).
pub async fn encode_off_worker(bytes: Bytes, coding: Coding) -> Vec<u8> {
    if bytes.len() <= OFF_WORKER_SIZE {
        return encode(&bytes, coding);
    }
    crate::cpu::run(move || encode(&bytes, coding)).await
}

/// Adds `Vary: Accept-Encoding` (once).
pub fn vary_accept_encoding<B>(response: &mut HttpResponse<B>) {
    add_vary(response, "Accept-Encoding");
}

/// Adds `name` to `Vary` unless it is there already.
pub fn add_vary<B>(response: &mut HttpResponse<B>, name: &str) {
    let present = response
        .headers()
        .get_all(header::VARY)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(name));
    if !present {
        if let Ok(value) = HeaderValue::from_str(name) {
            response.headers_mut().append(header::VARY, value);
        }
    }
}

/// Compresses an in-memory response (an API answer) when the rules allow it.
pub async fn apply(req: &HttpRequest, response: HttpResponse) -> HttpResponse {
    let status = response.status();
    let candidate = !matches!(
        status,
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
    ) && !status.is_informational()
        && !response.headers().contains_key(header::CONTENT_ENCODING)
        && !req.headers().contains_key(header::RANGE)
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(compressible);
    if !candidate {
        return response;
    }
    let (mut head, body) = response.into_parts();
    let bytes = match body.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(body) => return head.set_body(body),
    };
    if bytes.len() <= MIN_SIZE {
        return head.set_body(BoxBody::new(bytes));
    }
    vary_accept_encoding(&mut head);
    let Some(&coding) = accepted(req).first() else {
        return head.set_body(BoxBody::new(bytes));
    };
    let encoded = encode_off_worker(bytes, coding).await;
    head.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.token()),
    );
    weaken_etag(&mut head);
    head.set_body(BoxBody::new(encoded))
}

/// A compressed body is not byte-for-byte the one its strong `ETag` names: make it weak
/// (`If-None-Match` compares weakly, so revalidation still gets its 304).
pub fn weaken_etag<B>(response: &mut HttpResponse<B>) {
    let Some(tag) = response
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if tag.starts_with("W/") {
        return;
    }
    if let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}")) {
        response.headers_mut().insert(header::ETAG, weak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_compress_media_does_not() {
        assert!(compressible("text/html; charset=utf-8"));
        assert!(compressible("application/json; charset=utf-8"));
        assert!(compressible("image/svg+xml"));
        assert!(compressible("application/ld+json"));
        assert!(!compressible("image/png"));
        assert!(!compressible("application/octet-stream"));
        assert!(!compressible("font/woff2"));
    }

    #[test]
    fn codings_round_trip() {
        let text = "hello ".repeat(1000);
        for coding in [Coding::Brotli, Coding::Gzip] {
            let encoded = encode(text.as_bytes(), coding);
            assert!(encoded.len() < text.len() / 10);
            let mut decoded = Vec::new();
            match coding {
                Coding::Brotli => {
                    brotli::BrotliDecompress(&mut &encoded[..], &mut decoded).unwrap();
                }
                Coding::Gzip => {
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&encoded[..]),
                        &mut decoded,
                    )
                    .unwrap();
                }
            }
            assert_eq!(decoded, text.as_bytes());
        }
    }
}
