//! The canonical digest of a tree: sha256 over a sorted listing of (path, type, mode, content
//! or link target). One charm gives one digest whether it came as a directory, a tarball or a
//! zip; the same digest compares charm directories byte for byte in tests and recovery.
//!
//! The walk never follows a symlink: every step is relative to an open directory fd and uses
//! `O_NOFOLLOW` / `AT_SYMLINK_NOFOLLOW`.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use sha2::{Digest, Sha256};

use super::StoreError;

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
pub fn walk_tree(root: &Path) -> Result<Vec<TreeEntry>, StoreError> {
    let dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::io("open tree", root)(e.into()))?;
    let mut entries = Vec::new();
    walk_dir(root, dir, &mut Vec::new(), &mut entries)?;
    Ok(entries)
}

/// The canonical digest of the tree at `root`.
pub fn tree_digest(root: &Path) -> Result<CharmDigest, StoreError> {
    Ok(digest_entries(&mut walk_tree(root)?))
}

/// The sha256 of everything `reader` yields, and its length.
pub fn hash_reader(mut reader: impl Read) -> std::io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finalize().into(), size))
}

fn walk_dir(
    root: &Path,
    dir: OwnedFd,
    prefix: &mut Vec<u8>,
    out: &mut Vec<TreeEntry>,
) -> Result<(), StoreError> {
    let here = || root.join(OsStr::from_bytes(prefix));
    let mut names = Vec::new();
    let reader = rustix::fs::Dir::read_from(dir.as_fd())
        .map_err(|e| StoreError::io("read directory", here())(e.into()))?;
    for item in reader {
        let item = item.map_err(|e| StoreError::io("read directory", here())(e.into()))?;
        let name = item.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(item.file_name().to_owned());
        }
    }
    for name in names {
        let start = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(name.to_bytes());
        let path_err = |action| StoreError::io(action, root.join(OsStr::from_bytes(prefix)));
        let stat = rustix::fs::statat(dir.as_fd(), name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| path_err("stat")(e.into()))?;
        let mode = stat.st_mode & 0o777;
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                let child = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| path_err("open directory")(e.into()))?;
                out.push(TreeEntry {
                    path: prefix.clone(),
                    mode,
                    kind: EntryKind::Dir,
                });
                walk_dir(root, child, prefix, out)?;
                prefix.truncate(start);
                continue;
            }
            FileType::RegularFile => {
                let file = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| path_err("open file")(e.into()))?;
                let (sha256, size) =
                    hash_reader(std::fs::File::from(file)).map_err(|e| path_err("read file")(e))?;
                EntryKind::File { sha256, size }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir.as_fd(), name.as_c_str(), Vec::new())
                    .map_err(|e| path_err("read symlink")(e.into()))?;
                EntryKind::Symlink {
                    target: target.into_bytes(),
                }
            }
            other => EntryKind::Special {
                file_type: other.as_raw_mode(),
                rdev: stat.st_rdev,
            },
        };
        out.push(TreeEntry {
            path: prefix.clone(),
            mode,
            kind,
        });
        prefix.truncate(start);
    }
    Ok(())
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
