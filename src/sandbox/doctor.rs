//! `hookbox doctor`: can hook sandboxes run on this machine, and if not, what knob to turn.
//!
//! Every kernel feature is probed by trying it for real in a short-lived child: the binary
//! re-executes itself (`/proc/self/exe __doctor-probe <check>`), the child attempts the
//! feature (a user namespace with an id map, an overlay with `userxattr`, a pid namespace with
//! a fresh /proc, a seccomp filter, a cgroup it creates and joins, ...) and prints one JSON
//! line with the outcome. The doctor process itself never unshares, mounts or forks: a probe
//! that crashes or hangs only costs its own child. Knobs that are plain files (sysctls,
//! /etc/subuid) are read by the doctor directly and explain a failed probe.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use super::spec::{DEFAULT_ROOT_ID_BASE, DEFAULT_ROOT_ID_COUNT, SUBID_USER, subid_range};
use crate::exit::{ClassifyExit, ExitStatus, error_chain};

/// The hidden subcommand the doctor re-executes itself with to run one probe.
pub const PROBE_SUBCOMMAND: &str = "__doctor-probe";

/// How long one probe may take before it counts as failed and is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Controllers the sandbox uses for `--memory`, `--pids` and `--cpu`.
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Errors of the doctor itself (a failed probe is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// The probe child could not be started.
    #[error("start probe {probe} with {exe}")]
    Spawn {
        /// The probe's check name.
        probe: &'static str,
        /// The executable re-executed.
        exe: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The scratch directory for the filesystem probes could not be prepared.
    #[error("prepare scratch directory {path}")]
    Scratch {
        /// The scratch directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One step inside a probe failed.
    #[error("{step}")]
    Step {
        /// What the probe was doing, e.g. "unshare(CLONE_NEWUSER)".
        step: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A step inside a probe ran but did not have the expected effect.
    #[error("{step}: {found}")]
    Unexpected {
        /// What was being verified.
        step: String,
        /// What was found instead.
        found: String,
    },
    /// An unknown probe name was passed to the hidden probe subcommand.
    #[error("unknown probe {name:?}")]
    UnknownProbe {
        /// The name given.
        name: String,
    },
}

impl ClassifyExit for DoctorError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            DoctorError::UnknownProbe { .. } => ExitStatus::Usage,
            _ => ExitStatus::Sandbox,
        }
    }
}

/// Wraps an error with the probe step that produced it.
fn step<E: Into<std::io::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> DoctorError {
    let step = what.into();
    move |source| DoctorError::Step {
        step,
        source: source.into(),
    }
}

/// One line of the doctor's report; the `--json` output is an array of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable name of the check, e.g. `user-namespace`.
    pub check: String,
    /// Whether the feature works (or the knob permits it).
    pub ok: bool,
    /// Whether hook sandboxes need it; a failed required check makes the doctor exit 5.
    pub required: bool,
    /// What was tried and what happened.
    pub detail: String,
    /// What to change when it does not work; `null` when there is nothing to fix.
    pub fix: Option<String>,
}

/// The whole report, in a stable order.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Report {
    /// Every check, in the order of [`CHECK_NAMES`].
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every required check passed: hook sandboxes can run here.
    pub fn sandbox_ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok || !c.required)
    }

    /// The exit status `hookbox doctor` reports: success when sandboxes can run, else 5.
    pub fn exit_status(&self) -> ExitStatus {
        if self.sandbox_ready() {
            ExitStatus::Success
        } else {
            ExitStatus::Sandbox
        }
    }
}

/// Every check the doctor reports, in report order.
pub const CHECK_NAMES: [&str; 17] = [
    "user-namespace",
    "kernel.unprivileged_userns_clone",
    "user.max_user_namespaces",
    "kernel.apparmor_restrict_unprivileged_userns",
    "mount-namespace",
    "overlay-userxattr",
    "pid-namespace",
    "net-namespace",
    "ipc-namespace",
    "uts-namespace",
    "seccomp",
    "cgroup-v1:memory",
    "cgroup-v1:pids",
    "cgroup-v1:cpu",
    "cgroup-v2:controllers",
    "cgroup-v2:delegation",
    "subuid",
];

/// A feature probed in a re-executed child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `unshare(CLONE_NEWUSER)` and a uid/gid map with the caller as 0.
    UserNamespace,
    /// A mount namespace: private propagation, tmpfs, a read-only bind of /usr, `pivot_root`.
    MountNamespace,
    /// An overlay with `userxattr` inside a user namespace: copy-up, new files, whiteouts.
    OverlayUserxattr,
    /// A pid namespace whose first child is pid 1 and can mount a fresh /proc.
    PidNamespace,
    /// The pid 1 side of [`Probe::PidNamespace`] (internal).
    PidNamespaceInit,
    /// A network namespace holding only a loopback interface.
    NetNamespace,
    /// An IPC namespace.
    IpcNamespace,
    /// A UTS namespace whose hostname can be set.
    UtsNamespace,
    /// `no_new_privs` and a seccomp filter that really refuses a syscall.
    Seccomp,
    /// A cgroup v1 controller: mounted, a child cgroup creatable, limited and joinable.
    CgroupV1(Controller),
    /// The cgroup v2 controllers available at our cgroup.
    CgroupV2Controllers,
    /// cgroup v2 delegation: child cgroups creatable and joinable, controllers enabled.
    CgroupV2Delegation,
}

/// A cgroup controller the sandbox uses for limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// `--memory`.
    Memory,
    /// `--pids`.
    Pids,
    /// `--cpu`.
    Cpu,
}

impl Controller {
    /// The controller's kernel name.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }

    /// The v1 limit file a probe writes, and a harmless value for it.
    fn v1_limit(self) -> (&'static str, &'static str) {
        match self {
            Controller::Memory => ("memory.limit_in_bytes", "268435456"),
            Controller::Pids => ("pids.max", "512"),
            Controller::Cpu => ("cpu.cfs_quota_us", "50000"),
        }
    }
}

impl Probe {
    /// Every probe the doctor runs (the internal pid 1 half excluded).
    pub const ALL: [Probe; 13] = [
        Probe::UserNamespace,
        Probe::MountNamespace,
        Probe::OverlayUserxattr,
        Probe::PidNamespace,
        Probe::NetNamespace,
        Probe::IpcNamespace,
        Probe::UtsNamespace,
        Probe::Seccomp,
        Probe::CgroupV1(Controller::Memory),
        Probe::CgroupV1(Controller::Pids),
        Probe::CgroupV1(Controller::Cpu),
        Probe::CgroupV2Controllers,
        Probe::CgroupV2Delegation,
    ];

    /// The check name, as in the report and on the probe command line.
    pub fn name(self) -> &'static str {
        match self {
            Probe::UserNamespace => "user-namespace",
            Probe::MountNamespace => "mount-namespace",
            Probe::OverlayUserxattr => "overlay-userxattr",
            Probe::PidNamespace => "pid-namespace",
            Probe::PidNamespaceInit => "pid-namespace-init",
            Probe::NetNamespace => "net-namespace",
            Probe::IpcNamespace => "ipc-namespace",
            Probe::UtsNamespace => "uts-namespace",
            Probe::Seccomp => "seccomp",
            Probe::CgroupV1(Controller::Memory) => "cgroup-v1:memory",
            Probe::CgroupV1(Controller::Pids) => "cgroup-v1:pids",
            Probe::CgroupV1(Controller::Cpu) => "cgroup-v1:cpu",
            Probe::CgroupV2Controllers => "cgroup-v2:controllers",
            Probe::CgroupV2Delegation => "cgroup-v2:delegation",
        }
    }

    /// Whether hook sandboxes cannot run without it. Cgroups are optional: limits fall back
    /// to rlimits where the cgroup tree does not allow them.
    pub fn required(self) -> bool {
        !matches!(
            self,
            Probe::CgroupV1(_) | Probe::CgroupV2Controllers | Probe::CgroupV2Delegation
        )
    }

    /// Whether the probe needs a scratch directory on the store's filesystem.
    fn needs_scratch(self) -> bool {
        matches!(self, Probe::MountNamespace | Probe::OverlayUserxattr)
    }
}

impl FromStr for Probe {
    type Err = DoctorError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Probe::ALL
            .into_iter()
            .chain([Probe::PidNamespaceInit])
            .find(|p| p.name() == name)
            .ok_or_else(|| DoctorError::UnknownProbe {
                name: name.to_owned(),
            })
    }
}

/// What a probe child prints on stdout: one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// Whether the feature worked.
    pub ok: bool,
    /// What was tried and what happened.
    pub detail: String,
    /// What to change, when the probe knows better than the doctor's generic advice.
    pub fix: Option<String>,
}

impl ProbeOutcome {
    fn pass(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
            fix,
        }
    }
}

/// How to run the doctor.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The hookbox binary to re-execute for the probes (normally `/proc/self/exe`).
    pub exe: PathBuf,
    /// A directory on the filesystem the layers live on, where the overlay probe makes its
    /// scratch directories (the state root when it exists, else the temp dir).
    pub scratch_parent: PathBuf,
    /// The limit for each probe.
    pub timeout: Duration,
}

/// Runs every probe in its own child (concurrently), reads the knobs, and returns the report.
pub fn diagnose(options: &DoctorOptions) -> Result<Report, DoctorError> {
    let knobs = Knobs::read();
    let mut running = Vec::new();
    for probe in Probe::ALL {
        let scratch = if probe.needs_scratch() {
            Some(make_scratch(&options.scratch_parent, probe)?)
        } else {
            None
        };
        let child = spawn_probe(&options.exe, probe, scratch.as_ref().map(|d| d.path()))?;
        running.push((probe, child, scratch));
    }
    let deadline = Instant::now() + options.timeout;
    let mut outcomes = BTreeMap::new();
    for (probe, child, scratch) in running {
        let pid = child.id();
        let outcome = collect_probe(probe, child, deadline);
        if let Some(dir) = scratch {
            remove_scratch(dir);
        }
        if let Probe::CgroupV1(_) | Probe::CgroupV2Delegation = probe {
            remove_probe_cgroups(pid);
        }
        outcomes.insert(probe.name(), (probe, outcome));
    }
    let mut checks = Vec::with_capacity(CHECK_NAMES.len());
    for name in CHECK_NAMES {
        let check = match outcomes.remove(name) {
            Some((probe, outcome)) => probe_check(probe, outcome, &knobs),
            None => knobs.check(name),
        };
        checks.push(check);
    }
    Ok(Report { checks })
}

/// A fresh scratch directory for one probe, world-traversable so the probe's user namespace
/// (whose root is the caller) can use it.
fn make_scratch(parent: &Path, probe: Probe) -> Result<tempfile::TempDir, DoctorError> {
    let scratch = |source| DoctorError::Scratch {
        path: parent.to_owned(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!(".hookbox-doctor-{}-", probe.name()))
        .tempdir_in(parent)
        .map_err(scratch)?;
    Ok(dir)
}

/// Removes a scratch directory (overlayfs leaves `work/work` with mode 000, which
/// [`remove_tree`](crate::store::fsops::remove_tree) opens up, following no symlink).
fn remove_scratch(dir: tempfile::TempDir) {
    let path = dir.keep();
    if let Err(error) = crate::store::fsops::remove_tree(&path) {
        tracing::debug!(%error, "could not remove a doctor scratch directory");
    }
}

/// Starts `exe __doctor-probe <name> [--scratch DIR]` with its stdout captured.
fn spawn_probe(exe: &Path, probe: Probe, scratch: Option<&Path>) -> Result<Child, DoctorError> {
    let mut cmd = Command::new(exe);
    cmd.arg(PROBE_SUBCOMMAND).arg(probe.name());
    if let Some(dir) = scratch {
        cmd.arg("--scratch").arg(dir);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HOOKBOX_LOG", "error");
    cmd.spawn().map_err(|source| DoctorError::Spawn {
        probe: probe.name(),
        exe: exe.to_owned(),
        source,
    })
}

/// Waits for a probe child until `deadline`, killing it if it is late, and decodes its
/// outcome. A child that crashed, hung or printed nonsense is a failed probe.
fn collect_probe(probe: Probe, mut child: Child, deadline: Instant) -> ProbeOutcome {
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => break None,
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let Some(status) = status else {
        return ProbeOutcome::fail(
            format!("the {} probe did not finish in time", probe.name()),
            None,
        );
    };
    match serde_json::from_str::<ProbeOutcome>(stdout.trim()) {
        Ok(outcome) => outcome,
        Err(_) => ProbeOutcome::fail(
            format!(
                "the probe child ended with {status} without a result: {}",
                stderr.trim()
            ),
            None,
        ),
    }
}

/// Turns a probe's outcome into its report line, adding the generic fix when it failed.
fn probe_check(probe: Probe, outcome: ProbeOutcome, knobs: &Knobs) -> Check {
    let fix = if outcome.ok {
        None
    } else {
        outcome.fix.or_else(|| Some(generic_fix(probe, knobs)))
    };
    Check {
        check: probe.name().to_owned(),
        ok: outcome.ok,
        required: probe.required(),
        detail: outcome.detail,
        fix,
    }
}

/// The advice for a failed probe when the probe had nothing more specific to say.
fn generic_fix(probe: Probe, knobs: &Knobs) -> String {
    match probe {
        Probe::UserNamespace => knobs.userns_fix(),
        Probe::OverlayUserxattr => "use Linux 5.11 or later with overlayfs built in \
            (`modprobe overlay`) and keep the state root on a filesystem with user xattrs \
            (ext4, xfs, btrfs; tmpfs from Linux 6.6)"
            .to_owned(),
        Probe::Seccomp => "use a kernel built with CONFIG_SECCOMP_FILTER".to_owned(),
        Probe::CgroupV1(_) | Probe::CgroupV2Controllers | Probe::CgroupV2Delegation => {
            "limits fall back to rlimits; for cgroup limits run as root on a cgroup v1 host, \
             or delegate a cgroup v2 subtree with memory, pids and cpu to this user"
                .to_owned()
        }
        _ => format!(
            "namespaces need user namespaces first; then check the kernel config \
             (CONFIG_{}_NS) and {}",
            match probe {
                Probe::PidNamespace | Probe::PidNamespaceInit => "PID",
                Probe::NetNamespace => "NET",
                Probe::IpcNamespace => "IPC",
                Probe::UtsNamespace => "UTS",
                _ => "USER",
            },
            knobs.userns_fix()
        ),
    }
}

/// The sysctl and AppArmor knobs that gate unprivileged user namespaces, and /etc/subuid.
#[derive(Debug, Clone)]
struct Knobs {
    unprivileged_userns_clone: Option<String>,
    max_user_namespaces: Option<String>,
    apparmor_restrict: Option<String>,
    is_root: bool,
}

impl Knobs {
    fn read() -> Self {
        let sysctl = |path: &str| {
            fs::read_to_string(path)
                .ok()
                .map(|value| value.trim().to_owned())
        };
        Self {
            unprivileged_userns_clone: sysctl("/proc/sys/kernel/unprivileged_userns_clone"),
            max_user_namespaces: sysctl("/proc/sys/user/max_user_namespaces"),
            apparmor_restrict: sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
            is_root: rustix::process::geteuid().is_root(),
        }
    }

    /// The knob to turn when user namespaces do not work, from what the knobs say.
    fn userns_fix(&self) -> String {
        let mut fixes = Vec::new();
        if self.unprivileged_userns_clone.as_deref() == Some("0") {
            fixes.push("sysctl -w kernel.unprivileged_userns_clone=1");
        }
        if self.max_user_namespaces.as_deref() == Some("0") {
            fixes.push("sysctl -w user.max_user_namespaces=15000");
        }
        if self.apparmor_restrict.as_deref() == Some("1") {
            fixes.push(
                "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or load an AppArmor \
                 profile for the hookbox binary that allows `userns,`)",
            );
        }
        if fixes.is_empty() {
            "use a kernel with CONFIG_USER_NS=y; if hookbox runs in a container, allow \
             unshare(CLONE_NEWUSER) in its seccomp profile"
                .to_owned()
        } else {
            fixes.join("; ")
        }
    }

    /// The report line of a knob check.
    fn check(&self, name: &str) -> Check {
        let line = |ok: bool, detail: String, fix: Option<&str>| Check {
            check: name.to_owned(),
            ok,
            required: false,
            detail,
            fix: fix.map(str::to_owned),
        };
        let root_note = if self.is_root {
            " (it does not restrict root)"
        } else {
            ""
        };
        match name {
            "kernel.unprivileged_userns_clone" => match self.unprivileged_userns_clone.as_deref() {
                None => line(
                    true,
                    "not present: this kernel does not gate user namespaces with it".into(),
                    None,
                ),
                Some("0") => line(
                    false,
                    format!("0: unprivileged user namespaces are disabled{root_note}"),
                    Some("sysctl -w kernel.unprivileged_userns_clone=1"),
                ),
                Some(value) => line(true, format!("{value}: allowed"), None),
            },
            "user.max_user_namespaces" => match self.max_user_namespaces.as_deref() {
                None => line(
                    false,
                    "not present: the kernel has no user namespaces".into(),
                    Some("use a kernel with CONFIG_USER_NS=y"),
                ),
                Some("0") => line(
                    false,
                    "0: no user namespace may be created".into(),
                    Some("sysctl -w user.max_user_namespaces=15000"),
                ),
                Some(value) => line(true, format!("{value}: allowed"), None),
            },
            "kernel.apparmor_restrict_unprivileged_userns" => {
                match self.apparmor_restrict.as_deref() {
                    None => line(
                        true,
                        "not present: AppArmor does not restrict user namespaces here".into(),
                        None,
                    ),
                    Some("1") => line(
                        false,
                        format!(
                            "1: AppArmor denies capabilities in unprivileged user namespaces \
                             unless the binary's profile allows `userns`{root_note}"
                        ),
                        Some(
                            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or load \
                             an AppArmor profile for the hookbox binary that allows `userns,`",
                        ),
                    ),
                    Some(value) => line(true, format!("{value}: not restricted"), None),
                }
            }
            "subuid" => subuid_check(self.is_root),
            other => line(false, format!("no such check {other:?}"), None),
        }
    }
}

/// As root, the sandbox maps its uid 0 to the `hookbox` range of /etc/subuid and /etc/subgid.
fn subuid_check(is_root: bool) -> Check {
    let mut check = Check {
        check: "subuid".to_owned(),
        ok: true,
        required: false,
        detail: String::new(),
        fix: None,
    };
    if !is_root {
        check.detail =
            "not needed: a rootless sandbox maps the caller's uid and gid to 0".to_owned();
        return check;
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        match subid_range(&text, SUBID_USER) {
            Some(range) if range.count >= 65536 => {
                found.push(format!("{file}: hookbox:{}:{}", range.outside, range.count));
            }
            Some(range) => missing.push(format!(
                "{file} has hookbox:{}:{}, fewer than 65536 ids",
                range.outside, range.count
            )),
            None => missing.push(format!("{file} has no hookbox entry")),
        }
    }
    if missing.is_empty() {
        check.detail = found.join("; ");
    } else {
        check.ok = false;
        check.detail = format!(
            "{}; as root the sandbox falls back to its built-in block of {DEFAULT_ROOT_ID_COUNT} \
             ids from {DEFAULT_ROOT_ID_BASE}",
            missing.join("; ")
        );
        check.fix = Some(
            "add `hookbox:100000:65536` to /etc/subuid and /etc/subgid (a range no other user \
             has)"
                .to_owned(),
        );
    }
    check
}

/// Tries to remove the cgroups a probe child (by its pid) may have left behind.
fn remove_probe_cgroups(child_pid: u32) {
    let name = format!("hookbox-doctor-{child_pid}");
    let Ok(mounts) = CgroupMount::all() else {
        return;
    };
    let Ok(memberships) = fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    for mount in mounts {
        if let Some(dir) = mount.our_dir(&memberships) {
            let _ = fs::remove_dir(dir.join(&name));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The probe child.
// ---------------------------------------------------------------------------------------

/// Runs one probe in this (freshly re-executed, single-threaded) process and returns its
/// outcome, which the caller prints as one JSON line. Probes that unshare leave this
/// process in the new namespaces: it must exit right after.
pub fn run_probe(probe: Probe, scratch: Option<&Path>) -> ProbeOutcome {
    let result = match probe {
        Probe::UserNamespace => probe_user_namespace(),
        Probe::MountNamespace => with_scratch(scratch, probe_mount_namespace),
        Probe::OverlayUserxattr => with_scratch(scratch, probe_overlay),
        Probe::PidNamespace => probe_pid_namespace(),
        Probe::PidNamespaceInit => probe_pid_namespace_init(),
        Probe::NetNamespace => probe_net_namespace(),
        Probe::IpcNamespace => probe_ipc_namespace(),
        Probe::UtsNamespace => probe_uts_namespace(),
        Probe::Seccomp => probe_seccomp(),
        Probe::CgroupV1(controller) => return probe_cgroup_v1(controller),
        Probe::CgroupV2Controllers => return probe_cgroup_v2_controllers(),
        Probe::CgroupV2Delegation => return probe_cgroup_v2_delegation(),
    };
    match result {
        Ok(detail) => ProbeOutcome::pass(detail),
        Err(err) => ProbeOutcome::fail(error_chain(&err), None),
    }
}

fn with_scratch(
    scratch: Option<&Path>,
    probe: fn(&Path) -> Result<String, DoctorError>,
) -> Result<String, DoctorError> {
    let dir = scratch.ok_or_else(|| DoctorError::Unexpected {
        step: "probe arguments".into(),
        found: "no --scratch directory given".into(),
    })?;
    probe(dir)
}

/// `unshare(flags | CLONE_NEWUSER)` and map the caller's uid and gid to 0, like a rootless
/// sandbox does (user_namespaces(7): setgroups must be denied before an unprivileged gid map).
fn enter_user_namespace(extra: CloneFlags) -> Result<(), DoctorError> {
    let threads = crate::sys::thread_count().unwrap_or(0);
    if threads != 1 {
        return Err(DoctorError::Unexpected {
            step: "single-threaded probe process".into(),
            found: format!("{threads} threads; unshare(CLONE_NEWUSER) needs exactly one"),
        });
    }
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | extra)
        .map_err(step(format!("unshare({})", clone_flag_names(extra))))?;
    fs::write("/proc/self/uid_map", format!("0 {uid} 1\n"))
        .map_err(step("write /proc/self/uid_map"))?;
    fs::write("/proc/self/setgroups", "deny").map_err(step("write /proc/self/setgroups"))?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1\n"))
        .map_err(step("write /proc/self/gid_map"))?;
    Ok(())
}

fn clone_flag_names(extra: CloneFlags) -> String {
    let mut names = vec!["CLONE_NEWUSER"];
    for (flag, name) in [
        (CloneFlags::CLONE_NEWNS, "CLONE_NEWNS"),
        (CloneFlags::CLONE_NEWPID, "CLONE_NEWPID"),
        (CloneFlags::CLONE_NEWNET, "CLONE_NEWNET"),
        (CloneFlags::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (CloneFlags::CLONE_NEWUTS, "CLONE_NEWUTS"),
    ] {
        if extra.contains(flag) {
            names.push(name);
        }
    }
    names.join("|")
}

/// One field of /proc/self/status.
fn status_field(name: &str) -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim().to_owned())
    })
}

fn probe_user_namespace() -> Result<String, DoctorError> {
    let uid = rustix::process::getuid().as_raw();
    enter_user_namespace(CloneFlags::empty())?;
    let inner = rustix::process::getuid().as_raw();
    if inner != 0 {
        return Err(DoctorError::Unexpected {
            step: "uid inside the user namespace".into(),
            found: format!("{inner}, expected 0"),
        });
    }
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .ok()
    .filter(|has| *has)
    .ok_or_else(|| DoctorError::Unexpected {
        step: "CAP_SYS_ADMIN inside the user namespace".into(),
        found: "missing (an LSM such as AppArmor withholds it)".into(),
    })?;
    Ok(format!(
        "unshare(CLONE_NEWUSER) works; host uid {uid} maps to 0 with full capabilities inside"
    ))
}

/// Makes the whole mount tree private so nothing the probe mounts reaches the host.
fn make_mounts_private() -> Result<(), DoctorError> {
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make / private (MS_REC|MS_PRIVATE)"))
}

/// The mount flags a bind of `path` must keep when remounted read-only in a user namespace:
/// the kernel refuses to clear locked nosuid/nodev/noexec/atime flags (mount(2), EPERM).
pub fn locked_mount_flags(path: &Path) -> Result<MsFlags, DoctorError> {
    use nix::sys::statvfs::FsFlags;
    let flags = nix::sys::statvfs::statvfs(path)
        .map_err(step(format!("statvfs {}", path.display())))?
        .flags();
    let mut kept = MsFlags::empty();
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(fs_flag) {
            kept |= ms_flag;
        }
    }
    Ok(kept)
}

fn probe_mount_namespace(scratch: &Path) -> Result<String, DoctorError> {
    let root = scratch.join("root");
    fs::create_dir(&root).map_err(step(format!("create {}", root.display())))?;
    enter_user_namespace(CloneFlags::CLONE_NEWNS)?;
    make_mounts_private()?;
    // A tmpfs as the new root.
    nix::mount::mount(
        Some("tmpfs"),
        &root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(step(format!("mount tmpfs on {}", root.display())))?;
    // The host's /usr, bound read-only, as the sandbox's image `host` does.
    let usr = root.join("usr");
    fs::create_dir(&usr).map_err(step(format!("create {}", usr.display())))?;
    nix::mount::mount(
        Some("/usr"),
        &usr,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step("bind /usr"))?;
    let locked = locked_mount_flags(Path::new("/usr"))?;
    nix::mount::mount(
        None::<&str>,
        &usr,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
        None::<&str>,
    )
    .map_err(step("remount the /usr bind read-only"))?;
    let read_only = nix::sys::statvfs::statvfs(&usr)
        .map_err(step("statvfs of the /usr bind"))?
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    if !read_only {
        return Err(DoctorError::Unexpected {
            step: "read-only /usr bind".into(),
            found: "still writable after the remount".into(),
        });
    }
    // pivot_root into the tmpfs and detach the old root, as the sandbox does.
    let old = root.join("old-root");
    fs::create_dir(&old).map_err(step("create old-root"))?;
    nix::unistd::pivot_root(&root, &old).map_err(step("pivot_root"))?;
    nix::unistd::chdir("/").map_err(step("chdir /"))?;
    nix::mount::umount2("/old-root", MntFlags::MNT_DETACH).map_err(step("detach old root"))?;
    let visible: Vec<String> = fs::read_dir("/")
        .map_err(step("list the new root"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !visible.iter().any(|n| n == "usr") {
        return Err(DoctorError::Unexpected {
            step: "the new root after pivot_root".into(),
            found: format!("holds {visible:?}, expected usr"),
        });
    }
    Ok(
        "mount namespace with private propagation, tmpfs, read-only bind of /usr and \
        pivot_root all work"
            .to_owned(),
    )
}

fn probe_overlay(scratch: &Path) -> Result<String, DoctorError> {
    let dirs = ["lower1", "lower2", "upper", "work", "merged"].map(|d| scratch.join(d));
    for dir in &dirs {
        fs::create_dir(dir).map_err(step(format!("create {}", dir.display())))?;
    }
    let [lower1, lower2, upper, work, merged] = &dirs;
    let write = |path: PathBuf, text: &str| {
        fs::write(&path, text).map_err(step(format!("write {}", path.display())))
    };
    write(lower1.join("kept"), "base\n")?;
    write(lower1.join("changed"), "base\n")?;
    write(lower2.join("removed"), "layer\n")?;
    enter_user_namespace(CloneFlags::CLONE_NEWNS)?;
    make_mounts_private()?;
    let options = format!(
        "lowerdir={}:{},upperdir={},workdir={},userxattr",
        lower2.display(),
        lower1.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(step(format!(
        "mount overlay (2 lowers, userxattr) on {}",
        merged.display()
    )))?;
    // A new file, a copy-up and a whiteout: what every hook layer holds.
    write(merged.join("new"), "hook\n")?;
    write(merged.join("changed"), "hook\n")?;
    fs::remove_file(merged.join("removed")).map_err(step("delete a lower file (whiteout)"))?;
    let read =
        |path: PathBuf| fs::read_to_string(&path).map_err(step(format!("read {}", path.display())));
    let expect = |what: &str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(DoctorError::Unexpected {
                step: "overlay layer contents".into(),
                found: what.to_owned(),
            })
        }
    };
    expect(
        "the new file is missing from the upper dir",
        read(upper.join("new"))? == "hook\n",
    )?;
    expect(
        "the copied-up file is wrong in the upper dir",
        read(upper.join("changed"))? == "hook\n",
    )?;
    expect(
        "the lower layer changed under the overlay",
        read(lower1.join("changed"))? == "base\n",
    )?;
    let whiteout =
        fs::symlink_metadata(upper.join("removed")).map_err(step("stat the whiteout"))?;
    expect(
        "the deleted file left no 0/0 character-device whiteout",
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
    )?;
    expect(
        "the deleted file is still visible",
        !merged.join("removed").exists(),
    )?;
    nix::mount::umount2(merged, MntFlags::empty()).map_err(step("unmount the overlay"))?;
    Ok(format!(
        "overlay with userxattr in a user namespace: copy-up, new files and whiteouts land \
         in the upper dir (tested under {})",
        scratch.parent().unwrap_or(scratch).display()
    ))
}

fn probe_pid_namespace() -> Result<String, DoctorError> {
    enter_user_namespace(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)?;
    make_mounts_private()?;
    // The first child of an unshared pid namespace is its pid 1: re-execute ourselves.
    let output = Command::new("/proc/self/exe")
        .arg(PROBE_SUBCOMMAND)
        .arg(Probe::PidNamespaceInit.name())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(step("start pid 1 of the new pid namespace"))?;
    let inner: ProbeOutcome =
        serde_json::from_slice(&output.stdout).map_err(|_| DoctorError::Unexpected {
            step: "pid 1 of the new pid namespace".into(),
            found: format!("ended with {} without a result", output.status),
        })?;
    if inner.ok {
        Ok(inner.detail)
    } else {
        Err(DoctorError::Unexpected {
            step: "pid 1 of the new pid namespace".into(),
            found: inner.detail,
        })
    }
}

fn probe_pid_namespace_init() -> Result<String, DoctorError> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if pid != 1 {
        return Err(DoctorError::Unexpected {
            step: "pid in the new pid namespace".into(),
            found: format!("{pid}, expected 1"),
        });
    }
    nix::mount::mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(step("mount a fresh /proc"))?;
    let pids: Vec<String> = fs::read_dir("/proc")
        .map_err(step("list /proc"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    if pids != ["1"] {
        return Err(DoctorError::Unexpected {
            step: "processes visible in the fresh /proc".into(),
            found: format!("{pids:?}, expected only 1"),
        });
    }
    Ok("pid namespace works: the first child is pid 1 and a fresh /proc shows only it".into())
}

fn probe_net_namespace() -> Result<String, DoctorError> {
    enter_user_namespace(CloneFlags::CLONE_NEWNET)?;
    let dev = fs::read_to_string("/proc/self/net/dev").map_err(step("read /proc/self/net/dev"))?;
    let interfaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if interfaces != ["lo"] {
        return Err(DoctorError::Unexpected {
            step: "interfaces in the new network namespace".into(),
            found: format!("{interfaces:?}, expected only lo"),
        });
    }
    Ok("net namespace works: it holds only a loopback interface".into())
}

fn probe_ipc_namespace() -> Result<String, DoctorError> {
    enter_user_namespace(CloneFlags::CLONE_NEWIPC)?;
    Ok("ipc namespace works".into())
}

fn probe_uts_namespace() -> Result<String, DoctorError> {
    let host = nix::unistd::gethostname().map_err(step("gethostname"))?;
    enter_user_namespace(CloneFlags::CLONE_NEWUTS)?;
    let name = "hookbox-doctor";
    nix::unistd::sethostname(name).map_err(step("sethostname"))?;
    let now = nix::unistd::gethostname().map_err(step("gethostname"))?;
    if now != name {
        return Err(DoctorError::Unexpected {
            step: "hostname after sethostname".into(),
            found: now.to_string_lossy().into_owned(),
        });
    }
    Ok(format!(
        "uts namespace works: the hostname can be set without touching the host's ({})",
        host.to_string_lossy()
    ))
}

fn probe_seccomp() -> Result<String, DoctorError> {
    const MARK: i32 = libc::EOWNERDEAD;
    nix::sys::prctl::set_no_new_privs().map_err(step("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| DoctorError::Unexpected {
            step: "seccomp target architecture".into(),
            found: format!("{} is not supported by seccompiler", std::env::consts::ARCH),
        })?;
    let rules = BTreeMap::from([(libc::SYS_getpriority, vec![])]);
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(MARK as u32),
        arch,
    )
    .and_then(seccompiler::BpfProgram::try_from)
    .map_err(|e| DoctorError::Step {
        step: "compile a seccomp filter".into(),
        source: std::io::Error::other(e),
    })?;
    seccompiler::apply_filter(&filter).map_err(|e| DoctorError::Step {
        step: "install the seccomp filter".into(),
        source: std::io::Error::other(e),
    })?;
    let mode = status_field("Seccomp").unwrap_or_default();
    let refused = rustix::process::getpriority_process(None)
        .err()
        .map(|e| e.raw_os_error());
    if refused != Some(MARK) {
        return Err(DoctorError::Unexpected {
            step: "a syscall the filter refuses".into(),
            found: format!("getpriority returned {refused:?}, expected errno {MARK}"),
        });
    }
    Ok(format!(
        "no_new_privs and a seccomp filter work (Seccomp mode {mode}, a filtered syscall got \
         its errno)"
    ))
}

/// A cgroup filesystem mounted on the host, from /proc/self/mountinfo.
#[derive(Debug, Clone)]
struct CgroupMount {
    /// `cgroup` (v1) or `cgroup2`.
    fstype: String,
    /// Where it is mounted.
    mount_point: PathBuf,
    /// The cgroup at the root of this mount.
    root: String,
    /// The v1 controllers (and `name=`) of the hierarchy, empty for v2.
    controllers: Vec<String>,
}

impl CgroupMount {
    fn all() -> Result<Vec<Self>, DoctorError> {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .map_err(step("read /proc/self/mountinfo"))?;
        Ok(text.lines().filter_map(Self::parse).collect())
    }

    /// One mountinfo line (proc(5)): id parent dev root mountpoint opts [tags] - type src super.
    fn parse(line: &str) -> Option<Self> {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let fstype = right.next()?;
        if fstype != "cgroup" && fstype != "cgroup2" {
            return None;
        }
        let _source = right.next()?;
        let super_options = right.next().unwrap_or("");
        let controllers = if fstype == "cgroup" {
            super_options
                .split(',')
                .filter(|o| !matches!(*o, "rw" | "ro"))
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        Some(Self {
            fstype: fstype.to_owned(),
            mount_point: PathBuf::from(unescape_mountinfo(fields.get(4)?)),
            root: unescape_mountinfo(fields.get(3)?),
            controllers,
        })
    }

    /// Our cgroup's directory in this hierarchy, from /proc/self/cgroup.
    fn our_dir(&self, memberships: &str) -> Option<PathBuf> {
        let path = memberships.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let matches = if self.fstype == "cgroup2" {
                controllers.is_empty()
            } else {
                !controllers.is_empty()
                    && controllers
                        .split(',')
                        .all(|c| self.controllers.iter().any(|m| m == c))
            };
            matches.then(|| path.to_owned())
        })?;
        let relative = path
            .strip_prefix(self.root.as_str())
            .unwrap_or(&path)
            .trim_start_matches('/');
        if relative.is_empty() {
            Some(self.mount_point.clone())
        } else {
            Some(self.mount_point.join(relative))
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let (b'\\', Some(value)) = (bytes[i], octal) {
            out.push(value);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates `hookbox-doctor-<pid>` under `dir`, writes `limits` into it, moves this process
/// in and back out, and removes it. Returns what failed first.
fn try_child_cgroup(dir: &Path, limits: &[(&str, &str)]) -> Result<(), DoctorError> {
    let child = dir.join(format!("hookbox-doctor-{}", std::process::id()));
    fs::create_dir(&child).map_err(step(format!("create cgroup {}", child.display())))?;
    let result = (|| {
        for (file, value) in limits {
            let path = child.join(file);
            fs::write(&path, value)
                .map_err(step(format!("write {value} to {}", path.display())))?;
        }
        let procs = child.join("cgroup.procs");
        fs::write(&procs, "0").map_err(step(format!("join {}", procs.display())))?;
        let back = dir.join("cgroup.procs");
        fs::write(&back, "0").map_err(step(format!("move back to {}", back.display())))?;
        Ok(())
    })();
    let removed =
        fs::remove_dir(&child).map_err(step(format!("remove cgroup {}", child.display())));
    result.and(removed)
}

/// The fix for a cgroup directory we may not write to.
fn delegation_fix(dir: &Path) -> String {
    let owner = fs::metadata(dir).map(|m| m.uid()).ok();
    let uid = rustix::process::geteuid().as_raw();
    match owner {
        Some(owner) if owner != uid => format!(
            "{} belongs to uid {owner}; run hookbox as root, or delegate it: `chown -R {uid} {}` \
             (systemd: Delegate=yes); until then limits fall back to rlimits",
            dir.display(),
            dir.display()
        ),
        _ => "limits fall back to rlimits; check the cgroup's permissions and the LSM policy"
            .to_owned(),
    }
}

fn probe_cgroup_v1(controller: Controller) -> ProbeOutcome {
    let name = controller.name();
    let mounts = match CgroupMount::all() {
        Ok(m) => m,
        Err(e) => return ProbeOutcome::fail(error_chain(&e), None),
    };
    let Some(mount) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.controllers.iter().any(|c| c == name))
    else {
        let on_v2 = mounts.iter().any(|m| m.fstype == "cgroup2");
        return ProbeOutcome::fail(
            format!("no cgroup v1 hierarchy has the {name} controller"),
            Some(if on_v2 {
                "nothing to do if cgroup v2 passes; otherwise limits fall back to rlimits"
                    .to_owned()
            } else {
                format!("mount it: `mount -t cgroup -o {name} cgroup /sys/fs/cgroup/{name}`")
            }),
        );
    };
    let memberships = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(dir) = mount.our_dir(&memberships) else {
        return ProbeOutcome::fail(
            format!(
                "{name} is mounted at {} but /proc/self/cgroup has no entry for it",
                mount.mount_point.display()
            ),
            None,
        );
    };
    match try_child_cgroup(&dir, &[controller.v1_limit()]) {
        Ok(()) => ProbeOutcome::pass(format!(
            "cgroup v1 {name} at {}: a child cgroup can be created, limited and joined",
            dir.display()
        )),
        Err(e) => ProbeOutcome::fail(
            format!("cgroup v1 {name} is mounted but {}", error_chain(&e)),
            Some(delegation_fix(&dir)),
        ),
    }
}

/// Our cgroup v2 directory, or why there is none.
fn cgroup_v2_dir() -> Result<PathBuf, ProbeOutcome> {
    let mounts = CgroupMount::all().map_err(|e| ProbeOutcome::fail(error_chain(&e), None))?;
    let Some(mount) = mounts.iter().find(|m| m.fstype == "cgroup2") else {
        return Err(ProbeOutcome::fail(
            "no cgroup2 filesystem is mounted",
            Some(
                "boot with systemd.unified_cgroup_hierarchy=1, or mount it: \
                 `mount -t cgroup2 none /sys/fs/cgroup`"
                    .to_owned(),
            ),
        ));
    };
    let memberships = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    mount.our_dir(&memberships).ok_or_else(|| {
        ProbeOutcome::fail(
            format!(
                "cgroup2 is mounted at {} but /proc/self/cgroup has no 0:: entry",
                mount.mount_point.display()
            ),
            None,
        )
    })
}

fn words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn probe_cgroup_v2_controllers() -> ProbeOutcome {
    let dir = match cgroup_v2_dir() {
        Ok(dir) => dir,
        Err(outcome) => return outcome,
    };
    let available = words(&dir.join("cgroup.controllers"));
    let missing: Vec<&str> = LIMIT_CONTROLLERS
        .into_iter()
        .filter(|c| !available.iter().any(|a| a == c))
        .collect();
    let listed = format!(
        "{} offers [{}]",
        dir.join("cgroup.controllers").display(),
        available.join(" ")
    );
    if missing.is_empty() {
        ProbeOutcome::pass(listed)
    } else {
        ProbeOutcome::fail(
            format!(
                "{listed}; missing {} (bound to cgroup v1 or not enabled by the parent)",
                missing.join(", ")
            ),
            Some(
                "boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) so memory, \
                 pids and cpu live on cgroup v2; until then limits use cgroup v1 as root, \
                 else rlimits"
                    .to_owned(),
            ),
        )
    }
}

fn probe_cgroup_v2_delegation() -> ProbeOutcome {
    let dir = match cgroup_v2_dir() {
        Ok(dir) => dir,
        Err(outcome) => return outcome,
    };
    if let Err(e) = try_child_cgroup(&dir, &[]) {
        return ProbeOutcome::fail(
            format!(
                "cgroup v2 at {} is not delegated to us: {}",
                dir.display(),
                error_chain(&e)
            ),
            Some(delegation_fix(&dir)),
        );
    }
    let enabled = words(&dir.join("cgroup.subtree_control"));
    let missing: Vec<&str> = LIMIT_CONTROLLERS
        .into_iter()
        .filter(|c| !enabled.iter().any(|a| a == c))
        .collect();
    let detail = format!(
        "child cgroups of {} can be created and joined; its subtree_control enables [{}]",
        dir.display(),
        enabled.join(" ")
    );
    if missing.is_empty() {
        ProbeOutcome::pass(detail)
    } else {
        let is_root_cgroup = !dir.join("cgroup.events").exists();
        let fix = if is_root_cgroup {
            format!(
                "enable them for the subtree: `echo '+memory +pids +cpu' > {}` (needs them in \
                 cgroup.controllers first); until then limits use cgroup v1 as root, else \
                 rlimits",
                dir.join("cgroup.subtree_control").display()
            )
        } else {
            // cgroup v2's no-internal-process rule: a non-root cgroup with processes in it
            // (this one holds hookbox) cannot enable controllers for its children.
            "hookbox makes its run cgroups under its own cgroup, which holds hookbox itself \
             and so cannot enable controllers for children unless it is a root cgroup (run \
             hookbox in a container with its own cgroup namespace, or as root with cgroup v1 \
             controllers); until then limits use cgroup v1 as root, else rlimits"
                .to_owned()
        };
        ProbeOutcome::fail(format!("{detail}, not {}", missing.join(", ")), Some(fix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_round_trip_and_cover_the_report() {
        for probe in Probe::ALL {
            assert_eq!(probe.name().parse::<Probe>().unwrap(), probe);
            assert!(CHECK_NAMES.contains(&probe.name()), "{}", probe.name());
        }
        assert!("nope".parse::<Probe>().is_err());
    }

    #[test]
    fn mountinfo_lines_parse() {
        let v1 = CgroupMount::parse(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
        )
        .unwrap();
        assert_eq!(v1.controllers, ["memory"]);
        let memberships = "4:memory:/a/b\n0::/\n";
        assert_eq!(
            v1.our_dir(memberships).unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        let v2 = CgroupMount::parse(
            "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
        )
        .unwrap();
        assert_eq!(
            v2.our_dir(memberships).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        assert!(CgroupMount::parse("1 0 0:1 / / rw - ext4 /dev/vda rw").is_none());
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
    }

    #[test]
    fn readiness_ignores_optional_checks() {
        let line = |required, ok| Check {
            check: "x".into(),
            ok,
            required,
            detail: String::new(),
            fix: None,
        };
        let report = Report {
            checks: vec![line(true, true), line(false, false)],
        };
        assert!(report.sandbox_ready());
        let report = Report {
            checks: vec![line(true, false)],
        };
        assert_eq!(report.exit_status(), ExitStatus::Sandbox);
    }
}
