//! `multipart/form-data` bodies (RFC 7578) to the map scripts see as `req.body`: text fields
//! as strings, file fields as `#{ filename, content_type, size, data }` with `data` a blob,
//! repeated names as arrays. The body is already in memory and within the body limit; any
//! framing error is a 400, never a half-parsed body.

use rhai::{Dynamic, Map};

use crate::error::RequestError;

/// Parses `body` framed by `boundary`.
pub fn parse(boundary: &str, body: &[u8]) -> Result<Map, RequestError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(RequestError::BadRequest);
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut next_delimiter = Vec::with_capacity(delimiter.len() + 2);
    next_delimiter.extend_from_slice(b"\r\n");
    next_delimiter.extend_from_slice(&delimiter);

    // The first delimiter starts the body or follows a preamble line.
    let mut rest = if body.starts_with(&delimiter) {
        &body[delimiter.len()..]
    } else {
        let at = find(body, &next_delimiter).ok_or(RequestError::BadRequest)?;
        &body[at + next_delimiter.len()..]
    };
    let mut fields = Map::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields); // the close delimiter; an epilogue is ignored
        }
        rest = skip_padding(rest);
        rest = rest.strip_prefix(b"\r\n").ok_or(RequestError::BadRequest)?;
        let head_end = find(rest, b"\r\n\r\n").ok_or(RequestError::BadRequest)?;
        let after_head = &rest[head_end + 4..];
        let content_len = find(after_head, &next_delimiter).ok_or(RequestError::BadRequest)?;
        let (name, value) = part(&rest[..head_end], &after_head[..content_len])?;
        super::request::insert_repeated(&mut fields, name, value);
        rest = &after_head[content_len + next_delimiter.len()..];
    }
}

/// One part (its header block and content): its field name and value.
fn part(head: &[u8], content: &[u8]) -> Result<(String, Dynamic), RequestError> {
    let head = std::str::from_utf8(head).map_err(|_| RequestError::BadRequest)?;

    let mut disposition = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let (name, value) = line.split_once(':').ok_or(RequestError::BadRequest)?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => disposition = Some(value.trim()),
            "content-type" => content_type = Some(value.trim()),
            _ => {}
        }
    }
    let disposition = Disposition::parse(disposition.ok_or(RequestError::BadRequest)?)?;
    let value = match disposition.filename {
        Some(filename) => {
            let mut file = Map::new();
            file.insert("filename".into(), filename.into());
            file.insert(
                "content_type".into(),
                content_type
                    .unwrap_or("application/octet-stream")
                    .to_string()
                    .into(),
            );
            file.insert("size".into(), Dynamic::from_int(content.len() as i64));
            file.insert("data".into(), Dynamic::from_blob(content.to_vec()));
            Dynamic::from_map(file)
        }
        None => std::str::from_utf8(content)
            .map_err(|_| RequestError::BadRequest)?
            .to_string()
            .into(),
    };
    Ok((disposition.name, value))
}

/// `form-data; name="field"; filename="a.txt"`.
struct Disposition {
    name: String,
    filename: Option<String>,
}

impl Disposition {
    fn parse(value: &str) -> Result<Disposition, RequestError> {
        let mut params = Params(value);
        let kind = params.token().ok_or(RequestError::BadRequest)?;
        if !kind.eq_ignore_ascii_case("form-data") {
            return Err(RequestError::BadRequest);
        }
        let mut name = None;
        let mut filename = None;
        let mut filename_ext = None;
        while let Some((key, value)) = params.next_param()? {
            match key.to_ascii_lowercase().as_str() {
                "name" => name = Some(value),
                "filename" => filename = Some(value),
                "filename*" => filename_ext = ext_value(&value),
                _ => {}
            }
        }
        Ok(Disposition {
            name: name.ok_or(RequestError::BadRequest)?,
            filename: filename_ext.or(filename),
        })
    }
}

/// `UTF-8''na%C3%AFve.txt` (RFC 5987).
fn ext_value(value: &str) -> Option<String> {
    let (charset, rest) = value.split_once('\'')?;
    let (_language, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    let bytes = crate::encoding::decode_percent(encoded.as_bytes())?;
    String::from_utf8(bytes).ok()
}

/// A cursor over `token; key=value; key="quoted \" value"`.
struct Params<'a>(&'a str);

impl<'a> Params<'a> {
    fn token(&mut self) -> Option<&'a str> {
        let end = self.0.find(';').unwrap_or(self.0.len());
        let token = self.0[..end].trim();
        self.0 = &self.0[end..];
        (!token.is_empty()).then_some(token)
    }

    fn next_param(&mut self) -> Result<Option<(String, String)>, RequestError> {
        let rest = self.0.trim_start();
        if rest.is_empty() {
            return Ok(None);
        }
        let rest = rest
            .strip_prefix(';')
            .ok_or(RequestError::BadRequest)?
            .trim_start();
        if rest.is_empty() {
            return Ok(None);
        }
        let (key, after) = rest.split_once('=').ok_or(RequestError::BadRequest)?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next().ok_or(RequestError::BadRequest)?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or(RequestError::BadRequest)?;
            (value, &quoted[end..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        self.0 = remaining;
        Ok(Some((key.trim().to_string(), value)))
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = Params(content_type);
    params.token()?;
    while let Ok(Some((key, value))) = params.next_param() {
        if key.eq_ignore_ascii_case("boundary") {
            return Some(value);
        }
    }
    None
}

/// Transport padding: spaces and tabs after a delimiter.
fn skip_padding(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[n..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\na\r\n--XyZ\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nb\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"q\\\".bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n\xff\r\n--XyZ--\r\n";

    #[test]
    fn fields_files_and_repeats() {
        let map = parse("XyZ", BODY).unwrap();
        assert_eq!(map["title"].clone().into_string().unwrap(), "hello");
        assert_eq!(map["tag"].clone().into_array().unwrap().len(), 2);
        let file = map["file"].clone().cast::<Map>();
        assert_eq!(
            file["filename"].clone().into_string().unwrap(),
            "a \"q\".bin"
        );
        assert_eq!(file["size"].as_int().unwrap(), 5);
        assert_eq!(
            file["data"].clone().into_blob().unwrap(),
            b"\x00\x01\r\n\xff"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse(
            "XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end"
        )
        .is_err());
        assert!(parse(
            "XyZ",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"
        )
        .is_err());
        assert!(parse("XyZ", b"nothing here").is_err());
        assert!(parse("", BODY).is_err());
        assert!(parse("XyZ", b"--XyZ--\r\n").unwrap().is_empty());
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("multipart/form-data; charset=x; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
    }
}
