//! Builders of layers and image archives for the image store's tests.

use std::io::Write;

use super::archive::host_architecture;
use super::digest::sha256_digest;

/// Builds a layer tar entry by entry.
pub(crate) struct LayerBuilder {
    builder: tar::Builder<Vec<u8>>,
}

impl LayerBuilder {
    /// The modification time every entry gets.
    pub const MTIME: u64 = 1_700_000_000;

    pub fn new() -> Self {
        LayerBuilder {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn entry_with(
        mut self,
        path: &str,
        kind: tar::EntryType,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        link: Option<&str>,
    ) -> Self {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(Self::MTIME);
        header.set_size(data.len() as u64);
        match link {
            Some(target) => self
                .builder
                .append_link(&mut header, path, target)
                .expect("append link"),
            None => self
                .builder
                .append_data(&mut header, path, data)
                .expect("append entry"),
        }
        self
    }

    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.entry_with(path, tar::EntryType::Directory, b"", mode, 0, 0, None)
    }

    pub fn file(self, path: &str, data: &[u8], mode: u32) -> Self {
        self.entry_with(path, tar::EntryType::Regular, data, mode, 0, 0, None)
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry_with(
            path,
            tar::EntryType::Symlink,
            b"",
            0o777,
            0,
            0,
            Some(target),
        )
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry_with(path, tar::EntryType::Link, b"", 0o644, 0, 0, Some(target))
    }

    /// Appends an entry built by [`raw_entry`] (one the tar crate would refuse to write).
    pub fn raw(mut self, (header, data): (tar::Header, Vec<u8>)) -> Self {
        self.builder.append(&header, &data[..]).expect("append raw");
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish layer")
    }
}

/// An entry whose name (and link target) are written byte for byte, `..` included.
pub(crate) fn raw_entry(
    path: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) -> (tar::Header, Vec<u8>) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(LayerBuilder::MTIME);
    header.set_size(data.len() as u64);
    let old = header.as_old_mut();
    old.name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(link) = link {
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    (header, data.to_vec())
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// An outer archive of named files.
pub(crate) fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, &data[..])
            .expect("append");
    }
    builder.into_inner().expect("finish")
}

/// An image to put into test archives: uncompressed layer tars and a config naming them.
pub(crate) struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
}

impl TestImage {
    /// `label` makes configs (and so image ids) differ between otherwise equal images.
    pub fn new(label: &str, layers: Vec<Vec<u8>>) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = serde_json::json!({
            "architecture": host_architecture(),
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "Entrypoint": null,
                "Cmd": ["sh"],
                "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                "WorkingDir": "/work",
                "User": "",
                "Labels": {"test": label},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        TestImage {
            layers,
            config: serde_json::to_vec(&config).expect("config json"),
        }
    }

    pub fn id(&self) -> String {
        sha256_digest(&self.config)
    }

    /// A one-layer image with a marker file `etc/<label>`.
    pub fn simple(label: &str) -> Self {
        let layer = LayerBuilder::new()
            .dir("bin", 0o755)
            .file("bin/tool", b"tool", 0o755)
            .file(&format!("etc/{label}"), label.as_bytes(), 0o644)
            .build();
        Self::new(label, vec![layer])
    }
}

/// A `docker save` archive in the classic layout (`<id>.json`, `<n>/layer.tar`) holding
/// `images` with their tags.
pub(crate) fn docker_archive(images: &[(&TestImage, &[&str])]) -> Vec<u8> {
    let mut files = Vec::new();
    let mut manifest = Vec::new();
    for (n, (image, tags)) in images.iter().enumerate() {
        let hex = image.id().trim_start_matches("sha256:").to_string();
        files.push((format!("{hex}.json"), image.config.clone()));
        let mut layers = Vec::new();
        for (i, layer) in image.layers.iter().enumerate() {
            let name = format!("layer{n}-{i}/layer.tar");
            files.push((name.clone(), layer.clone()));
            layers.push(name);
        }
        manifest.push(serde_json::json!({
            "Config": format!("{hex}.json"),
            "RepoTags": tags,
            "Layers": layers,
        }));
    }
    files.push((
        "manifest.json".to_string(),
        serde_json::to_vec(&manifest).expect("manifest"),
    ));
    tar_of(&files)
}

/// How [`oci_archive`] lays the image out.
pub(crate) struct OciOptions {
    pub gzip_layers: bool,
    /// Put the image under an index with other platforms (a multi-arch image).
    pub multi_platform: bool,
    pub annotations: Vec<(&'static str, &'static str)>,
}

/// An OCI image layout archive holding `image`; returns the archive and the manifest digest.
pub(crate) fn oci_archive(image: &TestImage, options: &OciOptions) -> (Vec<u8>, String) {
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut layer_descriptors = Vec::new();
    for layer in &image.layers {
        let (blob, media_type) = if options.gzip_layers {
            (gzip(layer), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (layer.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        layer_descriptors.push(serde_json::json!({
            "mediaType": media_type,
            "digest": sha256_digest(&blob),
            "size": blob.len(),
        }));
        blobs.push(blob);
    }
    blobs.push(image.config.clone());
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": image.id(),
            "size": image.config.len(),
        },
        "layers": layer_descriptors,
    }))
    .expect("manifest");
    let manifest_digest = sha256_digest(&manifest);
    let annotations: serde_json::Map<String, serde_json::Value> = options
        .annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let top = if options.multi_platform {
        // Another platform's manifest (whose blobs are absent, as in a real single-platform
        // export) and an attestation, around ours.
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{}", "1".repeat(64)),
                    "size": 100,
                    "platform": {"architecture": "s390x", "os": "linux"},
                },
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": manifest.len(),
                    "platform": {"architecture": host_architecture(), "os": "linux"},
                },
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{}", "2".repeat(64)),
                    "size": 100,
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                    "platform": {"architecture": "unknown", "os": "unknown"},
                },
            ],
        }))
        .expect("index");
        let digest = sha256_digest(&index);
        let descriptor = serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": index.len(),
            "annotations": annotations,
        });
        blobs.push(index);
        descriptor
    } else {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": annotations,
        })
    };
    blobs.push(manifest);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            "index.json".to_string(),
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [top],
            }))
            .expect("index.json"),
        ),
    ];
    for blob in blobs {
        let digest = sha256_digest(&blob);
        files.push((format!("blobs/sha256/{}", &digest[7..]), blob));
    }
    (tar_of(&files), manifest_digest)
}
