//! The next fire time, for the local runtime's scheduler.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use crate::cron::Cron;
use crate::expr::ScheduleExpr;

/// How far ahead to look before deciding a cron expression never fires again. The parser rejects
/// days that never exist; the rarest valid schedule (29 February on a given weekday) recurs within
/// 40 years.
const HORIZON_DAYS: u64 = 100 * 366;

/// The first fire time strictly after `after`.
///
/// A cron expression is matched against wall-clock time in `tz`. A local time that does not exist
/// (skipped by a daylight-saving jump forward) is skipped; a local time that happens twice (when
/// clocks go back) fires once, at its first occurrence. A rate fires one period after `after`.
/// `None` when there is no such time within chrono's range.
pub fn next_after(expr: &ScheduleExpr, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    match expr {
        ScheduleExpr::Rate(rate) => after.checked_add_signed(rate.period()),
        ScheduleExpr::Cron(cron) => next_cron(cron, after, tz),
    }
}

fn next_cron(cron: &Cron, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let start = after
        .with_timezone(&tz)
        .naive_local()
        .with_second(0)?
        .with_nanosecond(0)?;
    let last = start
        .date()
        .checked_add_days(Days::new(HORIZON_DAYS))
        .unwrap_or(NaiveDate::MAX);
    let mut date = start.date();
    while date <= last {
        if !cron.month().contains(date.month() as u8) {
            date = first_of_next_month(date)?;
            continue;
        }
        if cron.matches_date(date) {
            for hour in cron.hour().values() {
                for minute in cron.minute().values() {
                    let local = date.and_hms_opt(u32::from(hour), u32::from(minute), 0)?;
                    // Earlier wall-clock times map to earlier instants, so they cannot be after `after`.
                    if local < start {
                        continue;
                    }
                    if let Some(at) = first_instant(tz, local).filter(|at| *at > after) {
                        return Some(at);
                    }
                }
            }
        }
        date = date.succ_opt()?;
    }
    None
}

/// The first instant showing `local` on the wall clock in `tz`, if the time exists there.
fn first_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1),
        month => NaiveDate::from_ymd_opt(date.year(), month + 1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str, tz: Tz) -> Option<DateTime<Utc>> {
        next_after(&parse(expr).unwrap(), utc(after), tz)
    }

    #[test]
    fn cron_in_utc() {
        let cases = [
            (
                "cron(* * * * *)",
                "2026-01-01T10:00:00Z",
                "2026-01-01T10:01:00Z",
            ),
            (
                "cron(* * * * *)",
                "2026-01-01T10:00:59.999Z",
                "2026-01-01T10:01:00Z",
            ),
            (
                "cron(0 3 * * *)",
                "2026-01-01T03:00:00Z",
                "2026-01-02T03:00:00Z",
            ),
            (
                "cron(0 3 * * *)",
                "2026-01-01T02:59:30Z",
                "2026-01-01T03:00:00Z",
            ),
            (
                "cron(*/15 * * * *)",
                "2026-01-01T10:07:00Z",
                "2026-01-01T10:15:00Z",
            ),
            (
                "cron(0 9 * * MON-FRI)",
                "2026-01-02T09:00:00Z",
                "2026-01-05T09:00:00Z",
            ),
            (
                "cron(0 0 1 JAN *)",
                "2026-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                "cron(0 0 29 2 *)",
                "2026-01-01T00:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
            (
                "cron(0 0 31 * *)",
                "2026-04-01T00:00:00Z",
                "2026-05-31T00:00:00Z",
            ),
            // Either day field: the 13th or a Friday, whichever comes first.
            (
                "cron(0 0 13 * 5)",
                "2026-02-01T00:00:00Z",
                "2026-02-06T00:00:00Z",
            ),
            (
                "cron(0 0 13 * 5)",
                "2026-02-12T00:00:00Z",
                "2026-02-13T00:00:00Z",
            ),
            // A wildcard day-of-month step combines with "and": odd days that are Mondays.
            (
                "cron(0 0 */2 * 1)",
                "2026-03-01T00:00:00Z",
                "2026-03-09T00:00:00Z",
            ),
            (
                "cron(59 23 31 12 *)",
                "2026-12-31T23:59:00Z",
                "2027-12-31T23:59:00Z",
            ),
        ];
        for (expr, after, want) in cases {
            assert_eq!(
                next(expr, after, Tz::UTC),
                Some(utc(want)),
                "{expr} after {after}"
            );
        }
    }

    #[test]
    fn cron_in_a_zone() {
        // 03:00 in Kolkata (UTC+05:30) is 21:30 UTC the day before.
        let got = next("cron(0 3 * * *)", "2026-06-01T00:00:00Z", Tz::Asia__Kolkata);
        assert_eq!(got, Some(utc("2026-06-01T21:30:00Z")));
    }

    #[test]
    fn spring_forward_skips_the_missing_hour() {
        // Europe/Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        let paris = Tz::Europe__Paris;
        assert_eq!(
            next("cron(30 2 * * *)", "2026-03-28T12:00:00Z", paris),
            Some(utc("2026-03-30T00:30:00Z"))
        );
        assert_eq!(
            next("cron(30 2 * * *)", "2026-03-27T12:00:00Z", paris),
            Some(utc("2026-03-28T01:30:00Z"))
        );
        // Every 15 minutes: 01:45 CET, then 03:00 CEST, 15 real minutes later.
        assert_eq!(
            next("cron(*/15 * * * *)", "2026-03-29T00:45:00Z", paris),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        assert_eq!(
            next("cron(0 3 * * *)", "2026-03-28T12:00:00Z", paris),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn fall_back_fires_once() {
        // Europe/Paris, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let paris = Tz::Europe__Paris;
        let first = next("cron(30 2 * * *)", "2026-10-24T12:00:00Z", paris);
        assert_eq!(first, Some(utc("2026-10-25T00:30:00Z")));
        let after_first = next_after(&parse("cron(30 2 * * *)").unwrap(), first.unwrap(), paris);
        assert_eq!(after_first, Some(utc("2026-10-26T01:30:00Z")));
    }

    #[test]
    fn rate_adds_the_period() {
        assert_eq!(
            next("rate(5 minutes)", "2026-01-01T10:00:30Z", Tz::UTC),
            Some(utc("2026-01-01T10:05:30Z"))
        );
        assert_eq!(
            next("rate(1 day)", "2026-03-28T12:00:00Z", Tz::Europe__Paris),
            Some(utc("2026-03-29T12:00:00Z"))
        );
        let far = DateTime::<Utc>::MAX_UTC - TimeDelta::minutes(1);
        assert_eq!(
            next_after(&parse("rate(2 minutes)").unwrap(), far, Tz::UTC),
            None
        );
    }

    #[test]
    fn end_of_time_is_none() {
        let far = DateTime::<Utc>::MAX_UTC - TimeDelta::days(1);
        assert_eq!(
            next_after(&parse("cron(0 0 1 1 *)").unwrap(), far, Tz::UTC),
            None
        );
    }

    /// The reference answer: walk minute by minute in UTC and take the first instant whose
    /// wall-clock time matches and is the first instant showing that wall-clock time.
    fn brute_force(
        cron: &Cron,
        after: DateTime<Utc>,
        tz: Tz,
        minutes: i64,
    ) -> Option<DateTime<Utc>> {
        let mut at = after.with_second(0)?.with_nanosecond(0)?;
        for _ in 0..=minutes {
            at += TimeDelta::minutes(1);
            let local = at.with_timezone(&tz).naive_local();
            if cron.matches(local) && first_instant(tz, local) == Some(at) {
                return Some(at);
            }
        }
        None
    }

    fn item(kind: crate::cron::FieldKind) -> impl Strategy<Value = String> {
        let (min, max) = (u32::from(kind.min()), u32::from(kind.max()));
        let span = u32::from(kind.last() - kind.min()) + 1;
        prop_oneof![
            Just("*".to_string()),
            (1..=span).prop_map(|n| format!("*/{n}")),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (min..=max, min..=max, 1..=span).prop_map(|(a, b, n)| format!(
                "{}-{}/{n}",
                a.min(b),
                a.max(b)
            )),
            (min..=max, 1..=span).prop_map(|(a, n)| format!("{a}/{n}")),
        ]
    }

    fn field(kind: crate::cron::FieldKind) -> impl Strategy<Value = String> {
        prop::collection::vec(item(kind), 1..=3).prop_map(|items| items.join(","))
    }

    fn cron_text() -> impl Strategy<Value = String> {
        use crate::cron::FieldKind::*;
        (
            field(Minute),
            field(Hour),
            field(DayOfMonth),
            field(Month),
            field(DayOfWeek),
        )
            .prop_map(|(m, h, dom, mon, dow)| format!("cron({m} {h} {dom} {mon} {dow})"))
    }

    /// Schedules that fire within days, so that the brute-force comparison usually applies.
    fn frequent_cron_text() -> impl Strategy<Value = String> {
        use crate::cron::FieldKind::*;
        let dow = prop_oneof![Just("*".to_string()), field(DayOfWeek)];
        (field(Minute), field(Hour), dow).prop_map(|(m, h, dow)| format!("cron({m} {h} * * {dow})"))
    }

    /// Seconds since the epoch: anywhere in 2020-2029, or within two days of a 2026 clock change
    /// in one of the zones below.
    fn instant() -> impl Strategy<Value = i64> {
        let changes = prop::sample::select(vec![
            1_774_746_000, // 2026-03-29T01:00Z, Europe spring forward
            1_792_890_000, // 2026-10-25T01:00Z, Europe fall back
            1_772_953_200, // 2026-03-08T07:00Z, New York spring forward
            1_793_512_800, // 2026-11-01T06:00Z, New York fall back
            1_775_314_800, // 2026-04-04T15:00Z, Lord Howe half-hour fall back
            1_791_041_400, // 2026-10-03T15:30Z, Lord Howe half-hour spring forward
        ]);
        prop_oneof![
            1_577_836_800i64..1_893_456_000,
            (changes, -2 * 86_400i64..2 * 86_400).prop_map(|(change, delta)| change + delta),
        ]
    }

    fn zone() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            Tz::UTC,
            Tz::Europe__Paris,
            Tz::America__New_York,
            Tz::Australia__Lord_Howe,
            Tz::Asia__Kolkata,
        ])
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_near_misses(s in "(cron|rate|CRON)?\\(?[0-9*/,\\- A-Za-z?#]{0,30}\\)?") {
            if let Ok(expr) = parse(&s) {
                prop_assert_eq!(parse(&expr.to_string()), Ok(expr));
            }
        }

        #[test]
        fn next_is_later_and_matches(text in prop_oneof![cron_text(), frequent_cron_text()], secs in instant(), tz in zone()) {
            let expr = match parse(&text) {
                Ok(expr) => expr,
                Err(error) => {
                    prop_assert!(error.message.contains("never occurs"), "{text}: {error}");
                    return Ok(());
                }
            };
            prop_assert_eq!(parse(&expr.to_string()), Ok(expr.clone()));
            let ScheduleExpr::Cron(cron) = &expr else { unreachable!("cron text parses as cron") };
            let after = DateTime::from_timestamp(secs, 0).unwrap();
            let got = next_after(&expr, after, tz);
            let got = got.unwrap_or_else(|| panic!("{text} in {tz} after {after}: none"));
            prop_assert!(got > after);
            let local = got.with_timezone(&tz);
            prop_assert_eq!(local.second(), 0);
            prop_assert!(cron.minute().contains(local.minute() as u8));
            prop_assert!(cron.hour().contains(local.hour() as u8));
            prop_assert!(cron.month().contains(local.month() as u8));
            prop_assert!(cron.matches_date(local.date_naive()));
            // Nothing matched in between: compare with a minute-by-minute walk over three days.
            let window = 3 * 24 * 60;
            match brute_force(cron, after, tz, window) {
                Some(want) => prop_assert_eq!(got, want, "{} in {}", text, tz),
                None => prop_assert!(got > after + TimeDelta::minutes(window), "{} in {}", text, tz),
            }
        }
    }
}
