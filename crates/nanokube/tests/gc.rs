//! Garbage collection through ownerReferences with the three propagation policies kubectl
//! offers (`--cascade=background|foreground|orphan`).

mod support;

use std::time::Duration;
use support::{TestCluster, eventually};

/// Creates ConfigMap `owner` and a dependent `dep` that points at it; returns the owner's UID.
fn owner_and_dependent(c: &TestCluster, block: bool) -> String {
    c.kubectl(&["create", "configmap", "owner"]).ok();
    let uid = c
        .kubectl(&["get", "cm", "owner", "-o", "jsonpath={.metadata.uid}"])
        .ok()
        .stdout;
    let dep = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dep\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {uid}\n    blockOwnerDeletion: {block}\n"
    );
    let f = c.file("dep.yaml", &dep);
    c.kubectl(&["create", "-f", &f]).ok();
    uid
}

fn exists(c: &TestCluster, name: &str) -> bool {
    c.kubectl(&["get", "cm", name]).status == 0
}

#[test]
fn background_deletion_removes_dependents_afterwards() {
    let c = TestCluster::start();
    owner_and_dependent(&c, false);
    c.kubectl(&["delete", "cm", "owner"]).ok();
    assert!(
        eventually(Duration::from_secs(30), || !exists(&c, "dep")),
        "dependent collected"
    );
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_reference() {
    let c = TestCluster::start();
    owner_and_dependent(&c, false);
    c.kubectl(&["delete", "cm", "owner", "--cascade=orphan"])
        .ok();
    assert!(
        eventually(Duration::from_secs(30), || !exists(&c, "owner")),
        "owner gone"
    );
    assert!(exists(&c, "dep"), "dependent kept");
    let refs = c
        .kubectl(&[
            "get",
            "cm",
            "dep",
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ])
        .ok();
    assert!(
        refs.stdout.trim().is_empty() || refs.stdout.trim() == "[]",
        "{}",
        refs.stdout
    );
}

#[test]
fn foreground_deletion_removes_blocking_dependents_first() {
    let c = TestCluster::start();
    owner_and_dependent(&c, true);
    // kubectl waits for the owner to disappear, which it may only do after its dependent.
    c.kubectl(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--timeout=60s",
    ])
    .ok();
    assert!(!exists(&c, "owner"));
    assert!(!exists(&c, "dep"), "the blocking dependent went first");
}
