//! `IngestError`: every way a charm source can be refused, each naming the archive member.

use std::path::PathBuf;

use crate::charm::CharmError;
use crate::exit::{ClassifyExit, ExitStatus};
use crate::store::StoreError;

/// Why a charm source was refused or could not be stored.
///
/// Member names are shown escaped (control characters and bytes that are not UTF-8 as
/// `\xNN`), relative to the charm root as the archive spells them.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The source path could not be opened or read.
    #[error("cannot read {path}")]
    Source {
        /// The source given on the command line.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The source is an empty file.
    #[error("{path} is an empty file, not a charm archive")]
    EmptySource {
        /// The source given on the command line.
        path: PathBuf,
    },
    /// The source is neither a directory nor a tar, gzip or zip archive.
    #[error(
        "{path} is not a charm directory, tar, tar.gz or zip (.charm) archive (it starts with {magic})"
    )]
    UnknownFormat {
        /// The source given on the command line.
        path: PathBuf,
        /// The first bytes, in hex.
        magic: String,
    },
    /// The source uses a compression hookbox does not read.
    #[error("{path} is {format}-compressed; recompress it with gzip or unpack it into a directory")]
    UnsupportedCompression {
        /// The source given on the command line.
        path: PathBuf,
        /// `bzip2`, `xz` or `zstd`.
        format: &'static str,
    },
    /// A gzip stream whose content is not a tar archive.
    #[error("{path} is gzip-compressed but does not contain a tar archive")]
    GzipNotTar {
        /// The source given on the command line.
        path: PathBuf,
    },
    /// The archive is damaged: bad header checksum, truncated data, bad compressed stream.
    #[error("{archive}: corrupt or truncated archive at member {member} (byte {offset})")]
    Corrupt {
        /// The archive.
        archive: PathBuf,
        /// The member being read, or the header that failed.
        member: String,
        /// Offset in the (uncompressed) archive stream.
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A member's data is shorter or longer than its header declares (truncated archive, or
    /// a file that changed while it was read).
    #[error("member {member}: holds {actual} bytes but its header declares {declared}")]
    SizeMismatch {
        /// The member.
        member: String,
        /// Size in its header.
        declared: u64,
        /// Bytes actually present.
        actual: u64,
    },
    /// The archive stream ends without its end-of-archive marker.
    #[error("{archive}: archive is truncated after member {member} (no end-of-archive marker)")]
    TruncatedArchive {
        /// The archive.
        archive: PathBuf,
        /// The last complete member.
        member: String,
    },
    /// Bytes that are not padding follow the end of the archive.
    #[error(
        "{archive}: trailing garbage after the end of the archive (after member {member}, byte {offset})"
    )]
    TrailingGarbage {
        /// The archive.
        archive: PathBuf,
        /// The last member.
        member: String,
        /// Offset of the garbage in the stream it was found in.
        offset: u64,
    },
    /// The archive has no members at all.
    #[error("{archive}: archive has no members")]
    NoMembers {
        /// The archive.
        archive: PathBuf,
    },
    /// A zip archive lists the same name twice in its central directory.
    #[error(
        "{archive}: zip central directory lists {listed} entries but only {distinct} distinct names (duplicate members)"
    )]
    ZipDuplicate {
        /// The archive.
        archive: PathBuf,
        /// Entries the central directory declares.
        listed: usize,
        /// Distinct names.
        distinct: usize,
    },
    /// The zip container itself could not be read.
    #[error("{archive}: invalid zip archive")]
    Zip {
        /// The archive.
        archive: PathBuf,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
    /// A zip member could not be read.
    #[error("{archive}: cannot read zip member {member}")]
    ZipMember {
        /// The archive.
        archive: PathBuf,
        /// The member.
        member: String,
        /// The underlying error.
        #[source]
        source: zip::result::ZipError,
    },
    /// A member name starts with `/`.
    #[error("member {member}: absolute path")]
    AbsolutePath {
        /// The member.
        member: String,
    },
    /// A member name has a `..` component.
    #[error("member {member}: `..` path component")]
    ParentComponent {
        /// The member.
        member: String,
    },
    /// A member name is empty, not UTF-8, or holds control characters.
    #[error("member {member}: invalid name ({reason})")]
    InvalidName {
        /// The member.
        member: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path component is longer than NAME_MAX (255 bytes).
    #[error("member {member}: a path component is {length} bytes, over NAME_MAX ({limit})")]
    NameTooLong {
        /// The member.
        member: String,
        /// The component's length.
        length: usize,
        /// NAME_MAX.
        limit: usize,
    },
    /// A member path is longer than the path-length limit.
    #[error(
        "member {member}: path is {length} bytes, over the limit of {limit} (--max-path-bytes)"
    )]
    PathTooLong {
        /// The member.
        member: String,
        /// Its length.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// A member is nested deeper than the depth limit.
    #[error("member {member}: nested {depth} levels deep, over the limit of {limit} (--max-depth)")]
    TooDeep {
        /// The member.
        member: String,
        /// Its depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// The archive has more members than the member-count limit.
    #[error("member {member}: archive has more than {limit} members (--max-members)")]
    TooManyMembers {
        /// The first member over the limit.
        member: String,
        /// The limit.
        limit: u64,
    },
    /// The content is larger than the total-size limit.
    #[error("member {member}: charm content exceeds {limit} bytes (--max-bytes)")]
    TooLarge {
        /// The member that crossed the limit.
        member: String,
        /// The limit.
        limit: u64,
    },
    /// The data expands more than the compression-ratio limit allows (a compression bomb).
    #[error("member {member}: data expands more than {limit}x its compressed size (--max-ratio)")]
    CompressionRatio {
        /// The member being decompressed.
        member: String,
        /// The limit.
        limit: u64,
    },
    /// The same path appears twice (a later member would replace an earlier one).
    #[error("member {member}: duplicate member (the path was already given as {earlier})")]
    Duplicate {
        /// The member.
        member: String,
        /// What the earlier member with this path is.
        earlier: &'static str,
    },
    /// A member's path goes through a symlink member.
    #[error("member {member}: path goes through the symlink {symlink}")]
    ThroughSymlink {
        /// The member.
        member: String,
        /// The symlink on the way.
        symlink: String,
    },
    /// A member's path goes through a regular file.
    #[error("member {member}: path goes through {parent}, which is not a directory")]
    ParentNotDirectory {
        /// The member.
        member: String,
        /// The file on the way.
        parent: String,
    },
    /// A symlink with an absolute target.
    #[error("member {member}: symlink to an absolute path ({target})")]
    SymlinkAbsolute {
        /// The member.
        member: String,
        /// Its target.
        target: String,
    },
    /// A symlink whose target resolves outside the charm.
    #[error("member {member}: symlink target {target} leaves the charm")]
    SymlinkEscapes {
        /// The member.
        member: String,
        /// Its target.
        target: String,
    },
    /// A symlink chain that does not end (more than 40 hops).
    #[error("member {member}: symlink loop (target {target})")]
    SymlinkLoop {
        /// The member.
        member: String,
        /// Its target.
        target: String,
    },
    /// A hardlink whose target is absolute or leaves the charm.
    #[error("member {member}: hardlink to {target}, outside the charm")]
    HardlinkOutside {
        /// The member.
        member: String,
        /// The link target.
        target: String,
    },
    /// A hardlink whose target path goes through a symlink.
    #[error("member {member}: hardlink target {target} goes through the symlink {symlink}")]
    HardlinkThroughSymlink {
        /// The member.
        member: String,
        /// The link target.
        target: String,
        /// The symlink on the way.
        symlink: String,
    },
    /// A hardlink to a member that does not come before it.
    #[error("member {member}: hardlink to {target}, which is not an earlier member")]
    HardlinkMissing {
        /// The member.
        member: String,
        /// The link target.
        target: String,
    },
    /// A hardlink to a directory or symlink.
    #[error("member {member}: hardlink to {target}, which is not a regular file")]
    HardlinkNotFile {
        /// The member.
        member: String,
        /// The link target.
        target: String,
    },
    /// A device node, fifo or socket.
    #[error("member {member}: {kind} (charms hold only files, directories and symlinks)")]
    SpecialFile {
        /// The member.
        member: String,
        /// `character device`, `block device`, `fifo` or `socket`.
        kind: &'static str,
    },
    /// A sparse member (its declared size can dwarf its data: a sparse-file bomb).
    #[error("member {member}: sparse files are not accepted")]
    Sparse {
        /// The member.
        member: String,
    },
    /// An encrypted zip member.
    #[error("member {member}: encrypted zip members are not accepted")]
    Encrypted {
        /// The member.
        member: String,
    },
    /// A tar member type hookbox does not know.
    #[error("member {member}: unsupported tar entry type {entry_type:?}")]
    UnsupportedEntry {
        /// The member.
        member: String,
        /// The type byte.
        entry_type: char,
    },
    /// Neither `metadata.yaml` nor `charmcraft.yaml` at the charm root.
    #[error("{source_path}: no metadata.yaml (or charmcraft.yaml) at the charm root{hint}")]
    MissingMetadata {
        /// The source given on the command line.
        source_path: PathBuf,
        /// A hint about where a metadata file was found instead.
        hint: String,
    },
    /// A charm YAML file or `revision` must be a regular file.
    #[error("member {member}: must be a regular file")]
    NotRegular {
        /// The member.
        member: String,
    },
    /// A YAML file over the YAML size limit.
    #[error(
        "member {member}: {size} bytes, over the YAML size limit of {limit} (--max-yaml-bytes)"
    )]
    YamlTooLarge {
        /// The member.
        member: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A YAML file that is not UTF-8 text.
    #[error("member {member}: not UTF-8 text")]
    NotText {
        /// The member.
        member: String,
    },
    /// A charm file (YAML or `revision`) is invalid; the charm model's error says where.
    #[error("member {member}: invalid charm file")]
    Yaml {
        /// The member.
        member: String,
        /// The charm model's error.
        #[source]
        source: CharmError,
    },
    /// Writing the staging copy failed.
    #[error("cannot {action} {member} in the staging directory")]
    Stage {
        /// What was being done.
        action: &'static str,
        /// The member.
        member: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The charm store could not be read or written.
    #[error("charm store")]
    Store {
        /// The underlying error.
        #[source]
        source: StoreError,
    },
}

impl From<StoreError> for IngestError {
    fn from(source: StoreError) -> Self {
        IngestError::Store { source }
    }
}

impl ClassifyExit for IngestError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            IngestError::Stage { .. } | IngestError::Store { .. } => ExitStatus::State,
            _ => ExitStatus::InvalidCharm,
        }
    }
}

/// Shows a member name for messages: UTF-8 text as is, control characters escaped, other
/// bytes as `\xNN`.
pub fn show(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_escapes_controls_and_bad_bytes() {
        assert_eq!(show(b"hooks/install"), "hooks/install");
        assert_eq!(show(b"a\nb"), "a\\nb");
        assert_eq!(show(b"a\xffb"), "a\\xffb");
    }
}
