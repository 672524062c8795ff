//! Charm ingest: a directory, `.tar`, `.tar.gz`/`.tgz` or `.charm` (zip) becomes an
//! immutable, read-only entry of the charm store, or is refused with an error that names the
//! member (DESIGN.md rule 13) and leaves nothing behind.
//!
//! One pass over the source: each member is checked, hashed and written into a private
//! staging tree (see [`sink`] for why the writes cannot escape it); then the listing is
//! checked as a whole (symlinks resolved, metadata parsed), the canonical digest computed from
//! the listing (nothing written is read back), the tree made read-only, made durable, and
//! renamed into `charms/sha256-<hex>/`.

mod checks;
mod dir_source;
mod error;
mod limits;
mod sink;
mod tar_source;
mod zip_source;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use serde::Serialize;

pub use checks::{Inspection, Warning, WarningKind};
pub use error::IngestError;
pub use limits::Limits;
pub use sink::{Extracted, Node, stored_mode};

use crate::store::StateRoot;
use crate::store::charms::{CharmRecord, CharmStore, Committed, now_rfc3339};
use crate::store::digest::{CharmDigest, digest_entries};

/// What a charm source is, decided from its content (the name only adds a warning when it
/// disagrees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SourceFormat {
    /// A charm directory.
    #[serde(rename = "directory")]
    Directory,
    /// An uncompressed tar archive.
    #[serde(rename = "tar")]
    Tar,
    /// A gzip-compressed tar archive.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// A zip archive (`.charm`).
    #[serde(rename = "zip")]
    Zip,
}

impl SourceFormat {
    /// The name used in reports and `charm.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Directory => "directory",
            SourceFormat::Tar => "tar",
            SourceFormat::TarGz => "tar.gz",
            SourceFormat::Zip => "zip",
        }
    }
}

/// A checked charm source: its listing, format and identity.
#[derive(Debug)]
pub struct Checked {
    /// The listing and captured content.
    pub extracted: Extracted,
    /// What the source was.
    pub format: SourceFormat,
    /// Metadata, revision, warnings.
    pub inspection: Inspection,
    /// The canonical digest.
    pub digest: CharmDigest,
}

/// The result of [`ingest`].
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    /// The canonical digest, `sha256-<hex>`.
    pub digest: CharmDigest,
    /// The charm's name.
    pub name: String,
    /// The `revision` file's number.
    pub revision: Option<u64>,
    /// Whether the charm was added or was already stored.
    pub outcome: Committed,
    /// `charms/sha256-<hex>/tree`.
    pub tree: PathBuf,
    /// What the source was.
    pub format: SourceFormat,
    /// Regular files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Author-facing warnings.
    pub warnings: Vec<Warning>,
}

/// Ingests the charm at `source` into the store of `root`.
pub fn ingest(
    root: &StateRoot,
    source: &Path,
    limits: &Limits,
) -> Result<IngestReport, IngestError> {
    let store = CharmStore::new(root);
    let staging = store.begin_staging()?;
    let writer = sink::Writer::new(staging.entry_fd()?, staging.tree_fd()?);
    let (checked, writer) = check_source(source, limits, Some(writer))?;
    let Checked {
        extracted,
        format,
        inspection,
        digest,
    } = checked;
    let record = CharmRecord {
        name: inspection.files.metadata.name.clone(),
        revision: inspection.files.revision,
        digest: digest.clone(),
        ingested_at: now_rfc3339(),
        source: std::path::absolute(source)
            .unwrap_or_else(|_| source.to_owned())
            .display()
            .to_string(),
        format: format.as_str().to_owned(),
        files: extracted.file_count(),
        bytes: extracted.bytes,
    };
    let outcome = if store.contains(&digest) {
        Committed::AlreadyStored
    } else {
        writer
            .expect("ingest always writes")
            .seal(&extracted.nodes)?;
        store.commit(staging, &record)?
    };
    match outcome {
        Committed::Stored => {
            tracing::info!(digest = %digest, name = %record.name, source = %record.source, "charm stored")
        }
        Committed::AlreadyStored => tracing::debug!(digest = %digest, "charm already stored"),
    }
    Ok(IngestReport {
        tree: store.tree_path(&digest),
        digest,
        name: record.name,
        revision: record.revision,
        outcome,
        format,
        files: record.files,
        bytes: record.bytes,
        warnings: inspection.warnings,
    })
}

/// Reads, checks and (with a writer) stages a charm source, without storing it.
pub fn check_source(
    source: &Path,
    limits: &Limits,
    writer: Option<sink::Writer>,
) -> Result<(Checked, Option<sink::Writer>), IngestError> {
    let mut sink = sink::Sink::new(limits, writer);
    let (format, mut warnings) = read_source(source, limits, &mut sink)?;
    let (extracted, writer) = sink.finish()?;
    let mut inspection = checks::inspect(&extracted, source, limits)?;
    warnings.append(&mut inspection.warnings);
    inspection.warnings = warnings;
    let digest = digest_entries(&mut extracted.entries());
    Ok((
        Checked {
            extracted,
            format,
            inspection,
            digest,
        },
        writer,
    ))
}

fn read_source(
    source: &Path,
    limits: &Limits,
    sink: &mut sink::Sink<'_>,
) -> Result<(SourceFormat, Vec<Warning>), IngestError> {
    let source_error = |source_err: std::io::Error| IngestError::Source {
        path: source.to_owned(),
        source: source_err,
    };
    // The path the user named may itself be a symlink (their choice); nothing below it is
    // followed.
    let fd = rustix::fs::open(
        source,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| source_error(e.into()))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| source_error(e.into()))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory {
        dir_source::read_dir(source, fd, sink)?;
        return Ok((SourceFormat::Directory, Vec::new()));
    }
    let mut file = File::from(fd);
    let mut head = Vec::with_capacity(512);
    file.by_ref()
        .take(512)
        .read_to_end(&mut head)
        .map_err(source_error)?;
    let file = reopen(file).map_err(source_error)?;
    let format = sniff(source, &head)?;
    let mut warnings = Vec::new();
    if let Some(warning) = name_mismatch(source, format) {
        warnings.push(warning);
    }
    match format {
        SourceFormat::Tar => tar_source::read_tar(source, file, sink, limits)?,
        SourceFormat::TarGz => tar_source::read_tar_gz(source, file, sink, limits)?,
        SourceFormat::Zip => zip_source::read_zip(source, file, sink, limits)?,
        SourceFormat::Directory => unreachable!("directories are handled above"),
    }
    Ok((format, warnings))
}

fn reopen(mut file: File) -> std::io::Result<File> {
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))?;
    Ok(file)
}

/// Decides the format from the first bytes.
fn sniff(source: &Path, head: &[u8]) -> Result<SourceFormat, IngestError> {
    let compression = |format| IngestError::UnsupportedCompression {
        path: source.to_owned(),
        format,
    };
    match head {
        [] => Err(IngestError::EmptySource {
            path: source.to_owned(),
        }),
        [0x1f, 0x8b, ..] => Ok(SourceFormat::TarGz),
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] | [b'P', b'K', 7, 8, ..] => {
            Ok(SourceFormat::Zip)
        }
        [b'B', b'Z', b'h', ..] => Err(compression("bzip2")),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(compression("xz")),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Err(compression("zstd")),
        _ if tar_source::looks_like_tar(head) => Ok(SourceFormat::Tar),
        _ => Err(IngestError::UnknownFormat {
            path: source.to_owned(),
            magic: head
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
    }
}

/// A warning when the file name promises another format than the content has (the content
/// decides: a plain tar named `.tar.gz` is read as the tar it is).
fn name_mismatch(source: &Path, actual: SourceFormat) -> Option<Warning> {
    let name = source.file_name()?.to_string_lossy().to_lowercase();
    let named = if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        SourceFormat::TarGz
    } else if name.ends_with(".tar") {
        SourceFormat::Tar
    } else if name.ends_with(".charm") || name.ends_with(".zip") {
        SourceFormat::Zip
    } else {
        return None;
    };
    (named != actual).then(|| Warning {
        path: source.display().to_string(),
        kind: WarningKind::FormatMismatch,
        message: format!(
            "{} is named like a {} but is a {} archive; read as {}",
            source.display(),
            named.as_str(),
            actual.as_str(),
            actual.as_str()
        ),
    })
}
