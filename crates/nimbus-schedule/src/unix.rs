//! Plain numeric unix cron fields, shared by the GCP and Azure translations.

use crate::cron::{Base, Cron, Field, FieldKind};
use crate::error::{Target, Unsupported};
use crate::rate::Rate;

/// The five fields with names as numbers, `a/n` spelled `a-last/n`, and day-of-week 7 as 0.
pub(crate) fn cron_fields(cron: &Cron) -> [String; 5] {
    [
        cron.minute(),
        cron.hour(),
        cron.day_of_month(),
        cron.month(),
        cron.day_of_week(),
    ]
    .map(field)
}

fn field(field: &Field) -> String {
    let kind = field.kind();
    if kind == FieldKind::DayOfWeek && field.items().iter().any(|item| item.mentions_seven()) {
        return compress(field.values(), |v| v.to_string());
    }
    let items: Vec<String> = field
        .items()
        .iter()
        .map(|item| match (item.base, item.step) {
            (Base::Any, None) => "*".to_string(),
            (Base::Any, Some(n)) => format!("*/{n}"),
            (Base::Value(v), None) => v.number.to_string(),
            (Base::Value(v), Some(n)) => format!("{}-{}/{n}", v.number, kind.last()),
            (Base::Range(a, b), None) => format!("{}-{}", a.number, b.number),
            (Base::Range(a, b), Some(n)) => format!("{}-{}/{n}", a.number, b.number),
        })
        .collect();
    items.join(",")
}

/// Ascending values as a list, with runs of three or more written as ranges: `1-5`, `0,6`.
pub(crate) fn compress(values: impl Iterator<Item = u8>, name: impl Fn(u8) -> String) -> String {
    let mut runs: Vec<(u8, u8)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == v => *end = v,
            _ => runs.push((v, v)),
        }
    }
    let mut parts = Vec::new();
    for (start, end) in runs {
        if end - start >= 2 {
            parts.push(format!("{}-{}", name(start), name(end)));
        } else {
            parts.extend((start..=end).map(&name));
        }
    }
    parts.join(",")
}

/// A rate as cron fields, when cron can fire at exactly that period: minutes dividing an hour,
/// hours dividing a day, or one day.
pub(crate) fn rate_fields(rate: Rate, target: Target) -> Result<[String; 5], Unsupported> {
    let minutes = rate.total_minutes();
    let star = || "*".to_string();
    if minutes < 60 && 60 % minutes == 0 {
        let minute = if minutes == 1 {
            star()
        } else {
            format!("*/{minutes}")
        };
        return Ok([minute, star(), star(), star(), star()]);
    }
    let (hours, odd_minutes) = (minutes / 60, minutes % 60);
    if odd_minutes == 0 && hours < 24 && 24 % hours == 0 {
        let hour = if hours == 1 {
            star()
        } else {
            format!("*/{hours}")
        };
        return Ok(["0".to_string(), hour, star(), star(), star()]);
    }
    if minutes == 24 * 60 {
        return Ok(["0".to_string(), "0".to_string(), star(), star(), star()]);
    }
    let (reason, example) = if minutes < 60 {
        let even = (1..minutes).rev().find(|d| 60 % d == 0).unwrap_or(1);
        (
            format!(
                "`{rate}` does not divide an hour evenly, so cron would fire at an uneven gap at each hour boundary"
            ),
            format!("cron(*/{even} * * * *)"),
        )
    } else if odd_minutes != 0 {
        (
            format!(
                "`{rate}` is not a whole number of hours, so no single cron expression fires at even gaps"
            ),
            "cron(0 * * * *)".to_string(),
        )
    } else if hours < 24 {
        let even = (1..hours).rev().find(|d| 24 % d == 0).unwrap_or(1);
        (
            format!(
                "`{rate}` does not divide a day evenly, so cron would fire at an uneven gap at each day boundary"
            ),
            format!("cron(0 */{even} * * *)"),
        )
    } else {
        (
            format!(
                "`{rate}` is longer than a day, and cron's day-of-month steps restart at each month boundary"
            ),
            "cron(0 0 */2 * *)".to_string(),
        )
    };
    Err(Unsupported {
        target,
        reason: format!("{reason}; {target} only takes cron"),
        hint: Some(format!(
            "write the times you want as a cron expression instead, e.g. `{example}`"
        )),
    })
}

/// The error for day-of-month and day-of-week both restricted, with a way to split the schedule.
pub(crate) fn both_days(cron: &Cron, target: Target, why: &str) -> Unsupported {
    let (dom, dow) = (cron.day_of_month(), cron.day_of_week());
    let hint = cron.either_day_matches().then(|| {
        let (m, h, mon) = (cron.minute(), cron.hour(), cron.month());
        format!("split it into two schedules, `cron({m} {h} {dom} {mon} *)` and `cron({m} {h} * {mon} {dow})`")
    });
    Unsupported {
        target,
        reason: format!("day-of-month `{dom}` and day-of-week `{dow}` are both restricted; {why}"),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_writes_runs_of_three_as_ranges() {
        let show = |values: &[u8]| compress(values.iter().copied(), |v| v.to_string());
        assert_eq!(show(&[1, 2, 3, 4, 5]), "1-5");
        assert_eq!(show(&[0, 1, 3, 5, 6]), "0,1,3,5,6");
        assert_eq!(show(&[0, 2, 3, 4, 6]), "0,2-4,6");
        assert_eq!(show(&[]), "");
    }
}
