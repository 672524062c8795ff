//! Writing a [`RuntimeDiff`] as an overlay upper directory: the unit's new runtime layer over
//! the new charm base.
//!
//! The layer is built in a staging directory that must not exist yet, for the caller to
//! rename into `layers/` atomically (`LayerDirs::install`). Every entry is created relative
//! to an open directory fd of the staging tree. A file's source is the newest runtime layer
//! holding its path (the one the diff was flattened from): its directory is opened beneath
//! the layer root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, the file is checked
//! with `AT_SYMLINK_NOFOLLOW` to be a regular file (a device is never opened), opened with
//! `O_NOFOLLOW` and hashed: content that is not the listed sha256 fails the build. It is then
//! hard-linked (committed layers are immutable, as the squash also relies on; creating an
//! inode costs ~20x a link on the ext4 here) after checking the link names the inode hashed,
//! or copied when its mode differs or the kernel refuses the link (`EXDEV`, `EPERM`,
//! `EMLINK`). Whiteouts are character devices 0:0 (unprivileged since Linux 5.8), opaque
//! directories carry `overlay.opaque=y` in the namespace the caller names. A directory's mode
//! is set once it is filled, so a mode without `u+w` does not block filling it.
//!
//! Durability: copied files and every directory are fsynced before returning (batched after
//! the writes, so a journalling filesystem commits once), so after the caller's rename (and
//! its fsync of `layers/`) the layer's structure survives a crash; a linked file is exactly
//! as durable as the committed layer it shares its inode with. No `syncfs`: on a shared disk
//! it would also flush everyone else's dirty pages.

use std::ffi::OsStr;
use std::io::{Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::store::digest::EntryKind;
use crate::store::fsops::{
    self, CopyFailure, OverlayXattrs, copy_hashing, create_exclusive, open_beneath, remove_tree,
};

use super::MergeError;
use super::tree::{Change, RuntimeDiff, is_under};

/// What a materialisation wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaterializeReport {
    /// Regular files hard-linked from the runtime layers.
    pub linked: u64,
    /// Regular files copied (the mode differs, or the kernel refused the link).
    pub copied: u64,
    /// Bytes of the files placed.
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
    let (parent, name) = fsops::split_parent(staging).ok_or_else(|| MergeError::Io {
        action: "use as staging directory",
        path: staging.to_owned(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
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
    let built = open_beneath(&parent_fd, &name, OFlags::RDONLY | OFlags::DIRECTORY)
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
    let mut unsynced = Unsynced::default();
    // The open directories above the current entry: (path, fd, final mode).
    let mut open: Vec<(&[u8], OwnedFd, u32)> = Vec::new();
    for entry in diff.entries() {
        while open
            .last()
            .is_some_and(|(dir, ..)| !is_under(&entry.path, dir))
        {
            let (dir, fd, mode) = open.pop().expect("checked non-empty");
            finish_dir(
                fd,
                mode,
                staging.join(OsStr::from_bytes(dir)),
                &mut unsynced,
            )?;
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
                fsops::make_whiteout(parent, name).map_err(errno("create whiteout", &target))?;
                report.whiteouts += 1;
            }
            Change::OpaqueDir { mode } => {
                let fd = create_dir(parent, name, &target)?;
                fsops::mark_opaque(&fd, xattrs).map_err(errno("mark opaque", &target))?;
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
                let placed = place_file(
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
                match placed {
                    Placed::Linked => report.linked += 1,
                    Placed::Copied(fd) => {
                        report.copied += 1;
                        unsynced.push(fd, target)?;
                    }
                }
                report.bytes += size;
            }
            Change::Write {
                kind: EntryKind::Special { .. },
                ..
            } => return Err(MergeError::Unrepresentable { path: target }),
        }
    }
    while let Some((dir, fd, mode)) = open.pop() {
        finish_dir(
            fd,
            mode,
            staging.join(OsStr::from_bytes(dir)),
            &mut unsynced,
        )?;
    }
    unsynced.sync_all()?;
    rustix::fs::fchmod(&root, Mode::from_raw_mode(ROOT_MODE)).map_err(errno("chmod", staging))?;
    rustix::fs::fsync(&root).map_err(errno("fsync", staging))?;
    Ok(report)
}

fn create_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<OwnedFd, MergeError> {
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
        .map_err(errno("create directory", path))?;
    open_beneath(parent, name, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(errno("open directory", path))
}

/// Sets a filled directory's mode; its fsync waits in `unsynced`.
fn finish_dir(
    fd: OwnedFd,
    mode: u32,
    path: PathBuf,
    unsynced: &mut Unsynced,
) -> Result<(), MergeError> {
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777)).map_err(errno("chmod", &path))?;
    unsynced.push(fd, path)
}

/// Files and directories written but not yet fsynced. The fsyncs are batched after the
/// writes: on a journalling filesystem the first one commits everything before it, so the
/// rest are cheap, where interleaving an fsync per directory with the writes costs one
/// journal commit each. At most [`Unsynced::BATCH`] fds are held at a time.
#[derive(Default)]
struct Unsynced(Vec<(OwnedFd, PathBuf)>);

impl Unsynced {
    const BATCH: usize = 256;

    fn push(&mut self, fd: OwnedFd, path: PathBuf) -> Result<(), MergeError> {
        self.0.push((fd, path));
        if self.0.len() >= Self::BATCH {
            self.sync_all()?;
        }
        Ok(())
    }

    fn sync_all(&mut self) -> Result<(), MergeError> {
        for (fd, path) in self.0.drain(..) {
            rustix::fs::fsync(&fd).map_err(errno("fsync", &path))?;
        }
        Ok(())
    }
}

/// Places the runtime file at `rel` (from the newest layer that has it) as `name` in
/// `parent`: a hard link when the kernel allows it and the mode matches (layers are immutable,
/// as the squash also relies on), else a copy; either way the content is checked against the
/// listed hash and size first.
#[expect(
    clippy::too_many_arguments,
    reason = "one placement step, all of it needed"
)]
fn place_file(
    layer_fds: &[OwnedFd],
    layers: &[PathBuf],
    rel: &[u8],
    sha256: &[u8; 32],
    size: u64,
    mode: u32,
    parent: &OwnedFd,
    name: &OsStr,
    target: &Path,
) -> Result<Placed, MergeError> {
    let changed = |path: PathBuf| MergeError::SourceChanged {
        path,
        expected: sha256.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let (dir_rel, file_name) = match rel.iter().rposition(|c| *c == b'/') {
        Some(i) => (Some(&rel[..i]), &rel[i + 1..]),
        None => (None, rel),
    };
    let file_name = OsStr::from_bytes(file_name);
    for (layer_fd, layer) in layer_fds.iter().zip(layers) {
        let source_path = layer.join(OsStr::from_bytes(rel));
        // The source's directory, resolved beneath the layer root without any symlink (and
        // opened up, until this file is placed, where a hook made it unreadable).
        let opened_dir;
        let source_dir = match dir_rel {
            None => layer_fd,
            Some(dir_rel) => match fsops::open_dir_path_forcing(layer_fd, dir_rel) {
                Ok(dir) => {
                    opened_dir = dir;
                    opened_dir.fd()
                }
                // Not in this layer (or hidden by a whiteout, file or symlink on the way).
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => continue,
                Err(e) => return Err(errno("open", &source_path)(e)),
            },
        };
        let stat = match rustix::fs::statat(source_dir, file_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(errno("stat", &source_path)(e)),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(changed(source_path));
        }
        // A hook may have made its file unreadable (mode 000): opened up for the read only.
        let file_name_c = std::ffi::CString::new(file_name.as_bytes())
            .map_err(|_| errno("open", &source_path)(Errno::INVAL))?;
        let source = fsops::open_file_forcing(source_dir, &file_name_c)
            .map_err(errno("open", &source_path))?;
        let opened = rustix::fs::fstat(&source).map_err(errno("stat", &source_path))?;
        let mut reader = std::fs::File::from(source);
        if stat.st_mode & 0o777 == mode & 0o777 {
            if hash_copy(&mut reader, None, &source_path, target)? != (*sha256, size) {
                return Err(changed(source_path));
            }
            match rustix::fs::linkat(source_dir, file_name, parent, name, AtFlags::empty()) {
                Ok(()) => {
                    // The name linked must be the inode just hashed.
                    let linked = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(errno("stat", target))?;
                    if (linked.st_dev, linked.st_ino) != (opened.st_dev, opened.st_ino) {
                        return Err(changed(source_path));
                    }
                    return Ok(Placed::Linked);
                }
                Err(e) if fsops::link_refused(e) => {
                    reader
                        .seek(std::io::SeekFrom::Start(0))
                        .map_err(MergeError::io("read", &source_path))?;
                }
                Err(e) => return Err(errno("link", target)(e)),
            }
        }
        let written = create_exclusive(parent, name, 0o600).map_err(errno("create", target))?;
        let mut writer = std::fs::File::from(written);
        if hash_copy(&mut reader, Some(&mut writer), &source_path, target)? != (*sha256, size) {
            return Err(changed(source_path));
        }
        rustix::fs::fchmod(&writer, Mode::from_raw_mode(mode & 0o777))
            .map_err(errno("chmod", target))?;
        rustix::fs::futimens(&writer, &fsops::timestamps_of(&stat))
            .map_err(errno("set times of", target))?;
        return Ok(Placed::Copied(writer.into()));
    }
    Err(changed(PathBuf::from(OsStr::from_bytes(rel))))
}

/// How a file got into the new layer.
enum Placed {
    Linked,
    /// The copy, still to be fsynced.
    Copied(OwnedFd),
}

/// Reads `reader` to the end (into `writer` if given); returns its sha256 and length.
fn hash_copy(
    reader: &mut std::fs::File,
    writer: Option<&mut std::fs::File>,
    source_path: &Path,
    target: &Path,
) -> Result<([u8; 32], u64), MergeError> {
    copy_hashing(reader, writer.map(|w| w as &mut dyn Write)).map_err(|e| match e {
        CopyFailure::Read(e) => MergeError::io("read", source_path)(e),
        CopyFailure::Write(e) => MergeError::io("write", target)(e),
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
            (
                report.linked + report.copied,
                report.dirs,
                report.symlinks,
                report.whiteouts
            ),
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

        assert_eq!(report.linked, 1);

        // A mode the layer file does not have: copied, never chmod-ing the shared inode.
        let remoded: Vec<_> = result
            .entries()
            .iter()
            .cloned()
            .map(|mut e| {
                if let Change::Write {
                    mode,
                    kind: EntryKind::File { .. },
                } = &mut e.change
                {
                    *mode = 0o600;
                }
                e
            })
            .collect();
        let remoded = RuntimeDiff::new(remoded).unwrap();
        let copy = tmp.path().join("copy");
        let report = materialize(
            &remoded,
            std::slice::from_ref(&layer),
            &copy,
            OverlayXattrs::User,
        )
        .unwrap();
        assert_eq!((report.linked, report.copied), (0, 1));
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copy.join("d/new/data")), 0o600);
        assert_eq!(mode(&layer.join("d/new/data")), 0o751);
        assert_eq!(fs::read(copy.join("d/new/data")).unwrap(), b"runtime data");

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
