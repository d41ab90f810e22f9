//! Lower-case hex text, written digit by digit: `format!("{:x}")` goes through the
//! formatting machinery, which costs more than the hash it prints on every response.

/// Appends the hex digits of `n`, zero-padded to at least `width` digits.
pub fn push(out: &mut String, n: u64, width: usize) {
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    for i in (0..digits).rev() {
        out.push(char::from(
            b"0123456789abcdef"[(n >> (4 * i)) as usize & 0xF],
        ));
    }
}

/// Two hex digits per byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        push(&mut out, u64::from(b), 2);
    }
    out
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
            push(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$x}"));
        }
        assert_eq!(encode(&[0, 15, 16, 255]), "000f10ff");
    }
}
