//! One hook run: context, environment, tools server, commit or discard ([`hook_run`]); the
//! lifecycles built from hook runs (deploy, add-unit, remove, config, resolved:
//! [`lifecycle`]); the per-unit output log ([`output_log`]).
//!
//! A hook run, in order: the unit is locked and recovered by whoever opened it
//! ([`open_unit`]); the [`HookContext`](crate::tools::HookContext) is built from the model;
//! the unit records `running-hook` with a fresh upper; a [`tool_server`] listens on a socket
//! in a private directory; the sandbox runs the handler over the unit's layers and the charm
//! base; then the tool server is finished and either the upper is committed and the tools'
//! effects applied (success, or no handler: `missing`), or the upper is discarded with the
//! effects and the unit goes into error (rule 5). Every run appends a history line and its
//! output to the unit's log.

pub mod context;
pub mod hook_run;
pub mod inspect;
pub mod lifecycle;
pub mod output_log;
pub mod relations;
pub mod tool_server;
pub mod upgrade;

use std::path::PathBuf;

use crate::charm::CharmError;
use crate::charm::ingest::IngestError;
use crate::exit::{ClassifyExit, ExitStatus};
use crate::model::UnitError;
use crate::sandbox::SandboxError;
use crate::store::StoreError;
use crate::store::digest::CharmDigest;
use crate::store::merge::MergeError;

pub use hook_run::{HookReport, HookRequest, Runner, open_unit};
pub use tool_server::ToolServerError;

/// Errors of hook runs and unit lifecycles. A hook that fails is not an error: see
/// [`HookReport`].
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// A unit or application step failed.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// The charm refused the request (unknown hook, undeclared endpoint, bad setting).
    #[error(transparent)]
    Charm(#[from] CharmError),
    /// Ingesting the charm failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The sandbox could not be set up.
    #[error("hook {hook:?} of unit {unit}")]
    Sandbox {
        /// The unit.
        unit: String,
        /// The hook.
        hook: String,
        /// The sandbox error.
        #[source]
        source: SandboxError,
    },
    /// The hook-tool server could not start.
    #[error(transparent)]
    ToolServer(#[from] ToolServerError),
    /// A state file step failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listing layers failed.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// The unit's charm is not in the store.
    #[error("charm {digest} of {owner} is not in the charm store")]
    MissingCharm {
        /// The digest.
        digest: CharmDigest,
        /// The unit or application that uses it.
        owner: String,
    },
    /// `deploy CHARM` named neither a charm path nor a stored digest.
    #[error("charm {given:?} is neither a charm path nor the digest of a stored charm")]
    UnknownCharm {
        /// What was given.
        given: String,
    },
    /// `deploy` of an existing application with another charm (use `upgrade`).
    #[error(
        "application {app} already exists with charm {current}; deploying {given} would be an upgrade"
    )]
    AppHasOtherCharm {
        /// The application.
        app: String,
        /// Its charm.
        current: CharmDigest,
        /// The charm asked for.
        given: CharmDigest,
    },
    /// A host-side step of a run failed (the agent directory, the tools directory).
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An upgrade was refused.
    #[error(transparent)]
    Upgrade(#[from] upgrade::UpgradeError),
    /// `relate` or `unrelate` refused.
    #[error(transparent)]
    Relation(#[from] relations::RelationError),
    /// `--no-wait` and the unit is busy, or another usage problem of the request.
    #[error("{what}")]
    Usage {
        /// What is wrong.
        what: String,
    },
}

impl RunnerError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

impl ClassifyExit for RunnerError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Unit(e) => e.exit_status(),
            Self::Charm(e) => e.exit_status(),
            Self::Ingest(e) => e.exit_status(),
            Self::Sandbox { source, .. } => source.exit_status(),
            Self::ToolServer(e) => e.exit_status(),
            Self::Store(e) => e.exit_status(),
            Self::Merge(e) => e.exit_status(),
            Self::Relation(e) => e.exit_status(),
            Self::MissingCharm { .. } | Self::Io { .. } => ExitStatus::State,
            Self::UnknownCharm { .. } => ExitStatus::InvalidCharm,
            Self::AppHasOtherCharm { .. } => ExitStatus::Refused,
            Self::Usage { .. } => ExitStatus::Usage,
            Self::Upgrade(e) => e.exit_status(),
        }
    }
}
