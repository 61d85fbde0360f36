//! Table-driven translations of neutral expressions to each target.

use nimbus_schedule::{Target, parse, to_aws, to_azure, to_gcp};

/// What a target should produce: the string, or an `Unsupported` whose reason contains the text.
#[derive(Debug, Clone, Copy)]
enum Want {
    Ok(&'static str),
    No(&'static str),
}
use Want::{No, Ok};

/// Neutral expression, then AWS, GCP and Azure.
const CASES: &[(&str, Want, Want, Want)] = &[
    // Every minute, hourly, daily at 03:00.
    (
        "cron(* * * * *)",
        Ok("cron(* * * * ? *)"),
        Ok("* * * * *"),
        Ok("0 * * * * *"),
    ),
    (
        "cron(0 * * * *)",
        Ok("cron(0 * * * ? *)"),
        Ok("0 * * * *"),
        Ok("0 0 * * * *"),
    ),
    (
        "cron(0 3 * * *)",
        Ok("cron(0 3 * * ? *)"),
        Ok("0 3 * * *"),
        Ok("0 0 3 * * *"),
    ),
    (
        "cron(  0   3  *  *  * )",
        Ok("cron(0 3 * * ? *)"),
        Ok("0 3 * * *"),
        Ok("0 0 3 * * *"),
    ),
    (
        "cron(30 23 * * *)",
        Ok("cron(30 23 * * ? *)"),
        Ok("30 23 * * *"),
        Ok("0 30 23 * * *"),
    ),
    // Weekdays, by name and by number; day-of-week numbering shifts by one on AWS.
    (
        "cron(0 9 * * MON-FRI)",
        Ok("cron(0 9 ? * MON-FRI *)"),
        Ok("0 9 * * 1-5"),
        Ok("0 0 9 * * 1-5"),
    ),
    (
        "cron(0 9 * * mon-fri)",
        Ok("cron(0 9 ? * MON-FRI *)"),
        Ok("0 9 * * 1-5"),
        Ok("0 0 9 * * 1-5"),
    ),
    (
        "cron(0 9 * * 1-5)",
        Ok("cron(0 9 ? * MON-FRI *)"),
        Ok("0 9 * * 1-5"),
        Ok("0 0 9 * * 1-5"),
    ),
    (
        "cron(0 9 * * 1)",
        Ok("cron(0 9 ? * MON *)"),
        Ok("0 9 * * 1"),
        Ok("0 0 9 * * 1"),
    ),
    (
        "cron(0 9 * * 6)",
        Ok("cron(0 9 ? * SAT *)"),
        Ok("0 9 * * 6"),
        Ok("0 0 9 * * 6"),
    ),
    // 0 and 7 are both Sunday.
    (
        "cron(0 9 * * 0)",
        Ok("cron(0 9 ? * SUN *)"),
        Ok("0 9 * * 0"),
        Ok("0 0 9 * * 0"),
    ),
    (
        "cron(0 9 * * 7)",
        Ok("cron(0 9 ? * SUN *)"),
        Ok("0 9 * * 0"),
        Ok("0 0 9 * * 0"),
    ),
    (
        "cron(0 9 * * SUN)",
        Ok("cron(0 9 ? * SUN *)"),
        Ok("0 9 * * 0"),
        Ok("0 0 9 * * 0"),
    ),
    (
        "cron(0 9 * * 0,7)",
        Ok("cron(0 9 ? * SUN *)"),
        Ok("0 9 * * 0"),
        Ok("0 0 9 * * 0"),
    ),
    (
        "cron(0 9 * * 5-7)",
        Ok("cron(0 9 ? * SUN,FRI,SAT *)"),
        Ok("0 9 * * 0,5,6"),
        Ok("0 0 9 * * 0,5,6"),
    ),
    (
        "cron(0 9 * * 0-7)",
        Ok("cron(0 9 ? * SUN-SAT *)"),
        Ok("0 9 * * 0-6"),
        Ok("0 0 9 * * 0-6"),
    ),
    (
        "cron(0 9 * * SAT,SUN)",
        Ok("cron(0 9 ? * SUN,SAT *)"),
        Ok("0 9 * * 6,0"),
        Ok("0 0 9 * * 6,0"),
    ),
    (
        "cron(0 9 * * 1,3,5)",
        Ok("cron(0 9 ? * MON,WED,FRI *)"),
        Ok("0 9 * * 1,3,5"),
        Ok("0 0 9 * * 1,3,5"),
    ),
    // Day-of-week steps: AWS takes no `/` there, so they become names.
    (
        "cron(0 9 * * */2)",
        Ok("cron(0 9 ? * SUN,TUE,THU,SAT *)"),
        Ok("0 9 * * */2"),
        Ok("0 0 9 * * */2"),
    ),
    (
        "cron(0 9 * * 1-5/2)",
        Ok("cron(0 9 ? * MON,WED,FRI *)"),
        Ok("0 9 * * 1-5/2"),
        Ok("0 0 9 * * 1-5/2"),
    ),
    (
        "cron(0 9 * * 1/3)",
        Ok("cron(0 9 ? * MON,THU *)"),
        Ok("0 9 * * 1-6/3"),
        Ok("0 0 9 * * 1-6/3"),
    ),
    // Months: names become numbers.
    (
        "cron(0 0 1 JAN *)",
        Ok("cron(0 0 1 1 ? *)"),
        Ok("0 0 1 1 *"),
        Ok("0 0 0 1 1 *"),
    ),
    (
        "cron(0 0 1 jan,apr,jul,oct *)",
        Ok("cron(0 0 1 1,4,7,10 ? *)"),
        Ok("0 0 1 1,4,7,10 *"),
        Ok("0 0 0 1 1,4,7,10 *"),
    ),
    (
        "cron(0 0 1 MAR-NOV *)",
        Ok("cron(0 0 1 3-11 ? *)"),
        Ok("0 0 1 3-11 *"),
        Ok("0 0 0 1 3-11 *"),
    ),
    (
        "cron(0 0 1 */3 *)",
        Ok("cron(0 0 1 1/3 ? *)"),
        Ok("0 0 1 */3 *"),
        Ok("0 0 0 1 */3 *"),
    ),
    (
        "cron(0 12 * DEC SUN)",
        Ok("cron(0 12 ? 12 SUN *)"),
        Ok("0 12 * 12 0"),
        Ok("0 0 12 * 12 0"),
    ),
    // Ranges, steps and lists in the time fields.
    (
        "cron(*/15 * * * *)",
        Ok("cron(0/15 * * * ? *)"),
        Ok("*/15 * * * *"),
        Ok("0 */15 * * * *"),
    ),
    (
        "cron(10-50/10 * * * *)",
        Ok("cron(10,20,30,40,50 * * * ? *)"),
        Ok("10-50/10 * * * *"),
        Ok("0 10-50/10 * * * *"),
    ),
    (
        "cron(5/10 * * * *)",
        Ok("cron(5/10 * * * ? *)"),
        Ok("5-59/10 * * * *"),
        Ok("0 5-59/10 * * * *"),
    ),
    (
        "cron(0 8-18 * * *)",
        Ok("cron(0 8-18 * * ? *)"),
        Ok("0 8-18 * * *"),
        Ok("0 0 8-18 * * *"),
    ),
    (
        "cron(0,30 8-12,14-18 * * *)",
        Ok("cron(0,30 8-12,14-18 * * ? *)"),
        Ok("0,30 8-12,14-18 * * *"),
        Ok("0 0,30 8-12,14-18 * * *"),
    ),
    (
        "cron(0 */6 * * *)",
        Ok("cron(0 0/6 * * ? *)"),
        Ok("0 */6 * * *"),
        Ok("0 0 */6 * * *"),
    ),
    (
        "cron(0 0 */2 * *)",
        Ok("cron(0 0 1/2 * ? *)"),
        Ok("0 0 */2 * *"),
        Ok("0 0 0 */2 * *"),
    ),
    (
        "cron(0 0 1,15 * *)",
        Ok("cron(0 0 1,15 * ? *)"),
        Ok("0 0 1,15 * *"),
        Ok("0 0 0 1,15 * *"),
    ),
    (
        "cron(0 0 1-7 * *)",
        Ok("cron(0 0 1-7 * ? *)"),
        Ok("0 0 1-7 * *"),
        Ok("0 0 0 1-7 * *"),
    ),
    (
        "cron(00 07 * * *)",
        Ok("cron(0 7 * * ? *)"),
        Ok("0 7 * * *"),
        Ok("0 0 7 * * *"),
    ),
    // Day-of-month and day-of-week both restricted: unix cron fires on either.
    (
        "cron(0 0 1 * MON)",
        No("both restricted"),
        Ok("0 0 1 * 1"),
        No("both restricted"),
    ),
    (
        "cron(0 0 13 * 5)",
        No("both restricted"),
        Ok("0 0 13 * 5"),
        No("both restricted"),
    ),
    (
        "cron(0 0 1 * 0-6)",
        No("both restricted"),
        Ok("0 0 1 * 0-6"),
        No("both restricted"),
    ),
    (
        "cron(0 0 1-7 * MON-FRI)",
        No("both restricted"),
        Ok("0 0 1-7 * 1-5"),
        No("both restricted"),
    ),
    // A wildcard step in day-of-month combines with "and", which NCRONTAB shares but AWS cannot say.
    (
        "cron(0 0 */2 * 1)",
        No("both restricted"),
        Ok("0 0 */2 * 1"),
        Ok("0 0 0 */2 * 1"),
    ),
    (
        "cron(0 0 */1 * 1)",
        Ok("cron(0 0 ? * MON *)"),
        Ok("0 0 */1 * 1"),
        Ok("0 0 0 */1 * 1"),
    ),
    (
        "cron(0 0 1 * */1)",
        Ok("cron(0 0 1 * ? *)"),
        Ok("0 0 1 * */1"),
        Ok("0 0 0 1 * */1"),
    ),
    // Rates, singular and plural.
    (
        "rate(1 minute)",
        Ok("rate(1 minute)"),
        Ok("* * * * *"),
        Ok("0 * * * * *"),
    ),
    (
        "rate(1 minutes)",
        Ok("rate(1 minute)"),
        Ok("* * * * *"),
        Ok("0 * * * * *"),
    ),
    (
        "rate(5 minutes)",
        Ok("rate(5 minutes)"),
        Ok("*/5 * * * *"),
        Ok("0 */5 * * * *"),
    ),
    (
        "rate(15 minute)",
        Ok("rate(15 minutes)"),
        Ok("*/15 * * * *"),
        Ok("0 */15 * * * *"),
    ),
    (
        "rate(30 minutes)",
        Ok("rate(30 minutes)"),
        Ok("*/30 * * * *"),
        Ok("0 */30 * * * *"),
    ),
    (
        "rate(60 minutes)",
        Ok("rate(60 minutes)"),
        Ok("0 * * * *"),
        Ok("0 0 * * * *"),
    ),
    (
        "rate(120 minutes)",
        Ok("rate(120 minutes)"),
        Ok("0 */2 * * *"),
        Ok("0 0 */2 * * *"),
    ),
    (
        "rate(1440 minutes)",
        Ok("rate(1440 minutes)"),
        Ok("0 0 * * *"),
        Ok("0 0 0 * * *"),
    ),
    (
        "rate(1 hour)",
        Ok("rate(1 hour)"),
        Ok("0 * * * *"),
        Ok("0 0 * * * *"),
    ),
    (
        "rate(1 hours)",
        Ok("rate(1 hour)"),
        Ok("0 * * * *"),
        Ok("0 0 * * * *"),
    ),
    (
        "rate(2 hours)",
        Ok("rate(2 hours)"),
        Ok("0 */2 * * *"),
        Ok("0 0 */2 * * *"),
    ),
    (
        "rate(6 HOURS)",
        Ok("rate(6 hours)"),
        Ok("0 */6 * * *"),
        Ok("0 0 */6 * * *"),
    ),
    (
        "rate(12 hours)",
        Ok("rate(12 hours)"),
        Ok("0 */12 * * *"),
        Ok("0 0 */12 * * *"),
    ),
    (
        "rate(24 hours)",
        Ok("rate(24 hours)"),
        Ok("0 0 * * *"),
        Ok("0 0 0 * * *"),
    ),
    (
        "rate(1 day)",
        Ok("rate(1 day)"),
        Ok("0 0 * * *"),
        Ok("0 0 0 * * *"),
    ),
    (
        "rate(1 days)",
        Ok("rate(1 day)"),
        Ok("0 0 * * *"),
        Ok("0 0 0 * * *"),
    ),
    // Rates cron cannot fire at evenly.
    (
        "rate(7 minutes)",
        Ok("rate(7 minutes)"),
        No("does not divide an hour evenly"),
        No("does not divide an hour evenly"),
    ),
    (
        "rate(45 minutes)",
        Ok("rate(45 minutes)"),
        No("does not divide an hour evenly"),
        No("does not divide an hour evenly"),
    ),
    (
        "rate(90 minutes)",
        Ok("rate(90 minutes)"),
        No("not a whole number of hours"),
        No("not a whole number of hours"),
    ),
    (
        "rate(5 hours)",
        Ok("rate(5 hours)"),
        No("does not divide a day evenly"),
        No("does not divide a day evenly"),
    ),
    (
        "rate(25 hours)",
        Ok("rate(25 hours)"),
        No("longer than a day"),
        No("longer than a day"),
    ),
    (
        "rate(2 days)",
        Ok("rate(2 days)"),
        No("longer than a day"),
        No("longer than a day"),
    ),
];

fn check(target: Target, src: &str, got: Result<String, nimbus_schedule::Unsupported>, want: Want) {
    match (got, want) {
        (Result::Ok(got), Ok(want)) => assert_eq!(got, want, "{target}: {src}"),
        (Err(error), No(reason)) => {
            assert_eq!(error.target, target, "{src}");
            assert!(
                error.reason.contains(reason),
                "{target}: {src}: {}",
                error.reason
            );
            assert!(
                error.hint.is_some() || reason == "both restricted",
                "{target}: {src}: no hint"
            );
        }
        (got, want) => panic!("{target}: {src}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn translations() {
    for &(src, aws, gcp, azure) in CASES {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        check(Target::Aws, src, to_aws(&expr), aws);
        check(Target::Gcp, src, to_gcp(&expr), gcp);
        check(Target::Azure, src, to_azure(&expr), azure);
    }
}

#[test]
fn table_covers_each_target() {
    let rows = |pick: fn(&(&str, Want, Want, Want)) -> Want| {
        let (mut ok, mut no) = (0, 0);
        for row in CASES {
            match pick(row) {
                Ok(_) => ok += 1,
                No(_) => no += 1,
            }
        }
        (ok, no)
    };
    for (name, (ok, no)) in [
        ("aws", rows(|r| r.1)),
        ("gcp", rows(|r| r.2)),
        ("azure", rows(|r| r.3)),
    ] {
        assert!(
            ok + no >= 30 && ok >= 20 && no >= 3,
            "{name}: {ok} ok, {no} rejected"
        );
    }
}

#[test]
fn both_days_restricted_hints_a_split() {
    let expr = parse("cron(0 9 1 * MON)").unwrap();
    let error = to_aws(&expr).unwrap_err();
    assert_eq!(
        error.to_string(),
        "AWS EventBridge Scheduler cannot express this schedule: day-of-month `1` and day-of-week `MON` \
         are both restricted; unix cron fires when either matches, but AWS needs one of them to be `?`"
    );
    let split = "split it into two schedules, `cron(0 9 1 * *)` and `cron(0 9 * * MON)`";
    assert_eq!(error.hint.as_deref(), Some(split));
    let error = to_azure(&expr).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("Azure Functions timer (NCRONTAB) cannot express this schedule")
    );
    assert_eq!(error.hint.as_deref(), Some(split));
}

#[test]
fn uneven_rates_suggest_a_cron() {
    let error = to_gcp(&parse("rate(7 minutes)").unwrap()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "GCP Cloud Scheduler cannot express this schedule: `rate(7 minutes)` does not divide an hour evenly, \
         so cron would fire at an uneven gap at each hour boundary; GCP Cloud Scheduler only takes cron"
    );
    assert_eq!(
        error.hint.as_deref(),
        Some("write the times you want as a cron expression instead, e.g. `cron(*/6 * * * *)`")
    );
    let error = to_azure(&parse("rate(5 hours)").unwrap()).unwrap_err();
    assert!(error.hint.unwrap().contains("`cron(0 */4 * * *)`"));
}

#[test]
fn translations_reparse_for_unix_targets() {
    // GCP output is itself neutral cron once wrapped, and must mean the same schedule.
    for &(src, ..) in CASES.iter().filter(|row| row.0.starts_with("cron")) {
        let expr = parse(src).unwrap();
        let gcp = to_gcp(&expr).unwrap();
        let again = parse(&format!("cron({gcp})")).unwrap();
        let (nimbus_schedule::ScheduleExpr::Cron(a), nimbus_schedule::ScheduleExpr::Cron(b)) =
            (&expr, &again)
        else {
            panic!("{src} is cron");
        };
        for (x, y) in [
            (a.minute(), b.minute()),
            (a.hour(), b.hour()),
            (a.day_of_month(), b.day_of_month()),
            (a.month(), b.month()),
            (a.day_of_week(), b.day_of_week()),
        ] {
            assert_eq!(
                x.values().collect::<Vec<_>>(),
                y.values().collect::<Vec<_>>(),
                "{src} -> {gcp}"
            );
            assert_eq!(x.is_wildcard(), y.is_wildcard(), "{src} -> {gcp}");
        }
    }
}

#[test]
fn target_names() {
    assert_eq!(Target::Aws.to_string(), "AWS EventBridge Scheduler");
    assert_eq!(Target::Gcp.to_string(), "GCP Cloud Scheduler");
    assert_eq!(
        Target::Azure.to_string(),
        "Azure Functions timer (NCRONTAB)"
    );
}
