//! Ingest limits: what a charm source may cost before it is refused.

use serde::Serialize;

/// Budgets one ingest may spend; every one has a flag (`hookbox ingest --help`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Total bytes of regular-file content.
    pub max_bytes: u64,
    /// Archive members (files, directories, links, the root entry).
    pub max_members: u64,
    /// Path components of one member.
    pub max_depth: usize,
    /// Bytes of one member path (and of one symlink target).
    pub max_path_bytes: usize,
    /// Uncompressed bytes per compressed byte, checked once [`Limits::RATIO_GRACE_BYTES`]
    /// have been decompressed.
    pub max_ratio: u64,
    /// Bytes of one charm YAML file (`metadata.yaml`, `charmcraft.yaml`, `config.yaml`).
    pub max_yaml_bytes: u64,
}

impl Limits {
    /// Decompressed bytes below which the ratio is not checked (tiny archives of text can
    /// compress very well without being bombs).
    pub const RATIO_GRACE_BYTES: u64 = 8 << 20;
}

impl Default for Limits {
    /// 1 GiB, 50,000 members, 64 levels, 1024-byte paths, 200x, 1 MiB of YAML: a charm with a
    /// vendored virtualenv (tens of thousands of files, a few hundred MB) fits.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            max_members: 50_000,
            max_depth: 64,
            max_path_bytes: 1024,
            max_ratio: 200,
            max_yaml_bytes: 1 << 20,
        }
    }
}
