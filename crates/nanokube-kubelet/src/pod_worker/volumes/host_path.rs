//! `hostPath` volumes: the node's own path, checked (or created) according to its `type`
//! before any container starts (upstream `pkg/volume/hostpath`, `checkTypeInternal`).

use std::fs::{OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What the path turned out to be (upstream `hostutil.FileType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileType {
    Directory,
    File,
    Socket,
    CharDevice,
    BlockDevice,
    Other,
}

fn file_type(path: &Path) -> io::Result<FileType> {
    // Symlinks are followed, as `os.Stat` does.
    let t = std::fs::metadata(path)?.file_type();
    Ok(if t.is_dir() {
        FileType::Directory
    } else if t.is_file() {
        FileType::File
    } else if t.is_socket() {
        FileType::Socket
    } else if t.is_char_device() {
        FileType::CharDevice
    } else if t.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::Other
    })
}

fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

fn is(path: &Path, want: FileType) -> bool {
    file_type(path).is_ok_and(|t| t == want)
}

/// Checks `path` against the volume's `type` (`""` checks nothing), creating it for
/// `DirectoryOrCreate` (mode 0755, parents too) and `FileOrCreate` (mode 0644, parent must
/// exist). Messages are upstream's.
pub fn check_type(path: &str, type_: &str) -> Result<(), String> {
    let p = Path::new(path);
    let fail = |what: &str| Err(format!("hostPath type check failed: {path} is not {what}"));
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists(p) => make_dir(p),
        "DirectoryOrCreate" | "Directory" => {
            if is(p, FileType::Directory) {
                Ok(())
            } else {
                fail("a directory")
            }
        }
        "FileOrCreate" if !exists(p) => make_file(p),
        "FileOrCreate" | "File" => {
            if is(p, FileType::File) {
                Ok(())
            } else {
                fail("a file")
            }
        }
        "Socket" => {
            if is(p, FileType::Socket) {
                Ok(())
            } else {
                fail("a socket file")
            }
        }
        "CharDevice" => {
            if is(p, FileType::CharDevice) {
                Ok(())
            } else {
                fail("a character device")
            }
        }
        "BlockDevice" => {
            if is(p, FileType::BlockDevice) {
                Ok(())
            } else {
                fail("a block device")
            }
        }
        other => Err(format!("{other} is an invalid volume type")),
    }
}

fn make_dir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
    std::fs::set_permissions(p, Permissions::from_mode(0o755)).map_err(|e| e.to_string())
}

fn make_file(p: &Path) -> Result<(), String> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn or_create_types_make_what_is_missing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        let dir_s = dir.to_string_lossy().into_owned();
        assert_eq!(check_type(&dir_s, "DirectoryOrCreate"), Ok(()));
        assert!(dir.is_dir());
        assert_eq!(
            std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777,
            0o755
        );
        let file = tmp.path().join("f");
        let file_s = file.to_string_lossy().into_owned();
        assert_eq!(check_type(&file_s, "FileOrCreate"), Ok(()));
        assert!(file.is_file());
        // Existing paths of the right kind pass; of the wrong kind fail.
        assert_eq!(check_type(&file_s, "FileOrCreate"), Ok(()));
        assert_eq!(
            check_type(&file_s, "DirectoryOrCreate"),
            Err(format!(
                "hostPath type check failed: {file_s} is not a directory"
            ))
        );
    }

    #[test]
    fn strict_types_report_upstreams_messages() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir_s = tmp.path().to_string_lossy().into_owned();
        let missing = tmp.path().join("missing").to_string_lossy().into_owned();
        assert_eq!(check_type(&dir_s, "Directory"), Ok(()));
        assert_eq!(check_type(&missing, ""), Ok(()));
        assert_eq!(
            check_type(&missing, "Directory"),
            Err(format!(
                "hostPath type check failed: {missing} is not a directory"
            ))
        );
        assert_eq!(
            check_type(&dir_s, "File"),
            Err(format!("hostPath type check failed: {dir_s} is not a file"))
        );
        assert_eq!(
            check_type(&dir_s, "Socket"),
            Err(format!(
                "hostPath type check failed: {dir_s} is not a socket file"
            ))
        );
        assert_eq!(
            check_type(&dir_s, "BlockDevice"),
            Err(format!(
                "hostPath type check failed: {dir_s} is not a block device"
            ))
        );
        assert_eq!(check_type("/dev/null", "CharDevice"), Ok(()));
        assert_eq!(
            check_type("/dev/null", "File"),
            Err("hostPath type check failed: /dev/null is not a file".into())
        );
        assert_eq!(
            check_type(&dir_s, "Weird"),
            Err("Weird is an invalid volume type".into())
        );
    }

    #[test]
    fn a_unix_socket_passes_the_socket_check() {
        let tmp = tempfile::tempdir().expect("tmp");
        let sock = tmp.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        assert_eq!(check_type(&sock.to_string_lossy(), "Socket"), Ok(()));
    }
}
