//! What a request is about, derived from method, path and query the way the apiserver's
//! `RequestInfoFactory` does it: the input to authorization and to dispatch.

use http::Method;
use std::collections::HashMap;

/// A parsed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    pub path: String,
    /// The authorization verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or the lower-cased method for non-resource requests.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments from the resource on (`[jobs, sleepy, status]`).
    pub parts: Vec<String>,
}

/// Parses a query string into a map; repeated keys keep every value.
pub fn parse_query(query: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.entry(percent_decode(k))
                .or_default()
                .push(percent_decode(v));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (as a space) in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of a query parameter.
pub fn query_param<'a>(q: &'a HashMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    q.get(key).and_then(|v| v.first()).map(String::as_str)
}

/// `watch=true|1|…`: anything but absent, `false` or `0` turns a list into a watch.
fn is_watch(q: &HashMap<String, Vec<String>>) -> bool {
    match query_param(q, "watch") {
        None => false,
        Some(v) => !(v.is_empty() || v == "false" || v == "0"),
    }
}

/// The two sub-paths of a namespace that are subresources of the namespace itself.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    pub fn parse(method: &Method, path: &str, query: &HashMap<String, Vec<String>>) -> RequestInfo {
        let non_resource = || RequestInfo {
            is_resource_request: false,
            path: path.to_string(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Default::default()
        };
        let trimmed = path.trim_matches('/');
        let mut parts: Vec<String> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').map(str::to_string).collect()
        };
        if parts.len() < 3 {
            return non_resource();
        }
        let mut info = RequestInfo {
            is_resource_request: true,
            path: path.to_string(),
            ..Default::default()
        };
        match parts[0].as_str() {
            "api" => {
                info.api_prefix = "api".into();
                info.api_version = parts[1].clone();
                parts.drain(..2);
            }
            "apis" => {
                if parts.len() < 3 {
                    return non_resource();
                }
                info.api_prefix = "apis".into();
                info.api_group = parts[1].clone();
                info.api_version = parts[2].clone();
                parts.drain(..3);
            }
            _ => return non_resource(),
        }
        if parts.is_empty() {
            // `/apis/batch/v1` is discovery, a non-resource request.
            return non_resource();
        }
        let mut verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        // The deprecated `/watch/` and `/proxy/` prefixes force their verb.
        if parts[0] == "watch" || parts[0] == "proxy" {
            if parts[0] == "watch" {
                verb = "watch".into();
            } else {
                verb = "proxy".into();
            }
            parts.remove(0);
            if parts.is_empty() {
                return non_resource();
            }
        }
        if parts[0] == "namespaces" && parts.len() > 1 {
            info.namespace = parts[1].clone();
            if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2].as_str()) {
                parts.drain(..2);
            }
        }
        if let Some(r) = parts.first() {
            info.resource = r.clone();
        }
        if let Some(n) = parts.get(1) {
            info.name = n.clone();
        }
        if let Some(s) = parts.get(2) {
            info.subresource = s.clone();
        }
        // A GET/DELETE without a name works on the collection.
        if info.name.is_empty() {
            if verb == "get" {
                verb = if is_watch(query) {
                    "watch".into()
                } else {
                    "list".into()
                };
            } else if verb == "delete" {
                verb = "deletecollection".into();
            }
        }
        // A list/watch pinned to one name by field selector is authorized as that name.
        if (verb == "list" || verb == "watch")
            && let Some(fs) = query_param(query, "fieldSelector")
        {
            for term in fs.split(',') {
                let pinned = term
                    .strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="));
                if let Some(n) = pinned {
                    info.name = n.to_string();
                }
            }
        }
        info.verb = verb;
        info.parts = parts;
        info
    }

    /// `resource` or `resource/subresource`, as RBAC and Forbidden messages name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, url: &str) -> RequestInfo {
        let (path, query) = url
            .split_once('?')
            .map_or((url, None), |(p, q)| (p, Some(q)));
        RequestInfo::parse(&method, path, &parse_query(query))
    }

    #[test]
    fn namespaced_get_names_the_object() {
        let i = parse(Method::GET, "/apis/batch/v1/namespaces/default/jobs/sleepy");
        assert!(i.is_resource_request);
        assert_eq!(
            (i.verb.as_str(), i.api_group.as_str(), i.namespace.as_str()),
            ("get", "batch", "default")
        );
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.subresource.as_str()),
            ("jobs", "sleepy", "")
        );
    }

    #[test]
    fn collection_get_is_list_or_watch() {
        assert_eq!(
            parse(Method::GET, "/api/v1/namespaces/default/pods").verb,
            "list"
        );
        assert_eq!(parse(Method::GET, "/api/v1/pods?watch=true").verb, "watch");
        assert_eq!(parse(Method::GET, "/api/v1/pods?watch=1").verb, "watch");
        assert_eq!(parse(Method::GET, "/api/v1/pods?watch=false").verb, "list");
        assert_eq!(
            parse(Method::GET, "/api/v1/watch/namespaces/default/pods").verb,
            "watch"
        );
        assert_eq!(
            parse(Method::DELETE, "/api/v1/namespaces/default/pods").verb,
            "deletecollection"
        );
    }

    #[test]
    fn namespace_object_and_its_subresources() {
        let i = parse(Method::GET, "/api/v1/namespaces/foo");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.namespace.as_str()),
            ("namespaces", "foo", "foo")
        );
        let i = parse(Method::PUT, "/api/v1/namespaces/foo/finalize");
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.subresource.as_str()),
            ("namespaces", "foo", "finalize")
        );
        let i = parse(Method::GET, "/api/v1/namespaces");
        assert_eq!(
            (i.resource.as_str(), i.verb.as_str(), i.namespace.as_str()),
            ("namespaces", "list", "")
        );
    }

    #[test]
    fn subresources_are_split_out() {
        let i = parse(
            Method::PATCH,
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
        );
        assert_eq!(i.combined_resource(), "deployments/scale");
        assert_eq!(i.verb, "patch");
    }

    #[test]
    fn metadata_name_field_selector_pins_the_name() {
        let i = parse(
            Method::GET,
            "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3Dweb&watch=true",
        );
        assert_eq!((i.verb.as_str(), i.name.as_str()), ("watch", "web"));
    }

    #[test]
    fn short_and_foreign_paths_are_non_resource() {
        for p in [
            "/",
            "/api",
            "/api/v1",
            "/apis/batch/v1",
            "/healthz",
            "/version",
            "/openapi/v3/apis/batch/v1",
        ] {
            let i = parse(Method::GET, p);
            assert!(!i.is_resource_request, "{p}");
            assert_eq!(i.verb, "get");
        }
    }

    #[test]
    fn percent_decoding_handles_escapes_and_plus() {
        assert_eq!(percent_decode("a%3Db+c"), "a=b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
