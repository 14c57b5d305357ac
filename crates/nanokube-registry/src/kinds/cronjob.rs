//! batch/v1 CronJob (also served as batch/v1beta1): `SetDefaults_CronJob`,
//! `ValidateCronJobCreate` / `ValidateCronJobUpdate`, and the schedule parser.
//!
//! Schedules are checked the way robfig/cron v3's `ParseStandard` checks them (upstream's
//! parser), with its error texts, into `croner`'s fields; fire times are robfig's walk over
//! those fields in the CronJob's zone ([`Schedule::next_after`]). `@every <duration>` is
//! kept as a fixed interval.

use super::decode_as;
use super::job::validate_job_spec;
use super::pod::default_pod_template;
use crate::field::{ErrorList, FieldError, child};
use crate::resource::{CRON_JOBS, ResourceInfo};
use crate::strategy::{Decoded, Strategy};
use crate::validation::{get, get_str, object_at, set_default, str_or_empty, validate_nonnegative};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::time::Duration;

/// A parsed CronJob schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// A five-field schedule (or a descriptor like `@hourly` that stands for one).
    Cron(Box<croner::Cron>),
    /// `@every <duration>`: fires every interval (whole seconds, at least one).
    Every(Duration),
}

/// robfig/cron gives up (returns the zero time) when nothing matches within five years.
const YEARS_SEARCHED: i32 = 5;

impl Schedule {
    /// The first fire time strictly after `after` (robfig/cron v3 `Next`) of the schedule
    /// read on `zone`'s wall clock, or `None` when it never fires within five years.
    ///
    /// robfig finds the first whole-minute *instant* after a time whose wall clock in the
    /// zone matches the five fields. Across daylight-saving changes that means: an interval
    /// schedule like `*/2 * * * *` keeps firing every two real minutes (01:58 EST is
    /// followed by 03:00 EDT in spring, and the repeated hour in autumn is walked through
    /// once in EDT and once in EST, each instant once); a fixed-time schedule whose wall
    /// time falls in the spring gap does not fire that day, and one in the repeated hour
    /// fires twice (kubernetes/kubernetes issue 121594, still open in 1.33). `croner`'s own
    /// walker resolves those two cases differently, so the walk is done here over the
    /// fields it parsed.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => next_wall_clock_match(cron, zone, after),
            Schedule::Every(d) => {
                // robfig's ConstantDelaySchedule: next = after + delay, rounded down to the
                // second, on the absolute time line (no zone).
                let step = TimeDelta::from_std(*d).ok()?;
                Some(after.with_nanosecond(0)? + step)
            }
        }
    }
}

/// The first whole-minute instant at or after the second following `after` whose wall clock
/// in `zone` matches `cron`: robfig's `Next` for its standard (seconds = 0) schedules.
fn next_wall_clock_match(
    cron: &croner::Cron,
    zone: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    // robfig starts at the upcoming whole second.
    let start = after.with_nanosecond(0)? + TimeDelta::seconds(1);
    let last_year = start.year() + YEARS_SEARCHED;
    let start_wall = start.with_timezone(&zone).naive_local();
    // Wall clock and real time drift apart by at most a daylight-saving shift, so a match
    // that far before the start cannot be after it, and none that far after the best match
    // so far can beat it. Within that window every candidate instant is compared.
    let margin = TimeDelta::hours(3);
    let mut day = (start_wall - margin).date();
    let mut best: Option<(DateTime<Utc>, chrono::NaiveDateTime)> = None;
    loop {
        if day.year() > last_year {
            return best.map(|(b, _)| b);
        }
        if day_matches(cron, day) {
            for hour in (0..24).filter(|h| cron.pattern.hour_match(*h).unwrap_or(false)) {
                for minute in (0..60).filter(|m| cron.pattern.minute_match(*m).unwrap_or(false)) {
                    let Some(wall) = day.and_hms_opt(hour, minute, 0) else {
                        continue;
                    };
                    if wall + margin < start_wall {
                        continue;
                    }
                    if let Some((b, best_wall)) = best
                        && wall > best_wall + margin
                    {
                        return Some(b);
                    }
                    // No instant in a spring gap, two in a repeated hour: each is a candidate.
                    let instants = match zone.from_local_datetime(&wall) {
                        chrono::LocalResult::None => vec![],
                        chrono::LocalResult::Single(a) => vec![a],
                        chrono::LocalResult::Ambiguous(a, b) => vec![a, b],
                    };
                    for instant in instants {
                        let instant = instant.with_timezone(&Utc);
                        if instant >= start && best.is_none_or(|(b, _)| instant < b) {
                            best = Some((instant, wall));
                        }
                    }
                }
            }
        }
        if let Some((b, best_wall)) = best
            && day > (best_wall + margin).date()
        {
            return Some(b);
        }
        day = day.succ_opt()?;
    }
}

/// Month, day-of-month and day-of-week of a calendar day against the schedule (when both day
/// fields are restricted, either may match, as in robfig and Vixie cron).
fn day_matches(cron: &croner::Cron, day: NaiveDate) -> bool {
    let weekday = croner::Weekday::from_days_from_sunday(day.weekday().num_days_from_sunday());
    cron.pattern.month_match(day.month()).unwrap_or(false)
        && cron
            .pattern
            .day_match(day.year(), day.month(), day.day(), weekday)
            .unwrap_or(false)
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const DOW_NAMES: &[(&str, u32)] = &[
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: MONTH_NAMES,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: DOW_NAMES,
};

/// Go's `strconv.Atoi` followed by robfig's non-negative check.
fn parse_uint(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        let why = if !expr.is_empty()
            && expr
                .trim_start_matches(['+', '-'])
                .bytes()
                .all(|b| b.is_ascii_digit())
            && expr.len() > 1
        {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: {why}")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        )
    })
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, n)) = b.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n);
    }
    parse_uint(expr)
}

/// One comma-separated field as a bit set; `star` when it is `*`/`?` without a step > 1
/// (robfig's star bit, which changes how day-of-month and day-of-week combine).
fn parse_field(field: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for expr in field.split(',') {
        let (range, step_part) = match expr.split('/').collect::<Vec<_>>().as_slice() {
            [r] => (*r, None),
            [r, s] => (*r, Some(*s)),
            _ => return Err(format!("too many slashes: {expr}")),
        };
        let low_high: Vec<&str> = range.split('-').collect();
        let single = low_high.len() == 1;
        let (start, mut end, mut is_star) = if low_high[0] == "*" || low_high[0] == "?" {
            (b.min, b.max, true)
        } else {
            let start = parse_int_or_name(low_high[0], b)?;
            let end = match low_high.as_slice() {
                [_] => start,
                [_, hi] => parse_int_or_name(hi, b)?,
                _ => return Err(format!("too many hyphens: {expr}")),
            };
            (start, end, false)
        };
        let step = match step_part {
            None => 1,
            Some(s) => {
                let step = parse_uint(s)?;
                // "N/step" means "N-max/step".
                if single {
                    end = b.max;
                }
                if step > 1 {
                    is_star = false;
                }
                step
            }
        };
        if start < b.min {
            return Err(format!(
                "beginning of range ({start}) below minimum ({}): {expr}",
                b.min
            ));
        }
        if end > b.max {
            return Err(format!(
                "end of range ({end}) above maximum ({}): {expr}",
                b.max
            ));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {expr}"
            ));
        }
        if step == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
        star |= is_star;
    }
    Ok((bits, star))
}

fn render_field(bits: u64, star: bool, b: &Bounds) -> String {
    if star {
        return "*".to_string();
    }
    (b.min..=b.max)
        .filter(|v| bits & (1 << v) != 0)
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Go's `time.ParseDuration` (the units robfig's `@every` accepts).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let orig = s;
    let bad = || format!("time: invalid duration {orig:?}");
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos = match unit {
            "" => return Err(format!("time: missing unit in duration {orig:?}")),
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            u => return Err(format!("time: unknown unit {u:?} in duration {orig:?}")),
        };
        total += value * nanos;
    }
    if negative || !total.is_finite() || total > i64::MAX as f64 {
        // robfig rounds negative delays up to one second; treat them like zero.
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_nanos(total as u64))
}

/// Parses a schedule as robfig/cron v3 `ParseStandard` does (five fields, names, `?`,
/// descriptors, `@every`, an optional `TZ=`/`CRON_TZ=` prefix whose zone is ignored here:
/// the CronJob's `timeZone` applies). Errors carry robfig's texts.
pub fn parse_schedule(schedule: &str) -> Result<Schedule, String> {
    if schedule.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = schedule;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (zone_part, rest) = spec.split_once(' ').unwrap_or((spec, ""));
        let zone = zone_part.split_once('=').map_or("", |(_, z)| z);
        if let Err(e) = load_location(zone) {
            return Err(format!("provided bad location {zone}: {e}"));
        }
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let parsed = [
        (fields[0], &MINUTES),
        (fields[1], &HOURS),
        (fields[2], &DOM),
        (fields[3], &MONTHS),
        (fields[4], &DOW),
    ]
    .iter()
    .map(|(f, b)| parse_field(f, b).map(|(bits, star)| render_field(bits, star, b)))
    .collect::<Result<Vec<_>, _>>()?;
    cron_from_fields(&parsed.join(" "))
}

fn cron_from_fields(pattern: &str) -> Result<Schedule, String> {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build();
    parser
        .parse(pattern)
        .map(|c| Schedule::Cron(Box::new(c)))
        .map_err(|e| e.to_string())
}

fn parse_descriptor(spec: &str) -> Result<Schedule, String> {
    let pattern = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            if let Some(d) = spec.strip_prefix("@every ") {
                let duration = parse_go_duration(d)
                    .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                // robfig: at least one second, rounded down to whole seconds.
                let secs = duration.as_secs().max(1);
                return Ok(Schedule::Every(Duration::from_secs(secs)));
            }
            return Err(format!("unrecognized descriptor: {spec}"));
        }
    };
    cron_from_fields(pattern)
}

/// Go's `time.LoadLocation` for the names CronJobs use: `UTC`, `Local` and IANA names.
pub fn load_location(name: &str) -> Result<Option<chrono_tz::Tz>, String> {
    match name {
        "" | "UTC" => Ok(Some(chrono_tz::UTC)),
        "Local" => Ok(None),
        _ => name
            .parse::<chrono_tz::Tz>()
            .map(Some)
            .map_err(|_| format!("unknown time zone {name}")),
    }
}

fn valid_time_zone_part(part: &str) -> bool {
    (1..=14).contains(&part.len())
        && part
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
}

/// `validateTimeZone`.
fn validate_time_zone(tz: Option<&Value>, path: &str) -> ErrorList {
    let Some(v) = tz.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let name = v.as_str().unwrap_or("");
    if name.is_empty() {
        return vec![FieldError::invalid(
            path,
            v,
            "timeZone must be nil or non-empty string",
        )];
    }
    let bad_part = name
        .split('/')
        .any(|p| p == "." || p == ".." || p.starts_with('-') || !valid_time_zone_part(p));
    if bad_part {
        return vec![FieldError::invalid(
            path,
            v,
            format!("unknown time zone {name}"),
        )];
    }
    let mut errs = Vec::new();
    if name.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            v,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = load_location(name) {
        errs.push(FieldError::invalid(path, v, e));
    }
    errs
}

/// `validateScheduleFormat`.
fn validate_schedule(
    schedule: &str,
    allow_tz: bool,
    time_zone: Option<&Value>,
    path: &str,
) -> ErrorList {
    let mut errs = Vec::new();
    let value = Value::from(schedule);
    if let Err(e) = parse_schedule(schedule) {
        errs.push(FieldError::invalid(path, &value, e));
    }
    let has_tz = schedule.contains("TZ");
    if allow_tz && has_tz && time_zone.is_some_and(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            path,
            &value,
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ));
    } else if !allow_tz && has_tz {
        errs.push(FieldError::invalid(
            path,
            &value,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    errs
}

/// The job name suffix (`-<minutes since epoch>`) leaves 52 of a Job name's 63 characters.
const MAX_CRONJOB_NAME: usize = 52;

fn validate_cronjob(object: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = Vec::new();
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.and_then(|o| o.get("spec"));
    let schedule = str_or_empty(spec, &["schedule"]);
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        let allow_tz = old_spec.is_some_and(|o| str_or_empty(o, &["schedule"]).contains("TZ"));
        errs.extend(validate_schedule(
            schedule,
            allow_tz,
            spec.get("timeZone"),
            "spec.schedule",
        ));
    }
    errs.extend(validate_nonnegative(
        spec,
        &["startingDeadlineSeconds"],
        "spec.startingDeadlineSeconds",
    ));
    let tz_changed = old_spec.is_none_or(|o| o.get("timeZone") != spec.get("timeZone"));
    if tz_changed {
        errs.extend(validate_time_zone(spec.get("timeZone"), "spec.timeZone"));
    }
    match str_or_empty(spec, &["concurrencyPolicy"]) {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        p => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            &Value::from(p),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = "spec.jobTemplate";
    if let Some(meta) = get(spec, &["jobTemplate", "metadata"]) {
        errs.extend(crate::validation::validate_labels(
            meta.get("labels"),
            &child(jt, "metadata.labels"),
        ));
        errs.extend(crate::validation::validate_annotations(
            meta.get("annotations"),
            &child(jt, "metadata.annotations"),
        ));
    }
    errs.extend(validate_job_spec(
        get(spec, &["jobTemplate", "spec"]).unwrap_or(&Value::Null),
        &child(jt, "spec"),
        false,
    ));
    for field in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(validate_nonnegative(spec, &[field], &child("spec", field)));
    }
    if old.is_none() {
        let name = str_or_empty(object, &["metadata", "name"]);
        if name.len() > MAX_CRONJOB_NAME {
            errs.push(FieldError::invalid(
                "metadata.name",
                &Value::from(name),
                format!("must be no more than {MAX_CRONJOB_NAME} characters"),
            ));
        }
    }
    errs
}

pub struct CronJobStrategy;

impl Strategy for CronJobStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &CRON_JOBS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::batch::v1::CronJob>(object)
    }
    fn default(&self, object: &mut Value) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        // Only the pod template inside the job template is defaulted (upstream
        // SetObjectDefaults_CronJob); the Job defaults apply when the Job is created.
        default_pod_template(
            spec.get_mut("jobTemplate")
                .and_then(|jt| jt.get_mut("spec"))
                .and_then(|s| s.get_mut("template")),
        );
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        // `kubectl get -o yaml` shows an empty status on a fresh CronJob.
        let _ = object_at(object, &["status"]);
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_cronjob(object, None)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        validate_cronjob(new, Some(old))
    }
}

/// The schedule of a stored CronJob, for printers and the controller: `spec.schedule`.
pub fn schedule_of(object: &Value) -> Option<&str> {
    get_str(object, &["spec", "schedule"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cronjob(schedule: &str) -> Value {
        json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "sleepy", "namespace": "default"},
               "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                   "containers": [{"name": "resting", "image": "busybox", "command": ["/bin/sleep"], "args": ["3"]}],
                   "restartPolicy": "Never"}}}}}})
    }

    fn create(mut cj: Value) -> (Value, Vec<String>) {
        CronJobStrategy.default(&mut cj);
        CronJobStrategy.prepare_for_create(&mut cj);
        let errs = CronJobStrategy
            .validate(&cj)
            .iter()
            .map(ToString::to_string)
            .collect();
        (cj, errs)
    }

    #[test]
    fn every_two_minutes_is_accepted_and_defaulted() {
        let (cj, errs) = create(cronjob("*/2 * * * *"));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cj["spec"]["suspend"], false);
        assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
        assert!(cj["spec"]["jobTemplate"]["spec"].get("selector").is_none());
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
    }

    #[test]
    fn minute_61_is_rejected_with_robfig_text() {
        let (_, errs) = create(cronjob("61 * * * *"));
        assert_eq!(
            errs,
            vec![
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
    }

    #[test]
    fn schedule_parser_errors_follow_robfig() {
        let err = |s: &str| parse_schedule(s).err().unwrap_or_default();
        assert_eq!(
            err("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(err("@often"), "unrecognized descriptor: @often");
        assert_eq!(
            err("@every 1d"),
            "failed to parse duration @every 1d: time: unknown unit \"d\" in duration \"1d\""
        );
        assert_eq!(err(""), "empty spec string");
        for ok in [
            "@hourly",
            "@every 90s",
            "0 9 * JAN-MAR mon-fri",
            "*/15 0-6/2 1,15 ? *",
        ] {
            assert!(parse_schedule(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn schedules_compute_next_times() {
        use chrono::TimeZone;
        let t = chrono::Utc
            .with_ymd_and_hms(2024, 5, 1, 10, 3, 20)
            .single()
            .expect("valid");
        let s = parse_schedule("*/2 * * * *").expect("parses");
        assert_eq!(
            s.next_after(t, chrono_tz::UTC),
            chrono::Utc.with_ymd_and_hms(2024, 5, 1, 10, 4, 0).single()
        );
        let s = parse_schedule("@every 1m30s").expect("parses");
        assert_eq!(
            s.next_after(t, chrono_tz::UTC),
            chrono::Utc.with_ymd_and_hms(2024, 5, 1, 10, 4, 50).single()
        );
    }

    #[test]
    fn tz_prefix_is_rejected() {
        let (_, errs) = create(cronjob("TZ=UTC */2 * * * *"));
        assert_eq!(
            errs,
            vec![
                "spec.schedule: Invalid value: \"TZ=UTC */2 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead"
            ]
        );
    }

    #[test]
    fn unknown_time_zone_is_rejected() {
        let mut cj = cronjob("*/2 * * * *");
        cj["spec"]["timeZone"] = json!("Mars/Olympus");
        let (_, errs) = create(cj);
        assert_eq!(
            errs,
            vec!["spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus"]
        );
        let mut cj = cronjob("*/2 * * * *");
        cj["spec"]["timeZone"] = json!("Europe/Paris");
        assert!(create(cj).1.is_empty());
    }

    #[test]
    fn long_names_and_restart_always_are_rejected() {
        let mut cj = cronjob("@daily");
        cj["metadata"]["name"] = json!("a".repeat(53));
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        let (_, errs) = create(cj);
        assert_eq!(
            errs,
            vec![
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
                "metadata.name: Invalid value: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be no more than 52 characters",
            ]
        );
    }
}
