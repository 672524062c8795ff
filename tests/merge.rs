//! The three-way merge over real directories: runtime layers written by a real overlay
//! (inside `unshare -Urm`, `-o userxattr`), flattened, merged onto a new charm base,
//! materialised as a new layer, and mounted again to check the charm dir a hook would see.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hookbox::store::digest::EntryKind;
use hookbox::store::merge::{
    ConflictKind, Listing, MergeOutcome, flatten_layers, materialize, merge,
};
use hookbox::store::squash::OverlayXattrs;

use crate::util::{self, TestEnv};

/// Writes `files` (`path` → content; a trailing `/` makes a directory) under `root`.
fn write_tree(root: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(root).unwrap();
    for (path, content) in files {
        let target = root.join(path.trim_end_matches('/'));
        if path.ends_with('/') {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::write(&target, content).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// Runs `script` (with `$M` the merged dir) in a user+mount namespace over an overlay of
/// `lowers` (newest first) with an optional writable `upper`; returns its stdout.
fn in_overlay(scratch: &Path, lowers: &[&Path], upper: Option<&Path>, script: &str) -> String {
    let merged = scratch.join(format!("m{}", rand_suffix()));
    fs::create_dir_all(&merged).unwrap();
    let lowerdir = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut options = format!("userxattr,lowerdir={lowerdir}");
    if let Some(upper) = upper {
        let work = scratch.join(format!("w{}", rand_suffix()));
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(upper).unwrap();
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    let out = Command::new("unshare")
        .args(["-Urm", "sh", "-euc"])
        .arg(format!(
            "mount -t overlay -o {options} overlay \"$M\"; cd \"$M\"; umask 022; {script}"
        ))
        .env("M", &merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "overlay script failed: {}\n{}",
        script,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Lists the current directory as the kernel shows it: one sorted line per entry with type,
/// mode, path, link target and the content's sha256.
const LIST: &str = r#"find . -mindepth 1 -printf '%y %m %P %l\n' | sort >"$M.list"
find . -type f -printf '%P\n' | sort | while read -r f; do
  printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"; done >"$M.sums"
cat "$M.list"; echo ---; cat "$M.sums""#;

/// The same listing format for a [`Listing`], to compare with what the kernel shows.
fn describe(listing: &Listing) -> String {
    let mut lines = Vec::new();
    let mut sums = Vec::new();
    for e in listing.entries() {
        let path = String::from_utf8(e.path.clone()).unwrap();
        let (y, target) = match &e.kind {
            EntryKind::File { sha256, .. } => {
                let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
                sums.push(format!("{path} {hex}"));
                ("f", String::new())
            }
            EntryKind::Dir => ("d", String::new()),
            EntryKind::Symlink { target } => ("l", String::from_utf8(target.clone()).unwrap()),
            EntryKind::Special { .. } => ("c", String::new()),
        };
        lines.push(format!("{y} {:o} {path} {target}", e.mode));
    }
    lines.sort();
    sums.sort();
    format!("{}\n---\n{}\n", lines.join("\n"), sums.join("\n"))
}

/// Lists a plain directory on the host with the same commands.
fn describe_host(dir: &Path) -> String {
    let out = Command::new("sh")
        .args(["-euc", &format!("cd \"$D\"; M=\"$T\"; {LIST}")])
        .env("D", dir)
        .env("T", dir.with_extension("host"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

struct Charms {
    old: PathBuf,
    new: PathBuf,
}

fn charms(env: &TestEnv) -> Charms {
    let old = env.path().join("old");
    let new = env.path().join("new");
    write_tree(
        &old,
        &[
            ("metadata.yaml", "name: demo\n"),
            ("config.yaml", "options: {}\n"),
            ("hooks/install", "#!/bin/sh\n"),
            ("data/keep", "keep\n"),
            ("data/del", "del\n"),
            ("data/changed", "v1\n"),
            ("o/hidden", "h\n"),
            ("o/x", "x\n"),
            ("gone/g", "g\n"),
            ("modefile", "m\n"),
            ("lib/util.py", "pass\n"),
        ],
    );
    write_tree(
        &new,
        &[
            ("metadata.yaml", "name: demo\n"),
            ("config.yaml", "options: {a: {type: int}}\n"),
            ("hooks/install", "#!/bin/bash\n"),
            ("hooks/upgrade-charm", "#!/bin/sh\necho up\n"),
            ("data/keep", "keep\n"),
            ("data/del", "del\n"),
            ("data/changed", "v2\n"),
            ("data/charm-new", "cn\n"),
            ("o/hidden", "h\n"),
            ("o/x", "x\n"),
            ("o/added", "a\n"),
            ("gone/g", "g\n"),
            ("modefile", "m\n"),
            ("lib/util.py", "pass\n"),
        ],
    );
    Charms { old, new }
}

#[test]
fn upgrade_merge_over_real_overlay_layers_shows_exactly_the_merge() {
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    let Charms { old, new } = charms(&env);
    let scratch = env.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();

    // Two hook runs, each writing a real upper through the kernel's overlay.
    let l1 = env.path().join("layers/1");
    let l2 = env.path().join("layers/2");
    in_overlay(
        &scratch,
        &[&old],
        Some(&l1),
        "echo state >data/state; rm data/del; rm -rf gone; chmod 755 modefile; \
         mkdir -m 755 cache; echo c >cache/c; ln -s ../metadata.yaml cache/link",
    );
    in_overlay(
        &scratch,
        &[&l1, &old],
        Some(&l2),
        "rm -rf o; mkdir -m 755 o; echo z >o/z; echo state2 >data/state",
    );
    let layers = vec![l2.clone(), l1.clone()];

    // Flattening agrees with the kernel's view of the runtime layers over the old base.
    let old_listing = Listing::read_tree(&old).unwrap();
    let runtime = flatten_layers(&layers, OverlayXattrs::User).unwrap();
    let before = in_overlay(&scratch, &[&l2, &l1, &old], None, LIST);
    assert_eq!(before, describe(&runtime.apply(&old_listing)));

    let new_listing = Listing::read_tree(&new).unwrap();
    let MergeOutcome::Merged(result) = merge(&old_listing, &runtime, &new_listing) else {
        panic!("unexpected conflicts");
    };
    let staging = env.path().join("staging");
    materialize(&result, &layers, &staging, OverlayXattrs::User).unwrap();

    // What a hook sees after the upgrade: the new layer over the new base.
    let after = in_overlay(&scratch, &[&staging, &new], None, LIST);
    assert_eq!(after, describe(&result.apply(&new_listing)));

    // And that is exactly the hand-computed merge.
    let expected = env.path().join("expected");
    write_tree(
        &expected,
        &[
            ("cache/c", "c\n"),
            ("config.yaml", "options: {a: {type: int}}\n"),
            ("data/changed", "v2\n"),
            ("data/charm-new", "cn\n"),
            ("data/keep", "keep\n"),
            ("data/state", "state2\n"),
            ("hooks/install", "#!/bin/bash\n"),
            ("hooks/upgrade-charm", "#!/bin/sh\necho up\n"),
            ("lib/util.py", "pass\n"),
            ("metadata.yaml", "name: demo\n"),
            ("modefile", "m\n"),
            ("o/added", "a\n"),
            ("o/z", "z\n"),
        ],
    );
    std::os::unix::fs::symlink("../metadata.yaml", expected.join("cache/link")).unwrap();
    fs::set_permissions(expected.join("modefile"), fs::Permissions::from_mode(0o755)).unwrap();
    for dir in ["cache", "data", "hooks", "lib", "o"] {
        fs::set_permissions(expected.join(dir), fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert_eq!(after, describe_host(&expected));

    // The new layer flattens back to the merge result (whiteouts and marks are exact).
    assert_eq!(
        flatten_layers(std::slice::from_ref(&staging), OverlayXattrs::User).unwrap(),
        result
    );
}

#[test]
fn runtime_bytecode_under_a_directory_the_charm_made_a_file_is_a_named_conflict() {
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    let old = env.path().join("old");
    let new = env.path().join("new");
    write_tree(
        &old,
        &[
            ("metadata.yaml", "name: demo\n"),
            ("src/charm.py", "import lib\n"),
            ("src/helpers/__init__.py", ""),
        ],
    );
    write_tree(
        &new,
        &[
            ("metadata.yaml", "name: demo2\n"),
            ("src/charm.py", "import lib\n"),
            ("src/helpers", "# now a module file\n"),
        ],
    );
    let scratch = env.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let layer = env.path().join("layers/1");
    in_overlay(
        &scratch,
        &[&old],
        Some(&layer),
        "mkdir -m 755 src/helpers/__pycache__; \
         echo bytecode >src/helpers/__pycache__/__init__.cpython-312.pyc; \
         echo 'name: mine' >metadata.yaml",
    );
    let runtime = flatten_layers(std::slice::from_ref(&layer), OverlayXattrs::User).unwrap();
    let outcome = merge(
        &Listing::read_tree(&old).unwrap(),
        &runtime,
        &Listing::read_tree(&new).unwrap(),
    );
    let MergeOutcome::Conflicts(conflicts) = outcome else {
        panic!("expected conflicts, got {outcome:?}");
    };
    let found: Vec<_> = conflicts
        .iter()
        .map(|c| (c.display_path(), c.kind, c.likely_bytecode))
        .collect();
    assert_eq!(
        found,
        [
            (
                "metadata.yaml".to_owned(),
                ConflictKind::ModifyModify,
                false
            ),
            ("src/helpers".to_owned(), ConflictKind::DirectoryFile, true),
        ]
    );
    let text = conflicts[1].to_string();
    assert!(
        text.contains("src/helpers (directory/file): runtime has directory, new charm has file")
            && text.contains("likely cause: runtime-written Python bytecode"),
        "{text}"
    );
}
