//! `hookbox preview-upgrade APP CHARM`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::AppName;
use hookbox::runner::upgrade::{self, SettingsReport, UnitOutcome};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Show what `hookbox upgrade` would do, changing nothing.
///
/// For the application: whether the new charm passes the compatibility check (and the
/// refusal if not), and which user settings it keeps, drops (and why) and which options
/// take its defaults. For each unit: whether it would upgrade, be left alone (in error),
/// or go into error `upgrade failed`, with every conflicting path, its kind, and a note
/// when runtime-written Python bytecode (`__pycache__/`, `*.pyc`) is the likely cause. A
/// CHARM path is read into a throwaway store, never the real one.
///
/// Exit status: 0 when the upgrade would go through cleanly, 1 when a unit would conflict,
/// 4 when the upgrade would be refused.
#[derive(Debug, Args)]
pub struct PreviewUpgradeArgs {
    /// The application.
    pub app: AppName,
    /// The new charm: a path, or the digest of a stored charm.
    pub charm: String,
    /// Allow a charm of another name (as `upgrade --switch`).
    #[arg(long)]
    pub switch: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox preview-upgrade`.
pub fn run(root: &StateRoot, args: PreviewUpgradeArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let report = upgrade::preview(&runner, &args.app, &args.charm, args.switch)?;
    let status = if !report.compatible {
        ExitStatus::Refused
    } else if report.units.iter().any(|u| !u.conflicts.is_empty()) {
        ExitStatus::HookFailed
    } else {
        ExitStatus::Success
    };
    if args.json {
        print_json(&report)?;
        return Ok(status);
    }
    println!("{}: {} -> {}", args.app, report.from.name, report.to.name);
    match &report.refusal {
        Some(refusal) => println!("compatibility: REFUSED: {refusal}"),
        None => println!("compatibility: ok"),
    }
    print_settings(&report.settings);
    for unit in &report.units {
        let what = match unit.outcome {
            UnitOutcome::Upgraded => "would upgrade cleanly",
            UnitOutcome::Conflicts => "would go into error: upgrade failed",
            UnitOutcome::Deferred => "in error: left alone until resolved",
            UnitOutcome::Current => "already on this charm",
            UnitOutcome::Forced | UnitOutcome::Restored | UnitOutcome::Failed => "",
        };
        println!(
            "{} ({}): {what}; {} runtime changes",
            unit.unit, unit.agent_status, unit.runtime_changes
        );
        for conflict in &unit.conflicts {
            println!("  conflict: {conflict}");
        }
    }
    Ok(status)
}

/// Prints the settings conversion, one line per kind.
pub fn print_settings(settings: &SettingsReport) {
    let kept: Vec<String> = settings
        .kept
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let dropped: Vec<String> = settings
        .dropped
        .iter()
        .map(|d| format!("{}={} ({})", d.option, d.value, d.reason))
        .collect();
    let defaulted: Vec<String> = settings
        .defaulted
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => format!("{k} (no default)"),
        })
        .collect();
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    println!("settings kept: {}", list(&kept));
    println!("settings dropped: {}", list(&dropped));
    println!("settings defaulted: {}", list(&defaulted));
}
