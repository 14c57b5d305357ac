//! Applying an image layer (a tar changeset) onto a root filesystem, as containerd's
//! `archive.Apply` does for the native snapshotter: entries replace what lower layers left,
//! `.wh.<name>` whiteouts delete a lower-layer path, a `.wh..wh..opq` marker makes its
//! directory opaque (the lower layers' contents vanish, this layer's stay), hard links and
//! symbolic links are recreated, and modes, owners and modification times are kept.
//!
//! No entry may land outside the root: paths with `..` are rejected, and so is any write whose
//! way down passes through a symbolic link that climbs above the root. Absolute link targets
//! are followed from the root, as they are inside the container.

use std::collections::{HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::ImageError;

/// The prefix that marks a whiteout entry.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The prefix of whiteout-metadata entries (AUFS), of which only the opaque marker means
/// anything to an unpacked root.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The entry that makes its directory opaque.
const WHITEOUT_OPAQUE_DIR: &[u8] = b".wh..wh..opq";
/// How many symbolic links one path may pass through (Linux's `MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Applies the layer tar read from `reader` onto `root`.
pub(crate) fn apply_layer<R: Read>(root: &Path, reader: R) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(reader);
    let mut writer = LayerWriter {
        root,
        written: HashSet::new(),
        dir_times: Vec::new(),
        set_owner: nix::unistd::geteuid().is_root(),
    };
    let entries = archive.entries().map_err(read_error)?;
    for entry in entries {
        let mut entry = entry.map_err(read_error)?;
        writer.apply(&mut entry)?;
    }
    writer.finish()
}

fn read_error(e: io::Error) -> ImageError {
    ImageError::Archive {
        what: "the layer tar".to_string(),
        error: e,
    }
}

fn unsafe_path(path: &Path, reason: &'static str) -> ImageError {
    ImageError::UnsafePath {
        path: path.display().to_string(),
        reason,
    }
}

/// The components of an archive path, made relative (a leading `/` or `./` means the root);
/// `..` anywhere is refused.
pub(crate) fn clean_path(path: &Path) -> Result<Vec<OsString>, ImageError> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name.to_os_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(unsafe_path(path, "the path contains `..`")),
        }
    }
    Ok(out)
}

struct LayerWriter<'a> {
    root: &'a Path,
    /// Paths this layer created, which its own opaque markers and whiteouts must not delete
    /// (they hide only the lower layers).
    written: HashSet<PathBuf>,
    /// Directory times are set once the layer is done, since adding entries changes them.
    dir_times: Vec<(PathBuf, SystemTime)>,
    /// Owners are kept only when running as root (the node agent is).
    set_owner: bool,
}

impl LayerWriter<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let raw = entry.path().map_err(read_error)?.into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let components = clean_path(&raw)?;
        let Some((name, parents)) = components.split_last() else {
            // The entry for the root itself (`./`) carries the root's own mode and owner.
            if kind.is_dir() {
                let meta = Meta::of(entry.header())?;
                self.set_dir_meta(&self.root.to_path_buf(), &meta)?;
                return Ok(());
            }
            return Err(unsafe_path(&raw, "only a directory may stand for the root"));
        };

        if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            return self.whiteout(&raw, parents, name, hidden);
        }

        let Some(dir) = self.resolve_dir(&raw, parents, true)? else {
            return Err(unsafe_path(&raw, "its parent directory cannot be created"));
        };
        let path = dir.join(name);
        let meta = Meta::of(entry.header())?;
        match kind {
            tar::EntryType::Directory => {
                if !remove_existing(&path, true)? {
                    fs::create_dir(&path).map_err(|e| io_error(&path, e))?;
                }
                self.set_dir_meta(&path, &meta)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                remove_existing(&path, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io_error(&path, e))?;
                io::copy(entry, &mut file).map_err(read_error)?;
                self.set_file_meta(&path, &file, &meta)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| unsafe_path(&raw, "a symbolic link without a target"))?
                    .into_owned();
                remove_existing(&path, false)?;
                std::os::unix::fs::symlink(&target, &path).map_err(|e| io_error(&path, e))?;
                self.set_link_meta(&path, &meta)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .ok_or_else(|| unsafe_path(&raw, "a hard link without a target"))?
                    .into_owned();
                let target = self.hard_link_target(&target)?;
                if target != path {
                    remove_existing(&path, false)?;
                    fs::hard_link(&target, &path).map_err(|e| io_error(&path, e))?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                remove_existing(&path, false)?;
                let header = entry.header();
                let major = header.device_major().map_err(read_error)?.unwrap_or(0);
                let minor = header.device_minor().map_err(read_error)?.unwrap_or(0);
                let flag = match kind {
                    tar::EntryType::Char => SFlag::S_IFCHR,
                    tar::EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = nix::sys::stat::makedev(u64::from(major), u64::from(minor));
                match nix::sys::stat::mknod(&path, flag, Mode::from_bits_truncate(0o600), dev) {
                    Ok(()) => self.set_link_meta(&path, &meta)?,
                    // Without CAP_MKNOD (a rootless run) device nodes cannot exist; runtimes
                    // provide /dev themselves, so the image's copies are not needed.
                    Err(nix::errno::Errno::EPERM) if flag != SFlag::S_IFIFO => {
                        tracing::debug!(path = %path.display(), "skipping a device node: not permitted");
                        return Ok(());
                    }
                    Err(e) => return Err(io_error(&path, e.into())),
                }
                let mode = Permissions::from_mode(meta.mode);
                fs::set_permissions(&path, mode).map_err(|e| io_error(&path, e))?;
            }
            // Other entry kinds (sockets do not occur in tar) carry nothing to unpack.
            _ => return Ok(()),
        }
        self.written.insert(path);
        Ok(())
    }

    /// `.wh.<name>` deletes `<name>` of a lower layer; `.wh..wh..opq` empties its directory
    /// of everything lower layers put there.
    fn whiteout(
        &mut self,
        raw: &Path,
        parents: &[OsString],
        name: &OsStr,
        hidden: &[u8],
    ) -> Result<(), ImageError> {
        if name.as_bytes() == WHITEOUT_OPAQUE_DIR {
            let Some(dir) = self.resolve_dir(raw, parents, true)? else {
                return Ok(());
            };
            let children = fs::read_dir(&dir).map_err(|e| io_error(&dir, e))?;
            for child in children {
                let child = child.map_err(|e| io_error(&dir, e))?.path();
                if !self.written.contains(&child) {
                    remove_all(&child)?;
                }
            }
            return Ok(());
        }
        if name.as_bytes().starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        let hidden = Path::new(OsStr::from_bytes(hidden));
        let mut components = hidden.components();
        let (Some(Component::Normal(hidden)), None) = (components.next(), components.next()) else {
            return Err(unsafe_path(
                raw,
                "a whiteout must name one entry of its directory",
            ));
        };
        // A whiteout under a directory that does not exist hides nothing.
        let Some(dir) = self.resolve_dir(raw, parents, false)? else {
            return Ok(());
        };
        let target = dir.join(hidden);
        if !self.written.contains(&target) {
            remove_all(&target)?;
        }
        Ok(())
    }

    /// Where a hard link's target is: an archive path whose parents are resolved like any
    /// entry's, and which must already exist (and not be a directory).
    fn hard_link_target(&mut self, target: &Path) -> Result<PathBuf, ImageError> {
        let components = clean_path(target)?;
        let Some((name, parents)) = components.split_last() else {
            return Err(unsafe_path(target, "a hard link cannot point at the root"));
        };
        let dir = self
            .resolve_dir(target, parents, false)?
            .ok_or_else(|| unsafe_path(target, "the hard link's target does not exist"))?;
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Err(unsafe_path(
                target,
                "a hard link cannot point at a directory",
            )),
            Ok(_) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(unsafe_path(target, "the hard link's target does not exist"))
            }
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Resolves the directory `components` names under the root, following symbolic links as
    /// the container would see them (absolute targets start again at the root), and creating
    /// missing directories when `create` is set (`None` when one is missing otherwise).
    /// A link that climbs above the root is refused rather than clamped: a layer that writes
    /// through such a link is either broken or hostile.
    fn resolve_dir(
        &mut self,
        raw: &Path,
        components: &[OsString],
        create: bool,
    ) -> Result<Option<PathBuf>, ImageError> {
        let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
        let mut resolved = self.root.to_path_buf();
        let mut depth = 0usize;
        let mut hops = 0usize;
        while let Some(component) = pending.pop_front() {
            if component == ".." {
                if depth == 0 {
                    return Err(unsafe_path(
                        raw,
                        "a symbolic link on its path points outside the image root",
                    ));
                }
                resolved.pop();
                depth -= 1;
                continue;
            }
            if component.is_empty() || component == "." {
                continue;
            }
            let next = resolved.join(&component);
            match fs::symlink_metadata(&next) {
                Ok(m) if m.is_dir() => {
                    resolved = next;
                    depth += 1;
                }
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(unsafe_path(raw, "too many levels of symbolic links"));
                    }
                    let target = fs::read_link(&next).map_err(|e| io_error(&next, e))?;
                    if target.is_absolute() {
                        resolved = self.root.to_path_buf();
                        depth = 0;
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => pending.push_front(n.to_os_string()),
                            Component::ParentDir => pending.push_front(OsString::from("..")),
                            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
                        }
                    }
                }
                Ok(_) => return Err(unsafe_path(raw, "a parent of the path is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    fs::create_dir(&next).map_err(|e| io_error(&next, e))?;
                    fs::set_permissions(&next, Permissions::from_mode(0o755))
                        .map_err(|e| io_error(&next, e))?;
                    // Made by this layer, so its own opaque markers keep it.
                    self.written.insert(next.clone());
                    resolved = next;
                    depth += 1;
                }
                Err(e) => return Err(io_error(&next, e)),
            }
        }
        Ok(Some(resolved))
    }

    fn set_file_meta(&self, path: &Path, file: &File, meta: &Meta) -> Result<(), ImageError> {
        // Owner first: chown clears the set-user-ID and set-group-ID bits.
        if self.set_owner {
            std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid))
                .map_err(|e| io_error(path, e))?;
        }
        file.set_permissions(Permissions::from_mode(meta.mode))
            .map_err(|e| io_error(path, e))?;
        file.set_modified(meta.mtime).map_err(|e| io_error(path, e))
    }

    fn set_dir_meta(&mut self, path: &PathBuf, meta: &Meta) -> Result<(), ImageError> {
        if self.set_owner {
            std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
                .map_err(|e| io_error(path, e))?;
        }
        fs::set_permissions(path, Permissions::from_mode(meta.mode))
            .map_err(|e| io_error(path, e))?;
        self.dir_times.push((path.clone(), meta.mtime));
        Ok(())
    }

    fn set_link_meta(&self, path: &Path, meta: &Meta) -> Result<(), ImageError> {
        if self.set_owner {
            std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
                .map_err(|e| io_error(path, e))?;
        }
        set_times_nofollow(path, meta.mtime).map_err(|e| io_error(path, e))
    }

    fn finish(self) -> Result<(), ImageError> {
        for (path, mtime) in self.dir_times.iter().rev() {
            set_times_nofollow(path, *mtime).map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }
}

/// Mode, owner and time of an entry.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
}

impl Meta {
    fn of(header: &tar::Header) -> Result<Meta, ImageError> {
        let mode = header.mode().map_err(read_error)? & 0o7777;
        let id = |v: u64| {
            u32::try_from(v)
                .map_err(|_| ImageError::Malformed(format!("owner id {v} is out of range")))
        };
        let uid = id(header.uid().map_err(read_error)?)?;
        let gid = id(header.gid().map_err(read_error)?)?;
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(header.mtime().unwrap_or(0));
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
        })
    }
}

/// Sets access and modification time of `path` itself (not of a link's target).
pub(crate) fn set_times_nofollow(path: &Path, mtime: SystemTime) -> io::Result<()> {
    let since = mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let ts = TimeSpec::from_duration(since);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &ts,
        &ts,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Clears the way for a new entry at `path`: a directory stays when `keep_dir` (a directory
/// entry over a directory only updates its metadata; returns true then), anything else goes.
fn remove_existing(path: &Path, keep_dir: bool) -> Result<bool, ImageError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(true),
        Ok(_) => remove_all(path).map(|()| false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Removes `path` whatever it is, without following a symbolic link.
fn remove_all(path: &Path) -> Result<(), ImageError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, error: io::Error) -> ImageError {
    ImageError::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests {
    use super::*;
    use crate::image::testutil::{LayerBuilder, raw_entry};
    use std::os::unix::fs::MetadataExt;

    fn apply(root: &Path, layer: Vec<u8>) -> Result<(), ImageError> {
        apply_layer(root, &layer[..])
    }

    #[test]
    fn files_directories_and_symlinks_are_unpacked_with_their_modes() {
        let root = tempfile::tempdir().unwrap();
        let layer = LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/busybox", b"#!", 0o4755)
            .symlink("bin/sh", "busybox")
            .dir("tmp", 0o1777)
            .file("etc/motd", b"hi\n", 0o644)
            .build();
        apply(root.path(), layer).unwrap();
        let bin = root.path().join("bin/busybox");
        assert_eq!(fs::read(&bin).unwrap(), b"#!");
        assert_eq!(fs::metadata(&bin).unwrap().mode() & 0o7777, 0o4755);
        assert_eq!(
            fs::read_link(root.path().join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fs::metadata(root.path().join("tmp")).unwrap().mode() & 0o7777,
            0o1777
        );
        // `etc` had no entry of its own: it is created as 0755.
        assert_eq!(
            fs::metadata(root.path().join("etc")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(fs::read(root.path().join("etc/motd")).unwrap(), b"hi\n");
    }

    #[test]
    fn owners_and_times_are_kept() {
        let root = tempfile::tempdir().unwrap();
        let layer = LayerBuilder::new()
            .entry_with(
                "home/app",
                tar::EntryType::Directory,
                b"",
                0o700,
                1000,
                1001,
                None,
            )
            .entry_with(
                "home/app/data",
                tar::EntryType::Regular,
                b"x",
                0o640,
                1000,
                1001,
                None,
            )
            .build();
        apply(root.path(), layer).unwrap();
        let m = fs::symlink_metadata(root.path().join("home/app/data")).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (1000, 1001));
        }
        assert_eq!(m.mtime(), LayerBuilder::MTIME as i64);
        let d = fs::symlink_metadata(root.path().join("home/app")).unwrap();
        assert_eq!(
            d.mtime(),
            LayerBuilder::MTIME as i64,
            "directory times are set last"
        );
    }

    #[test]
    fn a_later_layer_replaces_files_and_whiteouts_delete_lower_paths() {
        let root = tempfile::tempdir().unwrap();
        let lower = LayerBuilder::new()
            .file("etc/keep", b"1", 0o644)
            .file("etc/gone", b"1", 0o644)
            .file("etc/replaced", b"old", 0o644)
            .file("opt/tree/deep/file", b"1", 0o644)
            .build();
        apply(root.path(), lower).unwrap();
        let upper = LayerBuilder::new()
            .file("etc/.wh.gone", b"", 0o644)
            .file("etc/replaced", b"new", 0o600)
            .file("opt/.wh.tree", b"", 0o644)
            .file(".wh.never-existed", b"", 0o644)
            .build();
        apply(root.path(), upper).unwrap();
        assert!(root.path().join("etc/keep").exists());
        assert!(!root.path().join("etc/gone").exists());
        assert!(
            !root.path().join("etc/.wh.gone").exists(),
            "whiteouts are not files"
        );
        assert_eq!(fs::read(root.path().join("etc/replaced")).unwrap(), b"new");
        assert!(!root.path().join("opt/tree").exists());
        assert!(root.path().join("opt").exists());
    }

    #[test]
    fn an_opaque_directory_hides_lower_contents_but_keeps_its_own_layer() {
        let root = tempfile::tempdir().unwrap();
        let lower = LayerBuilder::new()
            .file("app/old.txt", b"1", 0o644)
            .file("app/sub/old2.txt", b"1", 0o644)
            .file("other/stay.txt", b"1", 0o644)
            .build();
        apply(root.path(), lower).unwrap();
        // The new file comes before the marker: order within a layer must not matter.
        let upper = LayerBuilder::new()
            .dir("app", 0o755)
            .file("app/new.txt", b"2", 0o644)
            .file("app/made/implicitly.txt", b"3", 0o644)
            .file("app/.wh..wh..opq", b"", 0o644)
            .build();
        apply(root.path(), upper).unwrap();
        let mut names: Vec<_> = fs::read_dir(root.path().join("app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["made", "new.txt"]);
        assert!(root.path().join("app/made/implicitly.txt").exists());
        assert!(root.path().join("other/stay.txt").exists());
    }

    #[test]
    fn a_file_replaces_a_directory_and_a_directory_replaces_a_file() {
        let root = tempfile::tempdir().unwrap();
        apply(
            root.path(),
            LayerBuilder::new()
                .file("a/inner", b"1", 0o644)
                .file("b", b"1", 0o644)
                .build(),
        )
        .unwrap();
        apply(
            root.path(),
            LayerBuilder::new()
                .file("a", b"file now", 0o644)
                .dir("b", 0o755)
                .file("b/inner", b"dir now", 0o644)
                .build(),
        )
        .unwrap();
        assert_eq!(fs::read(root.path().join("a")).unwrap(), b"file now");
        assert_eq!(fs::read(root.path().join("b/inner")).unwrap(), b"dir now");
    }

    #[test]
    fn hard_links_share_the_inode_of_their_target() {
        let root = tempfile::tempdir().unwrap();
        let layer = LayerBuilder::new()
            .file("bin/busybox", b"elf", 0o755)
            .hardlink("bin/ls", "bin/busybox")
            .hardlink("sbin/init", "/bin/busybox")
            .build();
        apply(root.path(), layer).unwrap();
        let a = fs::metadata(root.path().join("bin/busybox")).unwrap();
        let b = fs::metadata(root.path().join("bin/ls")).unwrap();
        let c = fs::metadata(root.path().join("sbin/init")).unwrap();
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.ino(), c.ino());
        assert_eq!(a.nlink(), 3);
    }

    #[test]
    fn paths_with_dot_dot_are_rejected() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        fs::create_dir(&root).unwrap();
        let layer = LayerBuilder::new()
            .raw(raw_entry("../escaped", tar::EntryType::Regular, b"x", None))
            .build();
        let err = apply(&root, layer).unwrap_err();
        assert!(matches!(err, ImageError::UnsafePath { .. }), "{err}");
        assert!(!outside.path().join("escaped").exists());

        let layer = LayerBuilder::new()
            .raw(raw_entry(
                "a/../../escaped",
                tar::EntryType::Regular,
                b"x",
                None,
            ))
            .build();
        assert!(apply(&root, layer).is_err());
        assert!(!outside.path().join("escaped").exists());
    }

    #[test]
    fn writes_through_a_symlink_that_climbs_out_of_the_root_are_rejected() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        fs::create_dir(&root).unwrap();
        let layer = LayerBuilder::new()
            .symlink("evil", "../")
            .file("evil/escaped", b"x", 0o644)
            .build();
        let err = apply(&root, layer).unwrap_err();
        assert!(
            err.to_string().contains("points outside the image root"),
            "{err}"
        );
        assert!(!outside.path().join("escaped").exists());

        // The link may come from a lower layer, and sit deeper.
        let root2 = outside.path().join("root2");
        fs::create_dir(&root2).unwrap();
        apply(
            &root2,
            LayerBuilder::new().symlink("usr/evil", "../../..").build(),
        )
        .unwrap();
        let err = apply(
            &root2,
            LayerBuilder::new()
                .file("usr/evil/tmp/x", b"x", 0o644)
                .build(),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::UnsafePath { .. }), "{err}");
    }

    #[test]
    fn absolute_symlinks_are_followed_from_the_image_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        fs::create_dir(&root).unwrap();
        // `lib -> /usr/lib` (as merged-/usr images have) must land in the image's /usr/lib,
        // never in the host's.
        let layer = LayerBuilder::new()
            .dir("usr/lib", 0o755)
            .symlink("lib", "/usr/lib")
            .file("lib/libc.so", b"so", 0o755)
            .build();
        apply(&root, layer).unwrap();
        assert_eq!(fs::read(root.join("usr/lib/libc.so")).unwrap(), b"so");
        assert!(
            fs::symlink_metadata(root.join("lib"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn an_entry_replacing_a_symlink_replaces_the_link_not_its_target() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        fs::create_dir(&root).unwrap();
        fs::write(outside.path().join("victim"), b"host").unwrap();
        apply(
            &root,
            LayerBuilder::new()
                .symlink("etc/passwd", "../../victim")
                .build(),
        )
        .unwrap();
        apply(
            &root,
            LayerBuilder::new()
                .file("etc/passwd", b"root:x:0:0", 0o644)
                .build(),
        )
        .unwrap();
        assert_eq!(fs::read(outside.path().join("victim")).unwrap(), b"host");
        assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0");
    }

    #[test]
    fn hard_links_to_outside_or_missing_targets_are_rejected() {
        let root = tempfile::tempdir().unwrap();
        let layer = LayerBuilder::new()
            .raw(raw_entry(
                "x",
                tar::EntryType::Link,
                b"",
                Some("../../etc/shadow"),
            ))
            .build();
        let err = apply(root.path(), layer).unwrap_err();
        assert!(matches!(err, ImageError::UnsafePath { .. }), "{err:?}");
        let layer = LayerBuilder::new().hardlink("y", "no/such/file").build();
        assert!(matches!(
            apply(root.path(), layer).unwrap_err(),
            ImageError::UnsafePath { .. }
        ));
    }

    #[test]
    fn a_whiteout_cannot_name_the_parent_directory() {
        let root = tempfile::tempdir().unwrap();
        apply(
            root.path(),
            LayerBuilder::new().file("a/b", b"1", 0o644).build(),
        )
        .unwrap();
        let layer = LayerBuilder::new().file("a/.wh...", b"", 0o644).build();
        assert!(apply(root.path(), layer).is_err());
        assert!(root.path().join("a/b").exists());
    }
}
