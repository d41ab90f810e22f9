//! ISO 8601 dates and times: how database dates reach scripts, and how script strings
//! become date parameters.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `2024-05-01`.
pub fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `13:45:00`, or `13:45:00.123456` with a fraction.
pub fn time(t: Time) -> String {
    let mut out = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if t.microsecond() != 0 {
        let fraction = format!("{:06}", t.microsecond());
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out
}

/// `2024-05-01T13:45:00` (no zone: a `timestamp` column).
pub fn timestamp(t: PrimitiveDateTime) -> String {
    format!("{}T{}", date(t.date()), time(t.time()))
}

/// `2024-05-01T13:45:00Z` (a `timestamptz`, in UTC).
pub fn timestamptz(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    format!("{}T{}Z", date(utc.date()), time(utc.time()))
}

/// Parses `YYYY-MM-DD`, optionally followed by `T` or a space, a time, and `Z` or `±HH:MM`.
pub fn parse(text: &str) -> Result<(Date, Option<Time>, Option<UtcOffset>), String> {
    let bad = || format!("'{text}' is not an ISO 8601 date or timestamp");
    let text = text.trim();
    let date_part = text.get(..10).ok_or_else(bad)?;
    let mut fields = date_part.splitn(3, '-');
    let (y, m, d) = (fields.next(), fields.next(), fields.next());
    let year: i32 = y.and_then(|y| y.parse().ok()).ok_or_else(bad)?;
    let month: u8 = m.and_then(|m| m.parse().ok()).ok_or_else(bad)?;
    let day: u8 = d.and_then(|d| d.parse().ok()).ok_or_else(bad)?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Ok((date, None, None));
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    let (clock, offset) = split_offset(rest);
    let time = parse_time(clock).ok_or_else(bad)?;
    let offset = match offset {
        None => None,
        Some(o) => Some(parse_offset(o).ok_or_else(bad)?),
    };
    Ok((date, Some(time), offset))
}

fn split_offset(text: &str) -> (&str, Option<&str>) {
    if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        return (clock, Some("Z"));
    }
    match text.rfind(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    }
}

fn parse_offset(text: &str) -> Option<UtcOffset> {
    if text == "Z" {
        return Some(UtcOffset::UTC);
    }
    let sign: i8 = if text.starts_with('-') { -1 } else { 1 };
    let digits = text[1..].replace(':', "");
    let hours: i8 = digits.get(..2)?.parse().ok()?;
    let minutes: i8 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// Parses `HH:MM`, `HH:MM:SS` or `HH:MM:SS.ffffff`.
pub fn parse_time(text: &str) -> Option<Time> {
    let (clock, fraction) = match text.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (text, None),
    };
    let mut parts = clock.split(':');
    let hour: u8 = parts.next()?.parse().ok()?;
    let minute: u8 = parts.next()?.parse().ok()?;
    let second: u8 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    let micro = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{:0<6}", &f[..f.len().min(6)]);
            padded.parse().ok()?
        }
        Some(_) => return None,
    };
    Time::from_hms_micro(hour, minute, second, micro).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let (d, t, o) = parse("2024-02-29T13:45:06.5+02:00").unwrap();
        assert_eq!(date(d), "2024-02-29");
        assert_eq!(time(t.unwrap()), "13:45:06.5");
        let at = PrimitiveDateTime::new(d, t.unwrap()).assume_offset(o.unwrap());
        assert_eq!(timestamptz(at), "2024-02-29T11:45:06.5Z");
        assert!(parse("2024-13-01").is_err());
        assert!(parse("2024-01-01 10:00").unwrap().1.is_some());
    }
}
