//! `hookbox shell UNIT [-- CMD...]`.

use std::path::PathBuf;

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::UnitName;
use hookbox::runner::inspect;
use hookbox::store::StateRoot;

use super::units;

/// Open a shell (or run a command) in the sandbox of a unit, over its charm dir (the cwd).
///
/// The shell sees the unit's charm dir exactly as its hooks do. Without CMD it is an
/// interactive shell ($SHELL when the sandbox has it, else /bin/sh) on your terminal:
/// stdin, stdout and stderr are yours, so commands can also be piped in (`echo ls | hookbox
/// shell wp/0`). While the unit is in error, its writes go to the operator layer: `hookbox
/// resolved` commits them, `hookbox resolved --retry` reruns the failed hook over them
/// (rule 6). Otherwise the writes are thrown away when the shell ends. The unit is locked
/// meanwhile, so no hook runs under it. The exit status is the shell's (or CMD's).
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The unit, e.g. hello/0.
    pub unit: UnitName,
    /// The command and its arguments (none: an interactive shell).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Runs `hookbox shell`.
pub fn run(root: &StateRoot, args: ShellArgs) -> anyhow::Result<ExitStatus> {
    let runner = units::runner(root)?;
    let shell = std::env::var("SHELL").ok().filter(|s| s.starts_with('/'));
    let report = inspect::shell(&runner, &args.unit, args.command, shell, units::print_wait)?;
    std::process::exit(report.outcome.exit_code().clamp(0, 255));
}

/// `hookbox __attach-stdio SOCKET SHELL`: run inside the sandbox of an interactive `shell`.
#[derive(Debug, Args)]
pub struct AttachStdioArgs {
    /// The socket that lends the caller's stdio.
    pub socket: PathBuf,
    /// The shell to run (`/bin/sh` when it does not exist in the sandbox).
    pub shell: String,
}

/// Runs `hookbox __attach-stdio`: returns only when the shell could not be started.
pub fn run_attached(args: AttachStdioArgs) -> anyhow::Result<ExitStatus> {
    Err(inspect::attach_stdio(&args.socket, &args.shell).into())
}
