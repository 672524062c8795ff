//! `hookbox diff UNIT`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::UnitName;
use hookbox::runner::inspect::{self, DiffStatus};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::units;

/// Show what runtime changed in a unit's charm dir, like `git status`.
///
/// Lists every path where the unit's charm dir (its committed layers, plus the operator's
/// edits while in error) differs from the charm as deployed: A added, M modified (content,
/// type or mode), D deleted. With --failed: what the last failed hook wrote before its
/// layer was discarded, against the state it ran on.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// Show the discarded writes of the last failed hook instead.
    #[arg(long)]
    pub failed: bool,
    /// Print the changes as a JSON array of {path, status, kind}.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox diff`.
pub fn run(root: &StateRoot, args: DiffArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let Some(lines) = inspect::diff(&runner, &args.unit, args.failed)? else {
        if args.json {
            print_json(&Vec::<()>::new())?;
        } else {
            println!("{} has no failed hook layer", args.unit);
        }
        return Ok(ExitStatus::Success);
    };
    if args.json {
        print_json(&lines)?;
        return Ok(ExitStatus::Success);
    }
    for line in &lines {
        let mark = match line.status {
            DiffStatus::Added => 'A',
            DiffStatus::Modified => 'M',
            DiffStatus::Deleted => 'D',
        };
        let slash = if line.kind == "dir" { "/" } else { "" };
        let note = match (line.conflict, line.likely_bytecode) {
            (Some(kind), true) => {
                format!("  [conflict: {kind}; likely cause: runtime-written Python bytecode]")
            }
            (Some(kind), false) => format!("  [conflict: {kind}]"),
            (None, _) => String::new(),
        };
        println!("{mark} {}{slash}{note}", line.path);
    }
    Ok(ExitStatus::Success)
}
