//! Layer squash against the real kernel and against hostile layers.
//!
//! The equivalence tests build layers the way hookbox does, by running scripts in real
//! overlay mounts (`unshare -Urm`, `-o userxattr`), so the uppers hold the whiteouts and
//! opaque dirs the kernel writes; then they compare what an overlay shows over the N layers
//! with what it shows over the squashed layer, by the canonical tree digest of a copy made
//! inside the namespace.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use hookbox::store::digest::tree_digest;
use hookbox::store::fsops::remove_tree;
use hookbox::store::squash::{OverlayXattrs, squash_layers};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::util::{TestEnv, sandbox_available};

/// Runs `script` with `sh -e` inside a new user+mount namespace, with `$1..` = `args`.
fn in_namespace(script: &str, args: &[&Path]) {
    let output = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-ec",
            script,
            "sh",
        ])
        .args(args)
        .output()
        .expect("run unshare");
    assert!(
        output.status.success(),
        "namespace script failed: {script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn lowerdir(lowers: &[PathBuf]) -> String {
    lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs a hook-like `script` in the merged dir of an overlay over `lowers` (top first) with
/// a fresh upper, which it returns (the new layer).
fn run_step(env: &TestEnv, lowers: &[PathBuf], step: usize, script: &str) -> PathBuf {
    let upper = env.path().join(format!("upper-{step}"));
    let work = env.path().join(format!("work-{step}"));
    let mnt = env.path().join(format!("mnt-{step}"));
    for dir in [&upper, &work, &mnt] {
        fs::create_dir(dir).unwrap();
    }
    fs::set_permissions(&upper, fs::Permissions::from_mode(0o755)).unwrap();
    let options = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lowerdir(lowers),
        upper.display(),
        work.display()
    );
    in_namespace(
        &format!("mount -t overlay overlay -o {options} \"$1\"; cd \"$1\"; {script}"),
        &[&mnt],
    );
    upper
}

/// Copies what a read-only overlay over `lowers` (top first) shows into `out`.
fn merged_copy(lowers: &[PathBuf], out: &Path) {
    let mnt = out.with_extension("mnt");
    fs::create_dir(&mnt).unwrap();
    let options = format!("lowerdir={},userxattr", lowerdir(lowers));
    in_namespace(
        &format!("mount -t overlay overlay -o {options} \"$1\"; cp -a \"$1\" \"$2\""),
        &[&mnt, out],
    );
}

fn write_base(base: &Path) {
    fs::create_dir_all(base.join("hooks")).unwrap();
    fs::create_dir_all(base.join("lib/sub")).unwrap();
    fs::create_dir_all(base.join("data")).unwrap();
    fs::create_dir_all(base.join("emptydir")).unwrap();
    fs::write(base.join("metadata.yaml"), "name: test\n").unwrap();
    fs::write(base.join("hooks/install"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        base.join("hooks/install"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(base.join("hooks/start"), "#!/bin/sh\necho start\n").unwrap();
    fs::write(base.join("lib/a.py"), "a = 1\n").unwrap();
    fs::write(base.join("lib/b.py"), "b = 1\n").unwrap();
    fs::write(base.join("lib/sub/c.py"), "c = 1\n").unwrap();
    fs::write(base.join("data/keep"), "keep\n").unwrap();
    fs::write(base.join("data/old"), "old\n").unwrap();
    symlink("hooks/install", base.join("link")).unwrap();
}

/// Hook-like steps covering every kind of change overlay records in an upper.
const STEPS: &[&str] = &[
    // New files, dirs and symlinks pointing outside; a chmod; a modify; a delete of a base file.
    "echo installed > state; mkdir -p var/cache; echo c > var/cache/f; \
     ln -s /etc escape-abs; ln -s ../../.. escape-rel; chmod 700 lib; \
     echo changed > lib/a.py; rm data/old",
    // A base dir deleted and recreated (opaque), file -> dir, dir -> file, a symlink replaced.
    "rm -rf lib/sub; mkdir lib/sub; echo new > lib/sub/d.py; \
     rm hooks/start; mkdir hooks/start; echo x > hooks/start/inner; \
     rm -rf emptydir; echo now-a-file > emptydir; \
     rm link; ln -s metadata.yaml link; chmod 600 data/keep",
    // Deleting what an older runtime layer created; a rename; a deep new tree.
    "rm state; rm -rf var; echo again > data/old; mv lib/a.py lib/a2.py; \
     mkdir -p deep/1/2/3/4/5; echo z > deep/1/2/3/4/5/z",
    // A dir recreated over an older layer's whiteout; a whole dir deleted; more symlinks.
    "mkdir var; echo back > var/again; ln -s ../../outside escape2; rm -rf lib; rm escape-abs",
    // A dir recreated over an older deletion, a dir replaced by a symlink, a locked dir.
    "mkdir lib; echo l > lib/new; rm -rf hooks/start; ln -s install hooks/start; \
     chmod 0 deep/1/2; touch metadata.yaml",
    // Deleting something inside an opaque dir of an older layer; overwriting a renamed file.
    "rm lib/new; echo over > lib/other; rm -rf deep; echo 2 > emptydir",
];

#[test]
fn squash_shows_exactly_what_the_overlay_of_its_layers_shows() {
    if !sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    let base = env.path().join("base");
    write_base(&base);
    // Layers newest first, as overlay stacks them (and as Unit::lowers returns them).
    let mut layers: Vec<PathBuf> = Vec::new();
    for (n, script) in STEPS.iter().enumerate() {
        let mut lowers = layers.clone();
        lowers.push(base.clone());
        let upper = run_step(&env, &lowers, n, script);
        layers.insert(0, upper);
    }
    // The kernel wrote whiteouts (char 0:0) and opaque dirs into the uppers.
    let has_whiteout = layers.iter().any(|l| {
        fs::symlink_metadata(l.join("data/old"))
            .map(|m| m.file_type().is_char_device())
            .unwrap_or(false)
    });
    assert!(has_whiteout, "the kernel wrote no whiteout for data/old");

    let mut stacked = layers.clone();
    stacked.push(base.clone());
    let expected_dir = env.path().join("expected");
    merged_copy(&stacked, &expected_dir);
    let expected = tree_digest(&expected_dir).unwrap();
    assert_ne!(expected, tree_digest(&base).unwrap());

    // All layers into one.
    let oldest_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    let all = env.path().join("squash-all");
    let report = squash_layers(&oldest_first, Some(&base), &all, OverlayXattrs::User).unwrap();
    assert!(report.dropped.is_empty(), "{report:?}");
    assert!(report.linked > 0);
    let got_dir = env.path().join("got-all");
    merged_copy(&[all.clone(), base.clone()], &got_dir);
    assert_eq!(
        tree_digest(&got_dir).unwrap(),
        expected,
        "overlay over the squashed layer differs from overlay over the {} layers",
        layers.len()
    );

    // The oldest four into one, under the two newest.
    let part = env.path().join("squash-part");
    squash_layers(&oldest_first[..4], Some(&base), &part, OverlayXattrs::User).unwrap();
    let got_dir = env.path().join("got-part");
    merged_copy(
        &[layers[0].clone(), layers[1].clone(), part, base.clone()],
        &got_dir,
    );
    assert_eq!(tree_digest(&got_dir).unwrap(), expected);

    // Squashing is deterministic and leaves its sources untouched.
    let again = env.path().join("squash-again");
    squash_layers(&oldest_first, Some(&base), &again, OverlayXattrs::User).unwrap();
    let got_dir = env.path().join("got-again");
    merged_copy(&[again, base.clone()], &got_dir);
    assert_eq!(tree_digest(&got_dir).unwrap(), expected);
}

/// A directory with a file that must never be read, written or removed through a symlink.
fn outside_dir(env: &TestEnv) -> (PathBuf, hookbox::store::digest::CharmDigest) {
    let outside = env.path().join("outside");
    fs::create_dir_all(outside.join("sub")).unwrap();
    fs::write(outside.join("precious"), "do not touch").unwrap();
    fs::write(outside.join("sub/also"), "nor this").unwrap();
    let digest = tree_digest(&outside).unwrap();
    (outside, digest)
}

#[test]
fn hostile_layers_cannot_make_the_squash_touch_anything_outside() {
    let env = TestEnv::new();
    let (outside, outside_digest) = outside_dir(&env);
    let l1 = env.path().join("layers/l1");
    let l2 = env.path().join("layers/l2");
    let l3 = env.path().join("layers/l3");
    // l1: real directories where the newer layers put symlinks.
    fs::create_dir_all(l1.join("d")).unwrap();
    fs::write(l1.join("d/x"), "x").unwrap();
    fs::create_dir_all(l1.join("precious")).unwrap();
    symlink("/etc", l1.join("etc")).unwrap();
    // l2: symlinked directories over real ones, absolute and relative escapes.
    fs::create_dir_all(&l2).unwrap();
    symlink(&outside, l2.join("d")).unwrap();
    symlink("../../../outside", l2.join("rel")).unwrap();
    symlink(outside.join("precious"), l2.join("precious")).unwrap();
    // l3: directories whose names are symlinks in l2: writing through them would land
    // outside; a whiteout of a symlink's name must remove the link, not its target.
    fs::create_dir_all(l3.join("d")).unwrap();
    fs::write(l3.join("d/planted"), "planted").unwrap();
    fs::create_dir_all(l3.join("rel/sub")).unwrap();
    fs::write(l3.join("rel/sub/also"), "overwritten?").unwrap();
    let l3_fd = rustix::fs::open(&l3, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    rustix::fs::mknodat(
        &l3_fd,
        "precious",
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .unwrap();

    let base = env.path().join("base");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("precious"), "base file").unwrap();
    let out = env.path().join("squashed");
    squash_layers(
        &[l1.clone(), l2.clone(), l3.clone()],
        Some(&base),
        &out,
        OverlayXattrs::User,
    )
    .unwrap();

    assert_eq!(
        tree_digest(&outside).unwrap(),
        outside_digest,
        "outside changed"
    );
    assert!(!outside.join("planted").exists());
    assert_eq!(fs::read_link(out.join("etc")).unwrap(), Path::new("/etc"));
    for dir in ["d", "rel"] {
        let meta = fs::symlink_metadata(out.join(dir)).unwrap();
        assert!(meta.is_dir(), "{dir} must be a real directory");
        let opaque = rustix::fs::getxattr(
            out.join(dir),
            OverlayXattrs::User.opaque(),
            &mut [0u8; 4][..],
        );
        assert_eq!(opaque.ok(), Some(1), "{dir} over a symlink must be opaque");
    }
    assert_eq!(fs::read(out.join("d/planted")).unwrap(), b"planted");
    assert!(
        !out.join("d/x").exists(),
        "the old d/x is hidden by the symlink in l2"
    );
    assert!(
        fs::symlink_metadata(out.join("precious"))
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // Removing the layers never follows their symlinks either.
    for layer in [&l1, &l2, &l3, &out] {
        remove_tree(layer).unwrap();
        assert!(!layer.exists());
    }
    assert_eq!(tree_digest(&outside).unwrap(), outside_digest);
    assert!(Path::new("/etc/passwd").exists());
}

#[test]
fn fifos_sockets_and_devices_are_dropped_with_their_paths_named() {
    let env = TestEnv::new();
    let l1 = env.path().join("l1");
    let l2 = env.path().join("l2");
    fs::create_dir_all(&l1).unwrap();
    fs::create_dir_all(&l2).unwrap();
    for name in ["fifo", "sock", "null", "keep"] {
        fs::write(l1.join(name), "older").unwrap();
    }
    let fd = rustix::fs::open(&l2, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    rustix::fs::mknodat(&fd, "fifo", FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(l2.join("sock")).unwrap();
    let mut expected_dropped = vec![l2.join("fifo"), l2.join("sock")];
    if rustix::fs::mknodat(
        &fd,
        "null",
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .is_ok()
    {
        expected_dropped.insert(1, l2.join("null"));
    } else {
        eprintln!("not root: cannot create a device node, testing fifo and socket only");
    }
    let out = env.path().join("out");
    let report = squash_layers(&[l1.clone(), l2], Some(&l1), &out, OverlayXattrs::User).unwrap();
    expected_dropped.sort();
    let mut dropped = report.dropped.clone();
    dropped.sort();
    assert_eq!(dropped, expected_dropped);
    for path in &expected_dropped {
        // Dropped means deleted, never the stale older file.
        let meta = fs::symlink_metadata(out.join(path.file_name().unwrap())).unwrap();
        assert!(meta.file_type().is_char_device());
        assert_eq!(rustix::fs::major(meta_rdev(&meta)), 0);
    }
    assert_eq!(fs::read(out.join("keep")).unwrap(), b"older");
}

fn meta_rdev(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.rdev()
}

/// Builds `depth` nested directories named `d` under `root` (relative to fds, since the path
/// exceeds PATH_MAX), and returns the fd of the deepest.
fn make_deep(root: &Path, depth: usize) -> OwnedFd {
    fs::create_dir_all(root).unwrap();
    let mut fd = rustix::fs::open(root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
    for _ in 0..depth {
        match rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => panic!("mkdirat: {e}"),
        }
        fd = rustix::fs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .unwrap();
    }
    fd
}

fn names_at(fd: &OwnedFd) -> Vec<String> {
    let mut names: Vec<String> = rustix::fs::Dir::read_from(fd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

#[test]
fn three_thousand_deep_trees_squash_and_remove_without_recursion() {
    const DEPTH: usize = 3000;
    let env = TestEnv::new();
    let l1 = env.path().join("l1");
    let l2 = env.path().join("l2");
    let bottom = make_deep(&l1, DEPTH);
    fs::write(
        format!(
            "/proc/self/fd/{}/old",
            std::os::fd::AsRawFd::as_raw_fd(&bottom)
        ),
        "old",
    )
    .unwrap();
    fs::write(
        format!(
            "/proc/self/fd/{}/gone",
            std::os::fd::AsRawFd::as_raw_fd(&bottom)
        ),
        "gone",
    )
    .unwrap();
    drop(bottom);
    let bottom = make_deep(&l2, DEPTH);
    rustix::fs::mknodat(&bottom, "gone", FileType::CharacterDevice, Mode::empty(), 0).unwrap();
    rustix::fs::symlinkat("../../../../../../etc", &bottom, "up").unwrap();
    drop(bottom);

    let fds_before = fs::read_dir("/proc/self/fd").unwrap().count();
    let out = env.path().join("out");
    // Run on a thread with a small stack: a recursive walk would overflow it.
    let (layers, target) = (vec![l1.clone(), l2.clone()], out.clone());
    let report = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || squash_layers(&layers, None, &target, OverlayXattrs::User))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    // The whiteout of `gone` hides nothing once squashed over an empty base: dropped.
    assert_eq!(report.entries, 2 * DEPTH as u64 + 3);
    assert!(fs::read_dir("/proc/self/fd").unwrap().count() <= fds_before + 2);

    let bottom = make_deep(&out, DEPTH);
    assert_eq!(names_at(&bottom), ["old", "up"]);
    let up = rustix::fs::statat(&bottom, "up", AtFlags::SYMLINK_NOFOLLOW).unwrap();
    assert_eq!(FileType::from_raw_mode(up.st_mode), FileType::Symlink);
    drop(bottom);

    for dir in [l1, l2, out] {
        let target = dir.clone();
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || remove_tree(&target))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(!dir.exists());
    }
}

#[test]
fn the_squash_refuses_an_existing_staging_dir_and_empty_input() {
    let env = TestEnv::new();
    let layer = env.path().join("l");
    fs::create_dir(&layer).unwrap();
    let err = squash_layers(&[], None, &env.path().join("x"), OverlayXattrs::User).unwrap_err();
    assert_eq!(err.to_string(), "nothing to squash: no layers given");
    let err = squash_layers(
        std::slice::from_ref(&layer),
        None,
        &layer,
        OverlayXattrs::User,
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // A symlink as a layer root is refused, not followed.
    let link = env.path().join("link");
    symlink(&layer, &link).unwrap();
    let err = squash_layers(&[link], None, &env.path().join("y"), OverlayXattrs::User).unwrap_err();
    assert!(err.to_string().contains("link"), "{err}");
}

/// The layer tests again as uid 65534 (the rootless path: unprivileged whiteout creation,
/// `user.overlay.*` xattrs, directories a hook made unreadable), from a copy of this test
/// binary in a directory that uid can reach.
#[test]
fn layer_tests_pass_as_uid_65534() {
    if std::env::var_os("HOOKBOX_LAYERS_ROOTLESS_CHILD").is_some() {
        return; // This is the child run itself.
    }
    if !crate::util::require_root() {
        return;
    }
    crate::util::rerun_tests_as_nobody(
        "layers::",
        "HOOKBOX_LAYERS_ROOTLESS_CHILD",
        "squash_shows_exactly_what_the_overlay_of_its_layers_shows",
    );
}
