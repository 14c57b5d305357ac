//! Rule coverage: does one set of rules grant everything another does? (upstream
//! `validation.Covers`/`BreakdownRule` in `component-helpers/auth/rbac/validation`, and
//! `CompactRules` in `pkg/registry/rbac/validation`), the heart of escalation prevention.

use super::rule::{ALL, PolicyRule, url_covers};

/// Whether `owner` covers every rule of `requested`, and the requested grains it does not
/// cover — each with at most one verb, group, resource and name (or one URL and verb).
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown)
        .filter(|grain| !owner.iter().any(|o| rule_covers(o, grain)))
        .collect();
    (uncovered.is_empty(), uncovered)
}

/// Splits a rule into single verb/group/resource/name grains, and single URL/verb grains
/// (upstream `BreakdownRule`, same order: group, resource, verb, name).
pub(crate) fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut grains = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    grains.push(base);
                } else {
                    for name in &rule.resource_names {
                        grains.push(PolicyRule {
                            resource_names: one(name),
                            ..base.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            grains.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..Default::default()
            });
        }
    }
    grains
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| set.contains(w))
}

/// Upstream `resourceCoversAll`: `*`, an exact entry, or `*/<sub>` for a subresource.
fn resources_cover(set: &[String], wanted: &[String]) -> bool {
    if set.iter().any(|r| r == ALL) {
        return true;
    }
    wanted.iter().all(|w| {
        set.contains(w)
            || w.split_once('/')
                .is_some_and(|(_, sub)| set.iter().any(|r| r.strip_prefix("*/") == Some(sub)))
    })
}

/// Upstream `nonResourceURLsCoversAll`: each URL equal to an owner entry or under a
/// `prefix*` one (the matcher's own rule).
fn urls_cover(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| set.iter().any(|o| url_covers(o, w)))
}

/// Whether one owner rule covers one grain (upstream `ruleCovers`).
fn rule_covers(owner: &PolicyRule, grain: &PolicyRule) -> bool {
    let verbs = owner.verbs.iter().any(|v| v == ALL) || has_all(&owner.verbs, &grain.verbs);
    let groups =
        owner.api_groups.iter().any(|g| g == ALL) || has_all(&owner.api_groups, &grain.api_groups);
    let names = if grain.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &grain.resource_names)
    };
    verbs
        && groups
        && resources_cover(&owner.resources, &grain.resources)
        && names
        && urls_cover(&owner.non_resource_urls, &grain.non_resource_urls)
}

/// Upstream `CompactRules`: grains naming one group and one resource and nothing else are
/// merged into one rule per group/resource carrying all their verbs; the rest stay as they are.
pub(crate) fn compact_rules(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut compacted: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.is_empty()
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            compacted.push(rule.clone());
            continue;
        }
        match simple
            .iter_mut()
            .find(|s| s.api_groups == rule.api_groups && s.resources == rule.resources)
        {
            Some(existing) => existing.verbs.extend(rule.verbs.iter().cloned()),
            None => simple.push(rule.clone()),
        }
    }
    compacted.extend(simple);
    compacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: serde_json::Value) -> PolicyRule {
        PolicyRule::from_json(&v).expect("well-formed rule")
    }

    #[test]
    fn owner_with_get_pods_does_not_cover_delete_pods() {
        let owner = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        let wanted = [rule(
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        let (ok, missing) = covers(&owner, &wanted);
        assert!(!ok);
        assert_eq!(
            missing,
            vec![rule(
                json!({"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]})
            )]
        );
    }

    #[test]
    fn wildcards_and_star_subresources_cover() {
        let owner = [
            rule(json!({"verbs": ["*"], "apiGroups": ["apps"], "resources": ["*"]})),
            rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]})),
            rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]})),
        ];
        let wanted = [
            rule(
                json!({"verbs": ["delete", "list"], "apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"]}),
            ),
            rule(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["replicationcontrollers/scale"]}),
            ),
            rule(json!({"verbs": ["get"], "nonResourceURLs": ["/apis/batch"]})),
        ];
        assert_eq!(covers(&owner, &wanted), (true, Vec::new()));
        let (ok, missing) = covers(
            &owner,
            &[rule(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
            )],
        );
        assert!(!ok);
        assert_eq!(missing.len(), 1);
    }

    #[test]
    fn resource_names_narrow_coverage() {
        let named = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}),
        )];
        let all = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}),
        )];
        assert!(!covers(&named, &all).0);
        assert!(covers(&all, &named).0);
        assert!(covers(&named, &named).0);
        let (_, missing) = covers(
            &named,
            &[rule(
                json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a", "b"]}),
            )],
        );
        assert_eq!(missing[0].resource_names, vec!["b".to_string()]);
    }

    #[test]
    fn compaction_merges_verbs_per_group_and_resource() {
        let grains = breakdown(&rule(json!({
            "verbs": ["create", "delete"], "apiGroups": ["", "batch"], "resources": ["jobs"]
        })));
        assert_eq!(grains.len(), 4);
        let compact = compact_rules(&grains);
        assert_eq!(compact.len(), 2);
        assert_eq!(
            compact[0].verbs,
            vec!["create".to_string(), "delete".to_string()]
        );
    }
}
