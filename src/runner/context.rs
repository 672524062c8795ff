//! Building what a hook sees from the model: its [`HookContext`] (read by the hook tools)
//! and its environment (DESIGN rule 2, built from scratch).

use std::collections::BTreeMap;
use std::path::Path;

use crate::charm::{CharmFiles, HookKind, HookName, RelationEvent};
use crate::model::runtime::{AppRuntime, UnitRuntime};
use crate::model::{AppRecord, UnitName};
use crate::store::StateRoot;
use crate::tools::context::{
    ActionContext, GoalState, GoalStateStatus, HookContext, HookRelation, RelationContext,
};

/// The Juju version hooks are told they run under (ops gates features on it).
pub const JUJU_VERSION: &str = "3.6.0";

/// The model name hooks see.
pub const MODEL_NAME: &str = "hookbox";

/// Where the hook tools (symlinks to the hookbox binary) appear inside the sandbox.
pub fn tools_dir_in_sandbox(unit: &UnitName) -> String {
    format!("/var/lib/juju/tools/unit-{}", unit.dir_name())
}

/// Where the hookbox binary appears inside the sandbox (the tools' symlink target).
pub const BINARY_IN_SANDBOX: &str = "/var/lib/juju/tools/hookbox";

/// The directory holding the hook-tool socket inside the sandbox.
pub fn agent_dir_in_sandbox(unit: &UnitName) -> String {
    format!("/var/lib/juju/agents/unit-{}/run", unit.dir_name())
}

/// The socket's file name in the agent directory.
pub const SOCKET_NAME: &str = "agent.socket";

/// What a relation hook runs for, and the departing unit of relation-departed.
#[derive(Debug, Clone, Default)]
pub struct RelationTarget {
    /// The relation, its remote unit and application.
    pub relation: HookRelation,
    /// `JUJU_DEPARTING_UNIT`.
    pub departing_unit: Option<String>,
    /// The departing unit's last settings (readable during relation-departed even when the
    /// unit is gone).
    pub departing_settings: Option<crate::tools::context::Settings>,
}

/// Inputs of [`build_context`] that do not come from the model.
pub struct ContextInputs<'a> {
    /// The unit.
    pub unit: &'a UnitName,
    /// The hook.
    pub hook: &'a HookName,
    /// Its context id.
    pub context_id: &'a str,
    /// The unit's charm.
    pub charm: &'a CharmFiles,
    /// The unit's runtime state.
    pub runtime: &'a UnitRuntime,
    /// Its application.
    pub app: &'a AppRecord,
    /// Its application's runtime state.
    pub app_runtime: &'a AppRuntime,
    /// The relation of a relation hook.
    pub relation: Option<&'a RelationTarget>,
    /// The parameters of an action.
    pub action_params: &'a BTreeMap<String, serde_json::Value>,
}

/// The hook's context, read from the model: config of the unit's charm (defaults overlaid
/// by the application's user settings for that charm), relations from the application
/// record, leader, statuses and ports.
pub fn build_context(root: &StateRoot, inputs: &ContextInputs<'_>) -> HookContext {
    let ContextInputs {
        unit,
        hook,
        context_id,
        charm,
        runtime,
        app,
        app_runtime,
        relation,
        action_params,
    } = inputs;
    let user_set: BTreeMap<String, crate::charm::ConfigValue> = app
        .settings_for(&runtime.charm)
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_value(v).ok().map(|v| (k, v)))
        .collect();
    let effective = charm.config.effective(&user_set);
    let config = charm
        .config
        .options
        .keys()
        .map(|name| (name.clone(), effective.get(name).cloned()))
        .collect();

    let mut unit_statuses = BTreeMap::new();
    let mut goal_units = BTreeMap::new();
    for other in app.unit_names() {
        let status = if other == **unit {
            Some(runtime.workload.clone())
        } else {
            UnitRuntime::load(root, &other).ok().map(|r| r.workload)
        };
        if let Some(status) = status {
            goal_units.insert(
                other.to_string(),
                GoalStateStatus {
                    status: status.status.clone(),
                    since: None,
                },
            );
            unit_statuses.insert(other.to_string(), status);
        }
    }

    let (relations, goal_relations) = relation_contexts(root, inputs);

    let action = (*hook.kind() == HookKind::Action).then(|| {
        let mut params: BTreeMap<String, serde_json::Value> = charm
            .metadata
            .actions
            .get(hook.as_str())
            .map(|spec| {
                spec.params
                    .iter()
                    .filter_map(|(name, schema)| {
                        schema.get("default").map(|d| (name.clone(), d.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        params.extend(action_params.iter().map(|(k, v)| (k.clone(), v.clone())));
        ActionContext {
            name: hook.as_str().to_owned(),
            params,
        }
    });

    HookContext {
        context_id: (*context_id).to_owned(),
        unit: unit.to_string(),
        application: app.name.to_string(),
        is_leader: app.leader == Some(unit.number()),
        config,
        relations,
        hook_relation: relation.map(|r| r.relation.clone()),
        leader_settings: app_runtime.leader_settings.clone(),
        unit_status: runtime.workload.clone(),
        application_status: app_runtime.status.clone(),
        unit_statuses,
        opened_ports: runtime.ports.iter().cloned().collect(),
        machine_ports: machine_ports(root, unit),
        private_address: Some("127.0.0.1".to_owned()),
        public_address: Some("127.0.0.1".to_owned()),
        networks: BTreeMap::new(),
        goal_state: GoalState {
            units: goal_units,
            relations: goal_relations,
        },
        action,
        storage: BTreeMap::new(),
        storage_id: None,
    }
}

/// The relations a hook sees. Live: the application's relations (the unit's members from
/// its scope, or none before it entered). Not live: relations gone from the application whose
/// relation-broken the unit has still to run (left out of `relation-ids`). The hook's own
/// relation shows its remote unit as a member during joined and changed, the departing unit
/// out of the members (its settings still readable) during departed, and no members during
/// broken.
fn relation_contexts(
    root: &StateRoot,
    inputs: &ContextInputs<'_>,
) -> (
    Vec<RelationContext>,
    BTreeMap<String, BTreeMap<String, GoalStateStatus>>,
) {
    use crate::model::app::RelationRecord;
    let ContextInputs {
        unit,
        hook,
        runtime,
        app,
        app_runtime,
        relation,
        ..
    } = inputs;
    let event = match hook.kind() {
        HookKind::Relation { event, .. } => Some(*event),
        _ => None,
    };
    let mut records: Vec<(&RelationRecord, bool)> =
        app.relations.iter().map(|r| (r, true)).collect();
    for scope in runtime.relations.values() {
        if app.relation(scope.relation.id).is_none() {
            records.push((&scope.relation, false));
        }
    }
    let mut relations = Vec::new();
    let mut goal_relations = BTreeMap::new();
    for (record, live) in records {
        let id = record.tool_id();
        let mut members: std::collections::BTreeSet<String> = runtime
            .relations
            .get(&id)
            .map(|s| s.members.clone())
            .unwrap_or_default();
        let mut departed_units = BTreeMap::new();
        let this_hook = relation.filter(|t| t.relation.id == id);
        if let (Some(target), Some(event)) = (this_hook, event) {
            match event {
                RelationEvent::Joined | RelationEvent::Changed => {
                    members.extend(target.relation.remote_unit.clone());
                }
                RelationEvent::Departed => {
                    if let Some(departing) = target
                        .relation
                        .remote_unit
                        .as_ref()
                        .or(target.departing_unit.as_ref())
                    {
                        members.remove(departing);
                        let settings = target.departing_settings.clone().or_else(|| {
                            UnitName::parse(departing).ok().and_then(|u| {
                                UnitRuntime::load(root, &u)
                                    .ok()
                                    .and_then(|r| r.relation_settings.get(&id).cloned())
                            })
                        });
                        departed_units.insert(departing.clone(), settings.unwrap_or_default());
                    }
                }
                RelationEvent::Broken => members.clear(),
                RelationEvent::Created => {}
            }
        }
        members.remove(&unit.to_string());
        let mut remote_units = BTreeMap::new();
        for member in members {
            let settings = UnitName::parse(&member)
                .ok()
                .and_then(|u| UnitRuntime::load(root, &u).ok())
                .and_then(|r| r.relation_settings.get(&id).cloned())
                .unwrap_or_default();
            if !record.is_peer() {
                goal_relations
                    .entry(record.endpoint.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(
                        member.clone(),
                        GoalStateStatus {
                            status: "joined".to_owned(),
                            since: None,
                        },
                    );
            }
            remote_units.insert(member, settings);
        }
        if !record.is_peer() && live {
            goal_relations
                .entry(record.endpoint.clone())
                .or_insert_with(BTreeMap::new)
                .insert(
                    record.remote_app.to_string(),
                    GoalStateStatus {
                        status: "joined".to_owned(),
                        since: None,
                    },
                );
        }
        let remote_application_settings = if record.remote_app == app.name {
            app_runtime.relation_settings.get(&id).cloned()
        } else {
            AppRuntime::load(root, &record.remote_app)
                .ok()
                .and_then(|r| r.relation_settings.get(&id).cloned())
        }
        .unwrap_or_default();
        relations.push(RelationContext {
            id,
            endpoint: record.endpoint.clone(),
            remote_application: record.remote_app.to_string(),
            remote_units,
            departed_units,
            remote_application_settings,
            local_unit_settings: runtime
                .relation_settings
                .get(&id)
                .cloned()
                .unwrap_or_default(),
            local_application_settings: app_runtime
                .relation_settings
                .get(&id)
                .cloned()
                .unwrap_or_default(),
            live,
        });
    }
    (relations, goal_relations)
}

/// Ports other units of this state root (one machine) have open.
fn machine_ports(
    root: &StateRoot,
    unit: &UnitName,
) -> BTreeMap<String, Vec<crate::tools::context::PortRange>> {
    let mut ports = BTreeMap::new();
    for app in AppRecord::list(root).unwrap_or_default() {
        let Ok(record) = AppRecord::load(root, &app) else {
            continue;
        };
        for other in record.unit_names() {
            if other == *unit {
                continue;
            }
            if let Ok(runtime) = UnitRuntime::load(root, &other)
                && !runtime.ports.is_empty()
            {
                ports.insert(
                    other.to_string(),
                    runtime.ports.iter().map(|p| p.range).collect(),
                );
            }
        }
    }
    ports
}
/// Inputs of [`hook_environment`].
pub struct EnvInputs<'a> {
    /// The unit.
    pub unit: &'a UnitName,
    /// The hook.
    pub hook: &'a HookName,
    /// Its context id.
    pub context_id: &'a str,
    /// The charm dir inside the sandbox.
    pub charm_path: &'a Path,
    /// The state root's model uuid.
    pub model_uuid: &'a str,
    /// The relation of a relation hook.
    pub relation: Option<&'a RelationTarget>,
    /// The relation's endpoint name (for `JUJU_RELATION`).
    pub relation_endpoint: Option<&'a str>,
    /// The action's uuid, for actions.
    pub action_uuid: Option<&'a str>,
}

/// The complete environment of a hook (rule 2); nothing is inherited.
pub fn hook_environment(inputs: &EnvInputs<'_>) -> Vec<(String, String)> {
    let charm_dir = inputs.charm_path.display().to_string();
    let mut env: Vec<(String, String)> = vec![
        ("CHARM_DIR".into(), charm_dir.clone()),
        ("JUJU_CHARM_DIR".into(), charm_dir),
        ("JUJU_CONTEXT_ID".into(), inputs.context_id.to_owned()),
        ("JUJU_HOOK_NAME".into(), inputs.hook.as_str().to_owned()),
        (
            "JUJU_DISPATCH_PATH".into(),
            inputs.hook.dispatch_path().display().to_string(),
        ),
        ("JUJU_UNIT_NAME".into(), inputs.unit.to_string()),
        ("JUJU_MODEL_NAME".into(), MODEL_NAME.to_owned()),
        ("JUJU_MODEL_UUID".into(), inputs.model_uuid.to_owned()),
        ("JUJU_PRINCIPAL_UNIT".into(), String::new()),
        ("JUJU_VERSION".into(), JUJU_VERSION.to_owned()),
        (
            "JUJU_AGENT_SOCKET_ADDRESS".into(),
            format!("{}/{SOCKET_NAME}", agent_dir_in_sandbox(inputs.unit)),
        ),
        ("JUJU_AGENT_SOCKET_NETWORK".into(), "unix".into()),
        (
            "PATH".into(),
            format!(
                "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                tools_dir_in_sandbox(inputs.unit)
            ),
        ),
        ("LANG".into(), "C.UTF-8".into()),
        ("DEBIAN_FRONTEND".into(), "noninteractive".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    if let (Some(target), Some(endpoint)) = (inputs.relation, inputs.relation_endpoint) {
        env.push(("JUJU_RELATION".into(), endpoint.to_owned()));
        env.push((
            "JUJU_RELATION_ID".into(),
            format!("{endpoint}:{}", target.relation.id),
        ));
        env.push((
            "JUJU_REMOTE_UNIT".into(),
            target.relation.remote_unit.clone().unwrap_or_default(),
        ));
        env.push((
            "JUJU_REMOTE_APP".into(),
            target
                .relation
                .remote_application
                .clone()
                .unwrap_or_default(),
        ));
        if let Some(departing) = &target.departing_unit {
            env.push(("JUJU_DEPARTING_UNIT".into(), departing.clone()));
        }
    }
    if let Some(uuid) = inputs.action_uuid {
        env.push(("JUJU_ACTION_NAME".into(), inputs.hook.as_str().to_owned()));
        env.push(("JUJU_ACTION_UUID".into(), uuid.to_owned()));
        env.push(("JUJU_ACTION_TAG".into(), format!("action-{uuid}")));
    }
    env
}
