//! `hookbox resolved UNIT [--retry]`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::UnitName;
use hookbox::runner::lifecycle;
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Mark a unit in error as resolved, or retry its failed hook.
///
/// Without --retry: the operator's edits (made with `hookbox shell` while in error) are
/// committed and the unit goes on as though the failed hook had succeeded, without that
/// hook's own writes. With --retry: the failed hook runs again from its pre-hook state plus
/// the operator's edits; if it fails again the unit stays in error. Either way, hooks that
/// were queued behind the failed one (the rest of a deploy, a config change) run next.
/// A unit that is not in error is refused with exit 4.
#[derive(Debug, Args)]
pub struct ResolvedArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// Rerun the failed hook instead of skipping it.
    #[arg(long)]
    pub retry: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox resolved`.
pub fn run(root: &StateRoot, args: ResolvedArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let report = lifecycle::resolve(
        &runner,
        &args.unit,
        args.retry,
        !args.json,
        &units::print_wait,
    )?;
    let status = report
        .also
        .iter()
        .map(units::unit_status)
        .fold(units::unit_status(&report.unit), units::worst);
    if args.json {
        print_json(&report)?;
        return Ok(status);
    }
    println!(
        "{}: {} {}",
        args.unit,
        if args.retry { "retrying" } else { "resolved" },
        report.resolved
    );
    let own = units::print_unit_reports(std::slice::from_ref(&report.unit));
    Ok(units::worst(own, units::print_unit_reports(&report.also)))
}
