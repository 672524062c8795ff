//! `.charm` (zip) sources.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::{IngestError, show};
use super::limits::Limits;
use super::sink::Sink;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFIFO: u32 = 0o010_000;
const S_IFSOCK: u32 = 0o140_000;

/// Reads a zip archive.
pub fn read_zip(
    archive: &Path,
    mut file: File,
    sink: &mut Sink<'_>,
    limits: &Limits,
) -> Result<(), IngestError> {
    let listed = declared_entries(&mut file).map_err(|source| IngestError::Source {
        path: archive.to_owned(),
        source,
    })?;
    let zip_error = |source| IngestError::Zip {
        archive: archive.to_owned(),
        source,
    };
    let mut zip =
        zip::ZipArchive::new(BufReader::with_capacity(1 << 20, file)).map_err(zip_error)?;
    // The zip crate keeps one entry per name, so a duplicate in the central directory would
    // silently replace the earlier one: compare with the count the directory declares.
    if let Some(listed) = listed
        && listed != zip.len()
    {
        return Err(IngestError::ZipDuplicate {
            archive: archive.to_owned(),
            listed,
            distinct: zip.len(),
        });
    }
    if zip.is_empty() {
        return Err(IngestError::NoMembers {
            archive: archive.to_owned(),
        });
    }
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .map_err(|source| IngestError::ZipMember {
                archive: archive.to_owned(),
                member: format!("#{index}"),
                source,
            })?;
        let raw = entry.name_raw().to_vec();
        let member = show(&raw);
        if entry.encrypted() {
            return Err(IngestError::Encrypted { member });
        }
        let Some(path) = sink.begin(&raw)? else {
            continue;
        };
        let mode = entry.unix_mode().unwrap_or(0o644);
        let special = |kind| IngestError::SpecialFile {
            member: member.clone(),
            kind,
        };
        match mode & S_IFMT {
            _ if entry.is_dir() => sink.add_dir(&path)?,
            S_IFDIR => sink.add_dir(&path)?,
            S_IFLNK => {
                let mut target = Vec::new();
                (&mut entry)
                    .take(limits.max_path_bytes as u64 + 1)
                    .read_to_end(&mut target)
                    .map_err(|source| corrupt(archive, &member, source))?;
                sink.add_symlink(&path, &target)?;
            }
            S_IFCHR => return Err(special("character device")),
            S_IFBLK => return Err(special("block device")),
            S_IFIFO => return Err(special("fifo")),
            S_IFSOCK => return Err(special("socket")),
            _ => {
                let size = entry.size();
                if size > Limits::RATIO_GRACE_BYTES
                    && size / entry.compressed_size().max(1) > limits.max_ratio
                {
                    return Err(IngestError::CompressionRatio {
                        member,
                        limit: limits.max_ratio,
                    });
                }
                let mut on_error = |source, m: &str| corrupt(archive, m, source);
                sink.add_file(&path, mode, size, &mut entry, &mut on_error)?;
            }
        }
    }
    Ok(())
}

fn corrupt(archive: &Path, member: &str, source: io::Error) -> IngestError {
    IngestError::Corrupt {
        archive: archive.to_owned(),
        member: member.to_owned(),
        offset: 0,
        source,
    }
}

/// The entry count the end-of-central-directory record declares (`None` for zip64 or when
/// the record is not found; the zip crate then reports the problem itself).
fn declared_entries(file: &mut File) -> io::Result<Option<usize>> {
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.by_ref().take(tail_len).read_to_end(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    let Some(at) = tail
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .filter(|&at| at + 22 <= tail.len())
    else {
        return Ok(None);
    };
    let total = u16::from_le_bytes([tail[at + 10], tail[at + 11]]);
    Ok((total != u16::MAX).then_some(usize::from(total)))
}
