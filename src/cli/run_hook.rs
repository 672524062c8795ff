//! `hookbox run UNIT HOOK`: fire one event.

use std::collections::BTreeMap;

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::UnitName;
use hookbox::model::history::Outcome;
use hookbox::runner::context::RelationTarget;
use hookbox::runner::{HookRequest, lifecycle};
use hookbox::store::StateRoot;
use hookbox::tools::context::HookRelation;

use super::output::print_json;
use super::units;

/// Run one hook or action on a unit.
///
/// HOOK is any event valid for the unit's charm (update-status, a relation hook on a
/// declared endpoint, ...) or an action declared in actions.yaml; actions get
/// JUJU_ACTION_NAME and their parameters through action-get. The handler's output is shown
/// as it runs. The hook's writes are committed when it succeeds; when it fails they are
/// discarded and the unit is in error until `hookbox resolved`. A unit in error runs
/// nothing (exit 1); so does a hook that fails. Another hookbox working on the unit is
/// waited for, with a message saying so. The run gets the network, timeout and resource
/// limits the application was deployed with (by default at most 4096 processes and
/// threads; see `hookbox deploy --help`).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// The hook or action.
    pub hook: String,
    /// Action parameters (values are read as JSON when they parse, else as strings).
    #[arg(value_name = "KEY=VALUE", value_parser = units::parse_pair)]
    pub params: Vec<(String, String)>,
    /// The relation id of a relation hook.
    #[arg(long, value_name = "ID")]
    pub relation_id: Option<u32>,
    /// JUJU_REMOTE_UNIT of a relation hook.
    #[arg(long, value_name = "UNIT")]
    pub remote_unit: Option<String>,
    /// JUJU_REMOTE_APP of a relation hook.
    #[arg(long, value_name = "APP")]
    pub remote_app: Option<String>,
    /// JUJU_DEPARTING_UNIT of relation-departed.
    #[arg(long, value_name = "UNIT")]
    pub departing_unit: Option<String>,
    /// Print the run's history record (and action results) as JSON instead of the output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox run`.
pub fn run(root: &StateRoot, args: RunArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let action_params: BTreeMap<String, serde_json::Value> = args
        .params
        .iter()
        .map(|(k, v)| {
            let value =
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
            (k.clone(), value)
        })
        .collect();
    let relation = args.relation_id.map(|id| RelationTarget {
        relation: HookRelation {
            id,
            remote_unit: args.remote_unit.clone(),
            remote_application: args.remote_app.clone().or_else(|| {
                args.remote_unit
                    .as_deref()
                    .and_then(|u| u.split_once('/'))
                    .map(|(app, _)| app.to_owned())
            }),
        },
        departing_unit: args.departing_unit.clone(),
        departing_settings: None,
    });
    let request = HookRequest {
        hook: args.hook.clone(),
        retry: false,
        relation,
        action_params,
        stream: !args.json,
        from_queue: false,
    };
    let fired = lifecycle::run_one(&runner, &args.unit, &request, &units::print_wait)?;
    let report = &fired.run;
    let own = if report.succeeded() {
        ExitStatus::Success
    } else {
        ExitStatus::HookFailed
    };
    // Hooks the run caused elsewhere count too: a relation hook it triggered that failed
    // left its unit in error.
    let caused = fired
        .also
        .iter()
        .map(units::unit_status)
        .fold(ExitStatus::Success, units::worst);
    if args.json {
        print_json(&fired)?;
        return Ok(units::worst(own, caused));
    }
    eprintln!("{}", units::describe_run(report));
    if let Some(action) = &report.action {
        if !action.results.is_empty() {
            println!("{}", serde_json::to_string_pretty(&action.results)?);
        }
        if let Some(failure) = &action.failure {
            eprintln!("action failed: {failure}");
        }
    }
    if report.record.outcome == Some(Outcome::Failed) && report.action.is_some() {
        eprintln!(
            "action {} failed on {}: its changes were discarded, the unit is not in error",
            report.record.hook, args.unit
        );
    } else if report.record.outcome == Some(Outcome::Failed) {
        eprintln!(
            "{} is in error; see `hookbox log {}`, fix with `hookbox shell {}`, then `hookbox resolved {} [--retry]`",
            args.unit, args.unit, args.unit, args.unit
        );
    }
    Ok(units::worst(own, units::print_unit_reports(&fired.also)))
}
