//! `hookbox add-unit APP`: more units of an application.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::AppName;
use hookbox::runner::lifecycle;
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Add units to an application and start them.
///
/// The new units get the next free numbers (numbers are never reused) and the
/// application's current charm, and run install, config-changed and start (leader-elected
/// too when the application had no leader). Exit status 1 when a new unit ended in error.
#[derive(Debug, Args)]
pub struct AddUnitArgs {
    /// The application.
    pub app: AppName,
    /// How many units to add.
    #[arg(long, short = 'n', default_value_t = 1, value_name = "N")]
    pub units: u32,
    /// How many units run hooks at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox add-unit`.
pub fn run(root: &StateRoot, args: AddUnitArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let reports = lifecycle::add_units(
        &runner,
        &args.app,
        args.units,
        args.parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        &units::print_wait,
    )?;
    if args.json {
        print_json(&reports)?;
        return Ok(reports
            .iter()
            .map(units::unit_status)
            .fold(ExitStatus::Success, units::worst));
    }
    for report in &reports {
        println!("added {}", report.unit);
    }
    Ok(units::print_unit_reports(&reports))
}
