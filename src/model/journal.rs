//! The unit journal (`state.json`) and the steps of the unit state machine.
//!
//! The journal is the only record of a unit's layer stack and of what it is doing; it is
//! rewritten atomically (`store::atomic::write_json`) after every step, and every step is
//! ordered so that a crash (SIGKILL) between any two syscalls leaves a state that
//! [`Unit::recover`] turns into one of the two states around the step:
//!
//! | step | journal writes and directory operations, in order |
//! |---|---|
//! | [`Unit::begin_hook`] | create `runs/<id>/{upper,work}` → journal `running-hook` |
//! | [`Unit::commit`] | journal `committing` → rename `operator/` to `layers/<op>` (retry only) → rename the upper to `layers/<id>` → journal `idle` with the new stack → remove `runs/<id>` |
//! | [`Unit::discard`] | rename the upper to `failed/<id>` → journal `error` → remove `runs/<id>` and older failed layers |
//! | squash | journal `squash` record → build `squash/<new>` (may run in the background) → rename it to `layers/<new>` → journal: stack swapped, record cleared → remove the old layer dirs |
//!
//! Recovery (run by [`Unit::open`] under the unit lock, before anything else): a journal
//! `running-hook` means the runner died mid-hook: the upper goes to `failed/`, the unit is
//! in error `hook failed: "<hook>"` and its stack is the pre-hook stack (rule 7). A journal
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
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::store::StateRoot;
use crate::store::atomic;
use crate::store::layers::{LayerId, RunDirs, exists, is_empty_dir};
use crate::store::squash::{OverlayXattrs, SquashReport, remove_tree, squash_layers};

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
    /// After the run dirs exist, before the journal says `running-hook`.
    pub const BEGIN_BEFORE_JOURNAL: &str = "begin:before-journal";
    /// After the journal says `running-hook` (the hook would run now).
    pub const BEGIN_AFTER_JOURNAL: &str = "begin:after-journal";
    /// After the journal says `committing`, before any rename.
    pub const COMMIT_AFTER_JOURNAL: &str = "commit:after-journal";
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
        /// The conflicting paths.
        conflicts: Vec<Conflict>,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hook { hook } => write!(f, "hook failed: {hook:?}"),
            Self::Upgrade { conflicts } => {
                write!(f, "upgrade failed: {} conflicting paths", conflicts.len())
            }
        }
    }
}

/// One conflicting path of a three-way merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The path, relative to the charm dir.
    pub path: String,
    /// What collided.
    pub kind: ConflictKind,
}

/// The kinds of merge conflicts (rule 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// Both sides changed the content.
    ModifyModify,
    /// Both sides added the path with different content.
    AddAdd,
    /// Runtime modified what the new charm deleted.
    ModifyDelete,
    /// Runtime deleted what the new charm modified.
    DeleteModify,
    /// A directory on one side, a file on the other.
    DirectoryFile,
    /// A symlink on one side, a file on the other.
    SymlinkFile,
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
}

impl Recovery {
    /// Whether recovery changed anything.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
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
        let report = squash_layers(&self.sources, &self.staging, OverlayXattrs::User)?;
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
    #[cfg(test)]
    crash_after: Option<usize>,
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

    /// Starts a hook run: creates `runs/<id>/{upper,work}` and records `running-hook`.
    /// Refused while the unit is in error (rule 5) or busy.
    pub fn begin_hook(&mut self, hook: &str, context_id: &str) -> Result<RunDirs, UnitError> {
        match &self.journal.state {
            UnitState::Idle => {}
            UnitState::Error { error } => {
                return Err(UnitError::InError {
                    unit: self.name().clone(),
                    error: error.clone(),
                });
            }
            _ => return Err(self.wrong_state("start a hook")),
        }
        self.start_run(hook, context_id, false)
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
        let run = self.start_run(&hook, context_id, true)?;
        Ok((hook, run))
    }

    fn start_run(
        &mut self,
        hook: &str,
        context_id: &str,
        retry: bool,
    ) -> Result<RunDirs, UnitError> {
        let id = LayerId::generate(self.journal.next_sequence);
        let run = self.paths.layer_dirs().create_run(&id)?;
        self.step(failpoints::BEGIN_BEFORE_JOURNAL)?;
        let mut next = self.journal.clone();
        next.next_sequence += 1;
        next.state = UnitState::RunningHook {
            hook: hook.to_owned(),
            run: id,
            context_id: context_id.to_owned(),
            started: Timestamp::now(),
            retry,
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

    /// Does (or finishes) every rename the `committing` journal names, then records `idle`.
    /// Idempotent: recovery calls it after a crash at any point of [`Unit::commit`].
    fn complete_commit(&mut self) -> Result<Vec<LayerId>, UnitError> {
        let UnitState::Committing {
            run,
            operator_layer,
            ..
        } = self.journal.state.clone()
        else {
            return Err(self.wrong_state("complete a commit"));
        };
        let dirs = self.paths.layer_dirs().clone();
        let mut next = self.journal.clone();
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
        self.write(next)?;
        self.step(failpoints::COMMIT_AFTER_IDLE)?;
        dirs.remove_run(&run)?;
        if had_operator {
            self.remove_operator_dirs()?;
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
        self.discard_run(&hook, &run.id)?;
        tracing::info!(unit = %self.name(), hook, "hook failed, layer discarded");
        Ok(())
    }

    fn discard_run(&mut self, hook: &str, run: &LayerId) -> Result<(), UnitError> {
        let dirs = self.paths.layer_dirs().clone();
        let upper = dirs.run(run).upper;
        if exists(&upper)? {
            dirs.keep_failed(&upper, run)?;
        }
        self.step(failpoints::DISCARD_AFTER_MOVE)?;
        dirs.create_operator()?;
        let mut next = self.journal.clone();
        next.operator = true;
        next.state = UnitState::Error {
            error: ErrorKind::Hook {
                hook: hook.to_owned(),
            },
        };
        self.write(next)?;
        dirs.remove_run(run)?;
        Ok(())
    }

    /// Puts an idle unit in error `upgrade failed` with its conflicts (rule 9); the operator
    /// layer goes on top so `shell` can fix the runtime side.
    pub fn fail_upgrade(&mut self, conflicts: Vec<Conflict>) -> Result<(), UnitError> {
        if !matches!(
            self.journal.state,
            UnitState::Idle
                | UnitState::Error {
                    error: ErrorKind::Upgrade { .. }
                }
        ) {
            return Err(self.wrong_state("record an upgrade conflict"));
        }
        self.paths.layer_dirs().create_operator()?;
        let mut next = self.journal.clone();
        next.operator = true;
        next.state = UnitState::Error {
            error: ErrorKind::Upgrade { conflicts },
        };
        self.write(next)
    }

    /// `resolved` without retry: commits the operator layer (when it holds anything) as the
    /// newest runtime layer and goes idle, as though the failed hook had succeeded without
    /// its own writes (rule 6). Returns the error that was resolved and the committed layer.
    /// Refused with `NotInError` when the unit is not in error.
    pub fn resolve(&mut self) -> Result<(ErrorKind, Option<LayerId>), UnitError> {
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
            pending: None,
        };
        self.write(next)?;
        self.step(failpoints::RESOLVE_AFTER_JOURNAL)?;
        self.complete_commit()?;
        tracing::info!(unit = %self.name(), error = %error, "unit resolved");
        Ok((error, operator_layer))
    }

    /// Whether the stack is past [`SQUASH_THRESHOLD`] and no squash is in progress.
    pub fn squash_due(&self) -> bool {
        self.journal.squash.is_none() && self.journal.layers.len() > SQUASH_THRESHOLD
    }

    /// Plans a squash of all but the [`SQUASH_KEEP`] newest layers when one is due: records
    /// it in the journal and returns the job to build (on any thread). `None` when no squash
    /// is due.
    pub fn plan_squash(&mut self) -> Result<Option<SquashJob>, UnitError> {
        if !self.squash_due() {
            return Ok(None);
        }
        let count = self.journal.layers.len() - SQUASH_KEEP;
        let mut replaces: Vec<LayerId> = self.journal.layers[SQUASH_KEEP..].to_vec();
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

    /// Plans, builds and installs a squash in the calling thread, when one is due.
    pub fn squash_now(&mut self) -> Result<Option<LayerId>, UnitError> {
        let Some(job) = self.plan_squash()? else {
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
                ..
            } => {
                self.discard_run(&hook, &run)?;
                let record = HistoryRecord {
                    kind: RecordKind::Hook,
                    hook: hook.clone(),
                    outcome: Some(Outcome::Failed),
                    exit_code: None,
                    signal: None,
                    reason: Some("hookbox was killed while the hook ran".to_owned()),
                    context_id: Some(context_id.clone()),
                    charm_revision: None,
                    started,
                    duration_ms: started.elapsed().as_millis() as u64,
                    layer: None,
                };
                history::append(&self.paths.history_file(), &record)?;
                tracing::warn!(unit = %self.name(), hook, "recovered a hook interrupted by a killed runner: unit is in error");
                recovery.interrupted_hook = Some(InterruptedHook {
                    hook,
                    context_id,
                    started,
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
        if let Some(record) = self.journal.squash.clone() {
            self.abandon_squash()?;
            recovery.abandoned_squash = Some(record.into);
        }
        // Orphans: whatever the journal does not name.
        let named: Vec<PathBuf> = self
            .journal
            .layers
            .iter()
            .map(|id| dirs.layer(id))
            .collect();
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
        self.step("journal:written")
    }

    /// A failpoint: `HOOKBOX_FAILPOINT=<point>` SIGKILLs the process here; in unit tests a
    /// step budget stops the step with `UnitError::Failpoint` (a simulated crash).
    fn step(&mut self, point: &'static str) -> Result<(), UnitError> {
        static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();
        let armed = FAILPOINT.get_or_init(|| std::env::var("HOOKBOX_FAILPOINT").ok());
        if armed.as_deref() == Some(point) {
            tracing::warn!(point, "failpoint reached: killing this process");
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::KILL,
            );
        }
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
