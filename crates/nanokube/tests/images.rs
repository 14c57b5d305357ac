//! `nanokube image import|ls` against the data directory of a running server: archives as
//! `docker save` and OCI tools write them load into the local image store, with progress and
//! `docker load`'s output, are listed as `crictl images` lists them, load again without
//! change, and bad files fail with a clear message.

mod support;

use std::path::Path;
use std::process::Command;

use support::busybox::{self, Format, busybox_archive, busybox_image_id};
use support::{Run, TestCluster};

/// Runs the nanokube binary with `args`.
fn nanokube(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_nanokube"))
        .args(args)
        .output()
        .expect("run nanokube");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn import(data: &Path, archive: &Path) -> Run {
    nanokube(&[
        "image",
        "import",
        archive.to_str().expect("utf-8 path"),
        "--data-dir",
        data.to_str().expect("utf-8 path"),
    ])
}

fn ls(data: &Path) -> Run {
    nanokube(&[
        "image",
        "ls",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
    ])
}

/// The rows of `image ls` (header excluded), split into columns.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|line| {
            // IMAGE, TAG, IMAGE ID, SIZE: none of them contains a space.
            line.split_whitespace().map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn busybox_archives_of_both_formats_import_into_a_running_server_and_reimport_idempotently() {
    let cluster = TestCluster::start();
    let data = cluster.data_dir();
    let docker = busybox_archive(cluster.dir.path(), Format::Docker);
    let oci = busybox_archive(cluster.dir.path(), Format::Oci);
    let id = busybox_image_id();
    let short = &id["sha256:".len().."sha256:".len() + 13];

    // Nothing imported yet: only the header.
    let empty = ls(&data).ok();
    assert_eq!(
        support::headers(&empty.stdout),
        ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    );
    assert!(rows(&empty.stdout).is_empty(), "{}", empty.stdout);

    let first = import(&data, &docker).ok();
    assert_eq!(
        first.stdout,
        format!("Loaded image: {}\n", busybox::REFERENCE)
    );
    assert!(
        first
            .stderr
            .contains("Reading docker save archive (1 image)"),
        "{}",
        first.stderr
    );
    let progress: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("Loading layer "))
        .collect();
    assert_eq!(progress.len(), 1, "one line per layer: {}", first.stderr);
    assert!(
        progress[0].starts_with("Loading layer 1/1 sha256:") && progress[0].ends_with(" MiB)"),
        "{}",
        progress[0]
    );

    let listed = ls(&data).ok();
    let table = rows(&listed.stdout);
    assert_eq!(table.len(), 1, "{}", listed.stdout);
    assert_eq!(table[0][0], "docker.io/library/busybox");
    assert_eq!(table[0][1], "latest");
    assert_eq!(table[0][2], short, "crictl shows 13 characters of the id");
    assert!(
        table[0][3].ends_with("MB"),
        "busybox is megabytes: {}",
        listed.stdout
    );
    // Columns line up as crictl's do: IMAGE is padded to at least 20 characters + 3.
    let header = listed.stdout.lines().next().expect("header");
    let tag_column = header.find("TAG").expect("TAG column");
    assert_eq!(
        listed.stdout.lines().nth(1).expect("row")[tag_column..]
            .split_whitespace()
            .next(),
        Some("latest")
    );

    // The store holds the image's files, unpacked: the marker, busybox and its applets.
    let rootfs = data
        .join("images")
        .join(&id["sha256:".len()..])
        .join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join(busybox::MARKER)).expect("marker"),
        busybox::MARKER_CONTENTS
    );
    for applet in ["sh", "ls", "cat", "sleep"] {
        assert_eq!(
            std::fs::read_link(rootfs.join("bin").join(applet)).expect("applet link"),
            Path::new("busybox")
        );
    }

    // Again, and from the OCI layout of the same image: tagged again, nothing unpacked.
    for archive in [&docker, &oci] {
        let again = import(&data, archive).ok();
        assert_eq!(
            again.stdout,
            format!("Loaded image: {}\n", busybox::REFERENCE)
        );
        assert!(
            !again.stderr.contains("Loading layer"),
            "nothing to unpack again: {}",
            again.stderr
        );
        assert!(
            again.stderr.contains(&format!(
                "Image sha256:{}… is already in the store",
                &short[..12]
            )),
            "{}",
            again.stderr
        );
    }
    let after = ls(&data).ok();
    assert_eq!(after.stdout, listed.stdout, "re-importing changes nothing");

    // The server kept serving throughout.
    cluster.kubectl(&["get", "--raw", "/readyz"]).ok();
}

#[test]
fn an_oci_layout_loads_on_its_own_with_gzipped_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let oci = busybox_archive(tmp.path(), Format::Oci);
    let run = import(&data, &oci).ok();
    assert_eq!(
        run.stdout,
        format!("Loaded image: {}\n", busybox::REFERENCE)
    );
    assert!(
        run.stderr
            .contains("Reading OCI image layout archive (1 image)")
            && run.stderr.contains("Loading layer 1/1 sha256:"),
        "{}",
        run.stderr
    );
    let table = rows(&ls(&data).ok().stdout);
    assert_eq!(table[0][..2], ["docker.io/library/busybox", "latest"]);
    assert!(
        data.join("images")
            .join(&busybox_image_id()["sha256:".len()..])
            .join("rootfs/bin/busybox")
            .is_file()
    );
}

#[test]
fn garbage_and_missing_files_fail_with_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    let garbage = tmp.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x5au8; 10_000]).expect("write garbage");
    let run = import(&data, &garbage).fails();
    assert!(
        run.stderr.contains("importing") && run.stderr.contains("garbage.tar"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not an image archive"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let missing = tmp.path().join("missing.tar");
    let run = import(&data, &missing).fails();
    assert!(
        run.stderr.contains("missing.tar") && run.stderr.contains("No such file or directory"),
        "{}",
        run.stderr
    );

    // A tar that is not an image.
    let text = tmp.path().join("text.tar");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "notes.txt", &b"hi\n"[..])
        .expect("append");
    std::fs::write(&text, builder.into_inner().expect("tar")).expect("write tar");
    let run = import(&data, &text).fails();
    assert!(
        run.stderr
            .contains("neither a manifest.json (docker save) nor an index.json"),
        "{}",
        run.stderr
    );

    // Nothing was stored, and no scratch directory was left behind.
    assert!(rows(&ls(&data).ok().stdout).is_empty());
    let leftovers: Vec<String> = std::fs::read_dir(data.join("images"))
        .map(|d| {
            d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".lock" && n != "index.json")
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn image_help_describes_the_subcommands_and_their_flags() {
    let help = nanokube(&["image", "--help"]).ok().stdout;
    assert!(help.contains("import") && help.contains("ls"), "{help}");
    let help = nanokube(&["image", "import", "--help"]).ok().stdout;
    for expected in [
        "<FILE>",
        "--name <REF>",
        "--data-dir",
        "docker save",
        "OCI image layout",
    ] {
        assert!(
            help.contains(expected),
            "{expected:?} missing from:\n{help}"
        );
    }
    let run = nanokube(&["image", "import"]).fails();
    assert!(run.stderr.contains("<FILE>"), "{}", run.stderr);
}
