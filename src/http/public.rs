//! `public/`: the app's static files at the root URL, as Next.js serves them
//! (docs/reference.md, "Static files"). `public/logo.png` is `/logo.png`; a folder answers
//! with its `index.html`. Every request reads the disk afresh, so a file written while
//! serving is served by the next request; nothing outside the folder is ever opened, symlinks
//! included. Ranges, `ETag`/`Last-Modified` and 304 come from `actix-files`.

use std::fs::{File, Metadata};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use actix_files::NamedFile;
use actix_web::body::BoxBody;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, ContentEncoding, HeaderValue, HttpDate};
use actix_web::http::{Method, StatusCode};
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};

use super::compress::{self, Coding};
use super::{file_cache, Shared};
use crate::app_files::{inside, AppFiles};
use crate::error::{error_response, RequestError};
use crate::routes::path::{self, decode_segment, RequestPath};
use crate::settings::PublicSettings;

/// Files over this size are sent as they are even when they would compress: compressing
/// them takes a CPU thread for a long while and their compressed forms would crowd the
/// cache (precompress them: `app.js.br`, `app.js.gz`).
const MAX_COMPRESSED: u64 = 8 * 1024 * 1024;

/// `Cache-Control` of a file whose name may keep its content for ever.
const REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// `Cache-Control` of a content-hashed name: new content gets a new name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Answers a request outside `/api` from the public folder of the app in `app_dir`.
pub async fn serve(req: &HttpRequest, app_dir: &Path, settings: &PublicSettings) -> HttpResponse {
    let requested = match parse(req.path()) {
        Ok(Some(requested)) => requested,
        Ok(None) => return not_found(req, app_dir, settings).await,
        Err(err) => return err.response(),
    };
    let root = AppFiles::open(app_dir).public_root(&settings.dir);
    let Some((root, file)) = resolve(&root, &requested) else {
        return not_found(req, app_dir, settings).await;
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match serve_file(req, &root, &file, StatusCode::OK).await {
        Some(response) => response,
        None => not_found(req, app_dir, settings).await,
    }
}

/// Makes the `Range` header of a request outside `/api` say what RFC 9110 asks before
/// actix-files, which reads it as it comes, sees it: a unit other than `bytes`, or an
/// `If-Range` that no longer matches the file, drops it (the whole file, 200); a number past
/// 2^64 - 1 becomes 2^64 - 1, so that an end past the file is clamped as a smaller one is
/// (and a start past it stays unsatisfiable).
pub fn normalize_range(req: &mut ServiceRequest) {
    let Some(range) = req.headers().get(header::RANGE) else {
        return;
    };
    let Ok(range) = range.to_str().map(str::to_string) else {
        return;
    };
    if !matches!(path::parse(req.path()), RequestPath::NotApi) {
        return;
    }
    let bytes = range
        .get(..6)
        .is_some_and(|unit| unit.eq_ignore_ascii_case("bytes="));
    if !bytes || !if_range_holds(req) {
        req.headers_mut().remove(header::RANGE);
        return;
    }
    if let Some(clamped) = clamp_large_numbers(&range) {
        if let Ok(value) = HeaderValue::from_str(&clamped) {
            req.headers_mut().insert(header::RANGE, value);
        }
    }
}

/// Whether a range may be sent: no `If-Range`, or one naming the file as it is now (its
/// strong `ETag`, or exactly its `Last-Modified` date). A path that names no file keeps
/// its range (it gets no file anyway).
fn if_range_holds(req: &ServiceRequest) -> bool {
    let Some(if_range) = req.headers().get(header::IF_RANGE) else {
        return true;
    };
    let Ok(if_range) = if_range.to_str() else {
        return false;
    };
    let Some((etag, modified)) = validators(req) else {
        return true;
    };
    let if_range = if_range.trim();
    if if_range.starts_with('"') || if_range.starts_with("W/") {
        // Strong comparison: a weak tag never matches.
        return etag.is_some_and(|tag| !tag.starts_with("W/") && tag == if_range);
    }
    match (
        if_range.parse::<HttpDate>(),
        modified.map(|m| m.parse::<HttpDate>()),
    ) {
        (Ok(date), Some(Ok(modified))) => date == modified,
        _ => false,
    }
}

/// The `ETag` and `Last-Modified` the file a request names is served with.
fn validators(req: &ServiceRequest) -> Option<(Option<String>, Option<String>)> {
    let server = req.app_data::<Data<Shared>>()?;
    let public_dir = server
        .app
        .files
        .public_root(&server.app.snapshot().settings.public.dir);
    let requested = parse(req.path()).ok()??;
    let (_, file) = resolve(&public_dir, &requested)?;
    let response = NamedFile::open(&file).ok()?.into_response(req.request());
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    Some((header(header::ETAG), header(header::LAST_MODIFIED)))
}

/// `range` with every number past 2^64 - 1 replaced by 2^64 - 1; `None` when it has none.
fn clamp_large_numbers(range: &str) -> Option<String> {
    let mut clamped = String::with_capacity(range.len());
    let mut changed = false;
    let mut digits = String::new();
    for c in range.chars().map(Some).chain([None]) {
        if let Some(digit) = c.filter(char::is_ascii_digit) {
            digits.push(digit);
            continue;
        }
        if !digits.is_empty() && digits.parse::<u64>().is_err() {
            clamped.push_str(&u64::MAX.to_string());
            changed = true;
        } else {
            clamped.push_str(&digits);
        }
        digits.clear();
        clamped.extend(c);
    }
    changed.then_some(clamped)
}

/// What a path asks for: its decoded segments, and whether it ended in `/`.
struct Requested {
    segments: Vec<String>,
    folder: bool,
}

/// Decodes a request path strictly, as for `/api` (a `.`/`..` segment, NUL or bad escape is
/// a 400). `Ok(None)`: a path no file can have (an empty segment, a decoded `/` or `\`, a
/// name starting with `.`).
fn parse(raw: &str) -> Result<Option<Requested>, RequestError> {
    let mut parts: Vec<&str> = raw.split('/').skip(1).collect();
    let folder = parts.last().is_some_and(|p| p.is_empty());
    if folder {
        parts.pop();
    }
    let mut segments = Vec::with_capacity(parts.len());
    let mut hidden = false;
    for (i, part) in parts.into_iter().enumerate() {
        let segment = decode_segment(part).ok_or(RequestError::BadRequest)?;
        hidden |= segment.is_empty() || segment.starts_with('.') || segment.contains(['/', '\\']);
        // `/_rhapi/` is rhapi's own, however it is spelled.
        hidden |= i == 0 && segment == "_rhapi";
        segments.push(segment);
    }
    Ok((!hidden).then_some(Requested { segments, folder }))
}

/// The file a request names, inside `root` once every symlink is followed: the file itself,
/// or a folder's `index.html`. Also the canonical root.
fn resolve(root: &Path, requested: &Requested) -> Option<(PathBuf, PathBuf)> {
    let root = root.canonicalize().ok()?;
    let mut path = root.clone();
    path.extend(&requested.segments);
    let real = inside(&root, &path)?;
    let meta = real.metadata().ok()?;
    if meta.is_dir() {
        let index = inside(&root, &real.join("index.html"))?;
        return index.is_file().then_some((root, index));
    }
    (meta.is_file() && !requested.folder).then_some((root, real))
}

/// Sends the file at `path` (inside `root`) with `status` (200, or 404 for `404.html`).
async fn serve_file(
    req: &HttpRequest,
    root: &Path,
    path: &Path,
    status: StatusCode,
) -> Option<HttpResponse> {
    let content_type = content_type(path);
    let ranged = req.headers().contains_key(header::RANGE);
    let accepted = compress::accepted(req);
    let (precompressed, vary) = precompressed(req, root, path, &accepted, ranged, status);
    if let Some(response) = precompressed {
        return Some(response);
    }
    let file = NamedFile::open(path).ok()?;
    let meta = file.metadata().clone();
    let large_text =
        compress::compressible(&content_type) && meta.len() > compress::MIN_SIZE as u64;
    let coding = accepted.first().copied().filter(|_| {
        large_text && !ranged && meta.len() <= MAX_COMPRESSED && status == StatusCode::OK
    });
    // A second handle on the same open file, to read it for compressing.
    let handle = coding.and_then(|_| file.file().try_clone().ok());
    let mut response = finish(req, file, path, &content_type, vary || large_text);
    if let (Some(coding), Some(handle)) = (coding, handle) {
        // Only a 200 gets a body (not a 304 or 412): compress only then.
        if response.status() == StatusCode::OK {
            let bytes = compressed(path, handle, &meta, coding).await?;
            response.headers_mut().insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.token()),
            );
            compress::weaken_etag(&mut response);
            response = response.set_body(BoxBody::new(bytes));
        }
    }
    if status != StatusCode::OK {
        *response.status_mut() = status;
        response.headers_mut().remove(header::ETAG);
        response.headers_mut().remove(header::LAST_MODIFIED);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    Some(response)
}

/// A precompressed sibling (`app.js.br`) the client accepts, sent as it is; and whether
/// `path` has any sibling (then the answer varies by `Accept-Encoding`).
fn precompressed(
    req: &HttpRequest,
    root: &Path,
    path: &Path,
    accepted: &[Coding],
    ranged: bool,
    status: StatusCode,
) -> (Option<HttpResponse>, bool) {
    let mut vary = false;
    if ranged || status != StatusCode::OK {
        return (None, vary);
    }
    for coding in [Coding::Brotli, Coding::Gzip] {
        let Some(sibling) = sibling(root, path, coding) else {
            continue;
        };
        vary = true;
        if accepted.contains(&coding) {
            let Ok(file) = NamedFile::open(&sibling) else {
                continue;
            };
            let encoding = match coding {
                Coding::Brotli => ContentEncoding::Brotli,
                Coding::Gzip => ContentEncoding::Gzip,
            };
            let file = file.set_content_encoding(encoding);
            let content_type = content_type(path);
            return (Some(finish(req, file, path, &content_type, true)), true);
        }
    }
    (None, vary)
}

/// The file's content compressed with `coding`: from the cache while the file is unchanged,
/// else read from `file` and compressed (on the CPU threads when large) and kept.
async fn compressed(path: &Path, file: File, meta: &Metadata, coding: Coding) -> Option<Bytes> {
    let version = file_cache::Version::of(meta);
    if let Some(bytes) = file_cache::get(path, coding, version) {
        return Some(bytes);
    }
    let len = meta.len();
    let work =
        move || read_all(&file, len).map(|bytes| Bytes::from(compress::encode(&bytes, coding)));
    let bytes = if len > compress::OFF_WORKER_SIZE as u64 {
        crate::cpu::run(work).await
    } else {
        work()
    }?;
    file_cache::put(path, coding, version, bytes.clone());
    Some(bytes)
}

/// The response of an opened file: `actix-files` decides 200, 206, 304, 412 or 416; rhapi
/// adds its headers.
fn finish(
    req: &HttpRequest,
    file: NamedFile,
    path: &Path,
    content_type: &str,
    vary: bool,
) -> HttpResponse {
    let mime = content_type
        .parse()
        .unwrap_or(mime_guess::mime::APPLICATION_OCTET_STREAM);
    let mut response = file
        .set_content_type(mime)
        .disable_content_disposition()
        .prefer_utf8(false)
        .into_response(req);
    // A range that covers the whole file is still a range (actix-files says 200).
    if response.status() == StatusCode::OK && response.headers().contains_key(header::CONTENT_RANGE)
    {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let headers = response.headers_mut();
    // actix-files marks a range `identity` to keep compression middleware off it.
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v == "identity")
    {
        headers.remove(header::CONTENT_ENCODING);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let hashed = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_content_hashed);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed { IMMUTABLE } else { REVALIDATE }),
    );
    if vary {
        compress::vary_accept_encoding(&mut response);
    }
    response
}

/// `app.js.br` / `app.js.gz` next to `path`, when it is a file inside `root`.
fn sibling(root: &Path, path: &Path, coding: Coding) -> Option<PathBuf> {
    let mut name = path.file_name()?.to_os_string();
    name.push(".");
    name.push(coding.extension());
    let sibling = inside(root, &path.with_file_name(name))?;
    sibling.is_file().then_some(sibling)
}

/// The whole file, read without moving its cursor (actix-files reads it again for ranges).
fn read_all(file: &std::fs::File, len: u64) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut bytes, 0).ok()?;
    Some(bytes)
}

/// The `Content-Type` of a file by its extension; text types say UTF-8; unknown ones are
/// `application/octet-stream`.
pub fn content_type(path: &Path) -> String {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let known = match extension.as_str() {
        "html" | "htm" => Some("text/html; charset=utf-8"),
        "js" | "mjs" | "cjs" => Some("text/javascript; charset=utf-8"),
        "css" => Some("text/css; charset=utf-8"),
        "txt" => Some("text/plain; charset=utf-8"),
        "json" | "map" => Some("application/json"),
        "webmanifest" => Some("application/manifest+json"),
        "svg" => Some("image/svg+xml"),
        "wasm" => Some("application/wasm"),
        "ico" => Some("image/x-icon"),
        _ => None,
    };
    if let Some(known) = known {
        return known.to_string();
    }
    match mime_guess::from_ext(&extension).first() {
        Some(mime) if mime.type_() == mime_guess::mime::TEXT => format!("{mime}; charset=utf-8"),
        Some(mime) => mime.to_string(),
        None => "application/octet-stream".into(),
    }
}

/// `name-[hash].ext` or `name.[hash].ext`, as Vite and Next.js emit: a hash of 8 or more
/// letters and digits that has a digit, or both cases (so `photo-original.png` is no hash).
pub fn is_content_hashed(name: &str) -> bool {
    let pieces: Vec<&str> = name.split(['-', '.']).collect();
    if pieces.len() < 3 || pieces[0].is_empty() {
        return false;
    }
    pieces[1..pieces.len() - 1].iter().any(|hash| {
        hash.len() >= 8
            && hash.bytes().all(|b| b.is_ascii_alphanumeric())
            && (hash.bytes().any(|b| b.is_ascii_digit())
                || (hash.bytes().any(|b| b.is_ascii_uppercase())
                    && hash.bytes().any(|b| b.is_ascii_lowercase())))
    })
}

/// A 404 outside `/api`: `index.html` with 200 for a browser in a single-page app,
/// `404.html` for a browser when the app has one, else the JSON 404.
pub async fn not_found(
    req: &HttpRequest,
    app_dir: &Path,
    settings: &PublicSettings,
) -> HttpResponse {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        let root = AppFiles::open(app_dir).public_root(&settings.dir);
        let page = |name: &'static str, status| {
            let root = root.clone();
            async move {
                let root = root.canonicalize().ok()?;
                let file = inside(&root, &root.join(name))?;
                serve_file(req, &root, &file, status).await
            }
        };
        let get = matches!(*req.method(), Method::GET | Method::HEAD);
        if settings.spa && get {
            if let Some(response) = page("index.html", StatusCode::OK).await {
                return response;
            }
        }
        if let Some(response) = page("404.html", StatusCode::NOT_FOUND).await {
            return response;
        }
    }
    error_response(StatusCode::NOT_FOUND, "Not Found")
}

/// A `public/api` folder can never be served (`/api` is the routes'), nor a
/// `public/_rhapi` (rhapi's own health and readiness): a warning at load for each.
pub fn warnings(app_dir: &Path, settings: &PublicSettings) -> Vec<String> {
    let public = AppFiles::open(app_dir).public_root(&settings.dir);
    let mut warnings = Vec::new();
    // (A bundle's public files before they are written out: nothing to look at.)
    if public.as_os_str().is_empty() {
        return warnings;
    }
    if public.join("api").is_dir() {
        warnings.push(format!(
            "{}/api/ is never served: /api/... are the routes of pages/api; move those files",
            settings.dir
        ));
    }
    if public.join("_rhapi").exists() {
        warnings.push(format!(
            "{}/_rhapi/ is never served: /_rhapi/... are rhapi's own (health, readiness); move those files",
            settings.dir
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        for name in [
            "index-BxKaQzPq.js",
            "main-6d9e7c4f.js",
            "chunk.1a2b3c4d5e.css",
            "app-a1b2c3d4e5f6a7b8.min.js",
        ] {
            assert!(is_content_hashed(name), "{name}");
        }
        for name in [
            "logo.png",
            "photo-original.png",
            "app-1234.js",
            "-12345678.js",
            "deadbeef12",
        ] {
            assert!(!is_content_hashed(name), "{name}");
        }
    }

    #[test]
    fn numbers_past_u64_are_clamped() {
        assert_eq!(clamp_large_numbers("bytes=0-5"), None);
        assert_eq!(
            clamp_large_numbers("bytes=2-99999999999999999999999, -18446744073709551616")
                .as_deref(),
            Some("bytes=2-18446744073709551615, -18446744073709551615")
        );
    }

    #[test]
    fn types() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.svg")), "image/svg+xml");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.unknownext")),
            "application/octet-stream"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }
}
