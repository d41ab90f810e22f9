//! Byte encodings in one place: lower-case hex (written digit by digit: `format!("{:x}")`
//! goes through the formatting machinery, which costs more than the hash it prints on every
//! response), and strict percent-decoding (paths, queries, forms, cookies).

/// Appends the hex digits of `n`, zero-padded to at least `width` digits.
pub fn push_hex(out: &mut String, n: u64, width: usize) {
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    for i in (0..digits).rev() {
        out.push(char::from(
            b"0123456789abcdef"[(n >> (4 * i)) as usize & 0xF],
        ));
    }
}

/// Two hex digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        push_hex(&mut out, u64::from(b), 2);
    }
    out
}

/// Strict percent-decoding of bytes; `None` on a malformed escape.
pub fn decode_percent(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = hex_value(*raw.get(i + 1)?)?;
            let lo = hex_value(*raw.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formatting_machinery() {
        for (n, width) in [
            (0, 1),
            (0, 16),
            (10, 1),
            (0xabc, 2),
            (u64::MAX, 16),
            (7, 16),
        ] {
            let mut out = String::new();
            push_hex(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$x}"));
        }
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
    }
}
