//! Reading image archives: what `docker save` writes (a `manifest.json` naming each image's
//! config, tags and layer files) and OCI image layouts (`oci-layout`, `index.json`, and
//! content-addressed blobs under `blobs/sha256/`), as a tar file, optionally gzip-compressed
//! as a whole, or as an unpacked directory.
//!
//! The archive is first extracted into a private scratch directory (its files are needed in
//! an order the tar does not follow: `manifest.json` may come last), then read into
//! [`ArchiveImage`]s: a config blob, ordered layer files, and the names to tag them with.
//! Every blob whose digest the format states is verified before it is used.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ImageError;
use super::digest::{Compression, HashingReader, sha256_digest};
use super::layer::clean_path;
use super::reference::{Reference, validate_digest};

/// The annotation containerd (and Docker ≥ 25) put the full image name in.
const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for an image's reference, often only its tag.
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// BuildKit marks the provenance/SBOM manifests it adds to an index with this annotation.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// How deep an index may nest other indexes.
const MAX_INDEX_DEPTH: usize = 4;
/// Link chains inside an archive longer than this are refused.
const MAX_ARCHIVE_LINKS: usize = 16;

/// The two archive formats an import understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save`: `manifest.json` with `Config`, `RepoTags` and `Layers`.
    DockerSave,
    /// An OCI image layout: `oci-layout`, `index.json` and `blobs/`.
    OciLayout,
}

/// One image found in an archive, ready to be unpacked.
#[derive(Debug)]
pub(crate) struct ArchiveImage {
    /// Normalised tag references (`docker.io/library/busybox:latest`).
    pub names: Vec<String>,
    /// The digest of the image manifest, when the format has one (OCI).
    pub manifest_digest: Option<String>,
    /// The image config blob, byte for byte; its digest is the image id.
    pub config: Vec<u8>,
    /// `sha256:<hex>` of the config.
    pub id: String,
    /// The layers, lowest first.
    pub layers: Vec<LayerSource>,
}

/// Where one layer blob is and what its digests must be.
#[derive(Debug)]
pub(crate) struct LayerSource {
    pub path: PathBuf,
    /// The digest of the blob as stored (compressed or not), when the format states it.
    pub blob_digest: Option<String>,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<String>,
    pub size: u64,
}

impl LayerSource {
    /// The digest a person would recognise the layer by.
    pub fn display_digest(&self) -> String {
        self.blob_digest
            .clone()
            .or_else(|| self.diff_id.clone())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// An archive's files on disk, plus the links it contained (kept as a table rather than
/// created, so that nothing in the scratch directory can point elsewhere).
pub(crate) struct Extracted {
    root: PathBuf,
    links: HashMap<PathBuf, PathBuf>,
}

/// Extracts the archive at `archive` into `scratch` (a directory that exists and is empty).
/// A directory is taken as already extracted.
pub(crate) fn extract(archive: &Path, scratch: &Path) -> Result<Extracted, ImageError> {
    let meta = fs::metadata(archive).map_err(|e| io_error(archive, e))?;
    if meta.is_dir() {
        return Ok(Extracted {
            root: archive.to_path_buf(),
            links: HashMap::new(),
        });
    }
    let file = File::open(archive).map_err(|e| io_error(archive, e))?;
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| io_error(archive, e))?;
    if head.is_empty() {
        return Err(ImageError::NotAnImageArchive(
            "the file is empty".to_string(),
        ));
    }
    match Compression::detect(head) {
        Compression::None => extract_tar(reader, scratch),
        Compression::Gzip => extract_tar(flate2::read::MultiGzDecoder::new(reader), scratch),
        other => Err(ImageError::NotAnImageArchive(format!(
            "it is {}-compressed; decompress it first (only gzip is read directly)",
            other.name()
        ))),
    }
}

fn extract_tar<R: Read>(reader: R, scratch: &Path) -> Result<Extracted, ImageError> {
    let mut archive = tar::Archive::new(reader);
    let mut links = HashMap::new();
    let mut entries_seen = 0usize;
    let entries = archive.entries().map_err(|e| not_tar(0, &e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_tar(entries_seen, &e))?;
        entries_seen += 1;
        let not_tar = |e: io::Error| not_tar(entries_seen, &e);
        let raw = entry.path().map_err(not_tar)?.into_owned();
        let rel: PathBuf = clean_path(&raw)?.into_iter().collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let path = scratch.join(&rel);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
                }
                let mut out = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io_error(&path, e))?;
                io::copy(&mut entry, &mut out).map_err(|e| ImageError::Archive {
                    what: raw.display().to_string(),
                    error: e,
                })?;
            }
            tar::EntryType::Directory => {
                let path = scratch.join(&rel);
                fs::create_dir_all(&path).map_err(|e| io_error(&path, e))?;
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let Some(target) = entry.link_name().map_err(not_tar)? else {
                    continue;
                };
                // Symbolic links are relative to their directory, hard links to the root.
                let base = if kind == tar::EntryType::Symlink && !target.is_absolute() {
                    rel.parent().map(Path::to_path_buf).unwrap_or_default()
                } else {
                    PathBuf::new()
                };
                if let Some(target) = join_lexically(&base, &target) {
                    links.insert(rel, target);
                }
            }
            _ => {}
        }
    }
    if entries_seen == 0 {
        return Err(ImageError::NotAnImageArchive(
            "it is an empty tar archive".to_string(),
        ));
    }
    Ok(Extracted {
        root: scratch.to_path_buf(),
        links,
    })
}

/// Why an archive could not be read as tar: garbage fails on the first header (the tar
/// reader's message then quotes the garbage, so it is left out), a truncated archive later.
fn not_tar(entries_read: usize, error: &io::Error) -> ImageError {
    if entries_read == 0 {
        return ImageError::NotAnImageArchive(
            "it is neither a tar archive nor a gzip-compressed one".to_string(),
        );
    }
    let message: String = error
        .to_string()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    ImageError::NotAnImageArchive(format!(
        "reading it as a tar archive failed after {entries_read} entries: {message}"
    ))
}

/// `base/target` with `.` and `..` resolved by name; `None` when it climbs above the root.
fn join_lexically(base: &Path, target: &Path) -> Option<PathBuf> {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for c in base.components().chain(target.components()) {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop()?;
            }
            _ => {}
        }
    }
    Some(out.into_iter().collect())
}

impl Extracted {
    /// The file the archive calls `name`, following the archive's own links.
    fn path(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut rel: PathBuf = clean_path(Path::new(name))?.into_iter().collect();
        for _ in 0..MAX_ARCHIVE_LINKS {
            match self.links.get(&rel) {
                Some(target) => rel = target.clone(),
                None => return Ok(self.root.join(rel)),
            }
        }
        Err(ImageError::Malformed(format!(
            "{name}: too many levels of links"
        )))
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).is_ok_and(|p| p.is_file())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.path(name)?;
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => {
                ImageError::Malformed(format!("{name} is missing from the archive"))
            }
            _ => io_error(&path, e),
        })
    }

    /// Reads a small blob (manifest, index, config) and checks it against `digest`.
    fn read_verified(&self, name: &str, digest: &str, what: &str) -> Result<Vec<u8>, ImageError> {
        let bytes = self.read(name)?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn size(&self, name: &str) -> Result<(PathBuf, u64), ImageError> {
        let path = self.path(name)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok((path, m.len())),
            Ok(_) => Err(ImageError::Malformed(format!("{name} is not a file"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ImageError::Malformed(format!(
                "{name} is missing from the archive"
            ))),
            Err(e) => Err(io_error(&path, e)),
        }
    }
}

/// Finds the images in an extracted archive. `name_override` (the CLI's `--name`) names an
/// archive that holds one image: a full reference is used as is, a bare repository gets the
/// archive's own tag (or `latest`).
pub(crate) fn read_images(
    archive: &Extracted,
    name_override: Option<&str>,
) -> Result<(ArchiveFormat, Vec<ArchiveImage>), ImageError> {
    // Docker ≥ 25 writes both files, describing the same images; `manifest.json` always
    // carries the tags, so it is preferred.
    if archive.exists("manifest.json") {
        let images = read_docker(archive, name_override)?;
        return Ok((ArchiveFormat::DockerSave, images));
    }
    if archive.exists("index.json") {
        let images = read_oci(archive, name_override)?;
        return Ok((ArchiveFormat::OciLayout, images));
    }
    Err(ImageError::NotAnImageArchive(
        "it has neither a manifest.json (docker save) nor an index.json (OCI image layout)"
            .to_string(),
    ))
}

/// What the archive itself calls an image.
#[derive(Clone, Debug)]
enum ArchiveName {
    /// A reference with a repository (`busybox:latest`, `docker.io/library/busybox:1`).
    Full(String),
    /// Only a tag (an OCI `ref.name` of `latest`).
    TagOnly(String),
}

/// Turns the archive's names (and the override) into normalised tag references.
fn final_names(
    names: &[ArchiveName],
    name_override: Option<&str>,
) -> Result<Vec<String>, ImageError> {
    let tag_reference = |r: Reference| -> Result<String, ImageError> {
        if r.digest.is_some() {
            return Err(ImageError::NoName(format!(
                "cannot tag an imported image as {r}: an image name to import needs a tag, not a digest"
            )));
        }
        Ok(r.with_default_tag().to_string())
    };
    let mut out = Vec::new();
    if let Some(name) = name_override {
        let wanted = Reference::parse_normalized(name)?;
        if wanted.tag.is_some() || wanted.digest.is_some() {
            out.push(tag_reference(wanted)?);
        } else {
            for name in names {
                let tag = match name {
                    ArchiveName::TagOnly(tag) => Some(tag.clone()),
                    ArchiveName::Full(full) => {
                        Reference::parse_normalized(full).ok().and_then(|r| r.tag)
                    }
                };
                let mut r = wanted.clone();
                r.tag = tag;
                out.push(tag_reference(r)?);
            }
            if out.is_empty() {
                out.push(tag_reference(wanted)?);
            }
        }
    } else {
        for name in names {
            match name {
                ArchiveName::Full(full) => {
                    out.push(tag_reference(Reference::parse_normalized(full)?)?)
                }
                ArchiveName::TagOnly(tag) => {
                    return Err(ImageError::NoName(format!(
                        "the archive names its image only by the tag {tag:?}, without a repository; \
                         pass the repository with --name (for example --name busybox)"
                    )));
                }
            }
        }
        if out.is_empty() {
            return Err(ImageError::NoName(
                "the archive does not name its image; pass a name with --name (for example --name busybox:latest)"
                    .to_string(),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

// ---- docker save ----

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn read_docker(
    archive: &Extracted,
    name_override: Option<&str>,
) -> Result<Vec<ArchiveImage>, ImageError> {
    let bytes = archive.read("manifest.json")?;
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::Malformed(format!("manifest.json: {e}")))?;
    if entries.is_empty() {
        return Err(ImageError::Malformed(
            "manifest.json lists no images".to_string(),
        ));
    }
    if name_override.is_some() && entries.len() > 1 {
        return Err(ImageError::NoName(format!(
            "--name names one image, but the archive holds {}",
            entries.len()
        )));
    }
    let mut images = Vec::new();
    for entry in entries {
        // `blobs/sha256/<hex>` (Docker ≥ 25) and `<hex>.json` (older) both name the
        // config's digest; check it.
        let config = match digest_in_path(&entry.config) {
            Some(digest) => archive.read_verified(&entry.config, &digest, "the image config")?,
            None => archive.read(&entry.config)?,
        };
        let diff_ids = diff_ids(&config)?;
        if let Some(ids) = &diff_ids
            && ids.len() != entry.layers.len()
        {
            return Err(ImageError::Malformed(format!(
                "the config lists {} layers, manifest.json {}",
                ids.len(),
                entry.layers.len()
            )));
        }
        let mut layers = Vec::new();
        for (i, name) in entry.layers.iter().enumerate() {
            let (path, size) = archive.size(name)?;
            let blob_digest = name
                .strip_prefix("blobs/sha256/")
                .and_then(|_| digest_in_path(name));
            layers.push(LayerSource {
                path,
                blob_digest,
                diff_id: diff_ids.as_ref().and_then(|ids| ids.get(i).cloned()),
                size,
            });
        }
        let names: Vec<ArchiveName> = entry
            .repo_tags
            .unwrap_or_default()
            .into_iter()
            .map(ArchiveName::Full)
            .collect();
        images.push(ArchiveImage {
            names: final_names(&names, name_override)?,
            manifest_digest: None,
            id: sha256_digest(&config),
            config,
            layers,
        });
    }
    Ok(merge_by_id(images))
}

/// The digest a path names: `blobs/sha256/<hex>` or `<hex>.json`.
fn digest_in_path(path: &str) -> Option<String> {
    let file = Path::new(path).file_name()?.to_str()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    let digest = format!("sha256:{hex}");
    validate_digest(&digest).ok().map(|()| digest)
}

/// Several entries (or index descriptors) for one image become one image with all names.
fn merge_by_id(images: Vec<ArchiveImage>) -> Vec<ArchiveImage> {
    let mut out: Vec<ArchiveImage> = Vec::new();
    for image in images {
        match out.iter_mut().find(|i| i.id == image.id) {
            Some(existing) => {
                existing.names.extend(image.names);
                existing.names.sort();
                existing.names.dedup();
                if existing.manifest_digest.is_none() {
                    existing.manifest_digest = image.manifest_digest;
                }
            }
            None => out.push(image),
        }
    }
    out
}

#[derive(Deserialize)]
struct ConfigRootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ConfigForLayers {
    #[serde(default)]
    rootfs: Option<ConfigRootFs>,
}

/// The config's `rootfs.diff_ids`: the digests of the uncompressed layers, in order.
fn diff_ids(config: &[u8]) -> Result<Option<Vec<String>>, ImageError> {
    let parsed: ConfigForLayers = serde_json::from_slice(config)
        .map_err(|e| ImageError::Malformed(format!("the image config: {e}")))?;
    Ok(parsed.rootfs.and_then(|r| r.diff_ids))
}

// ---- OCI image layout ----

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Clone, Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

impl Platform {
    fn describe(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciLayoutFile {
    image_layout_version: String,
}

/// An index or a manifest: which one is told by the fields present, since `mediaType` is
/// optional in both.
#[derive(Deserialize)]
struct IndexOrManifest {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// The GOARCH name of the machine we run on, which is what image platforms use.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn blob_name(digest: &str) -> Result<String, ImageError> {
    validate_digest(digest)
        .map_err(|reason| ImageError::Malformed(format!("bad digest {digest:?}: {reason}")))?;
    Ok(format!("blobs/{}", digest.replacen(':', "/", 1)))
}

fn read_blob(archive: &Extracted, d: &Descriptor, what: &str) -> Result<Vec<u8>, ImageError> {
    if !d.digest.starts_with("sha256:") {
        return Err(ImageError::Malformed(format!(
            "{what} {}: only sha256 digests are supported",
            d.digest
        )));
    }
    let bytes = archive.read_verified(&blob_name(&d.digest)?, &d.digest, what)?;
    if let Some(size) = d.size
        && size != bytes.len() as u64
    {
        return Err(ImageError::Malformed(format!(
            "{what} {} has {} bytes, its descriptor says {size}",
            d.digest,
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn read_oci(
    archive: &Extracted,
    name_override: Option<&str>,
) -> Result<Vec<ArchiveImage>, ImageError> {
    if archive.exists("oci-layout") {
        let layout: OciLayoutFile = serde_json::from_slice(&archive.read("oci-layout")?)
            .map_err(|e| ImageError::Malformed(format!("oci-layout: {e}")))?;
        if !layout.image_layout_version.starts_with("1.") {
            return Err(ImageError::Malformed(format!(
                "unsupported OCI image layout version {:?}",
                layout.image_layout_version
            )));
        }
    }
    let index: IndexOrManifest = serde_json::from_slice(&archive.read("index.json")?)
        .map_err(|e| ImageError::Malformed(format!("index.json: {e}")))?;
    let top = index.manifests.unwrap_or_default();
    if top.is_empty() {
        return Err(ImageError::Malformed(
            "index.json lists no images".to_string(),
        ));
    }
    if name_override.is_some() {
        let distinct: std::collections::BTreeSet<&str> =
            top.iter().map(|d| d.digest.as_str()).collect();
        if distinct.len() > 1 {
            return Err(ImageError::NoName(format!(
                "--name names one image, but the archive holds {}",
                distinct.len()
            )));
        }
    }
    let mut images = Vec::new();
    for descriptor in &top {
        let names: Vec<ArchiveName> = match (
            descriptor.annotations.get(ANNOTATION_CONTAINERD_NAME),
            descriptor.annotations.get(ANNOTATION_REF_NAME),
        ) {
            (Some(full), _) => vec![ArchiveName::Full(full.clone())],
            // `ref.name` is a full reference when it has a repository part, else a tag.
            (None, Some(r)) if r.contains(['/', ':', '@']) => vec![ArchiveName::Full(r.clone())],
            (None, Some(tag)) => vec![ArchiveName::TagOnly(tag.clone())],
            (None, None) => Vec::new(),
        };
        let (manifest_digest, manifest) = resolve_manifest(archive, descriptor, 0)?;
        let config_descriptor = manifest.config.ok_or_else(|| {
            ImageError::Malformed(format!("manifest {manifest_digest} has no config"))
        })?;
        let config = read_blob(archive, &config_descriptor, "the image config")?;
        let layer_descriptors = manifest.layers.unwrap_or_default();
        let diff_ids = diff_ids(&config)?;
        if let Some(ids) = &diff_ids
            && ids.len() != layer_descriptors.len()
        {
            return Err(ImageError::Malformed(format!(
                "the config lists {} layers, manifest {manifest_digest} {}",
                ids.len(),
                layer_descriptors.len()
            )));
        }
        let mut layers = Vec::new();
        for (i, d) in layer_descriptors.iter().enumerate() {
            let (path, size) = archive.size(&blob_name(&d.digest)?)?;
            if let Some(expected) = d.size
                && expected != size
            {
                return Err(ImageError::Malformed(format!(
                    "layer {} has {size} bytes, its descriptor says {expected}",
                    d.digest
                )));
            }
            layers.push(LayerSource {
                path,
                blob_digest: Some(d.digest.clone()),
                diff_id: diff_ids.as_ref().and_then(|ids| ids.get(i).cloned()),
                size,
            });
        }
        images.push(ArchiveImage {
            names: final_names(&names, name_override)?,
            manifest_digest: Some(manifest_digest),
            id: config_descriptor.digest.clone(),
            config,
            layers,
        });
    }
    Ok(merge_by_id(images))
}

/// Follows a descriptor down through indexes (manifest lists) to an image manifest for
/// this machine's platform; returns the manifest's digest and contents.
fn resolve_manifest(
    archive: &Extracted,
    descriptor: &Descriptor,
    depth: usize,
) -> Result<(String, IndexOrManifest), ImageError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(ImageError::Malformed("indexes nest too deeply".to_string()));
    }
    let bytes = read_blob(archive, descriptor, "the manifest")?;
    let parsed: IndexOrManifest = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::Malformed(format!("manifest {}: {e}", descriptor.digest)))?;
    let Some(manifests) = &parsed.manifests else {
        return Ok((descriptor.digest.clone(), parsed));
    };
    let chosen = choose_platform(manifests)?;
    resolve_manifest(archive, chosen, depth + 1)
}

/// Picks the manifest for `linux/<host architecture>` from an index, as a runtime pulling
/// the image would; entries without a platform count only when they are the sole image.
fn choose_platform(manifests: &[Descriptor]) -> Result<&Descriptor, ImageError> {
    let arch = host_architecture();
    let images: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| !d.annotations.contains_key(ANNOTATION_REFERENCE_TYPE))
        .filter(|d| {
            d.platform
                .as_ref()
                .is_none_or(|p| p.os != "unknown" || p.architecture != "unknown")
        })
        .collect();
    if let Some(d) = images.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    }) {
        return Ok(d);
    }
    if let [only] = images.as_slice()
        && only.platform.is_none()
    {
        return Ok(only);
    }
    let available: Vec<String> = images
        .iter()
        .map(|d| {
            d.platform.as_ref().map_or_else(
                || "an image without platform".to_string(),
                Platform::describe,
            )
        })
        .collect();
    Err(ImageError::NoMatchingPlatform {
        wanted: format!("linux/{arch}"),
        available: if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// Unpacks one layer blob onto `rootfs`, checking the blob's digest and the digest of its
/// uncompressed tar against what the archive states.
pub(crate) fn apply_layer_file(layer: &LayerSource, rootfs: &Path) -> Result<(), ImageError> {
    let file = File::open(&layer.path).map_err(|e| io_error(&layer.path, e))?;
    let mut buffered = BufReader::new(file);
    let head = buffered.fill_buf().map_err(|e| io_error(&layer.path, e))?;
    let compression = Compression::detect(head);
    let mut blob = HashingReader::new(buffered);
    let read_error = |e: io::Error| ImageError::Archive {
        what: "the layer".to_string(),
        error: e,
    };
    let diff = match compression {
        Compression::None => None,
        Compression::Gzip => {
            let mut tar = HashingReader::new(flate2::read::MultiGzDecoder::new(&mut blob));
            super::layer::apply_layer(rootfs, &mut tar)?;
            Some(tar.finish().map_err(read_error)?.0)
        }
        other => {
            return Err(ImageError::Malformed(format!(
                "{}-compressed layers are not supported",
                other.name()
            )));
        }
    };
    if compression == Compression::None {
        super::layer::apply_layer(rootfs, &mut blob)?;
    }
    let (blob_digest, _) = blob.finish().map_err(read_error)?;
    let diff = diff.unwrap_or_else(|| blob_digest.clone());
    if let Some(expected) = &layer.blob_digest
        && *expected != blob_digest
    {
        return Err(ImageError::DigestMismatch {
            what: "the layer".to_string(),
            expected: expected.clone(),
            actual: blob_digest,
        });
    }
    if let Some(expected) = &layer.diff_id
        && *expected != diff
    {
        return Err(ImageError::DigestMismatch {
            what: "the uncompressed layer (rootfs.diff_ids)".to_string(),
            expected: expected.clone(),
            actual: diff,
        });
    }
    Ok(())
}

fn io_error(path: &Path, error: io::Error) -> ImageError {
    ImageError::Io {
        path: path.to_path_buf(),
        error,
    }
}
