//! A private copy of an image's root filesystem for one container, for when an overlay
//! mount (the image as the read-only lower layer) is not available.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};

use super::layer::set_times_nofollow;

/// Copies the tree at `src` to `dst` (created if missing; an existing directory is filled)
/// keeping modes (set-ID bits included), owners when running as root, modification times,
/// symbolic links as links, files hard-linked to each other as hard links, and FIFOs and
/// device nodes (skipped where they cannot be created). Symbolic links are never followed,
/// so a link in the image that points at a host path cannot make the copy read or write it.
pub fn copy_rootfs(src: &Path, dst: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", src.display()),
        ));
    }
    match fs::create_dir(dst) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::AlreadyExists && fs::symlink_metadata(dst)?.is_dir() => {}
        Err(e) => return Err(e),
    }
    let mut copier = Copier {
        set_owner: nix::unistd::geteuid().is_root(),
        links: HashMap::new(),
    };
    copier.copy_dir(src, dst)?;
    copier.set_meta(dst, &meta)
}

struct Copier {
    set_owner: bool,
    /// Files with more than one link, by (device, inode), to the first copy made of them.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier {
    fn copy_dir(&mut self, src: &Path, dst: &Path) -> io::Result<()> {
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            let from = entry.path();
            let to = dst.join(entry.file_name());
            // `DirEntry::metadata` does not follow symbolic links.
            let meta = entry.metadata()?;
            let kind = meta.file_type();
            if kind.is_dir() {
                fs::create_dir(&to)?;
                self.copy_dir(&from, &to)?;
                // After the contents: a read-only directory must still be filled, and
                // filling it changes its time.
                self.set_meta(&to, &meta)?;
            } else if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
                self.set_owner_of(&to, &meta)?;
                set_times_nofollow(&to, meta.modified()?)?;
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key) {
                        // Best effort: a link that cannot be made becomes a copy.
                        if fs::hard_link(first, &to).is_ok() {
                            continue;
                        }
                    } else {
                        self.links.insert(key, to.clone());
                    }
                }
                self.copy_file(&from, &to, &meta)?;
            } else {
                self.copy_special(&to, &meta)?;
            }
        }
        Ok(())
    }

    fn copy_file(&self, from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
        let mut input = OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(from)?;
        let mut output: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)?;
        io::copy(&mut input, &mut output)?;
        if self.set_owner {
            std::os::unix::fs::fchown(&output, Some(meta.uid()), Some(meta.gid()))?;
        }
        output.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))?;
        output.set_modified(meta.modified()?)
    }

    fn copy_special(&self, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
        let kind = SFlag::from_bits_truncate(meta.mode() & SFlag::S_IFMT.bits());
        if kind != SFlag::S_IFIFO && kind != SFlag::S_IFCHR && kind != SFlag::S_IFBLK {
            // Sockets belong to a process that is not in the copy.
            return Ok(());
        }
        match nix::sys::stat::mknod(to, kind, Mode::from_bits_truncate(0o600), meta.rdev()) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPERM) if kind != SFlag::S_IFIFO => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.set_meta(to, meta)
    }

    fn set_owner_of(&self, path: &Path, meta: &fs::Metadata) -> io::Result<()> {
        if self.set_owner {
            std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
        }
        Ok(())
    }

    fn set_meta(&self, path: &Path, meta: &fs::Metadata) -> io::Result<()> {
        self.set_owner_of(path, meta)?;
        fs::set_permissions(path, Permissions::from_mode(meta.mode() & 0o7777))?;
        set_times_nofollow(path, meta.modified()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_modes_links_hard_links_and_times() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::create_dir_all(src.join("tmp")).unwrap();
        fs::set_permissions(src.join("tmp"), Permissions::from_mode(0o1777)).unwrap();
        fs::write(src.join("bin/busybox"), b"elf").unwrap();
        fs::set_permissions(src.join("bin/busybox"), Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(src.join("bin/busybox"), src.join("bin/ls")).unwrap();
        std::os::unix::fs::symlink("busybox", src.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", src.join("bin/host-link")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        set_times_nofollow(&src.join("bin"), old).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(src.join("bin/sh"), Some(65534), Some(65534)).unwrap();
        }

        let dst = tmp.path().join("dst");
        copy_rootfs(&src, &dst).unwrap();

        let m = fs::metadata(dst.join("bin/busybox")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o4755);
        assert_eq!(fs::read(dst.join("bin/busybox")).unwrap(), b"elf");
        assert_eq!(fs::metadata(dst.join("bin/ls")).unwrap().ino(), m.ino());
        assert_ne!(
            m.ino(),
            fs::metadata(src.join("bin/busybox")).unwrap().ino(),
            "a copy, not a link to the image"
        );
        assert_eq!(
            fs::read_link(dst.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            fs::read_link(dst.join("bin/host-link")).unwrap(),
            Path::new("/etc/shadow"),
            "links are copied, not followed"
        );
        assert_eq!(
            fs::metadata(dst.join("tmp")).unwrap().mode() & 0o7777,
            0o1777
        );
        let fifo = fs::symlink_metadata(dst.join("fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(fifo.mode() & 0o7777, 0o640);
        assert_eq!(fs::metadata(dst.join("bin")).unwrap().mtime(), 1_000_000);
        if nix::unistd::geteuid().is_root() {
            assert_eq!(
                fs::symlink_metadata(dst.join("bin/sh")).unwrap().uid(),
                65534
            );
        }

        // The copy is independent of the image.
        fs::write(dst.join("bin/new"), b"x").unwrap();
        assert!(!src.join("bin/new").exists());
    }

    #[test]
    fn copying_something_that_is_not_a_directory_fails() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), b"x").unwrap();
        assert!(copy_rootfs(&tmp.path().join("f"), &tmp.path().join("d")).is_err());
    }
}
