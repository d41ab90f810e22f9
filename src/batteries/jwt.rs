//! `jwt::`: HS256 JSON Web Tokens. Only HS256 is made and accepted, so a token cannot pick a
//! weaker algorithm (`alg: none`) or another key type for itself.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;
use rhai::{Dynamic, Map, Module};
use serde_json::{json, Value};

use super::crypto::{hmac_sha256, mac};
use super::{script_error, ScriptResult};

/// The `jwt` module.
pub fn module() -> Module {
    let mut module = Module::new();
    module.set_native_fn("sign", |claims: Map, secret: &str| {
        sign(claims, secret, None)
    });
    module.set_native_fn("sign", |claims: Map, secret: &str, opts: Map| {
        let expires_in = match opts.get("expires_in") {
            None => None,
            Some(v) if v.is_unit() => None,
            Some(v) => Some(v.as_int().map_err(|_| {
                script_error("jwt::sign: expires_in must be an integer number of seconds")
            })?),
        };
        sign(claims, secret, expires_in)
    });
    module.set_native_fn("verify", |token: &str, secret: &str| verify(token, secret));
    module
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn check_secret(secret: &str, call: &str) -> ScriptResult<()> {
    if secret.is_empty() {
        return Err(script_error(format!("{call}: the secret is empty")));
    }
    Ok(())
}

/// `header.claims.signature`, with `exp = now + expires_in` when given.
fn sign(claims: Map, secret: &str, expires_in: Option<i64>) -> ScriptResult<String> {
    check_secret(secret, "jwt::sign")?;
    let mut claims = serde_json::to_value(Dynamic::from_map(claims))
        .map_err(|err| script_error(format!("jwt::sign: the claims are not JSON: {err}")))?;
    if let (Some(seconds), Value::Object(map)) = (expires_in, &mut claims) {
        map.insert("exp".into(), json!(now().saturating_add(seconds)));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature =
        URL_SAFE_NO_PAD.encode(hmac_sha256(secret.as_bytes(), signing_input.as_bytes()));
    Ok(format!("{signing_input}.{signature}"))
}

/// The claims, or `()` when the token is malformed, not HS256, tampered with, expired or
/// not yet valid (`nbf`).
fn verify(token: &str, secret: &str) -> ScriptResult<Dynamic> {
    check_secret(secret, "jwt::verify")?;
    Ok(verified_claims(token, secret.as_bytes()).unwrap_or(Dynamic::UNIT))
}

fn verified_claims(token: &str, secret: &[u8]) -> Option<Dynamic> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (header, payload) = signing_input.split_once('.')?;
    if payload.contains('.') {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")? != "HS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(secret, signing_input.as_bytes())
        .verify_slice(&signature)
        .ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if !claims.is_object() {
        return None;
    }
    let now = now() as f64;
    match claims.get("exp") {
        None => {}
        Some(exp) if exp.as_f64().is_some_and(|exp| now < exp) => {}
        Some(_) => return None,
    }
    match claims.get("nbf") {
        None => {}
        Some(nbf) if nbf.as_f64().is_some_and(|nbf| now >= nbf) => {}
        Some(_) => return None,
    }
    serde_json::from_value::<Dynamic>(claims).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Map {
        let mut map = Map::new();
        map.insert("sub".into(), Dynamic::from(42_i64));
        map
    }

    #[test]
    fn round_trip_and_tampering() {
        let token = sign(claims(), "s3cret", Some(60)).unwrap();
        let back = verify(&token, "s3cret").unwrap();
        assert_eq!(
            back.read_lock::<Map>().unwrap()["sub"].as_int().unwrap(),
            42
        );
        assert!(verify(&token, "other").unwrap().is_unit());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(verify(&tampered, "s3cret").unwrap().is_unit());
    }

    #[test]
    fn rejects_expired_and_alg_none() {
        let expired = sign(claims(), "k", Some(-10)).unwrap();
        assert!(verify(&expired, "k").unwrap().is_unit());
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":1}"#);
        assert!(verify(&format!("{header}.{payload}."), "k")
            .unwrap()
            .is_unit());
        let no_exp = sign(claims(), "k", None).unwrap();
        assert!(verify(&no_exp, "k").unwrap().is_map());
    }
}
