//! `spec.successPolicy` (upstream `success_policy.go`): an Indexed Job may declare success
//! before every index succeeded. The first rule whose `succeededIndexes` all succeeded (or,
//! with `succeededCount`, at least that many of them), or whose bare `succeededCount` is
//! reached, makes the Job `SuccessCriteriaMet` with reason `SuccessPolicy`; its remaining
//! pods are then terminated and the Job completes.

use super::indexes::{self, Indexes};
use k8s_openapi::api::batch::v1::Job;

/// The reason of the conditions a matched success policy writes.
pub const REASON: &str = "SuccessPolicy";

/// Upstream `matchSuccessPolicy`: the message of the first matching rule (`Matched rules at
/// index <i>`), or `None` when the Job has no policy, nothing succeeded yet or no rule
/// matches.
pub fn matched_rule(job: &Job, completions: i32, succeeded: &Indexes) -> Option<String> {
    let policy = job.spec.as_ref()?.success_policy.as_ref()?;
    if succeeded.is_empty() {
        return None;
    }
    let total = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(wanted), count) => {
                let required = indexes::parse(wanted, completions);
                // A rule whose indexes do not parse (or all lie beyond completions) never
                // matches, as upstream skips it.
                if required.is_empty() {
                    continue;
                }
                let contained = total(required.intersection(succeeded).count());
                contained == total(required.len())
                    || count.is_some_and(|c| contained >= i64::from(c))
            }
            (None, Some(count)) => total(succeeded.len()) >= i64::from(count),
            (None, None) => false,
        };
        if matched {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, SuccessPolicy, SuccessPolicyRule};

    fn job_with(rules: Vec<(Option<&str>, Option<i32>)>) -> Job {
        Job {
            spec: Some(JobSpec {
                success_policy: Some(SuccessPolicy {
                    rules: rules
                        .into_iter()
                        .map(|(indexes, count)| SuccessPolicyRule {
                            succeeded_indexes: indexes.map(str::to_string),
                            succeeded_count: count,
                        })
                        .collect(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn set(v: &[i32]) -> Indexes {
        v.iter().copied().collect()
    }

    #[test]
    fn succeeded_indexes_rule_needs_every_listed_index() {
        let job = job_with(vec![(Some("0,2-3"), None)]);
        assert_eq!(matched_rule(&job, 5, &set(&[0, 2])), None);
        assert_eq!(
            matched_rule(&job, 5, &set(&[0, 1, 2, 3])).as_deref(),
            Some("Matched rules at index 0")
        );
    }

    #[test]
    fn succeeded_indexes_with_count_needs_that_many_of_the_listed_indexes() {
        let job = job_with(vec![(Some("1-4"), Some(2))]);
        assert_eq!(matched_rule(&job, 5, &set(&[0, 1])), None);
        assert!(matched_rule(&job, 5, &set(&[0, 1, 4])).is_some());
    }

    #[test]
    fn bare_succeeded_count_counts_any_index_and_later_rules_report_their_position() {
        let job = job_with(vec![(Some("9"), None), (None, Some(2))]);
        assert_eq!(matched_rule(&job, 5, &set(&[3])), None);
        assert_eq!(
            matched_rule(&job, 5, &set(&[3, 4])).as_deref(),
            Some("Matched rules at index 1")
        );
    }

    #[test]
    fn no_policy_or_no_success_never_matches() {
        assert_eq!(matched_rule(&Job::default(), 5, &set(&[0])), None);
        let job = job_with(vec![(None, Some(0))]);
        assert_eq!(matched_rule(&job, 5, &Indexes::new()), None);
    }
}
