//! Applications and units: identities, the unit state machine and its journal, the per-unit
//! lock, the hook history and the application records.

pub mod app;
pub mod history;
pub mod journal;
pub mod lock;
pub mod runtime;
pub mod unit;

use std::path::PathBuf;

use crate::exit::{ClassifyExit, ExitStatus};
use crate::store::StoreError;
use crate::store::layers::{LayerError, LayerId};
use crate::store::squash::SquashError;

pub use app::AppRecord;
pub use history::{HistoryRecord, Timestamp};
pub use journal::{
    Conflict, ErrorKind, Journal, Recovery, S0Record, Unit, UnitState, UpgradePhase, UpgradeRecord,
    UpgradeSwap,
};
pub use lock::UnitLock;
pub use unit::{AppName, UnitName, UnitPaths};

/// Errors about applications and units.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// An application name does not follow the naming rules.
    #[error("invalid application name {name:?}: {reason}")]
    InvalidAppName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A unit name is not `<application>/<number>`.
    #[error("invalid unit name {name:?}: {reason}")]
    InvalidUnitName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No such unit in the state root.
    #[error("unknown unit {unit}")]
    UnknownUnit {
        /// The unit asked for.
        unit: UnitName,
    },
    /// The unit already exists.
    #[error("unit {unit} already exists")]
    UnitExists {
        /// The unit.
        unit: UnitName,
    },
    /// No such application in the state root.
    #[error("unknown application {app}")]
    UnknownApp {
        /// The application asked for.
        app: AppName,
    },
    /// The application already exists.
    #[error("application {app} already exists")]
    AppExists {
        /// The application.
        app: AppName,
    },
    /// `resolved` on a unit that is not in error.
    #[error("unit {unit} is not in error")]
    NotInError {
        /// The unit.
        unit: UnitName,
    },
    /// A hook was asked for while the unit is in error (rule 5: nothing runs until resolved).
    #[error("unit {unit} is in error ({error}); resolve it first")]
    InError {
        /// The unit.
        unit: UnitName,
        /// Its error, e.g. `hook failed: "start"`.
        error: ErrorKind,
    },
    /// A step was asked for in a state that does not allow it (a caller bug, or a journal
    /// changed by hand).
    #[error("unit {unit} is {state}, cannot {step}")]
    WrongState {
        /// The unit.
        unit: UnitName,
        /// Its current state, as shown by `status`.
        state: String,
        /// The step that was refused.
        step: &'static str,
    },
    /// A squash result does not match the stack it was planned from.
    #[error("squash of unit {unit} into layer {layer} no longer matches its stack")]
    StaleSquash {
        /// The unit.
        unit: UnitName,
        /// The squashed layer that was not installed.
        layer: LayerId,
    },
    /// A journal written by a newer hookbox.
    #[error("journal {path} has version {version}, this hookbox reads version {supported}")]
    JournalVersion {
        /// The journal file.
        path: PathBuf,
        /// Its version.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A journal that belongs to another unit (a directory renamed by hand).
    #[error("journal {path} belongs to unit {found}, not {unit}")]
    JournalMismatch {
        /// The journal file.
        path: PathBuf,
        /// The unit whose directory it is in.
        unit: UnitName,
        /// The unit it names.
        found: UnitName,
    },
    /// Another hookbox process holds the unit and the caller asked not to wait.
    #[error("unit {unit} is locked by another hookbox process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The unit.
        unit: UnitName,
        /// The holder's pid, when it recorded one.
        pid: Option<u32>,
    },
    /// Taking the unit's lock failed.
    #[error("lock {path}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A test-only failpoint stopped the step here (simulated crash).
    #[error("failpoint {point} reached")]
    Failpoint {
        /// The failpoint's name.
        point: &'static str,
    },
    /// Reading or writing a state file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A layer directory step failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Squashing layers failed.
    #[error(transparent)]
    Squash(#[from] SquashError),
}

impl From<crate::store::fsops::FsError> for UnitError {
    fn from(err: crate::store::fsops::FsError) -> Self {
        Self::Squash(err.into())
    }
}

impl ClassifyExit for UnitError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Self::InvalidAppName { .. } | Self::InvalidUnitName { .. } => ExitStatus::Usage,
            Self::UnknownUnit { .. }
            | Self::UnitExists { .. }
            | Self::UnknownApp { .. }
            | Self::AppExists { .. }
            | Self::NotInError { .. }
            | Self::Locked { .. } => ExitStatus::Refused,
            Self::InError { .. } => ExitStatus::HookFailed,
            Self::WrongState { .. }
            | Self::StaleSquash { .. }
            | Self::JournalVersion { .. }
            | Self::JournalMismatch { .. }
            | Self::Lock { .. }
            | Self::Failpoint { .. } => ExitStatus::State,
            Self::Store(e) => e.exit_status(),
            Self::Layer(e) => e.exit_status(),
            Self::Squash(e) => e.exit_status(),
        }
    }
}
