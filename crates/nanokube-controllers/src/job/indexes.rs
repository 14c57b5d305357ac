//! Completion-index sets of Indexed Jobs and their wire form, the ranges string of
//! `status.completedIndexes` / `status.failedIndexes` (upstream `indexed_job_utils.go`).

use std::collections::BTreeSet;

/// A set of completion indexes.
pub type Indexes = BTreeSet<i32>;

/// Parses a ranges string such as `1,3-5,7`, keeping only indexes below `completions`;
/// malformed parts are skipped, as upstream does, so a bad string never blocks a Job.
pub fn parse(ranges: &str, completions: i32) -> Indexes {
    let mut out = Indexes::new();
    for part in ranges.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            continue;
        };
        if first < 0 || last < first {
            continue;
        }
        out.extend(first..=last.min(completions.saturating_sub(1)));
    }
    out
}

/// Formats indexes as Kubernetes does: runs of three or more collapse to `a-b`, pairs stay
/// `a,b`.
pub fn format(indexes: &Indexes) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    let flush = |run: (i32, i32), parts: &mut Vec<String>| match run.1 - run.0 {
        0 => parts.push(run.0.to_string()),
        1 => {
            parts.push(run.0.to_string());
            parts.push(run.1.to_string());
        }
        _ => parts.push(format!("{}-{}", run.0, run.1)),
    };
    for &i in indexes {
        run = match run {
            Some((first, last)) if last.checked_add(1) == Some(i) => Some((first, i)),
            Some(r) => {
                flush(r, &mut parts);
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(r) = run {
        flush(r, &mut parts);
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_collapse_three_or_more_consecutive_indexes() {
        let set: Indexes = [1, 3, 4, 5, 7, 9, 10].into_iter().collect();
        assert_eq!(format(&set), "1,3-5,7,9,10");
        assert_eq!(format(&Indexes::new()), "");
    }

    #[test]
    fn ranges_round_trip_and_drop_out_of_range_indexes() {
        assert_eq!(format(&parse("1,3-5,7", 10)), "1,3-5,7");
        assert_eq!(format(&parse("0-9", 4)), "0-3");
        assert_eq!(format(&parse("x,2,,5-3", 10)), "2");
    }
}
