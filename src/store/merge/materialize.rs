//! Writing a [`RuntimeDiff`] as an overlay upper directory: the unit's new runtime layer over
//! the new charm base.
//!
//! The layer is built in a staging directory that must not exist yet, for the caller to
//! rename into `layers/` atomically (`LayerDirs::install`). Every entry is created relative
//! to an open directory fd of the staging tree; file contents are copied out of the runtime
//! layers (newest first: the first layer holding the path is the one the diff was flattened
//! from), each opened beneath its layer root with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` and `O_NOFOLLOW`, checked to be a regular file through an `O_PATH`
//! fd before it is opened for reading (a device is never opened), and hashed while copied:
//! a file whose content is not the listed sha256 fails the build. Whiteouts are character
//! devices 0:0 (unprivileged since Linux 5.8), opaque directories carry `overlay.opaque=y`
//! in the namespace the caller names. Directory modes are set when a directory is finished,
//! so a mode without `u+w` does not block filling it. One `syncfs` makes the whole layer
//! durable before returning.

use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::store::digest::EntryKind;
use crate::store::squash::{OverlayXattrs, remove_tree};

use super::MergeError;
use super::flatten::open_beneath;
use super::tree::{Change, RuntimeDiff, is_under};

/// What a materialisation wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaterializeReport {
    /// Regular files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Directories created (opaque ones included).
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Whiteouts created.
    pub whiteouts: u64,
}

/// Mode of the upper's root: the merged charm dir's root shows it.
const ROOT_MODE: u32 = 0o755;

/// Writes `diff` as an overlay upper at `staging` (which must not exist), copying file
/// contents from `layers` (the unit's runtime layers, newest first). On error the staging
/// directory is removed.
pub fn materialize(
    diff: &RuntimeDiff,
    layers: &[PathBuf],
    staging: &Path,
    xattrs: OverlayXattrs,
) -> Result<MaterializeReport, MergeError> {
    let (parent, name) = split_parent(staging)?;
    let parent_fd = rustix::fs::open(
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno("open directory", parent))?;
    match rustix::fs::mkdirat(&parent_fd, name.as_c_str(), Mode::from_raw_mode(0o700)) {
        Ok(()) => {}
        Err(Errno::EXIST) => {
            return Err(MergeError::StagingExists {
                path: staging.to_owned(),
            });
        }
        Err(e) => return Err(errno("create staging directory", staging)(e)),
    }
    let built = open_beneath(
        &parent_fd,
        name.as_bytes(),
        OFlags::RDONLY | OFlags::DIRECTORY,
    )
    .map_err(errno("open directory", staging))
    .and_then(|root| build(diff, layers, root, staging, xattrs));
    if built.is_err()
        && let Err(cleanup) = remove_tree(staging)
    {
        tracing::warn!(path = %staging.display(), error = %cleanup, "could not remove a half-built layer");
    }
    built
}

fn build(
    diff: &RuntimeDiff,
    layers: &[PathBuf],
    root: OwnedFd,
    staging: &Path,
    xattrs: OverlayXattrs,
) -> Result<MaterializeReport, MergeError> {
    let layer_fds = layers
        .iter()
        .map(|layer| {
            rustix::fs::open(
                layer,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno("open layer", layer))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut report = MaterializeReport::default();
    // The open directories above the current entry: (path, fd, final mode).
    let mut open: Vec<(&[u8], OwnedFd, u32)> = Vec::new();
    for entry in diff.entries() {
        while open
            .last()
            .is_some_and(|(dir, ..)| !is_under(&entry.path, dir))
        {
            let (dir, fd, mode) = open.pop().expect("checked non-empty");
            finish_dir(&fd, mode, &staging.join(OsStr::from_bytes(dir)))?;
        }
        let parent = open.last().map_or(&root, |(_, fd, _)| fd);
        let target = staging.join(OsStr::from_bytes(&entry.path));
        let name = entry
            .path
            .rsplit(|c| *c == b'/')
            .next()
            .expect("split yields at least one piece");
        let name = OsStr::from_bytes(name);
        match &entry.change {
            Change::Whiteout => {
                rustix::fs::mknodat(parent, name, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(errno("create whiteout", &target))?;
                report.whiteouts += 1;
            }
            Change::OpaqueDir { mode } => {
                let fd = create_dir(parent, name, &target)?;
                rustix::fs::fsetxattr(&fd, xattrs.opaque(), b"y", XattrFlags::empty())
                    .map_err(errno("mark opaque", &target))?;
                open.push((&entry.path, fd, *mode));
                report.dirs += 1;
            }
            Change::Write {
                mode,
                kind: EntryKind::Dir,
            } => {
                let fd = create_dir(parent, name, &target)?;
                open.push((&entry.path, fd, *mode));
                report.dirs += 1;
            }
            Change::Write {
                kind: EntryKind::Symlink { target: link },
                ..
            } => {
                rustix::fs::symlinkat(OsStr::from_bytes(link), parent, name)
                    .map_err(errno("create symlink", &target))?;
                report.symlinks += 1;
            }
            Change::Write {
                mode,
                kind: EntryKind::File { sha256, size },
            } => {
                copy_from_layers(
                    &layer_fds,
                    layers,
                    &entry.path,
                    sha256,
                    *size,
                    *mode,
                    parent,
                    name,
                    &target,
                )?;
                report.files += 1;
                report.bytes += size;
            }
            Change::Write {
                kind: EntryKind::Special { .. },
                ..
            } => return Err(MergeError::Unrepresentable { path: target }),
        }
    }
    while let Some((dir, fd, mode)) = open.pop() {
        finish_dir(&fd, mode, &staging.join(OsStr::from_bytes(dir)))?;
    }
    finish_dir(&root, ROOT_MODE, staging)?;
    rustix::fs::syncfs(&root).map_err(errno("sync", staging))?;
    Ok(report)
}

fn create_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<OwnedFd, MergeError> {
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
        .map_err(errno("create directory", path))?;
    open_beneath(parent, name.as_bytes(), OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(errno("open directory", path))
}

fn finish_dir(fd: &OwnedFd, mode: u32, path: &Path) -> Result<(), MergeError> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode & 0o777)).map_err(errno("chmod", path))
}

/// Copies the runtime file at `rel` (from the newest layer that has it) to `name` in
/// `parent`, checking its content against the listed hash and size.
#[expect(clippy::too_many_arguments, reason = "one copy step, all of it needed")]
fn copy_from_layers(
    layer_fds: &[OwnedFd],
    layers: &[PathBuf],
    rel: &[u8],
    sha256: &[u8; 32],
    size: u64,
    mode: u32,
    parent: &OwnedFd,
    name: &OsStr,
    target: &Path,
) -> Result<(), MergeError> {
    let expected = || {
        sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (layer_fd, layer) in layer_fds.iter().zip(layers) {
        let source_path = layer.join(OsStr::from_bytes(rel));
        let handle = match open_beneath(layer_fd, rel, OFlags::PATH) {
            Ok(fd) => fd,
            // Not in this layer (or hidden by a whiteout, file or symlink on the way).
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => continue,
            Err(e) => return Err(errno("open", &source_path)(e)),
        };
        let stat = rustix::fs::fstat(&handle).map_err(errno("stat", &source_path))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(MergeError::SourceChanged {
                path: source_path,
                expected: expected(),
            });
        }
        let source = open_beneath(layer_fd, rel, OFlags::RDONLY | OFlags::NONBLOCK)
            .map_err(errno("open", &source_path))?;
        let written = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(errno("create", target))?;
        let mut reader = std::fs::File::from(source);
        let mut writer = std::fs::File::from(written);
        let mut hasher = Sha256::new();
        let mut copied = 0u64;
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(MergeError::io("read", &source_path)(e)),
            };
            hasher.update(&buf[..n]);
            copied += n as u64;
            writer
                .write_all(&buf[..n])
                .map_err(MergeError::io("write", target))?;
        }
        if copied != size || hasher.finalize().as_slice() != sha256 {
            return Err(MergeError::SourceChanged {
                path: source_path,
                expected: expected(),
            });
        }
        rustix::fs::fchmod(&writer, Mode::from_raw_mode(mode & 0o777))
            .map_err(errno("chmod", target))?;
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: stat.st_atime,
                tv_nsec: stat.st_atime_nsec as _,
            },
            last_modification: Timespec {
                tv_sec: stat.st_mtime,
                tv_nsec: stat.st_mtime_nsec as _,
            },
        };
        rustix::fs::futimens(&writer, &times).map_err(errno("set times of", target))?;
        return Ok(());
    }
    Err(MergeError::SourceChanged {
        path: PathBuf::from(OsStr::from_bytes(rel)),
        expected: expected(),
    })
}

fn errno(action: &'static str, path: &Path) -> impl FnOnce(Errno) -> MergeError {
    let path = path.to_owned();
    move |e| MergeError::Io {
        action,
        path,
        source: e.into(),
    }
}

fn split_parent(path: &Path) -> Result<(&Path, CString), MergeError> {
    let bad = || MergeError::Io {
        action: "use as staging directory",
        path: path.to_owned(),
        source: std::io::ErrorKind::InvalidInput.into(),
    };
    let name = path.file_name().ok_or_else(bad)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, CString::new(name.as_bytes()).map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::merge::{Listing, MergeOutcome, flatten_layers, merge};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn merge_result_is_written_exactly_and_refuses_changed_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        fs::create_dir_all(base.join("d")).unwrap();
        fs::write(base.join("d/x"), "x").unwrap();
        fs::write(base.join("f"), "f").unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir_all(layer.join("d/new")).unwrap();
        fs::write(layer.join("d/new/data"), "runtime data").unwrap();
        fs::set_permissions(layer.join("d/new/data"), fs::Permissions::from_mode(0o751)).unwrap();
        fs::set_permissions(layer.join("d/new"), fs::Permissions::from_mode(0o500)).unwrap();
        std::os::unix::fs::symlink("../f", layer.join("d/up")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            layer.join("f"),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .unwrap();

        let old = Listing::read_tree(&base).unwrap();
        let runtime = flatten_layers(std::slice::from_ref(&layer), OverlayXattrs::User).unwrap();
        let MergeOutcome::Merged(result) = merge(&old, &runtime, &old) else {
            panic!()
        };
        let staging = tmp.path().join("staging");
        let report = materialize(
            &result,
            std::slice::from_ref(&layer),
            &staging,
            OverlayXattrs::User,
        )
        .unwrap();
        assert_eq!(
            (report.files, report.dirs, report.symlinks, report.whiteouts),
            (1, 2, 1, 1)
        );
        assert_eq!(
            flatten_layers(std::slice::from_ref(&staging), OverlayXattrs::User).unwrap(),
            result
        );
        assert_eq!(
            fs::read(staging.join("d/new/data")).unwrap(),
            b"runtime data"
        );
        assert!(matches!(
            materialize(
                &result,
                std::slice::from_ref(&layer),
                &staging,
                OverlayXattrs::User
            ),
            Err(MergeError::StagingExists { .. })
        ));

        // A layer file that no longer matches its listing fails the build and leaves nothing.
        fs::set_permissions(layer.join("d/new"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(layer.join("d/new/data"), "tampered").unwrap();
        let other = tmp.path().join("other");
        let err = materialize(
            &result,
            std::slice::from_ref(&layer),
            &other,
            OverlayXattrs::User,
        )
        .unwrap_err();
        assert!(matches!(err, MergeError::SourceChanged { .. }), "{err}");
        assert!(!other.exists());
    }
}
