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

use clap::{Parser, Subcommand, ValueEnum};
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
    Ingest(ingest::IngestArgs),
    /// Check a charm against the ingest rules without storing it.
    Verify(verify::VerifyArgs),
    /// Run a command in exactly the sandbox hooks get.
    SandboxRun(sandbox_run::SandboxRunArgs),
    /// Check whether hook sandboxes can run here, and what to change if not.
    Doctor(doctor::DoctorArgs),
    /// Write an OCI runtime bundle of the sandbox, for crun, runc or youki.
    ExportBundle(export_bundle::ExportBundleArgs),
    /// Deploy a charm as an application and start its units.
    Deploy(deploy::DeployArgs),
    /// Add units to an application.
    AddUnit(add_unit::AddUnitArgs),
    /// Stop and remove one unit.
    RemoveUnit(remove::RemoveUnitArgs),
    /// Remove an application and all its units.
    Remove(remove::RemoveArgs),
    /// Show or change an application's settings.
    Config(config::ConfigArgs),
    /// Run one hook or action on a unit.
    Run(run_hook::RunArgs),
    /// Relate two applications' endpoints; their units run the relation hooks.
    Relate(relate::RelateArgs),
    /// Remove a relation; its units run relation-departed and relation-broken.
    Unrelate(relate::UnrelateArgs),
    /// Show applications and units.
    Status(status::StatusArgs),
    /// Show a unit's hook runs.
    History(history::HistoryArgs),
    /// Show what a unit's hooks wrote (stdout, stderr, juju-log).
    Log(log::LogArgs),
    /// Show what runtime changed in a unit's charm dir.
    Diff(diff::DiffArgs),
    /// Run a command in a unit's sandbox over its charm dir.
    Shell(shell::ShellArgs),
    /// Resolve a unit in error, or retry its failed hook.
    Resolved(resolved::ResolvedArgs),
    /// Upgrade an application's charm (three-way merge of runtime changes).
    Upgrade(upgrade::UpgradeArgs),
    /// Show what an upgrade would do (compatibility, settings, conflicts), changing nothing.
    PreviewUpgrade(preview_upgrade::PreviewUpgradeArgs),
    /// Internal: one doctor probe, run in a re-executed child.
    #[command(name = "__doctor-probe", hide = true)]
    DoctorProbe(doctor::ProbeArgs),
    /// Inside the sandbox of an interactive `shell`: attach the caller's stdio, run the shell.
    #[command(name = "__attach-stdio", hide = true)]
    AttachStdio(shell::AttachStdioArgs),
}

/// Parses the command line, runs the command and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("error: {}", render_chain(&err));
            ExitCode::from(exit_status_of(&err).code())
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Ingest(args) => ingest::run(&root_of(&cli.root)?, args),
        Command::Verify(args) => verify::run(args),
        // The command's own exit code is passed through unchanged.
        Command::SandboxRun(args) => std::process::exit(sandbox_run::run(args)?.into()),
        Command::Doctor(args) => doctor::run(&args, cli.root.as_deref()),
        Command::ExportBundle(args) => export_bundle::run(args),
        Command::DoctorProbe(args) => doctor::run_probe(&args),
        Command::Deploy(args) => deploy::run(&root_of(&cli.root)?, args),
        Command::AddUnit(args) => add_unit::run(&root_of(&cli.root)?, args),
        Command::RemoveUnit(args) => remove::run_unit(&root_of(&cli.root)?, args),
        Command::Remove(args) => remove::run_app(&root_of(&cli.root)?, args),
        Command::Config(args) => config::run(&root_of(&cli.root)?, args),
        Command::Run(args) => run_hook::run(&root_of(&cli.root)?, args),
        Command::Relate(args) => relate::run_relate(&root_of(&cli.root)?, args),
        Command::Unrelate(args) => relate::run_unrelate(&root_of(&cli.root)?, args),
        Command::Status(args) => status::run(&root_of(&cli.root)?, args),
        Command::History(args) => history::run(&root_of(&cli.root)?, args),
        Command::Log(args) => log::run(&root_of(&cli.root)?, args),
        Command::Diff(args) => diff::run(&root_of(&cli.root)?, args),
        Command::Shell(args) => shell::run(&root_of(&cli.root)?, args),
        Command::Resolved(args) => resolved::run(&root_of(&cli.root)?, args),
        Command::Upgrade(args) => upgrade::run(&root_of(&cli.root)?, args),
        Command::PreviewUpgrade(args) => preview_upgrade::run(&root_of(&cli.root)?, args),
        Command::AttachStdio(args) => shell::run_attached(args),
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
