//! The sandbox a hook runs in: its [`SandboxSpec`], the helper that builds it
//! ([`init`], the re-executed `hookbox __sandbox-init`), and [`run`], the async entry point
//! the unit runner calls.
//!
//! A run is three processes below the runner: the helper (in the runner's namespaces; it
//! forks the init, writes its id maps and exits), the sandbox's init (pid 1 of the new pid
//! namespace; it builds the mounts, forks the command, reaps zombies and forwards
//! SIGTERM/SIGINT) and the command itself. When the init exits the kernel kills everything
//! left in the pid namespace. SIGINT and SIGTERM to the runner go to the init
//! ([`interrupt`]).

pub mod bundle;
mod cgroup;
pub mod doctor;
pub mod init;
mod interrupt;
mod protocol;
mod run;
mod seccomp;
pub mod spec;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::exit::{ClassifyExit, ExitStatus};

pub use cgroup::remove_stale as remove_stale_cgroups;
pub use interrupt::end_if_received as end_if_interrupted;
pub use run::{OutputLine, RunOptions, RunReport, Stream, run};
pub use spec::{
    BindMount, HandlerLookup, IdMapping, IdRange, Image, Limits, Lower, Network, SandboxSpec,
};

/// The argv[1] that makes the hookbox binary act as the sandbox helper.
pub const INIT_ARG: &str = "__sandbox-init";

/// Why a sandbox could not be set up or supervised. A command that fails inside a working
/// sandbox is not an error: see [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec cannot be run as given.
    #[error("invalid sandbox spec: {reason}")]
    InvalidSpec {
        /// What is wrong with it.
        reason: String,
    },
    /// The helper process could not be started.
    #[error("start the sandbox helper {helper}")]
    Spawn {
        /// The executable re-executed as the helper.
        helper: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A setup step inside the sandbox failed (reported by the helper).
    #[error("sandbox setup failed: {step}")]
    Setup {
        /// The step, e.g. "mount overlay at /var/lib/juju/agents/unit-a-0/charm".
        step: String,
        /// The errno of the failing call.
        #[source]
        source: nix::errno::Errno,
    },
    /// Talking to the helper failed, or it broke the protocol.
    #[error("sandbox helper protocol: {what}")]
    Protocol {
        /// What was being exchanged.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The helper ended before it reported the command's status.
    #[error("the sandbox helper ended without a report ({status})")]
    HelperDied {
        /// Its wait status as text.
        status: String,
    },
    /// A host-side preparation step of the runner failed (cgroups, upper dir ownership).
    #[error("{action} {path}")]
    Host {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// Wraps an I/O error with the host-side action and path.
    pub(crate) fn host(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SandboxError::Host {
            action,
            path,
            source,
        }
    }
}

impl ClassifyExit for SandboxError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // What was asked (flags, paths) cannot be run: a usage error, not a broken sandbox.
            SandboxError::InvalidSpec { .. } => ExitStatus::Usage,
            _ => ExitStatus::Sandbox,
        }
    }
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// It exited with this code.
    Exited {
        /// The exit code.
        code: i32,
    },
    /// It was killed by this signal.
    Signaled {
        /// The signal number.
        signal: i32,
    },
    /// The timeout passed and the whole tree was killed.
    TimedOut {
        /// The timeout.
        #[serde(serialize_with = "serialize_secs")]
        after: Duration,
    },
    /// A resource limit ended it.
    KilledByLimit {
        /// Which limit.
        limit: LimitKind,
    },
    /// Handler lookup ([`SandboxSpec::handler`]) found no handler: nothing ran.
    Missing,
}

/// A resource limit that can end a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The memory limit.
    Memory,
    /// The pids (process count) limit.
    Pids,
}

impl Outcome {
    /// Whether the command succeeded (exit code 0).
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited { code: 0 } | Outcome::Missing)
    }

    /// The exit code `sandbox-run` passes on: the command's code, 128+signal for a signal,
    /// 124 for a timeout (as timeout(1)), 137 for a limit kill.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited { code } => *code,
            Outcome::Signaled { signal } => 128 + signal,
            Outcome::TimedOut { .. } => 124,
            Outcome::KilledByLimit { .. } => 137,
            Outcome::Missing => 0,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited { code } => write!(f, "exited with code {code}"),
            Outcome::Signaled { signal } => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_else(|_| signal.to_string());
                write!(f, "killed by signal {name}")
            }
            Outcome::TimedOut { after } => write!(f, "timed out after {}", human_secs(*after)),
            Outcome::KilledByLimit {
                limit: LimitKind::Memory,
            } => write!(f, "killed by the memory limit"),
            Outcome::KilledByLimit {
                limit: LimitKind::Pids,
            } => write!(f, "killed by the pids limit"),
            Outcome::Missing => write!(f, "no handler for the hook"),
        }
    }
}

fn human_secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_f64(d.as_secs_f64())
}
