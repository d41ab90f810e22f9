//! `const SCHEDULE = "0 3 * * *";` in a job file: when the server enqueues it. Five-field
//! cron (UTC, parsed by `croner`), `@hourly`, `@daily`, or `@every D` (ticks at multiples
//! of `D` since the Unix epoch, `D` at least 1 s).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds, Year};

use crate::settings::parse_duration;

/// When a scheduled job ticks.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// `@every D`: every `D` milliseconds, at multiples of `D` since the epoch.
    Every(i64),
    /// A five-field cron expression (`@hourly` and `@daily` are written as one).
    Cron(Box<croner::Cron>),
}

/// The shortest `@every`.
const SHORTEST: Duration = Duration::from_secs(1);

impl Schedule {
    /// Reads a schedule as a job file writes it; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(every) = text.strip_prefix("@every") {
            let every = parse_duration(every.trim()).map_err(|e| format!("@every: {e}"))?;
            if every < SHORTEST {
                return Err("@every needs 1s or more".into());
            }
            let ms = i64::try_from(every.as_millis()).map_err(|_| "@every: too long")?;
            return Ok(Schedule::Every(ms));
        }
        let cron = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            other if other.starts_with('@') => {
                return Err(format!(
                "'{other}' is not a schedule (use five cron fields, @every 10m, @hourly or @daily)"
            ))
            }
            other => other,
        };
        if cron.split_whitespace().count() != 5 {
            return Err(format!(
                "'{cron}' is not five cron fields (minute hour day month weekday), e.g. \"0 3 * * *\""
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        parser
            .parse(cron)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| format!("'{cron}': {e}"))
    }

    /// The first tick strictly after `ms` (milliseconds since the epoch); `None` when there
    /// is none (a cron date that never comes).
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        match self {
            Schedule::Every(every) => Some((ms.div_euclid(*every) + 1).saturating_mul(*every)),
            Schedule::Cron(cron) => {
                let at = DateTime::<Utc>::from_timestamp_millis(ms)?;
                let next = cron.find_next_occurrence(&at, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn every_ticks_at_multiples_since_the_epoch() {
        let s = Schedule::parse("@every 10m").unwrap();
        assert_eq!(s.next_after(0), Some(600_000));
        assert_eq!(s.next_after(599_999), Some(600_000));
        assert_eq!(s.next_after(600_000), Some(1_200_000));
        assert!(Schedule::parse("@every 500ms").is_err());
        assert!(Schedule::parse("@every soon").is_err());
    }

    #[test]
    fn cron_is_five_fields_in_utc() {
        let daily = Schedule::parse("0 3 * * *").unwrap();
        // 1970-01-01T00:00Z -> 03:00 that day, then the next day.
        assert_eq!(daily.next_after(0), Some(3 * HOUR));
        assert_eq!(daily.next_after(3 * HOUR), Some(27 * HOUR));
        assert_eq!(
            Schedule::parse("@hourly").unwrap().next_after(1),
            Some(HOUR)
        );
        assert_eq!(
            Schedule::parse("@daily").unwrap().next_after(1),
            Some(24 * HOUR)
        );
        for bad in [
            "0 3 * *",
            "0 0 3 * * *",
            "61 * * * *",
            "@weekly",
            "nonsense",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
