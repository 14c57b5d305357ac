//! The kubelet's `AtomicWriter` (`pkg/volume/util/atomic_writer.go`): writes the files of a
//! ConfigMap, Secret, downward API or projected volume so that a reader never sees a half
//! updated set.
//!
//! Layout of a volume directory:
//!
//! ```text
//! ..2024_05_01_10_00_00.1234567/   the payload of one write (files with their modes)
//! ..data -> ..2024_05_01_10_00_00.1234567
//! key -> ..data/key                the user-visible names (first path component only)
//! ```
//!
//! An update writes a new timestamped directory, points a fresh `..data_tmp` symlink at it and
//! renames that over `..data` (an atomic swap), adds symlinks for new names, removes the names
//! that are gone and finally the old timestamped directory. A container that bind-mounts the
//! volume directory therefore sees every update at once.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// `..data`: the symlink to the current payload directory.
pub const DATA_DIR_NAME: &str = "..data";
/// `..data_tmp`: the symlink renamed over `..data`.
pub const NEW_DATA_DIR_NAME: &str = "..data_tmp";
const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;

/// One file of a payload: its bytes and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path (`key`, `dir/key`) → file.
pub type Payload = BTreeMap<String, FileProjection>;

#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError {
    /// A payload path the writer refuses (upstream `validatePath`'s messages).
    #[error("{0}")]
    InvalidPath(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AtomicWriteError {
    let path = path.to_path_buf();
    move |source| AtomicWriteError::Io { op, path, source }
}

/// Checks a payload path as upstream's `validatePath` does: relative, no `..` component, not
/// starting with `..` (those names are the writer's own), and within Linux's length limits.
pub fn validate_path(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err(format!("invalid path: must not be empty: {target:?}"));
    }
    if target.starts_with('/') {
        return Err(format!("invalid path: must be relative path: {target}"));
    }
    if target.len() > MAX_PATH_LENGTH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        ));
    }
    let items: Vec<&str> = target.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(format!("invalid path: must not contain '..': {target}"));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            ));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(format!("invalid path: must not start with '..': {target}"));
    }
    Ok(())
}

/// Go's `path.Clean` for the relative paths a payload may hold (`..` is already refused).
fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes payloads into one volume directory.
#[derive(Clone, Debug)]
pub struct AtomicWriter {
    target_dir: PathBuf,
}

impl AtomicWriter {
    pub fn new(target_dir: impl Into<PathBuf>) -> Self {
        AtomicWriter {
            target_dir: target_dir.into(),
        }
    }

    pub fn target_dir(&self) -> &Path {
        &self.target_dir
    }

    /// Makes the directory hold exactly `payload`; returns whether anything changed. `now`
    /// names the new timestamped directory.
    pub fn write(&self, payload: &Payload, now: DateTime<Utc>) -> Result<bool, AtomicWriteError> {
        let mut clean_payload = Payload::new();
        for (path, file) in payload {
            validate_path(path).map_err(AtomicWriteError::InvalidPath)?;
            clean_payload.insert(clean(path), file.clone());
        }
        std::fs::create_dir_all(&self.target_dir).map_err(io_err("mkdir", &self.target_dir))?;

        let data_dir = self.target_dir.join(DATA_DIR_NAME);
        let old_ts_name = match std::fs::read_link(&data_dir) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("readlink", &data_dir)(e)),
        };
        let old_ts_dir = old_ts_name.as_ref().map(|n| self.target_dir.join(n));

        let (to_remove, changed) = match &old_ts_dir {
            Some(old) => {
                let to_remove = paths_to_remove(&clean_payload, old)?;
                let changed = !to_remove.is_empty() || payload_differs(&clean_payload, old)?;
                (to_remove, changed)
            }
            None => (BTreeSet::new(), true),
        };
        if !changed {
            return Ok(false);
        }

        let ts_dir = self.new_timestamp_dir(now)?;
        if let Err(e) = write_payload(&clean_payload, &ts_dir) {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(e);
        }
        let ts_name = ts_dir
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| ts_dir.clone());
        let tmp_link = self.target_dir.join(NEW_DATA_DIR_NAME);
        let _ = std::fs::remove_file(&tmp_link);
        if let Err(e) = symlink(&ts_name, &tmp_link) {
            let _ = std::fs::remove_dir_all(&ts_dir);
            return Err(io_err("symlink", &tmp_link)(e));
        }
        // The atomic swap: readers see either the old payload or the new one.
        std::fs::rename(&tmp_link, &data_dir).map_err(io_err("rename", &tmp_link))?;

        self.create_user_visible_files(&clean_payload)?;
        for path in &to_remove {
            // Only the user-visible symlinks live at the top; nested paths went with the old
            // payload directory.
            if !path.contains('/') {
                let visible = self.target_dir.join(path);
                if let Err(e) = std::fs::remove_file(&visible)
                    && e.kind() != io::ErrorKind::NotFound
                {
                    return Err(io_err("remove", &visible)(e));
                }
            }
        }
        if let Some(old) = old_ts_dir
            && old != ts_dir
        {
            std::fs::remove_dir_all(&old).map_err(io_err("remove", &old))?;
        }
        Ok(true)
    }

    /// `..<UTC time>.<random digits>`, mode 0755, as `os.MkdirTemp` with upstream's pattern.
    fn new_timestamp_dir(&self, now: DateTime<Utc>) -> Result<PathBuf, AtomicWriteError> {
        let prefix = now.format("..%Y_%m_%d_%H_%M_%S.").to_string();
        for _ in 0..100 {
            let dir = self
                .target_dir
                .join(format!("{prefix}{}", rand::random::<u32>()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                        .map_err(io_err("chmod", &dir))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("mkdir", &dir)(e)),
            }
        }
        Err(io_err("mkdir", &self.target_dir)(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free timestamped directory name",
        )))
    }

    fn create_user_visible_files(&self, payload: &Payload) -> Result<(), AtomicWriteError> {
        for path in payload.keys() {
            let link_name = path.split('/').next().unwrap_or(path);
            let visible = self.target_dir.join(link_name);
            match std::fs::symlink_metadata(&visible) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let target = Path::new(DATA_DIR_NAME).join(link_name);
                    symlink(&target, &visible).map_err(io_err("symlink", &visible))?;
                }
                Err(e) => return Err(io_err("lstat", &visible)(e)),
            }
        }
        Ok(())
    }
}

/// Writes every file (creating parent directories) and sets its mode past the umask.
fn write_payload(payload: &Payload, dir: &Path) -> Result<(), AtomicWriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("mkdir", parent))?;
        }
        std::fs::write(&full, &file.data).map_err(io_err("write", &full))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err("chmod", &full))?;
    }
    Ok(())
}

/// Whether some file of the payload is missing from the old payload directory or differs in
/// content or mode.
fn payload_differs(payload: &Payload, old_dir: &Path) -> Result<bool, AtomicWriteError> {
    for (path, file) in payload {
        let full = old_dir.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io_err("lstat", &full)(e)),
        };
        if !meta.is_file() || meta.permissions().mode() & 0o7777 != file.mode & 0o7777 {
            return Ok(true);
        }
        let data = std::fs::read(&full).map_err(io_err("read", &full))?;
        if data != file.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Paths of the old payload directory that the new payload does not have (a payload path's
/// parent directories count as present).
fn paths_to_remove(
    payload: &Payload,
    old_dir: &Path,
) -> Result<BTreeSet<String>, AtomicWriteError> {
    let mut old = BTreeSet::new();
    walk(old_dir, "", &mut old)?;
    let mut new = BTreeSet::new();
    for path in payload.keys() {
        let mut p = path.as_str();
        loop {
            new.insert(p.to_string());
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => break,
            }
        }
    }
    Ok(old.difference(&new).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> Result<(), AtomicWriteError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("readdir", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("readdir", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn payload(files: &[(&str, &str, u32)]) -> Payload {
        files
            .iter()
            .map(|(p, d, m)| {
                (
                    p.to_string(),
                    FileProjection {
                        data: d.as_bytes().to_vec(),
                        mode: *m,
                    },
                )
            })
            .collect()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn files_live_in_a_timestamped_dir_behind_data_and_key_symlinks() {
        let tmp = tempfile::tempdir().expect("tmp");
        let w = AtomicWriter::new(tmp.path().join("vol"));
        let p = payload(&[("a", "1", 0o644), ("dir/b", "2", 0o400)]);
        assert!(w.write(&p, now()).expect("write"));
        let vol = tmp.path().join("vol");
        let listing = names(&vol);
        assert_eq!(listing.len(), 4, "{listing:?}");
        assert_eq!(&listing[1..], ["..data", "a", "dir"]);
        assert!(
            listing[0].starts_with("..2024_05_01_10_00_00."),
            "{listing:?}"
        );
        assert_eq!(
            std::fs::read_link(vol.join("..data")).expect("link"),
            PathBuf::from(&listing[0])
        );
        assert_eq!(
            std::fs::read_link(vol.join("a")).expect("link"),
            PathBuf::from("..data/a")
        );
        assert_eq!(
            std::fs::read_link(vol.join("dir")).expect("link"),
            PathBuf::from("..data/dir")
        );
        assert_eq!(std::fs::read_to_string(vol.join("dir/b")).expect("b"), "2");
        let mode = |p: &str| {
            std::fs::metadata(vol.join(p))
                .expect("meta")
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode("a"), 0o644);
        assert_eq!(mode("dir/b"), 0o400);
        assert_eq!(mode(&listing[0]), 0o755);
    }

    #[test]
    fn an_update_swaps_the_whole_set_and_drops_vanished_keys() {
        let tmp = tempfile::tempdir().expect("tmp");
        let vol = tmp.path().join("vol");
        let w = AtomicWriter::new(&vol);
        w.write(&payload(&[("a", "1", 0o644), ("b", "2", 0o644)]), now())
            .expect("first");
        let first = std::fs::read_link(vol.join("..data")).expect("link");
        // Keep a handle on the old file: a reader that opened it keeps a consistent view.
        let old_a = std::fs::read_to_string(vol.join("a")).expect("a");
        let later = now() + chrono::Duration::seconds(5);
        assert!(
            w.write(&payload(&[("a", "one", 0o644), ("c", "3", 0o644)]), later)
                .expect("second")
        );
        let second = std::fs::read_link(vol.join("..data")).expect("link");
        assert_ne!(first, second);
        assert!(!vol.join(&first).exists(), "old payload dir removed");
        assert_eq!(old_a, "1");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "one");
        assert_eq!(std::fs::read_to_string(vol.join("c")).expect("c"), "3");
        assert!(std::fs::symlink_metadata(vol.join("b")).is_err(), "b gone");
        assert!(!vol.join(NEW_DATA_DIR_NAME).exists());
    }

    #[test]
    fn an_unchanged_payload_is_not_rewritten() {
        let tmp = tempfile::tempdir().expect("tmp");
        let vol = tmp.path().join("vol");
        let w = AtomicWriter::new(&vol);
        let p = payload(&[("a", "1", 0o644)]);
        assert!(w.write(&p, now()).expect("first"));
        let first = std::fs::read_link(vol.join("..data")).expect("link");
        assert!(!w.write(&p, now()).expect("second"));
        assert_eq!(std::fs::read_link(vol.join("..data")).expect("link"), first);
        // A mode change alone is a change.
        assert!(
            w.write(&payload(&[("a", "1", 0o600)]), now())
                .expect("third")
        );
    }

    #[test]
    fn an_empty_payload_still_gets_a_data_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let vol = tmp.path().join("vol");
        AtomicWriter::new(&vol)
            .write(&Payload::new(), now())
            .expect("write");
        assert!(vol.join("..data").is_dir());
        assert_eq!(names(&vol).len(), 2);
    }

    #[test]
    fn unsafe_paths_are_refused_with_upstreams_messages() {
        assert_eq!(
            validate_path("../etc/passwd"),
            Err("invalid path: must not contain '..': ../etc/passwd".into())
        );
        assert_eq!(
            validate_path("/abs"),
            Err("invalid path: must be relative path: /abs".into())
        );
        assert_eq!(
            validate_path("..data"),
            Err("invalid path: must not start with '..': ..data".into())
        );
        assert!(validate_path("").is_err());
        assert!(validate_path(&"x".repeat(256)).is_err());
        assert_eq!(validate_path("ok/..fine"), Ok(()));
        assert_eq!(
            validate_path(".."),
            Err("invalid path: must not contain '..': ..".into())
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let w = AtomicWriter::new(tmp.path().join("vol"));
        let err = w
            .write(&payload(&[("a/../../x", "1", 0o644)]), now())
            .expect_err("refused");
        assert!(matches!(err, AtomicWriteError::InvalidPath(_)), "{err}");
        assert!(!tmp.path().join("x").exists());
    }

    #[test]
    fn dot_components_are_cleaned() {
        assert_eq!(clean("./a//b/."), "a/b");
    }
}
