//! EventBridge Scheduler schedules. The physical id is `{group}/{name}` (a bare name means the
//! `default` group, which is how lowering's physical name finds an interrupted create). An
//! update sends the whole schedule again (UpdateSchedule replaces every field).

use aws_sdk_scheduler::types::{
    FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState, Target,
};
use nimbus_engine::{Applied, DriverError, Live};
use serde_json::json;

use super::error::{Call, found, gone, once_role_is_ready};
use super::props::parse_document;
use super::{AwsDriver, Props, applied, built, live};

fn split(id: &str) -> (&str, &str) {
    id.split_once('/').unwrap_or(("default", id))
}

fn outputs(group: &str, name: &str, arn: &str) -> Applied {
    applied(format!("{group}/{name}"), &[("arn", json!(arn))])
}

struct Request {
    name: String,
    group: String,
    window: FlexibleTimeWindow,
    target: Target,
}

fn request(p: Props<'_>) -> Result<Request, DriverError> {
    let w = p
        .object("FlexibleTimeWindow")
        .ok_or_else(|| DriverError::permanent("internal: a schedule without a time window"))?;
    let window = built(
        FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::from(w.str("Mode")?))
            .set_maximum_window_in_minutes(w.opt_i32("MaximumWindowInMinutes"))
            .build(),
    )?;
    let t = p
        .object("Target")
        .ok_or_else(|| DriverError::permanent("internal: a schedule without a target"))?;
    let retry = t.object("RetryPolicy").map(|r| {
        RetryPolicy::builder()
            .set_maximum_event_age_in_seconds(r.opt_i32("MaximumEventAgeInSeconds"))
            .set_maximum_retry_attempts(r.opt_i32("MaximumRetryAttempts"))
            .build()
    });
    let input = match t.get("Input") {
        Some(_) => Some(t.json_string("Input")?),
        None => None,
    };
    let target = built(
        Target::builder()
            .arn(t.str("Arn")?)
            .role_arn(t.str("RoleArn")?)
            .set_input(input)
            .set_retry_policy(retry)
            .build(),
    )?;
    Ok(Request {
        name: p.str("Name")?.to_string(),
        group: p.opt_str("GroupName").unwrap_or("default").to_string(),
        window,
        target,
    })
}

pub(super) async fn create(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let r = request(p)?;
    let request = d
        .clients
        .scheduler
        .create_schedule()
        .name(&r.name)
        .group_name(&r.group)
        .set_description(p.opt_str("Description").map(str::to_string))
        .schedule_expression(p.str("ScheduleExpression")?)
        .set_schedule_expression_timezone(
            p.opt_str("ScheduleExpressionTimezone").map(str::to_string),
        )
        .flexible_time_window(r.window)
        .set_state(p.opt_str("State").map(ScheduleState::from))
        .target(r.target);
    // The scheduler's role was created moments ago: wait for IAM to make it usable.
    let out = once_role_is_ready(|| async { request.clone().send().await.call("CreateSchedule") })
        .await?;
    Ok(outputs(&r.group, &r.name, out.schedule_arn()))
}

pub(super) async fn update(d: &AwsDriver, p: Props<'_>) -> Result<Applied, DriverError> {
    let r = request(p)?;
    let out = d
        .clients
        .scheduler
        .update_schedule()
        .name(&r.name)
        .group_name(&r.group)
        .set_description(p.opt_str("Description").map(str::to_string))
        .schedule_expression(p.str("ScheduleExpression")?)
        .set_schedule_expression_timezone(
            p.opt_str("ScheduleExpressionTimezone").map(str::to_string),
        )
        .flexible_time_window(r.window)
        .set_state(p.opt_str("State").map(ScheduleState::from))
        .target(r.target)
        .send()
        .await
        .call("UpdateSchedule")?;
    Ok(outputs(&r.group, &r.name, out.schedule_arn()))
}

pub(super) async fn delete(d: &AwsDriver, id: &str, p: Props<'_>) -> Result<(), DriverError> {
    let (group, name) = match id.split_once('/') {
        Some(parts) => parts,
        None => (p.opt_str("GroupName").unwrap_or("default"), id),
    };
    gone(
        d.clients
            .scheduler
            .delete_schedule()
            .name(name)
            .group_name(group)
            .send()
            .await
            .call("DeleteSchedule"),
    )?;
    Ok(())
}

pub(super) async fn read(d: &AwsDriver, id: &str) -> Result<Option<Live>, DriverError> {
    let (group, name) = split(id);
    let Some(s) = found(
        d.clients
            .scheduler
            .get_schedule()
            .name(name)
            .group_name(group)
            .send()
            .await
            .call("GetSchedule"),
    )?
    else {
        return Ok(None);
    };
    let mut props = json!({
        "Name": s.name().unwrap_or(name),
        "GroupName": s.group_name().unwrap_or(group),
        "ScheduleExpression": s.schedule_expression().unwrap_or_default(),
    });
    if let Some(v) = s.description() {
        props["Description"] = json!(v);
    }
    if let Some(v) = s.schedule_expression_timezone() {
        props["ScheduleExpressionTimezone"] = json!(v);
    }
    if let Some(v) = s.state() {
        props["State"] = json!(v.as_str());
    }
    if let Some(w) = s.flexible_time_window() {
        props["FlexibleTimeWindow"] = json!({ "Mode": w.mode().as_str() });
        if let Some(m) = w.maximum_window_in_minutes() {
            props["FlexibleTimeWindow"]["MaximumWindowInMinutes"] = json!(m);
        }
    }
    if let Some(t) = s.target() {
        props["Target"] = json!({ "Arn": t.arn(), "RoleArn": t.role_arn() });
        if let Some(input) = t.input() {
            props["Target"]["Input"] = parse_document(input);
        }
        if let Some(r) = t.retry_policy() {
            let mut retry = json!({});
            if let Some(v) = r.maximum_event_age_in_seconds() {
                retry["MaximumEventAgeInSeconds"] = json!(v);
            }
            if let Some(v) = r.maximum_retry_attempts() {
                retry["MaximumRetryAttempts"] = json!(v);
            }
            props["Target"]["RetryPolicy"] = retry;
        }
    }
    let group = s.group_name().unwrap_or(group).to_string();
    Ok(Some(live(
        format!("{group}/{name}"),
        props,
        outputs(&group, name, s.arn().unwrap_or_default()),
    )))
}
