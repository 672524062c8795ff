//! Flattening a stack of runtime layers (overlay upper dirs, newest first) into the one
//! [`RuntimeDiff`] they amount to over the charm base.
//!
//! A layer is listed with the store's tree walk (no symlink followed, files hashed, two fds
//! whatever the depth, unreadable directories opened up and restored), which hands over each
//! directory and file open so its overlay xattrs are read from the same fd. What counts, as checked on Linux 6.18 with
//! `mount -t overlay -o userxattr` inside `unshare -Urm`:
//! - a whiteout is a character device 0:0; a zero-size regular file carrying
//!   `user.overlay.whiteout` (`trusted.` for privileged mounts) is one too: the kernel hides
//!   the path on lookup in any layer (the "xwhiteout" form of Linux 6.7, which overlayfs
//!   never writes itself but honours);
//! - a directory is opaque when its `overlay.opaque` xattr is `y`; the value `x` only says the
//!   directory holds xwhiteouts and is *not* opaque;
//! - fifos, sockets and other devices cannot be carried by a layer: like the squash, they
//!   read as deleted, with a warning naming them.
//!
//! Layers are applied oldest first with the overlay rules the squash also follows: a newer
//! whiteout, non-directory or opaque directory replaces everything older at and below its
//! path; a newer plain directory merges with an older directory (keeping its opacity) and
//! becomes opaque over an older whiteout or non-directory.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::store::digest::{Access, EntryKind, walk_tree_with};
use crate::store::fsops::{OverlayXattrs, is_opaque, is_xwhiteout};

use super::MergeError;
use super::tree::{Change, DiffEntry, RuntimeDiff, tree_order};

/// The diff a stack of runtime layers (`layers`, newest first) makes over the base below it.
pub fn flatten_layers(
    layers: &[PathBuf],
    xattrs: OverlayXattrs,
) -> Result<RuntimeDiff, MergeError> {
    let mut state: BTreeMap<Vec<u8>, Change> = BTreeMap::new();
    for layer in layers.iter().rev() {
        for (path, change) in read_layer(layer, xattrs)? {
            apply_entry(&mut state, path, change);
        }
    }
    RuntimeDiff::new(
        state
            .into_iter()
            .map(|(path, change)| DiffEntry { path, change })
            .collect(),
    )
}

/// Applies one entry of a newer layer onto the flattened older layers.
fn apply_entry(state: &mut BTreeMap<Vec<u8>, Change>, path: Vec<u8>, change: Change) {
    let change = match change {
        Change::Write {
            mode,
            kind: EntryKind::Dir,
        } => match state.get(&path) {
            None
            | Some(Change::Write {
                kind: EntryKind::Dir,
                ..
            }) => Change::Write {
                mode,
                kind: EntryKind::Dir,
            },
            // Over an opaque dir, a whiteout or a non-directory the lookup stops here.
            Some(_) => Change::OpaqueDir { mode },
        },
        replacing => {
            remove_below(state, &path);
            replacing
        }
    };
    state.insert(path, change);
}

/// Removes every entry strictly below `path` (in byte order they are the run `path/`..`path0`).
fn remove_below(state: &mut BTreeMap<Vec<u8>, Change>, path: &[u8]) {
    let mut from = path.to_vec();
    from.push(b'/');
    let mut to = path.to_vec();
    to.push(b'/' + 1);
    let below: Vec<Vec<u8>> = state.range(from..to).map(|(k, _)| k.clone()).collect();
    for key in below {
        state.remove(&key);
    }
}

/// One layer's entries as changes, in tree order. Directories a hook made unreadable are
/// opened up for the walk and their modes put back, as the squash does.
fn read_layer(layer: &Path, xattrs: OverlayXattrs) -> Result<Vec<(Vec<u8>, Change)>, MergeError> {
    let mut out = Vec::new();
    walk_tree_with(layer, Access::OpenUp, &mut |entry, fd| {
        let change = match entry.kind {
            EntryKind::Dir if fd.is_some_and(|dir| is_opaque(dir, xattrs)) => {
                Change::OpaqueDir { mode: entry.mode }
            }
            EntryKind::File { size: 0, .. } if fd.is_some_and(|f| is_xwhiteout(f, xattrs)) => {
                Change::Whiteout
            }
            EntryKind::Special { file_type, rdev } => {
                let whiteout =
                    FileType::from_raw_mode(file_type) == FileType::CharacterDevice && rdev == 0;
                if !whiteout {
                    tracing::warn!(
                        path = %layer.join(OsStr::from_bytes(&entry.path)).display(),
                        "a layer cannot carry a fifo, socket or device: it reads as deleted"
                    );
                }
                Change::Whiteout
            }
            kind => Change::Write {
                mode: entry.mode,
                kind,
            },
        };
        out.push((entry.path, change));
    })?;
    out.sort_unstable_by(|a, b| tree_order(&a.0, &b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, XattrFlags};
    use std::fs;

    fn whiteout(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();
    }

    fn opaque(path: &Path, value: &[u8]) {
        rustix::fs::setxattr(path, c"user.overlay.opaque", value, XattrFlags::empty()).unwrap();
    }

    fn changes(diff: &RuntimeDiff) -> Vec<(String, String)> {
        diff.entries()
            .iter()
            .map(|e| {
                let what = match &e.change {
                    Change::Whiteout => "whiteout".to_owned(),
                    Change::OpaqueDir { mode } => format!("opaque {mode:o}"),
                    Change::Write {
                        kind: EntryKind::Dir,
                        mode,
                    } => format!("dir {mode:o}"),
                    Change::Write {
                        kind: EntryKind::File { size, .. },
                        ..
                    } => format!("file {size}"),
                    Change::Write {
                        kind: EntryKind::Symlink { target },
                        ..
                    } => format!("link {}", String::from_utf8_lossy(target)),
                    Change::Write { .. } => "special".to_owned(),
                };
                (String::from_utf8(e.path.clone()).unwrap(), what)
            })
            .collect()
    }

    #[test]
    fn layers_stack_with_overlay_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("old");
        let new = tmp.path().join("new");
        for dir in ["d/sub", "o", "gone", "w2d", "x"] {
            fs::create_dir_all(old.join(dir)).unwrap();
        }
        fs::write(old.join("a"), "old").unwrap();
        fs::write(old.join("d/keep"), "k").unwrap();
        fs::write(old.join("d/sub/s"), "s").unwrap();
        fs::write(old.join("o/hidden"), "h").unwrap();
        fs::write(old.join("gone/g"), "g").unwrap();
        whiteout(&old.join("w2d/f"));
        whiteout(&old.join("f2d"));
        fs::write(old.join("x/plain"), "p").unwrap();

        for dir in ["d", "o", "w2d", "f2d", "x"] {
            fs::create_dir_all(new.join(dir)).unwrap();
        }
        fs::write(new.join("a"), "newer").unwrap();
        whiteout(&new.join("d/sub"));
        whiteout(&new.join("gone"));
        opaque(&new.join("o"), b"y");
        fs::write(new.join("o/shown"), "s").unwrap();
        fs::write(new.join("f2d/in"), "i").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", new.join("d/link")).unwrap();
        // The xwhiteout form: a zero-size file with the whiteout xattr, parent marked "x".
        opaque(&new.join("x"), b"x");
        fs::write(new.join("x/plain"), "").unwrap();
        rustix::fs::setxattr(
            new.join("x/plain"),
            c"user.overlay.whiteout",
            b"",
            XattrFlags::empty(),
        )
        .unwrap();
        fs::write(new.join("x/empty"), "").unwrap();

        let diff = flatten_layers(&[new, old], OverlayXattrs::User).unwrap();
        let expected = [
            ("a", "file 5"),
            ("d", "dir 755"),
            ("d/keep", "file 1"),
            ("d/link", "link /etc/passwd"),
            ("d/sub", "whiteout"),
            ("f2d", "opaque 755"),
            ("f2d/in", "file 1"),
            ("gone", "whiteout"),
            ("o", "opaque 755"),
            ("o/shown", "file 1"),
            ("w2d", "dir 755"),
            ("w2d/f", "whiteout"),
            ("x", "dir 755"),
            ("x/empty", "file 0"),
            ("x/plain", "whiteout"),
        ];
        assert_eq!(
            changes(&diff),
            expected.map(|(p, c)| (p.to_owned(), c.to_owned()))
        );
    }
}
