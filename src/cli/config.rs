//! `hookbox config APP [K=V...] [--reset K]`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::AppName;
use hookbox::runner::lifecycle;
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Show or change an application's settings.
///
/// Without KEY=VALUE pairs, prints every option of the application's charm with the value
/// hooks see, its default and whether the user set it. With pairs (or --reset), checks
/// each against the charm's config.yaml (a bad one changes nothing: exit 2), stores the
/// user's values for the application's current charm, and runs config-changed on each unit
/// of that charm. A unit in error runs no hook: config-changed stays queued for it and runs
/// once it is resolved. Exit status 1 when a unit ended in error.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The application.
    pub app: AppName,
    /// Settings to change.
    #[arg(value_name = "KEY=VALUE", value_parser = units::parse_pair)]
    pub pairs: Vec<(String, String)>,
    /// Drop the user's value of KEY (hooks then see the charm's default). Repeatable.
    #[arg(long, value_name = "KEY")]
    pub reset: Vec<String>,
    /// How many units run config-changed at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox config`.
pub fn run(root: &StateRoot, args: ConfigArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    if args.pairs.is_empty() && args.reset.is_empty() {
        let entries = lifecycle::show_config(&runner, &args.app)?;
        if args.json {
            print_json(&entries)?;
        } else {
            for (name, entry) in &entries {
                let value = entry
                    .value
                    .as_ref()
                    .map_or_else(|| "(unset)".to_owned(), render);
                println!("{name} = {value}  ({}, {})", entry.kind, entry.source);
            }
        }
        return Ok(ExitStatus::Success);
    }
    let report = lifecycle::set_config(
        &runner,
        &args.app,
        &args.pairs,
        &args.reset,
        args.parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        &units::print_wait,
    )?;
    let status = report
        .units
        .iter()
        .map(units::unit_status)
        .fold(ExitStatus::Success, units::worst);
    if args.json {
        print_json(&report)?;
        return Ok(status);
    }
    if !report.changed {
        println!("settings of {} unchanged; no hook ran", args.app);
        return Ok(ExitStatus::Success);
    }
    Ok(units::print_unit_reports(&report.units))
}

fn render(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}
