//! Charm upgrades (DESIGN.md rules 8-12 and 14): `upgrade`, `preview-upgrade`, and the
//! upgrade side of `resolved`.
//!
//! An upgrade, in order:
//! 1. application level, under the application lock: the target charm is chosen (latest
//!    revision of the same charm in the store, a revision, a path ingested first, or any
//!    charm with `--switch`), the compatibility check refuses with exit 4 and changes nothing
//!    ([`check_compatible`]), the same charm again with every unit on it is a no-op, the
//!    user's settings are converted for the new charm ([`convert_settings`]) and the
//!    application record switches charm in one atomic write;
//! 2. per unit, under the unit lock, units in parallel: a unit not in error rebases
//!    ([`Unit::begin_upgrade`]: journal record; flatten its runtime layers; three-way merge of
//!    old base, runtime diff and new base; the merged diff materialised as ONE new layer in a
//!    staging dir; [`Unit::swap_upgrade`]: one journal write swaps the stack, then the unit's
//!    charm switches and `upgrade-charm`, `config-changed` are queued), then runs the queued
//!    hooks. A conflict puts the unit in error `upgrade failed` with its stack untouched.
//!    A unit in error is left alone unless forced; its upgrade is deferred to its
//!    resolution (rule 10).
//! 3. forced (rule 11): the first forced upgrade of a unit records S0 (its charm and its
//!    committed layers, the operator layer of a unit in hook error folded into one), and
//!    every forced upgrade rebuilds from S0 onto the forced charm; where S0's runtime
//!    changes conflict with the forced charm, the charm wins (the conflict is reported as
//!    `overridden`; S0 still holds the runtime side). Forcing back onto S0's charm makes
//!    S0's layers the stack again: byte for byte. A unit in hook error stays in it and
//!    only `config-changed` is queued (after the retry of the failed hook); a unit in
//!    upgrade error goes back to its pre-upgrade stack (the operator's edits dropped) and
//!    runs `upgrade-charm` and `config-changed`.
//!
//! A killed upgrade is rolled back (killed before the journal swap) or completed (after it)
//! by the recovery of the next command that opens the unit; the charm dir is never a mix.
//! Hooks it had queued run with the next `upgrade`, `resolved` or `config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::charm::{ConfigSpec, ConfigValue, Metadata, YamlLimits};
use crate::exit::{ClassifyExit, ExitStatus};
use crate::model::journal::failpoints;
use crate::model::runtime::{AppLock, UnitRuntime};
use crate::model::{
    AppName, AppRecord, Conflict, ErrorKind, S0Record, Unit, UnitName, UnitState, UpgradeSwap,
};
use crate::store::StateRoot;
use crate::store::charms::CharmStore;
use crate::store::digest::CharmDigest;
use crate::store::merge::{
    DiffEntry, Listing, MergeOutcome, RuntimeDiff, flatten_layers, materialize, merge,
};
use crate::store::squash::OverlayXattrs;

use super::RunnerError;
use super::hook_run::{LoadedCharm, Runner, open_unit};
use super::lifecycle::{
    CharmSummary, ResolveReport, UnitReport, WaitNotice, for_each_unit, queued_names, run_queue,
    unit_runtime,
};

/// The hooks an upgrade queues on a unit that is not in hook error.
const UPGRADE_HOOKS: [&str; 2] = ["upgrade-charm", "config-changed"];

/// How many times a forced rebuild drops conflicting runtime changes and merges again
/// before giving up (each round removes every conflicting subtree; two always suffice).
const FORCE_ROUNDS: usize = 8;

/// Refusals of an upgrade (exit 4) and bad targets.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// A subordinate replaced by a principal, or the reverse.
    #[error(
        "cannot upgrade {app} to {charm}: a {current} charm must be replaced by a {current} charm, and {charm} is {given}"
    )]
    KindChange {
        /// The application.
        app: AppName,
        /// The new charm's name.
        charm: String,
        /// "subordinate" or "principal": what the application's charm is.
        current: &'static str,
        /// What the new charm is.
        given: &'static str,
    },
    /// A relation in use would lose its endpoint, interface or role.
    #[error("cannot upgrade {app} to {charm}: would break relation {relation:?}: {problem}")]
    BreaksRelation {
        /// The application.
        app: AppName,
        /// The new charm's name.
        charm: String,
        /// The relation, `wp:db mysql:db` (`wp:cluster` for a peer relation).
        relation: String,
        /// What the new charm lacks.
        problem: String,
    },
    /// A peer relation of the current charm is missing from the new one.
    #[error(
        "cannot upgrade {app} to {charm}: peer relation {endpoint:?} would be removed ({problem})"
    )]
    PeerRemoved {
        /// The application.
        app: AppName,
        /// The new charm's name.
        charm: String,
        /// The peer endpoint.
        endpoint: String,
        /// What the new charm has instead.
        problem: String,
    },
    /// Another charm's name without `--switch`.
    #[error(
        "cannot upgrade {app} from charm {current:?} to charm {given:?}: the name changes only with --switch"
    )]
    NameChange {
        /// The application.
        app: AppName,
        /// Its charm's name.
        current: String,
        /// The new charm's name.
        given: String,
    },
    /// `--revision N` names no stored revision of the charm.
    #[error("no revision {revision} of charm {charm:?} is in the charm store")]
    NoSuchRevision {
        /// The charm's name.
        charm: String,
        /// The revision asked for.
        revision: u64,
    },
}

impl ClassifyExit for UpgradeError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::Refused
    }
}

/// Which charm to upgrade to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The latest revision of the application's charm in the store.
    Latest,
    /// That revision of the application's charm in the store.
    Revision(u64),
    /// A path to a new version of the same charm (ingested first), or a stored digest.
    Charm(String),
    /// Any charm (path or digest), whose name may differ.
    Switch(String),
}

/// What `upgrade` is asked to do.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// The application.
    pub app: AppName,
    /// The charm.
    pub target: Target,
    /// Reach units in error too (rule 11).
    pub force: bool,
    /// How many units upgrade at once.
    pub parallel: usize,
}

/// A user setting the new charm does not keep.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedSetting {
    /// The option.
    pub option: String,
    /// The value the user had set.
    pub value: serde_json::Value,
    /// Why: `option removed`, `type changed from int to string`, ...
    pub reason: String,
}

/// Rule 12's conversion of the user's settings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SettingsReport {
    /// User values the new charm keeps.
    pub kept: BTreeMap<String, serde_json::Value>,
    /// User values it drops.
    pub dropped: Vec<DroppedSetting>,
    /// The new charm's options with no user value: their default (null: none).
    pub defaulted: BTreeMap<String, Option<serde_json::Value>>,
}

/// What happened (or, in a preview, would happen) to one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitOutcome {
    /// Rebased onto the new charm (or would be).
    Upgraded,
    /// Rebuilt from S0 onto the forced charm.
    Forced,
    /// Forced back onto S0's charm: S0's stack again.
    Restored,
    /// The merge conflicts: the unit is (would be) in error `upgrade failed`.
    Conflicts,
    /// In error and not forced: the upgrade applies once resolved (rule 10).
    Deferred,
    /// Already on the charm.
    Current,
    /// The upgrade could not run (see `error`).
    Failed,
}

/// One unit's upgrade.
#[derive(Debug, Serialize)]
pub struct UnitUpgrade {
    /// What happened.
    pub outcome: UnitOutcome,
    /// The conflicts that stopped it.
    pub conflicts: Vec<Conflict>,
    /// Conflicts a forced upgrade settled in the new charm's favour.
    pub overridden: Vec<Conflict>,
    /// The unit and the hooks it ran.
    #[serde(flatten)]
    pub report: UnitReport,
}

/// What `upgrade` did.
#[derive(Debug, Serialize)]
pub struct UpgradeReport {
    /// The application.
    pub application: AppName,
    /// Its charm before.
    pub from: CharmSummary,
    /// The charm it upgraded to.
    pub to: CharmSummary,
    /// `upgraded`, or `unchanged` (same charm again with every unit on it: rule 14).
    pub outcome: &'static str,
    /// Whether it was forced.
    pub forced: bool,
    /// The settings conversion (absent when the application's charm did not change).
    pub settings: Option<SettingsReport>,
    /// Per unit.
    pub units: Vec<UnitUpgrade>,
}

fn summary(charm: &LoadedCharm) -> CharmSummary {
    CharmSummary {
        name: charm.record.name.clone(),
        revision: charm.record.revision,
        digest: charm.record.digest.clone(),
    }
}

fn kind_name(subordinate: bool) -> &'static str {
    if subordinate {
        "subordinate"
    } else {
        "principal"
    }
}

/// Rule 8's application-level check: principal stays principal and subordinate stays
/// subordinate; every relation in use (`app.relations`) keeps its endpoint with the same
/// interface and role; no peer relation of the current charm disappears; the name changes
/// only with `switch`.
pub fn check_compatible(
    app: &AppRecord,
    current: &Metadata,
    new: &Metadata,
    switch: bool,
) -> Result<(), UpgradeError> {
    let charm = new.name.clone();
    if current.name != new.name && !switch {
        return Err(UpgradeError::NameChange {
            app: app.name.clone(),
            current: current.name.clone(),
            given: new.name.clone(),
        });
    }
    if current.subordinate != new.subordinate {
        return Err(UpgradeError::KindChange {
            app: app.name.clone(),
            charm,
            current: kind_name(current.subordinate),
            given: kind_name(new.subordinate),
        });
    }
    for relation in &app.relations {
        let key = if relation.is_peer() {
            format!("{}:{}", app.name, relation.endpoint)
        } else {
            format!(
                "{}:{} {}:{}",
                app.name, relation.endpoint, relation.remote_app, relation.remote_endpoint
            )
        };
        let role = relation.role;
        let problem = match new.endpoint(&relation.endpoint) {
            None => Some(format!("{charm} has no endpoint {:?}", relation.endpoint)),
            Some((_, r)) if r.interface != relation.interface => Some(format!(
                "endpoint {:?} of {charm} has interface {:?}, the relation uses {:?}",
                relation.endpoint, r.interface, relation.interface
            )),
            Some((new_role, _)) if new_role != role => Some(format!(
                "endpoint {:?} of {charm} is under {}, the relation uses it under {}",
                relation.endpoint,
                new_role.section(),
                role.section()
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return Err(UpgradeError::BreaksRelation {
                app: app.name.clone(),
                charm,
                relation: key,
                problem,
            });
        }
    }
    for (endpoint, relation) in &current.peers {
        let problem = match new.peers.get(endpoint) {
            Some(r) if r.interface == relation.interface => continue,
            Some(r) => format!(
                "{charm} declares it with interface {:?} instead of {:?}",
                r.interface, relation.interface
            ),
            None => match new.endpoint(endpoint) {
                Some((role, _)) => format!("{charm} declares it under {}", role.section()),
                None => format!("{charm} does not declare it"),
            },
        };
        return Err(UpgradeError::PeerRemoved {
            app: app.name.clone(),
            charm,
            endpoint: endpoint.clone(),
            problem,
        });
    }
    Ok(())
}

/// Rule 12: the user values `user` set for the `old` charm that the `new` charm keeps (an
/// option of the same name and type), what it drops and why, and the options that take the
/// new charm's default.
pub fn convert_settings(
    old: &ConfigSpec,
    new: &ConfigSpec,
    user: &BTreeMap<String, serde_json::Value>,
) -> SettingsReport {
    let values: BTreeMap<String, ConfigValue> = user
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), serde_json::from_value(v.clone()).ok()?)))
        .collect();
    let kept_values = new.keep_compatible(old, &values);
    let mut report = SettingsReport::default();
    for (name, value) in user {
        if kept_values.contains_key(name) {
            report.kept.insert(name.clone(), value.clone());
            continue;
        }
        let reason = match (old.options.get(name), new.options.get(name)) {
            (_, None) => "option removed".to_owned(),
            (Some(o), Some(n)) if o.kind != n.kind => {
                format!("type changed from {} to {}", o.kind, n.kind)
            }
            (_, Some(n)) => format!("value does not fit type {}", n.kind),
        };
        report.dropped.push(DroppedSetting {
            option: name.clone(),
            value: value.clone(),
            reason,
        });
    }
    for (name, option) in &new.options {
        if !report.kept.contains_key(name) {
            let default = option
                .default
                .as_ref()
                .and_then(|v| serde_json::to_value(v).ok());
            report.defaulted.insert(name.clone(), default);
        }
    }
    report
}

/// The stored charm `target` names for an application on `current` (a path is ingested).
/// Returns the digest and whether the name may change.
fn select_target(
    runner: &Runner,
    current: &LoadedCharm,
    target: &Target,
) -> Result<(CharmDigest, bool), RunnerError> {
    let by_revision = |wanted: Option<u64>| -> Result<CharmDigest, RunnerError> {
        let store = CharmStore::new(runner.root());
        let mut candidates: Vec<_> = store
            .list()?
            .into_iter()
            .filter(|r| r.name == current.record.name)
            .filter(|r| wanted.is_none() || r.revision == wanted)
            .collect();
        // Highest revision, then the most recently ingested.
        candidates.sort_by(|a, b| (a.revision, &a.ingested_at).cmp(&(b.revision, &b.ingested_at)));
        match candidates.pop() {
            Some(record) => Ok(record.digest),
            None => Err(UpgradeError::NoSuchRevision {
                charm: current.record.name.clone(),
                revision: wanted.unwrap_or_default(),
            }
            .into()),
        }
    };
    Ok(match target {
        Target::Latest => (by_revision(None)?, false),
        Target::Revision(n) => (by_revision(Some(*n))?, false),
        Target::Charm(given) => (super::lifecycle::resolve_charm(runner, given)?, false),
        Target::Switch(given) => (super::lifecycle::resolve_charm(runner, given)?, true),
    })
}

/// `upgrade APP [CHARM | --revision N | --switch CHARM] [--force]`.
pub fn upgrade(
    runner: &Runner,
    request: &UpgradeRequest,
    on_wait: WaitNotice<'_>,
) -> Result<UpgradeReport, RunnerError> {
    let root = runner.root();
    let lock = AppLock::acquire(root, &request.app, on_wait)?;
    let mut app = AppRecord::load(root, &request.app)?;
    let current = runner.charm(&app.charm, request.app.as_str())?;
    let (target, switch) = select_target(runner, &current, &request.target)?;
    let new = runner.charm(&target, request.app.as_str())?;
    check_compatible(&app, &current.files.metadata, &new.files.metadata, switch)?;
    let units = app.unit_names();
    let mut lagging = false;
    for unit in &units {
        let runtime = UnitRuntime::load(root, unit)?;
        let journal = Unit::peek(root, unit)?;
        lagging |= runtime.charm != target
            || matches!(
                journal.state,
                UnitState::Error {
                    error: ErrorKind::Upgrade { .. }
                }
            )
            || journal.upgrade.is_some()
            || runtime.queue.iter().any(|q| q.hook == UPGRADE_HOOKS[0]);
    }
    if app.charm == target && !lagging {
        tracing::info!(app = %request.app, charm = %target, "same charm again: nothing to do");
        return Ok(UpgradeReport {
            application: request.app.clone(),
            from: summary(&current),
            to: summary(&new),
            outcome: "unchanged",
            forced: request.force,
            settings: None,
            units: Vec::new(),
        });
    }
    let settings = if app.charm != target {
        let report = convert_settings(
            &current.files.config,
            &new.files.config,
            &app.settings_for(&app.charm),
        );
        app.switch_charm(target.clone(), report.kept.clone());
        app.save(root)?;
        tracing::info!(app = %request.app, from = %current.record.digest, to = %target, "application switched charm");
        Some(report)
    } else {
        None
    };
    drop(lock);
    let reports = for_each_unit(&units, request.parallel, |unit, runtime| {
        upgrade_unit(runner, unit, &target, request.force, runtime, on_wait)
    });
    Ok(UpgradeReport {
        application: request.app.clone(),
        from: summary(&current),
        to: summary(&new),
        outcome: "upgraded",
        forced: request.force,
        settings,
        units: reports,
    })
}

/// One unit of an upgrade: opens (and recovers) it, then rebases it, defers it, or forces
/// it, then runs its queued hooks.
fn upgrade_unit(
    runner: &Runner,
    name: &UnitName,
    target: &CharmDigest,
    force: bool,
    tokio: &tokio::runtime::Runtime,
    on_wait: WaitNotice<'_>,
) -> UnitUpgrade {
    let mut upgrade = UnitUpgrade {
        outcome: UnitOutcome::Failed,
        conflicts: Vec::new(),
        overridden: Vec::new(),
        report: UnitReport::new(name),
    };
    let result = (|| -> Result<(), RunnerError> {
        let (mut unit, _) = open_unit(runner.root(), name, on_wait)?;
        super::lifecycle::account_for_last_commit(runner.root(), &unit)?;
        let runtime = UnitRuntime::load(runner.root(), name)?;
        let in_upgrade_error = matches!(unit.error(), Some(ErrorKind::Upgrade { .. }));
        if runtime.charm == *target && !in_upgrade_error {
            unit.clear_pending_upgrade()?;
            upgrade.outcome = UnitOutcome::Current;
        } else if force {
            let (outcome, overridden) = rebase_forced(runner, &mut unit, target)?;
            upgrade.outcome = outcome;
            upgrade.overridden = overridden;
        } else if unit.error().is_some() {
            unit.defer_upgrade(target.clone())?;
            tracing::info!(unit = %name, charm = %target, "unit in error: upgrade deferred until it is resolved");
            upgrade.outcome = UnitOutcome::Deferred;
        } else {
            match rebase(runner, &mut unit, target)? {
                Rebased::Clean => upgrade.outcome = UnitOutcome::Upgraded,
                Rebased::Conflicts(conflicts) => {
                    upgrade.outcome = UnitOutcome::Conflicts;
                    upgrade.conflicts = conflicts;
                }
            }
        }
        run_upgrade_hooks(runner, &mut unit, &mut upgrade.report, tokio)
    })();
    if let Err(error) = result {
        use crate::exit::ClassifyExit;
        upgrade.report.error_status = Some(error.exit_status());
        upgrade.report.error = Some(crate::exit::error_chain(&error));
    }
    upgrade
}

/// Runs what the upgrade queued (nothing for a unit in error) and records where the unit
/// stands.
fn run_upgrade_hooks(
    runner: &Runner,
    unit: &mut Unit,
    report: &mut UnitReport,
    tokio: &tokio::runtime::Runtime,
) -> Result<(), RunnerError> {
    if unit.error().is_none() {
        unit.reach(failpoints::UPGRADE_BEFORE_HOOK)?;
        tokio.block_on(run_queue(runner, unit, report, false))?;
    }
    report.queued = queued_names(&UnitRuntime::load(runner.root(), unit.name())?);
    report.note_state(unit);
    Ok(())
}

/// How an unforced rebase ended.
#[derive(Debug)]
pub enum Rebased {
    /// The unit is on the new charm with its hooks queued.
    Clean,
    /// The unit is in error `upgrade failed`; its stack is untouched.
    Conflicts(Vec<Conflict>),
}

/// The unforced rebase of an idle unit, or the retry of one in error `upgrade failed` (its
/// operator layer is then part of the runtime side).
pub fn rebase(
    runner: &Runner,
    unit: &mut Unit,
    target: &CharmDigest,
) -> Result<Rebased, RunnerError> {
    let root = runner.root();
    let name = unit.name().clone();
    let from = UnitRuntime::load(root, &name)?.charm;
    let store = CharmStore::new(root);
    let old = store.listing(&from)?;
    let new = store.listing(target)?;
    // In error `upgrade failed`, `lowers()` starts with the operator layer.
    let sources = unit.lowers();
    let staging = unit.begin_upgrade(from.clone(), target.clone())?;
    let merged = (|| -> Result<Result<RuntimeDiff, Vec<Conflict>>, RunnerError> {
        let runtime = flatten_layers(&sources, OverlayXattrs::User)?;
        Ok(match merge(&old, &runtime, &new) {
            MergeOutcome::Merged(diff) => Ok(diff),
            MergeOutcome::Conflicts(conflicts) => Err(conflicts),
        })
    })();
    let diff = match merged {
        Ok(Ok(diff)) => diff,
        Ok(Err(conflicts)) => {
            unit.abandon_upgrade()?;
            tracing::warn!(unit = %name, charm = %target, conflicts = conflicts.len(), "upgrade conflicts: unit in error");
            unit.fail_upgrade(target.clone(), conflicts.clone())?;
            return Ok(Rebased::Conflicts(conflicts));
        }
        Err(error) => {
            unit.abandon_upgrade()?;
            return Err(error);
        }
    };
    let layers = build_layer(unit, &diff, &sources, &staging)?;
    unit.swap_upgrade(UpgradeSwap {
        layers,
        s0: None,
        state: UnitState::Idle,
        hooks: UPGRADE_HOOKS.map(str::to_owned).to_vec(),
        fold_operator: None,
    })?;
    tracing::info!(unit = %name, from = %from, to = %target, "unit upgraded");
    Ok(Rebased::Clean)
}

/// Materialises `diff` into the upgrade's staging dir (nothing for an empty diff) and
/// returns the new stack; abandons the upgrade on error.
fn build_layer(
    unit: &mut Unit,
    diff: &RuntimeDiff,
    sources: &[PathBuf],
    staging: &Path,
) -> Result<Vec<crate::store::layers::LayerId>, RunnerError> {
    let Some(into) = unit.upgrade().map(|r| r.into) else {
        return Err(crate::model::UnitError::WrongState {
            unit: unit.name().clone(),
            state: unit.state().to_string(),
            step: "build an upgrade layer",
        }
        .into());
    };
    if diff.is_empty() {
        unit.reach(failpoints::UPGRADE_AFTER_MATERIALIZE)?;
        return Ok(Vec::new());
    }
    if let Err(error) = materialize(diff, sources, staging, OverlayXattrs::User) {
        unit.abandon_upgrade()?;
        return Err(error.into());
    }
    unit.reach(failpoints::UPGRADE_AFTER_MATERIALIZE)?;
    Ok(vec![into])
}

/// Removes every entry at or below a conflicting path from `diff`: the new charm wins there.
fn drop_conflicting(
    diff: &RuntimeDiff,
    conflicts: &[Conflict],
) -> Result<RuntimeDiff, RunnerError> {
    let hit = |path: &[u8]| {
        conflicts.iter().any(|c| {
            path == c.path.as_slice()
                || (path.starts_with(&c.path) && path.get(c.path.len()) == Some(&b'/'))
        })
    };
    let kept: Vec<DiffEntry> = diff
        .entries()
        .iter()
        .filter(|e| !hit(&e.path))
        .cloned()
        .collect();
    Ok(RuntimeDiff::new(kept)?)
}

/// A forced upgrade (rule 11): records S0 the first time, then rebuilds from S0 onto
/// `target` (or restores S0's stack when `target` is S0's charm).
fn rebase_forced(
    runner: &Runner,
    unit: &mut Unit,
    target: &CharmDigest,
) -> Result<(UnitOutcome, Vec<Conflict>), RunnerError> {
    let root = runner.root();
    let name = unit.name().clone();
    let current = UnitRuntime::load(root, &name)?.charm;
    let error = unit.error().cloned();
    let in_hook_error = matches!(error, Some(ErrorKind::Hook { .. }));
    let operator_dir = unit.paths().operator_dir();
    let operator_written = unit.journal().operator
        && operator_dir.is_dir()
        && std::fs::read_dir(&operator_dir)
            .map_err(RunnerError::io("read directory", &operator_dir))?
            .next()
            .is_some();
    // In hook error the operator layer is part of the charm dir: it goes into S0 (first
    // forced upgrade) or is dropped (later ones rebuild from S0: the folded layer is named
    // by nothing and removed). From an upgrade conflict it is dropped: the unit reverts to
    // its pre-upgrade tree.
    let fold = if in_hook_error && operator_written {
        Some(unit.allocate_layer_id()?)
    } else {
        None
    };
    let (s0, sources) = match unit.s0().cloned() {
        Some(s0) => {
            let sources = s0.layers.iter().map(|id| unit.paths().layer(id)).collect();
            (s0, sources)
        }
        None => {
            let mut layers = unit.journal().layers.clone();
            let mut sources = unit.runtime_lowers();
            if let Some(id) = fold {
                layers.insert(0, id);
                sources.insert(0, operator_dir.clone());
            }
            (
                S0Record {
                    charm: current.clone(),
                    layers,
                },
                sources,
            )
        }
    };
    let state = match error {
        Some(error @ ErrorKind::Hook { .. }) => UnitState::Error { error },
        _ => UnitState::Idle,
    };
    let hooks: Vec<String> = if in_hook_error {
        vec!["config-changed".to_owned()]
    } else {
        UPGRADE_HOOKS.map(str::to_owned).to_vec()
    };
    let staging = unit.begin_upgrade(current.clone(), target.clone())?;
    if *target == s0.charm {
        unit.reach(failpoints::UPGRADE_AFTER_MATERIALIZE)?;
        unit.swap_upgrade(UpgradeSwap {
            layers: s0.layers,
            s0: None,
            state,
            hooks,
            fold_operator: fold,
        })?;
        tracing::info!(unit = %name, charm = %target, "forced back onto S0's charm: S0 restored");
        return Ok((UnitOutcome::Restored, Vec::new()));
    }
    let store = CharmStore::new(root);
    let rebuilt = (|| -> Result<(RuntimeDiff, Vec<Conflict>), RunnerError> {
        let old = store.listing(&s0.charm)?;
        let new = store.listing(target)?;
        let mut runtime = flatten_layers(&sources, OverlayXattrs::User)?;
        let mut overridden = Vec::new();
        for _ in 0..FORCE_ROUNDS {
            match merge(&old, &runtime, &new) {
                MergeOutcome::Merged(diff) => return Ok((diff, overridden)),
                MergeOutcome::Conflicts(conflicts) => {
                    runtime = drop_conflicting(&runtime, &conflicts)?;
                    overridden.extend(conflicts);
                }
            }
        }
        Err(RunnerError::Usage {
            what: format!("forced upgrade of {name}: the merge did not settle"),
        })
    })();
    let (diff, overridden) = match rebuilt {
        Ok(r) => r,
        Err(error) => {
            unit.abandon_upgrade()?;
            return Err(error);
        }
    };
    let layers = build_layer(unit, &diff, &sources, &staging)?;
    unit.swap_upgrade(UpgradeSwap {
        layers,
        s0: Some(s0),
        state,
        hooks,
        fold_operator: fold,
    })?;
    tracing::info!(unit = %name, charm = %target, overridden = overridden.len(), "unit rebuilt from S0 onto the forced charm");
    Ok((UnitOutcome::Forced, overridden))
}

/// `resolved UNIT` of a unit in error `upgrade failed` (rule 9): retries the merge onto the
/// application's charm with the operator layer folded into the runtime side; still
/// conflicting, the unit stays in error with the new list; else it runs upgrade-charm,
/// config-changed and whatever else is queued.
pub fn resolve_conflict(
    runner: &Runner,
    unit: &mut Unit,
    retry: bool,
    stream: bool,
) -> Result<ResolveReport, RunnerError> {
    let name = unit.name().clone();
    let resolved = unit.error().map(ToString::to_string).unwrap_or_default();
    let app = AppRecord::load(runner.root(), name.app())?;
    let mut report = UnitReport::new(&name);
    let tokio = unit_runtime(unit)?;
    if let Rebased::Clean = rebase(runner, unit, &app.charm)? {
        unit.reach(failpoints::UPGRADE_BEFORE_HOOK)?;
        tokio.block_on(run_queue(runner, unit, &mut report, stream))?;
    }
    report.queued = queued_names(&UnitRuntime::load(runner.root(), &name)?);
    report.note_state(unit);
    Ok(ResolveReport {
        resolved,
        retry,
        unit: report,
        also: Vec::new(),
    })
}

/// After a unit was resolved and ran its queue: the upgrade that was deferred while it was
/// in error (rule 10) applies now, onto the application's current charm.
pub fn apply_pending(
    runner: &Runner,
    unit: &mut Unit,
    report: &mut UnitReport,
    tokio: &tokio::runtime::Runtime,
    stream: bool,
) -> Result<(), RunnerError> {
    if unit.error().is_some() {
        return Ok(());
    }
    let name = unit.name().clone();
    let app = AppRecord::load(runner.root(), name.app())?;
    let runtime = UnitRuntime::load(runner.root(), &name)?;
    if runtime.charm == app.charm {
        unit.clear_pending_upgrade()?;
        return Ok(());
    }
    tracing::info!(unit = %name, charm = %app.charm, "applying the upgrade deferred while the unit was in error");
    if let Rebased::Clean = rebase(runner, unit, &app.charm)? {
        unit.reach(failpoints::UPGRADE_BEFORE_HOOK)?;
        tokio.block_on(run_queue(runner, unit, report, stream))?;
    }
    report.queued = queued_names(&UnitRuntime::load(runner.root(), &name)?);
    report.note_state(unit);
    Ok(())
}

/// One unit in a preview.
#[derive(Debug, Serialize)]
pub struct UnitPreview {
    /// The unit.
    pub unit: UnitName,
    /// Its state now (`idle`, `error`, ...).
    pub agent_status: &'static str,
    /// What an upgrade would do to it.
    pub outcome: UnitOutcome,
    /// The conflicts its merge finds (computed for units in error too).
    pub conflicts: Vec<Conflict>,
    /// Runtime-changed paths the merge would carry over.
    pub runtime_changes: usize,
}

/// What `preview-upgrade` reports.
#[derive(Debug, Serialize)]
pub struct PreviewReport {
    /// The application.
    pub application: AppName,
    /// Its charm.
    pub from: CharmSummary,
    /// The charm previewed.
    pub to: CharmSummary,
    /// Whether the application-level check passes.
    pub compatible: bool,
    /// The refusal, when it does not.
    pub refusal: Option<String>,
    /// The settings conversion.
    pub settings: SettingsReport,
    /// Per unit.
    pub units: Vec<UnitPreview>,
}

/// `preview-upgrade APP CHARM`: the report of an upgrade, changing nothing. A charm path is
/// ingested into a throwaway state root, never the real store; units are read without
/// locking or recovering them.
pub fn preview(
    runner: &Runner,
    app_name: &AppName,
    charm: &str,
    switch: bool,
) -> Result<PreviewReport, RunnerError> {
    let root = runner.root();
    let app = AppRecord::load(root, app_name)?;
    let current = runner.charm(&app.charm, app_name.as_str())?;
    let scratch = tempfile::Builder::new()
        .prefix("hookbox-preview-")
        .tempdir()
        .map_err(RunnerError::io(
            "create a directory in",
            std::env::temp_dir(),
        ))?;
    let (new, new_listing) = load_preview_charm(runner, charm, scratch.path())?;
    let refusal = check_compatible(&app, &current.files.metadata, &new.files.metadata, switch)
        .err()
        .map(|e| e.to_string());
    let settings = convert_settings(
        &current.files.config,
        &new.files.config,
        &app.settings_for(&app.charm),
    );
    let store = CharmStore::new(root);
    let mut units = Vec::new();
    for name in app.unit_names() {
        let journal = Unit::peek(root, &name)?;
        let runtime = UnitRuntime::load(root, &name)?;
        let paths = crate::model::UnitPaths::new(root, &name);
        let mut sources: Vec<PathBuf> = journal.layers.iter().map(|id| paths.layer(id)).collect();
        if journal.operator && paths.operator_dir().is_dir() {
            sources.insert(0, paths.operator_dir());
        }
        let old = store.listing(&runtime.charm)?;
        let diff = flatten_layers(&sources, OverlayXattrs::User)?;
        let (conflicts, runtime_changes) = match merge(&old, &diff, &new_listing) {
            MergeOutcome::Merged(merged) => (Vec::new(), merged.len()),
            MergeOutcome::Conflicts(conflicts) => (conflicts, diff.len()),
        };
        let outcome = if runtime.charm == new.record.digest
            && !matches!(
                journal.state,
                UnitState::Error {
                    error: ErrorKind::Upgrade { .. }
                }
            ) {
            UnitOutcome::Current
        } else if matches!(journal.state, UnitState::Error { .. }) {
            UnitOutcome::Deferred
        } else if conflicts.is_empty() {
            UnitOutcome::Upgraded
        } else {
            UnitOutcome::Conflicts
        };
        units.push(UnitPreview {
            unit: name,
            agent_status: journal.state.agent_status(),
            outcome,
            conflicts,
            runtime_changes,
        });
    }
    Ok(PreviewReport {
        application: app_name.clone(),
        from: summary(&current),
        to: summary(&new),
        compatible: refusal.is_none(),
        refusal,
        settings,
        units,
    })
}

/// The previewed charm: a stored digest from the store, a path ingested into `scratch`.
fn load_preview_charm(
    runner: &Runner,
    given: &str,
    scratch: &Path,
) -> Result<(Arc<LoadedCharm>, Listing), RunnerError> {
    let path = Path::new(given);
    if std::fs::symlink_metadata(path).is_err() {
        let hex = given.strip_prefix("sha256-").unwrap_or(given);
        let store = CharmStore::new(runner.root());
        return match CharmDigest::parse(hex) {
            Some(digest) if store.contains(&digest) => {
                Ok((runner.charm(&digest, "preview")?, store.listing(&digest)?))
            }
            _ => Err(RunnerError::UnknownCharm {
                given: given.to_owned(),
            }),
        };
    }
    let scratch_root = StateRoot::at(scratch.join("root"));
    let report = crate::charm::ingest::ingest(
        &scratch_root,
        path,
        &crate::charm::ingest::Limits::default(),
    )?;
    let store = CharmStore::new(&scratch_root);
    let missing = || RunnerError::MissingCharm {
        digest: report.digest.clone(),
        owner: "preview".to_owned(),
    };
    let record = store.record(&report.digest)?.ok_or_else(missing)?;
    let tree = store.tree_path(&report.digest);
    let files = Metadata::load(&tree, &YamlLimits::default())?;
    let listing = store.listing(&report.digest)?;
    Ok((
        Arc::new(LoadedCharm {
            record,
            files,
            tree,
        }),
        listing,
    ))
}
