//! `hookbox status [APP|UNIT]`.

use std::collections::BTreeMap;

use clap::Args;
use hookbox::charm::{Role, Scope};
use hookbox::exit::ExitStatus;
use hookbox::model::runtime::{AppRuntime, UnitRuntime};
use hookbox::model::{AppName, AppRecord, ErrorKind, UnitLock, UnitName, UnitPaths, UnitState};
use hookbox::runner::lifecycle::CharmSummary;
use hookbox::runner::{Runner, open_unit};
use hookbox::store::StateRoot;
use hookbox::store::digest::CharmDigest;
use serde::Serialize;

use super::output::print_json;
use super::units;

/// Show applications and units: charm, agent status, errors, workload status, ports.
///
/// The agent status is idle, executing (a hook runs now) or error (with the failed hook).
/// A unit whose journal says a hook was running while no hookbox holds it (a killed
/// runner) is recovered first: it then shows in error for that hook (rule 7). The --json
/// form is documented in the README ("status/history JSON schema") and is stable.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this application, or only this unit (APP/N).
    pub target: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A relation of an application as status shows it.
#[derive(Debug, Serialize)]
pub struct RelationStatus {
    /// The relation id.
    pub id: u64,
    /// `<endpoint>:<id>`, as hooks see it in JUJU_RELATION_ID.
    pub relation_id: String,
    /// This application's endpoint.
    pub endpoint: String,
    /// provider, requirer or peer (this endpoint's role).
    pub role: Role,
    /// global or container.
    pub scope: Scope,
    /// The other application (this one for a peer relation).
    pub remote_application: String,
    /// Its endpoint.
    pub remote_endpoint: String,
    /// `remote_application:remote_endpoint`.
    pub related: String,
    /// The interface.
    pub interface: String,
    /// The application's own settings in the relation (set by its leader).
    pub application_settings: BTreeMap<String, String>,
}

/// One relation as one unit is in it.
#[derive(Debug, Serialize)]
pub struct UnitRelationStatus {
    /// The relation id.
    pub id: u64,
    /// `<endpoint>:<id>`.
    pub relation_id: String,
    /// The unit's endpoint.
    pub endpoint: String,
    /// The other application.
    pub remote_application: String,
    /// The remote units this unit has joined (what relation-list shows).
    pub members: Vec<String>,
    /// The unit's own settings in the relation (relation-set, plus the seeded addresses).
    pub settings: BTreeMap<String, String>,
    /// False while the relation is removed and the unit still has relation-broken to run.
    pub live: bool,
}

/// A workload status.
#[derive(Debug, Serialize)]
pub struct Workload {
    /// maintenance, blocked, waiting, active or unknown.
    pub status: String,
    /// The message.
    pub message: String,
}

/// One unit.
#[derive(Debug, Serialize)]
pub struct UnitStatus {
    /// Its application.
    pub application: String,
    /// Its charm.
    pub charm: Option<CharmSummary>,
    /// idle, executing or error.
    pub agent_status: &'static str,
    /// The hook running now (executing only).
    pub hook: Option<String>,
    /// The error, e.g. {"kind": "hook", "hook": "start"}.
    pub error: Option<ErrorKind>,
    /// The workload status the charm set.
    pub workload: Workload,
    /// Whether it is the leader.
    pub leader: bool,
    /// The relations the unit is in, with its data.
    pub relations: Vec<UnitRelationStatus>,
    /// Open ports, e.g. "8080/tcp".
    pub ports: Vec<String>,
    /// Committed runtime layers.
    pub layers: usize,
    /// Hooks waiting behind a failed one.
    pub queued: Vec<String>,
    /// The charm of an unforced upgrade that reached the unit in error: it applies once the
    /// unit is resolved (rule 10).
    pub pending_upgrade: Option<CharmSummary>,
    /// The forced-upgrade baseline S0 (rule 11), while the unit has one recorded.
    pub s0: Option<S0Status>,
}

/// A unit's S0: the charm and runtime layers a forced upgrade rebuilds from.
#[derive(Debug, Serialize)]
pub struct S0Status {
    /// The charm base of S0.
    pub charm: Option<CharmSummary>,
    /// How many runtime layers S0 names.
    pub layers: usize,
}

/// One application.
#[derive(Debug, Serialize)]
pub struct AppStatus {
    /// Its charm.
    pub charm: Option<CharmSummary>,
    /// The application status the leader set.
    pub status: Workload,
    /// The workload version.
    pub version: Option<String>,
    /// The leader unit.
    pub leader: Option<String>,
    /// Its relations.
    pub relations: Vec<RelationStatus>,
    /// Its units.
    pub units: BTreeMap<String, UnitStatus>,
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Applications by name.
    pub applications: BTreeMap<String, AppStatus>,
}

fn charm_summary(runner: &Runner, digest: &CharmDigest, owner: &str) -> Option<CharmSummary> {
    runner.charm(digest, owner).ok().map(|c| CharmSummary {
        name: c.record.name.clone(),
        revision: c.record.revision,
        digest: digest.clone(),
    })
}

fn unit_status(
    runner: &Runner,
    root: &StateRoot,
    app: &AppRecord,
    name: &UnitName,
) -> anyhow::Result<UnitStatus> {
    // Recover a unit no process holds (its journal may say a killed runner's hook runs).
    let journal = match UnitLock::try_acquire(name, &UnitPaths::new(root, name).lock_file()) {
        Ok(lock) => {
            drop(lock);
            let (unit, _) = open_unit(root, name, units::print_wait)?;
            unit.journal().clone()
        }
        Err(_) => hookbox::model::Unit::peek(root, name)?,
    };
    let runtime = UnitRuntime::load(root, name)?;
    let (hook, error) = match &journal.state {
        UnitState::RunningHook { hook, .. } | UnitState::Committing { hook, .. } => {
            (Some(hook.clone()), None)
        }
        UnitState::Error { error } => (None, Some(error.clone())),
        UnitState::Idle => (None, None),
    };
    Ok(UnitStatus {
        application: app.name.to_string(),
        charm: charm_summary(runner, &runtime.charm, &name.to_string()),
        agent_status: journal.state.agent_status(),
        hook,
        error,
        workload: Workload {
            status: runtime.workload.status.clone(),
            message: runtime.workload.message.clone(),
        },
        leader: app.leader == Some(name.number()),
        relations: unit_relations(app, &runtime),
        ports: runtime.ports.iter().map(|p| p.range.to_string()).collect(),
        layers: journal.layers.len(),
        queued: runtime.queue.iter().map(|q| q.hook.clone()).collect(),
        pending_upgrade: journal.pending_upgrade.as_ref().map(|digest| {
            charm_summary(runner, digest, &name.to_string()).unwrap_or_else(|| CharmSummary {
                name: "?".to_owned(),
                revision: None,
                digest: digest.clone(),
            })
        }),
        s0: journal.s0.as_ref().map(|s0| S0Status {
            charm: charm_summary(runner, &s0.charm, &name.to_string()),
            layers: s0.layers.len(),
        }),
    })
}

fn relations(app: &AppRecord, runtime: &AppRuntime) -> Vec<RelationStatus> {
    app.relations
        .iter()
        .map(|r| RelationStatus {
            id: r.id,
            relation_id: r.key(),
            endpoint: r.endpoint.clone(),
            role: r.role,
            scope: r.scope,
            remote_application: r.remote_app.to_string(),
            remote_endpoint: r.remote_endpoint.clone(),
            related: format!("{}:{}", r.remote_app, r.remote_endpoint),
            interface: r.interface.clone(),
            application_settings: runtime
                .relation_settings
                .get(&r.tool_id())
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

fn unit_relations(app: &AppRecord, runtime: &UnitRuntime) -> Vec<UnitRelationStatus> {
    runtime
        .relations
        .iter()
        .map(|(id, scope)| UnitRelationStatus {
            id: scope.relation.id,
            relation_id: scope.relation.key(),
            endpoint: scope.relation.endpoint.clone(),
            remote_application: scope.relation.remote_app.to_string(),
            members: scope.members.iter().cloned().collect(),
            settings: runtime
                .relation_settings
                .get(id)
                .cloned()
                .unwrap_or_default(),
            live: app.relation(scope.relation.id).is_some(),
        })
        .collect()
}

/// Gathers the status of `target` (everything when `None`).
pub fn gather(root: &StateRoot, target: Option<&str>) -> anyhow::Result<Status> {
    let runner = units::runner(root)?;
    let (apps, only_unit) = match target {
        None => (AppRecord::list(root)?, None),
        Some(text) if text.contains('/') => {
            let unit = UnitName::parse(text)?;
            (vec![unit.app().clone()], Some(unit))
        }
        Some(text) => (vec![AppName::parse(text)?], None),
    };
    let mut applications = BTreeMap::new();
    for name in apps {
        let app = AppRecord::load(root, &name)?;
        let runtime = AppRuntime::load(root, &name)?;
        let mut unit_map = BTreeMap::new();
        let names: Vec<UnitName> = match &only_unit {
            Some(unit) if app.units.contains(&unit.number()) => vec![unit.clone()],
            Some(unit) => {
                return Err(hookbox::model::UnitError::UnknownUnit { unit: unit.clone() }.into());
            }
            None => app.unit_names(),
        };
        for unit in names {
            unit_map.insert(unit.to_string(), unit_status(&runner, root, &app, &unit)?);
        }
        applications.insert(
            name.to_string(),
            AppStatus {
                charm: charm_summary(&runner, &app.charm, name.as_str()),
                status: Workload {
                    status: runtime.status.status.clone(),
                    message: runtime.status.message.clone(),
                },
                version: runtime.version.clone(),
                leader: app
                    .leader
                    .map(|n| UnitName::new(name.clone(), n).to_string()),
                relations: relations(&app, &runtime),
                units: unit_map,
            },
        );
    }
    Ok(Status { applications })
}

/// Runs `hookbox status`.
pub fn run(root: &StateRoot, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let status = gather(root, args.target.as_deref())?;
    if args.json {
        print_json(&status)?;
        return Ok(ExitStatus::Success);
    }
    if status.applications.is_empty() {
        println!("no applications; deploy one with `hookbox deploy CHARM APP`");
        return Ok(ExitStatus::Success);
    }
    println!(
        "{:<16} {:<16} {:>4} {:>5}  {:<12} Version",
        "App", "Charm", "Rev", "Units", "Status"
    );
    for (name, app) in &status.applications {
        let (charm, rev) = app
            .charm
            .as_ref()
            .map_or(("?".to_owned(), "-".to_owned()), |c| {
                (
                    c.name.clone(),
                    c.revision.map_or("-".to_owned(), |r| r.to_string()),
                )
            });
        println!(
            "{name:<16} {charm:<16} {rev:>4} {:>5}  {:<12} {}",
            app.units.len(),
            app.status.status,
            app.version.clone().unwrap_or_default()
        );
    }
    println!();
    println!(
        "{:<20} {:<10} {:<12} {:<14} Message",
        "Unit", "Agent", "Workload", "Ports"
    );
    for app in status.applications.values() {
        for (name, unit) in &app.units {
            let label = if unit.leader {
                format!("{name}*")
            } else {
                name.clone()
            };
            let message = match (&unit.error, &unit.hook) {
                (Some(error), _) => error.to_string(),
                (None, Some(hook)) => format!("running {hook} hook"),
                (None, None) => unit.workload.message.clone(),
            };
            let mut notes = Vec::new();
            if let Some(pending) = &unit.pending_upgrade {
                notes.push(format!(
                    "[upgrade to {}{} pending]",
                    pending.name,
                    pending
                        .revision
                        .map_or(String::new(), |r| format!(" rev {r}"))
                ));
            }
            if unit.s0.is_some() {
                notes.push("[S0 recorded]".to_owned());
            }
            let message = if notes.is_empty() {
                message
            } else {
                format!("{message} {}", notes.join(" "))
                    .trim_start()
                    .to_owned()
            };
            println!(
                "{label:<20} {:<10} {:<12} {:<14} {message}",
                unit.agent_status,
                unit.workload.status,
                unit.ports.join(",")
            );
        }
    }
    print_relations(&status);
    Ok(ExitStatus::Success)
}

/// The relations table (each relation once, provider first) and each unit's relation data.
fn print_relations(status: &Status) {
    let mut seen = BTreeMap::new();
    for (name, app) in &status.applications {
        for r in &app.relations {
            let here = format!("{name}:{}", r.endpoint);
            let (provider, requirer, kind) = match r.role {
                Role::Provider => (here, r.related.clone(), "regular"),
                Role::Requirer => (r.related.clone(), here, "regular"),
                Role::Peer => (here.clone(), here, "peer"),
            };
            seen.entry(r.id).or_insert((
                r.relation_id.clone(),
                provider,
                requirer,
                r.interface.clone(),
                kind,
            ));
        }
    }
    if seen.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<20} {:<24} {:<24} {:<16} Type",
        "Relation", "Provider", "Requirer", "Interface"
    );
    for (relation_id, provider, requirer, interface, kind) in seen.values() {
        println!("{relation_id:<20} {provider:<24} {requirer:<24} {interface:<16} {kind}");
    }
    println!();
    println!("Relation data (per unit)");
    println!(
        "  {:<18} {:<20} {:<24} Settings",
        "Unit", "Relation", "Joined"
    );
    for app in status.applications.values() {
        for (name, unit) in &app.units {
            for r in &unit.relations {
                let settings: Vec<String> =
                    r.settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let label = if r.live {
                    r.relation_id.clone()
                } else {
                    format!("{} (broken)", r.relation_id)
                };
                println!(
                    "  {name:<18} {label:<20} {:<24} {}",
                    if r.members.is_empty() {
                        "-".to_owned()
                    } else {
                        r.members.join(",")
                    },
                    settings.join(" ")
                );
            }
        }
    }
}
