//! Unit lifecycles built from hook runs: deploy, add-unit, remove-unit, remove, config,
//! resolved. Hooks of different units run in parallel (one OS thread with its own
//! single-threaded tokio runtime per worker, at most `parallel` workers); the hooks of one
//! unit run strictly in order, under the unit's lock. What a unit still has to run is its
//! queue ([`UnitRuntime::queue`]): a unit stops at its first failed hook, keeps the rest
//! queued, and runs them once resolved.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::charm::ingest::{self, Limits};
use crate::charm::{ConfigValue, HookName};
use crate::model::history::{self, RecordKind};
use crate::model::runtime::{AppLock, AppRuntime, QueuedHook, RunSettings, UnitRuntime};
use crate::model::{
    AppName, AppRecord, HistoryRecord, Timestamp, Unit, UnitError, UnitName, UnitPaths,
};
use crate::store::charms::CharmStore;
use crate::store::digest::CharmDigest;

use super::hook_run::{HookReport, HookRequest, Runner, open_unit, random_u63, resolution_pending};
use super::{RunnerError, relations};

/// Prints (or otherwise reports) what a command waits for.
pub type WaitNotice<'a> = &'a (dyn Fn(&str) + Sync);

/// What happened to one unit in a lifecycle step.
#[derive(Debug, Serialize)]
pub struct UnitReport {
    /// The unit.
    pub unit: UnitName,
    /// The hooks that ran, in order.
    pub runs: Vec<HookReport>,
    /// Hooks still queued (after a failure).
    pub queued: Vec<String>,
    /// Why the unit could not run its hooks (not a hook failure: e.g. the sandbox).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the unit is in error now.
    pub in_error: bool,
    /// The unit's error when it is in error, e.g. `{"kind": "hook", "hook": "start"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_error: Option<crate::model::ErrorKind>,
    /// The exit class of `error`, when there is one.
    #[serde(skip)]
    pub error_status: Option<crate::exit::ExitStatus>,
}

impl UnitReport {
    /// Takes in a later report of the same unit: its runs follow ours, its state replaces
    /// ours, and its error (if any) replaces ours.
    pub(crate) fn absorb(&mut self, later: UnitReport) {
        self.runs.extend(later.runs);
        self.queued = later.queued;
        self.in_error = later.in_error;
        self.unit_error = later.unit_error;
        if later.error.is_some() {
            self.error = later.error;
            self.error_status = later.error_status;
        }
    }

    /// Whether a hook ran or something failed.
    fn did_something(&self) -> bool {
        !self.runs.is_empty() || self.error.is_some()
    }

    pub(crate) fn new(unit: &UnitName) -> Self {
        Self {
            unit: unit.clone(),
            runs: Vec::new(),
            queued: Vec::new(),
            error: None,
            in_error: false,
            unit_error: None,
            error_status: None,
        }
    }

    /// Records whether `unit` is in error now, and its error.
    pub(crate) fn note_state(&mut self, unit: &Unit) {
        self.unit_error = unit.error().cloned();
        self.in_error = self.unit_error.is_some();
    }

    fn failed_with(mut self, error: RunnerError) -> Self {
        use crate::exit::ClassifyExit;
        self.error_status = Some(error.exit_status());
        self.error = Some(crate::exit::error_chain(&error));
        self
    }
}

/// Runs `work` for every unit, at most `parallel` at a time, each worker on its own thread
/// with a single-threaded tokio runtime. Results come back in the order of `units`.
pub fn for_each_unit<T: Send>(
    units: &[UnitName],
    parallel: usize,
    work: impl Fn(&UnitName, &tokio::runtime::Runtime) -> T + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<T>>> =
        std::sync::Mutex::new(units.iter().map(|_| None).collect());
    let workers = parallel.clamp(1, units.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a single-threaded tokio runtime builds");
                loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    let Some(unit) = units.get(index) else { break };
                    let result = work(unit, &runtime);
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every unit was processed"))
        .collect()
}

/// Runs the unit's queue in order until it is empty or a hook fails.
pub async fn run_queue(
    runner: &Runner,
    unit: &mut Unit,
    report: &mut UnitReport,
    stream: bool,
) -> Result<(), RunnerError> {
    let root = runner.root();
    let name = unit.name().clone();
    account_for_last_commit(root, unit)?;
    loop {
        relations::drain_inbox(root, &name)?;
        let mut runtime = UnitRuntime::load(root, &name)?;
        let Some(queued) = runtime.queue.first().cloned() else {
            break;
        };
        if unit.error().is_some() {
            break;
        }
        let request = relations::request_for(&queued, stream);
        let run = runner.run_hook(unit, &request).await?;
        let ok = run.succeeded();
        report.runs.push(run);
        if !ok {
            break;
        }
        crate::model::journal::failpoint(crate::model::journal::failpoints::QUEUE_BEFORE_POP);
        runtime = UnitRuntime::load(root, &name)?;
        runtime.queue.remove(0);
        relations::complete(&mut runtime, &queued);
        runtime.accounted = last_commit(unit).map(|(context_id, _)| context_id);
        runtime.save(root, &name)?;
    }
    report.queued = queued_names(&UnitRuntime::load(root, &name)?);
    report.note_state(unit);
    Ok(())
}

/// The context id and hook of the unit's last commit when it ran from the queue, from the
/// journal's record of what the commit left to apply (kept until the next run starts; its
/// shape is the runner's pending effects: `context_id`, the history `record`, `from_queue`).
fn last_commit(unit: &Unit) -> Option<(String, String)> {
    let value = unit.journal().unapplied.as_ref()?;
    if value.get("from_queue").and_then(serde_json::Value::as_bool) == Some(false) {
        // A hook fired by `run`: the queue has nothing to account for.
        return None;
    }
    let context_id = value.get("context_id")?.as_str()?.to_owned();
    let hook = value.get("record")?.get("hook")?.as_str()?.to_owned();
    Some((context_id, hook))
}

/// Makes the queue account for the unit's last commit, once: a committed run of the queue
/// head whose removal from the queue was lost (the process was killed between the commit
/// and the queue write) is removed now instead of running again. Called under the unit's
/// lock before anything adds to the queue or runs a hook (a new run drops the record of
/// the last commit); a no-op without writes when the queue accounted for it already.
pub(crate) fn account_for_last_commit(
    root: &crate::store::StateRoot,
    unit: &Unit,
) -> Result<(), RunnerError> {
    let Some((context_id, hook)) = last_commit(unit) else {
        return Ok(());
    };
    let name = unit.name();
    let mut runtime = UnitRuntime::load(root, name)?;
    if runtime.accounted.as_deref() == Some(context_id.as_str()) {
        return Ok(());
    }
    if runtime.queue.first().is_some_and(|q| q.hook == hook) {
        let done = runtime.queue.remove(0);
        relations::complete(&mut runtime, &done);
        tracing::warn!(unit = %name, hook, context_id, "removed a committed hook left at the head of the queue by a killed process");
    }
    runtime.accounted = Some(context_id);
    runtime.save(root, name)?;
    Ok(())
}

/// The single-threaded tokio runtime one unit's hook runs (and their tool servers) use.
pub(crate) fn unit_runtime(unit: &Unit) -> Result<tokio::runtime::Runtime, RunnerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunnerError::io(
            "start the async runtime for",
            unit.paths().dir(),
        ))
}

/// The queue as reports show it: hook names.
pub(crate) fn queued_names(runtime: &UnitRuntime) -> Vec<String> {
    runtime.queue.iter().map(|q| q.hook.clone()).collect()
}

/// Adds `hooks` to the unit's queue and runs it (locks the unit; recovers it first).
pub(crate) fn queue_and_run(
    runner: &Runner,
    unit_name: &UnitName,
    hooks: &[QueuedHook],
    runtime: &tokio::runtime::Runtime,
    on_wait: WaitNotice<'_>,
) -> UnitReport {
    let mut report = UnitReport::new(unit_name);
    let result = (|| -> Result<(), RunnerError> {
        let (mut unit, _) = open_unit(runner.root(), unit_name, on_wait)?;
        account_for_last_commit(runner.root(), &unit)?;
        let mut state = UnitRuntime::load(runner.root(), unit_name)?;
        for hook in hooks {
            if !state.queue.contains(hook) {
                state.queue.push(hook.clone());
            }
        }
        state.save(runner.root(), unit_name)?;
        let result = runtime.block_on(run_queue(runner, &mut unit, &mut report, false));
        report.note_state(&unit);
        if result.is_err() {
            // The queue as it stands names the hook that could not run.
            report.queued = queued_names(&UnitRuntime::load(runner.root(), unit_name)?);
        }
        result
    })();
    match result {
        Ok(()) => report,
        Err(error) => report.failed_with(error),
    }
}

/// A stored charm's identity, as status and deploy report it.
#[derive(Debug, Clone, Serialize)]
pub struct CharmSummary {
    /// Its name.
    pub name: String,
    /// Its revision, when it has one.
    pub revision: Option<u64>,
    /// Its digest.
    pub digest: CharmDigest,
}

/// What `deploy` did.
#[derive(Debug, Serialize)]
pub struct DeployReport {
    /// The application.
    pub application: AppName,
    /// Its charm.
    pub charm: CharmSummary,
    /// `deployed`; `unchanged` when the application already runs this charm (rule 14);
    /// `resumed` when it does but a killed deploy left units with hooks to run.
    pub outcome: &'static str,
    /// The units and their hooks.
    pub units: Vec<UnitReport>,
}

/// What `deploy` is asked to do.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    /// A charm path, or the digest of a stored charm (`sha256-<hex>` or `<hex>`).
    pub charm: String,
    /// The application name.
    pub app: AppName,
    /// How many units.
    pub units: u32,
    /// `--config K=V` pairs.
    pub config: Vec<(String, String)>,
    /// Network, timeout and resource limits of the application's hooks.
    pub run: RunSettings,
    /// How many units run hooks at once.
    pub parallel: usize,
}

/// Resolves a charm argument to a stored charm: a path is ingested (a no-op when already
/// stored), anything else must be a stored digest.
pub fn resolve_charm(runner: &Runner, given: &str) -> Result<CharmDigest, RunnerError> {
    let path = Path::new(given);
    if std::fs::symlink_metadata(path).is_ok() {
        let report = ingest::ingest(runner.root(), path, &Limits::default())?;
        return Ok(report.digest);
    }
    let hex = given.strip_prefix("sha256-").unwrap_or(given);
    let store = CharmStore::new(runner.root());
    match CharmDigest::parse(hex) {
        Some(digest) if store.contains(&digest) => Ok(digest),
        _ => Err(RunnerError::UnknownCharm {
            given: given.to_owned(),
        }),
    }
}

fn summary(
    runner: &Runner,
    digest: &CharmDigest,
    owner: &str,
) -> Result<CharmSummary, RunnerError> {
    let charm = runner.charm(digest, owner)?;
    Ok(CharmSummary {
        name: charm.record.name.clone(),
        revision: charm.record.revision,
        digest: digest.clone(),
    })
}

/// `deploy`: stores the charm, creates the application and its units, and runs install,
/// leader-elected (leader only), config-changed and start on every unit (rule 4). The same
/// charm deployed again under the same name changes nothing (rule 14).
pub fn deploy(
    runner: &Runner,
    request: &DeployRequest,
    on_wait: WaitNotice<'_>,
) -> Result<DeployReport, RunnerError> {
    let root = runner.root();
    let digest = resolve_charm(runner, &request.charm)?;
    let charm = runner.charm(&digest, request.app.as_str())?;
    let mut settings = BTreeMap::new();
    for (key, raw) in &request.config {
        let value = charm.files.config.validate_setting(key, raw)?;
        settings.insert(key.clone(), config_json(&value));
    }
    let _lock = AppLock::acquire(root, &request.app, on_wait)?;
    match AppRecord::load(root, &request.app) {
        Ok(mut existing) if existing.charm == digest => {
            if reconcile_units(root, &mut existing)? {
                existing.save(root)?;
            }
            drop(_lock);
            // A deploy that was killed mid-way: its units finish their queues.
            let unfinished: Vec<UnitName> = existing
                .unit_names()
                .into_iter()
                .filter(|unit| has_work(root, unit))
                .collect();
            if unfinished.is_empty() {
                tracing::info!(app = %request.app, "same charm deployed again: nothing to do");
                return Ok(DeployReport {
                    application: request.app.clone(),
                    charm: summary(runner, &digest, request.app.as_str())?,
                    outcome: "unchanged",
                    units: Vec::new(),
                });
            }
            tracing::info!(app = %request.app, units = unfinished.len(), "same charm deployed again: resuming the units' queues");
            let mut reports = for_each_unit(&unfinished, request.parallel, |unit, runtime| {
                queue_and_run(runner, unit, &[], runtime, on_wait)
            });
            merge_reports(
                &mut reports,
                relations::settle(runner, request.parallel, on_wait)?,
            );
            return Ok(DeployReport {
                application: request.app.clone(),
                charm: summary(runner, &digest, request.app.as_str())?,
                outcome: "resumed",
                units: reports,
            });
        }
        Ok(existing) => {
            return Err(RunnerError::AppHasOtherCharm {
                app: request.app.to_string(),
                current: existing.charm,
                given: digest,
            });
        }
        Err(UnitError::UnknownApp { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut app = AppRecord::new(request.app.clone(), digest.clone());
    if !settings.is_empty() {
        app.settings.insert(digest.clone(), settings);
    }
    relations::create_peer_relations(root, &mut app, &charm.files.metadata)?;
    let units: Vec<UnitName> = (0..request.units).map(|_| app.add_unit()).collect();
    AppRuntime {
        run: request.run,
        ..AppRuntime::default()
    }
    .save(root, &request.app)?;
    // The units first, then the record that names them: a unit the record names always
    // exists (a kill in between leaves unnamed unit directories, removed by the next
    // deploy or add-unit).
    create_units(root, &app, &units)?;
    crate::model::journal::failpoint(crate::model::journal::failpoints::UNITS_BEFORE_APP_RECORD);
    app.create(root)?;
    tracing::info!(app = %request.app, charm = %digest, units = units.len(), "application deployed");
    let leader = app.leader;
    drop(_lock);
    let mut reports = for_each_unit(&units, request.parallel, |unit, runtime| {
        queue_and_run(
            runner,
            unit,
            &relations::start_queue(root, &app, unit, leader == Some(unit.number())),
            runtime,
            on_wait,
        )
    });
    merge_reports(
        &mut reports,
        relations::settle(runner, request.parallel, on_wait)?,
    );
    Ok(DeployReport {
        application: request.app.clone(),
        charm: summary(runner, &digest, request.app.as_str())?,
        outcome: "deployed",
        units: reports,
    })
}

/// Creates `units` of `app` (the caller holds the application lock and has not yet saved
/// a record naming them): the runtime state, then the journal, which makes the unit exist.
/// A directory left by a killed deploy or add-unit under one of these names is removed
/// first.
fn create_units(
    root: &crate::store::StateRoot,
    app: &AppRecord,
    units: &[UnitName],
) -> Result<(), RunnerError> {
    for unit in units {
        remove_unit_dir(root, unit)?;
        let mut runtime = UnitRuntime::new(app.charm.clone());
        relations::enter_scopes(&mut runtime, app);
        crate::store::StateRoot::ensure_dir(root, &root.units_dir())?;
        crate::store::StateRoot::ensure_dir(root, UnitPaths::new(root, unit).dir())?;
        runtime.save(root, unit)?;
        drop(Unit::create(root, unit)?);
    }
    Ok(())
}

/// Removes the directory of a unit no application record names (nothing when absent, or
/// when another process holds its lock).
fn remove_unit_dir(root: &crate::store::StateRoot, unit: &UnitName) -> Result<(), RunnerError> {
    let paths = UnitPaths::new(root, unit);
    let dir = paths.dir().to_owned();
    if std::fs::symlink_metadata(&dir).is_err() {
        return Ok(());
    }
    let Ok(lock) = crate::model::UnitLock::try_acquire(unit, &paths.lock_file()) else {
        return Ok(());
    };
    tracing::warn!(unit = %unit, "removing the directory of a unit its application does not name (a killed deploy, add-unit or removal)");
    crate::store::fsops::remove_tree(&dir).map_err(crate::store::StoreError::from)?;
    drop(lock);
    Ok(())
}

/// Makes `app` (loaded under its lock) and its units' directories agree after a killed
/// command: a named unit without a journal is forgotten, a unit directory the record does
/// not name is removed. Returns whether the record changed (the caller saves it).
fn reconcile_units(
    root: &crate::store::StateRoot,
    app: &mut AppRecord,
) -> Result<bool, RunnerError> {
    let mut changed = false;
    for unit in app.unit_names() {
        if !UnitPaths::new(root, &unit).state_file().exists() {
            tracing::warn!(unit = %unit, "forgetting a unit whose state is gone");
            app.units.retain(|n| *n != unit.number());
            changed = true;
        }
    }
    if changed {
        elect_leader(root, app, true)?;
    }
    let prefix = format!("{}-", app.name);
    let units_dir = root.units_dir();
    let entries = match std::fs::read_dir(&units_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(changed),
        Err(e) => return Err(RunnerError::io("read directory", &units_dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(RunnerError::io("read directory", &units_dir))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !app.units.contains(&number) {
            remove_unit_dir(root, &UnitName::new(app.name.clone(), number))?;
        }
    }
    Ok(changed)
}

/// Whether a unit not in error has hooks queued (a deploy or other command killed before
/// it ran them all).
fn has_work(root: &crate::store::StateRoot, unit: &UnitName) -> bool {
    let idle = Unit::peek(root, unit)
        .is_ok_and(|j| !matches!(j.state, crate::model::UnitState::Error { .. }));
    idle && UnitRuntime::load(root, unit).is_ok_and(|r| !r.queue.is_empty())
}

/// Adds the runs of `more` (units that ran hooks posted to them) to the reports of the same
/// units in `reports`, and appends the reports of other units (of related applications)
/// that ran or failed something: a command reports every hook it caused.
pub(crate) fn merge_reports(reports: &mut Vec<UnitReport>, more: Vec<UnitReport>) {
    for report in more {
        if let Some(existing) = reports.iter_mut().find(|r| r.unit == report.unit) {
            existing.absorb(report);
        } else if report.did_something() {
            // A unit of another application whose relation hooks the command caused.
            reports.push(report);
        }
    }
}

/// The reports of `settled` that ran or failed something.
fn ran_something(settled: Vec<UnitReport>) -> Vec<UnitReport> {
    settled
        .into_iter()
        .filter(UnitReport::did_something)
        .collect()
}

fn config_json(value: &ConfigValue) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// `add-unit`: `count` more units of `app` on its current charm, each started like a deploy.
pub fn add_units(
    runner: &Runner,
    app_name: &AppName,
    count: u32,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<Vec<UnitReport>, RunnerError> {
    let root = runner.root();
    let lock = AppLock::acquire(root, app_name, on_wait)?;
    let mut app = AppRecord::load(root, app_name)?;
    if reconcile_units(root, &mut app)? {
        app.save(root)?;
    }
    let had_leader = app.leader;
    let units: Vec<UnitName> = (0..count).map(|_| app.add_unit()).collect();
    create_units(root, &app, &units)?;
    crate::model::journal::failpoint(crate::model::journal::failpoints::UNITS_BEFORE_APP_RECORD);
    app.save(root)?;
    drop(lock);
    let leader = app.leader.filter(|_| had_leader.is_none());
    let mut reports = for_each_unit(&units, parallel, |unit, runtime| {
        queue_and_run(
            runner,
            unit,
            &relations::start_queue(root, &app, unit, leader == Some(unit.number())),
            runtime,
            on_wait,
        )
    });
    relations::announce_new_units(root, &app, &units)?;
    merge_reports(&mut reports, relations::settle(runner, parallel, on_wait)?);
    Ok(reports)
}

/// What removing a unit did.
#[derive(Debug, Serialize)]
pub struct RemoveReport {
    /// The unit and the hooks it ran (stop, remove).
    #[serde(flatten)]
    pub unit: UnitReport,
    /// Whether the unit and its layers are gone.
    pub removed: bool,
    /// Hooks the removal caused on other units (departed, leader-elected), by unit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<UnitReport>,
}

/// Stops and removes one unit: runs stop then remove (no application lock is held: a hook
/// may call tools that take it), drops the unit from its application record (taking the
/// application lock under the unit lock: unit, then application, the order of every
/// command), then deletes its layers and state. A unit already in error runs no hook and
/// is removed; a hook that fails here leaves the unit in error and in place. `hand_over`:
/// see [`forget_unit`].
fn remove_one(
    runner: &Runner,
    name: &UnitName,
    runtime: &tokio::runtime::Runtime,
    on_wait: WaitNotice<'_>,
    hand_over: bool,
) -> RemoveReport {
    let mut report = UnitReport::new(name);
    let result = (|| -> Result<bool, RunnerError> {
        let (mut unit, _) = open_unit(runner.root(), name, on_wait)?;
        account_for_last_commit(runner.root(), &unit)?;
        if unit.error().is_none() {
            let mut state = UnitRuntime::load(runner.root(), name)?;
            state.queue = relations::leaving_hooks(&state, name);
            state.queue.push("stop".into());
            state.queue.push("remove".into());
            state.save(runner.root(), name)?;
            runtime.block_on(run_queue(runner, &mut unit, &mut report, false))?;
            if unit.error().is_some() {
                return Ok(false);
            }
        } else {
            tracing::warn!(unit = %name, "unit is in error: removed without running stop and remove");
        }
        relations::announce_departure(runner.root(), name)?;
        forget_unit(runner.root(), name, on_wait, hand_over)?;
        crate::model::journal::failpoint(crate::model::journal::failpoints::REMOVE_AFTER_FORGET);
        unit.remove()?;
        Ok(true)
    })();
    match result {
        Ok(removed) => RemoveReport {
            unit: report,
            removed,
            also: Vec::new(),
        },
        Err(e) => RemoveReport {
            unit: report.failed_with(e),
            removed: false,
            also: Vec::new(),
        },
    }
}

/// `remove-unit`. No application lock is held while hooks run.
pub fn remove_unit(
    runner: &Runner,
    name: &UnitName,
    on_wait: WaitNotice<'_>,
) -> Result<RemoveReport, RunnerError> {
    let root = runner.root();
    let app = AppRecord::load(root, name.app())?;
    if !app.units.contains(&name.number()) {
        return Err(UnitError::UnknownUnit { unit: name.clone() }.into());
    }
    let mut report = for_each_unit(std::slice::from_ref(name), 1, |unit, runtime| {
        remove_one(runner, unit, runtime, on_wait, true)
    })
    .pop()
    .expect("one unit, one report");
    // The new leader runs the leader-elected posted to it, with the other posted hooks.
    report.also = ran_something(relations::settle(runner, default_parallel(), on_wait)?);
    Ok(report)
}

/// Drops a removed unit from its application record, under the application lock (the
/// caller holds the unit's lock, no application lock). When it was the leader, the lowest
/// remaining unit becomes leader; with `hand_over` it has leader-elected posted to run (`remove APP` does not hand over: the other units are being removed too,
/// and would run leader-elected after their remove hook).
fn forget_unit(
    root: &crate::store::StateRoot,
    name: &UnitName,
    on_wait: WaitNotice<'_>,
    hand_over: bool,
) -> Result<(), RunnerError> {
    let _lock = AppLock::acquire(root, name.app(), on_wait)?;
    let mut app = match AppRecord::load(root, name.app()) {
        Ok(app) => app,
        Err(UnitError::UnknownApp { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    app.units.retain(|n| *n != name.number());
    elect_leader(root, &mut app, hand_over)?;
    app.save(root)?;
    Ok(())
}

/// When `app`'s leader is no longer one of its units, makes the lowest remaining unit
/// leader (the caller holds the application lock and saves the record) and returns it.
/// With `hand_over`, leader-elected is posted to its inbox before the record is saved, so
/// a process killed in between leaves the handover to the next command that runs hooks (a
/// post that finds the unit not leader, because the record was never saved, is dropped;
/// see [`relations::drain_inbox`]).
fn elect_leader(
    root: &crate::store::StateRoot,
    app: &mut AppRecord,
    hand_over: bool,
) -> Result<Option<UnitName>, RunnerError> {
    if app.leader.is_some_and(|l| app.units.contains(&l)) {
        return Ok(None);
    }
    app.leader = app.units.first().copied();
    let Some(leader) = app.leader else {
        return Ok(None);
    };
    let leader = UnitName::new(app.name.clone(), leader);
    if hand_over {
        relations::post(root, &leader, &[relations::LEADER_ELECTED.into()])?;
    }
    tracing::info!(unit = %leader, "new leader elected");
    Ok(Some(leader))
}

/// `remove APP`: removes every unit (in parallel), then the application. Units whose stop or
/// remove hook fails stay, and so does the application. No application lock is held while
/// hooks run.
pub fn remove_app(
    runner: &Runner,
    app_name: &AppName,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<Vec<RemoveReport>, RunnerError> {
    let root = runner.root();
    relations::unrelate_all(runner, app_name, parallel, on_wait)?;
    let units = AppRecord::load(root, app_name)?.unit_names();
    let reports = for_each_unit(&units, parallel, |unit, runtime| {
        remove_one(runner, unit, runtime, on_wait, false)
    });
    let _lock = AppLock::acquire(root, app_name, on_wait)?;
    let mut app = AppRecord::load(root, app_name)?;
    if app.units.is_empty() {
        for path in [
            AppRecord::path(root, app_name),
            AppRuntime::path(root, app_name),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RunnerError::io("remove", path)(e)),
            }
        }
        AppLock::remove_file(root, app_name);
        tracing::info!(app = %app_name, "application removed");
    } else if elect_leader(root, &mut app, true)?.is_some() {
        app.save(root)?;
        drop(_lock);
        relations::settle(runner, parallel, on_wait)?;
    }
    Ok(reports)
}

/// One option as `config` shows it.
#[derive(Debug, Serialize)]
pub struct ConfigEntry {
    /// The option's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value hooks see (absent: neither set nor defaulted).
    pub value: Option<serde_json::Value>,
    /// The charm's default.
    pub default: Option<serde_json::Value>,
    /// `user` when the user set it, `default` otherwise.
    pub source: &'static str,
    /// The description.
    pub description: String,
}

/// `config APP`: the application's options with their effective values.
pub fn show_config(
    runner: &Runner,
    app_name: &AppName,
) -> Result<BTreeMap<String, ConfigEntry>, RunnerError> {
    let app = AppRecord::load(runner.root(), app_name)?;
    let charm = runner.charm(&app.charm, app_name.as_str())?;
    let user = app.settings_for(&app.charm);
    Ok(charm
        .files
        .config
        .options
        .iter()
        .map(|(name, option)| {
            let default = option.default.as_ref().map(config_json);
            let set = user.get(name).cloned();
            (
                name.clone(),
                ConfigEntry {
                    kind: option.kind.to_string(),
                    source: if set.is_some() { "user" } else { "default" },
                    value: set.or_else(|| default.clone()),
                    default,
                    description: option.description.clone(),
                },
            )
        })
        .collect())
}

/// What `config APP K=V...` did.
#[derive(Debug, Serialize)]
pub struct ConfigReport {
    /// Whether any setting changed (no change: no hook runs).
    pub changed: bool,
    /// The units that ran config-changed, and the units in error that keep it queued.
    pub units: Vec<UnitReport>,
}

/// `config APP K=V... [--reset K]`: validates every pair against the charm's config.yaml
/// first (a bad one changes nothing), stores the user settings for the application's
/// charm, then runs config-changed on every unit of that charm. A unit in error runs no
/// hook; config-changed stays queued for it and runs once it is resolved.
pub fn set_config(
    runner: &Runner,
    app_name: &AppName,
    pairs: &[(String, String)],
    reset: &[String],
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<ConfigReport, RunnerError> {
    let root = runner.root();
    let lock = AppLock::acquire(root, app_name, on_wait)?;
    let mut app = AppRecord::load(root, app_name)?;
    let charm = runner.charm(&app.charm, app_name.as_str())?;
    let mut settings = app.settings_for(&app.charm);
    let before = settings.clone();
    for (key, raw) in pairs {
        let value = charm.files.config.validate_setting(key, raw)?;
        settings.insert(key.clone(), config_json(&value));
    }
    for key in reset {
        if !charm.files.config.options.contains_key(key) {
            return Err(crate::charm::CharmError::UnknownOption {
                option: key.clone(),
            }
            .into());
        }
        settings.remove(key);
    }
    if settings == before {
        return Ok(ConfigReport {
            changed: false,
            units: Vec::new(),
        });
    }
    if settings.is_empty() {
        app.settings.remove(&app.charm);
    } else {
        app.settings.insert(app.charm.clone(), settings);
    }
    app.save(root)?;
    drop(lock);
    let units: Vec<UnitName> = app
        .unit_names()
        .into_iter()
        .filter(|u| UnitRuntime::load(root, u).is_ok_and(|r| r.charm == app.charm))
        .collect();
    let reports = for_each_unit(&units, parallel, |unit, runtime| {
        queue_and_run(runner, unit, &["config-changed".into()], runtime, on_wait)
    });
    let mut reports = reports;
    merge_reports(&mut reports, relations::settle(runner, parallel, on_wait)?);
    Ok(ConfigReport {
        changed: true,
        units: reports,
    })
}

/// What `resolved` did.
#[derive(Debug, Serialize)]
pub struct ResolveReport {
    /// The error that was resolved, as text.
    pub resolved: String,
    /// Whether the failed hook was retried.
    pub retry: bool,
    /// The runs (the retry, then the queued hooks).
    #[serde(flatten)]
    pub unit: UnitReport,
    /// Hooks the resolution caused on other units (relation hooks), by unit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<UnitReport>,
}

/// `resolved UNIT [--retry]` (rule 6). Without retry the operator layer is committed and the
/// unit goes on as though the hook had succeeded; with retry the failed hook runs again over
/// the pre-hook state plus the operator layer. Then the queued hooks run. A unit that is
/// not in error is refused.
pub fn resolve(
    runner: &Runner,
    name: &UnitName,
    retry: bool,
    stream: bool,
    on_wait: WaitNotice<'_>,
) -> Result<ResolveReport, RunnerError> {
    let root = runner.root();
    let (mut unit, _) = open_unit(root, name, on_wait)?;
    let Some(error) = unit.error().cloned() else {
        return Err(UnitError::NotInError { unit: name.clone() }.into());
    };
    if let crate::model::ErrorKind::Upgrade { .. } = error {
        return super::upgrade::resolve_conflict(runner, &mut unit, retry, stream);
    }
    let failed_hook = match &error {
        crate::model::ErrorKind::Hook { hook } => Some(hook.clone()),
        crate::model::ErrorKind::Upgrade { .. } => None,
    };
    let mut report = UnitReport::new(name);
    let runtime = unit_runtime(&unit)?;
    if retry {
        history::append(
            &unit.paths().history_file(),
            &HistoryRecord {
                kind: RecordKind::Retry,
                hook: failed_hook.clone().unwrap_or_default(),
                outcome: None,
                exit_code: None,
                signal: None,
                reason: None,
                context_id: None,
                charm_revision: None,
                started: Timestamp::now(),
                duration_ms: 0,
                layer: None,
            },
        )?;
        let head = UnitRuntime::load(root, name)?.queue.first().cloned();
        let request = HookRequest {
            retry: true,
            stream,
            relation: head
                .filter(|q| Some(&q.hook) == failed_hook.as_ref())
                .and_then(|q| relations::request_for(&q, stream).relation),
            ..HookRequest::default()
        };
        let run = runtime.block_on(runner.run_hook(&mut unit, &request))?;
        let ok = run.succeeded();
        report.runs.push(run);
        if !ok {
            report.note_state(&unit);
            report.queued = queued_names(&UnitRuntime::load(root, name)?);
            return Ok(ResolveReport {
                resolved: error.to_string(),
                retry,
                unit: report,
                also: Vec::new(),
            });
        }
    } else {
        let started = Timestamp::now();
        let mut record = HistoryRecord {
            kind: RecordKind::Resolved,
            hook: failed_hook.clone().unwrap_or_default(),
            outcome: None,
            exit_code: None,
            signal: None,
            reason: None,
            context_id: Some(format!("{name}-resolved-{}", random_u63())),
            charm_revision: None,
            started,
            duration_ms: 0,
            layer: None,
        };
        // The commit carries the history line: a process killed after it has the line
        // written and the failed hook taken off the queue by the next command on the unit.
        let (_, layer) = unit.resolve(|layer| {
            record.layer = layer;
            resolution_pending(&record)
        })?;
        crate::model::journal::failpoint(crate::model::journal::failpoints::RESOLVE_BEFORE_POP);
        record.duration_ms = started.elapsed().as_millis() as u64;
        record.layer = layer;
        history::append(&unit.paths().history_file(), &record)?;
    }
    let mut state = UnitRuntime::load(root, name)?;
    if let Some(hook) = &failed_hook
        && state.queue.first().map(|q| &q.hook) == Some(hook)
    {
        let done = state.queue.remove(0);
        relations::complete(&mut state, &done);
        state.accounted = last_commit(&unit).map(|(context_id, _)| context_id);
        state.save(root, name)?;
    }
    runtime.block_on(run_queue(runner, &mut unit, &mut report, stream))?;
    super::upgrade::apply_pending(runner, &mut unit, &mut report, &runtime, stream)?;
    drop(unit);
    let mut reports = vec![report];
    merge_reports(
        &mut reports,
        relations::settle(runner, default_parallel(), on_wait)?,
    );
    let report = reports.remove(0);
    Ok(ResolveReport {
        resolved: error.to_string(),
        retry,
        unit: report,
        also: reports,
    })
}

/// What `run` did.
#[derive(Debug, Serialize)]
pub struct FireReport {
    /// The hook or action that was fired.
    #[serde(flatten)]
    pub run: HookReport,
    /// Hooks it caused, on this unit or others (relation hooks after a `relation-set`),
    /// by unit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<UnitReport>,
}

/// `run UNIT HOOK`: fires one event (any hook valid for the unit's charm, or an action).
pub fn run_one(
    runner: &Runner,
    name: &UnitName,
    request: &HookRequest,
    on_wait: WaitNotice<'_>,
) -> Result<FireReport, RunnerError> {
    let (mut unit, _) = open_unit(runner.root(), name, on_wait)?;
    account_for_last_commit(runner.root(), &unit)?;
    let state = UnitRuntime::load(runner.root(), name)?;
    let charm = runner.charm(&state.charm, &name.to_string())?;
    HookName::parse(&request.hook, &charm.files.metadata)?;
    let runtime = unit_runtime(&unit)?;
    let run = runtime.block_on(runner.run_hook(&mut unit, request))?;
    drop(unit);
    let also = ran_something(relations::settle(runner, default_parallel(), on_wait)?);
    Ok(FireReport { run, also })
}

/// The number of CPUs (how many units run hooks at once when the command does not say).
pub fn default_parallel() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
