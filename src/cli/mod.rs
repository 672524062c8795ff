//! Command-line interface: clap definitions (one file per command) and output rendering.

mod add_unit;
mod config;
mod deploy;
mod diff;
mod doctor;
mod export_bundle;
mod history;
mod ingest;
mod log;
mod output;
mod parse;
mod preview_upgrade;
mod relate;
mod remove;
mod resolved;
mod run_hook;
mod sandbox_args;
mod sandbox_run;
mod shell;
mod status;
mod units;
mod upgrade;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use hookbox::exit::{ClassifyExit, ExitStatus};

/// Run Juju-style charm hooks in rootless Linux sandboxes.
#[derive(Debug, Parser)]
#[command(name = "hookbox", version, about, long_about = None)]
pub struct Cli {
    /// State root directory [default: $HOOKBOX_ROOT, else $XDG_DATA_HOME/hookbox,
    /// else /var/lib/hookbox as root, else ~/.local/share/hookbox].
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log level for hookbox's own diagnostics (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "HOOKBOX_LOG")]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Stream every hook's output live on stderr, each line after its unit and hook
    /// (`hello/0 install| ...`); for sandbox-run, print the outcome, timing and warnings
    /// after the run.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Format of hookbox's diagnostic log lines.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// hookbox's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a charm (directory, .tar, .tar.gz, .charm) by the digest of its content.
    Ingest(Deferred<ingest::IngestArgs>),
    /// Check a charm against the ingest rules without storing it.
    Verify(Deferred<verify::VerifyArgs>),
    /// Run a command in exactly the sandbox hooks get.
    SandboxRun(Deferred<sandbox_run::SandboxRunArgs>),
    /// Check whether hook sandboxes can run here, and what to change if not.
    Doctor(Deferred<doctor::DoctorArgs>),
    /// Write an OCI runtime bundle of the sandbox, for crun, runc or youki.
    ExportBundle(Deferred<export_bundle::ExportBundleArgs>),
    /// Deploy a charm as an application and start its units.
    Deploy(Deferred<deploy::DeployArgs>),
    /// Add units to an application.
    AddUnit(Deferred<add_unit::AddUnitArgs>),
    /// Stop and remove one unit.
    RemoveUnit(Deferred<remove::RemoveUnitArgs>),
    /// Remove an application and all its units.
    Remove(Deferred<remove::RemoveArgs>),
    /// Show or change an application's settings.
    Config(Deferred<config::ConfigArgs>),
    /// Run one hook or action on a unit.
    Run(Deferred<run_hook::RunArgs>),
    /// Relate two applications' endpoints; their units run the relation hooks.
    Relate(Deferred<relate::RelateArgs>),
    /// Remove a relation; its units run relation-departed and relation-broken.
    Unrelate(Deferred<relate::UnrelateArgs>),
    /// Show applications and units.
    Status(Deferred<status::StatusArgs>),
    /// Show a unit's hook runs.
    History(Deferred<history::HistoryArgs>),
    /// Show what a unit's hooks wrote (stdout, stderr, juju-log).
    Log(Deferred<log::LogArgs>),
    /// Show what runtime changed in a unit's charm dir.
    Diff(Deferred<diff::DiffArgs>),
    /// Run a command in a unit's sandbox over its charm dir.
    Shell(Deferred<shell::ShellArgs>),
    /// Resolve a unit in error, or retry its failed hook.
    Resolved(Deferred<resolved::ResolvedArgs>),
    /// Upgrade an application's charm (three-way merge of runtime changes).
    Upgrade(Deferred<upgrade::UpgradeArgs>),
    /// Show what an upgrade would do (compatibility, settings, conflicts), changing nothing.
    PreviewUpgrade(Deferred<preview_upgrade::PreviewUpgradeArgs>),
    /// Internal: one doctor probe, run in a re-executed child.
    #[command(name = "__doctor-probe", hide = true)]
    DoctorProbe(Deferred<doctor::ProbeArgs>),
    /// Inside the sandbox of an interactive `shell`: attach the caller's stdio, run the shell.
    #[command(name = "__attach-stdio", hide = true)]
    AttachStdio(Deferred<shell::AttachStdioArgs>),
}

/// A subcommand's arguments, added to clap's command only when that subcommand is parsed or
/// its help shown (`Command::defer`). Every start builds the command line's description, and
/// building all 23 subcommands' arguments cost a third of a millisecond and ~90 page faults
/// of every `hookbox` exec (`perf stat hookbox --version`), which every sandbox start pays.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(T::augment_args_for_update)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    units::set_live_output(cli.verbose);
    let code = match run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("error: {}", render_chain(&err));
            ExitCode::from(exit_status_of(&err).code())
        }
    };
    // A SIGINT or SIGTERM that was forwarded to running hooks ends hookbox as that signal
    // would have, once the results are out: a shell loop around hookbox then stops too.
    hookbox::sandbox::end_if_interrupted();
    code
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Ingest(Deferred(args)) => ingest::run(&root_of(&cli.root)?, args),
        Command::Verify(Deferred(args)) => verify::run(args),
        // The command's own exit code is passed through unchanged.
        Command::SandboxRun(Deferred(args)) => {
            std::process::exit(sandbox_run::run(args, cli.verbose)?.into())
        }
        Command::Doctor(Deferred(args)) => doctor::run(&args, cli.root.as_deref()),
        Command::ExportBundle(Deferred(args)) => export_bundle::run(args),
        Command::DoctorProbe(Deferred(args)) => doctor::run_probe(&args),
        Command::Deploy(Deferred(args)) => deploy::run(&root_of(&cli.root)?, args),
        Command::AddUnit(Deferred(args)) => add_unit::run(&root_of(&cli.root)?, args),
        Command::RemoveUnit(Deferred(args)) => remove::run_unit(&root_of(&cli.root)?, args),
        Command::Remove(Deferred(args)) => remove::run_app(&root_of(&cli.root)?, args),
        Command::Config(Deferred(args)) => config::run(&root_of(&cli.root)?, args),
        Command::Run(Deferred(args)) => run_hook::run(&root_of(&cli.root)?, args),
        Command::Relate(Deferred(args)) => relate::run_relate(&root_of(&cli.root)?, args),
        Command::Unrelate(Deferred(args)) => relate::run_unrelate(&root_of(&cli.root)?, args),
        Command::Status(Deferred(args)) => status::run(&root_of(&cli.root)?, args),
        Command::History(Deferred(args)) => history::run(&root_of(&cli.root)?, args),
        Command::Log(Deferred(args)) => log::run(&root_of(&cli.root)?, args),
        Command::Diff(Deferred(args)) => diff::run(&root_of(&cli.root)?, args),
        Command::Shell(Deferred(args)) => shell::run(&root_of(&cli.root)?, args),
        Command::Resolved(Deferred(args)) => resolved::run(&root_of(&cli.root)?, args),
        Command::Upgrade(Deferred(args)) => upgrade::run(&root_of(&cli.root)?, args),
        Command::PreviewUpgrade(Deferred(args)) => preview_upgrade::run(&root_of(&cli.root)?, args),
        Command::AttachStdio(Deferred(args)) => shell::run_attached(args),
    }
}

fn root_of(explicit: &Option<PathBuf>) -> anyhow::Result<hookbox::store::StateRoot> {
    Ok(hookbox::store::StateRoot::locate(explicit.as_deref())?)
}

fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only for a terminal: a log file or a test's pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.without_time().init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// "outer: inner: innermost", each message once.
fn render_chain(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// The exit code of the first error in the chain that knows its class.
fn exit_status_of(err: &anyhow::Error) -> ExitStatus {
    err.chain()
        .find_map(classify)
        .unwrap_or(ExitStatus::HookFailed)
}

/// The exit class of one error, when it is one of the library's module errors.
fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    fn class<E: ClassifyExit + std::error::Error + 'static>(
        cause: &(dyn std::error::Error + 'static),
    ) -> Option<ExitStatus> {
        cause.downcast_ref::<E>().map(ClassifyExit::exit_status)
    }
    None.or_else(|| class::<hookbox::charm::CharmError>(cause))
        .or_else(|| class::<hookbox::charm::ingest::IngestError>(cause))
        .or_else(|| class::<hookbox::store::StoreError>(cause))
        .or_else(|| class::<hookbox::sandbox::SandboxError>(cause))
        .or_else(|| class::<hookbox::sandbox::doctor::DoctorError>(cause))
        .or_else(|| class::<hookbox::sandbox::bundle::BundleError>(cause))
        .or_else(|| class::<hookbox::runner::tool_server::ToolServerError>(cause))
        .or_else(|| class::<hookbox::runner::RunnerError>(cause))
        .or_else(|| class::<hookbox::runner::relations::RelationError>(cause))
        .or_else(|| class::<hookbox::model::UnitError>(cause))
        .or_else(|| class::<hookbox::store::merge::MergeError>(cause))
        .or_else(|| class::<hookbox::runner::upgrade::UpgradeError>(cause))
        .or_else(|| class::<hookbox::runner::inspect::AttachError>(cause))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand's arguments are deferred: building the whole command (which runs each
    /// deferred definition) still passes clap's own consistency checks.
    #[test]
    fn every_deferred_subcommand_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// A subcommand's help carries its arguments' own description (the variant's one line
    /// is the summary in `hookbox --help`).
    #[test]
    fn subcommand_help_has_its_long_description() {
        let mut cli = Cli::command();
        let ingest = cli.find_subcommand_mut("ingest").unwrap();
        let help = ingest.render_long_help().to_string();
        assert!(help.contains("all or nothing"), "{help}");
        assert!(help.contains("--max-bytes"), "{help}");
        let top = Cli::command().render_help().to_string();
        assert!(
            top.contains("Store a charm (directory, .tar, .tar.gz, .charm)"),
            "{top}"
        );
    }
}
