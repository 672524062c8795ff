//! `hookbox doctor`: whether hook sandboxes can run here, and what to change if not.

use std::path::{Path, PathBuf};

use hookbox::exit::ExitStatus;
use hookbox::sandbox::doctor::{self, DoctorOptions, Probe, Report};
use hookbox::store::StateRoot;

use super::output::print_json;

/// Probe the kernel features hook sandboxes need, each by really trying it in a short-lived
/// child process: user namespaces (and the sysctl/AppArmor knobs that gate them), mount,
/// pid, net, ipc and uts namespaces, overlayfs with `userxattr`, seccomp, cgroup v1 and v2
/// controllers and delegation, and the `hookbox` /etc/subuid entry when run as root.
///
/// Exits 0 when hook sandboxes can run, 5 when a required check fails. Cgroup checks are
/// optional: without them limits fall back to rlimits.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each kernel feature is tried for real in a short-lived child \
    process: user namespaces (and the kernel.unprivileged_userns_clone, \
    user.max_user_namespaces and kernel.apparmor_restrict_unprivileged_userns knobs), mount, \
    pid, net, ipc and uts namespaces, overlayfs with userxattr (in the state root when it \
    exists), seccomp, cgroup v1 memory/pids/cpu and cgroup v2 controllers and delegation, \
    and the hookbox entry of /etc/subuid and /etc/subgid when run as root. Every failed \
    check says what to change.\n\n\
    Exit status: 0 when hook sandboxes can run, 5 when a required check fails. Cgroup and \
    subuid checks are optional: without them limits fall back to rlimits and root uses a \
    built-in id block."
)]
pub struct DoctorArgs {
    /// Print a JSON array of {check, ok, required, detail, fix} instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden `__doctor-probe` subcommand the doctor re-executes itself with.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The check to probe, e.g. `overlay-userxattr`.
    pub check: String,
    /// Scratch directory for the filesystem probes.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// Runs every probe and prints the report.
pub fn run(args: &DoctorArgs, root: Option<&Path>) -> anyhow::Result<ExitStatus> {
    // The overlay probe runs where the layers will live: the state root when it exists.
    let scratch_parent = StateRoot::locate(root)
        .ok()
        .map(|root| root.path().to_owned())
        .filter(|path| path.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let report = doctor::diagnose(&DoctorOptions {
        exe: PathBuf::from("/proc/self/exe"),
        scratch_parent,
        timeout: doctor::PROBE_TIMEOUT,
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    Ok(report.exit_status())
}

/// Runs one probe in this process and prints its outcome as one JSON line.
pub fn run_probe(args: &ProbeArgs) -> anyhow::Result<ExitStatus> {
    let probe: Probe = args.check.parse()?;
    let outcome = doctor::run_probe(probe, args.scratch.as_deref());
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(ExitStatus::Success)
}

fn print_text(report: &Report) {
    let width = report
        .checks
        .iter()
        .map(|c| c.check.len())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let mark = match (check.ok, check.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "no  ",
        };
        println!("{mark}  {:width$}  {}", check.check, check.detail);
        if let Some(fix) = &check.fix {
            println!("      {:width$}  fix: {fix}", "");
        }
    }
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.required && !c.ok)
        .map(|c| c.check.as_str())
        .collect();
    println!();
    if failed.is_empty() {
        println!("hook sandboxes can run here (\"no\" lines are optional features)");
    } else {
        println!(
            "hook sandboxes cannot run here: {} failed",
            failed.join(", ")
        );
    }
}
