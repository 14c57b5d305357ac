//! `volumeMounts[].subPath`: a path inside a volume, created when missing, that must stay
//! inside the volume — no `..`, no absolute path, and no symlink leading out of it (upstream
//! `kubelet_pods.go: makeMounts` and `pkg/volume/util/subpath`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Why a subPath cannot be used; the messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubPathError {
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    Backsteps(String),
    #[error("subpath {path:?} not within volume path {volume:?}")]
    Escapes { path: String, volume: String },
    /// Creating the directory failed; upstream hides the host detail from the user.
    #[error(
        "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
    )]
    Create { mount: String, container: String },
    #[error("error checking subpath {path:?}: {message}")]
    Check { path: String, message: String },
}

/// Resolves `sub_path` inside the volume at `root`, creating missing directories with the
/// root's mode, and returns the real host path. `mount`/`container` name the mount in errors.
pub fn resolve(
    root: &Path,
    sub_path: &str,
    mount: &str,
    container: &str,
) -> Result<PathBuf, SubPathError> {
    if sub_path.starts_with('/') {
        return Err(SubPathError::Absolute(sub_path.to_string()));
    }
    if Path::new(sub_path)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(SubPathError::Backsteps(sub_path.to_string()));
    }
    let check = |message: io::Error| SubPathError::Check {
        path: sub_path.to_string(),
        message: message.to_string(),
    };
    let real_root = root.canonicalize().map_err(check)?;
    let escapes = |p: &Path| SubPathError::Escapes {
        path: p.display().to_string(),
        volume: real_root.display().to_string(),
    };
    let mode = std::fs::metadata(&real_root)
        .map_err(check)?
        .permissions()
        .mode()
        & 0o7777;
    // Walk one component at a time so that every existing step is checked before anything
    // is created below it.
    let mut current = real_root.clone();
    for component in Path::new(sub_path).components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let next = current.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let real = next.canonicalize().map_err(check)?;
                if !real.starts_with(&real_root) {
                    return Err(escapes(&real));
                }
                current = real;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let create = || SubPathError::Create {
                    mount: mount.to_string(),
                    container: container.to_string(),
                };
                std::fs::create_dir(&next).map_err(|_| create())?;
                std::fs::set_permissions(&next, std::fs::Permissions::from_mode(mode))
                    .map_err(|_| create())?;
                current = next;
            }
            Err(e) => return Err(check(e)),
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_missing_subpath_is_created_inside_the_volume() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("vol");
        std::fs::create_dir(&root).expect("root");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let p = resolve(&root, "a/b", "m", "c").expect("resolved");
        assert_eq!(p, root.canonicalize().expect("canon").join("a/b"));
        assert!(p.is_dir());
        assert_eq!(
            std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o777
        );
        // An existing file is fine too.
        std::fs::write(root.join("file"), "x").expect("file");
        assert!(resolve(&root, "file", "m", "c").expect("file").is_file());
    }

    #[test]
    fn backsteps_and_absolute_paths_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert_eq!(
            resolve(tmp.path(), "../etc", "m", "c"),
            Err(SubPathError::Backsteps("../etc".into()))
        );
        assert_eq!(
            resolve(tmp.path(), "a/../../etc", "m", "c"),
            Err(SubPathError::Backsteps("a/../../etc".into()))
        );
        assert_eq!(
            resolve(tmp.path(), "/etc", "m", "c").map_err(|e| e.to_string()),
            Err("error SubPath `/etc` must not be an absolute path".into())
        );
    }

    #[test]
    fn a_symlink_out_of_the_volume_is_refused_and_nothing_is_created_outside() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("vol");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&root).expect("root");
        std::fs::create_dir(&outside).expect("outside");
        symlink(&outside, root.join("escape")).expect("symlink");
        let err = resolve(&root, "escape/new", "m", "c").expect_err("refused");
        assert!(matches!(err, SubPathError::Escapes { .. }), "{err}");
        assert!(!outside.join("new").exists());
        symlink("/etc/passwd", root.join("passwd")).expect("symlink");
        assert!(matches!(
            resolve(&root, "passwd", "m", "c"),
            Err(SubPathError::Escapes { .. })
        ));
    }

    #[test]
    fn a_symlink_within_the_volume_resolves_to_its_target() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("vol");
        std::fs::create_dir_all(root.join("..data_dir")).expect("dirs");
        std::fs::write(root.join("..data_dir/key"), "v").expect("file");
        symlink("..data_dir/key", root.join("key")).expect("symlink");
        let p = resolve(&root, "key", "m", "c").expect("resolved");
        assert_eq!(
            p,
            root.canonicalize().expect("canon").join("..data_dir/key")
        );
    }
}
