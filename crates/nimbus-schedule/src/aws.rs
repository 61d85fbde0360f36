//! AWS EventBridge Scheduler: `cron(min hour dom month dow year)` and `rate(...)`.
//!
//! Differences from unix cron handled here: six fields (year `*`); exactly one of day-of-month and
//! day-of-week is `?`; day-of-week counts 1=SUN..7=SAT (written here as names, so numbering
//! never leaks) and takes no `/`; `*/n` is written `first/n` and `a-b/n` as a list, the forms the
//! AWS reference documents.

use crate::cron::{Base, Cron, DAY_NAMES, Field};
use crate::error::{Target, Unsupported};
use crate::expr::ScheduleExpr;
use crate::unix::{both_days, compress};

/// Translates to an AWS EventBridge Scheduler expression.
pub fn to_aws(expr: &ScheduleExpr) -> Result<String, Unsupported> {
    match expr {
        ScheduleExpr::Rate(rate) => Ok(rate.to_string()),
        ScheduleExpr::Cron(cron) => translate(cron),
    }
}

fn translate(cron: &Cron) -> Result<String, Unsupported> {
    let (dom, dow) = if cron.day_of_week().is_every() {
        (field(cron.day_of_month()), "?".to_string())
    } else if cron.day_of_month().is_every() {
        (
            "?".to_string(),
            compress(cron.day_of_week().values(), |v| {
                DAY_NAMES[usize::from(v)].to_string()
            }),
        )
    } else {
        let why = if cron.either_day_matches() {
            "unix cron fires when either matches, but AWS needs one of them to be `?`"
        } else {
            "unix cron fires when both match, but AWS needs one of them to be `?`"
        };
        return Err(both_days(cron, Target::Aws, why));
    };
    Ok(format!(
        "cron({} {} {dom} {} {dow} *)",
        field(cron.minute()),
        field(cron.hour()),
        field(cron.month())
    ))
}

fn field(field: &Field) -> String {
    let kind = field.kind();
    let items: Vec<String> = field
        .items()
        .iter()
        .map(|item| match (item.base, item.step) {
            (Base::Any, None) => "*".to_string(),
            (Base::Any, Some(n)) => format!("{}/{n}", kind.min()),
            (Base::Value(v), None) => v.number.to_string(),
            (Base::Value(v), Some(n)) => format!("{}/{n}", v.number),
            (Base::Range(a, b), None) => format!("{}-{}", a.number, b.number),
            (Base::Range(..), Some(_)) => item
                .values(kind)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect();
    items.join(",")
}
