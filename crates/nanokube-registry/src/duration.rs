//! Human-readable durations and ages as `kubectl get` shows them, following apimachinery's
//! `util/duration` (`HumanDuration`, `ShortHumanDuration`) and the printers'
//! `translateTimestampSince`.
//!
//! Both duration formats tolerate a clock skew of up to (but excluding) two seconds: a
//! slightly negative duration prints as `0s`, anything further in the future as `<invalid>`.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

const INVALID: &str = "<invalid>";
const UNKNOWN: &str = "<unknown>";

const HOURS_PER_DAY: i64 = 24;
const HOURS_PER_YEAR: i64 = 24 * 365;

/// The skew rule shared by both formats: `Some(text)` when the duration is negative.
fn negative(d: Duration) -> Option<&'static str> {
    // `num_seconds` truncates toward zero like Go's `int(d.Seconds())`, so -1.9s counts as -1.
    match d.num_seconds() {
        s if s < -1 => Some(INVALID),
        s if s < 0 => Some("0s"),
        _ => None,
    }
}

/// apimachinery `duration.HumanDuration`: about two or three significant figures.
///
/// `<2m` → `Ns`; `<10m` → `XmYs` (or `Xm`); `<3h` → `Xm`; `<8h` → `XhYm` (or `Xh`);
/// `<48h` → `Xh`; `<8d` → `XdYh` (or `Xd`); `<2y` → `Xd`; `<8y` → `XyYd` (or `Xy`); else `Xy`.
pub fn human_duration(d: Duration) -> String {
    if let Some(text) = negative(d) {
        return text.to_string();
    }
    let seconds = d.num_seconds();
    if seconds < 2 * 60 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / HOURS_PER_DAY;
    if hours < 8 * HOURS_PER_DAY {
        return match hours % HOURS_PER_DAY {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 2 * HOURS_PER_YEAR {
        return format!("{days}d");
    }
    let years = hours / HOURS_PER_YEAR;
    if hours < 8 * HOURS_PER_YEAR {
        return match days % 365 {
            0 => format!("{years}y"),
            dy => format!("{years}y{dy}d"),
        };
    }
    format!("{years}y")
}

/// apimachinery `duration.ShortHumanDuration`: one unit only (`Ns`, `Nm`, `Nh`, `Nd`, `Ny`).
pub fn short_human_duration(d: Duration) -> String {
    if let Some(text) = negative(d) {
        return text.to_string();
    }
    let seconds = d.num_seconds();
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < HOURS_PER_DAY {
        return format!("{hours}h");
    }
    if hours < HOURS_PER_YEAR {
        return format!("{}d", hours / HOURS_PER_DAY);
    }
    format!("{}y", hours / HOURS_PER_YEAR)
}

/// Parses a `metav1.Time` / `metav1.MicroTime` string. `None` stands for Go's zero time:
/// absent, empty, unparseable, or `0001-01-01T00:00:00Z` (what a zero `time.Time` decodes to).
pub fn parse_timestamp(timestamp: Option<&str>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(timestamp?.trim())
        .ok()?
        .with_timezone(&Utc);
    let is_go_zero = parsed.year() == 1
        && parsed.ordinal() == 1
        && parsed.num_seconds_from_midnight() == 0
        && parsed.nanosecond() == 0;
    (!is_go_zero).then_some(parsed)
}

/// kubectl printers' `translateTimestampSince`: `<unknown>` for a missing or zero time, else
/// the [`human_duration`] from `timestamp` to `now`. Accepts the RFC 3339 string of an object.
pub fn age(timestamp: Option<&str>, now: DateTime<Utc>) -> String {
    match parse_timestamp(timestamp) {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => UNKNOWN.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> Duration {
        Duration::seconds(s)
    }
    const M: i64 = 60;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;
    const Y: i64 = 365 * D;

    fn now() -> DateTime<Utc> {
        parse_timestamp(Some("2025-03-01T12:00:00Z")).expect("fixed now parses")
    }

    #[test]
    fn human_duration_seconds_below_two_minutes() {
        assert_eq!(human_duration(secs(0)), "0s");
        assert_eq!(human_duration(secs(59)), "59s");
        assert_eq!(human_duration(secs(119)), "119s");
    }

    #[test]
    fn human_duration_minutes_and_seconds_below_ten_minutes() {
        assert_eq!(human_duration(secs(2 * M)), "2m");
        assert_eq!(human_duration(secs(2 * M + 5)), "2m5s");
        assert_eq!(human_duration(secs(10 * M - 1)), "9m59s");
    }

    #[test]
    fn human_duration_minutes_below_three_hours() {
        assert_eq!(human_duration(secs(10 * M)), "10m");
        assert_eq!(human_duration(secs(10 * M + 30)), "10m");
        assert_eq!(human_duration(secs(3 * H - 1)), "179m");
    }

    #[test]
    fn human_duration_hours_and_minutes_below_eight_hours() {
        assert_eq!(human_duration(secs(3 * H)), "3h");
        assert_eq!(human_duration(secs(3 * H + 7 * M)), "3h7m");
        assert_eq!(human_duration(secs(8 * H - 1)), "7h59m");
    }

    #[test]
    fn human_duration_hours_below_two_days() {
        assert_eq!(human_duration(secs(8 * H)), "8h");
        assert_eq!(human_duration(secs(48 * H - 1)), "47h");
    }

    #[test]
    fn human_duration_days_and_hours_below_eight_days() {
        assert_eq!(human_duration(secs(2 * D)), "2d");
        assert_eq!(human_duration(secs(2 * D + 5 * H)), "2d5h");
        assert_eq!(human_duration(secs(8 * D - 1)), "7d23h");
    }

    #[test]
    fn human_duration_days_below_two_years() {
        assert_eq!(human_duration(secs(8 * D)), "8d");
        assert_eq!(human_duration(secs(2 * Y - 1)), "729d");
    }

    #[test]
    fn human_duration_years_and_days_below_eight_years() {
        assert_eq!(human_duration(secs(2 * Y)), "2y");
        assert_eq!(human_duration(secs(2 * Y + 40 * D)), "2y40d");
        assert_eq!(human_duration(secs(8 * Y - 1)), "7y364d");
    }

    #[test]
    fn human_duration_years_from_eight_years() {
        assert_eq!(human_duration(secs(8 * Y)), "8y");
        assert_eq!(human_duration(secs(100 * Y + 3 * D)), "100y");
    }

    #[test]
    fn human_duration_tolerates_under_two_seconds_of_skew() {
        assert_eq!(human_duration(Duration::milliseconds(-500)), "0s");
        assert_eq!(human_duration(secs(-1)), "0s");
        assert_eq!(human_duration(Duration::milliseconds(-1999)), "0s");
        assert_eq!(human_duration(secs(-2)), "<invalid>");
        assert_eq!(human_duration(secs(-3600)), "<invalid>");
    }

    #[test]
    fn short_human_duration_uses_one_unit() {
        assert_eq!(short_human_duration(secs(-5)), "<invalid>");
        assert_eq!(short_human_duration(secs(-1)), "0s");
        assert_eq!(short_human_duration(secs(59)), "59s");
        assert_eq!(short_human_duration(secs(60)), "1m");
        assert_eq!(short_human_duration(secs(H - 1)), "59m");
        assert_eq!(short_human_duration(secs(H)), "1h");
        assert_eq!(short_human_duration(secs(D)), "1d");
        assert_eq!(short_human_duration(secs(Y - 1)), "364d");
        assert_eq!(short_human_duration(secs(3 * Y)), "3y");
    }

    #[test]
    fn age_of_missing_or_zero_timestamp_is_unknown() {
        assert_eq!(age(None, now()), "<unknown>");
        assert_eq!(age(Some(""), now()), "<unknown>");
        assert_eq!(age(Some("not a time"), now()), "<unknown>");
        assert_eq!(age(Some("0001-01-01T00:00:00Z"), now()), "<unknown>");
    }

    #[test]
    fn age_counts_from_timestamp_to_now() {
        assert_eq!(age(Some("2025-03-01T11:55:00Z"), now()), "5m");
        assert_eq!(age(Some("2025-03-01T11:59:30.123456Z"), now()), "29s");
        assert_eq!(age(Some("2025-03-01T13:00:00+01:00"), now()), "0s");
        assert_eq!(age(Some("2025-02-27T12:00:00Z"), now()), "2d");
    }

    #[test]
    fn age_in_the_future_is_invalid() {
        assert_eq!(age(Some("2025-03-01T12:00:01Z"), now()), "0s");
        assert_eq!(age(Some("2025-03-01T12:00:05Z"), now()), "<invalid>");
    }
}
