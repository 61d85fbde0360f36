//! Azure Functions timer trigger: six-field NCRONTAB, `second minute hour day month day-of-week`.
//!
//! NCRONTAB fires only on days matching *both* day fields, where unix cron fires on either when
//! both are restricted; that case is refused rather than translated into a different schedule.

use crate::error::{Target, Unsupported};
use crate::expr::ScheduleExpr;
use crate::unix::{both_days, cron_fields, rate_fields};

/// Translates to an Azure Functions timer `schedule` (NCRONTAB, seconds first).
pub fn to_azure(expr: &ScheduleExpr) -> Result<String, Unsupported> {
    let fields = match expr {
        ScheduleExpr::Cron(cron) if cron.either_day_matches() => {
            let why =
                "unix cron fires when either matches, but NCRONTAB fires only when both match";
            return Err(both_days(cron, Target::Azure, why));
        }
        ScheduleExpr::Cron(cron) => cron_fields(cron),
        ScheduleExpr::Rate(rate) => rate_fields(*rate, Target::Azure)?,
    };
    Ok(format!("0 {}", fields.join(" ")))
}
