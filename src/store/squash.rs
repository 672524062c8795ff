//! Squash: merge several overlay layers into one, exactly as overlayfs shows them stacked,
//! and the tree removal every layer operation uses.
//!
//! This is the one place hookbox copies what a hook wrote, so it is written against hostile
//! trees (the `docker cp` class, CVE-2018-15664):
//! - every step is relative to an open directory fd: children are opened with `openat2`
//!   (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, `O_NOFOLLOW`), stats use
//!   `AT_SYMLINK_NOFOLLOW`; a symlink is read with `readlinkat` and recreated, never followed;
//! - walks are iterative with an explicit stack and hold two fds at a time whatever the
//!   depth: going back up re-opens `..` and checks its (dev, inode) against the directory it
//!   came from, so a 3,000-deep tree needs neither a deep call stack nor 3,000 fds;
//! - fifos, sockets and device nodes other than whiteouts are not copied: they are dropped
//!   with a warning naming the path (the path then reads as deleted, as the nearest state
//!   hookbox can represent).
//!
//! Overlay semantics reproduced (Documentation/filesystems/overlayfs.rst), applying layers
//! oldest first onto the staging dir:
//! - a newer non-directory replaces whatever the older layers had at that path;
//! - a whiteout (character device 0:0) deletes the older entry and is kept, so it still
//!   hides the charm base below the squashed layer;
//! - an opaque directory (`user.overlay.opaque=y`) replaces the older entry and stays opaque;
//! - a plain directory merges with an older directory (keeping its opacity) and takes the
//!   newer attributes; over an older non-directory or whiteout it becomes opaque, because
//!   overlay stops the lookup there and shows nothing from below.
//!
//! What the kernel does (checked on Linux 6.18 by mounting an overlay with `-o userxattr`
//! inside `unshare -Urm` and deleting lower entries, then reading the upper as the host
//! user): whiteouts are character devices 0:0 owned by the host user, opaque directories
//! carry `user.overlay.opaque=y`, the upper root gets `user.overlay.uuid` and
//! `user.overlay.impure`; `redirect_dir` and `metacopy` are off under `userxattr`, so no
//! redirect xattrs appear. An unprivileged host user can create whiteouts directly:
//! `mknod(S_IFCHR, 0:0)` is exempt from `CAP_MKNOD` since Linux 5.8 (commit a3c751a50fe6,
//! "vfs: allow unprivileged whiteout creation"), while any other device number fails with
//! EPERM; `user.*` xattrs on one's own directories need no privilege. So the squash runs on
//! the host side with no helper process and no unsafe code. Root without `userxattr` uses
//! `trusted.overlay.*`: see [`OverlayXattrs`].
//!
//! Regular files are hard-linked from the old layers (layers are immutable, and the old
//! directories are deleted after the swap), so a squash costs one `linkat` per file; it
//! falls back to a copy when linking is refused (`EXDEV`, `EPERM`, `EMLINK`).

use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, Stat, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::exit::{ClassifyExit, ExitStatus};

use super::fsops::{
    self, DIR_FLAGS, FsError, id_of, is_opaque, is_overlay_xattr, join_rel, list_names,
    make_traversable, make_whiteout, open_beneath, open_dir_forcing, push_component, stat_at,
    timestamps_of,
};

pub use super::fsops::OverlayXattrs;

/// Errors of a squash or a tree removal.
#[derive(Debug, thiserror::Error)]
pub enum SquashError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Going back up a directory tree found a different directory than the one walked
    /// down from: something moved the tree while it was being walked.
    #[error("directory {path} was moved while it was being walked")]
    Moved {
        /// The directory whose parent changed.
        path: PathBuf,
    },
    /// A squash needs at least one layer.
    #[error("nothing to squash: no layers given")]
    NoLayers,
    /// The staging directory already exists.
    #[error("squash staging directory {path} already exists")]
    StagingExists {
        /// The staging directory.
        path: PathBuf,
    },
}

impl From<FsError> for SquashError {
    fn from(err: FsError) -> Self {
        match err {
            FsError::Io {
                action,
                path,
                source,
            } => Self::Io {
                action,
                path,
                source,
            },
            FsError::Moved { path } => Self::Moved { path },
        }
    }
}

impl ClassifyExit for SquashError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::State
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> SquashError {
    let path = path.to_owned();
    move |e| SquashError::Io {
        action,
        path,
        source: e.into(),
    }
}

/// What a squash did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SquashReport {
    /// Entries written to the squashed layer (files, dirs, symlinks, whiteouts).
    pub entries: u64,
    /// Regular files hard-linked from the old layers.
    pub linked: u64,
    /// Regular files copied because linking was refused.
    pub copied: u64,
    /// Entries dropped because overlay layers cannot carry them (fifos, sockets, devices
    /// other than whiteouts), as `<layer>/<path>`.
    pub dropped: Vec<PathBuf>,
}

/// Merges `layers` (oldest first) into a new directory `staging`, which must not exist yet;
/// `staging` over `below` then shows, under an overlay, exactly what the layers over `below`
/// show. `below` is what the overlay stacks under the squashed layers (the charm base);
/// `None` means nothing.
///
/// Whiteouts are kept where they hide an entry of `below`, and dropped where they hide
/// nothing: the kernel does not filter whiteouts when it lists a directory that exists in
/// one layer only (an opaque directory, or one `below` lacks), so a whiteout there would
/// show up in `readdir` as a phantom entry that cannot be opened.
///
/// The layers are only read. On error `staging` may be left half-built: the caller removes
/// it (recovery removes any leftover staging dir).
pub fn squash_layers(
    layers: &[PathBuf],
    below: Option<&Path>,
    staging: &Path,
    xattrs: OverlayXattrs,
) -> Result<SquashReport, SquashError> {
    if layers.is_empty() {
        return Err(SquashError::NoLayers);
    }
    let (parent, name) = fsops::split_parent(staging).ok_or_else(|| SquashError::Io {
        action: "use as squash staging directory",
        path: staging.to_owned(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let parent_fd = open_plain_dir(parent)?;
    match rustix::fs::mkdirat(&parent_fd, name.as_c_str(), Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(SquashError::StagingExists {
                path: staging.to_owned(),
            });
        }
        Err(e) => return Err(io_err("create squash staging directory", staging)(e)),
    }
    let mut report = SquashReport::default();
    for layer in layers {
        let source = open_plain_dir(layer)?;
        let target = open_beneath(&parent_fd, &name, DIR_FLAGS)
            .map_err(io_err("open directory", staging))?;
        apply_layer(source, layer, target, staging, xattrs, &mut report)?;
    }
    let staging_fd = open_plain_dir(staging)?;
    let below_fd = below.map(open_plain_dir).transpose()?;
    prune_whiteouts(staging_fd, staging, below_fd, xattrs, &mut report)?;
    let staging_fd = open_plain_dir(staging)?;
    rustix::fs::fsync(&staging_fd).map_err(io_err("fsync", staging))?;
    Ok(report)
}

/// Removes the whiteouts of the squashed tree that hide nothing in `below` (see
/// [`squash_layers`]). The squashed side is walked with two fds whatever its depth; the
/// `below` side keeps one fd per level it has, which the charm's ingest limits bound.
fn prune_whiteouts(
    root: OwnedFd,
    root_path: &Path,
    below: Option<OwnedFd>,
    xattrs: OverlayXattrs,
    report: &mut SquashReport,
) -> Result<(), SquashError> {
    struct Level {
        names: Vec<CString>,
        id: (u64, u64),
        below: Option<OwnedFd>,
        path_len: usize,
        mode: u32,
        times: Timestamps,
    }
    let mut rel: Vec<u8> = Vec::new();
    let mut current = root;
    let root_stat = rustix::fs::fstat(&current).map_err(io_err("stat", root_path))?;
    let mut stack = vec![Level {
        names: list_names(&current).map_err(io_err("read directory", root_path))?,
        id: id_of(&root_stat),
        below,
        path_len: 0,
        mode: root_stat.st_mode & 0o7777,
        times: timestamps_of(&root_stat),
    }];
    make_traversable(&current).map_err(io_err("chmod", root_path))?;
    while let Some(level) = stack.last_mut() {
        let Some(name) = level.names.pop() else {
            let done = stack.pop().expect("a level is on the stack");
            let here = join_rel(root_path, &rel);
            let up = match stack.last() {
                Some(parent) => Some(fsops::open_parent(&current, parent.id, &here)?),
                None => None,
            };
            // Unlinking changed the directory's mtime and mode was opened up: put both back.
            rustix::fs::fchmod(&current, Mode::from_raw_mode(done.mode))
                .map_err(io_err("chmod", &here))?;
            rustix::fs::futimens(&current, &done.times).map_err(io_err("set times of", &here))?;
            let Some(up) = up else { break };
            current = up;
            rel.truncate(done.path_len);
            continue;
        };
        let path_len = push_component(&mut rel, name.as_bytes());
        let here = join_rel(root_path, &rel);
        let stat = rustix::fs::statat(&current, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("stat", &here))?;
        match FileType::from_raw_mode(stat.st_mode) {
            _ if fsops::is_whiteout(&stat) => {
                let hides_something = match &level.below {
                    Some(below) => !matches!(
                        rustix::fs::statat(below, &name, AtFlags::SYMLINK_NOFOLLOW),
                        Err(Errno::NOENT)
                    ),
                    None => false,
                };
                if !hides_something {
                    rustix::fs::unlinkat(&current, &name, AtFlags::empty())
                        .map_err(io_err("remove whiteout", &here))?;
                    report.entries -= 1;
                }
            }
            FileType::Directory => {
                let (child, _) =
                    open_dir_forcing(&current, &name).map_err(io_err("open directory", &here))?;
                let child_below = match &level.below {
                    Some(below) if !is_opaque(&child, xattrs) => {
                        open_beneath(below, &name, DIR_FLAGS).ok()
                    }
                    _ => None,
                };
                make_traversable(&child).map_err(io_err("chmod", &here))?;
                stack.push(Level {
                    names: list_names(&child).map_err(io_err("read directory", &here))?,
                    id: id_of(&stat),
                    below: child_below,
                    path_len,
                    mode: stat.st_mode & 0o7777,
                    times: timestamps_of(&stat),
                });
                current = child;
                continue;
            }
            _ => {}
        }
        rel.truncate(path_len);
    }
    Ok(())
}

/// One directory being merged: what is left to do in it and what to restore on leaving.
struct Frame {
    /// Entries of the source directory still to process (popped from the end).
    names: Vec<CString>,
    /// (dev, inode) of the source directory, checked when coming back up.
    source_id: (u64, u64),
    /// (dev, inode) of the target directory.
    target_id: (u64, u64),
    /// The source directory's mode to restore on leaving, if it had to be opened up.
    restore_source_mode: Option<u32>,
    /// The source directory's stat: the target takes its mode, owner and mtime.
    source_stat: Stat,
    /// Length of the relative path before this directory's name.
    path_len: usize,
}

/// Applies the layer `source` onto the tree at `target`, overlay-style.
fn apply_layer(
    source: OwnedFd,
    source_path: &Path,
    target: OwnedFd,
    target_path: &Path,
    xattrs: OverlayXattrs,
    report: &mut SquashReport,
) -> Result<(), SquashError> {
    let mut rel: Vec<u8> = Vec::new();
    let src_display = |rel: &[u8]| join_rel(source_path, rel);
    let dst_display = |rel: &[u8]| join_rel(target_path, rel);

    let mut current_source = source;
    let mut current_target = target;
    make_traversable(&current_target).map_err(io_err("chmod", target_path))?;
    sync_user_xattrs(&current_source, &current_target, target_path)?;
    let root_stat = rustix::fs::fstat(&current_source).map_err(io_err("stat", source_path))?;
    let mut stack = vec![Frame {
        names: list_names(&current_source).map_err(io_err("read directory", source_path))?,
        source_id: id_of(&root_stat),
        target_id: id_of(&rustix::fs::fstat(&current_target).map_err(io_err("stat", target_path))?),
        restore_source_mode: None,
        source_stat: root_stat,
        path_len: 0,
    }];

    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.names.pop() else {
            // Leave this directory: go up on both sides, then fix the target's attributes
            // (after, so that a final mode without search permission does not block `..`).
            let frame = stack.pop().expect("a frame is on the stack");
            if let Some(parent) = stack.last() {
                let here_src = src_display(&rel);
                let here_dst = dst_display(&rel);
                let up_source = fsops::open_parent(&current_source, parent.source_id, &here_src)?;
                let up_target = fsops::open_parent(&current_target, parent.target_id, &here_dst)?;
                if let Some(mode) = frame.restore_source_mode {
                    rustix::fs::fchmod(&current_source, Mode::from_raw_mode(mode))
                        .map_err(io_err("restore mode of", &here_src))?;
                }
                finish_dir(&current_target, &frame.source_stat, &here_dst)?;
                current_source = up_source;
                current_target = up_target;
                rel.truncate(frame.path_len);
            } else {
                finish_dir(&current_target, &frame.source_stat, target_path)?;
            }
            continue;
        };
        let path_len = push_component(&mut rel, name.as_bytes());
        let stat = rustix::fs::statat(&current_source, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("stat", &src_display(&rel)))?;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let existing =
            stat_at(&current_target, &name).map_err(io_err("stat", &dst_display(&rel)))?;
        report.entries += 1;
        match file_type {
            FileType::Directory => {
                let (child_source, restore) = open_dir_forcing(&current_source, &name)
                    .map_err(io_err("open directory", &src_display(&rel)))?;
                let opaque = is_opaque(&child_source, xattrs);
                let existing_is_dir =
                    existing.is_some_and(|s| FileType::from_raw_mode(s.st_mode).is_dir());
                let mark_opaque = opaque || (existing.is_some() && !existing_is_dir);
                if existing.is_some() && (opaque || !existing_is_dir) {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                if !existing_is_dir || opaque {
                    rustix::fs::mkdirat(&current_target, &name, Mode::from_raw_mode(0o700))
                        .map_err(io_err("create directory", &dst_display(&rel)))?;
                }
                let (child_target, _) = open_dir_forcing(&current_target, &name)
                    .map_err(io_err("open directory", &dst_display(&rel)))?;
                make_traversable(&child_target).map_err(io_err("chmod", &dst_display(&rel)))?;
                if mark_opaque {
                    fsops::mark_opaque(&child_target, xattrs)
                        .map_err(io_err("mark opaque", &dst_display(&rel)))?;
                }
                sync_user_xattrs(&child_source, &child_target, &dst_display(&rel))?;
                let names = list_names(&child_source)
                    .map_err(io_err("read directory", &src_display(&rel)))?;
                let target_stat =
                    rustix::fs::fstat(&child_target).map_err(io_err("stat", &dst_display(&rel)))?;
                stack.push(Frame {
                    names,
                    source_id: id_of(&stat),
                    target_id: id_of(&target_stat),
                    restore_source_mode: restore,
                    source_stat: stat,
                    path_len,
                });
                current_source = child_source;
                current_target = child_target;
                continue;
            }
            _ if fsops::is_whiteout(&stat) => {
                if existing.is_some() {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                make_whiteout(&current_target, &name)
                    .map_err(io_err("create whiteout", &dst_display(&rel)))?;
            }
            FileType::RegularFile => {
                if existing.is_some() {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                match rustix::fs::linkat(
                    &current_source,
                    &name,
                    &current_target,
                    &name,
                    AtFlags::empty(),
                ) {
                    Ok(()) => report.linked += 1,
                    Err(e) if fsops::link_refused(e) => {
                        fsops::copy_file(
                            &current_source,
                            &current_target,
                            &name,
                            &stat,
                            &src_display(&rel),
                            &dst_display(&rel),
                        )?;
                        report.copied += 1;
                    }
                    Err(e) => return Err(io_err("link", &dst_display(&rel))(e)),
                }
            }
            FileType::Symlink => {
                if existing.is_some() {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                let link = rustix::fs::readlinkat(&current_source, &name, Vec::new())
                    .map_err(io_err("read symlink", &src_display(&rel)))?;
                rustix::fs::symlinkat(link.as_c_str(), &current_target, &name)
                    .map_err(io_err("create symlink", &dst_display(&rel)))?;
                let times = timestamps_of(&stat);
                rustix::fs::utimensat(&current_target, &name, &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_err("set times of", &dst_display(&rel)))?;
            }
            other => {
                let dropped = src_display(&rel);
                tracing::warn!(
                    path = %dropped.display(),
                    kind = ?other,
                    "squash drops an entry overlay layers cannot carry (only files, directories, symlinks and whiteouts)"
                );
                if existing.is_some() {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                make_whiteout(&current_target, &name)
                    .map_err(io_err("create whiteout", &dst_display(&rel)))?;
                report.dropped.push(dropped);
            }
        }
        rel.truncate(path_len);
    }
    Ok(())
}

/// Sets a finished target directory's attributes from the source directory.
fn finish_dir(target: &OwnedFd, source_stat: &Stat, path: &Path) -> Result<(), SquashError> {
    let euid = rustix::process::geteuid().as_raw();
    if source_stat.st_uid != euid || source_stat.st_gid != rustix::process::getegid().as_raw() {
        // Only root (or a matching owner) may chown; otherwise the squasher's ownership is
        // what the layer already had in a rootless store.
        let uid = rustix::fs::Uid::from_raw(source_stat.st_uid);
        let gid = rustix::fs::Gid::from_raw(source_stat.st_gid);
        match rustix::fs::fchown(target, Some(uid), Some(gid)) {
            Ok(()) | Err(Errno::PERM) => {}
            Err(e) => return Err(io_err("chown", path)(e)),
        }
    }
    rustix::fs::fchmod(target, Mode::from_raw_mode(source_stat.st_mode & 0o7777))
        .map_err(io_err("chmod", path))?;
    rustix::fs::futimens(target, &timestamps_of(source_stat)).map_err(io_err("set times of", path))
}

/// Makes the target directory's non-overlay `user.*` xattrs equal to the source's (the
/// merged view shows the newest directory's xattrs). Overlay-private xattrs are never copied
/// as data: opacity is decided by the merge itself.
fn sync_user_xattrs(source: &OwnedFd, target: &OwnedFd, path: &Path) -> Result<(), SquashError> {
    let wanted = list_xattrs(source)
        .into_iter()
        .filter(|n| n.as_bytes().starts_with(b"user.") && !is_overlay_xattr(n.as_bytes()))
        .collect::<Vec<_>>();
    for name in list_xattrs(target) {
        let bytes = name.as_bytes();
        if bytes.starts_with(b"user.") && !is_overlay_xattr(bytes) && !wanted.contains(&name) {
            rustix::fs::fremovexattr(target, &name).map_err(io_err("remove xattr of", path))?;
        }
    }
    for name in wanted {
        let mut value = Vec::new();
        if rustix::fs::fgetxattr(source, &name, spare(&mut value, 64 * 1024)).is_err() {
            continue;
        }
        rustix::fs::fsetxattr(target, &name, &value, XattrFlags::empty())
            .map_err(io_err("set xattr of", path))?;
    }
    Ok(())
}

fn spare(buf: &mut Vec<u8>, size: usize) -> &mut Vec<u8> {
    buf.clear();
    buf.reserve(size);
    buf
}

fn list_xattrs(fd: &OwnedFd) -> Vec<CString> {
    let mut buf = Vec::new();
    if rustix::fs::flistxattr(fd, spare(&mut buf, 64 * 1024)).is_err() {
        return Vec::new();
    }
    buf.split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| CString::new(n).ok())
        .collect()
}

fn open_plain_dir(path: &Path) -> Result<OwnedFd, SquashError> {
    fsops::open_dir(path).map_err(io_err("open directory", path))
}

fn remove_entry(dir: &OwnedFd, name: &CStr, path: &Path) -> Result<(), SquashError> {
    Ok(fsops::remove_entry(dir, name, path)?)
}

// The unit journal's path to [`fsops::remove_tree`], until it imports it from there.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest::{EntryKind, walk_tree};
    use crate::store::fsops::remove_tree;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn kinds(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<_> = walk_tree(dir)
            .unwrap()
            .into_iter()
            .map(|e| {
                let kind = match e.kind {
                    EntryKind::File { size, .. } => format!("file {size} {:o}", e.mode),
                    EntryKind::Dir => format!("dir {:o}", e.mode),
                    EntryKind::Symlink { target } => {
                        format!("link {}", String::from_utf8_lossy(&target))
                    }
                    EntryKind::Special { rdev, .. } => format!("special {rdev}"),
                };
                (String::from_utf8(e.path).unwrap(), kind)
            })
            .collect();
        out.sort();
        out
    }

    fn whiteout(path: &Path) {
        let parent = open_plain_dir(path.parent().unwrap()).unwrap();
        make_whiteout(&parent, path.file_name().unwrap()).unwrap();
    }

    fn opaque(path: &Path) -> bool {
        is_opaque(open_plain_dir(path).unwrap(), OverlayXattrs::User)
    }

    fn set_opaque(path: &Path) {
        rustix::fs::setxattr(path, c"user.overlay.opaque", b"y", XattrFlags::empty()).unwrap();
    }

    #[test]
    fn newer_wins_whiteouts_are_kept_and_opaque_dirs_hide_older_content() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("old");
        let new = tmp.path().join("new");
        fs::create_dir_all(old.join("d/sub")).unwrap();
        fs::create_dir_all(old.join("o")).unwrap();
        fs::create_dir_all(new.join("d")).unwrap();
        fs::create_dir_all(new.join("o")).unwrap();
        fs::write(old.join("a"), "old a").unwrap();
        fs::write(old.join("d/keep"), "keep").unwrap();
        fs::write(old.join("d/sub/x"), "x").unwrap();
        fs::write(old.join("o/hidden"), "hidden").unwrap();
        fs::write(old.join("f2d"), "file").unwrap();
        whiteout(&old.join("w2d"));
        fs::write(new.join("a"), "new a!").unwrap();
        whiteout(&new.join("d/sub"));
        whiteout(&new.join("gone"));
        set_opaque(&new.join("o"));
        fs::write(new.join("o/shown"), "s").unwrap();
        fs::create_dir(new.join("f2d")).unwrap();
        fs::write(new.join("f2d/in"), "in").unwrap();
        fs::create_dir(new.join("w2d")).unwrap();
        symlink("/etc/passwd", new.join("d/link")).unwrap();
        fs::set_permissions(new.join("d"), fs::Permissions::from_mode(0o750)).unwrap();

        whiteout(&new.join("hides-nothing"));
        // The charm base below: whiteouts are kept where they hide something in it.
        let base = tmp.path().join("base");
        fs::create_dir_all(base.join("d/sub")).unwrap();
        fs::write(base.join("gone"), "base").unwrap();
        let out = tmp.path().join("out");
        let report = squash_layers(&[old, new], Some(&base), &out, OverlayXattrs::User).unwrap();
        assert!(
            !out.join("hides-nothing").exists(),
            "a whiteout over nothing is dropped"
        );
        assert!(report.dropped.is_empty());
        assert_eq!(
            kinds(&out),
            [
                ("a", "file 6 644"),
                ("d", "dir 750"),
                ("d/keep", "file 4 644"),
                ("d/link", "link /etc/passwd"),
                ("d/sub", "special 0"),
                ("f2d", "dir 755"),
                ("f2d/in", "file 2 644"),
                ("gone", "special 0"),
                ("o", "dir 755"),
                ("o/shown", "file 1 644"),
                ("w2d", "dir 755"),
            ]
            .map(|(p, k)| (p.to_owned(), k.to_owned()))
        );
        assert!(opaque(&out.join("o")), "opaque dir stays opaque");
        assert!(
            opaque(&out.join("f2d")),
            "dir over a file hides what is below"
        );
        assert!(
            opaque(&out.join("w2d")),
            "dir over a whiteout hides what is below"
        );
        assert!(!opaque(&out.join("d")), "merged dir stays transparent");
    }

    #[test]
    fn unreadable_directories_are_squashed_and_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("l");
        fs::create_dir_all(layer.join("locked/in")).unwrap();
        fs::write(layer.join("locked/in/f"), "f").unwrap();
        fs::set_permissions(layer.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let out = tmp.path().join("out");
        squash_layers(
            std::slice::from_ref(&layer),
            None,
            &out,
            OverlayXattrs::User,
        )
        .unwrap();
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&layer.join("locked")), 0);
        assert_eq!(mode(&out.join("locked")), 0);
        remove_tree(&out).unwrap();
        remove_tree(&layer).unwrap();
        assert!(!out.exists() && !layer.exists());
    }

    #[test]
    fn remove_tree_removes_symlinks_not_their_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), "p").unwrap();
        let tree = tmp.path().join("tree");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        symlink(&outside, tree.join("a/b/escape")).unwrap();
        symlink("../../../outside", tree.join("a/rel")).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(fs::read(outside.join("precious")).unwrap(), b"p");
        let link = tmp.path().join("link");
        symlink(&outside, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(outside.join("precious").exists());
    }
}
