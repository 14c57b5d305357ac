//! Image references (`busybox`, `ghcr.io/org/app:1.2`, `name@sha256:…`) parsed and normalised
//! the way Docker and containerd do (the `distribution/reference` grammar, "normalized named"
//! form), so that a pod's `image: busybox` finds what `docker save busybox` put in the store.

use super::ImageError;

/// The registry a reference without one names.
const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's old API host, which names the same registry.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`busybox` is `library/busybox`).
const OFFICIAL_REPOSITORY_NAMESPACE: &str = "library";
/// The tag a reference without tag or digest means.
const DEFAULT_TAG: &str = "latest";
/// The longest repository name (domain and path) the grammar allows.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest tag the grammar allows.
const TAG_LENGTH_MAX: usize = 128;

/// A parsed, fully qualified image reference: `domain/path[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `reference` and fills in the defaults Docker assumes (`docker.io`, `library/`),
    /// but not the default tag.
    pub fn parse_normalized(reference: &str) -> Result<Reference, ImageError> {
        let invalid = |reason: &'static str| ImageError::InvalidReference {
            reference: reference.to_string(),
            reason,
        };
        if reference.is_empty() {
            return Err(invalid(""));
        }
        if is_identifier(reference) {
            return Err(invalid("cannot specify 64-byte hexadecimal strings"));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(invalid)?;
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &rest[at + 1..];
                if !is_tag(tag) {
                    return Err(invalid(""));
                }
                (&rest[..at], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (domain, path) = split_domain(name);
        if !is_domain(&domain) {
            return Err(invalid(""));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        if path.is_empty() || !path.split('/').all(is_path_component) {
            return Err(invalid(""));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The repository: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same reference with the default tag when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalises an image reference as Docker and containerd do: `busybox` →
/// `docker.io/library/busybox:latest`, `foo/bar:1` → `docker.io/foo/bar:1`,
/// `registry.local:5000/x` → `registry.local:5000/x:latest`; a digest reference keeps its digest
/// and gets no default tag.
pub fn normalize_reference(reference: &str) -> Result<String, ImageError> {
    Ok(Reference::parse_normalized(reference)?
        .with_default_tag()
        .to_string())
}

/// Splits the registry host off a name; a first component is a registry only when it looks
/// like a host (has `.` or `:`, is `localhost`, or has upper-case letters), as Docker decides.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{OFFICIAL_REPOSITORY_NAMESPACE}/{path}")
    } else {
        path
    };
    (domain, path)
}

/// An image id written without its algorithm (64 lower-case hex digits).
pub(crate) fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    tag.len() <= TAG_LENGTH_MAX
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[sep_start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// A registry host: DNS labels separated by dots or a bracketed IPv6 address, then an optional
/// `:port`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(port) => ("ipv6", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a content digest (`sha256:<64 hex>`); the message is the reason it is not one.
pub(crate) fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err("invalid digest format");
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != length || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("invalid checksum digest length or format");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6f8c2b8e8e0c3a5e5a9b1f3e9c2d4b7a1e6f0d8c3b2a1f9e8d7c6b5a4f3e2d1c";

    #[test]
    fn short_names_get_docker_hub_library_and_latest() {
        assert_eq!(
            normalize_reference("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize_reference("busybox:1.36").unwrap(),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            normalize_reference("library/busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn user_repositories_stay_outside_library() {
        assert_eq!(
            normalize_reference("foo/bar:1").unwrap(),
            "docker.io/foo/bar:1"
        );
        assert_eq!(
            normalize_reference("foo/bar/baz").unwrap(),
            "docker.io/foo/bar/baz:latest"
        );
    }

    #[test]
    fn registries_are_recognised_by_dot_colon_or_localhost() {
        assert_eq!(
            normalize_reference("registry.local:5000/x").unwrap(),
            "registry.local:5000/x:latest"
        );
        assert_eq!(
            normalize_reference("ghcr.io/org/app:v1.2.3").unwrap(),
            "ghcr.io/org/app:v1.2.3"
        );
        assert_eq!(
            normalize_reference("localhost/app").unwrap(),
            "localhost/app:latest"
        );
        assert_eq!(
            normalize_reference("localhost:5000/app").unwrap(),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            normalize_reference("[::1]:5000/app").unwrap(),
            "[::1]:5000/app:latest"
        );
    }

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        assert_eq!(
            normalize_reference("docker.io/busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize_reference("index.docker.io/library/busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
    }

    #[test]
    fn digest_references_keep_the_digest_and_get_no_default_tag() {
        assert_eq!(
            normalize_reference(&format!("busybox@{DIGEST}")).unwrap(),
            format!("docker.io/library/busybox@{DIGEST}")
        );
        assert_eq!(
            normalize_reference(&format!("busybox:1.36@{DIGEST}")).unwrap(),
            format!("docker.io/library/busybox:1.36@{DIGEST}")
        );
    }

    #[test]
    fn malformed_references_are_rejected_with_docker_reasons() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "-busybox",
            "busy//box",
            "busybox@sha256:1234",
            "busybox@md5:0123456789abcdef0123456789abcdef",
            "a b",
            "registry.local:port/x",
            "6f8c2b8e8e0c3a5e5a9b1f3e9c2d4b7a1e6f0d8c3b2a1f9e8d7c6b5a4f3e2d1c",
        ] {
            assert!(
                normalize_reference(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let err = normalize_reference("Busybox").unwrap_err().to_string();
        assert_eq!(
            err,
            "couldn't parse image name \"Busybox\": invalid reference format: repository name must be lowercase"
        );
        let err = normalize_reference("a b").unwrap_err().to_string();
        assert_eq!(
            err,
            "couldn't parse image name \"a b\": invalid reference format"
        );
    }

    #[test]
    fn an_upper_case_first_component_is_a_registry_host() {
        // Docker's rule: `Foo/bar` cannot be a Docker Hub user, so `Foo` is taken as a host.
        assert_eq!(normalize_reference("Foo/bar").unwrap(), "Foo/bar:latest");
    }

    #[test]
    fn repository_and_tag_are_split_for_listing() {
        let r = Reference::parse_normalized("registry.local:5000/team/app:2").unwrap();
        assert_eq!(r.repository(), "registry.local:5000/team/app");
        assert_eq!(r.tag.as_deref(), Some("2"));
    }
}
