//! `hookbox history UNIT`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::history::{self, Outcome, RecordKind};
use hookbox::model::{Unit, UnitName, UnitPaths};
use hookbox::store::StateRoot;

use super::output::print_json;

/// Show a unit's hook runs and resolutions, oldest first.
///
/// One entry per hook run (hook, outcome ok/failed/missing, exit code or signal, reason,
/// context id, charm revision, start time, duration, committed layer) and per `resolved`.
/// The --json form (an array) is documented in the README and is stable.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// Print the history as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox history`.
pub fn run(root: &StateRoot, args: HistoryArgs) -> anyhow::Result<ExitStatus> {
    Unit::peek(root, &args.unit)?;
    let records = history::read(&UnitPaths::new(root, &args.unit).history_file())?;
    if args.json {
        print_json(&records)?;
        return Ok(ExitStatus::Success);
    }
    for r in &records {
        let what = match r.kind {
            RecordKind::Hook => match r.outcome {
                Some(Outcome::Ok) => "ok".to_owned(),
                Some(Outcome::Missing) => "missing".to_owned(),
                Some(Outcome::Failed) => "FAILED".to_owned(),
                None => "-".to_owned(),
            },
            RecordKind::Resolved => "resolved".to_owned(),
            RecordKind::Retry => "retry".to_owned(),
        };
        let code = match (r.exit_code, r.signal) {
            (_, Some(signal)) => format!("signal {signal}"),
            (Some(code), None) => format!("exit {code}"),
            (None, None) => String::new(),
        };
        println!(
            "{}  {:<20} {:<9} {:<10} {:>6}ms  {}{}",
            r.started,
            r.hook,
            what,
            code,
            r.duration_ms,
            r.layer.map(|l| format!("layer {l}")).unwrap_or_default(),
            r.reason
                .as_ref()
                .map(|x| format!("  {x}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitStatus::Success)
}
