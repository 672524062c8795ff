//! Charms: `metadata.yaml` / `config.yaml` types, hook names and handler lookup, archive ingest.

pub mod ingest;
pub mod metadata;
pub mod verify;

use std::path::PathBuf;

use crate::exit::{ClassifyExit, ExitStatus};

pub use metadata::Metadata;

/// Errors about a charm's content: its YAML, its files, its archive.
#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    /// A YAML file of the charm does not parse or does not fit its schema.
    #[error("{file}: {message}")]
    Yaml {
        /// The file inside the charm, e.g. `metadata.yaml`.
        file: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The charm has neither `metadata.yaml` nor `charmcraft.yaml`.
    #[error("charm has no metadata.yaml")]
    MissingMetadata,
}

impl ClassifyExit for CharmError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::InvalidCharm
    }
}
