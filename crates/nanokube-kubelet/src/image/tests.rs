use super::testutil::*;
use super::*;

struct Fixture {
    tmp: tempfile::TempDir,
    store: ImageStore,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::in_data_dir(tmp.path());
        Fixture { tmp, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.tmp.path().join(name);
        fs::write(&path, bytes).expect("write archive");
        path
    }

    fn import(
        &self,
        archive: &Path,
        name: Option<&str>,
    ) -> Result<(Vec<String>, Vec<Progress>), ImageError> {
        let mut events = Vec::new();
        let refs = self.store.import(archive, name, &mut |p| events.push(p))?;
        Ok((refs, events))
    }

    /// The image directories in the store.
    fn image_dirs(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.store.dir())
            .map(|d| {
                d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .filter(|n| is_identifier(n))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Entries of the store directory that are neither images nor the index and lock.
    fn leftovers(&self) -> Vec<String> {
        fs::read_dir(self.store.dir())
            .map(|d| {
                d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .filter(|n| !is_identifier(n) && n != INDEX_FILE && n != LOCK_FILE)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn layer_events(events: &[Progress]) -> Vec<(usize, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Progress::Layer { index, count, .. } => Some((*index, *count)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_docker_save_archive_is_unpacked_tagged_and_resolvable() {
    let f = Fixture::new();
    let lower = LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", b"elf", 0o755)
        .symlink("bin/sh", "busybox")
        .file("etc/old", b"old", 0o644)
        .build();
    let upper = LayerBuilder::new()
        .file("etc/.wh.old", b"", 0o644)
        .file("etc/new", b"new", 0o644)
        .build();
    let image = TestImage::new("docker", vec![lower, upper]);
    let archive = f.write(
        "busybox.tar",
        &docker_archive(&[(&image, &["busybox:latest", "busybox:1.36"])]),
    );

    let (refs, events) = f.import(&archive, None).expect("import");
    assert_eq!(
        refs,
        [
            "docker.io/library/busybox:1.36",
            "docker.io/library/busybox:latest"
        ]
    );
    assert_eq!(
        events[0],
        Progress::Archive {
            format: ArchiveFormat::DockerSave,
            images: 1
        }
    );
    assert_eq!(layer_events(&events), [(1, 2), (2, 2)]);

    let found = f
        .store
        .resolve("busybox")
        .expect("resolve")
        .expect("present");
    assert_eq!(found.id, image.id());
    assert_eq!(found.reference, "docker.io/library/busybox:latest");
    assert_eq!(found.config.cmd, ["sh"]);
    assert_eq!(found.config.entrypoint, Vec::<String>::new());
    assert_eq!(found.config.env, ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    assert_eq!(found.config.working_dir, "/work");
    assert_eq!(fs::read(found.rootfs.join("bin/busybox")).unwrap(), b"elf");
    assert_eq!(fs::read(found.rootfs.join("etc/new")).unwrap(), b"new");
    assert!(
        !found.rootfs.join("etc/old").exists(),
        "the upper layer whited it out"
    );
    // The stored config is the archive's, byte for byte: its digest is the id.
    let config = fs::read(found.rootfs.parent().unwrap().join(CONFIG_FILE)).unwrap();
    assert_eq!(digest::sha256_digest(&config), found.id);

    assert_eq!(
        f.store
            .resolve("docker.io/library/busybox:1.36")
            .unwrap()
            .unwrap()
            .id,
        image.id()
    );
    assert!(f.store.resolve("busybox:1.35").unwrap().is_none());
    assert!(f.store.resolve("alpine").unwrap().is_none());
    assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());
}

#[test]
fn an_oci_layout_with_a_multi_platform_index_yields_the_host_platform() {
    let f = Fixture::new();
    let image = TestImage::simple("oci");
    let (bytes, manifest_digest) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: true,
            multi_platform: true,
            annotations: vec![
                (
                    "io.containerd.image.name",
                    "docker.io/library/busybox:latest",
                ),
                ("org.opencontainers.image.ref.name", "latest"),
            ],
        },
    );
    let archive = f.write("oci.tar", &bytes);
    let (refs, events) = f.import(&archive, None).expect("import");
    assert_eq!(refs, ["docker.io/library/busybox:latest"]);
    assert_eq!(
        events[0],
        Progress::Archive {
            format: ArchiveFormat::OciLayout,
            images: 1
        }
    );
    match &events[1] {
        Progress::Layer { digest, size, .. } => {
            assert!(digest.starts_with("sha256:"));
            assert!(*size > 0);
        }
        other => panic!("expected a layer, got {other:?}"),
    }
    let found = f.store.resolve("busybox:latest").unwrap().unwrap();
    assert_eq!(found.id, image.id());
    assert_eq!(fs::read(found.rootfs.join("etc/oci")).unwrap(), b"oci");

    // The manifest digest names it too, with any tag beside it.
    let by_digest = f
        .store
        .resolve(&format!("busybox@{manifest_digest}"))
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.id, image.id());
    assert_eq!(
        by_digest.reference,
        format!("docker.io/library/busybox@{manifest_digest}")
    );
    assert!(
        f.store
            .resolve(&format!("other@{manifest_digest}"))
            .unwrap()
            .is_none()
    );
    // And so does its id.
    assert_eq!(
        f.store.resolve(&image.id()).unwrap().unwrap().id,
        image.id()
    );
}

#[test]
fn an_index_without_the_host_platform_is_refused_with_the_platforms_it_has() {
    let f = Fixture::new();
    let image = TestImage::simple("arm");
    let (bytes, _) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: false,
            multi_platform: true,
            annotations: vec![("org.opencontainers.image.ref.name", "busybox:1")],
        },
    );
    // Rename our platform away.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains(archive::host_architecture()));
    let mut files = Vec::new();
    let mut outer = tar::Archive::new(&bytes[..]);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.push((name, data));
    }
    // Rewrite the nested index (the blob that lists platforms) and re-point index.json at it.
    let (pos, old_index) = files
        .iter()
        .enumerate()
        .find(|(_, (_, d))| String::from_utf8_lossy(d).contains("\"s390x\""))
        .map(|(i, (_, d))| (i, d.clone()))
        .unwrap();
    let new_index = String::from_utf8(old_index.clone())
        .unwrap()
        .replace(
            &format!("\"architecture\":\"{}\"", archive::host_architecture()),
            "\"architecture\":\"riscv64\"",
        )
        .into_bytes();
    let old_digest = digest::sha256_digest(&old_index);
    let new_digest = digest::sha256_digest(&new_index);
    files[pos] = (
        format!("blobs/sha256/{}", &new_digest[7..]),
        new_index.clone(),
    );
    for (name, data) in files.iter_mut() {
        if name == "index.json" {
            *data = String::from_utf8(data.clone())
                .unwrap()
                .replace(&old_digest, &new_digest)
                .replace(
                    &format!("\"size\":{}", old_index.len()),
                    &format!("\"size\":{}", new_index.len()),
                )
                .into_bytes();
        }
    }
    let archive = f.write("arm.tar", &tar_of(&files));
    let err = f.import(&archive, None).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ImageError::NoMatchingPlatform { .. }),
        "{text}"
    );
    assert!(
        text.contains("linux/s390x") && text.contains("linux/riscv64"),
        "{text}"
    );
    assert!(
        !text.contains("unknown"),
        "attestations are not images: {text}"
    );
}

#[test]
fn an_archive_gzipped_as_a_whole_is_read() {
    let f = Fixture::new();
    let image = TestImage::simple("gz");
    let archive = f.write("img.tar.gz", &gzip(&docker_archive(&[(&image, &["gz:1"])])));
    let (refs, _) = f.import(&archive, None).expect("import");
    assert_eq!(refs, ["docker.io/library/gz:1"]);
}

#[test]
fn reimporting_an_image_is_idempotent() {
    let f = Fixture::new();
    let image = TestImage::simple("same");
    let archive = f.write("a.tar", &docker_archive(&[(&image, &["busybox:latest"])]));
    let (first, _) = f.import(&archive, None).unwrap();
    let index_before = fs::read(f.store.dir().join(INDEX_FILE)).unwrap();
    let marker = f
        .store
        .resolve("busybox")
        .unwrap()
        .unwrap()
        .rootfs
        .join("etc/same");
    let inode = fs::metadata(&marker).unwrap().ino();

    let (second, events) = f.import(&archive, None).unwrap();
    assert_eq!(first, second);
    assert!(
        layer_events(&events).is_empty(),
        "nothing unpacked again: {events:?}"
    );
    assert!(events.contains(&Progress::AlreadyPresent { id: image.id() }));
    assert_eq!(
        fs::read(f.store.dir().join(INDEX_FILE)).unwrap(),
        index_before
    );
    assert_eq!(
        fs::metadata(&marker).unwrap().ino(),
        inode,
        "the rootfs was left alone"
    );
    assert_eq!(f.image_dirs().len(), 1);
    assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());

    // The same image from an OCI layout (same config bytes) is the same image.
    let (oci, _) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: true,
            multi_platform: false,
            annotations: vec![(
                "io.containerd.image.name",
                "docker.io/library/busybox:latest",
            )],
        },
    );
    let (_, events) = f.import(&f.write("b.tar", &oci), None).unwrap();
    assert!(events.contains(&Progress::AlreadyPresent { id: image.id() }));
    assert_eq!(f.image_dirs().len(), 1);
}

#[test]
fn a_moved_tag_keeps_the_old_image_until_no_tag_names_it() {
    let f = Fixture::new();
    let a = TestImage::simple("a");
    let b = TestImage::simple("b");
    let c = TestImage::simple("c");
    let hex = |i: &TestImage| i.id()[7..].to_string();
    f.import(
        &f.write("a.tar", &docker_archive(&[(&a, &["app:1", "app:latest"])])),
        None,
    )
    .unwrap();
    f.import(
        &f.write("b.tar", &docker_archive(&[(&b, &["app:latest"])])),
        None,
    )
    .unwrap();
    assert_eq!(f.store.resolve("app").unwrap().unwrap().id, b.id());
    assert_eq!(f.store.resolve("app:1").unwrap().unwrap().id, a.id());
    let mut both = vec![hex(&a), hex(&b)];
    both.sort();
    assert_eq!(f.image_dirs(), both, "app:1 still names the old image");

    f.import(
        &f.write("c.tar", &docker_archive(&[(&c, &["app:1"])])),
        None,
    )
    .unwrap();
    let mut now = vec![hex(&b), hex(&c)];
    now.sort();
    assert_eq!(f.image_dirs(), now, "no tag names the first image any more");
    assert!(f.store.resolve(&a.id()).unwrap().is_none());
    assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());
}

#[test]
fn listing_shows_one_line_per_tag_with_repository_tag_id_and_size() {
    let f = Fixture::new();
    assert!(
        f.store.list().unwrap().is_empty(),
        "a store never imported into is empty"
    );
    let image = TestImage::simple("ls");
    f.import(
        &f.write(
            "a.tar",
            &docker_archive(&[(
                &image,
                &["busybox:latest", "registry.local:5000/team/app:2"],
            )]),
        ),
        None,
    )
    .unwrap();
    let list = f.store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].repository, "docker.io/library/busybox");
    assert_eq!(list[0].tag, "latest");
    assert_eq!(list[0].id, image.id());
    // bin/tool (4 bytes) and etc/ls (2 bytes).
    assert_eq!(list[0].size, 6);
    assert_eq!(list[1].reference, "registry.local:5000/team/app:2");
    assert_eq!(list[1].repository, "registry.local:5000/team/app");
    assert_eq!(list[1].tag, "2");
}

#[test]
fn an_oci_archive_named_only_by_a_tag_needs_a_name() {
    let f = Fixture::new();
    let image = TestImage::simple("tagonly");
    let (bytes, _) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: false,
            multi_platform: false,
            annotations: vec![("org.opencontainers.image.ref.name", "1.36")],
        },
    );
    let archive = f.write("a.tar", &bytes);
    let err = f.import(&archive, None).unwrap_err();
    assert!(matches!(err, ImageError::NoName(_)), "{err}");
    assert!(err.to_string().contains("--name"), "{err}");
    assert!(f.image_dirs().is_empty(), "nothing was stored");

    let (refs, _) = f.import(&archive, Some("busybox")).unwrap();
    assert_eq!(
        refs,
        ["docker.io/library/busybox:1.36"],
        "the archive's tag is kept"
    );
    let (refs, _) = f.import(&archive, Some("example.com/tools:v2")).unwrap();
    assert_eq!(refs, ["example.com/tools:v2"]);
}

#[test]
fn an_unnamed_archive_is_refused_unless_named() {
    let f = Fixture::new();
    let image = TestImage::simple("anon");
    let archive = f.write("a.tar", &docker_archive(&[(&image, &[])]));
    let err = f.import(&archive, None).unwrap_err();
    assert!(err.to_string().contains("does not name its image"), "{err}");
    let (refs, _) = f.import(&archive, Some("anon")).unwrap();
    assert_eq!(refs, ["docker.io/library/anon:latest"]);
    let err = f.import(&archive, Some("Bad Name")).unwrap_err();
    assert!(matches!(err, ImageError::InvalidReference { .. }), "{err}");
}

#[test]
fn a_layer_whose_digest_does_not_match_is_refused_and_nothing_is_stored() {
    let f = Fixture::new();
    let image = TestImage::simple("tampered");
    let (bytes, _) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: false,
            multi_platform: false,
            annotations: vec![("io.containerd.image.name", "tampered:1")],
        },
    );
    // Swap the layer blob's contents for another tar of the same size.
    let tampered_layer = TestImage::simple("tamperex").layers.remove(0);
    assert_eq!(tampered_layer.len(), image.layers[0].len());
    let layer_name = format!(
        "blobs/sha256/{}",
        &digest::sha256_digest(&image.layers[0])[7..]
    );
    let mut files = Vec::new();
    let mut outer = tar::Archive::new(&bytes[..]);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if name == layer_name {
            data = tampered_layer.clone();
        }
        files.push((name, data));
    }
    let archive = f.write("t.tar", &tar_of(&files));
    let err = f.import(&archive, None).unwrap_err();
    assert!(matches!(err, ImageError::Layer { .. }), "{err}");
    assert!(err.to_string().contains("is corrupt"), "{err}");
    assert!(f.image_dirs().is_empty());
    assert!(f.store.list().unwrap().is_empty());
    assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());
}

#[test]
fn a_docker_layer_that_does_not_match_its_diff_id_is_refused() {
    let f = Fixture::new();
    let mut image = TestImage::simple("diff");
    image.layers[0] = TestImage::simple("difx").layers.remove(0);
    let archive = f.write("d.tar", &docker_archive(&[(&image, &["diff:1"])]));
    let err = f.import(&archive, None).unwrap_err();
    assert!(err.to_string().contains("rootfs.diff_ids"), "{err}");
    assert!(f.image_dirs().is_empty());
}

#[test]
fn a_tampered_config_is_refused() {
    let f = Fixture::new();
    let image = TestImage::simple("cfg");
    let hex = &image.id()[7..];
    let mut files = vec![(format!("{hex}.json"), image.config.clone())];
    files[0].1.push(b' ');
    files.push(("l/layer.tar".to_string(), image.layers[0].clone()));
    files.push((
        "manifest.json".to_string(),
        format!(r#"[{{"Config":"{hex}.json","RepoTags":["cfg:1"],"Layers":["l/layer.tar"]}}]"#)
            .into_bytes(),
    ));
    let err = f
        .import(&f.write("c.tar", &tar_of(&files)), None)
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn files_that_are_not_image_archives_get_clear_errors() {
    let f = Fixture::new();
    let garbage = f.write("garbage.tar", &[0x42u8; 4096]);
    let err = f.import(&garbage, None).unwrap_err();
    assert!(matches!(err, ImageError::NotAnImageArchive(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "not an image archive: it is neither a tar archive nor a gzip-compressed one"
    );

    let image = TestImage::simple("cut");
    let whole = docker_archive(&[(&image, &["cut:1"])]);
    let err = f
        .import(&f.write("cut.tar", &whole[..whole.len() / 2]), None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::NotAnImageArchive(_) | ImageError::Archive { .. }
        ),
        "{err}"
    );

    let plain = f.write(
        "plain.tar",
        &tar_of(&[("hello.txt".to_string(), b"hi".to_vec())]),
    );
    let err = f.import(&plain, None).unwrap_err();
    assert!(err.to_string().contains("neither a manifest.json"), "{err}");

    let empty = f.write("empty.tar", b"");
    assert!(f.import(&empty, None).is_err());

    let zstd = f.write("x.tar.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]);
    let err = f.import(&zstd, None).unwrap_err();
    assert!(err.to_string().contains("zstd"), "{err}");

    let missing = f.tmp.path().join("missing.tar");
    let err = f.import(&missing, None).unwrap_err();
    assert!(
        matches!(&err, ImageError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(err.to_string().contains("missing.tar"), "{err}");
    assert!(f.leftovers().is_empty(), "{:?}", f.leftovers());
}

#[test]
fn docker_archives_with_layer_links_and_several_images_are_read() {
    // Older Docker writes a layer shared by two images once, and a symlink for the second.
    let f = Fixture::new();
    let base = LayerBuilder::new().file("etc/base", b"base", 0o644).build();
    let one = TestImage::new("one", vec![base.clone()]);
    let two = TestImage::new("two", vec![base]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        builder.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{}.json", &one.id()[7..]), &one.config);
    add(&format!("{}.json", &two.id()[7..]), &two.config);
    add("aaa/layer.tar", &one.layers[0]);
    let manifest = serde_json::json!([
        {"Config": format!("{}.json", &one.id()[7..]), "RepoTags": ["one:1"], "Layers": ["aaa/layer.tar"]},
        {"Config": format!("{}.json", &two.id()[7..]), "RepoTags": ["two:1"], "Layers": ["bbb/layer.tar"]},
    ]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    builder
        .append_link(&mut h, "bbb/layer.tar", "../aaa/layer.tar")
        .unwrap();
    let bytes = builder.into_inner().unwrap();

    let (refs, events) = f.import(&f.write("two.tar", &bytes), None).unwrap();
    assert_eq!(refs, ["docker.io/library/one:1", "docker.io/library/two:1"]);
    assert_eq!(
        events[0],
        Progress::Archive {
            format: ArchiveFormat::DockerSave,
            images: 2
        }
    );
    let two_found = f.store.resolve("two:1").unwrap().unwrap();
    assert_eq!(
        fs::read(two_found.rootfs.join("etc/base")).unwrap(),
        b"base"
    );

    let err = f
        .import(&f.write("two-again.tar", &bytes), Some("x"))
        .unwrap_err();
    assert!(err.to_string().contains("holds 2"), "{err}");
}

#[test]
fn a_layer_that_escapes_the_root_fails_the_import_and_names_the_layer() {
    let f = Fixture::new();
    let evil = LayerBuilder::new()
        .raw(raw_entry("../../evil", tar::EntryType::Regular, b"x", None))
        .build();
    let image = TestImage::new("evil", vec![evil]);
    let err = f
        .import(
            &f.write("e.tar", &docker_archive(&[(&image, &["evil:1"])])),
            None,
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("layer 1 (sha256:"), "{text}");
    assert!(text.contains("`..`"), "{text}");
    assert!(!f.tmp.path().join("evil").exists());
    assert!(f.image_dirs().is_empty());
}

#[test]
fn the_index_is_replaced_whole_so_a_concurrent_reader_never_fails() {
    let f = Fixture::new();
    let a = TestImage::simple("ra");
    let b = TestImage::simple("rb");
    let archive_a = f.write(
        "a.tar",
        &docker_archive(&[(&a, &["app:latest"]), (&b, &["keep:1"])]),
    );
    let archive_b = f.write("b.tar", &docker_archive(&[(&b, &["app:latest"])]));
    f.import(&archive_a, None).unwrap();
    let store = f.store.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let image = store.resolve("app").expect("resolve never fails");
                let image = image.expect("app always names an image");
                assert!(image.id == a.id() || image.id == b.id());
                store.list().expect("list never fails");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..10 {
        let archive = if i % 2 == 0 { &archive_b } else { &archive_a };
        f.import(archive, None).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().expect("reader") > 0);
}

#[test]
fn resolving_in_a_store_that_does_not_exist_finds_nothing() {
    let store = ImageStore::open("/nonexistent/nanokube/images");
    assert!(store.resolve("busybox").unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.resolve("Not Valid").unwrap_err(),
        ImageError::InvalidReference { .. }
    ));
}

#[test]
fn command_follows_the_kubernetes_rule() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let config = ImageConfig {
        entrypoint: s(&["/entry"]),
        cmd: s(&["--default"]),
        ..Default::default()
    };
    // Neither: Entrypoint + Cmd.
    assert_eq!(command_for(&config, &[], &[]), s(&["/entry", "--default"]));
    // Only args: Entrypoint + args.
    assert_eq!(
        command_for(&config, &[], &s(&["--x"])),
        s(&["/entry", "--x"])
    );
    // Command: command + args, the image's Entrypoint and Cmd ignored.
    assert_eq!(
        command_for(&config, &s(&["/bin/sleep"]), &[]),
        s(&["/bin/sleep"])
    );
    assert_eq!(
        command_for(&config, &s(&["/bin/sleep"]), &s(&["3"])),
        s(&["/bin/sleep", "3"])
    );
    // No Entrypoint (busybox): Cmd, or args instead of it.
    let busybox = ImageConfig {
        cmd: s(&["sh"]),
        ..Default::default()
    };
    assert_eq!(command_for(&busybox, &[], &[]), s(&["sh"]));
    assert_eq!(
        command_for(&busybox, &[], &s(&["echo", "hi"])),
        s(&["echo", "hi"])
    );
    // An Entrypoint of [""] is none.
    let blank = ImageConfig {
        entrypoint: s(&[""]),
        cmd: s(&["run"]),
        ..Default::default()
    };
    assert_eq!(command_for(&blank, &[], &[]), s(&["run"]));
    assert!(command_for(&ImageConfig::default(), &[], &[]).is_empty());
}

#[test]
fn null_config_fields_read_as_empty() {
    let config = parse_config(
        br#"{"architecture":"amd64","config":{"Entrypoint":null,"Cmd":null,"Env":null,"WorkingDir":null}}"#,
    )
    .unwrap();
    assert_eq!(config, ImageConfig::default());
    assert_eq!(
        parse_config(br#"{"os":"linux"}"#).unwrap(),
        ImageConfig::default()
    );
}

#[test]
fn sizes_and_ids_print_as_crictl_and_docker_show_them() {
    assert_eq!(human_size(0), "0B");
    assert_eq!(human_size(999), "999B");
    assert_eq!(human_size(4_410), "4.41kB");
    assert_eq!(human_size(2_155_880), "2.16MB");
    assert_eq!(human_size(12_300_000), "12.3MB");
    assert_eq!(human_size(2_000_000), "2MB");
    assert_eq!(human_size(123_456_789), "123MB");
    assert_eq!(
        short_id("sha256:6fd955f66c231c1a946653170d096a28ac2b2052a02080c0b84ec082a07f7d12"),
        "6fd955f66c231"
    );
    let p = Progress::Layer {
        index: 2,
        count: 3,
        digest: "sha256:abcd1234ef567890abcd1234ef567890abcd1234ef567890abcd1234ef567890".into(),
        size: 2_000_000,
    };
    assert_eq!(
        p.to_string(),
        "Loading layer 2/3 sha256:abcd1234… (1.9 MiB)"
    );
    assert_eq!(binary_size(512), "512 B");
}

#[test]
fn a_docker_25_archive_with_blobs_is_read_through_its_manifest_json_and_verified() {
    // Docker ≥ 25 writes an OCI layout and a manifest.json naming the same blobs.
    let f = Fixture::new();
    let image = TestImage::simple("d25");
    let (oci, _) = oci_archive(
        &image,
        &OciOptions {
            gzip_layers: false,
            multi_platform: false,
            annotations: vec![("io.containerd.image.name", "docker.io/library/d25:latest")],
        },
    );
    let mut files = Vec::new();
    let mut outer = tar::Archive::new(&oci[..]);
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        files.push((name, data));
    }
    let config = format!("blobs/sha256/{}", &image.id()[7..]);
    let layer = format!(
        "blobs/sha256/{}",
        &digest::sha256_digest(&image.layers[0])[7..]
    );
    let manifest =
        serde_json::json!([{"Config": config, "RepoTags": ["d25:1"], "Layers": [layer]}]);
    files.push((
        "manifest.json".to_string(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let (refs, events) = f
        .import(&f.write("d25.tar", &tar_of(&files)), None)
        .unwrap();
    assert_eq!(
        refs,
        ["docker.io/library/d25:1"],
        "RepoTags win over annotations"
    );
    assert_eq!(
        events[0],
        Progress::Archive {
            format: ArchiveFormat::DockerSave,
            images: 1
        }
    );
    assert!(events.contains(&Progress::Layer {
        index: 1,
        count: 1,
        digest: digest::sha256_digest(&image.layers[0]),
        size: image.layers[0].len() as u64,
    }));

    // The layer's path names its digest, so different contents are refused.
    for (name, data) in files.iter_mut() {
        if *name == layer {
            let last = data.len() - 1;
            data[last] ^= 1;
        }
    }
    let f2 = Fixture::new();
    let err = f2
        .import(&f2.write("bad.tar", &tar_of(&files)), None)
        .unwrap_err();
    assert!(err.to_string().contains("is corrupt"), "{err}");
}
