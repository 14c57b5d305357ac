//! The JSON spellings of apimachinery's time types (`metav1.Time`, `metav1.MicroTime`,
//! `metav1.Duration`), which marshal as strings rather than as their protobuf messages.

/// `seconds` since the Unix epoch as an RFC 3339 UTC timestamp, with `fraction_digits`
/// digits of `nanos` (0 for `metav1.Time`, 6 for `metav1.MicroTime`). `None` outside the
/// years 0001-9999 that Go's RFC 3339 formatting accepts.
pub(crate) fn rfc3339(seconds: i64, nanos: i32, fraction_digits: u32) -> Option<String> {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let (hour, minute, second) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if fraction_digits > 0 {
        let nanos = i64::from(nanos.clamp(0, 999_999_999));
        let scaled = nanos / 10i64.pow(9 - fraction_digits.min(9));
        out.push_str(&format!(
            ".{scaled:0width$}",
            width = fraction_digits as usize
        ));
    }
    out.push('Z');
    Some(out)
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Nanoseconds as Go's `time.Duration.String()` writes them (`1h0m0s`, `1m30s`, `1.5s`,
/// `500ms`, `0s`), which is how `metav1.Duration` marshals to JSON.
pub(crate) fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let mut u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (digits, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        return format!("{sign}{}{unit}", with_fraction(u, digits));
    }
    let seconds = with_fraction(u % 60_000_000_000, 9);
    u /= 60_000_000_000;
    let mut out = format!("{seconds}s");
    if u > 0 {
        out = format!("{}m{out}", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{u}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare point) removed.
fn with_fraction(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0width$}", width = digits as usize);
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_with_second_precision() {
        assert_eq!(
            rfc3339(1_714_557_600, 0, 0).as_deref(),
            Some("2024-05-01T10:00:00Z")
        );
        assert_eq!(rfc3339(0, 0, 0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(951_782_400, 0, 0).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
    }

    #[test]
    fn micro_time_keeps_six_fraction_digits() {
        assert_eq!(
            rfc3339(1_714_557_600, 123_456_789, 6).as_deref(),
            Some("2024-05-01T10:00:00.123456Z")
        );
        assert_eq!(
            rfc3339(1_714_557_600, 0, 6).as_deref(),
            Some("2024-05-01T10:00:00.000000Z")
        );
    }

    #[test]
    fn times_outside_go_range_are_rejected() {
        assert_eq!(rfc3339(i64::MAX, 0, 0), None);
        assert_eq!(rfc3339(-62_135_596_801, 0, 0), None);
        assert_eq!(
            rfc3339(-62_135_596_800, 0, 0).as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
    }

    #[test]
    fn durations_format_like_go() {
        let s = 1_000_000_000;
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3600 * s), "1h0m0s");
        assert_eq!(go_duration(30 * s), "30s");
        assert_eq!(go_duration(90 * s), "1m30s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(-90 * s), "-1m30s");
        assert_eq!(go_duration(26 * 3600 * s + 5), "26h0m0.000000005s");
        assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
    }
}
