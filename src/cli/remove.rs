//! `hookbox remove-unit UNIT` and `hookbox remove APP`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::{AppName, UnitName};
use hookbox::runner::lifecycle::{self, RemoveReport};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Stop and remove one unit.
///
/// Runs the unit's stop and remove hooks, then deletes its layers and state. A unit in
/// error runs no hook and is removed as it is. When stop or remove fails the unit stays, in
/// error (exit 1); run remove-unit again to remove it without hooks. Removing the leader
/// elects the lowest remaining unit, which runs leader-elected.
#[derive(Debug, Args)]
pub struct RemoveUnitArgs {
    /// The unit, e.g. hello/1.
    pub unit: UnitName,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Remove an application: every unit (stop, remove, layers deleted), then the application.
///
/// Units whose stop or remove hook fails stay in error, and the application stays with
/// them (exit 1); run remove again to finish.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The application.
    pub app: AppName,
    /// How many units are removed at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn print(reports: &[RemoveReport]) -> ExitStatus {
    let mut status = ExitStatus::Success;
    for report in reports {
        status = units::worst(
            status,
            units::print_unit_reports(std::slice::from_ref(&report.unit)),
        );
        if report.removed {
            println!("removed {}", report.unit.unit);
        }
        status = units::worst(status, units::print_unit_reports(&report.also));
    }
    status
}

fn status_of(reports: &[RemoveReport]) -> ExitStatus {
    reports
        .iter()
        .flat_map(|r| std::iter::once(&r.unit).chain(&r.also))
        .map(units::unit_status)
        .fold(ExitStatus::Success, units::worst)
}

/// Runs `hookbox remove-unit`.
pub fn run_unit(root: &StateRoot, args: RemoveUnitArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let report = lifecycle::remove_unit(&runner, &args.unit, &units::print_wait)?;
    let reports = [report];
    if args.json {
        print_json(&reports[0])?;
        return Ok(status_of(&reports));
    }
    Ok(print(&reports))
}

/// Runs `hookbox remove`.
pub fn run_app(root: &StateRoot, args: RemoveArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let reports = lifecycle::remove_app(
        &runner,
        &args.app,
        args.parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        &units::print_wait,
    )?;
    if args.json {
        print_json(&reports)?;
        return Ok(status_of(&reports));
    }
    let status = print(&reports);
    if reports.iter().all(|r| r.removed) {
        println!("removed application {}", args.app);
    }
    Ok(status)
}
