//! `hookbox sandbox-run`: runs any command in exactly the sandbox a hook gets.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use hookbox::exit::{ClassifyExit, error_chain};
use hookbox::sandbox::{self, BindMount, IdMapping, Image, RunOptions};

use super::parse::absolute;
use super::sandbox_args::SandboxArgs;

/// Arguments of `hookbox sandbox-run`.
#[derive(Debug, Args)]
#[command(
    about = "Run a command in the sandbox hooks get: an overlay of the given layers at the \
             charm path, the host's /usr, /bin, /lib* and /etc read-only, private /tmp, /proc \
             and /dev, its own namespaces, no capabilities beyond a hook's, seccomp",
    after_help = "The command's stdout and stderr are passed through and hookbox exits with \
                  its exit code (128+N for signal N, 124 for a timeout, 137 for a limit kill). \
                  A sandbox that cannot be set up exits 5 naming the failing step; flags that \
                  cannot be run as given exit 2. SIGINT and SIGTERM to hookbox go to the \
                  command's process group, so its traps run and the run is cleaned up.\n\n\
                  Example: hookbox sandbox-run --lower charm/ --upper /tmp/up -- ls -la"
)]
pub struct SandboxRunArgs {
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The overlay work directory (empty, same filesystem as --upper) [default: a temporary
    /// directory beside --upper, removed afterwards].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Root filesystem image.
    #[arg(long, value_enum, default_value_t = ImageArg::Host)]
    pub image: ImageArg,
    /// Bind a host path read-only into the sandbox (repeatable).
    #[arg(long, value_name = "HOST:SANDBOX", value_parser = parse_bind)]
    pub ro_bind: Vec<(PathBuf, PathBuf)>,
    /// Bind a host path read-write into the sandbox (repeatable).
    #[arg(long, value_name = "HOST:SANDBOX", value_parser = parse_bind)]
    pub bind: Vec<(PathBuf, PathBuf)>,
    /// Print the run report (outcome, timestamped output lines) as JSON instead of passing
    /// the output through.
    #[arg(long)]
    pub json: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `--image` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImageArg {
    /// The host's /usr, /bin, /sbin, /lib* and /etc, read-only.
    Host,
}

/// Runs the command; the process exit code is the command's. `verbose` (the global
/// `--verbose`) prints the outcome, timing and warnings after the run.
pub fn run(args: SandboxRunArgs, verbose: bool) -> anyhow::Result<u8> {
    let temporary_work = match &args.work {
        Some(_) => None,
        None => Some(work_dir_beside(&args.sandbox.upper)?),
    };
    let work = match (&args.work, &temporary_work) {
        (Some(work), _) => work.clone(),
        (None, Some(dir)) => dir.path().to_owned(),
        (None, None) => unreachable!("a work dir is either given or created"),
    };
    let mut spec = args
        .sandbox
        .spec(&work, IdMapping::for_current_user(), args.command)?;
    for (binds, writable) in [(args.ro_bind, false), (args.bind, true)] {
        for (source, target) in binds {
            spec.binds.push(BindMount {
                source: absolute(&source)?,
                target,
                writable,
            });
        }
    }
    spec.image = match args.image {
        ImageArg::Host => Image::Host,
    };
    let options = RunOptions {
        stream: !args.json,
        // With --verbose the warnings are printed with the outcome, once.
        warn_fallbacks: !verbose,
        ..RunOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let report = runtime.block_on(sandbox::run(&spec, &options));
    if let Some(dir) = temporary_work {
        remove_work_dir(dir);
    }
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            // A script reading --json gets the failure as JSON too (and the usual error line
            // on stderr, and the exit code).
            if args.json {
                super::output::print_json(&serde_json::json!({
                    "error": error_chain(&error),
                    "exit_code": error.exit_status().code(),
                }))?;
            }
            return Err(error.into());
        }
    };
    if args.json {
        super::output::print_json(&report)?;
    }
    if verbose {
        eprintln!("hookbox: {} ({:.1} ms)", report.reason, report.duration_ms);
        for warning in &report.warnings {
            eprintln!("hookbox: warning: {warning}");
        }
    } else if !report.outcome.success()
        && !matches!(report.outcome, sandbox::Outcome::Exited { .. })
    {
        eprintln!("hookbox: {}", report.reason);
    }
    Ok(report.outcome.exit_code().clamp(0, 255) as u8)
}

fn work_dir_beside(upper: &Path) -> anyhow::Result<tempfile::TempDir> {
    let upper = absolute(upper)?;
    let parent = upper
        .parent()
        .with_context(|| format!("--upper {} has no parent directory", upper.display()))?;
    tempfile::Builder::new()
        .prefix(".hookbox-work-")
        .tempdir_in(parent)
        .with_context(|| format!("create a work directory in {}", parent.display()))
}

/// Removes the work dir: overlayfs leaves a mode-000 `work/` in it, which
/// [`remove_tree`](hookbox::store::fsops::remove_tree) opens up without following a symlink
/// the sandbox may have put there.
fn remove_work_dir(dir: tempfile::TempDir) {
    let path = dir.keep();
    if let Err(error) = hookbox::store::fsops::remove_tree(&path) {
        tracing::debug!(%error, "could not remove a work directory");
    }
}

fn parse_bind(text: &str) -> Result<(PathBuf, PathBuf), String> {
    match text.split_once(':') {
        Some((host, inside)) if !host.is_empty() && inside.starts_with('/') => {
            Ok((PathBuf::from(host), PathBuf::from(inside)))
        }
        _ => Err(format!("{text:?} is not HOST:/ABSOLUTE/SANDBOX/PATH")),
    }
}
