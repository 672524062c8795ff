//! One hook's view of the world: the runner's [`HookContext`] plus the [`HookEffects`] its
//! tool calls have produced so far. Reads see the hook's own writes, as in Juju.

use std::collections::BTreeSet;

use super::context::{
    HookContext, HookEffects, OpenedPort, RelationContext, Settings, WorkloadStatus,
};

/// The state the tool server keeps for one hook run.
#[derive(Debug, Clone)]
pub struct HookSession {
    /// The snapshot the runner filled before the hook.
    pub context: HookContext,
    /// What the hook's tools changed so far.
    pub effects: HookEffects,
}

impl HookSession {
    /// A session with no effects yet.
    pub fn new(context: HookContext) -> Self {
        Self {
            context,
            effects: HookEffects::default(),
        }
    }

    /// The relation with this id.
    pub fn relation(&self, id: u32) -> Option<&RelationContext> {
        self.context.relations.iter().find(|r| r.id == id)
    }

    /// The hook's relation, in a relation hook.
    pub fn hook_relation(&self) -> Option<&RelationContext> {
        self.context
            .hook_relation
            .as_ref()
            .and_then(|h| self.relation(h.id))
    }

    /// This unit's settings in a relation, with the hook's writes.
    pub fn local_unit_settings(&self, relation: &RelationContext) -> Settings {
        self.effects
            .relation_settings
            .get(&relation.id)
            .and_then(|u| u.unit.clone())
            .unwrap_or_else(|| relation.local_unit_settings.clone())
    }

    /// This application's settings in a relation, with the hook's writes.
    pub fn local_application_settings(&self, relation: &RelationContext) -> Settings {
        self.effects
            .relation_settings
            .get(&relation.id)
            .and_then(|u| u.application.clone())
            .unwrap_or_else(|| relation.local_application_settings.clone())
    }

    /// The leader settings, with the hook's writes.
    pub fn leader_settings(&self) -> Settings {
        self.effects
            .leader_settings
            .clone()
            .unwrap_or_else(|| self.context.leader_settings.clone())
    }

    /// This unit's workload status, with the hook's writes.
    pub fn unit_status(&self) -> WorkloadStatus {
        self.effects
            .unit_status
            .clone()
            .unwrap_or_else(|| self.context.unit_status.clone())
    }

    /// The application status, with the hook's writes.
    pub fn application_status(&self) -> WorkloadStatus {
        self.effects
            .application_status
            .clone()
            .unwrap_or_else(|| self.context.application_status.clone())
    }

    /// This unit's open ports, with the hook's opens and closes.
    pub fn opened_ports(&self) -> BTreeSet<OpenedPort> {
        self.effects
            .opened_ports
            .clone()
            .unwrap_or_else(|| self.context.opened_ports.iter().cloned().collect())
    }
}
