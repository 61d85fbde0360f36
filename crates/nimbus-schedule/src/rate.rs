//! `rate(N minutes|hours|days)`: a fixed period.

use std::fmt;

use chrono::TimeDelta;

use crate::error::ScheduleError;
use crate::expr::words;

/// The neutral rate form, as shown in messages.
pub(crate) const RATE_SHAPE: &str = "rate(N minutes|hours|days)";

/// The unit of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    /// `minute` / `minutes`
    Minute,
    /// `hour` / `hours`
    Hour,
    /// `day` / `days`
    Day,
}

impl RateUnit {
    /// How many minutes one unit lasts.
    pub fn minutes(self) -> u64 {
        match self {
            RateUnit::Minute => 1,
            RateUnit::Hour => 60,
            RateUnit::Day => 24 * 60,
        }
    }

    fn word(self, count: u32) -> &'static str {
        match (self, count == 1) {
            (RateUnit::Minute, true) => "minute",
            (RateUnit::Minute, false) => "minutes",
            (RateUnit::Hour, true) => "hour",
            (RateUnit::Hour, false) => "hours",
            (RateUnit::Day, true) => "day",
            (RateUnit::Day, false) => "days",
        }
    }
}

/// A fixed interval, at least one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u32,
    unit: RateUnit,
}

impl Rate {
    /// `count` units; `None` when `count` is 0.
    pub fn new(count: u32, unit: RateUnit) -> Option<Self> {
        (count > 0).then_some(Rate { count, unit })
    }

    /// How many units.
    pub fn count(self) -> u32 {
        self.count
    }

    /// The unit.
    pub fn unit(self) -> RateUnit {
        self.unit
    }

    /// The period in minutes.
    pub fn total_minutes(self) -> u64 {
        u64::from(self.count) * self.unit.minutes()
    }

    /// The period.
    pub fn period(self) -> TimeDelta {
        // At most u32::MAX days, far inside TimeDelta's range.
        TimeDelta::minutes(self.total_minutes() as i64)
    }
}

impl fmt::Display for Rate {
    /// `rate(1 minute)`, `rate(5 minutes)`: singular unit for 1, plural otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate({} {})", self.count, self.unit.word(self.count))
    }
}

/// Parses the text between `rate(` and `)`, found at byte `start`; `close` is the offset of `)`.
pub(crate) fn parse_rate(inner: &str, start: usize, close: usize) -> Result<Rate, ScheduleError> {
    let words = words(inner, start);
    let Some(number) = words.first() else {
        return Err(ScheduleError::at(close, "missing interval in `rate(...)`")
            .hint(format!("write `{RATE_SHAPE}`, e.g. `rate(5 minutes)`")));
    };
    let unit_word = words.get(1);
    let count = parse_count(number.text, number.at, unit_word.map(|w| w.text))?;
    let Some(unit_word) = unit_word else {
        let n = number.text;
        return Err(
            ScheduleError::at(close, format!("missing unit after `{n}`")).hint(format!(
                "write `rate({n} minutes)`, `rate({n} hours)` or `rate({n} days)`"
            )),
        );
    };
    let unit = parse_unit(unit_word.text, unit_word.at, count)?;
    if let Some(extra) = words.get(2) {
        return Err(ScheduleError::at(
            extra.at,
            format!("unexpected `{}` after the unit", extra.text),
        )
        .hint(format!("the form is `{RATE_SHAPE}`")));
    }
    Ok(Rate { count, unit })
}

fn parse_count(text: &str, at: usize, unit: Option<&str>) -> Result<u32, ScheduleError> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == text.len() {
        return match text.parse::<u32>() {
            Ok(0) => Err(
                ScheduleError::at(at, "rate interval must be at least 1, found `0`")
                    .hint("the shortest interval is `rate(1 minute)`"),
            ),
            Ok(count) => Ok(count),
            Err(_) => Err(ScheduleError::at(
                at,
                format!("rate interval `{text}` is too large"),
            )),
        };
    }
    if text.starts_with('-') {
        return Err(ScheduleError::at(
            at,
            format!("rate interval must be a positive whole number, found `{text}`"),
        ));
    }
    if let Some(value) = text
        .contains('.')
        .then(|| text.parse::<f64>().ok())
        .flatten()
    {
        let smaller = match unit.map(str::to_ascii_lowercase).as_deref() {
            Some("hour" | "hours") => Some((value * 60.0, "minutes")),
            Some("day" | "days") => Some((value * 24.0, "hours")),
            _ => None,
        };
        let hint = match smaller {
            Some((n, unit)) if n.fract() == 0.0 && n >= 1.0 => {
                format!("use a smaller unit, e.g. `rate({n} {unit})`")
            }
            _ => "use a whole number of a smaller unit".to_string(),
        };
        return Err(ScheduleError::at(
            at,
            format!("rate interval must be a whole number, found `{text}`"),
        )
        .hint(hint));
    }
    if digits > 0 {
        let (n, unit) = text.split_at(digits);
        return Err(ScheduleError::at(
            at + digits,
            format!("expected a space between `{n}` and `{unit}`"),
        )
        .hint(format!("write `rate({n} {unit})`")));
    }
    Err(ScheduleError::at(
        at,
        format!("expected a whole number of minutes, hours or days, found `{text}`"),
    )
    .hint(format!("write `{RATE_SHAPE}`, e.g. `rate(5 minutes)`")))
}

fn parse_unit(text: &str, at: usize, count: u32) -> Result<RateUnit, ScheduleError> {
    let unit = match text.to_ascii_lowercase().as_str() {
        "minute" | "minutes" => return Ok(RateUnit::Minute),
        "hour" | "hours" => return Ok(RateUnit::Hour),
        "day" | "days" => return Ok(RateUnit::Day),
        unit => unit.to_string(),
    };
    let hint = match unit.as_str() {
        "second" | "seconds" | "sec" | "secs" | "s" => {
            "the shortest interval is `rate(1 minute)`".to_string()
        }
        "week" | "weeks" | "w" => match count.checked_mul(7) {
            Some(days) => format!("use days, e.g. `rate({days} days)`"),
            None => "use `days`".to_string(),
        },
        "min" | "mins" | "m" => format!("write `rate({count} minutes)`"),
        "h" | "hr" | "hrs" => format!("write `rate({count} hours)`"),
        "d" => format!("write `rate({count} days)`"),
        _ => "use `minutes`, `hours` or `days`".to_string(),
    };
    Err(ScheduleError::at(at, format!("unknown rate unit `{text}`")).hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{ScheduleExpr, parse};

    fn rate(src: &str) -> Rate {
        match parse(src) {
            Ok(ScheduleExpr::Rate(rate)) => rate,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn units_normalize_to_singular_for_one() {
        for (src, canonical, minutes) in [
            ("rate(1 minute)", "rate(1 minute)", 1),
            ("rate(1 minutes)", "rate(1 minute)", 1),
            ("rate(5 minute)", "rate(5 minutes)", 5),
            ("rate(1 Hours)", "rate(1 hour)", 60),
            ("rate(12 hour)", "rate(12 hours)", 720),
            ("rate(1 day)", "rate(1 day)", 1440),
            ("rate(3 DAYS)", "rate(3 days)", 4320),
        ] {
            let r = rate(src);
            assert_eq!(
                (r.to_string().as_str(), r.total_minutes()),
                (canonical, minutes),
                "{src}"
            );
        }
    }

    #[test]
    fn period_matches_minutes() {
        assert_eq!(rate("rate(2 hours)").period(), TimeDelta::hours(2));
        assert_eq!(Rate::new(0, RateUnit::Day), None);
        let longest = Rate::new(u32::MAX, RateUnit::Day).unwrap();
        assert_eq!(longest.period().num_days(), i64::from(u32::MAX));
    }
}
