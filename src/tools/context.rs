//! The read-only snapshot of a unit's world that the runner fills before a hook
//! ([`HookContext`]), and what the hook's tool calls changed ([`HookEffects`]), which the
//! runner applies only when the hook succeeds (DESIGN.md rule 3).
//!
//! Both are plain serde types over `BTreeMap`s so the runner can persist them as they are.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Relation or leader settings: string keys to string values.
pub type Settings = BTreeMap<String, String>;

/// Everything the hook tools can read during one hook run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookContext {
    /// The hook's context id (`<unit>-<hook>-<random>`); tools presenting another are refused.
    pub context_id: String,
    /// This unit, `app/N`.
    pub unit: String,
    /// This unit's application.
    pub application: String,
    /// Whether this unit is its application's leader.
    pub is_leader: bool,
    /// Charm config: every option with its value (user-set or default); `None` when it has
    /// neither (shown only by `config-get --all`).
    pub config: BTreeMap<String, Option<ConfigValue>>,
    /// Every relation the unit takes part in, including the one a relation-broken hook is for.
    pub relations: Vec<RelationContext>,
    /// The relation a relation hook runs for (sets the `-r` default).
    pub hook_relation: Option<HookRelation>,
    /// The application's leader settings.
    pub leader_settings: Settings,
    /// This unit's workload status.
    pub unit_status: WorkloadStatus,
    /// The application's status (read by the leader with `status-get --application`).
    pub application_status: WorkloadStatus,
    /// The workload status of every unit of the application, by unit name.
    pub unit_statuses: BTreeMap<String, WorkloadStatus>,
    /// The port ranges this unit has open.
    pub opened_ports: Vec<OpenedPort>,
    /// Port ranges other units on the same machine have open, by unit (for conflicts).
    pub machine_ports: BTreeMap<String, Vec<PortRange>>,
    /// The unit's private address (`unit-get private-address`).
    pub private_address: Option<String>,
    /// The unit's public address (`unit-get public-address`).
    pub public_address: Option<String>,
    /// Network info per endpoint or extra binding name (`network-get`).
    pub networks: BTreeMap<String, NetworkInfo>,
    /// The goal state (`goal-state`).
    pub goal_state: GoalState,
    /// The running action, when the hook is an action.
    pub action: Option<ActionContext>,
    /// Storage attached to the unit, by storage id (`data/0`).
    pub storage: BTreeMap<String, StorageAttachment>,
    /// The storage instance a storage hook runs for (`JUJU_STORAGE_ID`, the `-s` default).
    pub storage_id: Option<String>,
}

/// A charm config value, typed as config.yaml declares it: the charm's own type (the same
/// untagged serde shape crosses the hook-tool socket).
pub use crate::charm::ConfigValue;

/// One relation as this unit sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelationContext {
    /// The relation id (the `N` of `<endpoint>:N`).
    pub id: u32,
    /// This unit's endpoint name.
    pub endpoint: String,
    /// The application on the other side (this application for a peer relation).
    pub remote_application: String,
    /// The remote units in scope, with their settings.
    pub remote_units: BTreeMap<String, Settings>,
    /// Units that left scope but whose settings a hook may still read (the departing unit).
    pub departed_units: BTreeMap<String, Settings>,
    /// The remote application's settings.
    pub remote_application_settings: Settings,
    /// This unit's settings in the relation.
    pub local_unit_settings: Settings,
    /// This application's settings in the relation.
    pub local_application_settings: Settings,
    /// False for a relation that is being broken (left out of `relation-ids`).
    #[serde(default = "default_true")]
    pub live: bool,
}

fn default_true() -> bool {
    true
}

impl RelationContext {
    /// The relation's display id, `<endpoint>:<id>`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.endpoint, self.id)
    }
}

/// The relation a relation hook runs for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookRelation {
    /// The relation id.
    pub id: u32,
    /// `JUJU_REMOTE_UNIT` (none for app-level events and relation-broken).
    pub remote_unit: Option<String>,
    /// `JUJU_REMOTE_APP`.
    pub remote_application: Option<String>,
}

/// A workload status as `status-set` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadStatus {
    /// `maintenance`, `blocked`, `waiting`, `active` (or `unknown` before any is set).
    pub status: String,
    /// The message.
    pub message: String,
    /// Extra data (`status-data`).
    pub data: BTreeMap<String, serde_json::Value>,
}

impl Default for WorkloadStatus {
    fn default() -> Self {
        Self {
            status: "unknown".to_owned(),
            message: String::new(),
            data: BTreeMap::new(),
        }
    }
}

/// A transport protocol of a port range; the order is Juju's sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ICMP (no ports).
    Icmp,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A port range, `80/tcp`, `8000-8100/udp` or `icmp` (ports -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortRange {
    /// The protocol (sorts first).
    pub protocol: Protocol,
    /// First port, -1 for ICMP.
    pub from: i32,
    /// Last port, -1 for ICMP.
    pub to: i32,
}

impl PortRange {
    /// Juju's `PortRange.ConflictsWith`.
    pub fn conflicts_with(&self, other: &PortRange) -> bool {
        self.protocol == other.protocol && self.to >= other.from && other.to >= self.from
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Icmp => return f.write_str("icmp"),
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        if self.from == self.to {
            write!(f, "{}/{protocol}", self.from)
        } else {
            write!(f, "{}-{}/{protocol}", self.from, self.to)
        }
    }
}

/// An open port range and the endpoint it is open for (`None`: every endpoint).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpenedPort {
    /// The range.
    pub range: PortRange,
    /// The endpoint, or `None` for all endpoints.
    pub endpoint: Option<String>,
}

/// `network-get` data for one binding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInfo {
    /// The interfaces the binding's space has on this machine.
    pub bind_addresses: Vec<InterfaceInfo>,
    /// Addresses other units should use to reach this one.
    pub ingress_addresses: Vec<String>,
    /// Subnets this unit's traffic comes from.
    pub egress_subnets: Vec<String>,
}

/// One interface of a binding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceInfo {
    /// The MAC address.
    pub mac_address: String,
    /// The interface name (`eth0`).
    pub interface_name: String,
    /// Its addresses.
    pub addresses: Vec<InterfaceAddress>,
}

/// One address of an interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InterfaceAddress {
    /// The hostname (empty when unset).
    pub hostname: String,
    /// The IP address.
    pub value: String,
    /// Its subnet, `10.0.0.0/24`.
    pub cidr: String,
}

/// `goal-state` data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GoalState {
    /// This application's units.
    pub units: BTreeMap<String, GoalStateStatus>,
    /// By local endpoint: remote applications and units.
    pub relations: BTreeMap<String, BTreeMap<String, GoalStateStatus>>,
}

/// One goal-state entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GoalStateStatus {
    /// The workload status, `dying`, or a relation status (`joined`).
    pub status: String,
    /// When it changed, `YYYY-MM-DD HH:MM:SSZ` (UTC).
    pub since: Option<String>,
}

/// The running action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionContext {
    /// The action's name.
    pub name: String,
    /// Its parameters (a JSON object).
    pub params: BTreeMap<String, serde_json::Value>,
}

/// The kind of a storage instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A block device.
    Block,
    /// A mounted filesystem.
    Filesystem,
}

impl StorageKind {
    /// The name `storage-get kind` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Block => "block",
            StorageKind::Filesystem => "filesystem",
        }
    }
}

/// A storage instance attached to the unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageAttachment {
    /// Block or filesystem.
    pub kind: StorageKind,
    /// Where it is (mount point or device path).
    pub location: String,
}

/// A log level `juju-log` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO (the default).
    Info,
    /// WARNING.
    Warning,
    /// ERROR.
    Error,
    /// CRITICAL.
    Critical,
}

impl LogLevel {
    /// loggo's `ParseLevel` (case-insensitive, `WARN` for `WARNING`).
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_uppercase().as_str() {
            "TRACE" => Some(LogLevel::Trace),
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARN" | "WARNING" => Some(LogLevel::Warning),
            "ERROR" => Some(LogLevel::Error),
            "CRITICAL" => Some(LogLevel::Critical),
            _ => None,
        }
    }
}

/// One `juju-log` line (or a warning the tools logged themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// The text, prefixed `<endpoint>:<id>: ` in relation hooks.
    pub message: String,
}

/// New relation settings written by the hook for one relation: the full maps after the
/// hook's writes, `None` when that side was not written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelationSettingsUpdate {
    /// This unit's settings.
    pub unit: Option<Settings>,
    /// This application's settings (leader only).
    pub application: Option<Settings>,
}

/// What an action run reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionEffects {
    /// The nested result map `action-set` built (values are strings).
    pub results: BTreeMap<String, serde_json::Value>,
    /// `action-fail`'s message, when the action failed.
    pub failure: Option<String>,
    /// `action-log` progress messages, in order.
    pub messages: Vec<String>,
}

/// Everything the hook's tool calls changed. Each field holds the new full state of what
/// changed (`None`: untouched), so applying it is a plain replacement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookEffects {
    /// `juju-log` lines, in order (kept even when the hook fails, for the unit log).
    pub log: Vec<LogRecord>,
    /// The unit's new workload status.
    pub unit_status: Option<WorkloadStatus>,
    /// The application's new status (leader only).
    pub application_status: Option<WorkloadStatus>,
    /// New relation settings, by relation id.
    pub relation_settings: BTreeMap<u32, RelationSettingsUpdate>,
    /// The unit's open port ranges after the hook's opens and closes.
    pub opened_ports: Option<BTreeSet<OpenedPort>>,
    /// The new leader settings (leader only).
    pub leader_settings: Option<Settings>,
    /// The workload version `application-version-set` reported.
    pub application_version: Option<String>,
    /// Action results, failure and progress messages.
    pub action: ActionEffects,
}

impl HookEffects {
    /// Whether the hook changed any state (log lines do not count).
    pub fn changes_state(&self) -> bool {
        self.unit_status.is_some()
            || self.application_status.is_some()
            || !self.relation_settings.is_empty()
            || self.opened_ports.is_some()
            || self.leader_settings.is_some()
            || self.application_version.is_some()
            || self.action != ActionEffects::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_print_and_sort_like_juju() {
        let mut ranges = [
            PortRange {
                protocol: Protocol::Udp,
                from: 53,
                to: 53,
            },
            PortRange {
                protocol: Protocol::Tcp,
                from: 8000,
                to: 8100,
            },
            PortRange {
                protocol: Protocol::Icmp,
                from: -1,
                to: -1,
            },
            PortRange {
                protocol: Protocol::Tcp,
                from: 80,
                to: 80,
            },
        ];
        ranges.sort();
        let text: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["icmp", "80/tcp", "8000-8100/tcp", "53/udp"]);
    }

    #[test]
    fn context_round_trips_through_json() {
        let mut context = HookContext {
            context_id: "app-0-install-1".into(),
            unit: "app/0".into(),
            ..HookContext::default()
        };
        context.config.insert("n".into(), Some(ConfigValue::Int(3)));
        context
            .config
            .insert("f".into(), Some(ConfigValue::Float(2.0)));
        context
            .config
            .insert("s".into(), Some(ConfigValue::String("x".into())));
        context.config.insert("none".into(), None);
        let text = serde_json::to_string(&context).unwrap();
        let back: HookContext = serde_json::from_str(&text).unwrap();
        assert_eq!(back, context);
    }
}
