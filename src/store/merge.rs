//! The three-way merge of a charm upgrade (DESIGN.md rules 8 and 9): the old charm base, the
//! unit's runtime layers over it, and the new charm base give either a new runtime layer over
//! the new base or a list of named conflicts.
//!
//! The pieces, in the order an upgrade uses them:
//! - [`Listing`]: a base tree as a sorted listing (from [`Listing::read_tree`], or cached at
//!   ingest with [`Listing::save`] / [`Listing::load`] so a 20,000-file charm is not hashed again);
//! - [`flatten_layers`]: the unit's runtime layers (newest first) as one [`RuntimeDiff`], the
//!   per-path effect of the whole stack over the old base (written entry, whiteout, opaque dir);
//! - [`merge`]: the pure three-way merge, `(old base, runtime diff, new base)` to
//!   [`MergeOutcome::Merged`] (the new runtime diff over the new base) or
//!   [`MergeOutcome::Conflicts`];
//! - [`materialize`]: writes a [`RuntimeDiff`] as an overlay upper dir in a staging directory,
//!   copying file contents out of the runtime layers without following any symlink, for the
//!   caller to rename into place atomically.

mod cache;
mod flatten;
mod materialize;
mod three_way;
mod tree;

use std::path::PathBuf;

use crate::exit::{ClassifyExit, ExitStatus};

pub use cache::LISTING_CACHE_FILE;
pub use flatten::flatten_layers;
pub use materialize::{MaterializeReport, materialize};
pub use three_way::{Conflict, ConflictKind, EntryType, MergeOutcome, diff_listings, merge};
pub use tree::{Change, DiffEntry, Listing, RuntimeDiff, is_bytecode_path, tree_order};

/// Errors of the merge's inputs and of reading or writing layers.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A listing or diff path is not a clean relative path.
    #[error("path {path:?} in a {what} is not a clean relative path")]
    BadPath {
        /// The offending path, lossily decoded.
        path: String,
        /// "listing" or "runtime diff".
        what: &'static str,
    },
    /// A listing or diff is not a tree: a duplicate path, or an entry whose parent is missing
    /// or is not a directory.
    #[error("{what} is not a tree at {path:?}: {reason}")]
    NotATree {
        /// The offending path, lossily decoded.
        path: String,
        /// "listing" or "runtime diff".
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Walking a tree failed.
    #[error(transparent)]
    Walk(#[from] super::StoreError),
    /// A file to copy from a runtime layer is not what the runtime diff says it is.
    #[error("runtime layer file {path} changed since it was listed (expected sha256 {expected})")]
    SourceChanged {
        /// The file in the layer (or the path searched for, when no layer has it).
        path: PathBuf,
        /// The hex sha256 the diff recorded.
        expected: String,
    },
    /// The diff holds an entry an overlay upper cannot carry (a device, fifo or socket).
    #[error("cannot write {path} into a layer: only files, directories, symlinks and whiteouts")]
    Unrepresentable {
        /// The entry in the staging directory.
        path: PathBuf,
    },
    /// The staging directory already exists.
    #[error("staging directory {path} already exists")]
    StagingExists {
        /// The staging directory.
        path: PathBuf,
    },
    /// A cached listing is not valid.
    #[error("cached listing {path} is not valid: {reason}")]
    BadCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

impl MergeError {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

impl From<super::fsops::FsError> for MergeError {
    fn from(err: super::fsops::FsError) -> Self {
        Self::Walk(err.into())
    }
}

impl ClassifyExit for MergeError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::State
    }
}
