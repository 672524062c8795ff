//! `hookbox export-bundle`: the sandbox `sandbox-run` would build, as an OCI runtime bundle.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hookbox::exit::ExitStatus;
use hookbox::sandbox::bundle;
use hookbox::sandbox::spec::{IdMapping, IdRange};

use super::output::print_json;
use super::parse::absolute;
use super::sandbox_args::SandboxArgs;

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
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    /// The overlay work directory (same filesystem as --upper) [default: OUT/work].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
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
    let spec = args.sandbox.spec(&work, ids, args.command)?;
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
