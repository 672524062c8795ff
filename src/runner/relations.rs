//! Relations between applications: `relate` and `unrelate` (Juju's `integrate` and
//! `remove-relation`: endpoint inference and every check that can refuse), peer relations
//! created at deploy, and the relation hooks all of these queue on the units.
//!
//! How hooks reach units. A unit's hooks run in order from its queue
//! ([`UnitRuntime::queue`]), written only under the unit's lock. Other units and commands
//! never write that queue: they post hooks to the unit's inbox (`units/<u>/inbox/*.json`,
//! one atomically written file per post, no lock needed), and the unit moves them into its
//! queue ([`drain_inbox`]) under its lock before each hook it runs. So a hook whose
//! `relation-set` changed settings can announce `relation-changed` to the remote units while
//! they run their own hooks ([`announce`]), and a unit in error keeps its relation hooks
//! queued until it is resolved. [`settle`] runs every unit with posted hooks until none is
//! left; commands call it once their own units are done.
//!
//! What a unit sees of a relation ([`UnitRelation`]): it enters the relation's scope when its
//! relation-created hook is queued (its settings are seeded with `private-address`,
//! `ingress-address` and `egress-subnets`); a remote unit becomes a member (shown by
//! `relation-list`) when its relation-joined hook completes here and stops being one when
//! relation-departed completes; the scope ends when relation-broken completes.
//!
//! Hook order (Juju's): relation-created once per unit before anything else of the
//! relation; then per remote unit relation-joined then relation-changed; a settings change
//! gives the remote units that joined the writer relation-changed (an application-data change
//! by the leader: relation-changed without a remote unit on every remote unit); on removal
//! relation-departed per remote unit (`JUJU_DEPARTING_UNIT`), then relation-broken.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::charm::{Metadata, Relation, Role, Scope};
use crate::exit::{ClassifyExit, ExitStatus};
use crate::model::app::RelationRecord;
use crate::model::runtime::{AppLock, QueuedHook, QueuedRelation, UnitRelation, UnitRuntime};
use crate::model::{AppName, AppRecord, UnitError, UnitName, UnitPaths};
use crate::store::{StateRoot, atomic};
use crate::tools::context::{HookEffects, HookRelation, Settings};

use super::RunnerError;
use super::context::RelationTarget;
use super::hook_run::{HookRequest, Runner};
use super::lifecycle::{UnitReport, WaitNotice, for_each_unit, queue_and_run};

/// The hook a unit runs when it becomes its application's leader.
pub const LEADER_ELECTED: &str = "leader-elected";

/// The address every unit is given (hookbox runs all units on one machine).
pub const UNIT_ADDRESS: &str = "127.0.0.1";

/// How many rounds [`settle`] runs before leaving the rest queued (a charm whose every
/// relation-changed writes new settings would otherwise ping-pong forever).
pub const SETTLE_ROUNDS: usize = 64;

/// Refusals of `relate` and `unrelate`; each changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum RelationError {
    /// `APP[:ENDPOINT]` is malformed.
    #[error("invalid endpoint {given:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The application's charm declares no such endpoint.
    #[error("application {app} has no endpoint {endpoint:?}")]
    UnknownEndpoint {
        /// The application.
        app: AppName,
        /// The endpoint asked for.
        endpoint: String,
    },
    /// A peer endpoint was named: peer relations exist from deploy.
    #[error(
        "{endpoint} is a peer endpoint: peer relations exist from deploy and cannot be related explicitly"
    )]
    PeerEndpoint {
        /// `app:endpoint`.
        endpoint: String,
    },
    /// The two endpoints implement different interfaces.
    #[error("{a} implements interface {a_interface:?} but {b} implements {b_interface:?}")]
    InterfaceMismatch {
        /// `app:endpoint` of the first side.
        a: String,
        /// Its interface.
        a_interface: String,
        /// `app:endpoint` of the second side.
        b: String,
        /// Its interface.
        b_interface: String,
    },
    /// The two endpoints are not a provider and a requirer.
    #[error("{a} is a {a_role} and {b} is a {b_role}: one side must provide and the other require")]
    Roles {
        /// `app:endpoint` of the first side.
        a: String,
        /// Its role.
        a_role: Role,
        /// `app:endpoint` of the second side.
        b: String,
        /// Its role.
        b_role: Role,
    },
    /// No pair of endpoints matches.
    #[error(
        "no matching endpoints between {a} and {b} (same interface, one provides, one requires)"
    )]
    NoMatch {
        /// The first side as given.
        a: String,
        /// The second side as given.
        b: String,
    },
    /// More than one pair matches: the user must name the endpoints.
    #[error("ambiguous relation between {a} and {b}: name the endpoints, one of: {candidates}")]
    Ambiguous {
        /// The first side as given.
        a: String,
        /// The second side as given.
        b: String,
        /// The candidate pairs, `a:x b:y`, comma-separated.
        candidates: String,
    },
    /// Both sides are the same application.
    #[error("application {app} cannot be related to itself (peer relations exist from deploy)")]
    SelfRelation {
        /// The application.
        app: AppName,
    },
    /// The relation exists already.
    #[error("relation {a} {b} already exists (id {id})")]
    Exists {
        /// `app:endpoint`.
        a: String,
        /// `app:endpoint`.
        b: String,
        /// Its id.
        id: u64,
    },
    /// The endpoint's `limit` would be exceeded.
    #[error("endpoint {endpoint} allows at most {limit} relation(s) and has {count}")]
    Limit {
        /// `app:endpoint`.
        endpoint: String,
        /// Its limit.
        limit: u32,
        /// Its relations now.
        count: usize,
    },
    /// A container-scoped relation between two principals.
    #[error(
        "relation {a} {b} is container-scoped, which needs a subordinate application on one side"
    )]
    ContainerScope {
        /// `app:endpoint`.
        a: String,
        /// `app:endpoint`.
        b: String,
    },
    /// `unrelate` found no such relation.
    #[error("no relation between {a} and {b}")]
    NotRelated {
        /// The first side as given.
        a: String,
        /// The second side as given.
        b: String,
    },
    /// `unrelate ID` named no relation.
    #[error("no relation with id {id}")]
    UnknownRelation {
        /// The id given.
        id: u64,
    },
    /// `unrelate` on a peer relation.
    #[error("relation {key} is a peer relation; it lasts as long as the application")]
    PeerRemoval {
        /// `endpoint:id`.
        key: String,
    },
}

impl ClassifyExit for RelationError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            Self::InvalidEndpoint { .. } => ExitStatus::Usage,
            _ => ExitStatus::Refused,
        }
    }
}

/// `APP` or `APP:ENDPOINT` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The application.
    pub app: AppName,
    /// The endpoint, when named.
    pub endpoint: Option<String>,
}

impl FromStr for EndpointSpec {
    type Err = RelationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| RelationError::InvalidEndpoint {
            given: text.to_owned(),
            reason,
        };
        let (app, endpoint) = match text.split_once(':') {
            Some((_, "")) => return Err(invalid("the endpoint after ':' is empty")),
            Some((app, endpoint)) => (app, Some(endpoint.to_owned())),
            None => (text, None),
        };
        let app = AppName::parse(app).map_err(|_| invalid("not a valid application name"))?;
        Ok(Self { app, endpoint })
    }
}

impl fmt::Display for EndpointSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Some(endpoint) => write!(f, "{}:{endpoint}", self.app),
            None => write!(f, "{}", self.app),
        }
    }
}

/// The five relation events, with their hook-name suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

impl Event {
    const ALL: [(Event, &'static str); 5] = [
        (Event::Created, "-relation-created"),
        (Event::Joined, "-relation-joined"),
        (Event::Changed, "-relation-changed"),
        (Event::Departed, "-relation-departed"),
        (Event::Broken, "-relation-broken"),
    ];

    fn of(hook: &str) -> Option<Event> {
        Self::ALL
            .iter()
            .find(|(_, suffix)| hook.ends_with(suffix))
            .map(|(event, _)| *event)
    }

    fn hook(self, endpoint: &str) -> String {
        let suffix = Self::ALL
            .iter()
            .find(|(event, _)| *event == self)
            .map(|(_, suffix)| *suffix)
            .unwrap_or_default();
        format!("{endpoint}{suffix}")
    }
}

/// A relation hook of `record` (seen from the unit's side).
fn relation_hook(
    record: &RelationRecord,
    event: Event,
    remote_unit: Option<&str>,
    departing: Option<(&str, Settings)>,
) -> QueuedHook {
    QueuedHook {
        hook: event.hook(&record.endpoint),
        relation: Some(QueuedRelation {
            id: record.tool_id(),
            remote_unit: remote_unit.map(str::to_owned),
            remote_app: record.remote_app.to_string(),
            departing_unit: departing.as_ref().map(|(u, _)| (*u).to_owned()),
            departing_settings: departing.map(|(_, s)| s),
        }),
    }
}

/// The hook request that runs a queued hook.
pub fn request_for(queued: &QueuedHook, stream: bool) -> HookRequest {
    HookRequest {
        hook: queued.hook.clone(),
        stream,
        relation: queued.relation.as_ref().map(|r| RelationTarget {
            relation: HookRelation {
                id: r.id,
                remote_unit: r.remote_unit.clone(),
                remote_application: Some(r.remote_app.clone()),
            },
            departing_unit: r.departing_unit.clone(),
            departing_settings: r.departing_settings.clone(),
        }),
        from_queue: true,
        ..HookRequest::default()
    }
}

// ---------------------------------------------------------------------------------------
// Relation ids

/// `relations.json` at the state root: the next relation id.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RelationCounter {
    next_id: u64,
}

/// Allocates a relation id, unique in the state root and never reused.
fn allocate_id(root: &StateRoot) -> Result<u64, RunnerError> {
    use rustix::fs::FlockOperation;
    root.ensure_dir(root.path())?;
    let lock_path = root.path().join("relations.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| UnitError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    crate::model::lock::flock_retrying(&lock, FlockOperation::LockExclusive).map_err(|e| {
        UnitError::Lock {
            path: lock_path,
            source: e.into(),
        }
    })?;
    let path = root.path().join("relations.json");
    let mut counter: RelationCounter = atomic::read_json(&path)?.unwrap_or_default();
    // Never below an id in use (a counter file lost or restored from an older copy).
    for app in AppRecord::list(root)? {
        if let Ok(record) = AppRecord::load(root, &app) {
            for relation in &record.relations {
                counter.next_id = counter.next_id.max(relation.id + 1);
            }
        }
    }
    let id = counter.next_id;
    counter.next_id += 1;
    atomic::write_json(&path, &counter)?;
    drop(lock);
    Ok(id)
}

// ---------------------------------------------------------------------------------------
// Inboxes

fn inbox_dir(root: &StateRoot, unit: &UnitName) -> PathBuf {
    UnitPaths::new(root, unit).dir().join("inbox")
}

/// Posts `hooks` to `unit`'s inbox; they join its queue the next time it runs. A unit that
/// no longer exists is skipped.
pub fn post(root: &StateRoot, unit: &UnitName, hooks: &[QueuedHook]) -> Result<(), RunnerError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let dir = inbox_dir(root, unit);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RunnerError::io("create", &dir)(e)),
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!(
        "{nanos:024}-{:08}-{:016x}.json",
        std::process::id(),
        super::hook_run::random_u63()
    );
    match atomic::write_json(&dir.join(name), &hooks) {
        Ok(()) => Ok(()),
        // The unit was removed meanwhile.
        Err(_) if !UnitPaths::new(root, unit).state_file().exists() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The posted files waiting in `unit`'s inbox, oldest first.
fn inbox_files(root: &StateRoot, unit: &UnitName) -> Result<Vec<PathBuf>, RunnerError> {
    let dir = inbox_dir(root, unit);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RunnerError::io("read directory", &dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(RunnerError::io("read directory", &dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('.') && name.ends_with(".json") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Moves the hooks posted to `unit` into its queue (the caller holds the unit's lock).
/// Relation-created enters the relation's scope; hooks of a relation the unit is not in
/// scope of, departures of units it never joined, leader-elected when the unit is not its
/// application's leader (posted by an election whose record was never saved) and repeats
/// of a hook already waiting are dropped.
pub fn drain_inbox(root: &StateRoot, unit: &UnitName) -> Result<(), RunnerError> {
    let files = inbox_files(root, unit)?;
    if files.is_empty() {
        return Ok(());
    }
    let mut runtime = UnitRuntime::load(root, unit)?;
    let app = AppRecord::load(root, unit.app()).ok();
    for file in &files {
        let hooks: Vec<QueuedHook> = match atomic::read_json(file) {
            Ok(hooks) => hooks.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(unit = %unit, file = %file.display(), error = %e, "unreadable inbox entry dropped");
                Vec::new()
            }
        };
        for hook in hooks {
            if hook.hook == LEADER_ELECTED
                && hook.relation.is_none()
                && app.as_ref().is_none_or(|a| a.leader != Some(unit.number()))
            {
                tracing::debug!(unit = %unit, "leader-elected posted to a unit that is not leader: dropped");
                continue;
            }
            admit(&mut runtime, app.as_ref(), hook);
        }
    }
    runtime.save(root, unit)?;
    for file in &files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RunnerError::io("remove", file)(e)),
        }
    }
    Ok(())
}

/// Adds one posted hook to the queue, or drops it (see [`drain_inbox`]).
fn admit(runtime: &mut UnitRuntime, app: Option<&AppRecord>, hook: QueuedHook) {
    let Some(relation) = &hook.relation else {
        if !runtime.queue.iter().skip(1).any(|q| *q == hook) {
            runtime.queue.push(hook);
        }
        return;
    };
    let id = relation.id;
    match Event::of(&hook.hook) {
        Some(Event::Created) => {
            if runtime.relations.contains_key(&id) {
                return;
            }
            let Some(record) = app.and_then(|a| a.relation(u64::from(id))) else {
                return;
            };
            enter_scope(runtime, record);
        }
        Some(Event::Departed) => {
            let Some(scope) = runtime.relations.get(&id) else {
                return;
            };
            let departing = relation.remote_unit.as_deref().unwrap_or_default();
            let joined_or_joining = scope.members.contains(departing)
                || runtime.queue.iter().any(|q| {
                    Event::of(&q.hook) == Some(Event::Joined)
                        && q.relation.as_ref().is_some_and(|r| {
                            r.id == id && r.remote_unit.as_deref() == Some(departing)
                        })
                });
            if !joined_or_joining {
                return;
            }
        }
        _ => {
            if !runtime.relations.contains_key(&id) {
                return;
            }
        }
    }
    if runtime.queue.iter().skip(1).any(|q| *q == hook) {
        return;
    }
    runtime.queue.push(hook);
}

/// Puts the unit in the relation's scope with its seeded settings (Juju's auto-populated
/// `private-address`, `ingress-address`, `egress-subnets`).
fn enter_scope(runtime: &mut UnitRuntime, record: &RelationRecord) {
    let id = record.tool_id();
    runtime.relations.insert(
        id,
        UnitRelation {
            relation: record.clone(),
            members: BTreeSet::new(),
        },
    );
    let settings = runtime.relation_settings.entry(id).or_default();
    for (key, value) in [
        ("private-address", UNIT_ADDRESS.to_owned()),
        ("ingress-address", UNIT_ADDRESS.to_owned()),
        ("egress-subnets", format!("{UNIT_ADDRESS}/32")),
    ] {
        settings.entry(key.to_owned()).or_insert(value);
    }
}

/// Records that `hook` completed (it succeeded, or its failure was resolved): joined adds
/// the remote unit to the members, departed removes it, broken ends the scope. The caller
/// saves the runtime together with the queue.
pub fn complete(runtime: &mut UnitRuntime, hook: &QueuedHook) {
    let Some(relation) = &hook.relation else {
        return;
    };
    match Event::of(&hook.hook) {
        Some(Event::Joined) => {
            if let (Some(scope), Some(remote)) = (
                runtime.relations.get_mut(&relation.id),
                &relation.remote_unit,
            ) {
                scope.members.insert(remote.clone());
            }
        }
        Some(Event::Departed) => {
            if let (Some(scope), Some(remote)) = (
                runtime.relations.get_mut(&relation.id),
                &relation.remote_unit,
            ) {
                scope.members.remove(remote);
            }
        }
        Some(Event::Broken) => {
            runtime.relations.remove(&relation.id);
            runtime.relation_settings.remove(&relation.id);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Who is on the other side

/// The remote units of `record` as `unit` sees them now: the other application's units, or
/// the other units of its own application for a peer relation.
fn remote_units(root: &StateRoot, unit: &UnitName, record: &RelationRecord) -> Vec<UnitName> {
    let remote = if record.remote_app == *unit.app() {
        AppRecord::load(root, unit.app()).ok()
    } else {
        AppRecord::load(root, &record.remote_app).ok()
    };
    remote
        .map(|app| app.unit_names())
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u != unit)
        .collect()
}

/// The hooks a unit runs when it starts (deploy, add-unit), with its application's
/// relations: install, relation-created of every relation, leader-elected (leader),
/// config-changed, start, then relation-joined and relation-changed for every remote unit.
/// The caller has entered the relations' scopes with [`enter_scopes`].
pub fn start_queue(
    root: &StateRoot,
    app: &AppRecord,
    unit: &UnitName,
    leader: bool,
) -> Vec<QueuedHook> {
    let mut hooks = vec![QueuedHook::from("install")];
    for record in &app.relations {
        hooks.push(relation_hook(record, Event::Created, None, None));
    }
    if leader {
        hooks.push(LEADER_ELECTED.into());
    }
    hooks.push("config-changed".into());
    hooks.push("start".into());
    for record in &app.relations {
        for remote in remote_units(root, unit, record) {
            let remote = remote.to_string();
            hooks.push(relation_hook(record, Event::Joined, Some(&remote), None));
            hooks.push(relation_hook(record, Event::Changed, Some(&remote), None));
        }
    }
    hooks
}

/// Enters every relation of `app` for a new unit's runtime.
pub fn enter_scopes(runtime: &mut UnitRuntime, app: &AppRecord) {
    for record in &app.relations {
        enter_scope(runtime, record);
    }
}

/// Creates the peer relations of a new application, one per `peers:` endpoint.
pub fn create_peer_relations(
    root: &StateRoot,
    app: &mut AppRecord,
    metadata: &Metadata,
) -> Result<(), RunnerError> {
    for (endpoint, relation) in &metadata.peers {
        let id = allocate_id(root)?;
        app.relations.push(RelationRecord {
            id,
            endpoint: endpoint.clone(),
            remote_app: app.name.clone(),
            remote_endpoint: endpoint.clone(),
            interface: relation.interface.clone(),
            role: Role::Peer,
            scope: relation.scope,
        });
    }
    Ok(())
}

/// After `new` units of `app` started: the units already on the other side of each relation
/// (remote applications' units, and the application's own older units for peer relations)
/// get relation-joined and relation-changed for each new unit.
pub fn announce_new_units(
    root: &StateRoot,
    app: &AppRecord,
    new: &[UnitName],
) -> Result<(), RunnerError> {
    for record in &app.relations {
        let others: Vec<UnitName> = if record.is_peer() {
            app.unit_names()
                .into_iter()
                .filter(|u| !new.contains(u))
                .collect()
        } else {
            AppRecord::load(root, &record.remote_app)
                .map(|a| a.unit_names())
                .unwrap_or_default()
        };
        let Some(remote_record) = mirror(root, record) else {
            continue;
        };
        for other in &others {
            let mut hooks = Vec::new();
            for unit in new {
                let unit = unit.to_string();
                hooks.push(relation_hook(
                    &remote_record,
                    Event::Joined,
                    Some(&unit),
                    None,
                ));
                hooks.push(relation_hook(
                    &remote_record,
                    Event::Changed,
                    Some(&unit),
                    None,
                ));
            }
            post(root, other, &hooks)?;
        }
    }
    Ok(())
}

/// The record of the same relation held by the other application.
fn mirror(root: &StateRoot, record: &RelationRecord) -> Option<RelationRecord> {
    if record.is_peer() {
        return Some(record.clone());
    }
    AppRecord::load(root, &record.remote_app)
        .ok()?
        .relation(record.id)
        .cloned()
}

/// The hooks a unit being removed runs before stop: relation-departed for every member
/// (itself departing), then relation-broken, for every relation it is in.
pub fn leaving_hooks(runtime: &UnitRuntime, unit: &UnitName) -> Vec<QueuedHook> {
    let me = unit.to_string();
    let mut hooks = Vec::new();
    for scope in runtime.relations.values() {
        for member in &scope.members {
            let mut hook = relation_hook(&scope.relation, Event::Departed, Some(member), None);
            if let Some(r) = hook.relation.as_mut() {
                r.departing_unit = Some(me.clone());
            }
            hooks.push(hook);
        }
    }
    for scope in runtime.relations.values() {
        hooks.push(relation_hook(&scope.relation, Event::Broken, None, None));
    }
    hooks
}

/// Tells the units on the other side of `unit`'s relations that it left: relation-departed
/// with its last settings. Called before the unit's state is deleted.
pub fn announce_departure(root: &StateRoot, unit: &UnitName) -> Result<(), RunnerError> {
    let Ok(app) = AppRecord::load(root, unit.app()) else {
        return Ok(());
    };
    let runtime = UnitRuntime::load(root, unit).ok();
    let me = unit.to_string();
    for record in &app.relations {
        let Some(remote_record) = mirror(root, record) else {
            continue;
        };
        let settings = runtime
            .as_ref()
            .and_then(|r| r.relation_settings.get(&record.tool_id()).cloned())
            .unwrap_or_default();
        for other in remote_units(root, unit, record) {
            let hook = relation_hook(
                &remote_record,
                Event::Departed,
                Some(&me),
                Some((&me, settings.clone())),
            );
            post(root, &other, &[hook])?;
        }
    }
    Ok(())
}

/// After a hook of `unit` committed: the relations whose settings it changed get
/// relation-changed on the remote side. A unit-settings change goes to each remote unit that
/// has joined `unit` (one still joining reads the new settings in its own joined/changed); an
/// application-settings change goes to every remote unit, without a remote unit.
pub fn announce(
    root: &StateRoot,
    unit: &UnitName,
    effects: &HookEffects,
    unit_before: &BTreeMap<u32, Settings>,
    app_before: Option<&BTreeMap<u32, Settings>>,
) -> Result<(), RunnerError> {
    if effects.relation_settings.is_empty() {
        return Ok(());
    }
    let app = AppRecord::load(root, unit.app())?;
    let me = unit.to_string();
    for (id, update) in &effects.relation_settings {
        let Some(record) = app.relation(u64::from(*id)) else {
            continue;
        };
        let unit_changed = update
            .unit
            .as_ref()
            .is_some_and(|new| unit_before.get(id) != Some(new));
        let app_changed = update
            .application
            .as_ref()
            .is_some_and(|new| app_before.is_some_and(|before| before.get(id) != Some(new)));
        if !unit_changed && !app_changed {
            continue;
        }
        let Some(remote_record) = mirror(root, record) else {
            continue;
        };
        for other in remote_units(root, unit, record) {
            let mut hooks = Vec::new();
            if unit_changed {
                let joined = UnitRuntime::load(root, &other)
                    .ok()
                    .and_then(|r| r.relations.get(id).map(|s| s.members.contains(&me)))
                    .unwrap_or(false);
                if joined {
                    hooks.push(relation_hook(
                        &remote_record,
                        Event::Changed,
                        Some(&me),
                        None,
                    ));
                }
            }
            if app_changed {
                hooks.push(relation_hook(&remote_record, Event::Changed, None, None));
            }
            post(root, &other, &hooks)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Running what was posted

/// Every unit of the state root with hooks waiting in its inbox.
fn units_with_posts(root: &StateRoot) -> Result<Vec<UnitName>, RunnerError> {
    let mut units = Vec::new();
    for app in AppRecord::list(root)? {
        let Ok(record) = AppRecord::load(root, &app) else {
            continue;
        };
        for unit in record.unit_names() {
            if !inbox_files(root, &unit)?.is_empty() {
                units.push(unit);
            }
        }
    }
    Ok(units)
}

/// Runs every unit that has posted hooks, round after round, until no unit has any (at most
/// [`SETTLE_ROUNDS`] rounds). Returns one report per unit that ran, in unit order.
pub fn settle(
    runner: &Runner,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<Vec<UnitReport>, RunnerError> {
    let mut merged: BTreeMap<UnitName, UnitReport> = BTreeMap::new();
    for _ in 0..SETTLE_ROUNDS {
        let pending = units_with_posts(runner.root())?;
        if pending.is_empty() {
            return Ok(merged.into_values().collect());
        }
        let reports = for_each_unit(&pending, parallel, |unit, runtime| {
            queue_and_run(runner, unit, &[], runtime, on_wait)
        });
        for report in reports {
            match merged.get_mut(&report.unit) {
                Some(existing) => existing.absorb(report),
                None => {
                    merged.insert(report.unit.clone(), report);
                }
            }
        }
    }
    tracing::warn!(
        rounds = SETTLE_ROUNDS,
        "relation hooks still being posted; the rest stays queued for the next command"
    );
    Ok(merged.into_values().collect())
}

// ---------------------------------------------------------------------------------------
// relate / unrelate

/// A relation as `relate`, `unrelate` and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct RelationSummary {
    /// The relation id.
    pub id: u64,
    /// The interface.
    pub interface: String,
    /// `container` or `global`.
    pub scope: Scope,
    /// The two sides, `app:endpoint`, provider first.
    pub endpoints: [String; 2],
}

/// What `relate` or `unrelate` did.
#[derive(Debug, Serialize)]
pub struct RelateReport {
    /// The relation.
    pub relation: RelationSummary,
    /// Every unit that ran hooks, with its runs.
    pub units: Vec<UnitReport>,
}

/// Takes the locks of both applications, in name order (one lock for one application).
fn lock_apps(
    root: &StateRoot,
    a: &AppName,
    b: &AppName,
    on_wait: WaitNotice<'_>,
) -> Result<Vec<AppLock>, RunnerError> {
    let mut names = vec![a.clone(), b.clone()];
    names.sort();
    names.dedup();
    names
        .iter()
        .map(|name| AppLock::acquire(root, name, on_wait).map_err(RunnerError::from))
        .collect()
}

struct Side<'a> {
    app: &'a AppRecord,
    metadata: &'a Metadata,
}

/// One candidate pair of endpoints.
#[derive(Debug, Clone)]
struct Pair {
    a: (String, Role, Relation),
    b: (String, Role, Relation),
}

fn endpoints_of(metadata: &Metadata) -> Vec<(String, Role, Relation)> {
    let mut all: Vec<(String, Role, Relation)> = metadata
        .endpoints()
        .map(|(n, role, r)| (n.to_owned(), role, r.clone()))
        .collect();
    if !all.iter().any(|(n, ..)| n == "juju-info")
        && let Some((role, relation)) = metadata.endpoint("juju-info")
    {
        all.push(("juju-info".to_owned(), role, relation.clone()));
    }
    all
}

fn named(side: &Side<'_>, endpoint: &str) -> Result<(String, Role, Relation), RelationError> {
    let (role, relation) =
        side.metadata
            .endpoint(endpoint)
            .ok_or_else(|| RelationError::UnknownEndpoint {
                app: side.app.name.clone(),
                endpoint: endpoint.to_owned(),
            })?;
    if role == Role::Peer {
        return Err(RelationError::PeerEndpoint {
            endpoint: format!("{}:{endpoint}", side.app.name),
        });
    }
    Ok((endpoint.to_owned(), role, relation.clone()))
}

fn compatible(a: &(String, Role, Relation), b: &(String, Role, Relation)) -> bool {
    a.2.interface == b.2.interface
        && matches!(
            (a.1, b.1),
            (Role::Provider, Role::Requirer) | (Role::Requirer, Role::Provider)
        )
}

/// Juju's endpoint resolution: named endpoints are checked; unnamed ones are inferred as
/// the unique compatible pair (implicit `juju-info` pairs only when nothing else matches).
fn resolve_pair(
    a_spec: &EndpointSpec,
    a: &Side<'_>,
    b_spec: &EndpointSpec,
    b: &Side<'_>,
) -> Result<Pair, RelationError> {
    let a_named = a_spec
        .endpoint
        .as_deref()
        .map(|e| named(a, e))
        .transpose()?;
    let b_named = b_spec
        .endpoint
        .as_deref()
        .map(|e| named(b, e))
        .transpose()?;
    if let (Some(x), Some(y)) = (&a_named, &b_named) {
        if x.2.interface != y.2.interface {
            return Err(RelationError::InterfaceMismatch {
                a: a_spec.to_string(),
                a_interface: x.2.interface.clone(),
                b: b_spec.to_string(),
                b_interface: y.2.interface.clone(),
            });
        }
        if !compatible(x, y) {
            return Err(RelationError::Roles {
                a: a_spec.to_string(),
                a_role: x.1,
                b: b_spec.to_string(),
                b_role: y.1,
            });
        }
        return Ok(Pair {
            a: x.clone(),
            b: y.clone(),
        });
    }
    let a_options = a_named.map_or_else(
        || {
            endpoints_of(a.metadata)
                .into_iter()
                .filter(|e| e.1 != Role::Peer)
                .collect()
        },
        |e| vec![e],
    );
    let b_options = b_named.map_or_else(
        || {
            endpoints_of(b.metadata)
                .into_iter()
                .filter(|e| e.1 != Role::Peer)
                .collect()
        },
        |e| vec![e],
    );
    let mut candidates: Vec<Pair> = Vec::new();
    for x in &a_options {
        for y in &b_options {
            if compatible(x, y) {
                candidates.push(Pair {
                    a: x.clone(),
                    b: y.clone(),
                });
            }
        }
    }
    let explicit: Vec<Pair> = candidates
        .iter()
        .filter(|p| p.a.0 != "juju-info" && p.b.0 != "juju-info")
        .cloned()
        .collect();
    if !explicit.is_empty() {
        candidates = explicit;
    }
    match candidates.len() {
        0 => Err(RelationError::NoMatch {
            a: a_spec.to_string(),
            b: b_spec.to_string(),
        }),
        1 => Ok(candidates.remove(0)),
        _ => Err(RelationError::Ambiguous {
            a: a_spec.to_string(),
            b: b_spec.to_string(),
            candidates: candidates
                .iter()
                .map(|p| format!("{}:{} {}:{}", a.app.name, p.a.0, b.app.name, p.b.0))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn summary_of(record: &RelationRecord, app: &AppName) -> RelationSummary {
    let here = format!("{app}:{}", record.endpoint);
    let there = format!("{}:{}", record.remote_app, record.remote_endpoint);
    RelationSummary {
        id: record.id,
        interface: record.interface.clone(),
        scope: record.scope,
        endpoints: if record.role == Role::Requirer {
            [there, here]
        } else {
            [here, there]
        },
    }
}

/// `relate A[:EP] B[:EP]`: checks everything first (a refusal changes nothing), records the
/// relation on both applications, then every unit of each side runs relation-created and
/// relation-joined/changed for every unit of the other side, and the settings changes they
/// make run relation-changed on the other side, until the relation has settled.
pub fn relate(
    runner: &Runner,
    a_spec: &EndpointSpec,
    b_spec: &EndpointSpec,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<RelateReport, RunnerError> {
    let root = runner.root();
    let locks = lock_apps(root, &a_spec.app, &b_spec.app, on_wait)?;
    let mut a_app = AppRecord::load(root, &a_spec.app)?;
    let mut b_app = AppRecord::load(root, &b_spec.app)?;
    let a_charm = runner.charm(&a_app.charm, a_app.name.as_str())?;
    let b_charm = runner.charm(&b_app.charm, b_app.name.as_str())?;
    let pair = resolve_pair(
        a_spec,
        &Side {
            app: &a_app,
            metadata: &a_charm.files.metadata,
        },
        b_spec,
        &Side {
            app: &b_app,
            metadata: &b_charm.files.metadata,
        },
    )?;
    let a_key = format!("{}:{}", a_app.name, pair.a.0);
    let b_key = format!("{}:{}", b_app.name, pair.b.0);
    if a_app.name == b_app.name {
        return Err(RelationError::SelfRelation {
            app: a_app.name.clone(),
        }
        .into());
    }
    if let Some(existing) = a_app.relations.iter().find(|r| {
        r.endpoint == pair.a.0 && r.remote_app == b_app.name && r.remote_endpoint == pair.b.0
    }) {
        return Err(RelationError::Exists {
            a: a_key,
            b: b_key,
            id: existing.id,
        }
        .into());
    }
    for (app, (endpoint, _, relation)) in [(&a_app, &pair.a), (&b_app, &pair.b)] {
        if let Some(limit) = relation.limit {
            let count = app
                .relations
                .iter()
                .filter(|r| r.endpoint == *endpoint)
                .count();
            if count >= limit as usize {
                return Err(RelationError::Limit {
                    endpoint: format!("{}:{endpoint}", app.name),
                    limit,
                    count,
                }
                .into());
            }
        }
    }
    let scope = if pair.a.2.scope == Scope::Container || pair.b.2.scope == Scope::Container {
        Scope::Container
    } else {
        Scope::Global
    };
    if scope == Scope::Container
        && !a_charm.files.metadata.subordinate
        && !b_charm.files.metadata.subordinate
    {
        return Err(RelationError::ContainerScope { a: a_key, b: b_key }.into());
    }

    let id = allocate_id(root)?;
    let a_record = RelationRecord {
        id,
        endpoint: pair.a.0.clone(),
        remote_app: b_app.name.clone(),
        remote_endpoint: pair.b.0.clone(),
        interface: pair.a.2.interface.clone(),
        role: pair.a.1,
        scope,
    };
    let b_record = RelationRecord {
        id,
        endpoint: pair.b.0.clone(),
        remote_app: a_app.name.clone(),
        remote_endpoint: pair.a.0.clone(),
        interface: pair.b.2.interface.clone(),
        role: pair.b.1,
        scope,
    };
    a_app.relations.push(a_record.clone());
    b_app.relations.push(b_record.clone());
    b_app.save(root)?;
    a_app.save(root)?;
    tracing::info!(relation = id, a = %a_key, b = %b_key, "relation created");
    for (app, record, remote) in [(&a_app, &a_record, &b_app), (&b_app, &b_record, &a_app)] {
        for unit in app.unit_names() {
            let mut hooks = vec![relation_hook(record, Event::Created, None, None)];
            for other in remote.unit_names() {
                let other = other.to_string();
                hooks.push(relation_hook(record, Event::Joined, Some(&other), None));
                hooks.push(relation_hook(record, Event::Changed, Some(&other), None));
            }
            post(root, &unit, &hooks)?;
        }
    }
    drop(locks);
    let units = settle(runner, parallel, on_wait)?;
    Ok(RelateReport {
        relation: summary_of(&a_record, &a_app.name),
        units,
    })
}

/// What `unrelate` is asked to remove.
#[derive(Debug, Clone)]
pub enum UnrelateTarget {
    /// `unrelate A[:EP] B[:EP]`.
    Between(EndpointSpec, EndpointSpec),
    /// `unrelate ID` (a number, or `endpoint:number`).
    Id(u64),
}

/// Removes the relation `id` between `a` and `b` from both records (the caller holds both
/// application locks) and posts relation-departed for every remote unit, then
/// relation-broken, to every unit of both sides.
fn break_relation(
    root: &StateRoot,
    a: &mut AppRecord,
    b: &mut AppRecord,
    id: u64,
) -> Result<RelationSummary, RunnerError> {
    let a_record = a.relation(id).cloned();
    let b_record = b.relation(id).cloned();
    a.relations.retain(|r| r.id != id);
    b.relations.retain(|r| r.id != id);
    b.save(root)?;
    a.save(root)?;
    let pairs = [(a_record.clone(), &*a, &*b), (b_record, &*b, &*a)];
    for (record, app, remote) in pairs {
        let Some(record) = record else { continue };
        let remote_settings: Vec<(String, Settings)> = remote
            .unit_names()
            .into_iter()
            .map(|u| {
                let settings = UnitRuntime::load(root, &u)
                    .ok()
                    .and_then(|r| r.relation_settings.get(&record.tool_id()).cloned())
                    .unwrap_or_default();
                (u.to_string(), settings)
            })
            .collect();
        for unit in app.unit_names() {
            let mut hooks: Vec<QueuedHook> = remote_settings
                .iter()
                .map(|(other, settings)| {
                    relation_hook(
                        &record,
                        Event::Departed,
                        Some(other),
                        Some((other, settings.clone())),
                    )
                })
                .collect();
            hooks.push(relation_hook(&record, Event::Broken, None, None));
            post(root, &unit, &hooks)?;
        }
    }
    tracing::info!(relation = id, "relation removed");
    let record = a_record.expect("the relation was found on the first application");
    Ok(summary_of(&record, &a.name))
}

/// `unrelate`: removes a relation (peer relations cannot be removed); both sides run
/// relation-departed for each remote unit, then relation-broken.
pub fn unrelate(
    runner: &Runner,
    target: &UnrelateTarget,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<RelateReport, RunnerError> {
    let root = runner.root();
    let (a_name, b_name, id) = match target {
        UnrelateTarget::Id(id) => {
            let found = AppRecord::list(root)?
                .into_iter()
                .filter_map(|name| AppRecord::load(root, &name).ok())
                .find_map(|app| app.relation(*id).cloned().map(|r| (app.name.clone(), r)));
            let Some((app, record)) = found else {
                return Err(RelationError::UnknownRelation { id: *id }.into());
            };
            if record.is_peer() {
                return Err(RelationError::PeerRemoval { key: record.key() }.into());
            }
            (app, record.remote_app, *id)
        }
        UnrelateTarget::Between(a, b) => {
            let app = AppRecord::load(root, &a.app)?;
            AppRecord::load(root, &b.app)?;
            let matches: Vec<&RelationRecord> = app
                .relations
                .iter()
                .filter(|r| {
                    r.remote_app == b.app
                        && a.endpoint.as_ref().is_none_or(|e| *e == r.endpoint)
                        && b.endpoint.as_ref().is_none_or(|e| *e == r.remote_endpoint)
                })
                .collect();
            match matches.as_slice() {
                [] => {
                    return Err(RelationError::NotRelated {
                        a: a.to_string(),
                        b: b.to_string(),
                    }
                    .into());
                }
                [one] if one.is_peer() => {
                    return Err(RelationError::PeerRemoval { key: one.key() }.into());
                }
                [one] => (a.app.clone(), b.app.clone(), one.id),
                many => {
                    return Err(RelationError::Ambiguous {
                        a: a.to_string(),
                        b: b.to_string(),
                        candidates: many
                            .iter()
                            .map(|r| {
                                format!(
                                    "{}:{} {}:{}",
                                    a.app, r.endpoint, r.remote_app, r.remote_endpoint
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                    .into());
                }
            }
        }
    };
    let locks = lock_apps(root, &a_name, &b_name, on_wait)?;
    let mut a = AppRecord::load(root, &a_name)?;
    let mut b = AppRecord::load(root, &b_name)?;
    if a.relation(id).is_none() {
        return Err(RelationError::UnknownRelation { id }.into());
    }
    let relation = break_relation(root, &mut a, &mut b, id)?;
    drop(locks);
    let units = settle(runner, parallel, on_wait)?;
    Ok(RelateReport { relation, units })
}

/// Before an application is removed: removes each of its relations with other
/// applications (both sides run departed and broken), so no record names it afterwards.
pub fn unrelate_all(
    runner: &Runner,
    app: &AppName,
    parallel: usize,
    on_wait: WaitNotice<'_>,
) -> Result<Vec<UnitReport>, RunnerError> {
    let root = runner.root();
    let record = AppRecord::load(root, app)?;
    let mut any = false;
    for relation in record.relations.iter().filter(|r| !r.is_peer()) {
        let locks = lock_apps(root, app, &relation.remote_app, on_wait)?;
        let mut a = AppRecord::load(root, app)?;
        if a.relation(relation.id).is_none() {
            continue;
        }
        match AppRecord::load(root, &relation.remote_app) {
            Ok(mut b) => {
                break_relation(root, &mut a, &mut b, relation.id)?;
            }
            Err(UnitError::UnknownApp { .. }) => {
                a.relations.retain(|r| r.id != relation.id);
                a.save(root)?;
            }
            Err(e) => return Err(e.into()),
        }
        drop(locks);
        any = true;
    }
    if !any {
        return Ok(Vec::new());
    }
    settle(runner, parallel, on_wait)
}
