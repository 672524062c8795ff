//! Directory sources: walked relative to directory fds with `O_NOFOLLOW` and
//! `AT_SYMLINK_NOFOLLOW`, so a symlink in the charm is read as a symlink and never entered.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::error::{IngestError, show};
use super::sink::Sink;

/// Reads the charm directory `root` (opened by the caller).
pub fn read_dir(root: &Path, dir: OwnedFd, sink: &mut Sink<'_>) -> Result<(), IngestError> {
    walk(root, dir, &mut Vec::new(), sink)
}

fn walk(
    root: &Path,
    dir: OwnedFd,
    prefix: &mut Vec<u8>,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let source_error = |prefix: &[u8]| {
        let path = root.join(OsStr::from_bytes(prefix));
        move |e: rustix::io::Errno| IngestError::Source {
            path,
            source: e.into(),
        }
    };
    let mut names = Vec::new();
    for item in rustix::fs::Dir::read_from(dir.as_fd()).map_err(source_error(prefix))? {
        let item = item.map_err(source_error(prefix))?;
        let name = item.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(item.file_name().to_owned());
        }
    }
    names.sort();
    for name in names {
        let start = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(name.to_bytes());
        let Some(path) = sink.begin(prefix)? else {
            prefix.truncate(start);
            continue;
        };
        let stat = rustix::fs::statat(dir.as_fd(), name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(source_error(prefix))?;
        let special = |kind| IngestError::SpecialFile {
            member: show(&path),
            kind,
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                sink.add_dir(&path)?;
                let child = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(source_error(prefix))?;
                walk(root, child, prefix, sink)?;
            }
            FileType::RegularFile => {
                let fd = rustix::fs::openat(
                    dir.as_fd(),
                    name.as_c_str(),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(source_error(prefix))?;
                let mut file = File::from(fd);
                let file_path = root.join(OsStr::from_bytes(prefix));
                let mut on_error = |source: io::Error, _: &str| IngestError::Source {
                    path: file_path.clone(),
                    source,
                };
                sink.add_file(
                    &path,
                    stat.st_mode,
                    stat.st_size as u64,
                    &mut file,
                    &mut on_error,
                )?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir.as_fd(), name.as_c_str(), Vec::new())
                    .map_err(source_error(prefix))?;
                sink.add_symlink(&path, target.as_bytes())?;
            }
            FileType::CharacterDevice => return Err(special("character device")),
            FileType::BlockDevice => return Err(special("block device")),
            FileType::Fifo => return Err(special("fifo")),
            FileType::Socket => return Err(special("socket")),
            FileType::Unknown => return Err(special("file of unknown type")),
        }
        prefix.truncate(start);
    }
    Ok(())
}
