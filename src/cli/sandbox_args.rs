//! The sandbox flags `sandbox-run` and `export-bundle` share, and the spec they build.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hookbox::sandbox::{IdMapping, SandboxSpec};

use super::parse::{NetworkArg, absolute, command_env, lowers, parse_bytes, parse_env};

/// The layers, identity, limits and environment of one sandbox.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// A read-only lower layer; repeat for more, top (newest) first. As root, a layer whose
    /// directory belongs to host uid 0 (a charm base) is idmapped onto the sandbox's id range
    /// by sandbox-run, so hook root owns what host root owns; one that belongs to the range's
    /// root (a layer committed from an upper dir) is used as is. An OCI bundle cannot idmap an
    /// overlay layer: its runtime shows such a layer with its on-disk owners.
    #[arg(long = "lower", value_name = "DIR", required = true, num_args = 1)]
    pub lowers: Vec<PathBuf>,
    /// The upper directory that receives every write.
    #[arg(long, value_name = "DIR")]
    pub upper: PathBuf,
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
    /// Kill the whole tree after this many seconds (fractions allowed; an OCI bundle records
    /// it as the annotation org.hookbox.timeout).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Memory limit in bytes, or with a K, M or G suffix (e.g. 512M): a cgroup limit as root,
    /// RLIMIT_AS rootless.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// Maximum number of processes and threads (a cgroup limit as root, RLIMIT_NPROC
    /// rootless).
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// CPU bandwidth as a fraction of one CPU (e.g. 0.5; a cgroup quota, as root).
    #[arg(long, value_name = "FRACTION")]
    pub cpu: Option<f64>,
    /// An environment variable for the command (the environment is otherwise only PATH and
    /// LANG=C.UTF-8; nothing is inherited).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox [default: the charm path].
    #[arg(long, value_name = "PATH")]
    pub cwd: Option<PathBuf>,
}

impl SandboxArgs {
    /// The spec these flags describe, running `command` with `work` as the overlay's work dir.
    pub fn spec(
        self,
        work: &Path,
        ids: IdMapping,
        command: Vec<String>,
    ) -> anyhow::Result<SandboxSpec> {
        let lowers = lowers(&self.lowers, &ids)?;
        let mut spec = SandboxSpec::new(
            ids,
            lowers,
            absolute(&self.upper)?,
            absolute(work)?,
            self.charm_path,
            command,
            command_env(self.env),
        );
        if let Some(cwd) = self.cwd {
            spec.cwd = cwd;
        }
        spec.hostname = self.hostname;
        spec.network = self.network.into();
        spec.limits.timeout = self
            .timeout
            .map(Duration::try_from_secs_f64)
            .transpose()
            .context("--timeout must be a non-negative number of seconds")?;
        spec.limits.memory_bytes = self.memory;
        spec.limits.pids = self.pids;
        spec.limits.cpu = self.cpu;
        Ok(spec)
    }
}
