//! The storage layer's shared pieces: the listing cache ingest writes beside each charm base,
//! and flattening runtime layers that hold directories a hook made unreadable. The tests that
//! depend on file permissions rerun as uid 65534 (root reads everything anyway).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hookbox::store::StateRoot;
use hookbox::store::charms::CharmStore;
use hookbox::store::digest::CharmDigest;
use hookbox::store::merge::{
    Change, LISTING_CACHE_FILE, Listing, MergeError, MergeOutcome, flatten_layers, materialize,
    merge,
};
use hookbox::store::squash::OverlayXattrs;

use crate::ingest::{TarBuilder, gz, ingest_json, write_source};
use crate::util::TestEnv;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn ingest_caches_the_listing_beside_the_tree_and_a_tampered_cache_is_rejected() {
    let env = TestEnv::new();
    // Inside a wrapper directory: the cache lists the charm as stored, without it.
    let mut tar = TarBuilder::new();
    tar.dir("wrap", 0o755)
        .file("wrap/metadata.yaml", 0o644, b"name: cached\nsummary: c\n")
        .file("wrap/hooks/install", 0o755, b"#!/bin/sh\n")
        .file("wrap/lib/data.txt", 0o600, b"data")
        .symlink("wrap/hooks/start", "install");
    let source = write_source(&env, "cached.tgz", &gz(&tar.finish()));
    let report = ingest_json(&env, &source);
    let digest = CharmDigest::parse(report["digest"].as_str().unwrap()).unwrap();
    let store = CharmStore::new(&StateRoot::at(env.root()));
    let cache = store.entry_path(&digest).join(LISTING_CACHE_FILE);
    assert_eq!(cache, store.listing_path(&digest));
    assert_eq!(mode(&cache), 0o444, "the cache is as read-only as the tree");

    let from_tree = Listing::read_tree(&store.tree_path(&digest)).unwrap();
    assert_eq!(from_tree.digest(), digest);
    let cached = Listing::load(&cache, &digest)
        .unwrap()
        .expect("ingest wrote it");
    assert_eq!(cached, from_tree);
    assert_eq!(store.listing(&digest).unwrap(), from_tree);
    assert!(cached.get(b"lib/data.txt").is_some() && cached.get(b"wrap").is_none());

    // One flipped byte (in the last entry's content hash): still a well-formed listing, but
    // not the listing of this charm.
    let mut bytes = fs::read(&cache).unwrap();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x55;
    let tampered = env.path().join("tampered.bin");
    fs::write(&tampered, &bytes).unwrap();
    let err = Listing::load(&tampered, &digest).unwrap_err();
    assert!(matches!(err, MergeError::BadCache { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("does not hash to the charm's digest"),
        "{err}"
    );
    // Truncated: not a listing at all.
    fs::write(&tampered, &bytes[..bytes.len() / 2]).unwrap();
    let err = Listing::load(&tampered, &digest).unwrap_err();
    assert!(err.to_string().contains("not a listing"), "{err}");

    // In place, the store ignores the bad cache and lists the tree again.
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&cache, &bytes).unwrap();
    assert_eq!(store.listing(&digest).unwrap(), from_tree);
    fs::remove_file(&cache).unwrap();
    assert_eq!(store.listing(&digest).unwrap(), from_tree);

    // The same content again is a no-op: the entry and its cache are left alone.
    let plain = write_source(&env, "plain.tar", &TarBuilder::charm().finish());
    let first = ingest_json(&env, &plain);
    let again = ingest_json(&env, &plain);
    assert_eq!(again["outcome"], "already_stored");
    let other = CharmDigest::parse(first["digest"].as_str().unwrap()).unwrap();
    assert!(
        Listing::load(&store.listing_path(&other), &other)
            .unwrap()
            .is_some()
    );
    // A cache copied from another charm is refused.
    let err = Listing::load(&store.listing_path(&other), &digest).unwrap_err();
    assert!(matches!(err, MergeError::BadCache { .. }), "{err}");
}

#[test]
fn flattening_reads_directories_and_files_a_hook_made_unreadable() {
    let env = TestEnv::new();
    let base = env.path().join("base");
    fs::create_dir_all(base.join("etc")).unwrap();
    fs::write(base.join("etc/conf"), "base").unwrap();
    let layer = env.path().join("layer");
    fs::create_dir_all(layer.join("etc")).unwrap();
    fs::create_dir_all(layer.join("vault/inner")).unwrap();
    fs::write(layer.join("vault/inner/key"), "secret").unwrap();
    fs::write(layer.join("etc/conf"), "runtime").unwrap();
    fs::set_permissions(layer.join("etc/conf"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(layer.join("vault/inner"), fs::Permissions::from_mode(0o300)).unwrap();
    fs::set_permissions(layer.join("vault"), fs::Permissions::from_mode(0o000)).unwrap();
    let layers = vec![layer.clone()];

    let diff = flatten_layers(&layers, OverlayXattrs::User).unwrap();
    let paths: Vec<(String, bool)> = diff
        .entries()
        .iter()
        .map(|e| {
            (
                String::from_utf8(e.path.clone()).unwrap(),
                matches!(e.change, Change::Write { .. }),
            )
        })
        .collect();
    let expected = ["etc", "etc/conf", "vault", "vault/inner", "vault/inner/key"];
    assert_eq!(paths, expected.map(|p| (p.to_owned(), true)));
    // The layer reads exactly as before: modes put back.
    assert_eq!(mode(&layer.join("vault")), 0o000);
    assert_eq!(mode(&layer.join("etc/conf")), 0o000);
    fs::set_permissions(layer.join("vault"), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(mode(&layer.join("vault/inner")), 0o300);
    fs::set_permissions(layer.join("vault"), fs::Permissions::from_mode(0o000)).unwrap();

    // And the upgrade path goes through: merged onto the same base, materialised, the new
    // layer carries the same modes and flattens to the same diff.
    let old = Listing::read_tree(&base).unwrap();
    let MergeOutcome::Merged(result) = merge(&old, &diff, &old) else {
        panic!("no conflict expected")
    };
    let staging = env.path().join("new-layer");
    materialize(&result, &layers, &staging, OverlayXattrs::User).unwrap();
    assert_eq!(mode(&staging.join("vault")), 0o000);
    assert_eq!(
        flatten_layers(std::slice::from_ref(&staging), OverlayXattrs::User).unwrap(),
        diff
    );
    hookbox::store::fsops::remove_tree(&staging).unwrap();
    hookbox::store::fsops::remove_tree(&layer).unwrap();
}

/// The tests above again as uid 65534, where a mode really denies access, from a copy of
/// this test binary in a directory that uid can reach.
#[test]
fn store_tests_pass_as_uid_65534() {
    if std::env::var_os("HOOKBOX_STORE_ROOTLESS_CHILD").is_some() {
        return; // This is the child run itself.
    }
    if !crate::util::require_root() {
        return;
    }
    crate::util::rerun_tests_as_nobody(
        "store::",
        "HOOKBOX_STORE_ROOTLESS_CHILD",
        "flattening_reads_directories_and_files_a_hook_made_unreadable",
    );
}
