//! `hookbox verify`: the integrity report of a charm source without storing it. The same
//! checks as ingest run over the same one-pass reader, with nothing written anywhere.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ingest::{self, IngestError, Limits, SourceFormat, Warning};
use crate::store::digest::CharmDigest;

/// What `verify` found in a charm that passed every refusal rule.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The source that was checked.
    pub source: PathBuf,
    /// What it was.
    pub format: SourceFormat,
    /// The digest it would be stored under.
    pub digest: CharmDigest,
    /// The charm's name.
    pub name: String,
    /// The `revision` file's number.
    pub revision: Option<u64>,
    /// Regular files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Author-facing warnings (the charm is accepted anyway).
    pub warnings: Vec<Warning>,
}

/// Checks the charm at `source` against the ingest rules and reports warnings; an `Err` is
/// the reason it would be refused.
pub fn verify(source: &Path, limits: &Limits) -> Result<VerifyReport, IngestError> {
    let (checked, _) = ingest::check_source(source, limits, None)?;
    Ok(VerifyReport {
        source: source.to_owned(),
        format: checked.format,
        digest: checked.digest,
        name: checked.inspection.files.metadata.name.clone(),
        revision: checked.inspection.files.revision,
        files: checked.extracted.file_count(),
        bytes: checked.extracted.bytes,
        warnings: checked.inspection.warnings,
    })
}
