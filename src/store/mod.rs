//! The state root on disk: charm bases, application records, units and their layers.

pub mod atomic;
pub mod charms;
pub mod clock;
pub mod digest;
pub mod fsops;
pub mod layers;
pub mod merge;
pub mod root;
pub mod squash;

use std::path::PathBuf;

use crate::exit::{ClassifyExit, ExitStatus};

pub use root::StateRoot;

/// Errors reading or writing the state root.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No state root could be chosen from the flags and the environment.
    #[error("no state root: pass --root, or set HOOKBOX_ROOT, XDG_DATA_HOME or HOME")]
    NoRoot,
    /// A filesystem operation on a state path failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A tree changed under a walk: going back up found another directory than the one the
    /// walk came down from.
    #[error("directory {path} was moved while it was being walked")]
    Moved {
        /// The directory whose parent changed.
        path: PathBuf,
    },
    /// A state file could not be encoded or decoded.
    #[error("state file {path} is not valid")]
    Json {
        /// The state file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}

impl From<fsops::FsError> for StoreError {
    fn from(err: fsops::FsError) -> Self {
        match err {
            fsops::FsError::Io {
                action,
                path,
                source,
            } => Self::Io {
                action,
                path,
                source,
            },
            fsops::FsError::Moved { path } => Self::Moved { path },
        }
    }
}

impl ClassifyExit for StoreError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::State
    }
}
