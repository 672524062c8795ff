//! Trees as sorted listings, runtime diffs (overlay uppers as data) and the overlay rule that
//! applies a diff to a base.
//!
//! Everything is kept in *tree order*: paths compared component by component, which is byte
//! order with `/` sorting before every other byte. In that order a directory is followed at
//! once by everything under it (a preorder walk), so merges are linear merge-joins of sorted
//! lists and "everything under `p`" is one contiguous run.

use std::cmp::Ordering;

use crate::store::digest::{CharmDigest, EntryKind, TreeEntry, digest_entries, walk_tree};

use super::MergeError;

/// Compares two relative paths in tree order (component by component).
pub fn tree_order(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: &u8| if *c == b'/' { 0 } else { *c };
    a.iter().map(key).cmp(b.iter().map(key))
}

/// Whether `path` is strictly below `dir`.
pub(super) fn is_under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The parent of a relative path (`None` for a top-level entry).
pub(super) fn parent_of(path: &[u8]) -> Option<&[u8]> {
    path.iter().rposition(|c| *c == b'/').map(|i| &path[..i])
}

/// Whether a path is Python bytecode a hook wrote at runtime: inside a `__pycache__`
/// directory (or that directory itself), or a `.pyc` file.
pub fn is_bytecode_path(path: &[u8]) -> bool {
    path.ends_with(b".pyc") || path.split(|c| *c == b'/').any(|c| c == b"__pycache__")
}

fn check_path(path: &[u8], what: &'static str) -> Result<(), MergeError> {
    let clean = !path.is_empty()
        && !path.contains(&0)
        && path
            .split(|c| *c == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..");
    if clean {
        Ok(())
    } else {
        Err(MergeError::BadPath {
            path: String::from_utf8_lossy(path).into_owned(),
            what,
        })
    }
}

fn not_a_tree(path: &[u8], what: &'static str, reason: &'static str) -> MergeError {
    MergeError::NotATree {
        path: String::from_utf8_lossy(path).into_owned(),
        what,
        reason,
    }
}

/// A tree (a charm base, or any directory) as a listing in tree order: unique clean paths,
/// each entry's parent present and a directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    entries: Vec<TreeEntry>,
}

impl Listing {
    /// Checks and sorts a listing (from [`walk_tree`] or built by hand).
    pub fn new(mut entries: Vec<TreeEntry>) -> Result<Self, MergeError> {
        entries.sort_unstable_by(|a, b| tree_order(&a.path, &b.path));
        let mut dirs: Vec<&[u8]> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            check_path(&entry.path, "listing")?;
            if i > 0 && entries[i - 1].path == entry.path {
                return Err(not_a_tree(&entry.path, "listing", "duplicate path"));
            }
            // `dirs` is the chain of directories above the current entry (tree order).
            while dirs.last().is_some_and(|d| !is_under(&entry.path, d)) {
                dirs.pop();
            }
            if parent_of(&entry.path) != dirs.last().copied() {
                return Err(not_a_tree(
                    &entry.path,
                    "listing",
                    "its parent is missing or not a directory",
                ));
            }
            if entry.kind == EntryKind::Dir {
                dirs.push(&entry.path);
            }
        }
        Ok(Self { entries })
    }

    /// Lists the tree at `dir` (no symlink followed, every file hashed).
    pub fn read_tree(dir: &std::path::Path) -> Result<Self, MergeError> {
        Self::new(walk_tree(dir)?)
    }

    /// The entries, in tree order.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// The entries, in tree order, by value.
    pub fn into_entries(self) -> Vec<TreeEntry> {
        self.entries
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &[u8]) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| tree_order(&e.path, path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The canonical digest of the tree (the charm store's key for a charm base).
    pub fn digest(&self) -> CharmDigest {
        digest_entries(&mut self.entries.clone())
    }

    pub(super) fn from_sorted_unchecked(entries: Vec<TreeEntry>) -> Self {
        Self { entries }
    }
}

/// What a runtime layer (or a stack of them, flattened) holds at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An entry the runtime wrote. A directory merges with the base's directory below it
    /// (and takes this mode); anything else replaces whatever the base has there.
    Write {
        /// Permission bits.
        mode: u32,
        /// The entry's type and content.
        kind: EntryKind,
    },
    /// A whiteout: the path (and anything below it in the base) is deleted.
    Whiteout,
    /// An opaque directory: nothing of the base below it shows, only the diff's own entries.
    OpaqueDir {
        /// Permission bits.
        mode: u32,
    },
}

impl Change {
    /// Whether this change is a directory (written or opaque).
    pub fn is_dir(&self) -> bool {
        matches!(
            self,
            Change::OpaqueDir { .. }
                | Change::Write {
                    kind: EntryKind::Dir,
                    ..
                }
        )
    }
}

/// One path of a runtime diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// Path relative to the charm dir.
    pub path: Vec<u8>,
    /// What is there.
    pub change: Change,
}

/// The effect of runtime layers over a base, as an overlay upper holds it: per path a written
/// entry, a whiteout or an opaque directory, in tree order. Every entry's parent is a
/// directory of the diff, as in an upper dir.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeDiff {
    entries: Vec<DiffEntry>,
}

impl RuntimeDiff {
    /// Checks and sorts a diff: clean unique paths, each entry's parent a directory of the
    /// diff (nothing under a whiteout or a non-directory).
    pub fn new(mut entries: Vec<DiffEntry>) -> Result<Self, MergeError> {
        entries.sort_unstable_by(|a, b| tree_order(&a.path, &b.path));
        let mut dirs: Vec<&[u8]> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            check_path(&entry.path, "runtime diff")?;
            if i > 0 && entries[i - 1].path == entry.path {
                return Err(not_a_tree(&entry.path, "runtime diff", "duplicate path"));
            }
            while dirs.last().is_some_and(|d| !is_under(&entry.path, d)) {
                dirs.pop();
            }
            if parent_of(&entry.path) != dirs.last().copied() {
                return Err(not_a_tree(
                    &entry.path,
                    "runtime diff",
                    "its parent is not a directory of the diff",
                ));
            }
            if entry.change.is_dir() {
                dirs.push(&entry.path);
            }
        }
        Ok(Self { entries })
    }

    /// The entries, in tree order.
    pub fn entries(&self) -> &[DiffEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the diff changes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn from_sorted_unchecked(entries: Vec<DiffEntry>) -> Self {
        Self { entries }
    }

    /// The tree an overlay of this diff over `base` shows (overlayfs rules: a whiteout or a
    /// non-directory hides everything of the base at and below its path; a written directory
    /// merges with the base's directory; an opaque directory shows only the diff's entries).
    pub fn apply(&self, base: &Listing) -> Listing {
        let mut out = Vec::with_capacity(base.len() + self.len());
        // Everything of the base under this path is hidden (outermost hiding path only:
        // tree order visits a subtree contiguously, so the first path outside it ends it).
        let mut hidden: Option<&[u8]> = None;
        join2(base.entries(), &self.entries, |path, b, d| {
            if hidden.is_some_and(|h| !is_under(path, h)) {
                hidden = None;
            }
            let b = if hidden.is_some() { None } else { b };
            match d {
                None => {
                    if let Some(b) = b {
                        out.push(b.clone());
                    }
                }
                Some(Change::Whiteout) => {
                    hidden.get_or_insert(path);
                }
                Some(Change::OpaqueDir { mode }) => {
                    hidden.get_or_insert(path);
                    out.push(TreeEntry {
                        path: path.to_vec(),
                        mode: *mode,
                        kind: EntryKind::Dir,
                    });
                }
                Some(Change::Write { mode, kind }) => {
                    if *kind != EntryKind::Dir || b.is_some_and(|b| b.kind != EntryKind::Dir) {
                        hidden.get_or_insert(path);
                    }
                    out.push(TreeEntry {
                        path: path.to_vec(),
                        mode: *mode,
                        kind: kind.clone(),
                    });
                }
            }
        });
        Listing::from_sorted_unchecked(out)
    }
}

/// Has a path: lets [`join2`] and [`join3`] merge listings and diffs alike.
pub(super) trait Pathed {
    fn path(&self) -> &[u8];
}

impl Pathed for TreeEntry {
    fn path(&self) -> &[u8] {
        &self.path
    }
}

impl Pathed for DiffEntry {
    fn path(&self) -> &[u8] {
        &self.path
    }
}

/// Calls `f` once per path of the union of two tree-ordered lists, in tree order, with the
/// entry each list has there. For a diff, `f` sees the `Change`.
pub(super) fn join2<'a, A: Pathed, B: DiffLike>(
    a: &'a [A],
    b: &'a [B],
    mut f: impl FnMut(&'a [u8], Option<&'a A>, Option<&'a B::Item>),
) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => tree_order(x.path(), y.path()),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                f(a[i].path(), Some(&a[i]), None);
                i += 1;
            }
            Ordering::Greater => {
                f(b[j].path(), None, Some(b[j].item()));
                j += 1;
            }
            Ordering::Equal => {
                f(a[i].path(), Some(&a[i]), Some(b[j].item()));
                i += 1;
                j += 1;
            }
        }
    }
}

/// A tree-ordered list whose entries carry an item (a diff's change, a listing's entry).
pub(super) trait DiffLike: Pathed {
    type Item;
    fn item(&self) -> &Self::Item;
}

impl DiffLike for DiffEntry {
    type Item = Change;
    fn item(&self) -> &Change {
        &self.change
    }
}

impl DiffLike for TreeEntry {
    type Item = TreeEntry;
    fn item(&self) -> &TreeEntry {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn file(path: &str, content: u8) -> TreeEntry {
        TreeEntry {
            path: path.as_bytes().to_vec(),
            mode: 0o644,
            kind: EntryKind::File {
                sha256: [content; 32],
                size: 1,
            },
        }
    }

    pub(crate) fn dir(path: &str) -> TreeEntry {
        TreeEntry {
            path: path.as_bytes().to_vec(),
            mode: 0o755,
            kind: EntryKind::Dir,
        }
    }

    #[test]
    fn tree_order_is_a_preorder_walk() {
        let mut paths = vec!["a.b", "a/c", "a", "a-", "a/b/c", "a/b", "b"];
        paths.sort_by(|x, y| tree_order(x.as_bytes(), y.as_bytes()));
        assert_eq!(paths, ["a", "a/b", "a/b/c", "a/c", "a-", "a.b", "b"]);
    }

    #[test]
    fn listings_must_be_trees_of_clean_paths() {
        assert!(Listing::new(vec![dir("a"), file("a/b", 1)]).is_ok());
        for bad in [
            vec![file("a/b", 1)],
            vec![file("a", 1), file("a/b", 1)],
            vec![dir("a"), dir("a")],
            vec![file("/a", 1)],
            vec![dir("a"), file("a/../b", 1)],
            vec![file("a/", 1)],
        ] {
            assert!(Listing::new(bad.clone()).is_err(), "{bad:?}");
        }
        let whiteout = |p: &str| DiffEntry {
            path: p.as_bytes().to_vec(),
            change: Change::Whiteout,
        };
        assert!(RuntimeDiff::new(vec![whiteout("a"), whiteout("a/b")]).is_err());
        assert!(RuntimeDiff::new(vec![whiteout("a/b")]).is_err());
    }

    #[test]
    fn apply_follows_overlay_rules() {
        let base = Listing::new(vec![
            dir("d"),
            file("d/x", 1),
            file("d/y", 1),
            dir("o"),
            file("o/old", 1),
            dir("w"),
            file("w/x", 1),
            file("f", 1),
        ])
        .unwrap();
        let write = |p: &str, e: TreeEntry| DiffEntry {
            path: p.as_bytes().to_vec(),
            change: Change::Write {
                mode: e.mode,
                kind: e.kind,
            },
        };
        let diff = RuntimeDiff::new(vec![
            write("d", dir("d")),
            write("d/x", file("d/x", 2)),
            DiffEntry {
                path: b"o".to_vec(),
                change: Change::OpaqueDir { mode: 0o700 },
            },
            write("o/new", file("o/new", 3)),
            DiffEntry {
                path: b"w".to_vec(),
                change: Change::Whiteout,
            },
            write("f", dir("f")),
            write("f/in", file("f/in", 4)),
        ])
        .unwrap();
        let mut o = dir("o");
        o.mode = 0o700;
        assert_eq!(
            diff.apply(&base).into_entries(),
            vec![
                dir("d"),
                file("d/x", 2),
                file("d/y", 1),
                dir("f"),
                file("f/in", 4),
                o,
                file("o/new", 3)
            ]
        );
    }
}
