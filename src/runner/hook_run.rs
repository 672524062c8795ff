//! One hook run of one unit, from an open (locked, recovered) [`Unit`] to a committed or
//! discarded layer, applied or dropped effects, a history line and log lines.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::charm::{CharmFiles, HookKind, HookName, Metadata, YamlLimits};
use crate::model::history::{self, Outcome, RecordKind};
use crate::model::runtime::{AppRuntime, UnitRuntime};
use crate::model::{AppRecord, HistoryRecord, Recovery, Timestamp, Unit, UnitError, UnitName};
use crate::sandbox::{self, BindMount, HandlerLookup, Lower, RunOptions, SandboxSpec};
use crate::store::charms::{CharmRecord, CharmStore};
use crate::store::digest::CharmDigest;
use crate::store::{StateRoot, atomic};
use crate::tools::context::{ActionEffects, HookEffects};

use super::RunnerError;
use super::context::{self, ContextInputs, EnvInputs, RelationTarget};
use super::output_log;
use super::tool_server::{self, ToolServer};

/// A stored charm, loaded once per process.
#[derive(Debug)]
pub struct LoadedCharm {
    /// Its `charm.json`.
    pub record: CharmRecord,
    /// Its metadata, config and revision.
    pub files: CharmFiles,
    /// Its tree (the charm base layer).
    pub tree: PathBuf,
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    /// The hook or action name (ignored for a retry: the failed hook runs again).
    pub hook: String,
    /// `resolved --retry`: rerun the failed hook over the operator layer.
    pub retry: bool,
    /// The relation of a relation hook.
    pub relation: Option<RelationTarget>,
    /// Action parameters.
    pub action_params: BTreeMap<String, serde_json::Value>,
    /// Copy the handler's output to ours as it arrives.
    pub stream: bool,
    /// The hook is the head of the unit's queue: once it commits, the queue drops it (see
    /// `lifecycle::account_for_last_commit`). Hooks fired by `run` are not.
    pub from_queue: bool,
}

/// How one run ended.
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    /// The unit.
    pub unit: UnitName,
    /// The history line written for it.
    #[serde(flatten)]
    pub record: HistoryRecord,
    /// An action's results, failure and messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionEffects>,
}

impl HookReport {
    /// Whether the run succeeded (`ok` or `missing`).
    pub fn succeeded(&self) -> bool {
        self.record.outcome != Some(Outcome::Failed)
    }
}

/// What a successful run leaves to apply after its commit. The commit's journal write
/// carries it ([`crate::model::Journal::unapplied`]); the run's history line, appended once
/// the effects are applied, marks it done. A process killed in between is finished by the
/// next command on the unit (see [`open_unit`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingEffects {
    context_id: String,
    effects: HookEffects,
    record: HistoryRecord,
    /// The run was the queue's head ([`HookRequest::from_queue`]); absent in journals
    /// written before it was recorded, which are read as queued (the old behaviour).
    #[serde(default = "queued_by_default")]
    from_queue: bool,
}

fn queued_by_default() -> bool {
    true
}

/// What a resolution (`resolved` without retry) leaves to finish after its commit, in the
/// shape of a run's pending effects (none): its history line, whose `context_id` marks it
/// done, and whose hook is the failed hook the queue drops (see
/// `lifecycle::account_for_last_commit`).
pub(crate) fn resolution_pending(record: &HistoryRecord) -> Option<serde_json::Value> {
    let pending = PendingEffects {
        context_id: record.context_id.clone()?,
        effects: HookEffects::default(),
        record: record.clone(),
        from_queue: true,
    };
    serde_json::to_value(&pending).ok()
}

/// Where a hook run lists its v2 cgroup while it runs (see `sandbox::remove_stale_cgroups`).
fn cgroup_record(unit_dir: &std::path::Path) -> std::path::PathBuf {
    unit_dir.join("run-cgroups.json")
}

/// Opens a unit (waiting for its lock; `on_wait` gets what it waits for), recovers it, and
/// finishes what a killed runner left: the effects of a committed hook whose history line is
/// missing are applied (applying is a replacement, so a repeat is harmless) and its line is
/// written; those of a hook that did not commit were never recorded. The cgroups of a hook
/// interrupted mid-run are removed.
pub fn open_unit(
    root: &StateRoot,
    name: &UnitName,
    on_wait: impl FnOnce(&str),
) -> Result<(Unit, Recovery), RunnerError> {
    let (unit, recovery) = Unit::open(root, name, on_wait)?;
    if let Some(interrupted) = &recovery.interrupted_hook {
        // Its runner was killed before it removed the run's cgroups (the run id is the
        // context id).
        sandbox::remove_stale_cgroups(&cgroup_record(unit.paths().dir()), &interrupted.context_id);
    }
    if let Some(value) = &recovery.unapplied {
        finish_unapplied(root, &unit, value)?;
    }
    Ok((unit, recovery))
}

/// Applies the effects of the last commit unless its history line says they were.
fn finish_unapplied(
    root: &StateRoot,
    unit: &Unit,
    value: &serde_json::Value,
) -> Result<(), RunnerError> {
    let name = unit.name();
    let pending = match serde_json::from_value::<PendingEffects>(value.clone()) {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(unit = %name, error = %e, "unreadable effects of the last commit dropped");
            return Ok(());
        }
    };
    let history_file = unit.paths().history_file();
    let recorded = history::read_tail(&history_file)?
        .iter()
        .any(|r| r.context_id.as_deref() == Some(pending.context_id.as_str()));
    if !recorded {
        apply_effects(root, name, &pending.effects, true)?;
        history::append(&history_file, &pending.record)?;
        tracing::warn!(unit = %name, hook = %pending.record.hook, "applied the effects of a hook committed before hookbox was killed");
    }
    Ok(())
}

/// Applies a successful hook's effects to the unit's and its application's runtime state,
/// then tells the remote units of the relation settings it changed. `replay`: the effects
/// of a commit whose runner was killed, which may have saved them already; every setting
/// the hook set is announced again.
pub fn apply_effects(
    root: &StateRoot,
    unit: &UnitName,
    effects: &HookEffects,
    replay: bool,
) -> Result<(), RunnerError> {
    if !effects.changes_state() {
        return Ok(());
    }
    let mut runtime = UnitRuntime::load(root, unit)?;
    let unit_before = if replay {
        Default::default()
    } else {
        runtime.relation_settings.clone()
    };
    runtime.apply(effects);
    let app_lock = if AppRuntime::is_touched_by(effects) {
        Some(crate::model::runtime::AppLock::acquire(
            root,
            unit.app(),
            |_| {},
        )?)
    } else {
        None
    };
    let mut app = match app_lock {
        Some(_) => Some(AppRuntime::load(root, unit.app())?),
        None => None,
    };
    let app_before = app.as_ref().map(|a| {
        if replay {
            Default::default()
        } else {
            a.relation_settings.clone()
        }
    });
    if let Some(app) = &mut app {
        app.apply(effects);
    }
    // Save, then announce: a remote unit may run its -changed hook as soon as it is told,
    // and must read the new settings (announced first, a remote hook could read the old
    // ones in between and never hear again). A kill in between leaves the commit's effects
    // unapplied in the journal, and their replay announces again.
    runtime.save(root, unit)?;
    if let Some(app) = &app {
        app.save(root, unit.app())?;
    }
    crate::model::journal::failpoint(crate::model::journal::failpoints::EFFECTS_MID_APPLY);
    super::relations::announce(root, unit, effects, &unit_before, app_before.as_ref())?;
    drop(app_lock);
    Ok(())
}

/// Runs hooks: holds the state root, the charm cache and where the tools come from.
#[derive(Debug)]
pub struct Runner {
    root: StateRoot,
    charms: Mutex<HashMap<CharmDigest, Arc<LoadedCharm>>>,
    binary: PathBuf,
    model_uuid: String,
    live_output: bool,
}

impl Runner {
    /// A runner over `root`, with this executable as the hook tools.
    pub fn new(root: &StateRoot) -> Result<Self, RunnerError> {
        let binary = std::env::current_exe().map_err(RunnerError::io(
            "find the hookbox executable",
            "/proc/self/exe",
        ))?;
        Ok(Self {
            root: root.clone(),
            charms: Mutex::new(HashMap::new()),
            binary,
            model_uuid: model_uuid(root)?,
            live_output: false,
        })
    }

    /// Every hook's output also goes to our stderr as it arrives, each line after its unit
    /// and hook (`hello/0 install| `); a hook run that streams its output anyway (`hookbox
    /// run`) is unchanged.
    pub fn with_live_output(mut self, live: bool) -> Self {
        self.live_output = live;
        self
    }

    /// The state root.
    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    /// The hookbox executable (bound into sandboxes as the hook tools).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The stored charm `digest`, loaded (cached per process).
    pub fn charm(
        &self,
        digest: &CharmDigest,
        owner: &str,
    ) -> Result<Arc<LoadedCharm>, RunnerError> {
        let mut cache = self.charms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(charm) = cache.get(digest) {
            return Ok(Arc::clone(charm));
        }
        let store = CharmStore::new(&self.root);
        let missing = || RunnerError::MissingCharm {
            digest: digest.clone(),
            owner: owner.to_owned(),
        };
        let record = store.record(digest)?.ok_or_else(missing)?;
        let tree = store.tree_path(digest);
        let files = Metadata::load(&tree, &YamlLimits::default())?;
        let charm = Arc::new(LoadedCharm {
            record,
            files,
            tree,
        });
        cache.insert(digest.clone(), Arc::clone(&charm));
        Ok(charm)
    }

    /// Runs one hook (or action, or the retry of the failed hook) on an open unit. A hook
    /// that fails is reported in the [`HookReport`] (the unit is then in error); `Err` means
    /// the run could not happen (unit in error, unknown hook, sandbox unavailable).
    pub async fn run_hook(
        &self,
        unit: &mut Unit,
        request: &HookRequest,
    ) -> Result<HookReport, RunnerError> {
        let name = unit.name().clone();
        let root = &self.root;
        if !request.retry
            && let Some(error) = unit.error()
        {
            return Err(UnitError::InError {
                unit: name,
                error: error.clone(),
            }
            .into());
        }
        let mut steps = Steps::new(&name);
        let runtime = UnitRuntime::load(root, &name)?;
        let charm = self.charm(&runtime.charm, &name.to_string())?;
        let hook_text = if request.retry {
            match unit.error() {
                Some(crate::model::ErrorKind::Hook { hook }) => hook.clone(),
                Some(_) => request.hook.clone(),
                None => return Err(UnitError::NotInError { unit: name }.into()),
            }
        } else {
            request.hook.clone()
        };
        let hook = HookName::parse(&hook_text, &charm.files.metadata)?;
        let app = AppRecord::load(root, name.app())?;
        let app_runtime = AppRuntime::load(root, name.app())?;
        let context_id = format!("{name}-{hook}-{}", random_u63());
        let relation_endpoint = match hook.kind() {
            HookKind::Relation { endpoint, .. } => Some(endpoint.clone()),
            _ => None,
        };
        let relation = request
            .relation
            .as_ref()
            .filter(|_| relation_endpoint.is_some());
        let context = context::build_context(
            root,
            &ContextInputs {
                unit: &name,
                hook: &hook,
                context_id: &context_id,
                charm: &charm.files,
                runtime: &runtime,
                app: &app,
                app_runtime: &app_runtime,
                relation,
                action_params: &request.action_params,
            },
        );
        let is_action = *hook.kind() == HookKind::Action;
        let action_uuid = is_action.then(|| format!("{:016x}", random_u63()));
        steps.done("context");

        // The run: a fresh upper, the journal says running-hook.
        let run = if request.retry {
            unit.begin_retry(&context_id)?.1
        } else if is_action {
            unit.begin_action(hook.as_str(), &context_id)?
        } else {
            unit.begin_hook(hook.as_str(), &context_id)?
        };
        let started = Timestamp::now();
        let clock = Instant::now();
        grant_traverse(root, unit)?;
        steps.done("begin");

        // A squash of older layers, built in the background while the hook runs.
        let squash = match unit.plan_squash(Some(&charm.tree)) {
            Ok(job) => job.map(|job| tokio::task::spawn_blocking(move || job.run())),
            Err(e) => {
                tracing::warn!(unit = %name, error = %e, "cannot plan a squash");
                None
            }
        };

        // The hook-tool socket, in a private directory of the unit bound into the sandbox,
        // answering only the sandbox's root.
        let ids = sandbox::IdMapping::for_current_user();
        let agent = tool_server::create_agent_dir(unit.paths().dir(), &ids)?;
        let socket = agent.path().join(context::SOCKET_NAME);
        let server = ToolServer::start(&socket, context, ids.host_root().0)?;
        steps.done("tool server");

        let charm_path = sandbox::spec::default_charm_path(name.app().as_str(), name.number());
        let env = context::hook_environment(&EnvInputs {
            unit: &name,
            hook: &hook,
            context_id: &context_id,
            charm_path: &charm_path,
            model_uuid: &self.model_uuid,
            relation,
            relation_endpoint: relation_endpoint.as_deref(),
            action_uuid: action_uuid.as_deref(),
        });
        let mut lowers: Vec<Lower> = unit.lowers().into_iter().map(Lower::new).collect();
        lowers.push(Lower::idmapped(&charm.tree));
        let hook_path = charm_path.join(hook.dispatch_path());
        let mut spec = SandboxSpec::new(
            ids,
            lowers,
            run.upper.clone(),
            run.work.clone(),
            charm_path.clone(),
            vec![hook_path.display().to_string()],
            env,
        );
        spec.hostname = name.dir_name();
        spec.network = app_runtime.run.network;
        spec.limits.timeout = app_runtime.run.timeout();
        spec.limits.pids = app_runtime.run.pids_limit();
        spec.limits.memory_bytes = app_runtime.run.memory_bytes;
        spec.handler = Some(HandlerLookup {
            dispatch: charm_path.join("dispatch"),
            hook: hook_path,
        });
        spec.binds = vec![
            BindMount {
                source: self.binary.clone(),
                target: context::BINARY_IN_SANDBOX.into(),
                writable: false,
            },
            BindMount {
                source: tools_dir(root)?,
                target: context::tools_dir_in_sandbox(&name).into(),
                writable: false,
            },
            BindMount {
                source: agent.path().to_owned(),
                target: context::agent_dir_in_sandbox(&name).into(),
                writable: false,
            },
        ];
        let prefixed = self.live_output && !request.stream;
        let options = RunOptions {
            stream: request.stream || prefixed,
            live_prefix: prefixed.then(|| format!("{name} {hook}| ")),
            run_id: Some(context_id.clone()),
            warn_fallbacks: app_runtime.run.has_own_limits(),
            cgroup_record: Some(cgroup_record(unit.paths().dir())),
            ..RunOptions::default()
        };
        steps.done("prepare the sandbox");
        let result = sandbox::run(&spec, &options).await;
        steps.done("sandbox");
        let effects = server.finish();
        drop(server);
        drop(agent);
        let ended = Timestamp::now();
        let duration_ms = clock.elapsed().as_millis() as u64;

        let mut record = HistoryRecord {
            kind: RecordKind::Hook,
            hook: hook.to_string(),
            outcome: None,
            exit_code: None,
            signal: None,
            reason: None,
            context_id: Some(context_id.clone()),
            charm_revision: charm.record.revision,
            started,
            duration_ms,
            layer: None,
        };
        let action = is_action.then(|| effects.action.clone());
        let log_path = output_log::log_path(root, &name);
        let outcome = match &result {
            Ok(report) => {
                match report.outcome {
                    sandbox::Outcome::Exited { code } => record.exit_code = Some(code),
                    sandbox::Outcome::Signaled { signal } => record.signal = Some(signal),
                    _ => {}
                }
                if report.outcome.success() {
                    let missing = report.outcome == sandbox::Outcome::Missing;
                    record.outcome = Some(if missing {
                        Outcome::Missing
                    } else {
                        Outcome::Ok
                    });
                    if missing {
                        record.reason = Some(format!(
                            "no handler: neither an executable dispatch nor {}",
                            hook.dispatch_path().display()
                        ));
                    }
                } else {
                    record.outcome = Some(Outcome::Failed);
                    record.reason = Some(report.reason.clone());
                }
                record.outcome
            }
            Err(error) => {
                record.outcome = Some(Outcome::Failed);
                record.reason = Some(crate::exit::error_chain(error));
                record.outcome
            }
        };
        // A failed action (non-zero exit or action-fail) is discarded like a failed hook
        // but leaves the unit alone (no error state).
        let outcome = match (&action, outcome) {
            (
                Some(ActionEffects {
                    failure: Some(why), ..
                }),
                Some(Outcome::Ok | Outcome::Missing),
            ) => {
                record.outcome = Some(Outcome::Failed);
                record.reason = Some(format!("action-fail: {why}"));
                record.outcome
            }
            _ => outcome,
        };
        let summary = match outcome {
            Some(Outcome::Ok) => "hook succeeded".to_owned(),
            Some(Outcome::Missing) => "no handler for the hook (missing)".to_owned(),
            _ => format!("hook failed: {}", record.reason.clone().unwrap_or_default()),
        };
        let lines = output_log::lines_of_run(
            hook.as_str(),
            &context_id,
            started,
            ended,
            result.as_ref().ok(),
            &effects.log,
            &summary,
        );
        if let Err(e) = output_log::append(&log_path, &lines) {
            tracing::warn!(unit = %name, error = %e, "cannot write the unit log");
        }
        steps.done("log");

        if outcome == Some(Outcome::Failed) {
            if is_action {
                unit.discard_action(&run)?;
            } else {
                unit.discard(&run)?;
            }
            history::append(&unit.paths().history_file(), &record)?;
        } else {
            sync_upper(&run.upper)?;
            steps.done("sync the upper");
            let pending = PendingEffects {
                context_id: context_id.clone(),
                effects: effects.clone(),
                record: record.clone(),
                from_queue: request.from_queue || request.retry,
            };
            let value = serde_json::to_value(&pending).ok();
            let layer = unit.commit(&run, value)?;
            steps.done("commit");
            record.layer = layer;
            apply_effects(root, &name, &effects, false)?;
            history::append(&unit.paths().history_file(), &record)?;
        }
        steps.done("history");

        if let Some(task) = squash {
            match task.await {
                Ok(Ok(built)) => {
                    unit.finish_squash(built)?;
                }
                Ok(Err(e)) => {
                    tracing::warn!(unit = %name, error = %e, "squash failed; abandoned");
                    unit.abandon_squash()?;
                }
                Err(e) => {
                    tracing::warn!(unit = %name, error = %e, "squash task failed; abandoned");
                    unit.abandon_squash()?;
                }
            }
        }

        steps.done("squash");
        if let Err(error) = result {
            return Err(RunnerError::Sandbox {
                unit: name.to_string(),
                hook: hook.to_string(),
                source: error,
            });
        }
        Ok(HookReport {
            unit: name,
            record,
            action,
        })
    }
}

/// As root, the sandbox's init runs as the id range's root inside its user namespace and
/// opens the upper, work and committed layer dirs by path, through directories that are
/// host root's and mode 0700. It is given search (only) on that chain through their group:
/// group = the range's root gid, mode 0710. No other host user gains anything. Rootless,
/// every directory is the caller's already.
pub fn grant_traverse(root: &crate::store::StateRoot, unit: &Unit) -> Result<(), RunnerError> {
    use std::os::unix::fs::MetadataExt;
    let ids = sandbox::IdMapping::for_current_user();
    let sandbox::IdMapping::Range { .. } = ids else {
        return Ok(());
    };
    let (_, gid) = ids.host_root();
    let dirs = unit.paths().layer_dirs();
    let chain = [
        root.path().to_owned(),
        root.units_dir(),
        unit.paths().dir().to_owned(),
        dirs.runs(),
        dirs.layers(),
    ];
    for dir in chain {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || (meta.gid() == gid && meta.mode() & 0o010 != 0) {
            continue;
        }
        std::os::unix::fs::lchown(&dir, None, Some(gid)).map_err(RunnerError::io(
            "give the sandbox search permission on",
            &dir,
        ))?;
        let mode = (meta.mode() & 0o700) | 0o010;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).map_err(
            RunnerError::io("give the sandbox search permission on", &dir),
        )?;
    }
    Ok(())
}

/// Past this many entries in an upper, [`sync_upper`] flushes the whole filesystem instead
/// of each entry.
const SYNC_EACH_LIMIT: usize = 256;

/// Flushes what the hook wrote to its upper (the overlay is mounted `volatile`) before the
/// commit makes it part of the state: each file and directory of the upper is fsync'd (an
/// upper the hook left empty costs nothing), or, past [`SYNC_EACH_LIMIT`] entries, the
/// filesystem with syncfs(2). The sandbox is gone, so nothing changes the upper meanwhile;
/// the walk never follows a symlink (it only descends into directories and opens regular
/// files with `O_NOFOLLOW`).
fn sync_upper(upper: &Path) -> Result<(), RunnerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut dirs = vec![upper.to_owned()];
    let mut to_sync = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(RunnerError::io("read directory", &dir))? {
            let entry = entry.map_err(RunnerError::io("read directory", &dir))?;
            let kind = entry
                .file_type()
                .map_err(RunnerError::io("stat", entry.path()))?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                to_sync.push(entry.path());
            }
        }
        to_sync.push(dir);
        if to_sync.len() > SYNC_EACH_LIMIT {
            let dir = std::fs::File::open(upper).map_err(RunnerError::io("open", upper))?;
            return rustix::fs::syncfs(&dir)
                .map_err(|e| RunnerError::io("syncfs", upper)(e.into()));
        }
    }
    if to_sync.len() == 1 {
        return Ok(());
    }
    for path in to_sync {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .and_then(|file| file.sync_all())
            .map_err(RunnerError::io("fsync", &path))?;
    }
    Ok(())
}

/// Debug events with the time each step of a run took (`--log-level debug`).
struct Steps<'a> {
    unit: &'a UnitName,
    last: Instant,
}

impl<'a> Steps<'a> {
    fn new(unit: &'a UnitName) -> Self {
        Self {
            unit,
            last: Instant::now(),
        }
    }

    fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        let micros = now.duration_since(self.last).as_micros() as u64;
        tracing::debug!(unit = %self.unit, step, micros, "hook run step");
        self.last = now;
    }
}

/// A random non-negative 63-bit number (Juju's context id suffix).
pub fn random_u63() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        bytes = (nanos ^ u64::from(std::process::id()).rotate_left(32)).to_ne_bytes();
    }
    u64::from_ne_bytes(bytes) >> 1
}

/// The state root's model uuid (`model.json`), created once.
fn model_uuid(root: &StateRoot) -> Result<String, RunnerError> {
    #[derive(Serialize, Deserialize)]
    struct Model {
        uuid: String,
    }
    let path = root.path().join("model.json");
    if let Some(model) = atomic::read_json::<Model>(&path)? {
        return Ok(model.uuid);
    }
    root.ensure_dir(root.path())?;
    let (a, b) = (random_u63(), random_u63());
    let uuid = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 31,
        (a >> 15) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    );
    atomic::write_json(&path, &Model { uuid: uuid.clone() })?;
    // Two processes racing to create it: the file that won is the uuid.
    Ok(atomic::read_json::<Model>(&path)?.map_or(uuid, |m| m.uuid))
}

/// `<root>/tools-<fingerprint>/`: one symlink per hook tool to the binary's place in the
/// sandbox, created once (built aside, then renamed into place).
fn tools_dir(root: &StateRoot) -> Result<PathBuf, RunnerError> {
    use sha2::Digest;
    let names = crate::tools::TOOL_NAMES.join("\n");
    let fingerprint = sha2::Sha256::digest(format!("{}\n{names}", context::BINARY_IN_SANDBOX));
    let hex: String = fingerprint[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = root.path().join(format!("tools-{hex}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    root.ensure_dir(root.path())?;
    let staging = tempfile::Builder::new()
        .prefix(".tools-")
        .tempdir_in(root.path())
        .map_err(RunnerError::io("create a directory in", root.path()))?;
    for tool in crate::tools::TOOL_NAMES {
        let link = staging.path().join(tool);
        std::os::unix::fs::symlink(context::BINARY_IN_SANDBOX, &link)
            .map_err(RunnerError::io("create the tool symlink", &link))?;
    }
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .map_err(RunnerError::io("open up", staging.path()))?;
    let staged = staging.keep();
    match std::fs::rename(&staged, &dir) {
        Ok(()) => {}
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&staged);
        }
        Err(e) => return Err(RunnerError::io("install the tools directory", &dir)(e)),
    }
    Ok(dir)
}
