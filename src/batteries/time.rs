//! `time::`: the app's wall clock and RFC 3339 text (docs/batteries.md, "time"). Instants are
//! integers, milliseconds since the Unix epoch, as `Date.now()` gives them in JavaScript;
//! `now` reads the app's clock ([`crate::clock`]), which `rhapi test`'s `set_time` freezes.
//! Every instant `iso` writes and `parse` reads lies in the years 0000 to 9999 (RFC 3339's
//! four-digit years); anything outside is a catchable error.

use std::sync::Arc;

use rhai::{Dynamic, Module, NativeCallContext, INT};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use super::{at, script_error};
use crate::app_context::AppContext;

/// `0000-01-01T00:00:00.000Z`.
pub const MIN_MS: i64 = -62_167_219_200_000;
/// `9999-12-31T23:59:59.999Z`.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Longer text is no timestamp (the longest, with nanoseconds and an offset, has 35
/// characters); checked first so that a megabyte string costs nothing.
const MAX_TEXT: usize = 64;

/// The `time` module, reading the clock of `app`.
pub fn module(app: &Arc<AppContext>) -> Module {
    let mut module = Module::new();
    let app = Arc::clone(app);
    module.set_native_fn("now", move || Ok(app.clock.now_ms()));
    module.set_native_fn("iso", |ctx: NativeCallContext, ms: INT| {
        at(&ctx, iso(ms).map_err(|e| fail("iso", e)))
    });
    module.set_native_fn("parse", |ctx: NativeCallContext, text: &str| {
        at(&ctx, parse(text).map_err(|e| fail("parse", e)))
    });
    module.set_native_fn(
        "add",
        |ctx: NativeCallContext, ms: INT, duration: Dynamic| {
            at(&ctx, add(ms, &duration).map_err(|e| fail("add", e)))
        },
    );
    module
}

fn fail(call: &str, message: String) -> Box<rhai::EvalAltResult> {
    script_error(format!("time::{call}: {message}"))
}

/// Whether `ms` lies in the years 0000 to 9999.
fn check_range(ms: i64) -> Result<i64, String> {
    if (MIN_MS..=MAX_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "{ms} is out of range: instants lie between {MIN_MS} (year 0000) and {MAX_MS} (year 9999)"
        ))
    }
}

/// `2026-12-05T14:00:00.000Z`: UTC, always with milliseconds.
pub fn iso(ms: i64) -> Result<String, String> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(check_range(ms)?) * 1_000_000)
        .map_err(|err| err.to_string())?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
}

/// Milliseconds of an RFC 3339 timestamp (`2026-12-05T14:00:00Z`, `...14:00:00.25+05:30`;
/// `T`, `t` or a space between date and time; digits past the millisecond dropped, toward
/// the past), or of a date alone (`2026-12-05`: midnight UTC). A time without a zone is an
/// error: which zone it meant cannot be known.
pub fn parse(text: &str) -> Result<i64, String> {
    const EXAMPLES: &str =
        "write e.g. 2026-12-05T14:00:00Z, 2026-12-05T14:00:00.250+05:30 or a date, 2026-12-05";
    let shown = shown(text);
    let invalid = || format!("{shown} is not an RFC 3339 date or timestamp: {EXAMPLES}");
    if text.len() > MAX_TEXT {
        return Err(invalid());
    }
    if text.len() == 10 {
        return date_only(text).ok_or_else(invalid);
    }
    if !matches!(text.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return Err(invalid());
    }
    match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => {
            let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
            check_range(i64::try_from(ms).map_err(|_| invalid())?)
        }
        // The zone is what is missing when nothing after the date could start one.
        Err(_)
            if !text[10..].contains(['Z', 'z', '+', '-']) && date_only(&text[..10]).is_some() =>
        {
            Err(format!(
                "{shown} has no time zone: add Z for UTC or an offset such as +01:00 ({EXAMPLES})"
            ))
        }
        Err(_) => Err(invalid()),
    }
}

/// `YYYY-MM-DD` at midnight UTC.
fn date_only(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let seconds = date.midnight().assume_utc().unix_timestamp();
    seconds.checked_mul(1000)
}

/// `ms` moved by `duration`: a duration string (`"10m"`, `"-1d"` back) or an integer of
/// milliseconds (negative back).
pub fn add(ms: i64, duration: &Dynamic) -> Result<i64, String> {
    let delta = if let Ok(n) = duration.as_int() {
        n
    } else if let Some(text) = duration.read_lock::<rhai::ImmutableString>() {
        let (sign, magnitude) = match text.trim().strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text.as_str()),
        };
        sign * duration_ms(magnitude)?
    } else {
        return Err(format!(
            "the duration must be a string such as \"10m\" or an integer of milliseconds, not {}",
            duration.type_name()
        ));
    };
    let moved = ms
        .checked_add(delta)
        .ok_or_else(|| format!("{ms} + {delta} is out of range"))?;
    check_range(moved)
}

/// Milliseconds of a duration string (`"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"1d"`), at most
/// what an instant can span.
pub fn duration_ms(text: &str) -> Result<i64, String> {
    let duration = crate::settings::parse_duration(text)?;
    i64::try_from(duration.as_millis())
        .ok()
        .filter(|ms| *ms <= MAX_MS - MIN_MS)
        .ok_or_else(|| format!("duration '{}' is too long", shown_raw(text)))
}

/// `text` quoted for a message, cut when long.
fn shown(text: &str) -> String {
    format!("'{}'", shown_raw(text))
}

fn shown_raw(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> i64 {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn iso_writes_utc_with_milliseconds() {
        assert_eq!(iso(0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_796_479_200_000).unwrap(), "2026-12-05T14:00:00.000Z");
        assert_eq!(iso(-1).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(MIN_MS).unwrap(), "0000-01-01T00:00:00.000Z");
        assert_eq!(iso(MAX_MS).unwrap(), "9999-12-31T23:59:59.999Z");
        assert!(iso(MAX_MS + 1).unwrap_err().contains("out of range"));
        assert!(iso(MIN_MS - 1).is_err());
        assert!(iso(i64::MAX).is_err() && iso(i64::MIN).is_err());
    }

    #[test]
    fn parse_reads_rfc_3339_and_round_trips_with_iso() {
        assert_eq!(ok("2026-12-05T14:00:00Z"), 1_796_479_200_000);
        assert_eq!(ok("2026-12-05T14:00:00.000Z"), 1_796_479_200_000);
        assert_eq!(ok("2026-12-05t14:00:00z"), 1_796_479_200_000);
        assert_eq!(ok("2026-12-05 14:00:00Z"), 1_796_479_200_000);
        for ms in [0, -1, 1_796_479_200_123, MIN_MS, MAX_MS] {
            assert_eq!(ok(&iso(ms).unwrap()), ms);
        }
    }

    #[test]
    fn offsets_move_the_instant_to_utc() {
        let utc = ok("2026-12-05T14:00:00Z");
        assert_eq!(ok("2026-12-05T19:30:00+05:30"), utc);
        assert_eq!(ok("2026-12-05T09:00:00-05:00"), utc);
        assert_eq!(ok("2026-12-05T14:00:00+00:00"), utc);
        assert_eq!(ok("2026-12-05T14:00:00-00:00"), utc);
        assert_eq!(
            iso(ok("2026-12-06T01:00:00+11:00")).unwrap(),
            "2026-12-05T14:00:00.000Z"
        );
    }

    #[test]
    fn fractions_keep_milliseconds_and_drop_the_rest_toward_the_past() {
        let utc = ok("2026-12-05T14:00:00Z");
        assert_eq!(ok("2026-12-05T14:00:00.5Z"), utc + 500);
        assert_eq!(ok("2026-12-05T14:00:00.25Z"), utc + 250);
        assert_eq!(ok("2026-12-05T14:00:00.123456789Z"), utc + 123);
        assert_eq!(ok("2026-12-05T14:00:00.9999Z"), utc + 999);
        assert_eq!(ok("1969-12-31T23:59:59.9995Z"), -1);
    }

    #[test]
    fn a_date_alone_is_midnight_utc_and_leap_days_are_checked() {
        assert_eq!(ok("2026-12-05"), ok("2026-12-05T00:00:00Z"));
        assert_eq!(ok("1970-01-01"), 0);
        assert_eq!(ok("2024-02-29"), ok("2024-02-28") + 86_400_000);
        assert_eq!(ok("2000-02-29"), ok("2000-03-01") - 86_400_000);
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("2026-02-29T00:00:00Z").is_err());
        assert_eq!(ok("2024-02-29T23:59:59Z") + 1000, ok("2024-03-01"));
    }

    #[test]
    fn invalid_text_says_what_to_write() {
        let no_zone = parse("2026-12-05T14:00:00").unwrap_err();
        assert!(no_zone.contains("has no time zone"), "{no_zone}");
        assert!(parse("2026-12-05T14:00:00.5")
            .unwrap_err()
            .contains("no time zone"));
        for bad in [
            "",
            "now",
            "2026-12-5",
            "2026/12/05",
            "12/05/2026",
            "2026-12-05T14:00Z",
            "2026-12-05T25:00:00Z",
            "2026-12-05T14:60:00Z",
            "2026-12-05T14:00:00+24:00",
            "2026-12-05X14:00:00Z",
            "2026-12-05T14:00:00Z trailing",
            "+2026-12-05T14:00:00Z",
            "1796479200000",
            "2026-12-05T14:00:00.Z",
            "٢٠٢٦-١٢-٠٥",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.contains("not an RFC 3339") || err.contains("no time zone"),
                "{bad}: {err}"
            );
        }
        let long = "9".repeat(1_000_000);
        let err = parse(&long).unwrap_err();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn the_years_0000_to_9999_are_the_range() {
        assert_eq!(ok("0000-01-01"), MIN_MS);
        assert!(parse("0000-01-01T00:00:00+01:00")
            .unwrap_err()
            .contains("out of range"));
        assert!(parse("9999-12-31T23:59:59-01:00").is_err());
    }

    #[test]
    fn add_takes_duration_strings_and_milliseconds() {
        let at = ok("2026-12-05T14:00:00Z");
        let add_text = |d: &str| add(at, &Dynamic::from(d.to_string()));
        assert_eq!(add_text("10m").unwrap(), at + 600_000);
        assert_eq!(add_text("500ms").unwrap(), at + 500);
        assert_eq!(add_text("2h").unwrap(), at + 7_200_000);
        assert_eq!(add_text("1d").unwrap(), ok("2026-12-06T14:00:00Z"));
        assert_eq!(add_text("-1d").unwrap(), ok("2026-12-04T14:00:00Z"));
        assert_eq!(add(at, &Dynamic::from(-1_000_i64)).unwrap(), at - 1000);
        assert!(add_text("soon").is_err());
        assert!(add_text("10 years").is_err());
        assert!(add_text("99999999999999d").is_err());
        assert!(add(MAX_MS, &Dynamic::from(1_i64))
            .unwrap_err()
            .contains("out of range"));
        assert!(add(i64::MAX, &Dynamic::from(i64::MAX)).is_err());
        assert!(add(at, &Dynamic::from(1.5_f64)).is_err());
    }
}
