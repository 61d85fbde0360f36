//! The five-field unix cron model and its parser.
//!
//! Each field keeps both the parsed set of values (a bitset, for matching) and its list items as
//! written, with names turned into numbers (for translating without expanding everything).

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::error::ScheduleError;
use crate::expr::{Word, words};

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
pub(crate) const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The neutral field list, as shown in messages.
pub(crate) const CRON_SHAPE: &str = "cron(minute hour day-of-month month day-of-week)";

/// Which of the five cron fields a [`Field`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Minute of the hour, 0-59.
    Minute,
    /// Hour of the day, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month, 1-12 or `JAN`-`DEC`.
    Month,
    /// Day of the week, 0-7 or `SUN`-`SAT`; 0 and 7 are both Sunday.
    DayOfWeek,
}

impl FieldKind {
    /// The five kinds in the order they are written.
    pub const ALL: [FieldKind; 5] = [
        FieldKind::Minute,
        FieldKind::Hour,
        FieldKind::DayOfMonth,
        FieldKind::Month,
        FieldKind::DayOfWeek,
    ];

    /// The field's name as used in messages, e.g. `day-of-month`.
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        }
    }

    /// Smallest value.
    pub fn min(self) -> u8 {
        match self {
            FieldKind::Minute | FieldKind::Hour | FieldKind::DayOfWeek => 0,
            FieldKind::DayOfMonth | FieldKind::Month => 1,
        }
    }

    /// Largest value that may be written (7 for day-of-week, another name for Sunday).
    pub fn max(self) -> u8 {
        match self {
            FieldKind::Minute => 59,
            FieldKind::Hour => 23,
            FieldKind::DayOfMonth => 31,
            FieldKind::Month => 12,
            FieldKind::DayOfWeek => 7,
        }
    }

    /// Largest value `*` and an open step `a/n` run up to (6 for day-of-week).
    pub(crate) fn last(self) -> u8 {
        match self {
            FieldKind::DayOfWeek => 6,
            kind => kind.max(),
        }
    }

    fn names(self) -> Option<&'static [&'static str]> {
        match self {
            FieldKind::Month => Some(&MONTH_NAMES),
            FieldKind::DayOfWeek => Some(&DAY_NAMES),
            _ => None,
        }
    }

    fn allowed(self) -> &'static str {
        match self {
            FieldKind::Minute => "0-59",
            FieldKind::Hour => "0-23",
            FieldKind::DayOfMonth => "1-31",
            FieldKind::Month => "1-12 or JAN-DEC",
            FieldKind::DayOfWeek => "0-7 or SUN-SAT",
        }
    }

    /// How many distinct values the field has, which is also the largest useful step.
    fn span(self) -> u8 {
        self.last() - self.min() + 1
    }
}

/// One value as written: a number, or a name that stands for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) number: u8,
    named: bool,
}

/// What a list item covers before its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// `*`
    Any,
    /// `5` or `MON`; with a step, `5/10` runs from 5 to the field's last value.
    Value(Value),
    /// `1-5`, never reversed.
    Range(Value, Value),
}

/// One comma-separated item of a field: `*`, `5`, `1-5`, `*/15`, `10-50/10` or `5/10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) base: Base,
    pub(crate) step: Option<u8>,
}

impl Item {
    /// The values this item covers as written (day-of-week may include 7).
    pub(crate) fn values(self, kind: FieldKind) -> impl Iterator<Item = u8> {
        let (low, high) = match self.base {
            Base::Any => (kind.min(), kind.last()),
            Base::Value(v) if self.step.is_some() => (v.number, kind.last().max(v.number)),
            Base::Value(v) => (v.number, v.number),
            Base::Range(a, b) => (a.number, b.number),
        };
        (low..=high).step_by(usize::from(self.step.unwrap_or(1)))
    }

    /// Whether the item names day-of-week 7, which some targets do not accept.
    pub(crate) fn mentions_seven(self) -> bool {
        match self.base {
            Base::Any => false,
            Base::Value(v) => v.number == 7,
            Base::Range(_, b) => b.number == 7,
        }
    }
}

/// One parsed cron field: its values as a set, and its items as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    kind: FieldKind,
    items: Vec<Item>,
    /// Bit `v` is set when value `v` matches; day-of-week 7 is stored as 0.
    set: u64,
}

impl Field {
    /// Which field this is.
    pub fn kind(&self) -> FieldKind {
        self.kind
    }

    /// Whether `value` is in the field (for day-of-week, 7 is Sunday like 0).
    pub fn contains(&self, value: u8) -> bool {
        let value = if self.kind == FieldKind::DayOfWeek && value == 7 {
            0
        } else {
            value
        };
        value < 64 && self.set & (1 << value) != 0
    }

    /// The matching values in ascending order (day-of-week as 0-6, Sunday 0).
    pub fn values(&self) -> impl Iterator<Item = u8> + '_ {
        (0..64).filter(|&v| self.set & (1u64 << v) != 0)
    }

    /// Whether the field is written starting with `*` (`*` or `*/n`): the unix cron test that
    /// decides whether day-of-month and day-of-week combine with "and" or with "or".
    pub fn is_wildcard(&self) -> bool {
        matches!(self.items[0].base, Base::Any)
    }

    /// Whether the field matches every value and is written as a wildcard, i.e. it restricts nothing.
    pub fn is_every(&self) -> bool {
        let all = (self.kind.min()..=self.kind.last()).fold(0u64, |set, v| set | 1 << v);
        self.is_wildcard() && self.set == all
    }

    pub(crate) fn items(&self) -> &[Item] {
        &self.items
    }
}

impl fmt::Display for Field {
    /// The field in canonical neutral form: numbers without leading zeros, names upper-case.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = |v: Value| match self.kind.names() {
            Some(names) if v.named => names[usize::from(v.number - self.kind.min())].to_string(),
            _ => v.number.to_string(),
        };
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match item.base {
                Base::Any => f.write_str("*")?,
                Base::Value(v) => f.write_str(&value(v))?,
                Base::Range(a, b) => write!(f, "{}-{}", value(a), value(b))?,
            }
            if let Some(step) = item.step {
                write!(f, "/{step}")?;
            }
        }
        Ok(())
    }
}

/// A parsed five-field unix cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

impl Cron {
    /// The minute field.
    pub fn minute(&self) -> &Field {
        &self.minute
    }

    /// The hour field.
    pub fn hour(&self) -> &Field {
        &self.hour
    }

    /// The day-of-month field.
    pub fn day_of_month(&self) -> &Field {
        &self.day_of_month
    }

    /// The month field.
    pub fn month(&self) -> &Field {
        &self.month
    }

    /// The day-of-week field.
    pub fn day_of_week(&self) -> &Field {
        &self.day_of_week
    }

    /// Whether a day matches when *either* day field matches: true when neither is a wildcard.
    pub fn either_day_matches(&self) -> bool {
        !self.day_of_month.is_wildcard() && !self.day_of_week.is_wildcard()
    }

    /// Whether the schedule fires on `date` (any time of day).
    pub fn matches_date(&self, date: NaiveDate) -> bool {
        let in_month = self.day_of_month.contains(date.day() as u8);
        let in_week = self
            .day_of_week
            .contains(date.weekday().num_days_from_sunday() as u8);
        self.month.contains(date.month() as u8)
            && if self.either_day_matches() {
                in_month || in_week
            } else {
                in_month && in_week
            }
    }

    /// Whether the schedule fires at the local wall-clock time `at` (seconds are ignored).
    pub fn matches(&self, at: NaiveDateTime) -> bool {
        self.matches_date(at.date())
            && self.hour.contains(at.hour() as u8)
            && self.minute.contains(at.minute() as u8)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cron({} {} {} {} {})",
            self.minute, self.hour, self.day_of_month, self.month, self.day_of_week
        )
    }
}

/// Parses the text between `cron(` and `)`; `start` is its byte offset in the whole expression
/// and `close` the offset of the `)`, so that errors point into the caller's string.
pub(crate) fn parse_cron(inner: &str, start: usize, close: usize) -> Result<Cron, ScheduleError> {
    let words = words(inner, start);
    let &[minute, hour, day_of_month, month, day_of_week] = words.as_slice() else {
        let at = words.get(5).map_or(close, |w| w.at);
        let extra = if words.len() == 6 {
            ", without seconds or year"
        } else {
            ""
        };
        return Err(ScheduleError::at(
            at,
            format!("expected 5 fields in `cron(...)`, found {}", words.len()),
        )
        .hint(format!("the neutral format is `{CRON_SHAPE}`{extra}")));
    };
    let cron = Cron {
        minute: parse_field(FieldKind::Minute, minute)?,
        hour: parse_field(FieldKind::Hour, hour)?,
        day_of_month: parse_field(FieldKind::DayOfMonth, day_of_month)?,
        month: parse_field(FieldKind::Month, month)?,
        day_of_week: parse_field(FieldKind::DayOfWeek, day_of_week)?,
    };
    check_day_exists(&cron, day_of_month)?;
    Ok(cron)
}

/// Rejects a day-of-month that no selected month has (`cron(0 0 30 2 *)` would never fire).
fn check_day_exists(cron: &Cron, word: Word<'_>) -> Result<(), ScheduleError> {
    if cron.day_of_month.is_wildcard() || !cron.day_of_week.is_wildcard() {
        return Ok(());
    }
    let first_day = cron.day_of_month.values().next().unwrap_or(1);
    let longest = cron.month.values().map(days_in_month).max().unwrap_or(31);
    if first_day <= longest {
        return Ok(());
    }
    Err(ScheduleError::at(
        word.at,
        format!(
            "day-of-month `{}` never occurs in month `{}`, so the schedule never fires",
            word.text, cron.month
        ),
    )
    .hint(format!(
        "month `{}` allows days up to {longest}; pick a day-of-month that exists",
        cron.month
    )))
}

/// The most days `month` can have (29 for February).
fn days_in_month(month: u8) -> u8 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse_field(kind: FieldKind, word: Word<'_>) -> Result<Field, ScheduleError> {
    let mut items = Vec::new();
    let mut at = word.at;
    for part in word.text.split(',') {
        if part.is_empty() {
            return Err(ScheduleError::at(
                at,
                format!("empty list item in the `{}` field", kind.name()),
            )
            .hint("remove the extra `,`"));
        }
        items.push(parse_item(kind, part, at)?);
        at += part.len() + 1;
    }
    let set = items
        .iter()
        .flat_map(|item| item.values(kind))
        .map(|v| {
            if kind == FieldKind::DayOfWeek && v == 7 {
                0
            } else {
                v
            }
        })
        .fold(0u64, |set, v| set | 1 << v);
    Ok(Field { kind, items, set })
}

fn parse_item(kind: FieldKind, part: &str, at: usize) -> Result<Item, ScheduleError> {
    if let Some(i) = part.find(['?', '#']) {
        return Err(not_standard(&part[i..=i], at + i));
    }
    if let Some((i, c)) = part
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '*' | '-' | '/')))
    {
        return Err(ScheduleError::at(at + i, format!("unexpected character `{c}` in the `{}` field", kind.name()))
            .hint(format!("a field is `*`, a value, a range `a-b` or a step `*/n`, joined by `,`; allowed values are {}", kind.allowed())));
    }
    let (base, step) = match part.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(kind, step, at + base.len() + 1)?)),
        None => (part, None),
    };
    let base = if base == "*" {
        Base::Any
    } else if base.is_empty() {
        return Err(ScheduleError::at(
            at,
            format!("missing value before `/` in the `{}` field", kind.name()),
        )
        .hint("write `*/n` for every n-th value"));
    } else if let Some((low, high)) = base.split_once('-') {
        let a = parse_value(kind, low, at)?;
        let b = parse_value(kind, high, at + low.len() + 1)?;
        if a.number > b.number {
            return Err(reversed(kind, base, a, b, at));
        }
        Base::Range(a, b)
    } else {
        Base::Value(parse_value(kind, base, at)?)
    };
    Ok(Item { base, step })
}

fn parse_step(kind: FieldKind, text: &str, at: usize) -> Result<u8, ScheduleError> {
    if text.is_empty() {
        return Err(ScheduleError::at(
            at,
            format!("missing step after `/` in the `{}` field", kind.name()),
        )
        .hint("write a step such as `*/15`"));
    }
    if let Some(i) = text.find(|c: char| !c.is_ascii_digit()) {
        let c = &text[i..=i];
        return Err(ScheduleError::at(
            at + i,
            format!(
                "unexpected `{c}` in the step of the `{}` field",
                kind.name()
            ),
        )
        .hint("a step is a whole number, as in `*/15` or `10-50/10`"));
    }
    let step = text.parse::<u32>().unwrap_or(u32::MAX);
    if step == 0 {
        return Err(ScheduleError::at(
            at,
            format!(
                "step in the `{}` field must be at least 1, found `0`",
                kind.name()
            ),
        )
        .hint("`*/1` is the same as `*`"));
    }
    if step > u32::from(kind.span()) {
        return Err(ScheduleError::at(
            at,
            format!(
                "step `{text}` is larger than the `{}` field's range ({})",
                kind.name(),
                kind.allowed()
            ),
        ));
    }
    Ok(step as u8)
}

fn parse_value(kind: FieldKind, text: &str, at: usize) -> Result<Value, ScheduleError> {
    let field = kind.name();
    if text.is_empty() {
        return Err(ScheduleError::at(
            at,
            format!("missing value in a range of the `{field}` field"),
        )
        .hint("a range is written `a-b`, e.g. `1-5`"));
    }
    if let Some(i) = text.find(['*', '-']) {
        let c = &text[i..=i];
        return Err(
            ScheduleError::at(at + i, format!("unexpected `{c}` in the `{field}` field"))
                .hint("a range is written `a-b` with two values, e.g. `1-5`"),
        );
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == text.len() {
        let number = text.parse::<u32>().unwrap_or(u32::MAX);
        if number < u32::from(kind.min()) || number > u32::from(kind.max()) {
            let mut error = ScheduleError::at(
                at,
                format!(
                    "`{text}` is out of range for the `{field}` field ({})",
                    kind.allowed()
                ),
            );
            if kind == FieldKind::Hour && number == 24 {
                error = error.hint("midnight is hour `0`");
            }
            return Err(error);
        }
        return Ok(Value {
            number: number as u8,
            named: false,
        });
    }
    let letters = text[digits..].to_ascii_uppercase();
    if matches!(letters.as_str(), "L" | "W" | "LW") {
        return Err(not_standard(&text[digits..digits + 1], at + digits));
    }
    if let (0, Some(names)) = (digits, kind.names()) {
        if let Some(i) = names.iter().position(|name| *name == letters) {
            return Ok(Value {
                number: i as u8 + kind.min(),
                named: true,
            });
        }
        let (what, example) = if kind == FieldKind::Month {
            ("month", "JAN-DEC")
        } else {
            ("day", "SUN-SAT")
        };
        return Err(ScheduleError::at(
            at,
            format!("unknown {what} name `{text}` in the `{field}` field"),
        )
        .hint(format!(
            "use three-letter names {example}, or numbers {}",
            kind.allowed()
        )));
    }
    Err(ScheduleError::at(
        at,
        format!(
            "invalid value `{text}` in the `{field}` field ({})",
            kind.allowed()
        ),
    ))
}

fn not_standard(what: &str, at: usize) -> ScheduleError {
    let (meaning, fix) = match what {
        "?" => ("`?` means \"any\"", "use `*` instead"),
        "#" => (
            "`#` picks the n-th weekday of the month",
            "list the days of the month instead",
        ),
        "L" | "l" => ("`L` means the last day", "list the days explicitly"),
        _ => ("`W` means the nearest weekday", "list the days explicitly"),
    };
    ScheduleError::at(
        at,
        format!(
            "`{}` is not in standard cron; the neutral format is 5-field unix cron",
            what.to_ascii_uppercase()
        ),
    )
    .hint(format!("{meaning} in AWS/Quartz cron; {fix}"))
}

fn reversed(kind: FieldKind, text: &str, a: Value, b: Value, at: usize) -> ScheduleError {
    let message = format!("range `{text}` is reversed in the `{}` field", kind.name());
    let wrap = if a.number <= kind.last() {
        format!("{}-{},{}-{}", a.number, kind.last(), kind.min(), b.number)
    } else {
        format!("{}-{}", kind.min(), b.number)
    };
    ScheduleError::at(at, message).hint(format!("ranges do not wrap around; write `{wrap}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{ScheduleExpr, parse};

    fn cron(src: &str) -> Cron {
        match parse(src) {
            Ok(ScheduleExpr::Cron(cron)) => cron,
            other => panic!("{src}: {other:?}"),
        }
    }

    fn values(field: &Field) -> Vec<u8> {
        field.values().collect()
    }

    #[test]
    fn fields_keep_their_sets() {
        let c = cron("cron(*/15 1-20/10 5/10 jan,Mar-may SUN,7)");
        assert_eq!(values(c.minute()), [0, 15, 30, 45]);
        assert_eq!(values(c.hour()), [1, 11]);
        assert_eq!(values(c.day_of_month()), [5, 15, 25]);
        assert_eq!(values(c.month()), [1, 3, 4, 5]);
        assert_eq!(values(c.day_of_week()), [0]);
        assert!(c.day_of_week().contains(7));
        assert!(!c.day_of_month().is_wildcard());
        assert!(c.either_day_matches());
    }

    #[test]
    fn day_of_week_steps_stop_at_saturday() {
        let c = cron("cron(0 0 * * */2)");
        assert_eq!(values(c.day_of_week()), [0, 2, 4, 6]);
        let c = cron("cron(0 0 * * 1/2)");
        assert_eq!(values(c.day_of_week()), [1, 3, 5]);
        let c = cron("cron(0 0 * * 5-7)");
        assert_eq!(values(c.day_of_week()), [0, 5, 6]);
    }

    #[test]
    fn every_means_unrestricted_wildcard() {
        let c = cron("cron(0 0 */1 * 0-6)");
        assert!(c.day_of_month().is_every());
        assert!(!c.day_of_week().is_every());
        assert!(!cron("cron(0 0 */2 * *)").day_of_month().is_every());
    }

    #[test]
    fn display_is_canonical() {
        for (src, canonical) in [
            ("cron(0 3 * * *)", "cron(0 3 * * *)"),
            (
                "  cron(  00   3\t* jan  mon-fri )  ",
                "cron(0 3 * JAN MON-FRI)",
            ),
            ("CRON(*/5 * * * *)", "cron(*/5 * * * *)"),
            ("cron(0 9 1,15 * sun)", "cron(0 9 1,15 * SUN)"),
        ] {
            assert_eq!(parse(src).unwrap().to_string(), canonical, "{src}");
        }
    }

    #[test]
    fn day_rule_follows_unix_cron() {
        // 2026-03-02 is a Monday, 2026-03-15 a Sunday.
        let monday = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let fifteenth = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let either = cron("cron(0 0 15 * MON)");
        assert!(either.matches_date(monday) && either.matches_date(fifteenth));
        let both = cron("cron(0 0 */2 * MON)");
        assert!(!both.matches_date(monday), "2 is even, so not in */2");
        let error = parse("cron(0 0 30 FEB *)").unwrap_err();
        assert_eq!(
            error.hint.as_deref(),
            Some("month `FEB` allows days up to 29; pick a day-of-month that exists")
        );
        assert!(both.matches_date(NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()));
    }
}
