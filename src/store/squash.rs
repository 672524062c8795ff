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

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dev, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

use crate::exit::{ClassifyExit, ExitStatus};

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

/// Which xattr namespace the overlay that uses the layers reads: `user.overlay.*` for
/// rootless mounts and `-o userxattr` (what hookbox's sandbox mounts), `trusted.overlay.*`
/// for a privileged mount without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverlayXattrs {
    /// `user.overlay.*`.
    #[default]
    User,
    /// `trusted.overlay.*`.
    Trusted,
}

impl OverlayXattrs {
    /// The name of the opaque-directory xattr.
    pub fn opaque(self) -> &'static CStr {
        match self {
            Self::User => c"user.overlay.opaque",
            Self::Trusted => c"trusted.overlay.opaque",
        }
    }
}

/// Whether `name` is an overlay-private xattr in either namespace (never copied as data).
fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.")
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
/// `staging` then shows, under an overlay, exactly what the layers show stacked.
///
/// The layers are only read. On error `staging` may be left half-built: the caller removes
/// it (recovery removes any leftover staging dir).
pub fn squash_layers(
    layers: &[PathBuf],
    staging: &Path,
    xattrs: OverlayXattrs,
) -> Result<SquashReport, SquashError> {
    if layers.is_empty() {
        return Err(SquashError::NoLayers);
    }
    let (parent, name) = split_parent(staging)?;
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
        let target = open_child_dir(&parent_fd, &name, staging)?;
        apply_layer(source, layer, target, staging, xattrs, &mut report)?;
    }
    let staging_fd = open_plain_dir(staging)?;
    rustix::fs::fsync(&staging_fd).map_err(io_err("fsync", staging))?;
    Ok(report)
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
    make_traversable(&current_target, target_path)?;
    sync_user_xattrs(&current_source, &current_target, target_path)?;
    let root_stat = rustix::fs::fstat(&current_source).map_err(io_err("stat", source_path))?;
    let mut stack = vec![Frame {
        names: list_names(&current_source, source_path)?,
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
                let up_source = open_parent(&current_source, parent.source_id, &here_src)?;
                let up_target = open_parent(&current_target, parent.target_id, &here_dst)?;
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
        let path_len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.as_bytes());
        let stat = rustix::fs::statat(&current_source, &name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_err("stat", &src_display(&rel)))?;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        let existing = stat_opt(&current_target, &name, &dst_display(&rel))?;
        report.entries += 1;
        match file_type {
            FileType::Directory => {
                let (child_source, restore) =
                    open_dir_forcing(&current_source, &name, &src_display(&rel))?;
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
                let (child_target, _) =
                    open_dir_forcing(&current_target, &name, &dst_display(&rel))?;
                make_traversable(&child_target, &dst_display(&rel))?;
                if mark_opaque {
                    rustix::fs::fsetxattr(
                        &child_target,
                        xattrs.opaque(),
                        b"y",
                        XattrFlags::empty(),
                    )
                    .map_err(io_err("mark opaque", &dst_display(&rel)))?;
                }
                sync_user_xattrs(&child_source, &child_target, &dst_display(&rel))?;
                let names = list_names(&child_source, &src_display(&rel))?;
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
            FileType::CharacterDevice if stat.st_rdev == 0 => {
                if existing.is_some() {
                    remove_entry(&current_target, &name, &dst_display(&rel))?;
                }
                make_whiteout(&current_target, &name, &dst_display(&rel))?;
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
                    Err(Errno::XDEV | Errno::PERM | Errno::MLINK) => {
                        copy_file(
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
                make_whiteout(&current_target, &name, &dst_display(&rel))?;
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

fn timestamps_of(stat: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: stat.st_atime,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}

fn make_whiteout(dir: &OwnedFd, name: &CStr, path: &Path) -> Result<(), SquashError> {
    rustix::fs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        Dev::default(),
    )
    .map_err(io_err("create whiteout", path))
}

/// Whether the directory carries the overlay opaque mark (`y`).
fn is_opaque(dir: &OwnedFd, xattrs: OverlayXattrs) -> bool {
    let mut value = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(dir, xattrs.opaque(), &mut value[..]),
        Ok(1) if value[0] == b'y'
    )
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

/// Copies a regular file the kernel would not let us link: the source is opened without
/// following anything, the target is created exclusively.
fn copy_file(
    source_dir: &OwnedFd,
    target_dir: &OwnedFd,
    name: &CStr,
    stat: &Stat,
    source_path: &Path,
    target_path: &Path,
) -> Result<(), SquashError> {
    let source = open_beneath(
        source_dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK,
    )
    .map_err(io_err("open", source_path))?;
    let target = rustix::fs::openat(
        target_dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(io_err("create", target_path))?;
    let mut reader = std::fs::File::from(source);
    let mut writer = std::fs::File::from(target);
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(SquashError::Io {
                    action: "read",
                    path: source_path.to_owned(),
                    source,
                });
            }
        };
        writer
            .write_all(&buf[..n])
            .map_err(|source| SquashError::Io {
                action: "write",
                path: target_path.to_owned(),
                source,
            })?;
    }
    rustix::fs::fchmod(&writer, Mode::from_raw_mode(stat.st_mode & 0o777))
        .map_err(io_err("chmod", target_path))?;
    rustix::fs::futimens(&writer, &timestamps_of(stat)).map_err(io_err("set times of", target_path))
}

fn id_of(stat: &Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

fn stat_opt(dir: &OwnedFd, name: &CStr, path: &Path) -> Result<Option<Stat>, SquashError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

/// Removes the entry `name` of `dir`, a whole tree if it is a directory.
fn remove_entry(dir: &OwnedFd, name: &CStr, path: &Path) -> Result<(), SquashError> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_tree_at(dir.as_fd(), name, path),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Opens a child directory of `dir`: one path component, resolved beneath `dir`, no symlink
/// anywhere (`RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`).
fn open_beneath(dir: impl AsFd, name: &CStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        name,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW
}

fn open_child_dir(dir: impl AsFd, name: &CStr, path: &Path) -> Result<OwnedFd, SquashError> {
    open_beneath(dir, name, dir_flags()).map_err(io_err("open directory", path))
}

/// Opens a child directory; when its mode denies us (a hook may `chmod 000` a directory)
/// and we own it, adds `u+rwx` first and returns the mode to restore.
fn open_dir_forcing(
    dir: &OwnedFd,
    name: &CStr,
    path: &Path,
) -> Result<(OwnedFd, Option<u32>), SquashError> {
    match open_beneath(dir, name, dir_flags()) {
        Ok(fd) => Ok((fd, None)),
        Err(Errno::ACCESS) => {
            let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err("stat", path))?;
            if !FileType::from_raw_mode(stat.st_mode).is_dir() {
                return Err(io_err("open directory", path)(Errno::NOTDIR));
            }
            let mode = stat.st_mode & 0o7777;
            rustix::fs::chmodat(
                dir,
                name,
                Mode::from_raw_mode(mode | 0o700),
                AtFlags::empty(),
            )
            .map_err(io_err("open up (chmod u+rwx)", path))?;
            let fd = open_child_dir(dir, name, path)?;
            Ok((fd, Some(mode)))
        }
        Err(e) => Err(io_err("open directory", path)(e)),
    }
}

/// Gives us `u+rwx` on a directory we are about to fill or empty (no-op when present).
fn make_traversable(dir: &OwnedFd, path: &Path) -> Result<(), SquashError> {
    let stat = rustix::fs::fstat(dir).map_err(io_err("stat", path))?;
    if stat.st_mode & 0o700 != 0o700 {
        rustix::fs::fchmod(dir, Mode::from_raw_mode((stat.st_mode & 0o7777) | 0o700))
            .map_err(io_err("chmod", path))?;
    }
    Ok(())
}

/// Opens `..` of `dir` and checks it is the directory we came down from.
fn open_parent(dir: &OwnedFd, expected: (u64, u64), path: &Path) -> Result<OwnedFd, SquashError> {
    let parent = rustix::fs::openat(dir, c"..", dir_flags() | OFlags::CLOEXEC, Mode::empty())
        .map_err(io_err("open parent of", path))?;
    let stat = rustix::fs::fstat(&parent).map_err(io_err("stat parent of", path))?;
    if id_of(&stat) != expected {
        return Err(SquashError::Moved {
            path: path.to_owned(),
        });
    }
    Ok(parent)
}

fn list_names(dir: &OwnedFd, path: &Path) -> Result<Vec<CString>, SquashError> {
    let reader = rustix::fs::Dir::read_from(dir).map_err(io_err("read directory", path))?;
    let mut names = Vec::new();
    for entry in reader {
        let entry = entry.map_err(io_err("read directory", path))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    // Popped from the end: process in name order (deterministic warnings and errors).
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

fn join_rel(base: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        base.to_owned()
    } else {
        base.join(OsStr::from_bytes(rel))
    }
}

fn open_plain_dir(path: &Path) -> Result<OwnedFd, SquashError> {
    rustix::fs::open(path, dir_flags() | OFlags::CLOEXEC, Mode::empty())
        .map_err(io_err("open directory", path))
}

fn split_parent(path: &Path) -> Result<(&Path, CString), SquashError> {
    let name = path.file_name().ok_or_else(|| SquashError::Io {
        action: "use",
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = CString::new(name.as_bytes()).map_err(|_| SquashError::Io {
        action: "use",
        path: path.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    Ok((parent, name))
}

/// Removes the tree at `path` without following any symlink (a symlink at `path` itself is
/// removed, not its target), iteratively, with a bounded number of open fds, opening up
/// directories a hook made unreadable.
pub fn remove_tree(path: &Path) -> Result<(), SquashError> {
    let (parent, name) = split_parent(path)?;
    let parent_fd = open_plain_dir(parent)?;
    remove_entry(&parent_fd, &name, path)
}

/// Removes the directory `name` of `parent` and everything under it.
fn remove_tree_at(parent: BorrowedFd<'_>, name: &CStr, path: &Path) -> Result<(), SquashError> {
    struct Level {
        names: Vec<CString>,
        id: (u64, u64),
        name: CString,
    }
    let parent = parent.try_clone_to_owned().map_err(|e| SquashError::Io {
        action: "duplicate fd of parent of",
        path: path.to_owned(),
        source: e,
    })?;
    let (mut current, _) = open_dir_forcing(&parent, name, path)?;
    make_traversable(&current, path)?;
    let mut rel: Vec<u8> = Vec::new();
    let mut stack = vec![Level {
        names: list_names(&current, path)?,
        id: id_of(&rustix::fs::fstat(&current).map_err(io_err("stat", path))?),
        name: name.to_owned(),
    }];
    while let Some(level) = stack.last_mut() {
        if let Some(child) = level.names.pop() {
            match rustix::fs::unlinkat(&current, &child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(Errno::ISDIR) => {
                    if !rel.is_empty() {
                        rel.push(b'/');
                    }
                    rel.extend_from_slice(child.as_bytes());
                    let here = join_rel(path, &rel);
                    let (fd, _) = open_dir_forcing(&current, &child, &here)?;
                    make_traversable(&fd, &here)?;
                    let stat = rustix::fs::fstat(&fd).map_err(io_err("stat", &here))?;
                    stack.push(Level {
                        names: list_names(&fd, &here)?,
                        id: id_of(&stat),
                        name: child,
                    });
                    current = fd;
                }
                Err(e) => {
                    return Err(io_err(
                        "remove",
                        &join_rel(path, &rel).join(OsStr::from_bytes(child.as_bytes())),
                    )(e));
                }
            }
            continue;
        }
        let done = stack.pop().expect("a level is on the stack");
        let here = join_rel(path, &rel);
        let Some(up) = stack.last() else {
            drop(current);
            return rustix::fs::unlinkat(&parent, &done.name, AtFlags::REMOVEDIR)
                .map_err(io_err("remove directory", path));
        };
        let up_fd = open_parent(&current, up.id, &here)?;
        rustix::fs::unlinkat(&up_fd, &done.name, AtFlags::REMOVEDIR)
            .map_err(io_err("remove directory", &here))?;
        current = up_fd;
        let cut = rel.iter().rposition(|b| *b == b'/').unwrap_or(0);
        rel.truncate(cut);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::digest::{EntryKind, walk_tree};
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
        let name = CString::new(path.file_name().unwrap().as_bytes()).unwrap();
        make_whiteout(&parent, &name, path).unwrap();
    }

    fn opaque(path: &Path) -> bool {
        is_opaque(&open_plain_dir(path).unwrap(), OverlayXattrs::User)
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

        let out = tmp.path().join("out");
        let report = squash_layers(&[old, new], &out, OverlayXattrs::User).unwrap();
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
        squash_layers(std::slice::from_ref(&layer), &out, OverlayXattrs::User).unwrap();
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
