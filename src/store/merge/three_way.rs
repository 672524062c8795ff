//! The pure three-way merge: old charm base, runtime diff, new charm base.
//!
//! Per path `p`, with `o`, `r`, `n` what the old base, the runtime view (runtime diff over the
//! old base) and the new base hold there (type, mode and content; a mode-only change is a
//! change):
//! - `r == o`: the runtime left `p` alone, the new charm's entry wins;
//! - `n == o`: the charm left `p` alone, the runtime's entry survives (a runtime delete stays
//!   deleted);
//! - `r == n`: both made the same change, no conflict;
//! - otherwise a conflict of a named [`ConflictKind`].
//!
//! Subtrees: when the side that wins `p` makes it a non-directory or deletes it while the
//! other side *wrote* something below `p` (a runtime file under a directory the new charm
//! replaced with a file, a charm file added under a directory the runtime deleted), that is
//! one conflict at `p` (directory/file, modify/delete or delete/modify) naming the runtime's
//! paths below it. Deletions below `p` on the losing side agree with the winner and are not
//! conflicts. A directory both sides have merges entry by entry, whoever created it.
//!
//! The merged tree is then written as the minimal diff over the new base: only the paths
//! where it differs from the new base, whiteouts where it lacks a path the new base has, an
//! opaque directory where a directory replaces a new-base non-directory, and the directories
//! that hold them. An opaque runtime directory therefore merges like the per-entry changes it
//! stands for. Everything is one pass over the three tree-ordered listings: linear.

use std::fmt;

use crate::store::digest::{EntryKind, TreeEntry};

use super::tree::{Change, DiffEntry, Listing, RuntimeDiff, is_bytecode_path, is_under, join2};

/// What the merge found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// No conflict: the unit's new runtime diff over the new charm base.
    Merged(RuntimeDiff),
    /// Both sides changed these paths; the charm dir must stay as it is.
    Conflicts(Vec<Conflict>),
}

/// The named kinds of conflict (DESIGN.md rule 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ConflictKind {
    /// Both sides changed an entry the old charm had, differently.
    #[serde(rename = "modify/modify")]
    ModifyModify,
    /// Both sides added an entry the old charm did not have, with different content.
    #[serde(rename = "add/add")]
    AddAdd,
    /// The runtime changed it (or wrote below it), the new charm deleted it.
    #[serde(rename = "modify/delete")]
    ModifyDelete,
    /// The runtime deleted it, the new charm changed it (or added below it).
    #[serde(rename = "delete/modify")]
    DeleteModify,
    /// One side has a directory, the other a non-directory.
    #[serde(rename = "directory/file")]
    DirectoryFile,
    /// One side has a symlink, the other a regular file.
    #[serde(rename = "symlink/file")]
    SymlinkFile,
    /// Both sides changed the entry's type, differently, or to something else than the above.
    #[serde(rename = "type change")]
    TypeChange,
}

impl ConflictKind {
    /// The kind's name as reports show it (`modify/modify`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModifyModify => "modify/modify",
            Self::AddAdd => "add/add",
            Self::ModifyDelete => "modify/delete",
            Self::DeleteModify => "delete/modify",
            Self::DirectoryFile => "directory/file",
            Self::SymlinkFile => "symlink/file",
            Self::TypeChange => "type change",
        }
    }
}

impl fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of an entry, as a conflict report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symlink.
    Symlink,
    /// A device node, fifo or socket.
    Special,
}

impl EntryType {
    fn of(kind: &EntryKind) -> Self {
        match kind {
            EntryKind::File { .. } => Self::File,
            EntryKind::Dir => Self::Directory,
            EntryKind::Symlink { .. } => Self::Symlink,
            EntryKind::Special { .. } => Self::Special,
        }
    }
}

/// One conflicting path: what each side has there and which runtime changes are involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The path, relative to the charm dir.
    pub path: Vec<u8>,
    /// The kind of conflict.
    pub kind: ConflictKind,
    /// What the old charm had at `path` (`None`: nothing).
    pub old_charm: Option<EntryType>,
    /// What the unit's runtime view has at `path` (`None`: deleted or never there).
    pub runtime: Option<EntryType>,
    /// What the new charm has at `path`.
    pub new_charm: Option<EntryType>,
    /// The runtime's changes involved: `path` itself if the runtime changed it, and every
    /// runtime-changed path below it, in tree order.
    pub runtime_paths: Vec<Vec<u8>>,
    /// Every runtime change involved is Python bytecode (`__pycache__/`, `*.pyc`): the
    /// likely cause is bytecode a hook wrote at runtime, safe to delete.
    pub likely_bytecode: bool,
}

impl Conflict {
    /// The path, lossily decoded for display.
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |t: Option<EntryType>| match t {
            None => "absent",
            Some(EntryType::File) => "file",
            Some(EntryType::Directory) => "directory",
            Some(EntryType::Symlink) => "symlink",
            Some(EntryType::Special) => "special file",
        };
        write!(
            f,
            "{} ({}): runtime has {}, new charm has {}",
            self.display_path(),
            self.kind,
            side(self.runtime),
            side(self.new_charm)
        )?;
        if self.likely_bytecode {
            f.write_str("; likely cause: runtime-written Python bytecode")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Conflict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Conflict", 7)?;
        st.serialize_field("path", &self.display_path())?;
        st.serialize_field("kind", &self.kind)?;
        st.serialize_field("old_charm", &self.old_charm)?;
        st.serialize_field("runtime", &self.runtime)?;
        st.serialize_field("new_charm", &self.new_charm)?;
        let paths: Vec<_> = self
            .runtime_paths
            .iter()
            .map(|p| String::from_utf8_lossy(p))
            .collect();
        st.serialize_field("runtime_paths", &paths)?;
        st.serialize_field("likely_bytecode", &self.likely_bytecode)?;
        st.end()
    }
}

/// What one tree holds at a path.
type View<'a> = Option<&'a TreeEntry>;

fn same(a: View<'_>, b: View<'_>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.mode == b.mode && a.kind == b.kind,
        _ => false,
    }
}

fn is_dir(v: View<'_>) -> bool {
    v.is_some_and(|e| e.kind == EntryKind::Dir)
}

/// One path of the union of the three trees.
struct Row<'a> {
    path: &'a [u8],
    old: View<'a>,
    runtime: View<'a>,
    new: View<'a>,
}

/// Merges the unit's runtime diff (over `old_base`) onto `new_base`.
pub fn merge(old_base: &Listing, runtime: &RuntimeDiff, new_base: &Listing) -> MergeOutcome {
    let runtime_view = runtime.apply(old_base);
    let rows = join3(
        old_base.entries(),
        runtime_view.entries(),
        new_base.entries(),
    );
    let (runtime_wrote_below, charm_wrote_below) = written_below(&rows);

    let mut merged: Vec<View<'_>> = Vec::with_capacity(rows.len());
    let mut conflicts: Vec<Conflict> = Vec::new();
    // The path of the last conflict while rows are below it: folded into that conflict.
    let mut folding: Option<&[u8]> = None;
    for (i, row) in rows.iter().enumerate() {
        let runtime_changed = !same(row.runtime, row.old);
        if let Some(top) = folding {
            if is_under(row.path, top) {
                if runtime_changed {
                    let conflict = conflicts.last_mut().expect("folding follows a conflict");
                    conflict.runtime_paths.push(row.path.to_vec());
                }
                merged.push(None);
                continue;
            }
            folding = None;
        }
        let (result, kind) = if !runtime_changed {
            // The charm's entry wins; it must not drop anything the runtime wrote below.
            let kind =
                (!is_dir(row.new) && runtime_wrote_below[i]).then_some(if row.new.is_none() {
                    ConflictKind::ModifyDelete
                } else {
                    ConflictKind::DirectoryFile
                });
            (row.new, kind)
        } else if same(row.new, row.old) {
            // The runtime's entry survives; it must not drop anything the charm wrote below.
            let kind = (!is_dir(row.runtime) && charm_wrote_below[i]).then_some(
                if row.runtime.is_none() {
                    ConflictKind::DeleteModify
                } else {
                    ConflictKind::DirectoryFile
                },
            );
            (row.runtime, kind)
        } else if same(row.runtime, row.new) {
            (row.runtime, None)
        } else {
            (None, Some(entry_conflict(row)))
        };
        match kind {
            None => merged.push(result),
            Some(kind) => {
                conflicts.push(Conflict {
                    path: row.path.to_vec(),
                    kind,
                    old_charm: row.old.map(|e| EntryType::of(&e.kind)),
                    runtime: row.runtime.map(|e| EntryType::of(&e.kind)),
                    new_charm: row.new.map(|e| EntryType::of(&e.kind)),
                    runtime_paths: if runtime_changed {
                        vec![row.path.to_vec()]
                    } else {
                        Vec::new()
                    },
                    likely_bytecode: false,
                });
                folding = Some(row.path);
                merged.push(None);
            }
        }
    }
    if !conflicts.is_empty() {
        for conflict in &mut conflicts {
            conflict.likely_bytecode = if conflict.runtime_paths.is_empty() {
                is_bytecode_path(&conflict.path)
            } else {
                conflict.runtime_paths.iter().all(|p| is_bytecode_path(p))
            };
        }
        return MergeOutcome::Conflicts(conflicts);
    }
    let mut diff = DiffBuilder::default();
    for (row, result) in rows.iter().zip(merged) {
        diff.push(row.path, result, row.new);
    }
    MergeOutcome::Merged(RuntimeDiff::from_sorted_unchecked(diff.out))
}

/// The minimal runtime diff that shows `target` over `base` (what [`merge`] returns for the
/// merged tree; with `base` the old charm, a normalised form of any runtime diff).
pub fn diff_listings(base: &Listing, target: &Listing) -> RuntimeDiff {
    let mut diff = DiffBuilder::default();
    join2(base.entries(), target.entries(), |path, b, t| {
        diff.push(path, t, b);
    });
    RuntimeDiff::from_sorted_unchecked(diff.out)
}

/// The kind of a conflict on one entry both sides changed differently.
fn entry_conflict(row: &Row<'_>) -> ConflictKind {
    match (row.runtime, row.new) {
        (Some(r), Some(n)) => {
            let (tr, tn) = (EntryType::of(&r.kind), EntryType::of(&n.kind));
            if tr != tn {
                if tr == EntryType::Directory || tn == EntryType::Directory {
                    ConflictKind::DirectoryFile
                } else if matches!(
                    (tr, tn),
                    (EntryType::Symlink, EntryType::File) | (EntryType::File, EntryType::Symlink)
                ) {
                    ConflictKind::SymlinkFile
                } else {
                    ConflictKind::TypeChange
                }
            } else {
                match row.old {
                    None => ConflictKind::AddAdd,
                    Some(o) if EntryType::of(&o.kind) == tr => ConflictKind::ModifyModify,
                    Some(_) => ConflictKind::TypeChange,
                }
            }
        }
        (Some(_), None) => ConflictKind::ModifyDelete,
        // Both absent is never a conflict; runtime absent, charm present.
        _ => ConflictKind::DeleteModify,
    }
}

/// Merge-joins the three tree-ordered listings into rows.
fn join3<'a>(old: &'a [TreeEntry], runtime: &'a [TreeEntry], new: &'a [TreeEntry]) -> Vec<Row<'a>> {
    let mut rows = Vec::with_capacity(old.len().max(new.len()) + runtime.len() / 8);
    let (mut i, mut j, mut k) = (0, 0, 0);
    loop {
        let path = [old.get(i), runtime.get(j), new.get(k)]
            .into_iter()
            .flatten()
            .map(|e| e.path.as_slice())
            .min_by(|a, b| super::tree::tree_order(a, b));
        let Some(path) = path else { break };
        let take = |list: &'a [TreeEntry], at: &mut usize| -> View<'a> {
            let entry = list.get(*at).filter(|e| e.path == path)?;
            *at += 1;
            Some(entry)
        };
        let old_entry = take(old, &mut i);
        let runtime_entry = take(runtime, &mut j);
        let new_entry = take(new, &mut k);
        rows.push(Row {
            path,
            old: old_entry,
            runtime: runtime_entry,
            new: new_entry,
        });
    }
    rows
}

/// For each row: whether the runtime view, and the new base, has below it an entry that is
/// present and differs from the old base (a write, as opposed to a delete).
fn written_below(rows: &[Row<'_>]) -> (Vec<bool>, Vec<bool>) {
    let mut runtime = vec![false; rows.len()];
    let mut charm = vec![false; rows.len()];
    // The chain of ancestors of the current row (every ancestor is a row: trees are complete).
    let mut stack: Vec<usize> = Vec::new();
    let finish = |done: usize, parent: Option<&usize>, runtime: &mut [bool], charm: &mut [bool]| {
        let Some(&parent) = parent else { return };
        let row = &rows[done];
        if runtime[done] || (row.runtime.is_some() && !same(row.runtime, row.old)) {
            runtime[parent] = true;
        }
        if charm[done] || (row.new.is_some() && !same(row.new, row.old)) {
            charm[parent] = true;
        }
    };
    for (i, row) in rows.iter().enumerate() {
        while let Some(&top) = stack.last() {
            if is_under(row.path, rows[top].path) {
                break;
            }
            stack.pop();
            finish(top, stack.last(), &mut runtime, &mut charm);
        }
        stack.push(i);
    }
    while let Some(top) = stack.pop() {
        finish(top, stack.last(), &mut runtime, &mut charm);
    }
    (runtime, charm)
}

/// Builds the minimal diff of a target tree over a base, fed one path at a time in tree
/// order with what each tree has there.
#[derive(Default)]
struct DiffBuilder<'a> {
    out: Vec<DiffEntry>,
    /// Directories above the current path: (path, mode, already emitted).
    dirs: Vec<(&'a [u8], u32, bool)>,
    /// The base's entries below this path are hidden by a whiteout or a non-directory.
    hidden: Option<&'a [u8]>,
}

impl<'a> DiffBuilder<'a> {
    fn push(&mut self, path: &'a [u8], target: View<'a>, base: View<'a>) {
        if let Some(hidden) = self.hidden {
            if is_under(path, hidden) {
                return;
            }
            self.hidden = None;
        }
        while self.dirs.last().is_some_and(|(d, _, _)| !is_under(path, d)) {
            self.dirs.pop();
        }
        let Some(entry) = target else {
            if base.is_some() {
                self.emit(path, Change::Whiteout);
                self.hidden = Some(path);
            }
            return;
        };
        if entry.kind == EntryKind::Dir {
            let emitted = !same(target, base);
            if emitted {
                let change = if base.is_some_and(|b| b.kind != EntryKind::Dir) {
                    Change::OpaqueDir { mode: entry.mode }
                } else {
                    Change::Write {
                        mode: entry.mode,
                        kind: EntryKind::Dir,
                    }
                };
                self.emit(path, change);
            }
            self.dirs.push((path, entry.mode, emitted));
        } else if !same(target, base) {
            self.emit(
                path,
                Change::Write {
                    mode: entry.mode,
                    kind: entry.kind.clone(),
                },
            );
            if base.is_some() {
                self.hidden = Some(path);
            }
        }
    }

    fn emit(&mut self, path: &[u8], change: Change) {
        for (dir, mode, emitted) in self.dirs.iter_mut().filter(|d| !d.2) {
            self.out.push(DiffEntry {
                path: dir.to_vec(),
                change: Change::Write {
                    mode: *mode,
                    kind: EntryKind::Dir,
                },
            });
            *emitted = true;
        }
        self.out.push(DiffEntry {
            path: path.to_vec(),
            change,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `"d/"` directory (755), `"f=c"` file with content byte `c` (644), `"l->t"` symlink,
    /// an optional ` 700` suffix for the mode.
    fn entry(spec: &str) -> TreeEntry {
        let (body, mode) = match spec.split_once(' ') {
            Some((b, m)) => (b, Some(u32::from_str_radix(m, 8).unwrap())),
            None => (spec, None),
        };
        let (path, kind, default_mode) = if let Some(p) = body.strip_suffix('/') {
            (p, EntryKind::Dir, 0o755)
        } else if let Some((p, t)) = body.split_once("->") {
            (
                p,
                EntryKind::Symlink {
                    target: t.as_bytes().to_vec(),
                },
                0o777,
            )
        } else {
            let (p, c) = body.split_once('=').unwrap();
            (
                p,
                EntryKind::File {
                    sha256: [c.as_bytes()[0]; 32],
                    size: 1,
                },
                0o644,
            )
        };
        TreeEntry {
            path: path.as_bytes().to_vec(),
            mode: mode.unwrap_or(default_mode),
            kind,
        }
    }

    fn tree(specs: &[&str]) -> Listing {
        Listing::new(specs.iter().map(|s| entry(s)).collect()).unwrap()
    }

    /// Like [`entry`], plus `"-p"` whiteout and `"!p/"` opaque directory.
    fn diff(specs: &[&str]) -> RuntimeDiff {
        RuntimeDiff::new(
            specs
                .iter()
                .map(|s| {
                    if let Some(p) = s.strip_prefix('-') {
                        DiffEntry {
                            path: p.as_bytes().to_vec(),
                            change: Change::Whiteout,
                        }
                    } else if let Some(p) = s.strip_prefix('!') {
                        let e = entry(p);
                        DiffEntry {
                            path: e.path,
                            change: Change::OpaqueDir { mode: e.mode },
                        }
                    } else {
                        let e = entry(s);
                        DiffEntry {
                            path: e.path,
                            change: Change::Write {
                                mode: e.mode,
                                kind: e.kind,
                            },
                        }
                    }
                })
                .collect(),
        )
        .unwrap()
    }

    fn merged(old: &Listing, runtime: &RuntimeDiff, new: &Listing) -> RuntimeDiff {
        match merge(old, runtime, new) {
            MergeOutcome::Merged(d) => d,
            MergeOutcome::Conflicts(c) => panic!("unexpected conflicts: {c:#?}"),
        }
    }

    fn conflicts(old: &Listing, runtime: &RuntimeDiff, new: &Listing) -> Vec<Conflict> {
        match merge(old, runtime, new) {
            MergeOutcome::Merged(d) => panic!("expected conflicts, merged: {d:#?}"),
            MergeOutcome::Conflicts(c) => c,
        }
    }

    /// The one conflict, as (path, kind, runtime paths).
    fn one_conflict(
        old: &Listing,
        runtime: &RuntimeDiff,
        new: &Listing,
    ) -> (String, ConflictKind, Vec<String>, bool) {
        let found = conflicts(old, runtime, new);
        assert_eq!(found.len(), 1, "{found:#?}");
        let c = &found[0];
        let paths = c
            .runtime_paths
            .iter()
            .map(|p| String::from_utf8(p.clone()).unwrap())
            .collect();
        (c.display_path(), c.kind, paths, c.likely_bytecode)
    }

    #[test]
    fn runtime_only_and_charm_only_changes_both_apply() {
        let old = tree(&["a=1", "b=1", "d/", "d/x=1"]);
        let runtime = diff(&["a=2", "d/", "d/new=2"]);
        let new = tree(&["a=1", "b=3", "c=3", "d/", "d/x=3"]);
        let result = merged(&old, &runtime, &new);
        assert_eq!(result, diff(&["a=2", "d/", "d/new=2"]));
        assert_eq!(
            result.apply(&new),
            tree(&["a=2", "b=3", "c=3", "d/", "d/new=2", "d/x=3"])
        );
    }

    #[test]
    fn identical_changes_on_both_sides_are_not_conflicts() {
        let old = tree(&["a=1", "m=1"]);
        let runtime = diff(&["a=2", "new=5", "m=1 755", "-gone"]);
        let new = tree(&["a=2", "m=1 755", "new=5"]);
        assert_eq!(merged(&old, &runtime, &new), RuntimeDiff::default());
    }

    #[test]
    fn runtime_delete_of_a_file_the_charm_left_alone_stays_deleted() {
        let old = tree(&["x=1", "y=1"]);
        let new = tree(&["x=1", "y=2"]);
        let result = merged(&old, &diff(&["-x"]), &new);
        assert_eq!(result, diff(&["-x"]));
        assert_eq!(result.apply(&new), tree(&["y=2"]));
    }

    #[test]
    fn runtime_delete_of_a_file_the_charm_changed_is_delete_modify() {
        let old = tree(&["x=1"]);
        let found = one_conflict(&old, &diff(&["-x"]), &tree(&["x=2"]));
        assert_eq!(
            found,
            (
                "x".into(),
                ConflictKind::DeleteModify,
                vec!["x".into()],
                false
            )
        );
    }

    #[test]
    fn both_modified_is_modify_modify_and_a_mode_change_is_a_modification() {
        let old = tree(&["x=1"]);
        assert_eq!(
            one_conflict(&old, &diff(&["x=2"]), &tree(&["x=3"])).1,
            ConflictKind::ModifyModify
        );
        assert_eq!(
            one_conflict(&old, &diff(&["x=1 755"]), &tree(&["x=3"])).1,
            ConflictKind::ModifyModify
        );
        assert_eq!(
            one_conflict(&old, &diff(&["x=1 755"]), &tree(&["x=1 700"])).1,
            ConflictKind::ModifyModify
        );
        // A mode change alone survives an unrelated charm change.
        let result = merged(
            &tree(&["x=1", "y=1"]),
            &diff(&["x=1 755"]),
            &tree(&["x=1", "y=2"]),
        );
        assert_eq!(result, diff(&["x=1 755"]));
    }

    #[test]
    fn add_add_conflicts_only_with_different_content() {
        let old = tree(&["a=1"]);
        let found = one_conflict(&old, &diff(&["n=2"]), &tree(&["a=1", "n=3"]));
        assert_eq!(
            found,
            ("n".into(), ConflictKind::AddAdd, vec!["n".into()], false)
        );
        assert!(merged(&old, &diff(&["n=2"]), &tree(&["a=1", "n=2"])).is_empty());
    }

    #[test]
    fn runtime_modified_file_the_charm_deleted_is_modify_delete() {
        let old = tree(&["x=1", "y=1"]);
        let found = one_conflict(&old, &diff(&["x=2"]), &tree(&["y=1"]));
        assert_eq!(found.1, ConflictKind::ModifyDelete);
    }

    #[test]
    fn runtime_file_under_a_directory_the_charm_made_a_file_is_directory_file() {
        let old = tree(&["lib/", "lib/a=1", "lib/b=1"]);
        let new = tree(&["lib=9"]);
        let runtime = diff(&["lib/", "lib/local=2", "-lib/b"]);
        let found = one_conflict(&old, &runtime, &new);
        assert_eq!(
            found,
            (
                "lib".into(),
                ConflictKind::DirectoryFile,
                vec!["lib/b".into(), "lib/local".into()],
                false
            )
        );
        let c = &conflicts(&old, &runtime, &new)[0];
        assert_eq!(
            (c.old_charm, c.runtime, c.new_charm),
            (
                Some(EntryType::Directory),
                Some(EntryType::Directory),
                Some(EntryType::File)
            )
        );
        // Deleting inside it agrees with the charm: no conflict.
        let result = merged(&old, &diff(&["lib/", "-lib/b"]), &new);
        assert!(result.is_empty(), "{result:?}");
    }

    #[test]
    fn runtime_bytecode_is_flagged_as_the_likely_cause() {
        let old = tree(&["lib/", "lib/m.py=1"]);
        let new = tree(&["lib=9"]);
        let runtime = diff(&[
            "lib/",
            "lib/__pycache__/",
            "lib/__pycache__/m.cpython-312.pyc=2",
        ]);
        let (path, kind, paths, bytecode) = one_conflict(&old, &runtime, &new);
        assert_eq!((path.as_str(), kind), ("lib", ConflictKind::DirectoryFile));
        assert_eq!(paths.len(), 2);
        assert!(bytecode);
        let text = conflicts(&old, &runtime, &new)[0].to_string();
        assert!(
            text.contains("likely cause: runtime-written Python bytecode"),
            "{text}"
        );
        let runtime = diff(&[
            "lib/",
            "lib/__pycache__/",
            "lib/__pycache__/m.pyc=2",
            "lib/x=2",
        ]);
        assert!(!one_conflict(&old, &runtime, &new).3);
        let stray = one_conflict(
            &tree(&["x.pyc=1"]),
            &diff(&["x.pyc=2"]),
            &tree(&["x.pyc=3"]),
        );
        assert!(stray.3);
    }

    #[test]
    fn symlink_against_file_is_symlink_file() {
        let old = tree(&["x=1"]);
        let found = one_conflict(&old, &diff(&["x->elsewhere"]), &tree(&["x=2"]));
        assert_eq!(found.1, ConflictKind::SymlinkFile);
        let found = one_conflict(&old, &diff(&["x=2"]), &tree(&["x->t"]));
        assert_eq!(found.1, ConflictKind::SymlinkFile);
    }

    #[test]
    fn both_changing_the_type_differently_is_a_type_change() {
        let old = tree(&["x=1"]);
        let found = one_conflict(&old, &diff(&["x->a"]), &tree(&["x->b"]));
        assert_eq!(found.1, ConflictKind::TypeChange);
        let old = tree(&["d/"]);
        let found = one_conflict(&old, &diff(&["d=1"]), &tree(&["d=2"]));
        assert_eq!(found.1, ConflictKind::TypeChange);
    }

    #[test]
    fn file_against_directory_on_one_entry_is_directory_file() {
        let old = tree(&["a=1"]);
        let found = one_conflict(&old, &diff(&["n/", "n/x=1"]), &tree(&["a=1", "n=2"]));
        assert_eq!(
            found,
            (
                "n".into(),
                ConflictKind::DirectoryFile,
                vec!["n".into(), "n/x".into()],
                false
            )
        );
    }

    #[test]
    fn a_directory_both_sides_created_merges_by_content() {
        let old = tree(&["a=1"]);
        let runtime = diff(&["new/", "new/mine=1", "new/same=7"]);
        let new = tree(&["a=1", "new/", "new/theirs=2", "new/same=7"]);
        let result = merged(&old, &runtime, &new);
        assert_eq!(result, diff(&["new/", "new/mine=1"]));
        assert_eq!(
            result.apply(&new),
            tree(&["a=1", "new/", "new/mine=1", "new/same=7", "new/theirs=2"])
        );
        let clash = diff(&["new/", "new/theirs=3"]);
        assert_eq!(one_conflict(&old, &clash, &new).1, ConflictKind::AddAdd);
    }

    #[test]
    fn an_opaque_runtime_directory_merges_as_per_entry_changes() {
        let old = tree(&["d/", "d/x=1", "d/y=1"]);
        // The runtime did `rm -rf d; mkdir d; echo 1 >d/x; echo 2 >d/z`.
        let runtime = diff(&["!d/", "d/x=1", "d/z=2"]);
        let new = tree(&["d/", "d/n=3", "d/x=1", "d/y=1"]);
        let result = merged(&old, &runtime, &new);
        // Not opaque any more: the charm's new d/n shows; y stays deleted.
        assert_eq!(result, diff(&["d/", "-d/y", "d/z=2"]));
        assert_eq!(result.apply(&new), tree(&["d/", "d/n=3", "d/x=1", "d/z=2"]));
        // A charm change to what the opaque dir hid is a delete/modify.
        let changed = tree(&["d/", "d/x=1", "d/y=5"]);
        assert_eq!(
            one_conflict(&old, &runtime, &changed),
            (
                "d/y".into(),
                ConflictKind::DeleteModify,
                vec!["d/y".into()],
                false
            )
        );
    }

    #[test]
    fn whole_directory_deletes_against_additions_conflict_at_the_directory() {
        let old = tree(&["d/", "d/x=1"]);
        let found = one_conflict(&old, &diff(&["-d"]), &tree(&["d/", "d/x=1", "d/new=2"]));
        assert_eq!(
            found,
            (
                "d".into(),
                ConflictKind::DeleteModify,
                vec!["d".into(), "d/x".into()],
                false
            )
        );
        let found = one_conflict(&old, &diff(&["d/", "d/mine=2"]), &tree(&[]));
        assert_eq!(
            found,
            (
                "d".into(),
                ConflictKind::ModifyDelete,
                vec!["d/mine".into()],
                false
            )
        );
        // Both deleting agrees.
        assert!(merged(&old, &diff(&["-d"]), &tree(&[])).is_empty());
        // A runtime dir replacing a file the charm kept is re-emitted opaque.
        let result = merged(
            &tree(&["p=1"]),
            &diff(&["!p/", "p/a=1"]),
            &tree(&["p=1", "q=1"]),
        );
        assert_eq!(result, diff(&["!p/", "p/a=1"]));
    }

    #[test]
    fn conflicts_serialise_for_status_json() {
        let old = tree(&["x=1"]);
        let c = &conflicts(&old, &diff(&["x=2"]), &tree(&["x->t"]))[0];
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "path": "x", "kind": "symlink/file", "old_charm": "file", "runtime": "file",
                "new_charm": "symlink", "runtime_paths": ["x"], "likely_bytecode": false
            })
        );
    }

    // --- properties over random small trees -------------------------------------------

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn universe() -> Vec<String> {
        let mut paths: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
        for depth in 0..2 {
            let prefix: Vec<String> = paths
                .iter()
                .filter(|p| p.matches('/').count() == depth)
                .cloned()
                .collect();
            for p in prefix {
                for n in NAMES {
                    paths.push(format!("{p}/{n}"));
                }
            }
        }
        paths
    }

    /// One choice per universe path: 0-3 absent, 4-6 dir, 7-10 files, 11 symlink.
    fn build(choices: &[u8]) -> Listing {
        let mut entries: Vec<TreeEntry> = Vec::new();
        for (path, choice) in universe().iter().zip(choices) {
            let parent_ok = match path.rfind('/') {
                None => true,
                Some(i) => entries
                    .iter()
                    .any(|e| e.path == path.as_bytes()[..i] && e.kind == EntryKind::Dir),
            };
            let spec = match choice % 12 {
                0..=3 => continue,
                4 | 5 => format!("{path}/"),
                6 => format!("{path}/ 700"),
                7 => format!("{path}=1"),
                8 => format!("{path}=2"),
                9 => format!("{path}=1 755"),
                10 => format!("{path}=3"),
                _ => format!("{path}->t"),
            };
            if parent_ok {
                entries.push(entry(&spec));
            }
        }
        Listing::new(entries).unwrap()
    }

    /// A variant of `base`: each path keeps its base choice unless `mutate` says otherwise.
    fn variant(base: &[u8], mutate: &[Option<u8>]) -> Vec<u8> {
        base.iter()
            .zip(mutate)
            .map(|(b, m)| m.unwrap_or(*b))
            .collect()
    }

    /// The same runtime view written the clumsy way overlay sometimes does: every top-level
    /// directory opaque and fully rewritten, whiteouts for every top-level base path gone.
    fn opaque_form(old: &Listing, view: &Listing) -> RuntimeDiff {
        let mut out = Vec::new();
        for e in view.entries() {
            let change = if e.kind == EntryKind::Dir && !e.path.contains(&b'/') {
                Change::OpaqueDir { mode: e.mode }
            } else {
                Change::Write {
                    mode: e.mode,
                    kind: e.kind.clone(),
                }
            };
            out.push(DiffEntry {
                path: e.path.clone(),
                change,
            });
        }
        for e in old.entries() {
            if !e.path.contains(&b'/') && view.get(&e.path).is_none() {
                out.push(DiffEntry {
                    path: e.path.clone(),
                    change: Change::Whiteout,
                });
            }
        }
        RuntimeDiff::new(out).unwrap()
    }

    fn choices() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), universe().len())
    }

    fn mutation() -> impl Strategy<Value = Vec<Option<u8>>> {
        proptest::collection::vec(
            prop_oneof![3 => Just(None), 1 => any::<u8>().prop_map(Some)],
            universe().len(),
        )
    }

    proptest! {
        #[test]
        fn unchanged_charm_keeps_the_runtime_diff(base in choices(), m in mutation()) {
            let old = build(&base);
            let view = build(&variant(&base, &m));
            let runtime = diff_listings(&old, &view);
            prop_assert_eq!(runtime.apply(&old), view.clone());
            prop_assert_eq!(merge(&old, &runtime, &old), MergeOutcome::Merged(runtime.clone()));
            // An opaque, redundant form of the same view normalises to the same diff.
            let clumsy = opaque_form(&old, &view);
            prop_assert_eq!(clumsy.apply(&old), view);
            prop_assert_eq!(merge(&old, &clumsy, &old), MergeOutcome::Merged(runtime));
        }

        #[test]
        fn empty_runtime_diff_merges_to_empty(base in choices(), m in mutation()) {
            let old = build(&base);
            let new = build(&variant(&base, &m));
            prop_assert_eq!(
                merge(&old, &RuntimeDiff::default(), &new),
                MergeOutcome::Merged(RuntimeDiff::default())
            );
        }

        #[test]
        fn merged_tree_keeps_each_sides_changes(
            base in choices(), mr in mutation(), mn in mutation(), opaque in any::<bool>()
        ) {
            let old = build(&base);
            let view = build(&variant(&base, &mr));
            let new = build(&variant(&base, &mn));
            let runtime = if opaque { opaque_form(&old, &view) } else { diff_listings(&old, &view) };
            match merge(&old, &runtime, &new) {
                MergeOutcome::Merged(result) => {
                    // A valid upper over a valid tree.
                    let checked = RuntimeDiff::new(result.entries().to_vec()).unwrap();
                    prop_assert_eq!(&checked, &result);
                    let shown = result.apply(&new);
                    prop_assert!(Listing::new(shown.entries().to_vec()).is_ok());
                    for path in universe() {
                        let p = path.as_bytes();
                        let (o, r, n, s) = (old.get(p), view.get(p), new.get(p), shown.get(p));
                        if same(n, o) {
                            prop_assert!(same(s, r), "{path}: charm unchanged, runtime kept");
                        }
                        if same(r, o) {
                            prop_assert!(same(s, n), "{path}: runtime unchanged, charm wins");
                        }
                    }
                    // Minimal: the merged diff is the diff of the merged tree.
                    prop_assert_eq!(diff_listings(&new, &shown), result);
                }
                MergeOutcome::Conflicts(found) => {
                    prop_assert!(!found.is_empty());
                    for c in found {
                        // Both sides changed something at or below each conflict.
                        let touched = |a: &Listing, b: &Listing| universe().iter().any(|q| {
                            let q = q.as_bytes();
                            (q == c.path.as_slice() || super::is_under(q, &c.path))
                                && !same(a.get(q), b.get(q))
                        });
                        prop_assert!(touched(&old, &view), "{}: runtime changed nothing", c);
                        prop_assert!(touched(&old, &new), "{}: charm changed nothing", c);
                    }
                }
            }
        }
    }
}
