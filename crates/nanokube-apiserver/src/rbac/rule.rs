//! One RBAC `PolicyRule` and the matcher that decides whether it allows a request
//! (upstream `RuleAllows` with the `VerbMatches`/`APIGroupMatches`/`ResourceMatches`/
//! `ResourceNameMatches`/`NonResourceURLMatches` helpers of `pkg/apis/rbac/v1`).

use crate::authz::Attributes;

pub use nanokube_registry::goformat::{go_quote, go_quote_list};
pub use nanokube_registry::rbac::{ALL, PolicyRule};

/// Whether `rule` allows the request described by `attrs` (upstream `RuleAllows`).
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, &attrs.verb) {
        return false;
    }
    if attrs.is_resource_request {
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        api_group_matches(rule, &attrs.api_group)
            && resource_matches(rule, &combined, &attrs.subresource)
            && resource_name_matches(rule, &attrs.name)
    } else {
        non_resource_url_matches(rule, &attrs.path)
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == ALL || g == group)
}

/// `pods` covers only `pods`; `pods/log` needs `pods/log`, `*/log` or `*`.
fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

/// An empty `resourceNames` allows every name; otherwise the request must name one of them
/// (so an unnamed list, watch or create fails against a name-restricted rule).
fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| url_covers(u, path))
}

/// A non-resource URL entry covers a path when it is `*`, equal to it, or a `prefix*` of it.
pub(crate) fn url_covers(entry: &str, path: &str) -> bool {
    entry == ALL
        || entry == path
        || (entry.ends_with('*') && path.starts_with(entry.trim_end_matches('*')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;
    use serde_json::{Value, json};

    fn rule(v: Value) -> PolicyRule {
        PolicyRule::from_json(&v).expect("well-formed rule")
    }

    fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::authenticated("u", Vec::new()),
            verb: verb.into(),
            is_resource_request: true,
            namespace: "default".into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn path_request(verb: &str, path: &str) -> Attributes {
        Attributes {
            user: UserInfo::authenticated("u", Vec::new()),
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    #[test]
    fn wildcards_match_any_verb_group_and_resource() {
        let all = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(rule_allows(
            &request("delete", "batch", "jobs", "", "x"),
            &all
        ));
        assert!(rule_allows(&request("get", "", "pods", "log", "x"), &all));
        let verbs = rule(json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(rule_allows(
            &request("escalate", "", "pods", "", ""),
            &verbs
        ));
        assert!(!rule_allows(
            &request("get", "apps", "pods", "", ""),
            &verbs
        ));
        let groups = rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["jobs"]}));
        assert!(rule_allows(
            &request("get", "batch", "jobs", "", ""),
            &groups
        ));
        assert!(!rule_allows(
            &request("list", "batch", "jobs", "", ""),
            &groups
        ));
    }

    #[test]
    fn pods_does_not_cover_pods_log() {
        let pods = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(rule_allows(&request("get", "", "pods", "", "web"), &pods));
        assert!(!rule_allows(
            &request("get", "", "pods", "log", "web"),
            &pods
        ));
        let log = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}));
        assert!(rule_allows(&request("get", "", "pods", "log", "web"), &log));
        assert!(!rule_allows(&request("get", "", "pods", "", "web"), &log));
    }

    #[test]
    fn star_slash_subresource_matches_that_subresource_of_any_resource() {
        let scale = rule(json!({"verbs": ["get"], "apiGroups": ["*"], "resources": ["*/scale"]}));
        assert!(rule_allows(
            &request("get", "apps", "deployments", "scale", "d"),
            &scale
        ));
        assert!(rule_allows(
            &request("get", "", "replicationcontrollers", "scale", "r"),
            &scale
        ));
        assert!(!rule_allows(
            &request("get", "apps", "deployments", "", "d"),
            &scale
        ));
        assert!(!rule_allows(
            &request("get", "apps", "deployments", "status", "d"),
            &scale
        ));
    }

    #[test]
    fn resource_names_restrict_to_named_requests() {
        let named = rule(json!({
            "verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["configmaps"],
            "resourceNames": ["kube-root-ca.crt"]
        }));
        assert!(rule_allows(
            &request("get", "", "configmaps", "", "kube-root-ca.crt"),
            &named
        ));
        assert!(!rule_allows(
            &request("get", "", "configmaps", "", "other"),
            &named
        ));
        // A list without a name fails; a list pinned by `metadata.name=` passes.
        assert!(!rule_allows(
            &request("list", "", "configmaps", "", ""),
            &named
        ));
        assert!(rule_allows(
            &request("list", "", "configmaps", "", "kube-root-ca.crt"),
            &named
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix_star() {
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        assert!(rule_allows(&path_request("get", "/healthz"), &r));
        assert!(!rule_allows(&path_request("get", "/healthz/etcd"), &r));
        assert!(rule_allows(&path_request("get", "/apis/batch/v1"), &r));
        assert!(rule_allows(&path_request("get", "/apis/"), &r));
        assert!(!rule_allows(&path_request("get", "/apis"), &r));
        assert!(!rule_allows(&path_request("post", "/healthz"), &r));
        let any = rule(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
        assert!(rule_allows(&path_request("delete", "/anything"), &any));
        // Resource rules never match a non-resource request.
        let res = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(!rule_allows(&path_request("get", "/healthz"), &res));
    }

    #[test]
    fn compact_string_is_upstreams() {
        let r = rule(json!({"verbs": ["delete"], "apiGroups": [""], "resources": ["pods"]}));
        assert_eq!(
            r.compact_string(),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#
        );
        let n = rule(json!({"verbs": ["get", "list"], "nonResourceURLs": ["/x"]}));
        assert_eq!(
            n.compact_string(),
            r#"{NonResourceURLs:["/x"], Verbs:["get" "list"]}"#
        );
        let named = rule(json!({
            "verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"]
        }));
        assert_eq!(
            named.compact_string(),
            r#"{APIGroups:[""], Resources:["secrets"], ResourceNames:["s"], Verbs:["get"]}"#
        );
    }

    #[test]
    fn malformed_rules_are_rejected_and_round_trip_keeps_the_rest() {
        assert!(PolicyRule::from_json(&json!("x")).is_none());
        assert!(PolicyRule::from_json(&json!({"verbs": "get"})).is_none());
        assert!(PolicyRule::from_json(&json!({"verbs": [1]})).is_none());
        let r = rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": null}));
        assert!(r.resources.is_empty());
        assert_eq!(r.to_json(), json!({"verbs": ["get"], "apiGroups": [""]}));
        let role = json!({"rules": [{"verbs": ["get"]}, 7, {"verbs": [null]}]});
        assert_eq!(PolicyRule::list_from_object(&role).len(), 1);
    }

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(go_quote_list(&["g1", "g2"]), r#"["g1" "g2"]"#);
        assert_eq!(go_quote_list::<&str>(&[]), "[]");
    }
}
