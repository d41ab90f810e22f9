//! `crypto::`: password hashing (argon2id), random tokens, UUIDs, SHA-256 and HMAC-SHA256 of
//! strings or blobs, and a constant-time comparison.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rhai::{Dynamic, Module};
use sha2::{Digest, Sha256};

use super::{off_worker, script_error, ScriptResult};

/// Largest `crypto::random_token` a script may ask for, in bytes.
const MAX_TOKEN_BYTES: i64 = 1024;

/// The `crypto` module.
pub fn module() -> Module {
    let mut module = Module::new();
    // argon2 computes for 20-40 ms: on the CPU threads, while the run waits.
    module.set_native_fn("hash_password", |pw: &str| {
        let pw = pw.to_string();
        off_worker(move || hash_password(&pw))?
    });
    module.set_native_fn("verify_password", |pw: &str, hash: &str| {
        let (pw, hash) = (pw.to_string(), hash.to_string());
        off_worker(move || verify_password(&pw, &hash))?
    });
    module.set_native_fn("random_token", random_token);
    module.set_native_fn("uuid", || Ok(uuid::Uuid::new_v4().to_string()));
    // Strings and blobs alike (a webhook signs `req.raw_body`, a blob).
    module.set_native_fn("sha256", |data: Dynamic| {
        Ok(crate::encoding::hex(&Sha256::digest(bytes_of(
            &data, "sha256",
        )?)))
    });
    module.set_native_fn("hmac_sha256", |key: Dynamic, msg: Dynamic| {
        Ok(crate::encoding::hex(&hmac_sha256(
            &bytes_of(&key, "hmac_sha256")?,
            &bytes_of(&msg, "hmac_sha256")?,
        )))
    });
    module.set_native_fn("equal", |a: Dynamic, b: Dynamic| {
        Ok(constant_time_eq(
            &bytes_of(&a, "equal")?,
            &bytes_of(&b, "equal")?,
        ))
    });
    module
}

/// The bytes of a string or blob argument.
fn bytes_of(value: &Dynamic, function: &str) -> ScriptResult<Vec<u8>> {
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        return Ok(text.as_bytes().to_vec());
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(blob.clone());
    }
    Err(script_error(format!(
        "crypto::{function}: takes strings or blobs, not a {}",
        value.type_name()
    )))
}

/// Whether `a == b`, in a time that depends on their lengths only (for comparing a
/// signature a client sent with the one computed).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a random salt.
fn hash_password(password: &str) -> ScriptResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| script_error(format!("crypto::hash_password failed: {err}")))
}

/// Whether `password` matches the PHC string `hash`; a `hash` that is not a PHC string is
/// an error (it is a bug in the app, not a wrong password).
fn verify_password(password: &str, hash: &str) -> ScriptResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|_| {
        script_error(
            "crypto::verify_password: the hash is not a PHC string from crypto::hash_password",
        )
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// `n` random bytes as URL-safe base64 without padding.
fn random_token(n: i64) -> ScriptResult<String> {
    if !(1..=MAX_TOKEN_BYTES).contains(&n) {
        return Err(script_error(format!(
            "crypto::random_token: the length must be 1 to {MAX_TOKEN_BYTES} bytes, not {n}"
        )));
    }
    let mut bytes = vec![0u8; n as usize];
    getrandom::fill(&mut bytes)
        .map_err(|err| script_error(format!("crypto::random_token: no randomness: {err}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// HMAC-SHA256 of `msg` under `key` (shared with `jwt`).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    mac(key, msg).finalize().into_bytes().to_vec()
}

/// A keyed HMAC-SHA256 over `msg`, ready to finalize or verify in constant time.
pub fn mac(key: &[u8], msg: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: the error case cannot happen.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(msg);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn known_digests() {
        assert_eq!(
            crate::encoding::hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            crate::encoding::hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
