//! `hookbox export-bundle`: the sandbox `sandbox-run` would build, as an OCI runtime bundle.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::sandbox::bundle;
use hookbox::sandbox::spec::{IdMapping, IdRange, SandboxSpec};

use super::output::print_json;
use super::parse::{NetworkArg, absolute, command_env, lowers, parse_bytes, parse_env};

/// Arguments of `hookbox export-bundle`.
#[derive(Debug, Args)]
#[command(
    about = "Write an OCI runtime bundle (config.json and rootfs/) of the sandbox sandbox-run \
             builds: the same namespaces, id map, read-only host image, /proc, /dev, /tmp, \
             charm overlay, capabilities, no_new_privs, seccomp filter and rlimits",
    after_help = "Run it with `crun run -b OUT ID` or `runc run -b OUT ID`. The id map is the \
                  caller's: rootless, the caller's uid and gid become 0; as root, 0 maps to \
                  the `hookbox` range of /etc/subuid and /etc/subgid (else 2147352576+65536), \
                  and the upper and work dirs are handed to that range's root. OUT must not \
                  exist or be empty. OCI has no wall-clock limit: --timeout is written as the \
                  annotation org.hookbox.timeout.\n\n\
                  Example: hookbox export-bundle --lower charm/ --upper up/ bundle -- ls -la"
)]
pub struct ExportBundleArgs {
    /// A read-only lower layer; repeat for more, top (newest) first. As root, the runtime
    /// shows it with its on-disk owners: files of host uid 0 are not hook root's (sandbox-run
    /// idmaps such a layer; an OCI bundle cannot idmap an overlay layer).
    #[arg(long = "lower", value_name = "DIR", required = true, num_args = 1)]
    pub lowers: Vec<PathBuf>,
    /// The upper directory that receives every write.
    #[arg(long, value_name = "DIR")]
    pub upper: PathBuf,
    /// The overlay work directory (same filesystem as --upper) [default: OUT/work].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Where the overlay appears inside the sandbox.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/var/lib/juju/agents/unit-sandbox-0/charm"
    )]
    pub charm_path: PathBuf,
    /// The sandbox's hostname.
    #[arg(long, default_value = "sandbox-0")]
    pub hostname: String,
    /// Network: `none` (a private namespace with loopback only) or `host`.
    #[arg(long, value_enum, default_value_t = NetworkArg::None)]
    pub network: NetworkArg,
    /// Wall-clock limit in seconds, recorded as the annotation org.hookbox.timeout.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Memory limit in bytes, or with a K, M or G suffix (cgroup limit as root, RLIMIT_AS
    /// rootless).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// Maximum number of processes (cgroup limit as root, RLIMIT_NPROC rootless).
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// CPU bandwidth as a fraction of one CPU (cgroup quota, as root).
    #[arg(long, value_name = "FRACTION")]
    pub cpu: Option<f64>,
    /// An environment variable for the command (the environment is otherwise only PATH and
    /// LANG=C.UTF-8).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox [default: the charm path].
    #[arg(long, value_name = "PATH")]
    pub cwd: Option<PathBuf>,
    /// Map uids INSIDE..INSIDE+COUNT to OUTSIDE.. instead of the caller's mapping (for a
    /// runtime that runs in another user namespace); needs --gid-map too.
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT", value_parser = parse_range, requires = "gid_map")]
    pub uid_map: Option<IdRange>,
    /// Map gids INSIDE..INSIDE+COUNT to OUTSIDE.. (with --uid-map).
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT", value_parser = parse_range, requires = "uid_map")]
    pub gid_map: Option<IdRange>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
    /// The bundle directory to create.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Writes the bundle and says how to run it.
pub fn run(args: ExportBundleArgs) -> anyhow::Result<ExitStatus> {
    let out = std::path::absolute(&args.out)
        .with_context(|| format!("resolve {}", args.out.display()))?;
    let work = match &args.work {
        Some(work) => absolute(work)?,
        None => out.join("work"),
    };
    let ids = match (args.uid_map, args.gid_map) {
        (Some(uid), Some(gid)) => IdMapping::Range { uid, gid },
        _ => IdMapping::for_current_user(),
    };
    let mut spec = SandboxSpec::new(
        lowers(&args.lowers, &ids)?,
        absolute(&args.upper)?,
        work.clone(),
        args.charm_path.clone(),
        args.command,
        command_env(args.env),
    );
    spec.ids = ids;
    if let Some(cwd) = args.cwd {
        spec.cwd = cwd;
    }
    spec.hostname = args.hostname;
    spec.network = args.network.into();
    spec.limits.timeout = args
        .timeout
        .map(Duration::try_from_secs_f64)
        .transpose()
        .context("--timeout must be a non-negative number of seconds")?;
    spec.limits.memory_bytes = args.memory;
    spec.limits.pids = args.pids;
    spec.limits.cpu = args.cpu;
    let written = bundle::export_bundle(&spec, &out)?;
    if args.json {
        print_json(&written)?;
    } else {
        println!(
            "wrote OCI bundle {} (config.json, rootfs/)\nrun it with: crun run -b {} <id>",
            written.path.display(),
            written.path.display()
        );
    }
    Ok(ExitStatus::Success)
}

fn parse_range(text: &str) -> Result<IdRange, String> {
    let fields: Vec<Option<u32>> = text.split(':').map(|f| f.parse().ok()).collect();
    match fields.as_slice() {
        [Some(inside), Some(outside), Some(count)] if *count > 0 => Ok(IdRange {
            inside: *inside,
            outside: *outside,
            count: *count,
        }),
        _ => Err(format!(
            "{text:?} is not INSIDE:OUTSIDE:COUNT (e.g. 0:100000:65536)"
        )),
    }
}
