//! `spec.podFailurePolicy` (upstream `pod_failure_policy.go`): the first rule matching a
//! failed pod's exit codes or conditions decides whether the failure fails the Job, fails
//! only the pod's index (with `backoffLimitPerIndex`), is ignored, or counts against the
//! backoff limits as usual.

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// What a matched rule says about one failed pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// Fail the whole Job, with this condition message.
    FailJob(String),
    /// Mark the pod's completion index failed at once, whatever its per-index budget left
    /// (still counted in `status.failed`, as upstream counts it).
    FailIndex,
    /// Do not count the failure (no backoff, not in `status.failed`).
    Ignore,
    /// Count it as any failure.
    Count,
}

fn exit_code_matches(req: &PodFailurePolicyOnExitCodesRequirement, code: i32) -> bool {
    match req.operator.as_str() {
        "In" => req.values.contains(&code),
        "NotIn" => !req.values.contains(&code),
        _ => false,
    }
}

/// The first terminated, non-zero container (main containers first, then init) matching
/// the requirement, with its exit code.
fn matching_container<'a>(
    pod: &'a Pod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(&'a ContainerStatus, i32)> {
    let status = pod.status.as_ref()?;
    let main = status.container_statuses.iter().flatten();
    let init = status.init_container_statuses.iter().flatten();
    main.chain(init).find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        let named = req.container_name.as_ref().is_none_or(|n| *n == cs.name);
        (named && code != 0 && exit_code_matches(req, code)).then_some((cs, code))
    })
}

/// Upstream `matchPodFailurePolicy` for a failed pod; `None` when the Job has no policy
/// or no rule matches (the failure then counts).
pub fn matching_action(job: &Job, pod: &Pod) -> Option<PolicyAction> {
    let policy = job.spec.as_ref()?.pod_failure_policy.as_ref()?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let message = if let Some(req) = &rule.on_exit_codes {
            let Some((cs, code)) = matching_container(pod, req) else {
                continue;
            };
            format!(
                "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                cs.name, rule.action
            )
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            let Some(cond) = conditions.iter().find(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
            }) else {
                continue;
            };
            format!(
                "Pod {ns}/{name} has condition {} matching {} rule at index {index}",
                cond.type_, rule.action
            )
        } else {
            continue;
        };
        match rule.action.as_str() {
            "FailJob" => return Some(PolicyAction::FailJob(message)),
            "FailIndex" => return Some(PolicyAction::FailIndex),
            "Ignore" => return Some(PolicyAction::Ignore),
            "Count" => return Some(PolicyAction::Count),
            // An action this version does not know: the rule is skipped, as upstream's
            // switch falls through for it.
            _ => {}
        }
    }
    None
}

/// Whether a failed pod's failure is ignored by the policy.
pub fn is_ignored(job: &Job, pod: &Pod) -> bool {
    matching_action(job, pod) == Some(PolicyAction::Ignore)
}
