//! `hookbox deploy CHARM APP`: create an application and start its units.

use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::model::AppName;
use hookbox::model::runtime::RunSettings;
use hookbox::runner::lifecycle::{self, DeployRequest};
use hookbox::store::StateRoot;

use super::output::print_json;
use super::parse::{NetworkArg, parse_bytes};
use super::units;

/// Deploy a charm as an application and start its units.
///
/// CHARM is a charm path (directory, .tar, .tar.gz, .charm; ingested into the charm store
/// if it is not there yet) or the digest of a stored charm. hookbox creates APP with units
/// APP/0..N-1 and runs, on every unit, install, leader-elected (on the leader, unit 0),
/// config-changed and start, each in a fresh sandbox whose writes are committed as a layer
/// only when the hook succeeds. Units run in parallel (--parallel), the hooks of one unit
/// strictly in order. A unit whose hook fails stops there, in error, with the rest of its
/// hooks queued until `hookbox resolved`; the other units go on. Deploying the same charm
/// again under the same name changes nothing.
///
/// --network, --timeout, --pids and --memory are stored with the application and apply to
/// every hook and action of its units. Every hook run has a pids limit (4096 processes and
/// threads unless --pids says otherwise), so a fork bomb fails its hook instead of
/// exhausting the machine; memory is unlimited unless --memory is given.
///
/// Exit status: 0 when every unit started, 1 when a unit ended in error, 3 for an invalid
/// charm, 4 when APP exists with another charm, 5 when the sandbox cannot run.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The charm: a path, or the digest (sha256-<hex>) of a stored charm.
    pub charm: String,
    /// The application name (lowercase letters, digits, hyphens).
    pub app: AppName,
    /// How many units to create.
    #[arg(long, short = 'n', default_value_t = 1, value_name = "N")]
    pub units: u32,
    /// A config setting, checked against the charm's config.yaml (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = units::parse_pair)]
    pub config: Vec<(String, String)>,
    /// Network of the application's hooks: none (loopback only) or host.
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkArg,
    /// Time limit of each hook, in seconds (the hook fails when it passes).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Maximum number of processes and threads of each hook run; 0 for unlimited. A hook
    /// that reaches it fails (a cgroup limit as root, RLIMIT_NPROC rootless). [default:
    /// 4096]
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Memory limit of each hook run, in bytes or with a K, M or G suffix (e.g. 512M): a
    /// cgroup limit as root, RLIMIT_AS (address space) rootless. A hook that exceeds it
    /// fails. [default: unlimited]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// How many units run hooks at once [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hookbox deploy`.
pub fn run(root: &StateRoot, args: DeployArgs) -> anyhow::Result<ExitStatus> {
    if let Some(t) = args.timeout
        && !(t.is_finite() && t > 0.0)
    {
        anyhow::bail!(hookbox::runner::RunnerError::Usage {
            what: format!("--timeout {t} is not a positive number of seconds"),
        });
    }
    let runner = units::runner(root)?;
    let request = DeployRequest {
        charm: args.charm,
        app: args.app,
        units: args.units,
        config: args.config,
        run: RunSettings {
            network: args.network.into(),
            timeout_secs: args.timeout,
            pids: args.pids,
            memory_bytes: args.memory,
        },
        parallel: args
            .parallel
            .unwrap_or_else(hookbox::runner::lifecycle::default_parallel),
    };
    let report = lifecycle::deploy(&runner, &request, &units::print_wait)?;
    let status = report
        .units
        .iter()
        .map(units::unit_status)
        .fold(ExitStatus::Success, units::worst);
    if args.json {
        print_json(&report)?;
        return Ok(status);
    }
    let revision = report
        .charm
        .revision
        .map_or_else(|| "none".to_owned(), |r| r.to_string());
    if report.outcome == "unchanged" {
        println!(
            "{} already runs {} (revision {revision}, {}); nothing changed",
            report.application, report.charm.name, report.charm.digest
        );
        return Ok(status);
    }
    println!(
        "deployed {} as {} (revision {revision}, {})",
        report.charm.name, report.application, report.charm.digest
    );
    Ok(units::print_unit_reports(&report.units))
}
