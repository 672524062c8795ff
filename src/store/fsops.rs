//! The store's fd-relative filesystem primitives, in one place: every walk, squash, merge,
//! materialisation, removal and ingest step that touches a tree a hook or a charm wrote goes
//! through these (the `docker cp` class, CVE-2018-15664):
//! - a child is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS)` and `O_NOFOLLOW`, relative to an open directory fd;
//! - stats use `AT_SYMLINK_NOFOLLOW`; new files are created `O_CREAT | O_EXCL | O_NOFOLLOW`;
//! - going back up a tree re-opens `..` and checks its (dev, inode) against the directory it
//!   came from, so iterative walks hold a bounded number of fds whatever the depth;
//! - overlay whiteouts (character devices 0:0, or zero-size files with `overlay.whiteout`)
//!   and opaque marks (`overlay.opaque=y`) are read and written here only.
//!
//! The small primitives return [`rustix::io::Errno`]: callers wrap it with the action and
//! path in their own error. Tree removal, which reports paths deep inside the tree, returns
//! [`FsError`].

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dev, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, XattrFlags,
};
use rustix::io::{Errno, Result};
use sha2::{Digest, Sha256};

/// Errors of the multi-step tree operations (removal), with the path they happened at.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
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
}

impl FsError {
    /// Wraps an errno with what was being done and to which path.
    pub fn at(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> Self {
        let path = path.to_owned();
        move |e| Self::Io {
            action,
            path,
            source: e.into(),
        }
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

    /// The xattr that makes a zero-size regular file a whiteout (the "xwhiteout" form of
    /// Linux 6.7, which overlayfs never writes itself but honours in any layer).
    pub fn whiteout(self) -> &'static CStr {
        match self {
            Self::User => c"user.overlay.whiteout",
            Self::Trusted => c"trusted.overlay.whiteout",
        }
    }
}

/// Flags of a directory open that never follows a symlink.
pub(crate) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW);

/// Opens `path` (one or several components) beneath `dir`, following no symlink on the way or
/// at the end and never leaving `dir`.
pub(crate) fn open_beneath(
    dir: impl AsFd,
    path: impl rustix::path::Arg,
    flags: OFlags,
) -> Result<OwnedFd> {
    // openat2 refuses O_NOCTTY with O_PATH (EINVAL); an O_PATH fd never becomes a tty anyway.
    let noctty = if flags.contains(OFlags::PATH) {
        OFlags::empty()
    } else {
        OFlags::NOCTTY
    };
    rustix::fs::openat2(
        dir,
        path,
        flags | OFlags::NOFOLLOW | noctty | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens the directory at `path` (a path the caller chose: the last component is not
/// followed if it is a symlink).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, DIR_FLAGS | OFlags::CLOEXEC, Mode::empty())
}

/// Opens the child directory `name` of `dir`; when its mode denies us listing or searching
/// it (a hook may `chmod 000` a directory) and we own it, adds `u+rwx` and returns the mode
/// to restore.
pub(crate) fn open_dir_forcing(dir: impl AsFd, name: &CStr) -> Result<(OwnedFd, Option<u32>)> {
    let dir = dir.as_fd();
    match open_beneath(dir, name, DIR_FLAGS) {
        Ok(fd) => {
            // Readable but not searchable (e.g. 0400): its entries cannot be stat'ed yet.
            let stat = rustix::fs::fstat(&fd)?;
            let euid = rustix::process::geteuid();
            if stat.st_mode & 0o500 != 0o500 && !euid.is_root() && stat.st_uid == euid.as_raw() {
                let mode = stat.st_mode & 0o7777;
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode | 0o700))?;
                return Ok((fd, Some(mode)));
            }
            Ok((fd, None))
        }
        Err(Errno::ACCESS) => {
            let (entry, mode) = open_path_of_kind(dir, name, FileType::Directory)?;
            let mode = mode.ok_or(Errno::NOTDIR)?;
            chmod_opened(&entry, Mode::from_raw_mode(mode | 0o700))?;
            let fd = open_beneath(dir, name, DIR_FLAGS)?;
            Ok((fd, Some(mode)))
        }
        Err(e) => Err(e),
    }
}

/// Opens the regular file `name` of `dir` for reading; when its mode denies us and we own
/// it, adds `u+r` for the open and puts the mode back at once.
pub(crate) fn open_file_forcing(dir: impl AsFd, name: &CStr) -> Result<OwnedFd> {
    let dir = dir.as_fd();
    let flags = OFlags::RDONLY | OFlags::NONBLOCK;
    match open_beneath(dir, name, flags) {
        Err(Errno::ACCESS) => {
            let (entry, mode) = open_path_of_kind(dir, name, FileType::RegularFile)?;
            let mode = Mode::from_raw_mode(mode.ok_or(Errno::ACCESS)?);
            chmod_opened(&entry, mode | Mode::RUSR)?;
            let opened = open_beneath(dir, name, flags);
            chmod_opened(&entry, mode)?;
            opened
        }
        other => other,
    }
}

/// Opens the entry `name` of `dir` as an `O_PATH` fd (no permission on the entry needed; a
/// symlink there is opened as itself, never followed) and returns it with its permission
/// bits when it is of type `kind` (`None` otherwise).
fn open_path_of_kind(
    dir: BorrowedFd<'_>,
    name: &CStr,
    kind: FileType,
) -> Result<(OwnedFd, Option<u32>)> {
    let entry = open_beneath(dir, name, OFlags::PATH)?;
    let stat = rustix::fs::fstat(&entry)?;
    let mode = (FileType::from_raw_mode(stat.st_mode) == kind).then_some(stat.st_mode & 0o7777);
    Ok((entry, mode))
}

/// Changes the mode of the inode `entry` (an `O_PATH` fd) refers to. `fchmod` refuses
/// `O_PATH` fds and `fchmodat` has no `AT_SYMLINK_NOFOLLOW` (only `fchmodat2`, Linux 6.6,
/// which rustix does not wrap), so the change goes through `/proc/self/fd/N`: that magic
/// link resolves to the very inode opened, so an entry swapped for a symlink between the
/// check and the chmod cannot redirect it (a chmod by name after a stat could).
fn chmod_opened(entry: &OwnedFd, mode: Mode) -> Result<()> {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", entry.as_raw_fd());
    rustix::fs::chmod(link.as_str(), mode)
}

/// A directory opened beneath a root through directories some of which had to be opened up
/// (a hook may `chmod 000` a directory of its layer); their modes are put back when this is
/// dropped.
pub(crate) struct ForcedDir {
    fd: OwnedFd,
    opened_up: Vec<(OwnedFd, u32)>,
}

impl ForcedDir {
    /// The directory.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

impl Drop for ForcedDir {
    fn drop(&mut self) {
        for (dir, mode) in self.opened_up.drain(..).rev() {
            if let Err(err) = rustix::fs::fchmod(&dir, Mode::from_raw_mode(mode)) {
                tracing::warn!(error = %err, mode = format!("{mode:o}"), "cannot put back the mode of a directory opened up to read it");
            }
        }
    }
}

/// Opens the directory at `path` (several components) beneath `root` like [`open_beneath`];
/// when a directory on the way denies us and we own it, it is opened up (`u+rwx`) until the
/// returned [`ForcedDir`] is dropped.
pub(crate) fn open_dir_path_forcing(root: impl AsFd, path: &[u8]) -> Result<ForcedDir> {
    match open_beneath(&root, path, DIR_FLAGS) {
        Ok(fd) => {
            return Ok(ForcedDir {
                fd,
                opened_up: Vec::new(),
            });
        }
        Err(Errno::ACCESS) => {}
        Err(e) => return Err(e),
    }
    let mut dir = ForcedDir {
        fd: rustix::io::fcntl_dupfd_cloexec(&root, 0)?,
        opened_up: Vec::new(),
    };
    for component in path.split(|c| *c == b'/') {
        let name = CString::new(component).map_err(|_| Errno::INVAL)?;
        let (fd, restore) = open_dir_forcing(&dir.fd, &name)?;
        if let Some(mode) = restore {
            dir.opened_up
                .push((rustix::io::fcntl_dupfd_cloexec(&fd, 0)?, mode));
        }
        dir.fd = fd;
    }
    Ok(dir)
}

/// Gives us `u+rwx` on a directory we are about to fill or empty (no-op when present).
pub(crate) fn make_traversable(dir: impl AsFd) -> Result<()> {
    let stat = rustix::fs::fstat(&dir)?;
    if stat.st_mode & 0o700 != 0o700 {
        rustix::fs::fchmod(dir, Mode::from_raw_mode((stat.st_mode & 0o7777) | 0o700))?;
    }
    Ok(())
}

/// Opens `..` of `dir` (the directory at `path`) and checks it is the directory `expected`
/// (dev, inode) the walk came down from.
pub(crate) fn open_parent(
    dir: impl AsFd,
    expected: (u64, u64),
    path: &Path,
) -> std::result::Result<OwnedFd, FsError> {
    let parent = rustix::fs::openat(dir, c"..", DIR_FLAGS | OFlags::CLOEXEC, Mode::empty())
        .map_err(FsError::at("open parent of", path))?;
    let stat = rustix::fs::fstat(&parent).map_err(FsError::at("stat parent of", path))?;
    if id_of(&stat) != expected {
        return Err(FsError::Moved {
            path: path.to_owned(),
        });
    }
    Ok(parent)
}

/// The names in `dir` but `.` and `..`, in reverse name order (popped from the end, they
/// come in name order: deterministic warnings and errors).
pub(crate) fn list_names(dir: impl AsFd) -> Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    Ok(names)
}

/// The (dev, inode) identity of a stat.
pub(crate) fn id_of(stat: &Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

/// The access and modification times of a stat, to set on a copy.
pub(crate) fn timestamps_of(stat: &Stat) -> Timestamps {
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

/// Stats `name` in `dir` without following it; `None` when it does not exist.
pub(crate) fn stat_at(dir: impl AsFd, name: &CStr) -> Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(stat)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a stat is an overlay whiteout (a character device 0:0).
pub(crate) fn is_whiteout(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::CharacterDevice && stat.st_rdev == 0
}

/// Creates a whiteout `name` in `dir` (`mknod(S_IFCHR, 0:0)`: exempt from `CAP_MKNOD` since
/// Linux 5.8, commit a3c751a50fe6).
pub(crate) fn make_whiteout(dir: impl AsFd, name: impl rustix::path::Arg) -> Result<()> {
    rustix::fs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        Dev::default(),
    )
}

/// Whether the directory carries the overlay opaque mark (exactly `y`; `x` only says the
/// directory holds xwhiteouts and is not opaque).
pub(crate) fn is_opaque(dir: impl AsFd, xattrs: OverlayXattrs) -> bool {
    let mut value = [0u8; 4];
    matches!(
        rustix::fs::fgetxattr(dir, xattrs.opaque(), &mut value[..]),
        Ok(1) if value[0] == b'y'
    )
}

/// Marks a directory opaque (`overlay.opaque=y`).
pub(crate) fn mark_opaque(dir: impl AsFd, xattrs: OverlayXattrs) -> Result<()> {
    rustix::fs::fsetxattr(dir, xattrs.opaque(), b"y", XattrFlags::empty())
}

/// Whether an open zero-size regular file is an xwhiteout (carries `overlay.whiteout`).
pub(crate) fn is_xwhiteout(file: impl AsFd, xattrs: OverlayXattrs) -> bool {
    let mut buf = [0u8; 8];
    // ERANGE: present with a longer value.
    matches!(
        rustix::fs::fgetxattr(file, xattrs.whiteout(), &mut buf[..]),
        Ok(_) | Err(Errno::RANGE)
    )
}

/// Whether `name` is an overlay-private xattr in either namespace (never copied as data).
pub(crate) fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.overlay.") || name.starts_with(b"trusted.overlay.")
}

/// Creates the file `name` in `dir` for writing, never following or replacing anything.
pub(crate) fn create_exclusive(
    dir: impl AsFd,
    name: impl rustix::path::Arg,
    mode: u32,
) -> Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
}

/// Whether `linkat` failed only because the kernel refuses a hard link here (another
/// filesystem, `fs.protected_hardlinks`, too many links): the caller copies instead.
pub(crate) fn link_refused(errno: Errno) -> bool {
    matches!(errno, Errno::XDEV | Errno::PERM | Errno::MLINK)
}

/// Which side of a copy failed.
#[derive(Debug)]
pub(crate) enum CopyFailure {
    /// Reading the source.
    Read(std::io::Error),
    /// Writing the target.
    Write(std::io::Error),
}

/// Reads `reader` to the end, into `writer` when given; returns the sha256 and length.
pub(crate) fn copy_hashing(
    mut reader: impl Read,
    mut writer: Option<&mut dyn Write>,
) -> std::result::Result<([u8; 32], u64), CopyFailure> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFailure::Read(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        if let Some(w) = writer.as_mut() {
            w.write_all(&buf[..n]).map_err(CopyFailure::Write)?;
        }
    }
    Ok((hasher.finalize().into(), total))
}

/// Copies the regular file `name` of `source_dir` to a new file `name` of `target_dir` with
/// its permission bits and times: the source is opened beneath its directory without
/// following anything, the target is created exclusively. Returns the sha256 and length of
/// what was copied and the (unsynced) target.
pub(crate) fn copy_file(
    source_dir: impl AsFd,
    target_dir: impl AsFd,
    name: &CStr,
    stat: &Stat,
    source_path: &Path,
    target_path: &Path,
) -> std::result::Result<([u8; 32], u64, OwnedFd), FsError> {
    let source = open_beneath(source_dir, name, OFlags::RDONLY | OFlags::NONBLOCK)
        .map_err(FsError::at("open", source_path))?;
    let target =
        create_exclusive(target_dir, name, 0o600).map_err(FsError::at("create", target_path))?;
    let mut writer = std::fs::File::from(target);
    let (sha256, size) =
        copy_hashing(std::fs::File::from(source), Some(&mut writer)).map_err(|e| match e {
            CopyFailure::Read(source) => FsError::Io {
                action: "read",
                path: source_path.to_owned(),
                source,
            },
            CopyFailure::Write(source) => FsError::Io {
                action: "write",
                path: target_path.to_owned(),
                source,
            },
        })?;
    rustix::fs::fchmod(&writer, Mode::from_raw_mode(stat.st_mode & 0o777))
        .map_err(FsError::at("chmod", target_path))?;
    rustix::fs::futimens(&writer, &timestamps_of(stat))
        .map_err(FsError::at("set times of", target_path))?;
    Ok((sha256, size, writer.into()))
}

/// `base/rel`, or `base` when `rel` is empty (for messages).
pub(crate) fn join_rel(base: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        base.to_owned()
    } else {
        base.join(OsStr::from_bytes(rel))
    }
}

/// Appends the component `name` to the relative path `rel`; returns the length to truncate
/// back to.
pub(crate) fn push_component(rel: &mut Vec<u8>, name: &[u8]) -> usize {
    let len = rel.len();
    if !rel.is_empty() {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    len
}

/// Splits `path` into its parent directory (`.` for a bare name) and its last component.
pub(crate) fn split_parent(path: &Path) -> Option<(&Path, CString)> {
    let name = CString::new(path.file_name()?.as_bytes()).ok()?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some((parent, name))
}

/// Removes the tree at `path` without following any symlink (a symlink at `path` itself is
/// removed, not its target), iteratively, with a bounded number of open fds, opening up
/// directories a hook made unreadable or the store made read-only. A missing path is not an
/// error. This is the one way hookbox removes a tree it did not write itself.
pub fn remove_tree(path: &Path) -> std::result::Result<(), FsError> {
    let (parent, name) = split_parent(path).ok_or_else(|| FsError::Io {
        action: "remove",
        path: path.to_owned(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let parent_fd = open_dir(parent).map_err(FsError::at("open directory", parent))?;
    remove_entry(&parent_fd, &name, path)
}

/// Removes the entry `name` of `dir`, a whole tree if it is a directory (`path` names it in
/// errors). A missing entry is not an error.
pub(crate) fn remove_entry(
    dir: impl AsFd,
    name: &CStr,
    path: &Path,
) -> std::result::Result<(), FsError> {
    match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => remove_dir_tree(dir.as_fd(), name, path),
        Err(e) => Err(FsError::at("remove", path)(e)),
    }
}

/// Removes the directory `name` of `parent` and everything under it, two fds at a time.
fn remove_dir_tree(
    parent: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
) -> std::result::Result<(), FsError> {
    struct Level {
        names: Vec<CString>,
        id: (u64, u64),
        name: CString,
        path_len: usize,
    }
    let (mut current, _) = open_dir_forcing(parent, name).map_err(FsError::at("open", path))?;
    make_traversable(&current).map_err(FsError::at("chmod", path))?;
    let stat = rustix::fs::fstat(&current).map_err(FsError::at("stat", path))?;
    let mut rel: Vec<u8> = Vec::new();
    let mut stack = vec![Level {
        names: list_names(&current).map_err(FsError::at("read directory", path))?,
        id: id_of(&stat),
        name: name.to_owned(),
        path_len: 0,
    }];
    while let Some(level) = stack.last_mut() {
        if let Some(child) = level.names.pop() {
            let path_len = push_component(&mut rel, child.as_bytes());
            let here = join_rel(path, &rel);
            match rustix::fs::unlinkat(&current, &child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => rel.truncate(path_len),
                Err(Errno::ISDIR) => {
                    let (fd, _) =
                        open_dir_forcing(&current, &child).map_err(FsError::at("open", &here))?;
                    make_traversable(&fd).map_err(FsError::at("chmod", &here))?;
                    let stat = rustix::fs::fstat(&fd).map_err(FsError::at("stat", &here))?;
                    stack.push(Level {
                        names: list_names(&fd).map_err(FsError::at("read directory", &here))?,
                        id: id_of(&stat),
                        name: child,
                        path_len,
                    });
                    current = fd;
                }
                Err(e) => return Err(FsError::at("remove", &here)(e)),
            }
            continue;
        }
        let done = stack.pop().expect("a level is on the stack");
        let here = join_rel(path, &rel);
        let Some(up) = stack.last() else {
            drop(current);
            return rustix::fs::unlinkat(parent, &done.name, AtFlags::REMOVEDIR)
                .map_err(FsError::at("remove directory", path));
        };
        let up_fd = open_parent(&current, up.id, &here)?;
        rustix::fs::unlinkat(&up_fd, &done.name, AtFlags::REMOVEDIR)
            .map_err(FsError::at("remove directory", &here))?;
        current = up_fd;
        rel.truncate(done.path_len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn a_chmod_through_an_opened_entry_ignores_a_symlink_swapped_in_after_the_check() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path()).unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::set_permissions(tmp.path().join("d"), std::fs::Permissions::from_mode(0o500))
            .unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();

        let (entry, mode) = open_path_of_kind(dir.as_fd(), c"d", FileType::Directory).unwrap();
        assert_eq!(mode, Some(0o500));
        // The race a stat-then-chmodat-by-name loses: the checked entry is replaced by a
        // symlink to a directory outside before the chmod.
        std::fs::rename(tmp.path().join("d"), tmp.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, tmp.path().join("d")).unwrap();
        chmod_opened(&entry, Mode::from_raw_mode(0o777)).unwrap();

        assert_eq!(mode_of(&tmp.path().join("moved")), 0o777);
        assert_eq!(mode_of(&outside), 0o700);
    }

    #[test]
    fn a_symlink_is_never_taken_for_the_kind_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open_dir(tmp.path()).unwrap();
        std::fs::create_dir(tmp.path().join("target")).unwrap();
        std::os::unix::fs::symlink("target", tmp.path().join("link")).unwrap();
        let (_, mode) = open_path_of_kind(dir.as_fd(), c"link", FileType::Directory).unwrap();
        assert_eq!(mode, None);
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink("file", tmp.path().join("file-link")).unwrap();
        let (_, mode) =
            open_path_of_kind(dir.as_fd(), c"file-link", FileType::RegularFile).unwrap();
        assert_eq!(mode, None);
    }
}
