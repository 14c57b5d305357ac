//! The node's local image store: container images imported from archives (`docker save`
//! output or OCI image layouts) and kept unpacked, ready to be a container's root filesystem.
//!
//! Layout under `<data-dir>/images/`:
//!
//! - `<hex>/rootfs/`: the image's layers applied in order (`<hex>` is the image id without
//!   `sha256:`; the id is the digest of the image config, as Docker and containerd compute it);
//! - `<hex>/config.json`: the image config blob as the archive carried it (Entrypoint, Cmd,
//!   Env, WorkingDir, User, architecture, os, created, …), so `sha256(config.json)` is the id;
//! - `<hex>/image.json`: what the store records about it (its unpacked size, its layers);
//! - `index.json`: normalised tag references → image ids (and `repository@digest` references
//!   for images whose manifest digest is known);
//! - `.lock`: held (`flock`) by an import for its whole run.
//!
//! An import unpacks into a scratch directory and renames the finished image into place, then
//! replaces `index.json` by writing a new file and renaming it over the old one; a running node
//! agent reads the index without locking and never sees half of either. Re-importing an image
//! finds it present and only (re)tags it; an image no tag names any more is removed.

mod archive;
mod copy;
mod digest;
mod layer;
mod reference;
#[cfg(test)]
mod testutil;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub use archive::ArchiveFormat;
pub use copy::copy_rootfs;
pub use reference::normalize_reference;

use reference::{Reference, is_identifier};

const INDEX_FILE: &str = "index.json";
const LOCK_FILE: &str = ".lock";
const CONFIG_FILE: &str = "config.json";
const RECORD_FILE: &str = "image.json";
const ROOTFS_DIR: &str = "rootfs";
/// Scratch directories of imports start with this; any left over belong to an import that
/// died, and the next import (which holds the lock) removes them.
const SCRATCH_PREFIX: &str = ".tmp-";
const INDEX_SCHEMA_VERSION: u32 = 1;

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference does not follow the image-reference grammar; the message is the
    /// kubelet's (`InvalidImageName`).
    #[error(
        "couldn't parse image name {reference:?}: invalid reference format{}",
        reason_suffix(reason)
    )]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("reading {what}: {error}")]
    Archive { what: String, error: io::Error },
    #[error("not an image archive: {0}")]
    NotAnImageArchive(String),
    #[error("malformed image archive: {0}")]
    Malformed(String),
    #[error("{what} is corrupt: its digest is {actual}, the archive says {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A layer entry that would land outside the image's root, or could not be placed.
    #[error("refusing layer entry {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// Applying the layer `index` (1-based) failed.
    #[error("layer {index} ({digest}): {error}")]
    Layer {
        index: usize,
        digest: String,
        error: Box<ImageError>,
    },
    /// The archive does not say what to call its image (or `--name` does not fit it).
    #[error("{0}")]
    NoName(String),
    #[error("the archive has no image for {wanted} (it has {available})")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("the image store at {} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

fn io_error(path: &Path, error: io::Error) -> ImageError {
    ImageError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// An image in the store, found by [`ImageStore::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// `sha256:<hex>`: the digest of the image config (a container status's `imageID`).
    pub id: String,
    /// The normalised reference it was found by (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The unpacked root filesystem. Shared by every container of the image: mount it
    /// read-only (as an overlay's lower layer) or copy it ([`copy_rootfs`]), never write it.
    pub rootfs: PathBuf,
    pub config: ImageConfig,
}

/// The part of an image config that decides how its containers run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `NAME=value` entries, applied before the container's own `env`.
    pub env: Vec<String>,
    /// Empty means `/`.
    pub working_dir: String,
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    pub user: String,
}

/// One line of `nanokube image ls`: a tag and the image it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// `docker.io/library/busybox:latest`.
    pub reference: String,
    /// `docker.io/library/busybox`.
    pub repository: String,
    /// `latest`.
    pub tag: String,
    /// `sha256:<hex>`.
    pub id: String,
    /// Bytes the unpacked image takes (each hard-linked file counted once).
    pub size: u64,
}

/// What an import is doing, for a progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The archive was read: its format and how many images it holds.
    Archive {
        format: ArchiveFormat,
        images: usize,
    },
    /// Layer `index` of `count` (1-based) is being unpacked; `size` is its size in the
    /// archive.
    Layer {
        index: usize,
        count: usize,
        digest: String,
        size: u64,
    },
    /// The image is in the store already; only its tags are updated.
    AlreadyPresent { id: String },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Archive { format, images } => {
                let format = match format {
                    ArchiveFormat::DockerSave => "docker save",
                    ArchiveFormat::OciLayout => "OCI image layout",
                };
                let plural = if *images == 1 { "" } else { "s" };
                write!(f, "Reading {format} archive ({images} image{plural})")
            }
            Progress::Layer {
                index,
                count,
                digest,
                size,
            } => write!(
                f,
                "Loading layer {index}/{count} {} ({})",
                abbreviate_digest(digest, 8),
                binary_size(*size)
            ),
            Progress::AlreadyPresent { id } => write!(
                f,
                "Image {} is already in the store",
                abbreviate_digest(id, 12)
            ),
        }
    }
}

/// `sha256:abcd1234…`.
fn abbreviate_digest(digest: &str, hex_digits: usize) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.len() > hex_digits => {
            format!("{algorithm}:{}…", &hex[..hex_digits])
        }
        _ => digest.to_string(),
    }
}

/// `1.9 MiB`.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// A size as `crictl images` prints it (decimal units, three significant digits): `2.16MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let decimals = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

/// An image id as `crictl images` shows it: without `sha256:`, 13 characters.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..13).unwrap_or(hex)
}

/// The command line a container runs, by Kubernetes' rule: a container `command` replaces the
/// image's Entrypoint and Cmd (and `args` follow it); `args` alone replace only Cmd; with
/// neither the image's Entrypoint and Cmd run. (An Entrypoint of `[""]` is none, as
/// containerd reads it.)
pub fn command_for(config: &ImageConfig, command: &[String], args: &[String]) -> Vec<String> {
    if !command.is_empty() {
        return command.iter().chain(args).cloned().collect();
    }
    let entrypoint: &[String] = match config.entrypoint.as_slice() {
        [only] if only.is_empty() => &[],
        e => e,
    };
    let tail = if args.is_empty() {
        &config.cmd[..]
    } else {
        args
    };
    entrypoint.iter().chain(tail).cloned().collect()
}

/// The store's index: which image each reference names.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    /// Normalised tag reference → image id.
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// `repository@sha256:<manifest digest>` → image id.
    #[serde(default)]
    digests: BTreeMap<String, String>,
}

/// What the store records about an unpacked image.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageRecord {
    id: String,
    size: u64,
    /// The digests of the layers as they came (blob digests, else diff ids).
    layers: Vec<String>,
}

/// The image config file's fields the store reads (`null` and missing are both empty).
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

impl From<RawConfig> for ImageConfig {
    fn from(raw: RawConfig) -> Self {
        ImageConfig {
            entrypoint: raw.entrypoint.unwrap_or_default(),
            cmd: raw.cmd.unwrap_or_default(),
            env: raw.env.unwrap_or_default(),
            working_dir: raw.working_dir.unwrap_or_default(),
            user: raw.user.unwrap_or_default(),
        }
    }
}

/// The local image store (see the module documentation for its layout).
#[derive(Clone, Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// The store in `dir`; nothing is created until the first import.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        ImageStore { dir: dir.into() }
    }

    /// The store of a nanokube data directory: `<data_dir>/images`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::open(data_dir.join("images"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finds the image `reference` names: a tag (`busybox`, `busybox:1.36`,
    /// `ghcr.io/org/app:v1`), a digest (`busybox@sha256:…`, the manifest digest of an image
    /// imported from an OCI layout) or an image id (`sha256:<hex>`). Reads the index afresh, so
    /// it sees imports made while the server runs. `Ok(None)` when the store does not have it.
    pub fn resolve(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if is_identifier(hex) {
            let id = format!("sha256:{hex}");
            return self.load(&id, &id);
        }
        let wanted = Reference::parse_normalized(reference)?.with_default_tag();
        let key = match &wanted.digest {
            // A digest names content: the tag beside it does not matter (as in containerd).
            Some(digest) => format!("{}@{digest}", wanted.repository()),
            None => wanted.to_string(),
        };
        let mut previous: Option<String> = None;
        loop {
            let index = self.read_index()?;
            let id = match &wanted.digest {
                Some(_) => index.digests.get(&key),
                None => index.tags.get(&key),
            };
            let Some(id) = id else {
                return Ok(None);
            };
            if let Some(image) = self.load(id, &wanted.to_string())? {
                return Ok(Some(image));
            }
            // An import moved the tag and removed the image between our two reads: the
            // index it wrote first names the new one.
            if previous.as_deref() == Some(id.as_str()) {
                return Ok(None);
            }
            previous = Some(id.clone());
        }
    }

    /// Every tag in the store with the image it names, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let index = self.read_index()?;
        let mut out = Vec::new();
        for (reference, id) in &index.tags {
            let parsed = Reference::parse_normalized(reference)?;
            let size = match self.read_record(id) {
                Ok(record) => record.size,
                // Removed by an import since the index was read.
                Err(ImageError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            out.push(ImageSummary {
                reference: reference.clone(),
                repository: parsed.repository(),
                tag: parsed.tag.unwrap_or_default(),
                id: id.clone(),
                size,
            });
        }
        Ok(out)
    }

    /// Imports the images of an archive (`docker save` output or an OCI image layout; a tar,
    /// optionally gzipped, or a directory) and tags them; returns the references tagged.
    /// `name_override` names an archive's single image (needed when the archive names it
    /// only by a tag, or not at all): a reference with a tag is used as is, a bare repository
    /// gets the archive's tag or `latest`.
    pub fn import(
        &self,
        archive: &Path,
        name_override: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<String>, ImageError> {
        if let Some(name) = name_override {
            Reference::parse_normalized(name)?;
        }
        // Fail on an unreadable archive before creating anything.
        fs::metadata(archive).map_err(|e| io_error(archive, e))?;
        self.create_dir()?;
        let _lock = self.lock()?;
        self.remove_leftover_scratch();
        let scratch = Scratch::create(&self.dir)?;
        let extracted_dir = scratch.path.join("archive");
        fs::create_dir(&extracted_dir).map_err(|e| io_error(&extracted_dir, e))?;
        let extracted = archive::extract(archive, &extracted_dir)?;
        let (format, images) = archive::read_images(&extracted, name_override)?;
        progress(Progress::Archive {
            format,
            images: images.len(),
        });

        for image in &images {
            let hex = id_hex(&image.id)?;
            let dest = self.dir.join(hex);
            if dest.join(RECORD_FILE).is_file() {
                progress(Progress::AlreadyPresent {
                    id: image.id.clone(),
                });
                continue;
            }
            let build = scratch.path.join(hex);
            unpack(image, &build, progress)?;
            if fs::symlink_metadata(&dest).is_ok() {
                // An incomplete image (no record) from an import that was killed.
                fs::rename(&dest, scratch.path.join(format!("stale-{hex}")))
                    .map_err(|e| io_error(&dest, e))?;
            }
            fs::rename(&build, &dest).map_err(|e| io_error(&dest, e))?;
        }

        let mut index = self.read_index()?;
        let mut tagged = Vec::new();
        for image in &images {
            for name in &image.names {
                index.tags.insert(name.clone(), image.id.clone());
                tagged.push(name.clone());
                if let Some(digest) = &image.manifest_digest {
                    let repository = Reference::parse_normalized(name)?.repository();
                    index
                        .digests
                        .insert(format!("{repository}@{digest}"), image.id.clone());
                }
            }
        }
        self.commit(index, &scratch)?;
        Ok(tagged)
    }

    fn create_dir(&self) -> Result<(), ImageError> {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
        {
            Ok(()) => Ok(()),
            Err(e) => Err(io_error(&self.dir, e)),
        }
    }

    /// Holds the store's lock until dropped (imports exclude each other; readers never lock).
    fn lock(&self) -> Result<Flock<File>, ImageError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io_error(&path, errno.into()))
    }

    /// Removes scratch directories of imports that died (called with the lock held, so no
    /// import is running).
    fn remove_leftover_scratch(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(SCRATCH_PREFIX)
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    fn read_index(&self) -> Result<Index, ImageError> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(io_error(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })
    }

    /// Writes the index (new file, then rename over the old one) and removes the images no
    /// tag names any more, after the index that named them is gone.
    fn commit(&self, mut index: Index, scratch: &Scratch) -> Result<(), ImageError> {
        let referenced: BTreeSet<String> = index.tags.values().cloned().collect();
        index.digests.retain(|_, id| referenced.contains(id));
        index.schema_version = INDEX_SCHEMA_VERSION;
        let mut bytes =
            serde_json::to_vec_pretty(&index).map_err(|e| ImageError::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        write_atomically(&self.dir.join(INDEX_FILE), &bytes)?;

        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_identifier(&name) && !referenced.contains(&format!("sha256:{name}")) {
                // Out of sight first, so no reader finds a half-deleted image.
                let doomed = scratch.path.join(format!("removed-{name}"));
                fs::rename(entry.path(), &doomed).map_err(|e| io_error(&entry.path(), e))?;
            }
        }
        Ok(())
    }

    fn read_record(&self, id: &str) -> Result<ImageRecord, ImageError> {
        let path = self.dir.join(id_hex(id)?).join(RECORD_FILE);
        let bytes = fs::read(&path).map_err(|e| io_error(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| ImageError::Corrupt {
            path,
            reason: e.to_string(),
        })
    }

    fn load(&self, id: &str, reference: &str) -> Result<Option<Image>, ImageError> {
        let dir = self.dir.join(id_hex(id)?);
        let path = dir.join(CONFIG_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            // Never imported, or removed by an import since the index was read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        let config = parse_config(&bytes).map_err(|reason| ImageError::Corrupt {
            path: path.clone(),
            reason,
        })?;
        Ok(Some(Image {
            id: id.to_string(),
            reference: reference.to_string(),
            rootfs: dir.join(ROOTFS_DIR),
            config,
        }))
    }
}

fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    let file: ConfigFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(file.config.unwrap_or_default().into())
}

fn id_hex(id: &str) -> Result<&str, ImageError> {
    match id.strip_prefix("sha256:") {
        Some(hex) if is_identifier(hex) => Ok(hex),
        _ => Err(ImageError::Malformed(format!(
            "{id:?} is not a sha256 image id"
        ))),
    }
}

/// Unpacks `image` into `build` (`rootfs/`, `config.json`, `image.json`), synced to disk.
fn unpack(
    image: &archive::ArchiveImage,
    build: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let rootfs = build.join(ROOTFS_DIR);
    fs::create_dir(build).map_err(|e| io_error(build, e))?;
    fs::create_dir(&rootfs).map_err(|e| io_error(&rootfs, e))?;
    fs::set_permissions(&rootfs, Permissions::from_mode(0o755))
        .map_err(|e| io_error(&rootfs, e))?;
    // The config must be one the store can read back before anything is unpacked.
    parse_config(&image.config)
        .map_err(|e| ImageError::Malformed(format!("the image config: {e}")))?;
    let count = image.layers.len();
    for (i, layer) in image.layers.iter().enumerate() {
        let digest = layer.display_digest();
        progress(Progress::Layer {
            index: i + 1,
            count,
            digest: digest.clone(),
            size: layer.size,
        });
        archive::apply_layer_file(layer, &rootfs).map_err(|e| ImageError::Layer {
            index: i + 1,
            digest,
            error: Box::new(e),
        })?;
    }
    write_file(&build.join(CONFIG_FILE), &image.config)?;
    let record = ImageRecord {
        id: image.id.clone(),
        size: disk_usage(&rootfs)?,
        layers: image.layers.iter().map(|l| l.display_digest()).collect(),
    };
    let bytes =
        serde_json::to_vec_pretty(&record).map_err(|e| ImageError::Malformed(e.to_string()))?;
    write_file(&build.join(RECORD_FILE), &bytes)?;
    // Everything on disk before the rename makes the image visible.
    let dir = File::open(build).map_err(|e| io_error(build, e))?;
    nix::unistd::syncfs(&dir).map_err(|e| io_error(build, e.into()))
}

/// The bytes of the regular files under `root`, each inode once.
fn disk_usage(root: &Path) -> Result<u64, ImageError> {
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let meta = entry.metadata().map_err(|e| io_error(&entry.path(), e))?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())))
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    fs::write(path, bytes).map_err(|e| io_error(path, e))
}

/// Replaces `path` with `bytes` so that a reader sees the old or the new contents, whole.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io_error(&tmp, e))?;
    file.write_all(bytes).map_err(|e| io_error(&tmp, e))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, e))?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// An import's private directory inside the store (same file system, so finished images
/// can be renamed into place); removed with everything in it when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(store: &Path) -> Result<Scratch, ImageError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = store.join(format!("{SCRATCH_PREFIX}{}-{nanos}", std::process::id()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| io_error(&path, e))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "removing an import's scratch directory");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests;
