//! The top-level expression: `cron(...)` or `rate(...)`.

use std::fmt;
use std::str::FromStr;

use crate::cron::{CRON_SHAPE, Cron, parse_cron};
use crate::error::ScheduleError;
use crate::rate::{RATE_SHAPE, Rate, parse_rate};

/// A parsed neutral schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpr {
    /// `cron(minute hour day-of-month month day-of-week)`, evaluated in the schedule's time zone.
    Cron(Cron),
    /// `rate(N minutes|hours|days)`, a fixed period.
    Rate(Rate),
}

impl fmt::Display for ScheduleExpr {
    /// The canonical neutral form, e.g. `cron(0 3 * * *)` or `rate(5 minutes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleExpr::Cron(cron) => cron.fmt(f),
            ScheduleExpr::Rate(rate) => rate.fmt(f),
        }
    }
}

impl FromStr for ScheduleExpr {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses a neutral schedule expression. Surrounding whitespace is ignored; error offsets count
/// characters from the start of `expr`.
pub fn parse(expr: &str) -> Result<ScheduleExpr, ScheduleError> {
    parse_bytes(expr).map_err(|error| error.in_chars(expr))
}

/// The hint for input that is neither form.
fn both_forms() -> String {
    format!("use `{CRON_SHAPE}` or `{RATE_SHAPE}`, e.g. `cron(0 3 * * *)` or `rate(5 minutes)`")
}

fn parse_bytes(src: &str) -> Result<ScheduleExpr, ScheduleError> {
    let lead = src.len() - src.trim_start().len();
    let body = src.trim();
    if body.is_empty() {
        return Err(ScheduleError::at(0, "empty schedule expression").hint(both_forms()));
    }
    let name_len = body
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(body.len());
    let name = &body[..name_len];
    let is_cron = name.eq_ignore_ascii_case("cron");
    if !is_cron && !name.eq_ignore_ascii_case("rate") {
        return Err(unrecognized(body, lead));
    }
    let open = lead + name_len;
    if !body[name_len..].starts_with('(') {
        let name = name.to_ascii_lowercase();
        return Err(
            ScheduleError::at(open, format!("expected `(` right after `{name}`")).hint(format!(
                "write `{name}(...)`, e.g. `{}`",
                if is_cron {
                    "cron(0 3 * * *)"
                } else {
                    "rate(5 minutes)"
                }
            )),
        );
    }
    let end = lead + body.len();
    let Some(close) = src[open + 1..end].find(')').map(|i| open + 1 + i) else {
        return Err(ScheduleError::at(end, "missing closing `)`").hint(both_forms()));
    };
    if close + 1 < end {
        return Err(ScheduleError::at(
            close + 1,
            format!("unexpected `{}` after `)`", &src[close + 1..end]),
        )
        .hint("a schedule is a single `cron(...)` or `rate(...)`"));
    }
    let inner = &src[open + 1..close];
    if is_cron {
        parse_cron(inner, open + 1, close).map(ScheduleExpr::Cron)
    } else {
        parse_rate(inner, open + 1, close).map(ScheduleExpr::Rate)
    }
}

fn unrecognized(body: &str, lead: usize) -> ScheduleError {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let looks_like_cron = body.starts_with(|c: char| c.is_ascii_digit() || c == '*');
    if looks_like_cron && fields.len() == 5 {
        return ScheduleError::at(lead, "cron fields must be wrapped in `cron(...)`")
            .hint(format!("write `cron({})`", fields.join(" ")));
    }
    ScheduleError::at(lead, "unrecognized schedule expression").hint(both_forms())
}

/// A whitespace-separated word of an expression and its byte offset in the whole expression.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word<'a> {
    pub(crate) text: &'a str,
    pub(crate) at: usize,
}

/// Splits `text` (found at byte `start` of the expression) on runs of whitespace.
pub(crate) fn words(text: &str, start: usize) -> Vec<Word<'_>> {
    let mut words = Vec::new();
    let mut begin = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), begin) {
            (true, Some(b)) => {
                words.push(Word {
                    text: &text[b..i],
                    at: start + b,
                });
                begin = None;
            }
            (false, None) => begin = Some(i),
            _ => {}
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bad inputs: the message and the character offset of the caret.
    const BAD: &[(&str, &str, Option<usize>)] = &[
        ("", "empty schedule expression", Some(0)),
        ("   ", "empty schedule expression", Some(0)),
        (
            "0 3 * * *",
            "cron fields must be wrapped in `cron(...)`",
            Some(0),
        ),
        (
            "every 5 minutes",
            "unrecognized schedule expression",
            Some(0),
        ),
        (
            "  at(2026-01-01T00:00)",
            "unrecognized schedule expression",
            Some(2),
        ),
        ("cron 0 3 * * *", "expected `(` right after `cron`", Some(4)),
        ("cron(0 3 * * *", "missing closing `)`", Some(14)),
        (
            "cron(0 3 * * *) UTC",
            "unexpected ` UTC` after `)`",
            Some(15),
        ),
        (
            "cron()",
            "expected 5 fields in `cron(...)`, found 0",
            Some(5),
        ),
        (
            "cron(0 3 * *)",
            "expected 5 fields in `cron(...)`, found 4",
            Some(12),
        ),
        (
            "cron(0 3 * * ? *)",
            "expected 5 fields in `cron(...)`, found 6",
            Some(15),
        ),
        (
            "cron(0 0 3 * * *)",
            "expected 5 fields in `cron(...)`, found 6",
            Some(15),
        ),
        (
            "cron(60 3 * * *)",
            "`60` is out of range for the `minute` field (0-59)",
            Some(5),
        ),
        (
            "cron(0 24 * * *)",
            "`24` is out of range for the `hour` field (0-23)",
            Some(7),
        ),
        (
            "cron(0 3 0 * *)",
            "`0` is out of range for the `day-of-month` field (1-31)",
            Some(9),
        ),
        (
            "cron(0 3 32 * *)",
            "`32` is out of range for the `day-of-month` field (1-31)",
            Some(9),
        ),
        (
            "cron(0 3 * 13 *)",
            "`13` is out of range for the `month` field (1-12 or JAN-DEC)",
            Some(11),
        ),
        (
            "cron(0 3 * * 8)",
            "`8` is out of range for the `day-of-week` field (0-7 or SUN-SAT)",
            Some(13),
        ),
        (
            "cron(0 3 * * 99999999999)",
            "`99999999999` is out of range for the `day-of-week` field (0-7 or SUN-SAT)",
            Some(13),
        ),
        (
            "cron(0 5-1 * * *)",
            "range `5-1` is reversed in the `hour` field",
            Some(7),
        ),
        (
            "cron(0 0 * * FRI-MON)",
            "range `FRI-MON` is reversed in the `day-of-week` field",
            Some(13),
        ),
        (
            "cron(*/0 * * * *)",
            "step in the `minute` field must be at least 1, found `0`",
            Some(7),
        ),
        (
            "cron(0 */25 * * *)",
            "step `25` is larger than the `hour` field's range (0-23)",
            Some(9),
        ),
        (
            "cron(*/ * * * *)",
            "missing step after `/` in the `minute` field",
            Some(7),
        ),
        (
            "cron(/5 * * * *)",
            "missing value before `/` in the `minute` field",
            Some(5),
        ),
        (
            "cron(*/5/2 * * * *)",
            "unexpected `/` in the step of the `minute` field",
            Some(8),
        ),
        (
            "cron(0 3 ? * MON)",
            "`?` is not in standard cron; the neutral format is 5-field unix cron",
            Some(9),
        ),
        (
            "cron(0 3 L * *)",
            "`L` is not in standard cron; the neutral format is 5-field unix cron",
            Some(9),
        ),
        (
            "cron(0 3 15W * *)",
            "`W` is not in standard cron; the neutral format is 5-field unix cron",
            Some(11),
        ),
        (
            "cron(0 3 * * 5l)",
            "`L` is not in standard cron; the neutral format is 5-field unix cron",
            Some(14),
        ),
        (
            "cron(0 3 * * MON#2)",
            "`#` is not in standard cron; the neutral format is 5-field unix cron",
            Some(16),
        ),
        (
            "cron(0 3 1,,2 * *)",
            "empty list item in the `day-of-month` field",
            Some(11),
        ),
        (
            "cron(0 3 1, * *)",
            "empty list item in the `day-of-month` field",
            Some(11),
        ),
        (
            "cron(0 3 1- * *)",
            "missing value in a range of the `day-of-month` field",
            Some(11),
        ),
        (
            "cron(0 3 -1 * *)",
            "missing value in a range of the `day-of-month` field",
            Some(9),
        ),
        (
            "cron(0 3 1-2-3 * *)",
            "unexpected `-` in the `day-of-month` field",
            Some(12),
        ),
        (
            "cron(*-5 * * * *)",
            "unexpected `*` in the `minute` field",
            Some(5),
        ),
        (
            "cron(0 3 * FOO *)",
            "unknown month name `FOO` in the `month` field",
            Some(11),
        ),
        (
            "cron(0 3 * * MONDAY)",
            "unknown day name `MONDAY` in the `day-of-week` field",
            Some(13),
        ),
        (
            "cron(0 MON * * *)",
            "invalid value `MON` in the `hour` field (0-23)",
            Some(7),
        ),
        (
            "cron(0 3 * * 1x)",
            "invalid value `1x` in the `day-of-week` field (0-7 or SUN-SAT)",
            Some(13),
        ),
        (
            "cron(0 3 * * 1;2)",
            "unexpected character `;` in the `day-of-week` field",
            Some(14),
        ),
        (
            "cron(0 3 * * é)",
            "unexpected character `é` in the `day-of-week` field",
            Some(13),
        ),
        (
            "cron(é 3 * * x)",
            "unexpected character `é` in the `minute` field",
            Some(5),
        ),
        (
            "cron(0 0 30 FEB *)",
            "day-of-month `30` never occurs in month `FEB`, so the schedule never fires",
            Some(9),
        ),
        (
            "cron(0 0 31 4,6 *)",
            "day-of-month `31` never occurs in month `4,6`, so the schedule never fires",
            Some(9),
        ),
        ("rate()", "missing interval in `rate(...)`", Some(5)),
        ("rate(5)", "missing unit after `5`", Some(6)),
        (
            "rate(0 minutes)",
            "rate interval must be at least 1, found `0`",
            Some(5),
        ),
        (
            "rate(-5 minutes)",
            "rate interval must be a positive whole number, found `-5`",
            Some(5),
        ),
        (
            "rate(1.5 hours)",
            "rate interval must be a whole number, found `1.5`",
            Some(5),
        ),
        (
            "rate(5minutes)",
            "expected a space between `5` and `minutes`",
            Some(6),
        ),
        (
            "rate(five minutes)",
            "expected a whole number of minutes, hours or days, found `five`",
            Some(5),
        ),
        (
            "rate(99999999999 days)",
            "rate interval `99999999999` is too large",
            Some(5),
        ),
        ("rate(5 weeks)", "unknown rate unit `weeks`", Some(7)),
        ("rate(30 seconds)", "unknown rate unit `seconds`", Some(8)),
        (
            "rate(5 minutes please)",
            "unexpected `please` after the unit",
            Some(15),
        ),
        ("rate 5 minutes", "expected `(` right after `rate`", Some(4)),
    ];

    #[test]
    fn bad_inputs_report_message_and_offset() {
        for &(src, message, offset) in BAD {
            let error = parse(src).expect_err(src);
            assert_eq!(
                (error.message.as_str(), error.offset),
                (message, offset),
                "{src:?}"
            );
        }
    }

    #[test]
    fn errors_carry_hints() {
        let hint = |src: &str| parse(src).unwrap_err().hint.unwrap_or_default();
        assert_eq!(hint("0 3 * * *"), "write `cron(0 3 * * *)`");
        assert!(
            hint("every 5 minutes").contains("`rate(N minutes|hours|days)`"),
            "{}",
            hint("every 5 minutes")
        );
        assert!(
            hint("every 5 minutes").contains("`cron(minute hour day-of-month month day-of-week)`")
        );
        assert!(
            hint("cron(0 3 * *)").contains("`cron(minute hour day-of-month month day-of-week)`")
        );
        assert!(hint("cron(0 3 ? * MON)").contains("use `*` instead"));
        assert_eq!(
            hint("cron(0 22-2 * * *)"),
            "ranges do not wrap around; write `22-23,0-2`"
        );
        assert_eq!(
            hint("cron(0 0 * * FRI-MON)"),
            "ranges do not wrap around; write `5-6,0-1`"
        );
        assert_eq!(
            hint("cron(0 0 * * 7-1)"),
            "ranges do not wrap around; write `0-1`"
        );
        assert_eq!(hint("cron(0 24 * * *)"), "midnight is hour `0`");
        assert_eq!(
            hint("rate(1.5 hours)"),
            "use a smaller unit, e.g. `rate(90 minutes)`"
        );
        assert_eq!(hint("rate(2 weeks)"), "use days, e.g. `rate(14 days)`");
        assert_eq!(hint("rate(5minutes)"), "write `rate(5 minutes)`");
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let error = parse("  cron(0 3 * * é)").unwrap_err();
        assert_eq!(error.offset, Some(15));
        let error = parse("cron(é 3 * * 8)").unwrap_err();
        assert_eq!(error.offset, Some(5));
    }

    #[test]
    fn whitespace_between_fields_may_repeat() {
        assert_eq!(
            parse("cron(0   3 *\t*  *)").unwrap().to_string(),
            "cron(0 3 * * *)"
        );
        assert_eq!(
            parse(" rate( 5   MINUTES ) ").unwrap().to_string(),
            "rate(5 minutes)"
        );
    }

    #[test]
    fn from_str_is_parse() {
        let expr: ScheduleExpr = "rate(1 hours)".parse().unwrap();
        assert_eq!(expr.to_string(), "rate(1 hour)");
    }

    #[test]
    fn words_keep_offsets() {
        let words: Vec<(&str, usize)> = words(" a  bc\td ", 10)
            .into_iter()
            .map(|w| (w.text, w.at))
            .collect();
        assert_eq!(words, [("a", 11), ("bc", 14), ("d", 17)]);
    }
}
