//! `hookbox upgrade APP [CHARM | --revision N | --switch CHARM] [--force]`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::AppName;
use hookbox::runner::upgrade::{self, Target, UnitOutcome, UpgradeRequest};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Upgrade an application's charm, keeping what its hooks wrote at runtime.
///
/// The charm: with no argument, the latest revision of the application's charm in the
/// store; --revision N, that revision; CHARM, a path to a new version of the same charm
/// (ingested first) or a stored digest; --switch CHARM, any charm, whose name may differ.
///
/// First the application-level check, which refuses (exit 4, nothing changed) a principal
/// replaced by a subordinate or the reverse, a relation in use whose endpoint, interface or
/// role the new charm lacks, a removed peer relation, and a name change without --switch.
/// The same charm again, with every unit on it, does nothing. Then the user's settings are
/// converted (a value is kept when the new charm has an option of the same name and type;
/// the rest take the new defaults) and each unit not in error is rebased: a three-way merge
/// of the old charm, its runtime layers and the new charm gives its new charm dir, then
/// upgrade-charm and config-changed run. Where runtime and the new charm changed the same
/// path the unit goes into error `upgrade failed` with its charm dir untouched: fix the
/// runtime side with `hookbox shell`, then `hookbox resolved` retries the merge
/// (`hookbox preview-upgrade` shows the conflicts beforehand). A unit in error is left
/// alone; its upgrade applies once it is resolved.
///
/// --force reaches units in error too: the first forced upgrade records the unit's charm
/// dir as S0 and every forced upgrade rebuilds from S0 (the new charm wins conflicts), so
/// forcing back to the original charm restores S0 exactly. A unit in hook error stays in
/// it (`resolved --retry` runs the failed hook with the new code, then config-changed); a
/// unit in upgrade error reverts to its pre-upgrade tree and upgrades.
///
/// Exit status: 0 when every unit upgraded, 1 when a unit ended in error (conflicts or a
/// failed hook), 4 when refused.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// The application.
    pub app: AppName,
    /// A path to a new version of the same charm, or a stored digest.
    #[arg(conflicts_with_all = ["revision", "switch"])]
    pub charm: Option<String>,
    /// That revision of the application's charm, from the store.
    #[arg(long, value_name = "N", conflicts_with = "switch")]
    pub revision: Option<u64>,
    /// Any charm (path or stored digest); its name may differ.
    #[arg(long, value_name = "CHARM")]
    pub switch: Option<String>,
    /// Upgrade units in error too (see above).
    #[arg(long)]
    pub force: bool,
    /// How many units upgrade at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox upgrade`.
pub fn run(root: &StateRoot, args: UpgradeArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let target = match (args.charm, args.revision, args.switch) {
        (Some(charm), _, _) => Target::Charm(charm),
        (_, Some(revision), _) => Target::Revision(revision),
        (_, _, Some(charm)) => Target::Switch(charm),
        _ => Target::Latest,
    };
    let report = upgrade::upgrade(
        &runner,
        &UpgradeRequest {
            app: args.app.clone(),
            target,
            force: args.force,
            parallel: args
                .parallel
                .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
        },
        &units::print_wait,
    )?;
    let status = report
        .units
        .iter()
        .map(|u| units::unit_status(&u.report))
        .fold(ExitStatus::Success, units::worst);
    if args.json {
        print_json(&report)?;
        return Ok(status);
    }
    let charm = |c: &hookbox::runner::lifecycle::CharmSummary| match c.revision {
        Some(r) => format!("{} (revision {r})", c.name),
        None => format!("{} ({})", c.name, c.digest),
    };
    if report.outcome == "unchanged" {
        println!(
            "{} already runs {} on every unit; nothing to do",
            args.app,
            charm(&report.to)
        );
        return Ok(ExitStatus::Success);
    }
    println!(
        "{}: {} -> {}{}",
        args.app,
        charm(&report.from),
        charm(&report.to),
        if report.forced { " (forced)" } else { "" }
    );
    if let Some(settings) = &report.settings {
        super::preview_upgrade::print_settings(settings);
    }
    for unit in &report.units {
        let name = &unit.report.unit;
        match unit.outcome {
            UnitOutcome::Upgraded => println!("{name}: upgraded"),
            UnitOutcome::Forced => println!("{name}: rebuilt from S0 onto the forced charm"),
            UnitOutcome::Restored => println!("{name}: restored to S0"),
            UnitOutcome::Current => println!("{name}: already on this charm"),
            UnitOutcome::Deferred => println!(
                "{name}: in error, left alone; the upgrade applies once it is resolved (or use --force)"
            ),
            UnitOutcome::Conflicts => {
                println!(
                    "{name}: upgrade failed: {} conflicting paths; the charm dir is unchanged",
                    unit.conflicts.len()
                );
                for conflict in &unit.conflicts {
                    println!("  {conflict}");
                }
                println!(
                    "  fix the runtime side with `hookbox shell {name}`, then `hookbox resolved {name}` retries the merge"
                );
            }
            UnitOutcome::Failed => {}
        }
        for conflict in &unit.overridden {
            println!("  overridden by the new charm: {conflict}");
        }
        for run in &unit.report.runs {
            println!("{}", units::describe_run(run));
        }
        if let Some(error) = &unit.report.error {
            eprintln!("error: unit {name}: {error}");
        }
        if unit.report.in_error
            && unit.outcome != UnitOutcome::Conflicts
            && unit.outcome != UnitOutcome::Deferred
        {
            println!("{name} is in error; see `hookbox status {name}`");
        }
    }
    Ok(status)
}
