//! GCP Cloud Scheduler: five-field unix cron; rates become cron when the period is even.

use crate::error::{Target, Unsupported};
use crate::expr::ScheduleExpr;
use crate::unix::{cron_fields, rate_fields};

/// Translates to a GCP Cloud Scheduler `schedule` string.
pub fn to_gcp(expr: &ScheduleExpr) -> Result<String, Unsupported> {
    let fields = match expr {
        ScheduleExpr::Cron(cron) => cron_fields(cron),
        ScheduleExpr::Rate(rate) => rate_fields(*rate, Target::Gcp)?,
    };
    Ok(fields.join(" "))
}
