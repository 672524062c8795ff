//! The canonical digest of a tree: sha256 over a sorted listing of (path, type, mode, content
//! or link target). One charm gives one digest whether it came as a directory, a tarball or a
//! zip; the same digest compares charm directories byte for byte in tests and recovery.
//!
//! The walk never follows a symlink: every step is relative to an open directory fd and goes
//! through the store's `fsops` primitives (`openat2` beneath the directory, `O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use sha2::{Digest, Sha256};

use super::{StoreError, fsops};

/// A tree's canonical digest, shown as `sha256-<hex>` (the store's directory name).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CharmDigest(String);

impl CharmDigest {
    /// The lowercase hex of the sha256.
    pub fn hex(&self) -> &str {
        self.0.strip_prefix("sha256-").unwrap_or(&self.0)
    }

    /// Parses `sha256-<64 hex>` (or bare hex).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256-").unwrap_or(text);
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| Self(format!("sha256-{hex}")))
    }
}

impl fmt::Display for CharmDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one entry of a tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with the sha256 of its content.
    File {
        /// sha256 of the content.
        sha256: [u8; 32],
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symlink and its target, as stored (never resolved).
    Symlink {
        /// The link target bytes.
        target: Vec<u8>,
    },
    /// A device node, fifo or socket (overlay whiteouts are character devices 0:0).
    Special {
        /// The `S_IFMT` bits.
        file_type: u32,
        /// The device number, for devices.
        rdev: u64,
    },
}

/// One entry of a canonical listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path relative to the tree root, `/`-separated, no leading `./`.
    pub path: Vec<u8>,
    /// Permission bits (`0o777` mask; setuid, setgid and sticky never count).
    pub mode: u32,
    /// The entry's type and content.
    pub kind: EntryKind,
}

/// Hashes a listing in canonical order (sorted by path; the order given does not matter).
pub fn digest_entries(entries: &mut [TreeEntry]) -> CharmDigest {
    entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let mut hasher = Sha256::new();
    for entry in entries.iter() {
        // Length-prefixed fields keep the encoding unambiguous for any byte in a name.
        let field = |hasher: &mut Sha256, bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(&mut hasher, &entry.path);
        hasher.update((entry.mode & 0o777).to_be_bytes());
        match &entry.kind {
            EntryKind::File { sha256, size } => {
                hasher.update(b"f");
                hasher.update(size.to_be_bytes());
                hasher.update(sha256);
            }
            EntryKind::Dir => hasher.update(b"d"),
            EntryKind::Symlink { target } => {
                hasher.update(b"l");
                field(&mut hasher, target);
            }
            EntryKind::Special { file_type, rdev } => {
                hasher.update(b"s");
                hasher.update(file_type.to_be_bytes());
                hasher.update(rdev.to_be_bytes());
            }
        }
    }
    CharmDigest(format!("sha256-{}", hex(&hasher.finalize())))
}

/// Lists a directory tree without following any symlink, for [`digest_entries`].
///
/// The walk is iterative and holds two directory fds whatever the depth (going back up
/// re-opens `..` and checks it is the directory it came from), so a tree thousands of levels
/// deep needs neither a deep call stack nor one fd per level. Entries come in preorder, a
/// directory before what it holds.
pub fn walk_tree(root: &Path) -> Result<Vec<TreeEntry>, StoreError> {
    let mut entries = Vec::new();
    walk_tree_with(root, Access::AsIs, &mut |entry, _| entries.push(entry))?;
    Ok(entries)
}

/// Whether a walk may open up what denies it access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A directory or file the walk cannot read is an error.
    AsIs,
    /// A directory or file we own but cannot read (a hook may `chmod 000` it in its layer)
    /// is given `u+rwx` / `u+r` for the walk and its mode is put back: the tree reads the same
    /// afterwards, only ctimes change.
    OpenUp,
}

/// Walks the tree at `root` like [`walk_tree`], handing each entry to `visit` with the open
/// directory (for a directory) or the open file, already hashed (for a regular file).
pub(crate) fn walk_tree_with(
    root: &Path,
    access: Access,
    visit: &mut dyn FnMut(TreeEntry, Option<BorrowedFd<'_>>),
) -> Result<(), StoreError> {
    struct Level {
        names: Vec<CString>,
        id: (u64, u64),
        restore: Option<u32>,
        path_len: usize,
    }
    let mut current = fsops::open_dir(root).map_err(at("open tree", root))?;
    let stat = rustix::fs::fstat(&current).map_err(at("stat", root))?;
    let mut rel: Vec<u8> = Vec::new();
    let mut stack = vec![Level {
        names: fsops::list_names(&current).map_err(at("read directory", root))?,
        id: fsops::id_of(&stat),
        restore: None,
        path_len: 0,
    }];
    while let Some(level) = stack.last_mut() {
        let Some(name) = level.names.pop() else {
            let done = stack.pop().expect("a level is on the stack");
            let Some(parent) = stack.last() else { break };
            let here = fsops::join_rel(root, &rel);
            // Up first: once its mode is put back, `..` may not be searchable any more.
            let up = fsops::open_parent(&current, parent.id, &here)?;
            if let Some(mode) = done.restore {
                rustix::fs::fchmod(&current, Mode::from_raw_mode(mode))
                    .map_err(at("restore mode of", &here))?;
            }
            current = up;
            rel.truncate(done.path_len);
            continue;
        };
        let path_len = fsops::push_component(&mut rel, name.as_bytes());
        let here = || fsops::join_rel(root, &rel);
        let stat = rustix::fs::statat(&current, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| at("stat", &here())(e))?;
        let mode = stat.st_mode & 0o777;
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                let (child, restore) = open_child_dir(&current, &name, access)
                    .map_err(|e| at("open directory", &here())(e))?;
                let child_stat = rustix::fs::fstat(&child).map_err(|e| at("stat", &here())(e))?;
                let names =
                    fsops::list_names(&child).map_err(|e| at("read directory", &here())(e))?;
                let entry = TreeEntry {
                    path: rel.clone(),
                    mode,
                    kind: EntryKind::Dir,
                };
                visit(entry, Some(child.as_fd()));
                stack.push(Level {
                    names,
                    id: fsops::id_of(&child_stat),
                    restore,
                    path_len,
                });
                current = child;
                continue;
            }
            FileType::RegularFile => {
                let file = match access {
                    Access::AsIs => fsops::open_beneath(
                        &current,
                        name.as_c_str(),
                        OFlags::RDONLY | OFlags::NONBLOCK,
                    ),
                    Access::OpenUp => fsops::open_file_forcing(&current, &name),
                }
                .map_err(|e| at("open file", &here())(e))?;
                let file = std::fs::File::from(file);
                let (sha256, size) =
                    hash_reader(&file).map_err(|e| StoreError::io("read file", here())(e))?;
                let entry = TreeEntry {
                    path: rel.clone(),
                    mode,
                    kind: EntryKind::File { sha256, size },
                };
                visit(entry, Some(file.as_fd()));
                rel.truncate(path_len);
                continue;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&current, name.as_c_str(), Vec::new())
                    .map_err(|e| at("read symlink", &here())(e))?;
                EntryKind::Symlink {
                    target: target.into_bytes(),
                }
            }
            other => EntryKind::Special {
                file_type: other.as_raw_mode(),
                rdev: stat.st_rdev,
            },
        };
        let entry = TreeEntry {
            path: rel.clone(),
            mode,
            kind,
        };
        visit(entry, None);
        rel.truncate(path_len);
    }
    Ok(())
}

/// Opens a child directory for the walk; with [`Access::OpenUp`], one we cannot list or
/// search is opened up first and the mode to restore is returned.
fn open_child_dir(
    dir: &OwnedFd,
    name: &CStr,
    access: Access,
) -> rustix::io::Result<(OwnedFd, Option<u32>)> {
    match access {
        Access::AsIs => fsops::open_beneath(dir, name, fsops::DIR_FLAGS).map(|fd| (fd, None)),
        Access::OpenUp => fsops::open_dir_forcing(dir, name),
    }
}

fn at(action: &'static str, path: &Path) -> impl FnOnce(rustix::io::Errno) -> StoreError {
    let wrap = StoreError::io(action, path);
    move |e| wrap(e.into())
}

/// The canonical digest of the tree at `root`.
pub fn tree_digest(root: &Path) -> Result<CharmDigest, StoreError> {
    Ok(digest_entries(&mut walk_tree(root)?))
}

/// The sha256 of everything `reader` yields, and its length.
pub fn hash_reader(reader: impl Read) -> std::io::Result<([u8; 32], u64)> {
    fsops::copy_hashing(reader, None).map_err(|e| match e {
        fsops::CopyFailure::Read(e) | fsops::CopyFailure::Write(e) => e,
    })
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn sample(dir: &Path) {
        fs::create_dir_all(dir.join("hooks")).unwrap();
        fs::write(dir.join("metadata.yaml"), "name: x\n").unwrap();
        fs::write(dir.join("hooks/install"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.join("hooks/install"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("install", dir.join("hooks/start")).unwrap();
    }

    #[test]
    fn same_tree_same_digest_and_every_change_shows() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        sample(a.path());
        sample(b.path());
        let base = tree_digest(a.path()).unwrap();
        assert_eq!(base, tree_digest(b.path()).unwrap());

        fs::write(b.path().join("hooks/install"), "#!/bin/bash\n").unwrap();
        let content = tree_digest(b.path()).unwrap();
        assert_ne!(base, content);

        fs::set_permissions(
            b.path().join("hooks/install"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_ne!(content, tree_digest(b.path()).unwrap());

        fs::remove_file(a.path().join("hooks/start")).unwrap();
        symlink("stop", a.path().join("hooks/start")).unwrap();
        assert_ne!(base, tree_digest(a.path()).unwrap());
    }

    #[test]
    fn symlinks_are_listed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/etc", dir.path().join("out")).unwrap();
        let entries = walk_tree(dir.path()).unwrap();
        assert_eq!(
            entries,
            vec![TreeEntry {
                path: b"out".to_vec(),
                mode: 0o777,
                kind: EntryKind::Symlink {
                    target: b"/etc".to_vec()
                }
            }]
        );
    }

    #[test]
    fn a_three_thousand_deep_tree_walks_with_a_small_stack_and_two_fds() {
        const DEPTH: usize = 3000;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("deep");
        fs::create_dir(&root).unwrap();
        // Built relative to fds: the full path is far over PATH_MAX.
        let mut fd = fsops::open_dir(&root).unwrap();
        for _ in 0..DEPTH {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            fd = fsops::open_beneath(&fd, "d", fsops::DIR_FLAGS).unwrap();
        }
        let file = fsops::create_exclusive(&fd, "leaf", 0o644).unwrap();
        std::io::Write::write_all(&mut std::fs::File::from(file), b"leaf").unwrap();
        drop(fd);

        let fds_before = fs::read_dir("/proc/self/fd").unwrap().count();
        let walked = root.clone();
        // A recursive walk would overflow this stack (and hold 3,000 fds).
        let (entries, fds_during) = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                let mut most = 0;
                let mut entries = Vec::new();
                walk_tree_with(&walked, Access::AsIs, &mut |entry, _| {
                    if entry.path.len() % 1000 == 1 {
                        most = most.max(fs::read_dir("/proc/self/fd").unwrap().count());
                    }
                    entries.push(entry);
                })
                .map(|()| (entries, most))
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(fds_during <= fds_before + 3, "{fds_during} fds open");
        assert_eq!(entries.len(), DEPTH + 1);
        let leaf = entries.last().unwrap();
        assert_eq!(leaf.path.len(), DEPTH * 2 + 4);
        assert!(leaf.path.ends_with(b"d/d/leaf"));
        assert!(matches!(leaf.kind, EntryKind::File { size: 4, .. }));
        // The same walk through the public API gives the same digest every time.
        let again = root.clone();
        let digests = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || (tree_digest(&again).unwrap(), tree_digest(&again).unwrap()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(digests.0, digests.1);
        crate::store::fsops::remove_tree(&root).unwrap();
    }

    #[test]
    fn unreadable_entries_are_opened_up_only_when_asked_and_put_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("locked/inner")).unwrap();
        fs::write(root.join("locked/inner/f"), "f").unwrap();
        fs::write(root.join("secret"), "s").unwrap();
        fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(root.join("locked/inner"), fs::Permissions::from_mode(0o100)).unwrap();
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let mode = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        if rustix::process::geteuid().is_root() {
            // Root reads everything anyway: nothing to open up, nothing changes.
            assert_eq!(walk_tree(root).unwrap().len(), 4);
        } else {
            let err = walk_tree(root).unwrap_err();
            assert!(err.to_string().contains("locked"), "{err}");
        }
        let mut seen = Vec::new();
        walk_tree_with(root, Access::OpenUp, &mut |entry, _| seen.push(entry)).unwrap();
        seen.sort_by(|a, b| a.path.cmp(&b.path));
        let listed: Vec<_> = seen
            .iter()
            .map(|e| (String::from_utf8(e.path.clone()).unwrap(), e.mode))
            .collect();
        assert_eq!(
            listed,
            [
                ("locked".to_owned(), 0o000),
                ("locked/inner".to_owned(), 0o100),
                ("locked/inner/f".to_owned(), 0o644),
                ("secret".to_owned(), 0o000),
            ]
        );
        assert!(matches!(seen[3].kind, EntryKind::File { size: 1, .. }));
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(mode("locked/inner"), 0o100);
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        assert_eq!((mode("locked"), mode("secret")), (0o000, 0o000));
    }

    #[test]
    fn listing_order_does_not_matter() {
        let file = |p: &str| TreeEntry {
            path: p.as_bytes().to_vec(),
            mode: 0o644,
            kind: EntryKind::File {
                sha256: [1; 32],
                size: 3,
            },
        };
        let one = digest_entries(&mut [file("a"), file("b/c")]);
        let two = digest_entries(&mut [file("b/c"), file("a")]);
        assert_eq!(one, two);
        assert!(CharmDigest::parse(&one.to_string()).is_some());
        assert_eq!(one.hex().len(), 64);
    }
}
