//! IANA time zone names.

use chrono_tz::{TZ_VARIANTS, Tz};

use crate::error::ScheduleError;

/// Checks that `tz` is an IANA time zone name such as `Europe/Paris` or `UTC`.
pub fn validate_timezone(tz: &str) -> Result<(), ScheduleError> {
    parse_timezone(tz).map(|_| ())
}

/// Parses an IANA time zone name, exactly as spelled in the database (case matters).
pub fn parse_timezone(tz: &str) -> Result<Tz, ScheduleError> {
    if let Ok(zone) = tz.parse::<Tz>() {
        return Ok(zone);
    }
    if tz.trim().is_empty() {
        return Err(ScheduleError::new("empty time zone")
            .hint("use an IANA name such as `Europe/Paris` or `UTC`"));
    }
    let wanted = tz.trim();
    let hint = match TZ_VARIANTS
        .iter()
        .find(|zone| zone.name().eq_ignore_ascii_case(wanted))
    {
        Some(zone) => format!("did you mean `{}`?", zone.name()),
        None => "use an IANA name such as `Europe/Paris` or `UTC`".to_string(),
    };
    Err(ScheduleError::new(format!("unknown time zone `{tz}`")).hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iana_names() {
        for name in [
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Asia/Kolkata",
            "Etc/GMT+5",
        ] {
            assert_eq!(validate_timezone(name), Ok(()), "{name}");
        }
        assert_eq!(parse_timezone("Europe/Paris"), Ok(Tz::Europe__Paris));
    }

    #[test]
    fn suggests_the_right_case() {
        for (name, hint) in [
            ("europe/paris", "did you mean `Europe/Paris`?"),
            ("utc", "did you mean `UTC`?"),
            (" Europe/Paris ", "did you mean `Europe/Paris`?"),
            (
                "Mars/Olympus",
                "use an IANA name such as `Europe/Paris` or `UTC`",
            ),
        ] {
            let error = validate_timezone(name).unwrap_err();
            assert_eq!(error.message, format!("unknown time zone `{name}`"));
            assert_eq!(error.hint.as_deref(), Some(hint), "{name}");
        }
        assert_eq!(
            validate_timezone("").unwrap_err().message,
            "empty time zone"
        );
    }
}
