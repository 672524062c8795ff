//! What hooks leave behind besides files: per unit its charm, workload status, open ports
//! and relation settings (`units/<app>-<n>/runtime.json`); per application its status,
//! leader settings, workload version, relation settings and deploy options
//! (`apps/<app>.runtime.json`). Both are saved atomically and only ever replaced whole by
//! [`UnitRuntime::apply`] / [`AppRuntime::apply`], so applying the same hook effects twice
//! (a commit completed by recovery) gives the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sandbox::Network;
use crate::store::digest::CharmDigest;
use crate::store::{StateRoot, atomic};
use crate::tools::context::{HookEffects, OpenedPort, Settings, WorkloadStatus};

use super::app::RelationRecord;
use super::{AppName, UnitError, UnitName, UnitPaths};

/// The runtime state of one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRuntime {
    /// The charm the unit runs (it changes when the unit upgrades).
    pub charm: CharmDigest,
    /// The workload status the unit's hooks set.
    #[serde(default)]
    pub workload: WorkloadStatus,
    /// The port ranges the unit has open.
    #[serde(default)]
    pub ports: BTreeSet<OpenedPort>,
    /// The unit's own settings in each relation, by relation id.
    #[serde(default)]
    pub relation_settings: BTreeMap<u32, Settings>,
    /// The relations the unit is in scope of, by relation id: entered when its
    /// relation-created hook is queued, left when its relation-broken hook completes.
    #[serde(default)]
    pub relations: BTreeMap<u32, UnitRelation>,
    /// Hooks still to run, in order (the rest of a deploy or config change that stopped at
    /// a failed hook, relation hooks; they run once the unit is resolved).
    #[serde(default)]
    pub queue: Vec<QueuedHook>,
    /// The context id of the last commit the queue has accounted for (its head removed if
    /// that run was the head): a commit whose id is not here had its head left in place
    /// by a killed process (see `lifecycle::account_for_last_commit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounted: Option<String>,
}

/// A relation as one unit is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRelation {
    /// The relation (a copy of the application's record, kept until relation-broken has run
    /// even when the relation is already gone from the application).
    pub relation: RelationRecord,
    /// The remote units this unit has joined (their relation-joined hook completed here) and
    /// not yet departed: what `relation-list` shows.
    #[serde(default)]
    pub members: BTreeSet<String>,
}

/// One hook waiting in a unit's queue: a hook name, and for relation hooks what it runs for.
///
/// Serialised as the plain hook name when it has no relation (the format queues had before
/// relation hooks existed), else as `{"hook": .., "relation": {..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "QueuedHookRepr", into = "QueuedHookRepr")]
pub struct QueuedHook {
    /// The hook, e.g. `install` or `db-relation-joined`.
    pub hook: String,
    /// The relation of a relation hook.
    pub relation: Option<QueuedRelation>,
}

/// What a queued relation hook runs for (its `JUJU_RELATION_*` environment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRelation {
    /// The relation id.
    pub id: u32,
    /// `JUJU_REMOTE_UNIT` (none for relation-created, relation-broken and app-data changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_unit: Option<String>,
    /// `JUJU_REMOTE_APP`.
    pub remote_app: String,
    /// `JUJU_DEPARTING_UNIT` of relation-departed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departing_unit: Option<String>,
    /// The departing unit's settings as they were when it left, so relation-departed can
    /// still read them (`relation-get - <departing unit>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departing_settings: Option<Settings>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum QueuedHookRepr {
    Name(String),
    Full {
        hook: String,
        #[serde(default)]
        relation: Option<QueuedRelation>,
    },
}

impl From<QueuedHookRepr> for QueuedHook {
    fn from(repr: QueuedHookRepr) -> Self {
        match repr {
            QueuedHookRepr::Name(hook) => Self {
                hook,
                relation: None,
            },
            QueuedHookRepr::Full { hook, relation } => Self { hook, relation },
        }
    }
}

impl From<QueuedHook> for QueuedHookRepr {
    fn from(queued: QueuedHook) -> Self {
        match queued.relation {
            None => Self::Name(queued.hook),
            relation => Self::Full {
                hook: queued.hook,
                relation,
            },
        }
    }
}

impl From<&str> for QueuedHook {
    fn from(hook: &str) -> Self {
        Self {
            hook: hook.to_owned(),
            relation: None,
        }
    }
}

impl From<String> for QueuedHook {
    fn from(hook: String) -> Self {
        Self {
            hook,
            relation: None,
        }
    }
}

impl std::fmt::Display for QueuedHook {
    /// `install`, or `db-relation-joined (db:3 mysql/0)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.hook)?;
        if let Some(relation) = &self.relation {
            write!(f, " (relation {}", relation.id)?;
            if let Some(unit) = relation
                .remote_unit
                .as_deref()
                .or(relation.departing_unit.as_deref())
            {
                write!(f, " {unit}")?;
            } else {
                write!(f, " {}", relation.remote_app)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl UnitRuntime {
    /// A unit on `charm` that has run nothing yet.
    pub fn new(charm: CharmDigest) -> Self {
        Self {
            charm,
            workload: WorkloadStatus::default(),
            ports: BTreeSet::new(),
            relation_settings: BTreeMap::new(),
            relations: BTreeMap::new(),
            queue: Vec::new(),
            accounted: None,
        }
    }

    /// `units/<app>-<n>/runtime.json`.
    pub fn path(root: &StateRoot, unit: &UnitName) -> PathBuf {
        UnitPaths::new(root, unit).dir().join("runtime.json")
    }

    /// Loads the unit's runtime state; `UnknownUnit` when it has none.
    pub fn load(root: &StateRoot, unit: &UnitName) -> Result<Self, UnitError> {
        atomic::read_json(&Self::path(root, unit))?
            .ok_or_else(|| UnitError::UnknownUnit { unit: unit.clone() })
    }

    /// Saves it atomically.
    pub fn save(&self, root: &StateRoot, unit: &UnitName) -> Result<(), UnitError> {
        atomic::write_json(&Self::path(root, unit), self)?;
        Ok(())
    }

    /// Applies the unit-level part of a successful hook's effects (plain replacement).
    pub fn apply(&mut self, effects: &HookEffects) {
        if let Some(status) = &effects.unit_status {
            self.workload = status.clone();
        }
        if let Some(ports) = &effects.opened_ports {
            self.ports = ports.clone();
        }
        for (id, update) in &effects.relation_settings {
            if let Some(settings) = &update.unit {
                self.relation_settings.insert(*id, settings.clone());
            }
        }
    }
}

/// The pids limit of a hook run (processes and threads) when the application did not set
/// one: far above what a hook's package installs and builds use, low enough that a fork
/// bomb in a hook fails the hook instead of exhausting the machine's pids.
pub const DEFAULT_HOOK_PIDS: u64 = 4096;

/// How an application's hooks run, chosen at deploy.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RunSettings {
    /// Network isolation of the hooks.
    #[serde(default)]
    pub network: Network,
    /// The time limit of one hook, in seconds (none: unlimited).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// The pids limit of one hook run (none: [`DEFAULT_HOOK_PIDS`]; 0: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// The memory limit of one hook run, in bytes (none: unlimited). No default: without a
    /// writable memory cgroup (rootless) the limit is `RLIMIT_AS`, address space rather
    /// than memory, which runtimes that reserve large address spaces (Go, Java, V8) exceed
    /// at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

impl RunSettings {
    /// The hook time limit.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_secs
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// The hook pids limit (none: unlimited).
    pub fn pids_limit(&self) -> Option<u64> {
        match self.pids {
            None => Some(DEFAULT_HOOK_PIDS),
            Some(0) => None,
            Some(n) => Some(n),
        }
    }

    /// Whether the application chose any resource limit itself (rather than the defaults).
    pub fn has_own_limits(&self) -> bool {
        self.pids.is_some() || self.memory_bytes.is_some()
    }
}

/// The runtime state of one application.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AppRuntime {
    /// The application status the leader set.
    #[serde(default)]
    pub status: WorkloadStatus,
    /// The leader settings.
    #[serde(default)]
    pub leader_settings: Settings,
    /// The workload version `application-version-set` reported.
    #[serde(default)]
    pub version: Option<String>,
    /// The application's settings in each relation, by relation id.
    #[serde(default)]
    pub relation_settings: BTreeMap<u32, Settings>,
    /// How its hooks run.
    #[serde(default)]
    pub run: RunSettings,
}

impl AppRuntime {
    /// `apps/<app>.runtime.json` (not a valid application file name, so
    /// `AppRecord::list` skips it).
    pub fn path(root: &StateRoot, app: &AppName) -> PathBuf {
        root.apps_dir().join(format!("{app}.runtime.json"))
    }

    /// Loads the application's runtime state (the default when none was saved).
    pub fn load(root: &StateRoot, app: &AppName) -> Result<Self, UnitError> {
        Ok(atomic::read_json(&Self::path(root, app))?.unwrap_or_default())
    }

    /// Saves it atomically.
    pub fn save(&self, root: &StateRoot, app: &AppName) -> Result<(), UnitError> {
        root.ensure_dir(&root.apps_dir())?;
        atomic::write_json(&Self::path(root, app), self)?;
        Ok(())
    }

    /// Applies the application-level part of a successful hook's effects.
    pub fn apply(&mut self, effects: &HookEffects) {
        if let Some(status) = &effects.application_status {
            self.status = status.clone();
        }
        if let Some(settings) = &effects.leader_settings {
            self.leader_settings = settings.clone();
        }
        if let Some(version) = &effects.application_version {
            self.version = Some(version.clone());
        }
        for (id, update) in &effects.relation_settings {
            if let Some(settings) = &update.application {
                self.relation_settings.insert(*id, settings.clone());
            }
        }
    }

    /// Whether `effects` touch application-level state.
    pub fn is_touched_by(effects: &HookEffects) -> bool {
        effects.application_status.is_some()
            || effects.leader_settings.is_some()
            || effects.application_version.is_some()
            || effects
                .relation_settings
                .values()
                .any(|u| u.application.is_some())
    }
}

/// An exclusive flock on `apps/<app>.lock`, held while a command changes the application
/// (deploy, add-unit, remove, config), so two such commands never interleave.
#[derive(Debug)]
pub struct AppLock {
    _file: std::fs::File,
}

impl AppLock {
    /// Takes the lock, waiting for another process; `on_wait` gets the message naming what
    /// it waits for.
    pub fn acquire(
        root: &StateRoot,
        app: &AppName,
        on_wait: impl FnOnce(&str),
    ) -> Result<Self, UnitError> {
        use rustix::fs::FlockOperation;
        root.ensure_dir(&root.apps_dir())?;
        let path = root.apps_dir().join(format!("{app}.lock"));
        let lock_error = |source: std::io::Error| UnitError::Lock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            on_wait(&format!(
                "waiting for application {app}: another hookbox process is changing it"
            ));
            crate::model::lock::flock_retrying(&file, FlockOperation::LockExclusive)
                .map_err(|e| lock_error(e.into()))?;
        }
        Ok(Self { _file: file })
    }

    /// Removes the lock file of a removed application (the lock stays held until drop).
    pub fn remove_file(root: &StateRoot, app: &AppName) {
        let _ = std::fs::remove_file(root.apps_dir().join(format!("{app}.lock")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::context::RelationSettingsUpdate;

    #[test]
    fn queued_hooks_read_plain_names_and_relation_entries() {
        let plain: QueuedHook = serde_json::from_str("\"install\"").unwrap();
        assert_eq!(plain, QueuedHook::from("install"));
        assert_eq!(serde_json::to_string(&plain).unwrap(), "\"install\"");
        let joined = QueuedHook {
            hook: "db-relation-joined".into(),
            relation: Some(QueuedRelation {
                id: 3,
                remote_unit: Some("mysql/0".into()),
                remote_app: "mysql".into(),
                departing_unit: None,
                departing_settings: None,
            }),
        };
        let text = serde_json::to_string(&joined).unwrap();
        assert_eq!(serde_json::from_str::<QueuedHook>(&text).unwrap(), joined);
        assert_eq!(
            joined.to_string(),
            "db-relation-joined (relation 3 mysql/0)"
        );
    }

    #[test]
    fn applying_effects_twice_is_applying_them_once() {
        let digest = CharmDigest::parse(&"a".repeat(64)).unwrap();
        let mut unit = UnitRuntime::new(digest);
        let mut app = AppRuntime::default();
        let mut effects = HookEffects {
            unit_status: Some(WorkloadStatus {
                status: "active".into(),
                message: "ok".into(),
                data: BTreeMap::new(),
            }),
            application_version: Some("1.2".into()),
            ..HookEffects::default()
        };
        effects.relation_settings.insert(
            3,
            RelationSettingsUpdate {
                unit: Some(Settings::from([("k".into(), "v".into())])),
                application: Some(Settings::from([("a".into(), "b".into())])),
            },
        );
        unit.apply(&effects);
        app.apply(&effects);
        let (once_unit, once_app) = (unit.clone(), app.clone());
        unit.apply(&effects);
        app.apply(&effects);
        assert_eq!(unit, once_unit);
        assert_eq!(app, once_app);
        assert_eq!(unit.workload.status, "active");
        assert_eq!(app.relation_settings[&3]["a"], "b");
        assert!(AppRuntime::is_touched_by(&effects));
    }
}
