//! A `busybox:latest` image built from this machine's static busybox (`/bin/busybox`, from
//! Debian's busybox-static, which scripts/prereqs installs), written as the archives
//! `docker save` and OCI tools produce, for tests that import images and run pods in them.
//!
//! The image has one layer: `bin/busybox` and a `bin/<applet>` symlink to it for every applet
//! (`/bin/sh`, `/bin/ls`, `/bin/cat`, `/bin/sleep`, …), `etc/passwd` and `etc/group` with root
//! and nobody, `tmp/` (1777), `var/`, `root/`, and the marker file [`MARKER`]. Its config runs
//! `sh` with Docker's default `PATH`. Both formats carry the same config bytes, so they are
//! the same image (same id). Everything is deterministic: rebuilding gives the same id.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// The archive format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `docker save` (classic layout: `<id>.json`, `<layer>/layer.tar`, `manifest.json`).
    Docker,
    /// An OCI image layout (`oci-layout`, `index.json`, gzipped layer under `blobs/sha256/`).
    Oci,
}

/// Where the static busybox comes from.
pub const BUSYBOX: &str = "/bin/busybox";
/// A file only this image has, so a test can prove a container sees the image's root.
pub const MARKER: &str = "etc/nanokube-busybox-image";
/// What [`MARKER`] contains.
pub const MARKER_CONTENTS: &str = "nanokube test image built from the host's static busybox\n";
/// The image's environment.
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The reference the archives tag the image with, as `docker save busybox` does.
pub const TAG: &str = "busybox:latest";
/// [`TAG`] normalised, as the image store names it.
pub const REFERENCE: &str = "docker.io/library/busybox:latest";

/// Every entry's modification time (fixed, so the image id is stable).
const MTIME: u64 = 1_704_067_200;
const CREATED: &str = "2024-01-01T00:00:00Z";

/// Writes a busybox image archive in `format` into `dir` and returns its path.
pub fn busybox_archive(dir: &Path, format: Format) -> PathBuf {
    let layer = busybox_layer();
    let config = config_json(&sha256(&layer));
    let (name, bytes) = match format {
        Format::Docker => ("busybox-docker.tar", docker_archive(&layer, &config)),
        Format::Oci => ("busybox-oci.tar", oci_archive(&layer, &config)),
    };
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the busybox archive");
    path
}

/// The image id both archives have: the digest of the config.
pub fn busybox_image_id() -> String {
    let layer = busybox_layer();
    sha256(&config_json(&sha256(&layer)))
}

/// The applets the host's busybox provides (`busybox --list`).
pub fn applets() -> Vec<String> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("run busybox --list (is busybox-static installed? see scripts/prereqs)");
    assert!(out.status.success(), "busybox --list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The image architecture of this machine, as image platforms spell it.
fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_size(size);
    h
}

fn add_dir(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    b.append_data(&mut h, path, std::io::empty())
        .expect("append dir");
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data).expect("append file");
}

fn add_symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, path, target).expect("append symlink");
}

/// The image's single layer, an uncompressed tar.
fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("read {BUSYBOX} (install busybox-static): {e}"));
    let mut b = tar::Builder::new(Vec::new());
    add_dir(&mut b, "bin/", 0o755);
    add_file(&mut b, "bin/busybox", &busybox, 0o755);
    for applet in applets() {
        add_symlink(&mut b, &format!("bin/{applet}"), "busybox");
    }
    add_dir(&mut b, "etc/", 0o755);
    add_file(
        &mut b,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        0o644,
    );
    add_file(&mut b, "etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644);
    add_file(&mut b, MARKER, MARKER_CONTENTS.as_bytes(), 0o644);
    add_dir(&mut b, "root/", 0o700);
    add_dir(&mut b, "tmp/", 0o1777);
    add_dir(&mut b, "var/", 0o755);
    b.into_inner().expect("finish the layer")
}

fn config_json(diff_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": architecture(),
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": [PATH_ENV],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "nanokube tests: busybox from the host"}],
    }))
    .expect("config json")
}

/// An outer archive of named files, in the given order.
fn archive_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        add_file(&mut b, name, data, 0o644);
    }
    b.into_inner().expect("finish the archive")
}

fn docker_archive(layer: &[u8], config: &[u8]) -> Vec<u8> {
    let config_hex = sha256(config)[7..].to_string();
    let layer_dir = sha256(layer)[7..].to_string();
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [TAG],
        "Layers": [format!("{layer_dir}/layer.tar")],
    }]);
    let repositories = serde_json::json!({"busybox": {"latest": layer_dir}});
    archive_of(&[
        (format!("{layer_dir}/VERSION"), b"1.0".to_vec()),
        (format!("{layer_dir}/layer.tar"), layer.to_vec()),
        (format!("{config_hex}.json"), config.to_vec()),
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&manifest).expect("manifest"),
        ),
        (
            "repositories".to_string(),
            serde_json::to_vec(&repositories).expect("repositories"),
        ),
    ])
}

fn oci_archive(layer: &[u8], config: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(layer).expect("gzip the layer");
    let layer_gz = gz.finish().expect("gzip the layer");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256(&layer_gz),
            "size": layer_gz.len(),
        }],
    }))
    .expect("manifest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": REFERENCE,
                "org.opencontainers.image.ref.name": "latest",
            },
            "platform": {"architecture": architecture(), "os": "linux"},
        }],
    }))
    .expect("index");
    let blob = |bytes: &[u8]| {
        (
            format!("blobs/sha256/{}", &sha256(bytes)[7..]),
            bytes.to_vec(),
        )
    };
    archive_of(&[
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_string(), index),
        blob(&manifest),
        blob(config),
        blob(&layer_gz),
    ])
}
