//! When a CronJob fires: upstream's schedule arithmetic (robfig/cron v3 `SpecSchedule.Next`
//! in a CronJob's time zone, and `mostRecentScheduleTime` / `nextScheduleTimeDuration` of
//! `pkg/controller/cronjob/utils.go`), as pure functions of the time.
//!
//! The fire times themselves are [`Schedule::next_after`], robfig's walk in the zone.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use nanokube_registry::kinds::cronjob::Schedule;
use std::time::Duration;

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
        self.schedule.next_after(after, self.zone)
    }
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
