//! When a CronJob fires: upstream's schedule arithmetic (robfig/cron v3 `SpecSchedule.Next`
//! in a CronJob's time zone, and `mostRecentScheduleTime` / `nextScheduleTimeDuration` of
//! `pkg/controller/cronjob/utils.go`), as pure functions of the time.
//!
//! robfig/cron finds the first whole-minute *instant* after a time whose wall clock in the
//! zone matches the five fields. Across daylight-saving changes that means: an interval
//! schedule like `*/2 * * * *` keeps firing every two real minutes (01:58 EST is followed by
//! 03:00 EDT in spring, and the repeated hour in autumn is walked through once in EDT and once
//! in EST, each instant once); a fixed-time schedule whose wall time falls in the spring gap
//! does not fire that day, and one in the repeated hour fires twice (kubernetes/kubernetes
//! issue 121594, still open in 1.33). The parser's `croner` walker resolves those two DST
//! cases differently, so the walk is done here over the parsed fields.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use nanokube_registry::kinds::cronjob::Schedule;
use std::time::Duration;

/// robfig/cron gives up (returns the zero time) when nothing matches within five years.
const YEARS_SEARCHED: i32 = 5;
/// Upstream `nextScheduleDelta`: requeues land this long after the scheduled time, so a
/// slightly early wake-up still sees the time as passed.
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this earn a `TooManyMissedTimes` warning.
const MANY_MISSED: i64 = 100;
/// The error upstream reports for a schedule that parses but never fires (`0 0 31 2 *`).
pub const NEVER_FIRES: &str = "time difference between two schedules is less than 1 second";

/// A parsed schedule bound to the zone whose wall clock it reads.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    schedule: Schedule,
    zone: Tz,
}

impl CronSchedule {
    pub fn new(schedule: Schedule, zone: Tz) -> Self {
        CronSchedule { schedule, zone }
    }

    /// The first fire time strictly after `after` (robfig's `Next`), or `None` when the
    /// schedule never fires within five years.
    pub fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.schedule {
            Schedule::Cron(cron) => next_wall_clock_match(cron, self.zone, after),
            // `@every` is a constant delay on the absolute time line, zone-independent.
            Schedule::Every(_) => self.schedule.next_after(&after),
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

/// How many start times were missed since the earliest time considered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// Upstream `mostRecentScheduleTime`: the time counting starts from, the most recent fire
/// time after it that is not after `now` (if any), and how many were missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MostRecent {
    pub earliest: DateTime<Utc>,
    pub most_recent: Option<DateTime<Utc>>,
    pub missed: Missed,
}

/// Upstream `mostRecentScheduleTime`. Counting starts at `last_scheduled` (else the
/// CronJob's creation), or at `now - starting_deadline` when that is later. The number of
/// missed times is estimated from the gap between the first two fire times (as upstream
/// does), and only the most recent one is returned: a CronJob never backfills.
///
/// Errors (with upstream's text) when the schedule never fires.
pub fn most_recent_schedule_time(
    schedule: &CronSchedule,
    last_scheduled: DateTime<Utc>,
    starting_deadline_seconds: Option<i64>,
    now: DateTime<Utc>,
) -> Result<MostRecent, String> {
    let mut earliest = last_scheduled;
    if let Some(deadline) = starting_deadline_seconds {
        // The controller never schedules anything older than the deadline allows.
        let cutoff = TimeDelta::try_seconds(deadline).and_then(|d| now.checked_sub_signed(d));
        if let Some(cutoff) = cutoff.filter(|c| *c > earliest) {
            earliest = cutoff;
        }
    }
    let none_missed = |most_recent| MostRecent {
        earliest,
        most_recent,
        missed: Missed::None,
    };
    let Some(t1) = schedule.next(earliest) else {
        return Err(NEVER_FIRES.to_string());
    };
    if now < t1 {
        return Ok(none_missed(None));
    }
    let Some(t2) = schedule.next(t1) else {
        return Err(NEVER_FIRES.to_string());
    };
    if now < t2 {
        return Ok(none_missed(Some(t1)));
    }
    let interval = round_to_seconds(t2 - t1);
    if interval < 1 {
        return Err(NEVER_FIRES.to_string());
    }
    let missed = (now - t1).num_seconds() / interval + 1;
    // Start two intervals before the estimated last slot and let the schedule walk to the
    // true most recent time (irregular schedules like `30 6-16/4 * * 1-5`).
    let back = missed.saturating_sub(2).saturating_mul(interval);
    let mut cursor = TimeDelta::try_seconds(back)
        .and_then(|d| t1.checked_add_signed(d))
        .unwrap_or(t1);
    let mut most_recent = None;
    while let Some(t) = schedule.next(cursor).filter(|t| *t <= now) {
        most_recent = Some(t);
        cursor = t;
    }
    Ok(MostRecent {
        earliest,
        most_recent,
        missed: if missed > MANY_MISSED {
            Missed::Many
        } else if missed > 0 {
            Missed::Few
        } else {
            Missed::None
        },
    })
}

/// Go's `Duration.Round(time.Second)` in whole seconds (halves away from zero).
fn round_to_seconds(d: TimeDelta) -> i64 {
    let millis = d.num_milliseconds();
    let secs = millis / 1000;
    let rest = millis % 1000;
    if rest >= 500 {
        secs + 1
    } else if rest <= -500 {
        secs - 1
    } else {
        secs
    }
}

/// Upstream `nextScheduleTimeDuration`: how long until the next fire time after the most
/// recent one (or after the time counting starts from), plus [`NEXT_SCHEDULE_DELTA`];
/// `None` when the schedule never fires again.
pub fn next_schedule_delay(
    schedule: &CronSchedule,
    last_scheduled: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let from = match most_recent_schedule_time(schedule, last_scheduled, None, now) {
        // A schedule that broke: aim for the next slot from now.
        Err(_) => now,
        Ok(MostRecent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(MostRecent {
            earliest,
            missed: Missed::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = schedule.next(from)?;
    let delay = (next - now).to_std().unwrap_or(Duration::ZERO);
    Some(delay + NEXT_SCHEDULE_DELTA)
}
