//! `hookbox shell UNIT -- CMD...`.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::UnitName;
use hookbox::runner::inspect;
use hookbox::store::StateRoot;

use super::units;

/// Run a command in the sandbox of a unit, over its charm dir (the cwd).
///
/// The command sees the unit's charm dir exactly as its hooks do. While the unit is in
/// error, its writes go to the operator layer: `hookbox resolved` commits them, `hookbox
/// resolved --retry` reruns the failed hook over them (rule 6). Otherwise the writes are
/// thrown away when the command ends. The unit is locked meanwhile, so no hook runs under
/// the command. Without CMD, `sh` reads commands from stdin... (not yet: stdin is not
/// passed into the sandbox, so give the command after `--`). The exit status is the
/// command's.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// The command and its arguments.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Runs `hookbox shell`.
pub fn run(root: &StateRoot, args: ShellArgs) -> anyhow::Result<ExitStatus> {
    if args.command.is_empty() {
        anyhow::bail!(hookbox::runner::RunnerError::Usage {
            what: format!(
                "no command given: an interactive shell is not supported yet, run e.g. `hookbox shell {} -- sh -c 'ls -la'`",
                args.unit
            ),
        });
    }
    let runner = units::runner(root)?;
    let report = inspect::shell(&runner, &args.unit, args.command, units::print_wait)?;
    std::process::exit(report.outcome.exit_code().clamp(0, 255));
}
