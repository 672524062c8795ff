//! The unit journal (`state.json`) and the steps of the unit state machine.
//!
//! The journal is the only record of a unit's layer stack and of what it is doing; it is
//! rewritten atomically (`store::atomic::write_json`) after every step, and every step is
//! ordered so that a crash (SIGKILL) between any two syscalls leaves a state that
//! [`Unit::recover`] turns into one of the two states around the step:
//!
//! | step | journal writes and directory operations, in order |
//! |---|---|
//! | [`Unit::begin_hook`] | create `runs/<id>/` (the upper; `work/` if missing) → journal `running-hook` |
//! | [`Unit::commit`] | rename the upper to `layers/<id>` (an empty upper is removed instead) → journal `idle` with the new stack and the caller's `unapplied` value |
//! | [`Unit::commit`] of a retry | journal `committing` → rename `operator/` to `layers/<op>` → rename the upper to `layers/<id>` → journal `idle` with the new stack |
//! | [`Unit::discard`] | rename the upper to `failed/<id>` → journal `error` → remove older failed layers |
//! | squash | journal `squash` record → build `squash/<new>` (may run in the background) → rename it to `layers/<new>` → journal: stack swapped, record cleared → remove the old layer dirs |
//!
//! Recovery (run by [`Unit::open`] under the unit lock, before anything else): a journal
//! `running-hook` means the runner died mid-hook: the upper goes to `failed/`, the unit is
//! in error `hook failed: "<hook>"` and its stack is the pre-hook stack (rule 7); for an
//! action the unit is left idle instead, as a failed action leaves it. A journal
//! `committing` is rolled forward: every rename it names is done if not done yet, so the
//! commit is applied whole. A squash record is dropped with its staging dir. Finally every
//! directory under `layers/`, `runs/` and `squash/` that the journal does not name is an
//! orphan of an interrupted step and is removed.
//!
//! Squashing is a field of the journal, not a state: it runs in the background of the next
//! hook, so it overlaps `running-hook` and `committing`.
//!
//! Failpoints: with `HOOKBOX_FAILPOINT=<name>` in the environment, the process SIGKILLs
//! itself when it reaches step `<name>` (integration tests of rule 7). The names are the
//! constants in [`failpoints`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::store::StateRoot;
use crate::store::atomic;
use crate::store::digest::CharmDigest;
use crate::store::fsops::remove_tree;
use crate::store::layers::{LayerId, RunDirs, exists, is_empty_dir};
pub use crate::store::merge::{Conflict, ConflictKind, EntryType};
use crate::store::squash::{OverlayXattrs, SquashReport, squash_layers};

use super::history::{self, HistoryRecord, Outcome, RecordKind, Timestamp};
use super::lock::UnitLock;
use super::{UnitError, UnitName, UnitPaths};

/// The journal format version this build writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// Once the stack holds more runtime layers than this, the next commit squashes.
pub const SQUASH_THRESHOLD: usize = 16;

/// How many of the newest layers a squash leaves alone (the rest become one layer).
pub const SQUASH_KEEP: usize = 8;

/// The names of the journal steps where a failpoint can stop the process.
pub mod failpoints {
    /// After every journal write (the first one reached stops the process).
    pub const JOURNAL_WRITTEN: &str = "journal:written";
    /// After the run dirs exist, before the journal says `running-hook`.
    pub const BEGIN_BEFORE_JOURNAL: &str = "begin:before-journal";
    /// After the journal says `running-hook` (the hook would run now).
    pub const BEGIN_AFTER_JOURNAL: &str = "begin:after-journal";
    /// When a commit starts, before any rename (after the journal says `committing`, on a
    /// commit with an operator layer).
    pub const COMMIT_AFTER_JOURNAL: &str = "commit:after-journal";
    /// The hook has exited (its outcome is known), before the commit's or the discard's
    /// first step.
    pub const HOOK_AFTER_EXIT: &str = "hook:after-exit";
    /// A queued hook committed, before it is removed from the unit's queue.
    pub const QUEUE_BEFORE_POP: &str = "queue:before-pop";
    /// A committed hook's effects: between saving the unit's runtime state and announcing
    /// its relation changes to the remote units.
    pub const EFFECTS_MID_APPLY: &str = "effects:mid-apply";
    /// Deploy or add-unit: the new units exist, the application record does not name them.
    pub const UNITS_BEFORE_APP_RECORD: &str = "units:before-app-record";
    /// remove-unit or remove: the application record no longer names the unit, its
    /// directory is still there.
    pub const REMOVE_AFTER_FORGET: &str = "remove:after-forget";
    /// After the operator layer was renamed into `layers/` (retry commits only).
    pub const COMMIT_AFTER_OPERATOR: &str = "commit:after-operator-rename";
    /// After the upper was renamed into `layers/`, before the journal says `idle`.
    pub const COMMIT_AFTER_RENAME: &str = "commit:after-rename";
    /// After the journal says `idle`, before the run dir is removed.
    pub const COMMIT_AFTER_IDLE: &str = "commit:after-idle";
    /// After the failed upper was moved to `failed/`, before the journal says `error`.
    pub const DISCARD_AFTER_MOVE: &str = "discard:after-move";
    /// After the squash record was written, before the squash is built.
    pub const SQUASH_AFTER_RECORD: &str = "squash:after-record";
    /// After the squashed layer was renamed into `layers/`, before the journal swap.
    pub const SQUASH_AFTER_RENAME: &str = "squash:after-rename";
    /// After the journal swap, before the old layer dirs are removed.
    pub const SQUASH_AFTER_SWAP: &str = "squash:after-swap";
    /// Halfway through removing the old layer dirs.
    pub const SQUASH_MID_REMOVE: &str = "squash:mid-remove";
    /// After `resolved` recorded its commit of the operator layer.
    pub const RESOLVE_AFTER_JOURNAL: &str = "resolve:after-journal";
    /// `resolved` (no retry) committed, before its history line and before the failed hook
    /// is removed from the unit's queue.
    pub const RESOLVE_BEFORE_POP: &str = "resolve:before-pop";
    /// After the upgrade record was written, before the runtime layers are merged.
    pub const UPGRADE_BEFORE_MERGE: &str = "upgrade:before-merge";
    /// After the merged layer was written to its staging dir, before it is installed.
    pub const UPGRADE_AFTER_MATERIALIZE: &str = "upgrade:after-materialize";
    /// After the merged layer was renamed into `layers/`, before the journal swap.
    pub const UPGRADE_MID_SWAP: &str = "upgrade:mid-swap";
    /// After the journal swap, before the unit's charm is switched in `runtime.json`.
    pub const UPGRADE_AFTER_SWAP: &str = "upgrade:after-swap";
    /// After the upgrade is complete, before `upgrade-charm` runs.
    pub const UPGRADE_BEFORE_HOOK: &str = "upgrade:before-upgrade-charm";
}

/// Why a unit is in error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ErrorKind {
    /// A hook failed (or its runner was killed): rule 5.
    Hook {
        /// The hook.
        hook: String,
    },
    /// An upgrade found conflicts: rule 9.
    Upgrade {
        /// The charm the unit was being upgraded to.
        target: CharmDigest,
        /// The conflicting paths.
        conflicts: Vec<Conflict>,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hook { hook } => write!(f, "hook failed: {hook:?}"),
            Self::Upgrade { conflicts, .. } => {
                write!(f, "upgrade failed: {} conflicting paths", conflicts.len())
            }
        }
    }
}

/// A conflict as the journal stores it: the merge's own type, read back from its JSON form
/// (paths are stored as text, lossily decoded).
#[derive(Deserialize)]
struct StoredConflict {
    path: String,
    kind: ConflictKind,
    #[serde(default)]
    old_charm: Option<EntryType>,
    #[serde(default)]
    runtime: Option<EntryType>,
    #[serde(default)]
    new_charm: Option<EntryType>,
    #[serde(default)]
    runtime_paths: Vec<String>,
    #[serde(default)]
    likely_bytecode: bool,
}

impl<'de> Deserialize<'de> for Conflict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredConflict::deserialize(d)?;
        Ok(Conflict {
            path: stored.path.into_bytes(),
            kind: stored.kind,
            old_charm: stored.old_charm,
            runtime: stored.runtime,
            new_charm: stored.new_charm,
            runtime_paths: stored
                .runtime_paths
                .into_iter()
                .map(String::into_bytes)
                .collect(),
            likely_bytecode: stored.likely_bytecode,
        })
    }
}

/// Where an upgrade of the unit stands (see [`Unit::begin_upgrade`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum UpgradePhase {
    /// The merged layer is being built in `squash/<into>`; a crash rolls the upgrade back.
    Staging,
    /// The journal holds the new stack; a crash rolls the rest forward (the operator layer
    /// folded into `layers/<fold_operator>`, the unit's charm switched in `runtime.json`,
    /// `hooks` queued).
    Swapped {
        /// The hooks the upgrade queues (`upgrade-charm`, `config-changed`).
        hooks: Vec<String>,
        /// The id the operator layer gets when it becomes part of S0.
        fold_operator: Option<LayerId>,
    },
}

/// An upgrade in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecord {
    /// The charm the unit is on.
    pub from: CharmDigest,
    /// The charm it moves to.
    pub to: CharmDigest,
    /// The id the merged runtime layer gets.
    pub into: LayerId,
    /// Where it stands.
    #[serde(flatten)]
    pub phase: UpgradePhase,
}

/// S0 (rule 11): the unit's charm dir as it was before its first forced upgrade, kept by
/// reference: the charm base and the committed layers over it (the operator layer of a unit
/// in error included, folded into a committed layer). The layers stay on disk, immutable,
/// while the record exists. Cleared when the unit gets back to a clean state: forced back
/// onto S0's charm (the stack becomes S0's again), a successful unforced upgrade, or the
/// unit resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S0Record {
    /// The charm base.
    pub charm: CharmDigest,
    /// The runtime layers, newest first.
    pub layers: Vec<LayerId>,
}

/// The result of an upgrade's layer work, installed by [`Unit::swap_upgrade`].
#[derive(Debug, Clone)]
pub struct UpgradeSwap {
    /// The new runtime stack, newest first (it names the record's `into` when the merged
    /// layer was built into the staging dir, which is then installed).
    pub layers: Vec<LayerId>,
    /// S0 after the swap.
    pub s0: Option<S0Record>,
    /// The unit's state after the swap (idle, or the hook error it stays in).
    pub state: UnitState,
    /// The hooks to queue.
    pub hooks: Vec<String>,
    /// Move the operator layer into `layers/<id>` (it is part of S0 now).
    pub fold_operator: Option<LayerId>,
}

/// What a unit is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum UnitState {
    /// Nothing in progress.
    Idle,
    /// A hook runs in `runs/<run>/`.
    RunningHook {
        /// The hook.
        hook: String,
        /// The run (and the layer id its upper gets).
        run: LayerId,
        /// The run's `JUJU_CONTEXT_ID`.
        context_id: String,
        /// When the run started.
        started: Timestamp,
        /// Whether this is `resolved --retry` (the operator layer is in the stack).
        retry: bool,
        /// Whether the run is an action (a killed one leaves the unit idle, not in error).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        action: bool,
    },
    /// The hook succeeded and its layer is being committed.
    Committing {
        /// The hook.
        hook: String,
        /// The run whose upper becomes `layers/<run>`.
        run: LayerId,
        /// The run's context id.
        context_id: String,
        /// The id `operator/` gets when a retry commits it below the run's layer.
        operator_layer: Option<LayerId>,
        /// What the caller asked to keep with the commit (e.g. the hook-tool effects to
        /// apply), returned by recovery when it completes the commit.
        pending: Option<serde_json::Value>,
    },
    /// In error; no hook runs until resolved.
    Error {
        /// Why.
        error: ErrorKind,
    },
}

impl UnitState {
    /// The state's name as `status` shows it (`idle`, `executing`, `error`).
    pub fn agent_status(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::RunningHook { .. } | Self::Committing { .. } => "executing",
            Self::Error { .. } => "error",
        }
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("idle"),
            Self::RunningHook { hook, .. } => write!(f, "running hook {hook:?}"),
            Self::Committing { hook, .. } => write!(f, "committing hook {hook:?}"),
            Self::Error { error } => write!(f, "in error ({error})"),
        }
    }
}

/// A squash in progress: `replaces` (the oldest layers, oldest first) are being merged into
/// `squash/<into>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquashRecord {
    /// The id of the squashed layer.
    pub into: LayerId,
    /// The layers it replaces, oldest first (the bottom of the stack).
    pub replaces: Vec<LayerId>,
}

/// The content of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// The format version.
    pub version: u32,
    /// The unit.
    pub unit: UnitName,
    /// The committed runtime layers, newest first (the order overlay stacks them).
    pub layers: Vec<LayerId>,
    /// Whether `operator/` sits on top of the stack (from an error until it is resolved).
    pub operator: bool,
    /// The next layer sequence number.
    pub next_sequence: u64,
    /// What the unit is doing.
    #[serde(flatten)]
    pub state: UnitState,
    /// A squash in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squash: Option<SquashRecord>,
    /// An upgrade in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeRecord>,
    /// S0 of a forced upgrade (rule 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s0: Option<S0Record>,
    /// An unforced upgrade that reached the unit in error: it applies once the unit is
    /// resolved (rule 10). The target is the application's charm at that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_upgrade: Option<CharmDigest>,
    /// What the last commit asked to keep for its caller (see [`Unit::commit`]): the caller
    /// applies it after the commit and marks it applied in a record of its own (the unit's
    /// history); [`Unit::open`] hands it back through [`Recovery::unapplied`] so that a
    /// process killed in between is finished by the next one. Dropped when the next run
    /// starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unapplied: Option<serde_json::Value>,
}

impl Journal {
    fn new(unit: UnitName) -> Self {
        Self {
            version: JOURNAL_VERSION,
            unit,
            layers: Vec::new(),
            operator: false,
            next_sequence: 1,
            state: UnitState::Idle,
            squash: None,
            upgrade: None,
            s0: None,
            pending_upgrade: None,
            unapplied: None,
        }
    }
}

/// What recovery found and did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recovery {
    /// A hook whose runner died mid-run; the unit is now in error for it.
    pub interrupted_hook: Option<InterruptedHook>,
    /// A commit that was completed.
    pub completed_commit: Option<CompletedCommit>,
    /// The id of a squash that was abandoned (its staging dir removed).
    pub abandoned_squash: Option<LayerId>,
    /// Directories removed because no journal entry names them.
    pub removed_orphans: Vec<PathBuf>,
    /// An interrupted upgrade, rolled back or completed.
    pub upgrade: Option<UpgradeRecovery>,
    /// What the last commit left for its caller to apply ([`Journal::unapplied`]); the
    /// caller knows whether it was applied.
    pub unapplied: Option<serde_json::Value>,
}

/// What recovery did with an interrupted upgrade.
#[derive(Debug, Clone, PartialEq)]
pub enum UpgradeRecovery {
    /// Killed before its journal swap: the unit is on its pre-upgrade charm and stack.
    RolledBack {
        /// The charm it was being upgraded to.
        to: CharmDigest,
    },
    /// Killed after its journal swap: the upgrade was completed (its hooks are queued).
    Completed {
        /// The charm it is on now.
        to: CharmDigest,
    },
}

impl Recovery {
    /// Whether recovery changed anything (what it hands back unchanged, `unapplied`, is not
    /// a change).
    pub fn is_empty(&self) -> bool {
        Self {
            unapplied: None,
            ..self.clone()
        } == Self::default()
    }
}

/// A hook found running in the journal of a unit with no runner.
#[derive(Debug, Clone, PartialEq)]
pub struct InterruptedHook {
    /// The hook.
    pub hook: String,
    /// Its context id.
    pub context_id: String,
    /// When it started.
    pub started: Timestamp,
    /// Whether it was an action (discarded; the unit is idle, not in error).
    pub action: bool,
}

/// A commit that recovery completed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedCommit {
    /// The hook.
    pub hook: String,
    /// The layers it added, newest first (none when the hook wrote nothing).
    pub layers: Vec<LayerId>,
    /// What the caller stored with the commit (see [`Unit::commit`]).
    pub pending: Option<serde_json::Value>,
}

/// A squash ready to be built, detached from the unit so it can run on another thread
/// (e.g. `tokio::task::spawn_blocking`) while the next hook runs: it only reads committed
/// (immutable) layers and writes its own staging dir.
#[derive(Debug, Clone)]
pub struct SquashJob {
    record: SquashRecord,
    sources: Vec<PathBuf>,
    below: Option<PathBuf>,
    staging: PathBuf,
}

/// A built squash, to be installed with [`Unit::finish_squash`].
#[derive(Debug)]
pub struct BuiltSquash {
    record: SquashRecord,
    /// What the squash did.
    pub report: SquashReport,
}

impl SquashJob {
    /// The layers being merged, oldest first.
    pub fn replaces(&self) -> &[LayerId] {
        &self.record.replaces
    }

    /// Builds the squashed layer in its staging dir (blocking; no journal step).
    pub fn run(self) -> Result<BuiltSquash, UnitError> {
        if exists(&self.staging)? {
            remove_tree(&self.staging)?;
        }
        let report = squash_layers(
            &self.sources,
            self.below.as_deref(),
            &self.staging,
            OverlayXattrs::User,
        )?;
        Ok(BuiltSquash {
            record: self.record,
            report,
        })
    }
}

/// An open unit: its lock, its paths and its journal. Every state change goes through a
/// method here, which writes the journal.
#[derive(Debug)]
pub struct Unit {
    paths: UnitPaths,
    journal: Journal,
    _lock: UnitLock,
    squash_threshold: usize,
    squash_keep: usize,
    #[cfg(test)]
    crash_after: Option<usize>,
}

/// A failpoint outside the journal's own steps: `HOOKBOX_FAILPOINT=<point>` SIGKILLs the
/// process here (the names are in [`failpoints`]).
pub fn failpoint(point: &'static str) {
    static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();
    let armed = FAILPOINT.get_or_init(|| std::env::var("HOOKBOX_FAILPOINT").ok());
    if armed.as_deref() == Some(point) {
        tracing::warn!(point, "failpoint reached: killing this process");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

impl Unit {
    /// Creates a new unit (its directory and an idle journal) and opens it.
    pub fn create(root: &StateRoot, name: &UnitName) -> Result<Self, UnitError> {
        let paths = UnitPaths::new(root, name);
        root.ensure_dir(&root.units_dir())?;
        root.ensure_dir(paths.dir())?;
        let lock = UnitLock::acquire(name, &paths.lock_file(), |_| {})?;
        if atomic::read_json::<serde_json::Value>(&paths.state_file())?.is_some() {
            return Err(UnitError::UnitExists { unit: name.clone() });
        }
        let journal = Journal::new(name.clone());
        atomic::write_json(&paths.state_file(), &journal)?;
        tracing::info!(unit = %name, "unit created");
        Ok(Self::assemble(paths, journal, lock))
    }

    /// Opens an existing unit: takes its lock (waiting for another process, `on_wait` gets
    /// the message naming what it waits for), reads its journal and recovers it.
    pub fn open(
        root: &StateRoot,
        name: &UnitName,
        on_wait: impl FnOnce(&str),
    ) -> Result<(Self, Recovery), UnitError> {
        let paths = UnitPaths::new(root, name);
        let unknown = || UnitError::UnknownUnit { unit: name.clone() };
        if !exists(&paths.state_file())? {
            return Err(unknown());
        }
        let lock = UnitLock::acquire(name, &paths.lock_file(), on_wait)?;
        let journal = Self::read_journal(&paths)?.ok_or_else(unknown)?;
        let mut unit = Self::assemble(paths, journal, lock);
        let recovery = unit.recover()?;
        Ok((unit, recovery))
    }

    /// Reads a unit's journal without locking or recovering it (for `status` of a unit
    /// another process is working on).
    pub fn peek(root: &StateRoot, name: &UnitName) -> Result<Journal, UnitError> {
        Self::read_journal(&UnitPaths::new(root, name))?
            .ok_or_else(|| UnitError::UnknownUnit { unit: name.clone() })
    }

    /// Removes the unit's whole directory (layers included). The caller stops it first.
    pub fn remove(self) -> Result<(), UnitError> {
        let dir = self.paths.dir().to_owned();
        // The journal goes first: a crash mid-removal leaves no half unit that opens.
        std::fs::remove_file(self.paths.state_file()).map_err(crate::store::StoreError::io(
            "remove",
            self.paths.state_file(),
        ))?;
        drop(self._lock);
        remove_tree(&dir)?;
        tracing::info!(unit = %self.journal.unit, "unit removed");
        Ok(())
    }

    fn read_journal(paths: &UnitPaths) -> Result<Option<Journal>, UnitError> {
        let path = paths.state_file();
        let Some(value) = atomic::read_json::<serde_json::Value>(&path)? else {
            return Ok(None);
        };
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if version != JOURNAL_VERSION {
            return Err(UnitError::JournalVersion {
                path,
                version,
                supported: JOURNAL_VERSION,
            });
        }
        let journal: Journal =
            serde_json::from_value(value).map_err(|source| crate::store::StoreError::Json {
                path: path.clone(),
                source,
            })?;
        if journal.unit != *paths.unit() {
            return Err(UnitError::JournalMismatch {
                path,
                unit: paths.unit().clone(),
                found: journal.unit,
            });
        }
        Ok(Some(journal))
    }

    fn assemble(paths: UnitPaths, journal: Journal, lock: UnitLock) -> Self {
        Self {
            paths,
            journal,
            _lock: lock,
            squash_threshold: SQUASH_THRESHOLD,
            squash_keep: SQUASH_KEEP,
            #[cfg(test)]
            crash_after: None,
        }
    }

    /// The unit's name.
    pub fn name(&self) -> &UnitName {
        &self.journal.unit
    }

    /// The unit's paths.
    pub fn paths(&self) -> &UnitPaths {
        &self.paths
    }

    /// The unit's journal as last written.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// What the unit is doing.
    pub fn state(&self) -> &UnitState {
        &self.journal.state
    }

    /// The unit's error, if it is in error.
    pub fn error(&self) -> Option<&ErrorKind> {
        match &self.journal.state {
            UnitState::Error { error } => Some(error),
            _ => None,
        }
    }

    /// The overlay lower dirs of the unit's charm dir, top first: the operator layer when it
    /// is in the stack, then the runtime layers newest first. The caller appends the charm
    /// base.
    pub fn lowers(&self) -> Vec<PathBuf> {
        let mut lowers = Vec::with_capacity(self.journal.layers.len() + 1);
        if self.journal.operator {
            lowers.push(self.paths.operator_dir());
        }
        lowers.extend(self.runtime_lowers());
        lowers
    }

    /// The runtime layers only, newest first (the lowers of `shell` while in error, whose
    /// upper is the operator layer).
    pub fn runtime_lowers(&self) -> Vec<PathBuf> {
        self.journal
            .layers
            .iter()
            .map(|id| self.paths.layer(id))
            .collect()
    }

    /// The operator layer's upper and work dirs, for `shell` while in error (`None` when the
    /// unit is not in error: the shell then gets a throwaway upper).
    pub fn operator_upper(&mut self) -> Result<Option<(PathBuf, PathBuf)>, UnitError> {
        if !matches!(self.journal.state, UnitState::Error { .. }) {
            return Ok(None);
        }
        let dirs = self.paths.layer_dirs();
        let upper = dirs.create_operator()?;
        Ok(Some((upper, dirs.operator_work())))
    }

    /// Starts a hook run: creates `runs/<id>/` (the upper) and records `running-hook`.
    /// Refused while the unit is in error (rule 5) or busy.
    pub fn begin_hook(&mut self, hook: &str, context_id: &str) -> Result<RunDirs, UnitError> {
        self.ensure_idle("start a hook")?;
        self.start_run(hook, context_id, false, false)
    }

    /// Starts an action run: as [`Unit::begin_hook`], but recorded as an action, so that
    /// recovery from a killed runner discards it as a failed action (the unit stays idle).
    pub fn begin_action(&mut self, action: &str, context_id: &str) -> Result<RunDirs, UnitError> {
        self.ensure_idle("start an action")?;
        self.start_run(action, context_id, false, true)
    }

    /// `InError` while the unit is in error (rule 5), `WrongState` while it is busy.
    fn ensure_idle(&self, step: &'static str) -> Result<(), UnitError> {
        match &self.journal.state {
            UnitState::Idle => Ok(()),
            UnitState::Error { error } => Err(UnitError::InError {
                unit: self.name().clone(),
                error: error.clone(),
            }),
            _ => Err(self.wrong_state(step)),
        }
    }

    /// `resolved --retry`: reruns the failed hook from its pre-hook state plus the operator
    /// layer. Returns the hook and the run's dirs.
    pub fn begin_retry(&mut self, context_id: &str) -> Result<(String, RunDirs), UnitError> {
        let hook = match &self.journal.state {
            UnitState::Error {
                error: ErrorKind::Hook { hook },
            } => hook.clone(),
            UnitState::Error { .. } => return Err(self.wrong_state("retry a hook")),
            _ => {
                return Err(UnitError::NotInError {
                    unit: self.name().clone(),
                });
            }
        };
        let run = self.start_run(&hook, context_id, true, false)?;
        Ok((hook, run))
    }

    fn start_run(
        &mut self,
        hook: &str,
        context_id: &str,
        retry: bool,
        action: bool,
    ) -> Result<RunDirs, UnitError> {
        let id = LayerId::generate(self.journal.next_sequence);
        let run = self.paths.layer_dirs().create_run(&id)?;
        self.step(failpoints::BEGIN_BEFORE_JOURNAL)?;
        let mut next = self.journal.clone();
        next.next_sequence += 1;
        next.unapplied = None;
        next.state = UnitState::RunningHook {
            hook: hook.to_owned(),
            run: id,
            context_id: context_id.to_owned(),
            started: Timestamp::now(),
            retry,
            action,
        };
        self.write(next)?;
        self.step(failpoints::BEGIN_AFTER_JOURNAL)?;
        tracing::debug!(unit = %self.name(), hook, run = %id, "hook run started");
        Ok(run)
    }

    /// Commits a successful run: its upper becomes the newest runtime layer (on a retry, the
    /// operator layer is committed just below it). An upper the hook left empty adds no
    /// layer (`Ok(None)`). `pending` is kept in the journal during the commit and handed
    /// back by recovery if the process dies before the commit finishes.
    pub fn commit(
        &mut self,
        run: &RunDirs,
        pending: Option<serde_json::Value>,
    ) -> Result<Option<LayerId>, UnitError> {
        let (hook, context_id) = match &self.journal.state {
            UnitState::RunningHook {
                hook,
                run: id,
                context_id,
                ..
            } if *id == run.id => (hook.clone(), context_id.clone()),
            _ => return Err(self.wrong_state("commit a run")),
        };
        self.step(failpoints::HOOK_AFTER_EXIT)?;
        if !self.journal.operator {
            return self.commit_run(run, &hook, pending);
        }
        let operator_layer = if self.journal.operator && !self.operator_is_empty()? {
            Some(LayerId::generate(self.journal.next_sequence))
        } else {
            None
        };
        let mut next = self.journal.clone();
        if operator_layer.is_some() {
            next.next_sequence += 1;
        }
        next.state = UnitState::Committing {
            hook: hook.clone(),
            run: run.id,
            context_id,
            operator_layer,
            pending,
        };
        self.write(next)?;
        self.step(failpoints::COMMIT_AFTER_JOURNAL)?;
        let added = self.complete_commit()?;
        let layer = added.first().copied().filter(|id| *id == run.id);
        tracing::info!(unit = %self.name(), hook, layer = ?layer.map(|l| l.to_string()), "hook committed");
        Ok(layer)
    }

    /// The commit of a run with no operator layer below it: one rename and one journal
    /// write. A crash before the journal write leaves `layers/<id>` unnamed (recovery
    /// removes it: the pre-hook state); after it, the post-hook state.
    fn commit_run(
        &mut self,
        run: &RunDirs,
        hook: &str,
        pending: Option<serde_json::Value>,
    ) -> Result<Option<LayerId>, UnitError> {
        self.step(failpoints::COMMIT_AFTER_JOURNAL)?;
        let dirs = self.paths.layer_dirs().clone();
        let committed = if !is_empty_dir(&run.upper)? {
            dirs.install(&run.upper, &run.id)?;
            Some(run.id)
        } else {
            None
        };
        self.step(failpoints::COMMIT_AFTER_RENAME)?;
        let mut next = self.journal.clone();
        next.layers.splice(0..0, committed);
        next.state = UnitState::Idle;
        next.unapplied = pending;
        self.write(next)?;
        self.step(failpoints::COMMIT_AFTER_IDLE)?;
        dirs.remove_run(&run.id)?;
        tracing::info!(unit = %self.name(), hook, layer = ?committed.map(|l| l.to_string()), "hook committed");
        Ok(committed)
    }

    /// Does (or finishes) every rename the `committing` journal names, then records `idle`.
    /// Idempotent: recovery calls it after a crash at any point of [`Unit::commit`].
    fn complete_commit(&mut self) -> Result<Vec<LayerId>, UnitError> {
        let UnitState::Committing {
            run,
            operator_layer,
            pending,
            ..
        } = self.journal.state.clone()
        else {
            return Err(self.wrong_state("complete a commit"));
        };
        let dirs = self.paths.layer_dirs().clone();
        let mut next = self.journal.clone();
        next.unapplied = pending;
        if let Some(op) = operator_layer {
            if !exists(&dirs.layer(&op))? {
                dirs.install(&dirs.operator(), &op)?;
            }
            self.step(failpoints::COMMIT_AFTER_OPERATOR)?;
            next.layers.insert(0, op);
        }
        let upper = dirs.run(&run).upper;
        let committed = if exists(&dirs.layer(&run))? {
            Some(run)
        } else if exists(&upper)? && !is_empty_dir(&upper)? {
            dirs.install(&upper, &run)?;
            Some(run)
        } else {
            None
        };
        self.step(failpoints::COMMIT_AFTER_RENAME)?;
        if let Some(id) = committed {
            next.layers.insert(0, id);
        }
        let added = next.layers[..next.layers.len() - self.journal.layers.len()].to_vec();
        let had_operator = next.operator;
        next.operator = false;
        next.state = UnitState::Idle;
        // Resolved: the unit is back to a clean state, S0 (rule 11) is no longer needed.
        let dropped_s0 = if had_operator { next.s0.take() } else { None };
        self.write(next)?;
        self.step(failpoints::COMMIT_AFTER_IDLE)?;
        dirs.remove_run(&run)?;
        if had_operator {
            self.remove_operator_dirs()?;
        }
        if dropped_s0.is_some() {
            self.remove_unnamed_layers()?;
        }
        Ok(added)
    }

    /// Discards a failed run: its upper moves to `failed/<id>` (replacing the previous
    /// failed layer), the stack stays the pre-hook stack, and the unit is in error
    /// `hook failed: "<hook>"` with an (empty or kept) operator layer on top.
    pub fn discard(&mut self, run: &RunDirs) -> Result<(), UnitError> {
        let hook = match &self.journal.state {
            UnitState::RunningHook { hook, run: id, .. } if *id == run.id => hook.clone(),
            _ => return Err(self.wrong_state("discard a run")),
        };
        self.step(failpoints::HOOK_AFTER_EXIT)?;
        self.discard_run(&hook, &run.id, true)?;
        tracing::info!(unit = %self.name(), hook, "hook failed, layer discarded");
        Ok(())
    }

    /// Discards the run of a failed action: its upper moves to `failed/<id>` like a failed
    /// hook's, but the unit is not in error (Juju marks the action failed and leaves the
    /// unit alone): it is idle on its pre-action stack.
    pub fn discard_action(&mut self, run: &RunDirs) -> Result<(), UnitError> {
        let hook = match &self.journal.state {
            UnitState::RunningHook { hook, run: id, .. } if *id == run.id => hook.clone(),
            _ => return Err(self.wrong_state("discard a run")),
        };
        self.step(failpoints::HOOK_AFTER_EXIT)?;
        self.discard_run(&hook, &run.id, false)?;
        tracing::info!(unit = %self.name(), action = hook, "action failed, layer discarded");
        Ok(())
    }

    fn discard_run(
        &mut self,
        hook: &str,
        run: &LayerId,
        into_error: bool,
    ) -> Result<(), UnitError> {
        let dirs = self.paths.layer_dirs().clone();
        let upper = dirs.run(run).upper;
        if exists(&upper)? {
            dirs.keep_failed(&upper, run)?;
        }
        self.step(failpoints::DISCARD_AFTER_MOVE)?;
        let mut next = self.journal.clone();
        if into_error {
            dirs.create_operator()?;
            next.operator = true;
            next.state = UnitState::Error {
                error: ErrorKind::Hook {
                    hook: hook.to_owned(),
                },
            };
        } else {
            next.state = UnitState::Idle;
        }
        self.write(next)?;
        dirs.remove_run(run)?;
        Ok(())
    }

    /// Puts an idle unit (or one already in error `upgrade failed`) in error `upgrade
    /// failed` with its conflicts against `target` (rule 9); the operator layer goes on top so
    /// `shell` can fix the runtime side. The stack is untouched: the charm dir stays at its
    /// pre-upgrade tree.
    pub fn fail_upgrade(
        &mut self,
        target: CharmDigest,
        conflicts: Vec<Conflict>,
    ) -> Result<(), UnitError> {
        if !matches!(
            self.journal.state,
            UnitState::Idle
                | UnitState::Error {
                    error: ErrorKind::Upgrade { .. }
                }
        ) || self.journal.upgrade.is_some()
        {
            return Err(self.wrong_state("record an upgrade conflict"));
        }
        self.paths.layer_dirs().create_operator()?;
        let mut next = self.journal.clone();
        next.operator = true;
        next.pending_upgrade = None;
        next.state = UnitState::Error {
            error: ErrorKind::Upgrade { target, conflicts },
        };
        self.write(next)
    }

    /// Records that an unforced upgrade to `target` reached the unit in error: it applies
    /// once the unit is resolved (rule 10).
    pub fn defer_upgrade(&mut self, target: CharmDigest) -> Result<(), UnitError> {
        if self.journal.pending_upgrade.as_ref() == Some(&target) {
            return Ok(());
        }
        let mut next = self.journal.clone();
        next.pending_upgrade = Some(target);
        self.write(next)
    }

    /// Drops a deferred upgrade (the unit was upgraded another way, or is on the target).
    pub fn clear_pending_upgrade(&mut self) -> Result<(), UnitError> {
        if self.journal.pending_upgrade.is_none() {
            return Ok(());
        }
        let mut next = self.journal.clone();
        next.pending_upgrade = None;
        self.write(next)
    }

    /// Starts an upgrade from charm `from` to `to`: records it (phase `staging`) and returns
    /// the staging dir the merged layer is to be written to (it does not exist yet). The
    /// unit must be idle or in error with no squash or upgrade in progress.
    pub fn begin_upgrade(
        &mut self,
        from: CharmDigest,
        to: CharmDigest,
    ) -> Result<PathBuf, UnitError> {
        if !matches!(
            self.journal.state,
            UnitState::Idle | UnitState::Error { .. }
        ) || self.journal.upgrade.is_some()
            || self.journal.squash.is_some()
        {
            return Err(self.wrong_state("start an upgrade"));
        }
        let into = LayerId::generate(self.journal.next_sequence);
        let dirs = self.paths.layer_dirs().clone();
        dirs.create_squash_root()?;
        let staging = dirs.squash(&into);
        if exists(&staging)? {
            remove_tree(&staging)?;
        }
        let mut next = self.journal.clone();
        next.next_sequence += 1;
        next.upgrade = Some(UpgradeRecord {
            from,
            to,
            into,
            phase: UpgradePhase::Staging,
        });
        self.write(next)?;
        self.step(failpoints::UPGRADE_BEFORE_MERGE)?;
        Ok(staging)
    }

    /// A fresh layer id for the operator layer folded into S0 by a forced upgrade.
    pub fn allocate_layer_id(&mut self) -> Result<LayerId, UnitError> {
        let id = LayerId::generate(self.journal.next_sequence);
        let mut next = self.journal.clone();
        next.next_sequence += 1;
        self.write(next)?;
        Ok(id)
    }

    /// The upgrade in progress, if any.
    pub fn upgrade(&self) -> Option<&UpgradeRecord> {
        self.journal.upgrade.as_ref()
    }

    /// S0, when a forced upgrade recorded it.
    pub fn s0(&self) -> Option<&S0Record> {
        self.journal.s0.as_ref()
    }

    /// Drops an upgrade in the staging phase (a conflict, or a failed merge): removes the
    /// staging dir and the record. The stack was never touched.
    pub fn abandon_upgrade(&mut self) -> Result<(), UnitError> {
        let Some(record) = self.journal.upgrade.clone() else {
            return Ok(());
        };
        if record.phase != UpgradePhase::Staging {
            return Err(self.wrong_state("abandon a swapped upgrade"));
        }
        let dirs = self.paths.layer_dirs().clone();
        let staging = dirs.squash(&record.into);
        if exists(&staging)? {
            remove_tree(&staging)?;
        }
        let into = dirs.layer(&record.into);
        if !self.journal.layers.contains(&record.into) && exists(&into)? {
            remove_tree(&into)?;
        }
        let mut next = self.journal.clone();
        next.upgrade = None;
        self.write(next)
    }

    /// Reaches a named failpoint (for the steps of an upgrade that happen outside the unit:
    /// the merge and the materialisation).
    pub fn reach(&mut self, point: &'static str) -> Result<(), UnitError> {
        self.step(point)
    }

    /// Installs an upgrade: renames the merged layer into `layers/` (when `swap.layers`
    /// names it), then ONE journal write swaps the stack, S0 and the state (the commit point
    /// of the upgrade), then [`Unit::complete_upgrade`] folds the operator layer, switches
    /// the unit's charm and queues the hooks. A crash before the journal write leaves the
    /// pre-upgrade unit; after it, recovery completes the upgrade.
    pub fn swap_upgrade(&mut self, swap: UpgradeSwap) -> Result<(), UnitError> {
        let Some(record) = self.journal.upgrade.clone() else {
            return Err(self.wrong_state("swap an upgrade that was not started"));
        };
        if record.phase != UpgradePhase::Staging {
            return Err(self.wrong_state("swap an upgrade twice"));
        }
        let dirs = self.paths.layer_dirs().clone();
        if swap.layers.contains(&record.into) && !exists(&dirs.layer(&record.into))? {
            dirs.install(&dirs.squash(&record.into), &record.into)?;
        }
        self.step(failpoints::UPGRADE_MID_SWAP)?;
        let operator = matches!(swap.state, UnitState::Error { .. });
        let mut next = self.journal.clone();
        next.layers = swap.layers;
        next.s0 = swap.s0;
        next.state = swap.state;
        next.operator = operator;
        next.pending_upgrade = None;
        next.upgrade = Some(UpgradeRecord {
            phase: UpgradePhase::Swapped {
                hooks: swap.hooks,
                fold_operator: swap.fold_operator,
            },
            ..record
        });
        self.write(next)?;
        self.step(failpoints::UPGRADE_AFTER_SWAP)?;
        self.complete_upgrade()
    }

    /// Finishes a swapped upgrade (idempotent; recovery calls it): the operator layer moves
    /// into S0 when the swap folds it (a fresh one replaces it while the unit is in error),
    /// `runtime.json` gets the new charm and the queued hooks in one atomic write, the record
    /// is cleared, and every layer dir the journal no longer names is removed.
    fn complete_upgrade(&mut self) -> Result<(), UnitError> {
        let Some(UpgradeRecord {
            to,
            into,
            phase:
                UpgradePhase::Swapped {
                    hooks,
                    fold_operator,
                },
            ..
        }) = self.journal.upgrade.clone()
        else {
            return Err(self.wrong_state("complete an upgrade that was not swapped"));
        };
        let dirs = self.paths.layer_dirs().clone();
        if let Some(id) = fold_operator
            && !exists(&dirs.layer(&id))?
            && exists(&dirs.operator())?
        {
            dirs.install(&dirs.operator(), &id)?;
        }
        if self.journal.operator {
            dirs.create_operator()?;
        }
        self.switch_charm(&to, &hooks)?;
        let mut next = self.journal.clone();
        next.upgrade = None;
        self.write(next)?;
        let staging = dirs.squash(&into);
        if exists(&staging)? {
            remove_tree(&staging)?;
        }
        self.remove_unnamed_layers()?;
        if !self.journal.operator {
            self.remove_operator_dirs()?;
        }
        tracing::info!(unit = %self.name(), charm = %to, "upgrade installed");
        Ok(())
    }

    /// Switches the charm in `runtime.json` (`units/<app>-<n>/runtime.json`, see
    /// `UnitRuntime::path`) to `to` and queues `hooks`, in one atomic write; nothing when it
    /// already names `to` (the write was done before a crash).
    fn switch_charm(&self, to: &CharmDigest, hooks: &[String]) -> Result<(), UnitError> {
        use super::runtime::UnitRuntime;
        let path = self.paths.dir().join("runtime.json");
        let mut runtime = match atomic::read_json::<UnitRuntime>(&path)? {
            Some(runtime) if runtime.charm == *to => return Ok(()),
            Some(runtime) => runtime,
            None => UnitRuntime::new(to.clone()),
        };
        runtime.charm = to.clone();
        // After the failed hook of a unit in error (it reruns first), else at the front.
        let mut at = match &self.journal.state {
            UnitState::Error {
                error: ErrorKind::Hook { hook },
            } if runtime.queue.first().map(|q| &q.hook) == Some(hook) => 1,
            _ => 0,
        };
        for hook in hooks {
            if !runtime
                .queue
                .iter()
                .any(|q| q.hook == *hook && q.relation.is_none())
            {
                runtime.queue.insert(at, hook.as_str().into());
                at += 1;
            }
        }
        atomic::write_json(&path, &runtime)?;
        Ok(())
    }

    /// Removes the layer dirs that neither the stack nor S0 names.
    fn remove_unnamed_layers(&self) -> Result<Vec<PathBuf>, UnitError> {
        let named = self.named_layers();
        let mut removed = Vec::new();
        for path in self.paths.layer_dirs().layer_dir_entries()? {
            if !named.contains(&path) {
                remove_tree(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    fn named_layers(&self) -> Vec<PathBuf> {
        let s0 = self.journal.s0.iter().flat_map(|s0| s0.layers.iter());
        self.journal
            .layers
            .iter()
            .chain(s0)
            .map(|id| self.paths.layer(id))
            .collect()
    }

    /// `resolved` without retry: commits the operator layer (when it holds anything) as the
    /// newest runtime layer and goes idle, as though the failed hook had succeeded without
    /// its own writes (rule 6). `pending` (given the id the operator layer gets) is kept with
    /// the commit like [`Unit::commit`]'s, so what the caller does after the resolution
    /// (record it, take the failed hook off the queue) is finished by the next process if
    /// this one dies first. Returns the error
    /// that was resolved and the committed layer. Refused with `NotInError` when the unit is
    /// not in error.
    pub fn resolve(
        &mut self,
        pending: impl FnOnce(Option<LayerId>) -> Option<serde_json::Value>,
    ) -> Result<(ErrorKind, Option<LayerId>), UnitError> {
        let UnitState::Error { error } = self.journal.state.clone() else {
            return Err(UnitError::NotInError {
                unit: self.name().clone(),
            });
        };
        let hook = match &error {
            ErrorKind::Hook { hook } => hook.clone(),
            ErrorKind::Upgrade { .. } => "upgrade-charm".to_owned(),
        };
        let mut next = self.journal.clone();
        // A commit with no run upper: `complete_commit` installs the operator layer only.
        let run = LayerId::generate(next.next_sequence);
        next.next_sequence += 1;
        let operator_layer = if self.journal.operator && !self.operator_is_empty()? {
            next.next_sequence += 1;
            Some(LayerId::generate(next.next_sequence - 1))
        } else {
            None
        };
        next.state = UnitState::Committing {
            hook,
            run,
            context_id: String::new(),
            operator_layer,
            pending: pending(operator_layer),
        };
        self.write(next)?;
        self.step(failpoints::RESOLVE_AFTER_JOURNAL)?;
        self.complete_commit()?;
        tracing::info!(unit = %self.name(), error = %error, "unit resolved");
        Ok((error, operator_layer))
    }

    /// Changes when this handle squashes: once the stack holds more than `threshold`
    /// layers, all but the `keep` newest are merged (defaults: [`SQUASH_THRESHOLD`],
    /// [`SQUASH_KEEP`]). `keep` is clamped below `threshold`.
    pub fn set_squash_bounds(&mut self, threshold: usize, keep: usize) {
        self.squash_threshold = threshold.max(1);
        self.squash_keep = keep.min(self.squash_threshold - 1);
    }

    /// Whether the stack is past the squash threshold and no squash is in progress.
    pub fn squash_due(&self) -> bool {
        self.journal.squash.is_none() && self.journal.layers.len() > self.squash_threshold
    }

    /// Plans a squash of all but the newest layers (see [`Unit::set_squash_bounds`]) when
    /// one is due: records it in the journal and returns the job to build (on any thread).
    /// `base` is the charm base the overlay stacks below the runtime layers: the squash
    /// keeps exactly the whiteouts that hide something in it. `None` when no squash is due.
    pub fn plan_squash(&mut self, base: Option<&Path>) -> Result<Option<SquashJob>, UnitError> {
        if !self.squash_due() {
            return Ok(None);
        }
        let count = self.journal.layers.len() - self.squash_keep;
        let mut replaces: Vec<LayerId> = self.journal.layers[self.squash_keep..].to_vec();
        replaces.reverse();
        debug_assert_eq!(replaces.len(), count);
        let into = LayerId::generate(self.journal.next_sequence);
        let record = SquashRecord { into, replaces };
        let dirs = self.paths.layer_dirs().clone();
        dirs.create_squash_root()?;
        let mut next = self.journal.clone();
        next.next_sequence += 1;
        next.squash = Some(record.clone());
        self.write(next)?;
        self.step(failpoints::SQUASH_AFTER_RECORD)?;
        Ok(Some(SquashJob {
            sources: record.replaces.iter().map(|id| dirs.layer(id)).collect(),
            below: base.map(Path::to_owned),
            staging: dirs.squash(&into),
            record,
        }))
    }

    /// Installs a built squash: renames it into `layers/`, swaps it for the layers it
    /// replaces in one journal write, then removes the old layer dirs. Call it when no hook
    /// of this unit is running (the old dirs may be mounted as its lowers until then).
    pub fn finish_squash(&mut self, built: BuiltSquash) -> Result<LayerId, UnitError> {
        let record = built.record;
        let stale = || UnitError::StaleSquash {
            unit: self.journal.unit.clone(),
            layer: record.into,
        };
        if self.journal.squash.as_ref() != Some(&record) {
            return Err(stale());
        }
        let n = record.replaces.len();
        let layers = &self.journal.layers;
        if layers.len() < n
            || layers[layers.len() - n..]
                .iter()
                .rev()
                .ne(record.replaces.iter())
        {
            return Err(stale());
        }
        let dirs = self.paths.layer_dirs().clone();
        dirs.install(&dirs.squash(&record.into), &record.into)?;
        self.step(failpoints::SQUASH_AFTER_RENAME)?;
        let mut next = self.journal.clone();
        next.layers.truncate(next.layers.len() - n);
        next.layers.push(record.into);
        next.squash = None;
        self.write(next)?;
        self.step(failpoints::SQUASH_AFTER_SWAP)?;
        for (i, old) in record.replaces.iter().enumerate() {
            if i == n / 2 {
                self.step(failpoints::SQUASH_MID_REMOVE)?;
            }
            remove_tree(&dirs.layer(old))?;
        }
        tracing::info!(unit = %self.name(), layer = %record.into, merged = n, "layers squashed");
        Ok(record.into)
    }

    /// Drops a planned squash (after its job failed): removes its staging dir and record.
    pub fn abandon_squash(&mut self) -> Result<(), UnitError> {
        let Some(record) = self.journal.squash.clone() else {
            return Ok(());
        };
        let staging = self.paths.layer_dirs().squash(&record.into);
        if exists(&staging)? {
            remove_tree(&staging)?;
        }
        let mut next = self.journal.clone();
        next.squash = None;
        self.write(next)
    }

    /// Plans, builds and installs a squash in the calling thread, when one is due (`base`:
    /// see [`Unit::plan_squash`]).
    pub fn squash_now(&mut self, base: Option<&Path>) -> Result<Option<LayerId>, UnitError> {
        let Some(job) = self.plan_squash(base)? else {
            return Ok(None);
        };
        match job.run() {
            Ok(built) => self.finish_squash(built).map(Some),
            Err(e) => {
                self.abandon_squash()?;
                Err(e)
            }
        }
    }

    /// Brings the unit from whatever a crash left to a consistent state (see the module
    /// docs). [`Unit::open`] calls it; it is idempotent.
    pub fn recover(&mut self) -> Result<Recovery, UnitError> {
        let mut recovery = Recovery::default();
        let dirs = self.paths.layer_dirs().clone();
        match self.journal.state.clone() {
            UnitState::RunningHook {
                hook,
                run,
                context_id,
                started,
                action,
                ..
            } => {
                // A killed action is a failed action: discarded, the unit left idle.
                self.discard_run(&hook, &run, !action)?;
                let reason = if action {
                    "interrupted: hookbox was killed while the action ran"
                } else {
                    "hookbox was killed while the hook ran"
                };
                let record = HistoryRecord {
                    kind: RecordKind::Hook,
                    hook: hook.clone(),
                    outcome: Some(Outcome::Failed),
                    exit_code: None,
                    signal: None,
                    reason: Some(reason.to_owned()),
                    context_id: Some(context_id.clone()),
                    charm_revision: None,
                    started,
                    duration_ms: started.elapsed().as_millis() as u64,
                    layer: None,
                };
                history::append(&self.paths.history_file(), &record)?;
                if action {
                    tracing::warn!(unit = %self.name(), action = hook, "recovered an action interrupted by a killed runner: discarded, unit is idle");
                } else {
                    tracing::warn!(unit = %self.name(), hook, "recovered a hook interrupted by a killed runner: unit is in error");
                }
                recovery.interrupted_hook = Some(InterruptedHook {
                    hook,
                    context_id,
                    started,
                    action,
                });
            }
            UnitState::Committing { hook, pending, .. } => {
                let layers = self.complete_commit()?;
                tracing::warn!(unit = %self.name(), hook, "completed an interrupted commit");
                recovery.completed_commit = Some(CompletedCommit {
                    hook,
                    layers,
                    pending,
                });
            }
            UnitState::Idle | UnitState::Error { .. } => {}
        }
        recovery.unapplied = self.journal.unapplied.clone();
        if let Some(record) = self.journal.squash.clone() {
            self.abandon_squash()?;
            recovery.abandoned_squash = Some(record.into);
        }
        match self.journal.upgrade.clone() {
            Some(UpgradeRecord {
                phase: UpgradePhase::Staging,
                to,
                ..
            }) => {
                self.abandon_upgrade()?;
                tracing::warn!(unit = %self.name(), charm = %to, "rolled back an interrupted upgrade");
                recovery.upgrade = Some(UpgradeRecovery::RolledBack { to });
            }
            Some(UpgradeRecord { to, .. }) => {
                self.complete_upgrade()?;
                tracing::warn!(unit = %self.name(), charm = %to, "completed an interrupted upgrade");
                recovery.upgrade = Some(UpgradeRecovery::Completed { to });
            }
            None => {}
        }
        // Orphans: whatever the journal does not name.
        let named = self.named_layers();
        let current_run = match &self.journal.state {
            UnitState::RunningHook { run, .. } | UnitState::Committing { run, .. } => {
                Some(dirs.run(run).dir)
            }
            _ => None,
        };
        let mut orphans = Vec::new();
        for path in dirs.layer_dir_entries()? {
            if !named.contains(&path) {
                orphans.push(path);
            }
        }
        for path in dirs.run_dir_entries()? {
            if Some(&path) != current_run.as_ref() {
                orphans.push(path);
            }
        }
        orphans.extend(dirs.squash_dir_entries()?);
        if !self.journal.operator {
            for path in [dirs.operator(), dirs.operator_work()] {
                if exists(&path)? {
                    orphans.push(path);
                }
            }
        }
        for path in &orphans {
            tracing::info!(unit = %self.name(), path = %path.display(), "removing an orphan of an interrupted step");
            remove_tree(path)?;
        }
        recovery.removed_orphans = orphans;
        Ok(recovery)
    }

    fn operator_is_empty(&self) -> Result<bool, UnitError> {
        let dir = self.paths.operator_dir();
        Ok(!exists(&dir)? || is_empty_dir(&dir)?)
    }

    fn remove_operator_dirs(&self) -> Result<(), UnitError> {
        let dirs = self.paths.layer_dirs();
        for dir in [dirs.operator(), dirs.operator_work()] {
            if exists(&dir)? {
                remove_tree(&dir)?;
            }
        }
        Ok(())
    }

    fn wrong_state(&self, step: &'static str) -> UnitError {
        UnitError::WrongState {
            unit: self.name().clone(),
            state: self.journal.state.to_string(),
            step,
        }
    }

    fn write(&mut self, next: Journal) -> Result<(), UnitError> {
        atomic::write_json(&self.paths.state_file(), &next)?;
        self.journal = next;
        self.step(failpoints::JOURNAL_WRITTEN)
    }

    /// A failpoint: `HOOKBOX_FAILPOINT=<point>` SIGKILLs the process here; in unit tests a
    /// step budget stops the step with `UnitError::Failpoint` (a simulated crash).
    fn step(&mut self, point: &'static str) -> Result<(), UnitError> {
        failpoint(point);
        #[cfg(test)]
        if let Some(left) = self.crash_after.as_mut() {
            if *left == 0 {
                return Err(UnitError::Failpoint { point });
            }
            *left -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::squash::OverlayXattrs;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::fs;

    /// What overlayfs shows for `lowers` (top first): path → content (`dir` for directories).
    /// An independent userspace model of overlay lookup, used as the oracle.
    fn merged(lowers: &[PathBuf]) -> BTreeMap<String, String> {
        let mut view = BTreeMap::new();
        for layer in lowers.iter().rev() {
            apply_dir(layer, "", &mut view);
        }
        view
    }

    fn remove_under(view: &mut BTreeMap<String, String>, path: &str) {
        view.remove(path);
        let prefix = format!("{path}/");
        view.retain(|k, _| !k.starts_with(&prefix));
    }

    fn apply_dir(dir: &Path, rel: &str, view: &mut BTreeMap<String, String>) {
        use std::os::unix::fs::FileTypeExt;
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let file_type = entry.file_type().unwrap();
            if file_type.is_char_device() {
                remove_under(view, &path);
            } else if file_type.is_dir() {
                let opaque = rustix::fs::lgetxattr(
                    entry.path(),
                    OverlayXattrs::User.opaque(),
                    &mut [0u8; 4][..],
                )
                .is_ok();
                if opaque || view.get(&path).is_some_and(|v| v != "dir") {
                    remove_under(view, &path);
                }
                view.insert(path.clone(), "dir".into());
                apply_dir(&entry.path(), &path, view);
            } else {
                remove_under(view, &path);
                view.insert(path, fs::read_to_string(entry.path()).unwrap());
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Write {
        Put(u8, u8),
        Delete(u8),
    }

    fn name(n: u8) -> String {
        // Two levels so that deletions and puts also hit directories.
        if n.is_multiple_of(3) {
            format!("d{}/f{n}", n % 2)
        } else {
            format!("f{n}")
        }
    }

    /// Writes into an upper as overlay would: files, and whiteouts for deletions.
    fn write_upper(upper: &Path, writes: &[Write]) {
        for write in writes {
            match write {
                Write::Put(n, content) => {
                    let path = upper.join(name(*n));
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    if path.symlink_metadata().is_ok() {
                        fs::remove_file(&path).unwrap();
                    }
                    fs::write(&path, content.to_string()).unwrap();
                }
                Write::Delete(n) => {
                    let path = upper.join(name(*n));
                    fs::create_dir_all(path.parent().unwrap()).unwrap();
                    if path.symlink_metadata().is_ok() {
                        fs::remove_file(&path).unwrap();
                    }
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &path,
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::Mode::empty(),
                        0,
                    )
                    .unwrap();
                }
            }
        }
    }

    fn apply_writes(view: &mut BTreeMap<String, String>, writes: &[Write]) {
        for write in writes {
            match write {
                Write::Put(n, content) => {
                    let path = name(*n);
                    if let Some((parent, _)) = path.split_once('/') {
                        view.insert(parent.to_owned(), "dir".into());
                    }
                    view.insert(path, content.to_string());
                }
                Write::Delete(n) => {
                    let path = name(*n);
                    if let Some((parent, _)) = path.split_once('/') {
                        view.insert(parent.to_owned(), "dir".into());
                    }
                    view.remove(&path);
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Hook { writes: Vec<Write>, ok: bool },
        OperatorEdit(Vec<Write>),
        Resolve,
        Retry { writes: Vec<Write>, ok: bool },
        Squash,
    }

    fn write_strategy() -> impl Strategy<Value = Write> {
        prop_oneof![
            3 => (0u8..7, any::<u8>()).prop_map(|(n, c)| Write::Put(n, c)),
            1 => (0u8..7).prop_map(Write::Delete),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        let writes = || proptest::collection::vec(write_strategy(), 0..4);
        prop_oneof![
            6 => (writes(), proptest::bool::weighted(0.8)).prop_map(|(writes, ok)| Op::Hook { writes, ok }),
            1 => writes().prop_map(Op::OperatorEdit),
            1 => Just(Op::Resolve),
            1 => (writes(), any::<bool>()).prop_map(|(writes, ok)| Op::Retry { writes, ok }),
            1 => Just(Op::Squash),
        ]
    }

    /// The model of what the unit's charm dir (its lowers) must show.
    #[derive(Debug, Clone, Default)]
    struct Model {
        committed: BTreeMap<String, String>,
        operator: Vec<Write>,
        error: Option<String>,
    }

    impl Model {
        fn view(&self) -> BTreeMap<String, String> {
            let mut view = self.committed.clone();
            apply_writes(&mut view, &self.operator);
            view
        }
    }

    fn open(root: &StateRoot, name: &UnitName) -> (Unit, Recovery) {
        let (mut unit, recovery) = Unit::open(root, name, |_| {}).unwrap();
        unit.set_squash_bounds(3, 1);
        (unit, recovery)
    }

    /// Runs one op against the unit and the model; `Err` only for a failpoint.
    fn run_op(unit: &mut Unit, model: &mut Model, op: &Op, n: usize) -> Result<(), UnitError> {
        let hook = format!("hook-{n}");
        match op {
            Op::Hook { writes, ok } => match unit.begin_hook(&hook, &format!("ctx-{n}")) {
                Err(UnitError::InError { .. }) => assert!(model.error.is_some()),
                Err(e) => return Err(e),
                Ok(run) => {
                    assert!(model.error.is_none());
                    write_upper(&run.upper, writes);
                    if *ok {
                        unit.commit(&run, None)?;
                        apply_writes(&mut model.committed, writes);
                    } else {
                        unit.discard(&run)?;
                        model.error = Some(hook);
                    }
                }
            },
            Op::OperatorEdit(writes) => match unit.operator_upper()? {
                Some((upper, _work)) => {
                    write_upper(&upper, writes);
                    model.operator.extend(writes.iter().cloned());
                }
                None => assert!(model.error.is_none()),
            },
            Op::Resolve => match unit.resolve(|_| None) {
                Err(UnitError::NotInError { .. }) => assert!(model.error.is_none()),
                Err(e) => return Err(e),
                Ok((error, _)) => {
                    assert_eq!(
                        Some(error),
                        model.error.clone().map(|hook| ErrorKind::Hook { hook })
                    );
                    let operator = std::mem::take(&mut model.operator);
                    apply_writes(&mut model.committed, &operator);
                    model.error = None;
                }
            },
            Op::Retry { writes, ok } => match unit.begin_retry(&format!("ctx-{n}")) {
                Err(UnitError::NotInError { .. }) => assert!(model.error.is_none()),
                Err(e) => return Err(e),
                Ok((retried, run)) => {
                    assert_eq!(Some(retried), model.error.clone());
                    write_upper(&run.upper, writes);
                    if *ok {
                        unit.commit(&run, Some(serde_json::json!({"n": n})))?;
                        let operator = std::mem::take(&mut model.operator);
                        apply_writes(&mut model.committed, &operator);
                        apply_writes(&mut model.committed, writes);
                        model.error = None;
                    } else {
                        unit.discard(&run)?;
                    }
                }
            },
            Op::Squash => {
                unit.squash_now(None)?;
            }
        }
        Ok(())
    }

    /// The invariants that hold after any recovery.
    fn check_consistent(unit: &Unit) {
        let journal = unit.journal();
        assert!(
            matches!(journal.state, UnitState::Idle | UnitState::Error { .. }),
            "{:?}",
            journal.state
        );
        assert_eq!(journal.squash, None);
        let dirs = unit.paths().layer_dirs();
        let mut on_disk = dirs.layer_dir_entries().unwrap();
        on_disk.sort();
        let mut named = unit.runtime_lowers();
        named.sort();
        assert_eq!(on_disk, named, "layers/ holds exactly the journal's stack");
        assert_eq!(dirs.run_dir_entries().unwrap(), Vec::<PathBuf>::new());
        assert_eq!(dirs.squash_dir_entries().unwrap(), Vec::<PathBuf>::new());
        assert!(
            fs::read_dir(dirs.failed_root())
                .map(|d| d.count())
                .unwrap_or(0)
                <= 1
        );
        assert_eq!(journal.operator, dirs.operator().exists());
        assert_eq!(
            journal.operator,
            matches!(journal.state, UnitState::Error { .. })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Runs a random sequence of hooks, failures, operator edits, resolutions, retries
        /// and squashes, with a simulated crash after `crash_at` steps; after the crash the
        /// reopened (recovered) unit is consistent and its charm dir shows exactly the state
        /// before or after the interrupted operation.
        #[test]
        fn a_crash_at_any_step_leaves_the_pre_or_post_state(
            ops in proptest::collection::vec(op_strategy(), 1..14),
            crash_at in 0usize..80,
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let root = StateRoot::at(tmp.path());
            let name = UnitName::parse("wp/0").unwrap();
            drop(Unit::create(&root, &name).unwrap());
            let (mut unit, _) = open(&root, &name);
            unit.crash_after = Some(crash_at);
            let mut model = Model::default();
            for (n, op) in ops.iter().enumerate() {
                let before = model.clone();
                match run_op(&mut unit, &mut model, op, n) {
                    Ok(()) => {
                        prop_assert_eq!(merged(&unit.lowers()), model.view(), "after {:?}", op);
                    }
                    Err(UnitError::Failpoint { .. }) => {
                        // The crash: what is on disk is all that survives.
                        drop(unit);
                        let (recovered, _report) = open(&root, &name);
                        check_consistent(&recovered);
                        let view = merged(&recovered.lowers());
                        let mut after = before.clone();
                        let completed = run_op_model_only(&mut after, op, n);
                        let pre = view == before.view();
                        let post = completed && view == after.view();
                        prop_assert!(pre || post, "after a crash in {:?}: {:?}\npre {:?}\npost {:?}", op, view, before.view(), after.view());
                        if let Op::Hook { ok: false, .. } = op {
                            // A failing hook never commits: killed before or after it ran,
                            // the charm dir is its pre-hook state.
                            prop_assert!(pre);
                        }
                        if pre
                            && !post
                            && let UnitState::Error { error: ErrorKind::Hook { hook } } =
                                recovered.state()
                        {
                            let expected = format!("hook-{n}");
                            prop_assert!(before.error.is_some() || *hook == expected);
                        }
                        return Ok(());
                    }
                    Err(e) => panic!("{op:?}: {e}"),
                }
            }
            drop(unit);
            let (reopened, report) = open(&root, &name);
            prop_assert!(report.is_empty(), "{:?}", report);
            check_consistent(&reopened);
            prop_assert_eq!(merged(&reopened.lowers()), model.view());
        }
    }

    /// The model's effect of `op` when it completes (false when it cannot change anything).
    fn run_op_model_only(model: &mut Model, op: &Op, n: usize) -> bool {
        match op {
            Op::Hook { writes, ok } if model.error.is_none() => {
                if *ok {
                    apply_writes(&mut model.committed, writes);
                } else {
                    model.error = Some(format!("hook-{n}"));
                }
            }
            Op::Resolve if model.error.is_some() => {
                let operator = std::mem::take(&mut model.operator);
                apply_writes(&mut model.committed, &operator);
                model.error = None;
            }
            Op::Retry { writes, ok: true } if model.error.is_some() => {
                let operator = std::mem::take(&mut model.operator);
                apply_writes(&mut model.committed, &operator);
                apply_writes(&mut model.committed, writes);
                model.error = None;
            }
            Op::OperatorEdit(writes) if model.error.is_some() => {
                model.operator.extend(writes.iter().cloned());
            }
            _ => return false,
        }
        true
    }

    #[test]
    fn a_killed_hook_leaves_the_unit_in_error_at_its_pre_hook_state() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let name = UnitName::parse("wp/0").unwrap();
        let mut unit = Unit::create(&root, &name).unwrap();
        let run = unit.begin_hook("install", "wp-0-install-1").unwrap();
        write_upper(&run.upper, &[Write::Put(1, 1)]);
        unit.commit(&run, None).unwrap();
        let run = unit.begin_hook("start", "wp-0-start-2").unwrap();
        write_upper(&run.upper, &[Write::Put(1, 2), Write::Put(2, 2)]);
        drop(unit); // killed mid-hook
        let (unit, recovery) = Unit::open(&root, &name, |_| {}).unwrap();
        assert_eq!(recovery.interrupted_hook.unwrap().hook, "start");
        assert_eq!(unit.error().unwrap().to_string(), r#"hook failed: "start""#);
        assert_eq!(
            merged(&unit.lowers()),
            BTreeMap::from([("f1".into(), "1".into())])
        );
        assert!(unit.paths().failed(&run.id).join("f2").exists());
        let history = history::read(&unit.paths().history_file()).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].outcome, Some(Outcome::Failed));
        assert_eq!(history[0].context_id.as_deref(), Some("wp-0-start-2"));
        let mut unit = unit;
        assert!(matches!(
            unit.begin_hook("config-changed", "x"),
            Err(UnitError::InError { .. })
        ));
    }

    #[test]
    fn a_killed_action_is_discarded_and_leaves_the_unit_idle() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let name = UnitName::parse("wp/0").unwrap();
        let mut unit = Unit::create(&root, &name).unwrap();
        let run = unit.begin_action("backup", "wp-0-backup-1").unwrap();
        write_upper(&run.upper, &[Write::Put(1, 1)]);
        drop(unit); // killed mid-action
        let (unit, recovery) = Unit::open(&root, &name, |_| {}).unwrap();
        let interrupted = recovery.interrupted_hook.unwrap();
        assert_eq!(interrupted.hook, "backup");
        assert!(interrupted.action);
        assert_eq!(unit.state(), &UnitState::Idle);
        assert!(!unit.journal().operator);
        assert_eq!(merged(&unit.lowers()), BTreeMap::new());
        assert!(unit.paths().failed(&run.id).join("f1").exists());
        let history = history::read(&unit.paths().history_file()).unwrap();
        assert_eq!(history[0].outcome, Some(Outcome::Failed));
        assert!(
            history[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("interrupted")
        );
        check_consistent(&unit);
    }

    #[test]
    fn resolving_a_unit_not_in_error_is_refused_with_exit_4() {
        use crate::exit::{ClassifyExit, ExitStatus};
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let name = UnitName::parse("wp/0").unwrap();
        let mut unit = Unit::create(&root, &name).unwrap();
        let err = unit.resolve(|_| None).unwrap_err();
        assert_eq!(err.to_string(), "unit wp/0 is not in error");
        assert_eq!(err.exit_status(), ExitStatus::Refused);
        let err = Unit::open(&root, &UnitName::parse("wp/1").unwrap(), |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "unknown unit wp/1");
        assert_eq!(err.exit_status(), ExitStatus::Refused);
        drop(unit);
        assert!(matches!(
            Unit::create(&root, &name),
            Err(UnitError::UnitExists { .. })
        ));
    }

    #[test]
    fn the_stack_depth_stays_bounded_over_many_hooks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let name = UnitName::parse("wp/0").unwrap();
        let mut unit = Unit::create(&root, &name).unwrap();
        let mut model = BTreeMap::new();
        for n in 0..60u8 {
            let run = unit.begin_hook("update-status", "ctx").unwrap();
            let writes = [Write::Put(n % 7, n), Write::Delete((n + 3) % 7)];
            write_upper(&run.upper, &writes);
            unit.commit(&run, None).unwrap();
            apply_writes(&mut model, &writes);
            unit.squash_now(None).unwrap();
            assert!(unit.journal().layers.len() <= SQUASH_THRESHOLD);
            assert_eq!(merged(&unit.lowers()), model, "after hook {n}");
        }
    }

    #[test]
    fn a_background_squash_overlaps_the_next_hook() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::at(tmp.path());
        let name = UnitName::parse("wp/0").unwrap();
        let mut unit = Unit::create(&root, &name).unwrap();
        unit.set_squash_bounds(4, 2);
        let mut model = BTreeMap::new();
        for n in 0..5u8 {
            let run = unit.begin_hook("h", "c").unwrap();
            write_upper(&run.upper, &[Write::Put(n, n)]);
            unit.commit(&run, None).unwrap();
            apply_writes(&mut model, &[Write::Put(n, n)]);
        }
        let job = unit.plan_squash(None).unwrap().expect("a squash is due");
        assert_eq!(job.replaces().len(), 3);
        let worker = std::thread::spawn(move || job.run());
        // The next hook runs on the old stack meanwhile.
        let run = unit.begin_hook("h", "c").unwrap();
        write_upper(&run.upper, &[Write::Delete(0)]);
        unit.commit(&run, None).unwrap();
        apply_writes(&mut model, &[Write::Delete(0)]);
        let built = worker.join().unwrap().unwrap();
        unit.finish_squash(built).unwrap();
        assert_eq!(unit.journal().layers.len(), 4);
        assert_eq!(merged(&unit.lowers()), model);
    }
}
