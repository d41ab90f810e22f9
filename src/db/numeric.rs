//! PostgreSQL's binary `numeric`: base-10000 digits with a weight, a sign and a scale.

use rhai::Dynamic;

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Decodes to an `i64` when whole and in range, else an `f64`.
pub fn decode(raw: &[u8]) -> Result<Dynamic, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        let bytes = raw
            .get(i * 2..i * 2 + 2)
            .ok_or("numeric: truncated value")?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let scale = word(3)?;
    if sign == NAN {
        return Ok(Dynamic::from_float(f64::NAN));
    }
    let mut digits = Vec::with_capacity(ndigits);
    for i in 0..ndigits {
        digits.push(word(4 + i)?);
    }
    // The decimal text, then a plain parse: exact for integers, nearest f64 otherwise.
    // Digit i is worth 10000^(weight - i).
    let group = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let integer: String = (0..=weight).map(|i| format!("{:04}", group(i))).collect();
    let fraction: String = ((weight + 1)..ndigits as i32)
        .map(|i| format!("{:04}", group(i)))
        .collect();
    let integer = integer.trim_start_matches('0');
    let integer = if integer.is_empty() { "0" } else { integer };
    let minus = if sign == NEGATIVE { "-" } else { "" };
    if scale == 0 {
        if let Ok(n) = format!("{minus}{integer}").parse::<i64>() {
            return Ok(Dynamic::from_int(n));
        }
    }
    let text = format!(
        "{minus}{integer}.{}",
        if fraction.is_empty() { "0" } else { &fraction }
    );
    Ok(Dynamic::from_float(text.parse::<f64>()?))
}

/// Encodes decimal text (`-12.50`) into `out`.
pub fn encode(text: &str, out: &mut bytes::BytesMut) -> Result<(), BoxError> {
    let bad = || -> BoxError { format!("'{text}' is not a decimal number").into() };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (integer.is_empty() && fraction.is_empty()) || !is_digits(integer) || !is_digits(fraction) {
        return Err(bad());
    }
    let integer = integer.trim_start_matches('0');
    let scale = u16::try_from(fraction.len()).map_err(|_| bad())?;
    // Pad to whole groups of four: the integer on the left, the fraction on the right.
    let int_pad = (4 - integer.len() % 4) % 4;
    let frac_pad = (4 - fraction.len() % 4) % 4;
    let padded = format!(
        "{}{integer}{fraction}{}",
        "0".repeat(int_pad),
        "0".repeat(frac_pad)
    );
    let int_groups = (integer.len() + int_pad) / 4;
    let mut digits: Vec<u16> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0')))
        .collect();
    let mut weight = int_groups as i32 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let ndigits = u16::try_from(digits.len()).map_err(|_| bad())?;
    let weight = i16::try_from(weight).map_err(|_| bad())?;
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    let sign = if negative && !digits.is_empty() {
        NEGATIVE
    } else {
        POSITIVE
    };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Dynamic {
        let mut out = bytes::BytesMut::new();
        encode(text, &mut out).unwrap();
        decode(&out).unwrap()
    }

    #[test]
    fn whole_numbers_are_ints_and_fractions_floats() {
        assert_eq!(round_trip("42").as_int().unwrap(), 42);
        assert_eq!(round_trip("-100000").as_int().unwrap(), -100000);
        assert_eq!(round_trip("0").as_int().unwrap(), 0);
        assert_eq!(round_trip("12.50").as_float().unwrap(), 12.5);
        assert_eq!(round_trip("0.00012").as_float().unwrap(), 0.00012);
        assert_eq!(round_trip("-12345678.9").as_float().unwrap(), -12345678.9);
        assert!(encode("1e5", &mut bytes::BytesMut::new()).is_err());
    }
}
