//! Generates `OUT_DIR/schema.rs`: the wire layout (tag → field name and type) of every
//! Kubernetes protobuf message, read from the prost-generated sources of the `k8s-pb` crate,
//! and the (apiVersion, kind) → message table that the `runtime.Unknown` envelope is
//! resolved with.
//!
//! The sources are parsed line by line: prost-build's output is regular enough
//! (`#[prost(string, optional, tag = "1")]` followed by `pub name: Type,`) that a full
//! Rust parser would only add a build-dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let root = k8s_pb_src_dir();
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    collect_mod_files(&root, &mut files);
    files.sort();

    let mut messages: BTreeMap<String, Vec<Field>> = BTreeMap::new();
    let mut resources = Vec::new();
    for file in &files {
        let rel = file
            .parent()
            .and_then(|dir| dir.strip_prefix(&root).ok())
            .expect("mod.rs below k8s-pb's src/");
        let module: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        parse_module(&module, &text, &mut messages, &mut resources);
    }
    assert!(
        messages.contains_key("io.k8s.api.core.v1.ConfigMap")
            && messages.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
        "k8s-pb sources under {} did not yield the expected messages",
        root.display()
    );

    let kinds = kind_table(&messages, &resources);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    std::fs::write(out.join("schema.rs"), render(&messages, &kinds)).expect("writing schema.rs");
}

/// Finds `k8s-pb`'s `src/` directory: first through `cargo metadata` (exactly the version the
/// lock file resolved), then by searching cargo's registry.
fn k8s_pb_src_dir() -> PathBuf {
    if let Some(dir) = from_cargo_metadata() {
        return dir;
    }
    if let Some(dir) = from_registry() {
        return dir;
    }
    panic!(
        "nanokube-protobuf: cannot find the sources of the k8s-pb crate (neither via `cargo metadata` \
         nor under $CARGO_HOME/registry/src); run `cargo fetch` and retry"
    );
}

fn from_cargo_metadata() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    // `--offline`: the outer cargo has already downloaded every dependency, and the nested
    // cargo must neither touch the network nor wait on the package cache lock for it.
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(&manifest)
        // Only the packages of the platform being built are downloaded; without the filter,
        // an offline `metadata` fails on e.g. Android-only dependencies.
        .args([
            "--filter-platform",
            &std::env::var("TARGET").unwrap_or_default(),
        ])
        // The outer cargo's target dir lock is not taken by `metadata`, but keep the nested
        // invocation from inheriting settings meant for the outer build.
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .ok()?;
    if !output.status.success() {
        println!(
            "cargo:warning=cargo metadata failed ({}); searching the cargo registry for k8s-pb",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .next()
                .unwrap_or_default()
        );
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    // Rather than a JSON build-dependency: scan the packages' `manifest_path`s for the one of
    // k8s-pb (registry sources unpack to `k8s-pb-<version>/`).
    let key = "\"manifest_path\":\"";
    text.match_indices(key)
        .filter_map(|(at, _)| {
            let value = &text[at + key.len()..];
            let end = value.find('"')?;
            Some(PathBuf::from(value[..end].replace("\\\\", "\\")))
        })
        .filter_map(|manifest| manifest.parent().map(Path::to_path_buf))
        .find(|dir| {
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("k8s-pb-"))
        })
        .map(|dir| dir.join("src"))
        .filter(|src| src.join("lib.rs").is_file())
}

fn from_registry() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut found: Vec<PathBuf> = Vec::new();
    for index in std::fs::read_dir(cargo_home.join("registry").join("src")).ok()? {
        let Ok(index) = index else { continue };
        let Ok(entries) = std::fs::read_dir(index.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("k8s-pb-0.9.") && entry.path().join("src/lib.rs").is_file() {
                found.push(entry.path().join("src"));
            }
        }
    }
    // The newest 0.9.x patch release.
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .and_then(|n| n.rsplit('.').next().and_then(|v| v.parse::<u32>().ok()))
            .unwrap_or(0)
    });
    found.pop()
}

fn collect_mod_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_mod_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "mod.rs") {
            out.push(path);
        }
    }
}

struct Field {
    tag: u32,
    rust_name: String,
    /// `Str`, `Bytes`, `Int32`, `Int64`, `Bool`, `Double` or `Message`.
    kind: &'static str,
    /// Full upstream name for message-typed fields and map values.
    message: Option<String>,
    /// `Single`, `Repeated` or `Map`.
    label: &'static str,
}

struct ResourceImpl {
    module: Vec<String>,
    api_version: String,
    group: String,
    kind: String,
}

/// `api/core/v1` → `io.k8s.api.core.v1`; the top-level directories that prost turned into
/// snake case get their upstream (Go module) spelling back.
fn package_of(module: &[String]) -> String {
    let mut parts = vec!["io".to_owned(), "k8s".to_owned()];
    for (i, segment) in module.iter().enumerate() {
        let segment = segment.strip_prefix("r#").unwrap_or(segment);
        if i == 0 {
            parts.push(segment.replace('_', "-"));
        } else {
            parts.push(segment.to_owned());
        }
    }
    parts.join(".")
}

/// prost upper-camel-cases message names (`AWSElasticBlockStoreVolumeSource` →
/// `AwsElasticBlockStoreVolumeSource`); the OpenAPI definitions and kinds keep the Go
/// spelling, which is restored here for the initialisms Kubernetes type names use.
fn upstream_type_name(prost_name: &str) -> String {
    const INITIALISMS: &[&str] = &[
        "Api", "Aws", "Cel", "Cidr", "Csi", "Dns", "Fc", "Fs", "Gce", "Grpc", "Hpa", "Http", "Io",
        "Ip", "Iscsi", "Os", "Tls", "Json", "Nfs", "Rbd", "Tcp", "Uid", "Url",
    ];
    let mut words: Vec<String> = Vec::new();
    for ch in prost_name.chars() {
        if ch.is_ascii_uppercase() || words.is_empty() {
            words.push(String::new());
        }
        if let Some(last) = words.last_mut() {
            last.push(ch);
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "Se" && words.get(i + 1).is_some_and(|w| w == "Linux") {
            out.push_str("SELinux");
            i += 2;
            continue;
        }
        if INITIALISMS.contains(&word.as_str()) {
            out.push_str(&word.to_ascii_uppercase());
        } else {
            out.push_str(word);
        }
        i += 1;
    }
    out
}

fn parse_module(
    module: &[String],
    text: &str,
    messages: &mut BTreeMap<String, Vec<Field>>,
    resources: &mut Vec<ResourceImpl>,
) {
    let package = package_of(module);
    let mut lines = text.lines().peekable();
    let mut saw_message_derive = false;
    let mut current: Option<(String, Vec<Field>)> = None;
    let mut pending_attr: Option<String> = None;
    let mut resource: Option<BTreeMap<&'static str, String>> = None;

    while let Some(raw_line) = lines.next() {
        let line = raw_line.trim();
        if line.starts_with("///") || line.starts_with("//") {
            continue;
        }
        if let Some(consts) = resource.as_mut() {
            for key in ["API_VERSION", "GROUP", "KIND"] {
                let prefix = format!("const {key}: &'static str = \"");
                if let Some(rest) = line.strip_prefix(&prefix) {
                    consts.insert(key, rest.trim_end_matches("\";").to_owned());
                }
            }
            if raw_line == "}"
                && let Some(mut consts) = resource.take()
                && let (Some(api_version), Some(group), Some(kind)) = (
                    consts.remove("API_VERSION"),
                    consts.remove("GROUP"),
                    consts.remove("KIND"),
                )
            {
                resources.push(ResourceImpl {
                    module: module.to_vec(),
                    api_version,
                    group,
                    kind,
                });
            }
            continue;
        }
        if line.starts_with("impl crate::Resource for ") {
            resource = Some(BTreeMap::new());
            continue;
        }
        if line.starts_with("#[derive(") {
            saw_message_derive = line.contains("::prost::Message");
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub struct ") {
            if saw_message_derive && raw_line.starts_with("pub struct ") {
                let empty = rest.ends_with(" {}");
                let name = rest
                    .trim_end_matches(" {}")
                    .trim_end_matches(" {")
                    .trim()
                    .to_owned();
                assert!(
                    !name.contains(' ') && !name.contains(';'),
                    "unexpected struct line in {}: {raw_line}",
                    module.join("/")
                );
                if empty {
                    messages.insert(
                        format!("{package}.{}", upstream_type_name(&name)),
                        Vec::new(),
                    );
                } else {
                    current = Some((name, Vec::new()));
                }
            }
            saw_message_derive = false;
            continue;
        }
        let Some((_, fields)) = current.as_mut() else {
            continue;
        };
        if raw_line == "}" {
            if let Some((name, fields)) = current.take() {
                messages.insert(format!("{package}.{}", upstream_type_name(&name)), fields);
            }
            continue;
        }
        if let Some(attr) = line.strip_prefix("#[prost(") {
            pending_attr = Some(attr.trim_end_matches(")]").to_owned());
            continue;
        }
        if let Some(decl) = line.strip_prefix("pub ") {
            let attr = pending_attr.take().unwrap_or_else(|| {
                panic!("field without #[prost] in {}: {raw_line}", module.join("/"))
            });
            // The field's type may wrap over several lines; gather until the closing `,`.
            let mut decl = decl.to_owned();
            let balanced = |d: &str| d.matches('<').count() == d.matches('>').count();
            while !(decl.ends_with(',') && balanced(&decl)) {
                let next = lines
                    .next()
                    .unwrap_or_else(|| panic!("unterminated field in {}", module.join("/")));
                decl.push_str(next.trim());
            }
            let (rust_name, ty) = decl
                .split_once(':')
                .unwrap_or_else(|| panic!("field without type in {}: {decl}", module.join("/")));
            fields.push(parse_field(module, &attr, rust_name.trim(), ty.trim()));
        }
    }
}

fn parse_field(module: &[String], attr: &str, rust_name: &str, ty: &str) -> Field {
    let parts: Vec<&str> = attr.split(", ").map(str::trim).collect();
    let tag = parts
        .iter()
        .find_map(|p| p.strip_prefix("tag = \""))
        .and_then(|t| t.trim_end_matches('"').parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no tag in #[prost({attr})]"));
    let scalar = |word: &str| -> Option<&'static str> {
        Some(match word {
            "string" => "Str",
            "bytes = \"vec\"" | "bytes" => "Bytes",
            "int32" => "Int32",
            "int64" => "Int64",
            "bool" => "Bool",
            "double" => "Double",
            "message" => "Message",
            _ => return None,
        })
    };
    let message_type = || Some(resolve_type(module, ty));
    if let Some(map) = attr
        .strip_prefix("btree_map = \"")
        .or_else(|| attr.strip_prefix("map = \""))
    {
        let value = map
            .split('"')
            .next()
            .and_then(|kv| kv.split_once(", "))
            .map(|(k, v)| {
                assert_eq!(
                    k, "string",
                    "only string map keys are used by Kubernetes: {attr}"
                );
                v
            })
            .unwrap_or_else(|| panic!("cannot parse map attribute #[prost({attr})]"));
        let kind =
            scalar(value).unwrap_or_else(|| panic!("unsupported map value in #[prost({attr})]"));
        return Field {
            tag,
            rust_name: rust_name.to_owned(),
            kind,
            message: if kind == "Message" {
                message_type()
            } else {
                None
            },
            label: "Map",
        };
    }
    let kind =
        scalar(parts[0]).unwrap_or_else(|| panic!("unsupported field type in #[prost({attr})]"));
    let label = if parts.contains(&"repeated") {
        "Repeated"
    } else {
        "Single"
    };
    Field {
        tag,
        rust_name: rust_name.to_owned(),
        kind,
        message: if kind == "Message" {
            message_type()
        } else {
            None
        },
        label,
    }
}

/// Resolves the innermost type of a field (`Option<Box<X>>`, `Vec<X>`,
/// `BTreeMap<String, X>`) against the module it is declared in.
fn resolve_type(module: &[String], ty: &str) -> String {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let ty = ty.trim_end_matches([',', '>']);
    let inner = ty.rsplit('<').next().unwrap_or(ty);
    let inner = inner.rsplit(',').next().unwrap_or(inner);
    let mut segments: Vec<&str> = inner.split("::").collect();
    let name = segments.pop().unwrap_or_else(|| panic!("empty type {ty}"));
    let mut base: Vec<String> = module.to_vec();
    let mut rest = segments.as_slice();
    if rest.first() == Some(&"crate") {
        base.clear();
        rest = &rest[1..];
    }
    while rest.first() == Some(&"super") {
        base.pop();
        rest = &rest[1..];
    }
    base.extend(rest.iter().map(|s| (*s).to_owned()));
    format!("{}.{}", package_of(&base), upstream_type_name(name))
}

/// (apiVersion, kind) → message. Every message of a versioned API package is listed under
/// that package's group/version (subresource kinds such as `TokenRequest`, `Eviction` or
/// `Scale` have no `Resource` impl in k8s-pb), with the group taken from any `Resource` impl
/// in a sibling version of the same API directory.
fn kind_table(
    messages: &BTreeMap<String, Vec<Field>>,
    resources: &[ResourceImpl],
) -> BTreeMap<(String, String), String> {
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for r in resources {
        if let Some(dir) = group_dir(&r.module) {
            groups.insert(dir, r.group.clone());
        }
    }
    // API directories whose types never have a `Resource` impl (review and metrics APIs).
    for (dir, group) in [
        ("io.k8s.api.admission", "admission.k8s.io"),
        ("io.k8s.api.imagepolicy", "imagepolicy.k8s.io"),
        ("io.k8s.metrics.pkg.apis.metrics", "metrics.k8s.io"),
        (
            "io.k8s.metrics.pkg.apis.custom_metrics",
            "custom.metrics.k8s.io",
        ),
        (
            "io.k8s.metrics.pkg.apis.external_metrics",
            "external.metrics.k8s.io",
        ),
    ] {
        groups
            .entry(dir.to_owned())
            .or_insert_with(|| group.to_owned());
    }
    let mut table = BTreeMap::new();
    let packages: BTreeSet<(String, Vec<String>)> = messages
        .keys()
        .filter_map(|full| full.rsplit_once('.').map(|(pkg, _)| pkg.to_owned()))
        .map(|pkg| {
            let module = pkg
                .split('.')
                .skip(2)
                .map(str::to_owned)
                .collect::<Vec<_>>();
            (pkg, module)
        })
        .collect();
    for (pkg, module) in &packages {
        let Some(dir) = group_dir(module) else {
            continue;
        };
        let Some(group) = groups.get(&dir) else {
            continue;
        };
        let Some(version) = module.last() else {
            continue;
        };
        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        for full in messages.keys() {
            if let Some(kind) = full
                .strip_prefix(pkg.as_str())
                .and_then(|k| k.strip_prefix('.'))
                && !kind.contains('.')
            {
                table.insert((api_version.clone(), kind.to_owned()), full.clone());
            }
        }
    }
    // The Resource impls spell the kinds exactly as the API does; they win.
    for r in resources {
        let pkg = package_of(&r.module);
        let wanted = format!("{pkg}.{}", r.kind);
        if let Some(full) = messages.keys().find(|k| k.eq_ignore_ascii_case(&wanted)) {
            table.insert((r.api_version.clone(), r.kind.clone()), full.clone());
        }
    }
    table
}

/// The API package a versioned module belongs to (`api/batch/v1` → `io.k8s.api.batch`), if
/// the module is a versioned API package.
fn group_dir(module: &[String]) -> Option<String> {
    let (version, dir) = module.split_last()?;
    let is_version =
        version.starts_with('v') && version[1..].starts_with(|c: char| c.is_ascii_digit());
    (is_version && !dir.is_empty() && !module.iter().any(|s| s == "meta")).then(|| package_of(dir))
}

fn render(
    messages: &BTreeMap<String, Vec<Field>>,
    kinds: &BTreeMap<(String, String), String>,
) -> String {
    let mut out = String::new();
    out.push_str("// @generated by nanokube-protobuf's build.rs from the k8s-pb sources.\n\n");
    out.push_str("/// Every message, sorted by full name (binary-searched).\n");
    out.push_str("pub(crate) static MESSAGES: &[MessageDef] = &[\n");
    for (name, fields) in messages {
        let mut fields: Vec<&Field> = fields.iter().collect();
        fields.sort_by_key(|f| f.tag);
        let _ = writeln!(out, "    MessageDef {{ name: {name:?}, fields: &[");
        for f in fields {
            let ty = match &f.message {
                Some(m) => format!("FieldType::Message({m:?})"),
                None => format!("FieldType::{}", f.kind),
            };
            let rust_name = f.rust_name.strip_prefix("r#").unwrap_or(&f.rust_name);
            let _ = writeln!(
                out,
                "        FieldDef {{ tag: {}, rust_name: {rust_name:?}, ty: {ty}, label: Label::{} }},",
                f.tag, f.label
            );
        }
        out.push_str("    ] },\n");
    }
    out.push_str("];\n\n");
    out.push_str("/// (apiVersion, kind) → message name, sorted (binary-searched).\n");
    out.push_str("pub(crate) static KINDS: &[(&str, &str, &str)] = &[\n");
    for ((api_version, kind), message) in kinds {
        let _ = writeln!(out, "    ({api_version:?}, {kind:?}, {message:?}),");
    }
    out.push_str("];\n");
    out
}
