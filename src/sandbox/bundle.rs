//! `hookbox export-bundle`: the same sandbox as an OCI runtime bundle (`config.json` and
//! `rootfs/`) that `crun run`, `runc run` or `youki run` execute unchanged.
//!
//! The bundle is built from the very [`SandboxSpec`] that `sandbox-run` executes, and mirrors
//! what the sandbox init does, step for step: user, mount, pid, ipc, uts and (unless the
//! network is `host`) net namespaces; the spec's id map; the image's host directories as
//! read-only binds (host symlinks such as a merged `/bin` recreated as symlinks); a fresh
//! /proc; a minimal /dev with its own devpts and /dev/shm; tmpfs /tmp; the charm overlay
//! (`lowerdir`, `upperdir`, `workdir`, `userxattr`) at the charm path; the extra binds; a
//! read-only root; the hostname; the same capabilities, `no_new_privs`, seccomp deny list
//! and rlimits. Differences a runtime cannot express are written as annotations
//! (`org.hookbox.timeout`): OCI has no wall-clock limit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall,
    LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::seccomp;
use super::spec::{IdMapping, IdRange, Network, SandboxSpec};
use crate::exit::{ClassifyExit, ExitStatus};

/// The OCI runtime spec version the bundle declares (what crun 1.8 and runc 1.1 accept).
pub const OCI_VERSION: &str = "1.0.2";

/// The annotation carrying the spec's wall-clock limit in seconds (OCI has no timeout).
pub const TIMEOUT_ANNOTATION: &str = "org.hookbox.timeout";

/// The CPU period the `--cpu` fraction is expressed against, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// The longest overlay option string mount(2) takes in one page, with room to spare.
const MAX_OVERLAY_OPTIONS: usize = 4000;

/// Capabilities the command keeps, as the sandbox init keeps them: Docker's default set
/// minus `NET_RAW` and `MKNOD`; bounding, effective and permitted; no inheritable, no ambient.
const KEPT_CAPABILITIES: [Capability; 12] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::AuditWrite,
    Capability::Setfcap,
];

/// Errors writing a bundle. Bad input is reported before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The spec cannot be run as given.
    #[error("invalid sandbox spec: {reason}")]
    InvalidSpec {
        /// What is wrong with it.
        reason: String,
    },
    /// A layer path contains a character the overlay option string cannot carry.
    #[error("{what} {path} contains ',', ':' or '\\', which an overlay mount option cannot carry")]
    OverlayPath {
        /// "lower layer", "upper dir" or "work dir".
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// Too many or too long layer paths for one overlay option string.
    #[error(
        "the overlay options are {length} bytes, over the {MAX_OVERLAY_OPTIONS}-byte limit of \
         mount(2); use fewer or shorter layer paths"
    )]
    OverlayOptionsTooLong {
        /// The length of the option string.
        length: usize,
    },
    /// A directory the bundle needs is missing or not a directory.
    #[error("{what} {path} is not a directory")]
    NotADirectory {
        /// What it is for, e.g. "lower layer".
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The work dir is on another filesystem than the upper dir.
    #[error(
        "work dir {work} is not on the filesystem of upper dir {upper}; pass --work with a \
         directory beside the upper dir"
    )]
    WorkOnOtherFilesystem {
        /// The work dir.
        work: PathBuf,
        /// The upper dir.
        upper: PathBuf,
    },
    /// The output directory exists and is not empty.
    #[error("bundle directory {path} already exists and is not empty; refusing to overwrite it")]
    OutputNotEmpty {
        /// The output directory.
        path: PathBuf,
    },
    /// oci-spec refused the configuration.
    #[error("build the OCI configuration")]
    Oci {
        /// The underlying error.
        #[source]
        source: oci_spec::OciSpecError,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl BundleError {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BundleError::Io {
            action,
            path,
            source,
        }
    }
}

impl From<oci_spec::OciSpecError> for BundleError {
    fn from(source: oci_spec::OciSpecError) -> Self {
        BundleError::Oci { source }
    }
}

impl ClassifyExit for BundleError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            BundleError::Io { .. } | BundleError::Oci { .. } => ExitStatus::Sandbox,
            _ => ExitStatus::Usage,
        }
    }
}

/// What [`export_bundle`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub path: PathBuf,
    /// Its `config.json`.
    pub config: PathBuf,
    /// Its `rootfs/`.
    pub rootfs: PathBuf,
    /// The overlay's work dir the bundle uses.
    pub work: PathBuf,
}

/// Writes the OCI bundle of `spec` at `out` (absolute): `config.json` and a `rootfs/` holding
/// the mount points. `out` must not exist or be an empty directory. A work dir inside `out`
/// (the CLI's default `OUT/work`) is created with the bundle; any other must exist. As root
/// (an id range), the upper and work dirs are handed to the range's root, as `sandbox-run`
/// does. Nothing is written when the spec or the paths are refused; a failure halfway
/// removes what was written.
pub fn export_bundle(spec: &SandboxSpec, out: &Path) -> Result<Bundle, BundleError> {
    spec.validate()
        .map_err(|reason| BundleError::InvalidSpec { reason })?;
    if !out.is_absolute() {
        return Err(BundleError::InvalidSpec {
            reason: format!("bundle directory {} is not absolute", out.display()),
        });
    }
    check_layers(spec, out)?;
    let out_existed = prepare_output(out)?;
    let result = create_work_inside(spec, out).and_then(|()| write_bundle(spec, out));
    if result.is_err() {
        discard_output(out, out_existed);
    }
    result
}

/// The overlay paths: directories, on one filesystem, expressible as mount options. A work
/// dir inside the bundle does not exist yet: the bundle's filesystem stands in for it.
fn check_layers(spec: &SandboxSpec, out: &Path) -> Result<(), BundleError> {
    let work_inside = spec.work.starts_with(out);
    let mut layers: Vec<(&'static str, &Path)> = spec
        .lowers
        .iter()
        .map(|l| ("lower layer", l.path.as_path()))
        .collect();
    layers.push(("upper dir", &spec.upper));
    layers.push(("work dir", &spec.work));
    for (what, path) in layers {
        if what == "work dir" && work_inside {
            continue;
        }
        let text = path.as_os_str().as_encoded_bytes();
        if text.iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
            return Err(BundleError::OverlayPath {
                what,
                path: path.to_owned(),
            });
        }
        let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Err(BundleError::NotADirectory {
                what,
                path: path.to_owned(),
            });
        }
    }
    let device = |path: &Path| fs::metadata(path).map(|m| m.dev()).ok();
    let work_device = if work_inside {
        out.ancestors().find_map(device)
    } else {
        device(&spec.work)
    };
    if work_device != device(&spec.upper) {
        return Err(BundleError::WorkOnOtherFilesystem {
            work: spec.work.clone(),
            upper: spec.upper.clone(),
        });
    }
    let length = overlay_options(spec).iter().map(|o| o.len() + 1).sum();
    if length > MAX_OVERLAY_OPTIONS {
        return Err(BundleError::OverlayOptionsTooLong { length });
    }
    Ok(())
}

/// Creates `out`, or accepts it when it is an empty directory. Returns whether it existed.
fn prepare_output(out: &Path) -> Result<bool, BundleError> {
    match fs::symlink_metadata(out) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(out).map_err(BundleError::io("read", out))?;
            if entries.next().is_some() {
                return Err(BundleError::OutputNotEmpty {
                    path: out.to_owned(),
                });
            }
            Ok(true)
        }
        Ok(_) => Err(BundleError::OutputNotEmpty {
            path: out.to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(out)
                .map_err(BundleError::io("create bundle directory", out))?;
            Ok(false)
        }
        Err(e) => Err(BundleError::io("inspect", out)(e)),
    }
}

/// Removes what a failed export wrote: the directory itself when it created it, else its
/// contents.
fn discard_output(path: &Path, existed: bool) {
    if !existed {
        let _ = fs::remove_dir_all(path);
        return;
    }
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            let child = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&child),
                _ => fs::remove_file(&child),
            };
        }
    }
}

/// Creates the work dir when it lives in the bundle (checked for its filesystem before).
fn create_work_inside(spec: &SandboxSpec, out: &Path) -> Result<(), BundleError> {
    if spec.work.starts_with(out) && !spec.work.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&spec.work)
            .map_err(BundleError::io("create work dir", &spec.work))?;
    }
    Ok(())
}

fn write_bundle(spec: &SandboxSpec, path: &Path) -> Result<Bundle, BundleError> {
    let rootfs = path.join("rootfs");
    let host_entries = host_image_entries(spec);
    build_rootfs(spec, &rootfs, &host_entries)?;
    if let IdMapping::Range { uid, gid } = &spec.ids {
        hand_to_range_root(spec, uid, gid)?;
    }
    let config = oci_config(spec, &host_entries)?;
    let config_path = path.join("config.json");
    let text = serde_json::to_vec_pretty(&config).map_err(|e| BundleError::Io {
        action: "encode",
        path: config_path.clone(),
        source: std::io::Error::other(e),
    })?;
    fs::write(&config_path, text).map_err(BundleError::io("write", &config_path))?;
    Ok(Bundle {
        path: path.to_owned(),
        config: config_path,
        rootfs,
        work: spec.work.clone(),
    })
}

/// One host directory of the image: bound read-only, or (a host symlink) recreated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    /// A directory, bound read-only at the same path.
    Directory(PathBuf),
    /// A symlink (merged /usr: `/bin -> usr/bin`), recreated with the same target.
    Symlink(PathBuf, PathBuf),
}

/// The image's host directories as they are on this host; missing ones are skipped.
fn host_image_entries(spec: &SandboxSpec) -> Vec<HostEntry> {
    spec.image
        .host_directories()
        .iter()
        .filter_map(|&dir| {
            let meta = fs::symlink_metadata(dir).ok()?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(dir).ok()?;
                Some(HostEntry::Symlink(dir.into(), target))
            } else if meta.is_dir() {
                Some(HostEntry::Directory(dir.into()))
            } else {
                None
            }
        })
        .collect()
}

/// `rootfs/`: every mount point pre-created (the root is read-only, and as root the
/// runtime's mapped root could not create them in a directory it does not own), and the
/// image's symlinks.
fn build_rootfs(
    spec: &SandboxSpec,
    rootfs: &Path,
    host_entries: &[HostEntry],
) -> Result<(), BundleError> {
    let mkdir = |relative: &Path| {
        let dir = rootfs.join(relative);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(BundleError::io("create directory", dir))
    };
    mkdir(Path::new(""))?;
    for entry in host_entries {
        match entry {
            HostEntry::Directory(dir) => mkdir(&inside(dir))?,
            HostEntry::Symlink(link, target) => {
                let at = rootfs.join(inside(link));
                std::os::unix::fs::symlink(target, &at)
                    .map_err(BundleError::io("create symlink", at))?;
            }
        }
    }
    for dir in ["proc", "dev", "tmp"] {
        mkdir(Path::new(dir))?;
    }
    mkdir(&inside(&spec.charm_path))?;
    for bind in &spec.binds {
        let target = inside(&bind.target);
        if bind.source.is_dir() {
            mkdir(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                mkdir(parent)?;
            }
            let file = rootfs.join(&target);
            fs::File::create(&file).map_err(BundleError::io("create mount point", file))?;
        }
    }
    if !spec.cwd.starts_with(&spec.charm_path) {
        mkdir(&inside(&spec.cwd))?;
    }
    Ok(())
}

/// As root the hook's uid 0 is the range's first id: it must own the upper and work dirs.
fn hand_to_range_root(spec: &SandboxSpec, uid: &IdRange, gid: &IdRange) -> Result<(), BundleError> {
    for dir in [&spec.upper, &spec.work] {
        let meta = fs::symlink_metadata(dir).map_err(BundleError::io("inspect", dir.as_path()))?;
        if (meta.uid(), meta.gid()) == (uid.outside, gid.outside) {
            continue;
        }
        std::os::unix::fs::lchown(dir, Some(uid.outside), Some(gid.outside)).map_err(
            BundleError::io("hand to the id range's root", dir.as_path()),
        )?;
    }
    Ok(())
}

/// A sandbox path as a path relative to the root (`/var/lib/x` → `var/lib/x`).
fn inside(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// The overlay mount options: `lowerdir=top:...:bottom`, `upperdir`, `workdir`, `userxattr`.
fn overlay_options(spec: &SandboxSpec) -> Vec<String> {
    let lowers: Vec<String> = spec
        .lowers
        .iter()
        .map(|l| l.path.display().to_string())
        .collect();
    vec![
        format!("lowerdir={}", lowers.join(":")),
        format!("upperdir={}", spec.upper.display()),
        format!("workdir={}", spec.work.display()),
        "userxattr".to_owned(),
        "nosuid".to_owned(),
        "nodev".to_owned(),
    ]
}

fn mount(
    destination: &str,
    typ: &str,
    source: &str,
    options: &[&str],
) -> Result<Mount, BundleError> {
    Ok(MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// The mounts, in the order the sandbox init makes them.
fn mounts(spec: &SandboxSpec, host_entries: &[HostEntry]) -> Result<Vec<Mount>, BundleError> {
    let mut mounts = Vec::new();
    // The image: the host's directories read-only.
    for entry in host_entries {
        if let HostEntry::Directory(dir) = entry {
            let dir = dir.display().to_string();
            mounts.push(mount(
                &dir,
                "bind",
                &dir,
                &["rbind", "ro", "nosuid", "nodev"],
            )?);
        }
    }
    // A fresh /proc for the new pid namespace.
    mounts.push(mount(
        "/proc",
        "proc",
        "proc",
        &["nosuid", "nodev", "noexec"],
    )?);
    // A minimal /dev (the runtime binds null, zero, full, random, urandom, tty), a private
    // devpts and /dev/shm.
    mounts.push(mount(
        "/dev",
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "mode=0755"],
    )?);
    mounts.push(mount(
        "/dev/pts",
        "devpts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ],
    )?);
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "nodev", "mode=1777"],
    )?);
    // A private /tmp.
    mounts.push(mount(
        "/tmp",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=1777"],
    )?);
    // The charm overlay.
    let options = overlay_options(spec);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    mounts.push(mount(
        &spec.charm_path.display().to_string(),
        "overlay",
        "overlay",
        &options,
    )?);
    // The extra binds.
    for bind in &spec.binds {
        let access = if bind.writable { "rw" } else { "ro" };
        mounts.push(mount(
            &bind.target.display().to_string(),
            "bind",
            &bind.source.display().to_string(),
            &["rbind", access, "nosuid", "nodev"],
        )?);
    }
    Ok(mounts)
}

fn id_mappings(ranges: &[IdRange]) -> Result<Vec<LinuxIdMapping>, BundleError> {
    ranges
        .iter()
        .map(|r| {
            Ok(LinuxIdMappingBuilder::default()
                .container_id(r.inside)
                .host_id(r.outside)
                .size(r.count)
                .build()?)
        })
        .collect()
}

fn namespaces(spec: &SandboxSpec) -> Result<Vec<LinuxNamespace>, BundleError> {
    let mut kinds = vec![
        LinuxNamespaceType::User,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    if spec.network == Network::None {
        kinds.push(LinuxNamespaceType::Network);
    }
    kinds
        .into_iter()
        .map(|typ| Ok(LinuxNamespaceBuilder::default().typ(typ).build()?))
        .collect()
}

/// The sandbox's seccomp filter as an OCI profile: allow by default; the deny list with
/// EPERM; clone(2)/unshare(2) asking for any new namespace with EPERM (one rule per flag);
/// clone3(2), whose flags seccomp cannot see, with ENOSYS so libc falls back to clone(2).
pub fn seccomp_profile() -> Result<LinuxSeccomp, BundleError> {
    let errno = |names: Vec<String>, errno: i32| -> Result<LinuxSyscall, BundleError> {
        Ok(LinuxSyscallBuilder::default()
            .names(names)
            .action(LinuxSeccompAction::ScmpActErrno)
            .errno_ret(errno as u32)
            .build()?)
    };
    let names = |list: &[(&str, i64)]| list.iter().map(|&(name, _)| name.to_owned()).collect();
    let mut syscalls = vec![errno(names(seccomp::DENIED), libc::EPERM)?];
    for &flag in seccomp::NAMESPACE_FLAGS {
        let flag = flag as u32 as u64;
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag)
            .value_two(flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()?;
        let mut rule = errno(names(seccomp::NAMESPACE_FLAGGED), libc::EPERM)?;
        rule.set_args(Some(vec![arg]));
        syscalls.push(rule);
    }
    syscalls.push(errno(names(seccomp::NOT_IMPLEMENTED), libc::ENOSYS)?);
    Ok(LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .syscalls(syscalls)
        .build()?)
}

fn rlimit(typ: PosixRlimitType, value: u64) -> Result<PosixRlimit, BundleError> {
    Ok(PosixRlimitBuilder::default()
        .typ(typ)
        .hard(value)
        .soft(value)
        .build()?)
}

/// The rlimits: no core dumps, always; as rootless (no cgroup limits for the runtime, as for
/// the sandbox on a host without delegation) the pids and memory limits as rlimits.
fn rlimits(spec: &SandboxSpec) -> Result<Vec<PosixRlimit>, BundleError> {
    let mut limits = vec![rlimit(PosixRlimitType::RlimitCore, 0)?];
    if matches!(spec.ids, IdMapping::Rootless { .. }) {
        if let Some(pids) = spec.limits.pids {
            limits.push(rlimit(PosixRlimitType::RlimitNproc, pids)?);
        }
        if let Some(bytes) = spec.limits.memory_bytes {
            limits.push(rlimit(PosixRlimitType::RlimitAs, bytes)?);
        }
    }
    Ok(limits)
}

/// The OCI runtime configuration of `spec`, given the image's entries on this host.
pub fn oci_config(spec: &SandboxSpec, host_entries: &[HostEntry]) -> Result<Spec, BundleError> {
    let capabilities: HashSet<Capability> = KEPT_CAPABILITIES.into_iter().collect();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(spec.argv.clone())
        .env(
            spec.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd(&spec.cwd)
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(capabilities.clone())
                .effective(capabilities.clone())
                .permitted(capabilities)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()?,
        )
        .rlimits(rlimits(spec)?)
        .no_new_privileges(true)
        .build()?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(spec)?)
        .uid_mappings(id_mappings(&spec.ids.uid_ranges())?)
        .gid_mappings(id_mappings(&spec.ids.gid_ranges())?)
        .seccomp(seccomp_profile()?)
        .rootfs_propagation("private")
        .masked_paths(
            [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
            ]
            .map(String::from)
            .to_vec(),
        )
        .readonly_paths(
            [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ]
            .map(String::from)
            .to_vec(),
        )
        .build()?;
    // As root the runtime can apply cgroup limits (the sandbox uses cgroups there too).
    if matches!(spec.ids, IdMapping::Range { .. }) {
        linux.set_resources(resources(spec)?);
    } else {
        linux.set_resources(None);
    }
    let mut annotations = HashMap::new();
    if let Some(timeout) = spec.limits.timeout {
        annotations.insert(
            TIMEOUT_ANNOTATION.to_owned(),
            format!("{}", timeout.as_secs_f64()),
        );
    }
    let mut builder = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(true)
                .build()?,
        )
        .mounts(mounts(spec, host_entries)?)
        .process(process)
        .hostname(spec.hostname.clone())
        .linux(linux);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations);
    }
    Ok(builder.build()?)
}

/// The cgroup limits, when any is set.
fn resources(spec: &SandboxSpec) -> Result<Option<oci_spec::runtime::LinuxResources>, BundleError> {
    let limits = &spec.limits;
    if limits.memory_bytes.is_none() && limits.pids.is_none() && limits.cpu.is_none() {
        return Ok(None);
    }
    let mut builder = LinuxResourcesBuilder::default();
    if let Some(bytes) = limits.memory_bytes {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        builder = builder.memory(
            LinuxMemoryBuilder::default()
                .limit(bytes)
                .swap(bytes)
                .build()?,
        );
    }
    if let Some(pids) = limits.pids {
        let pids = i64::try_from(pids).unwrap_or(i64::MAX);
        builder = builder.pids(LinuxPidsBuilder::default().limit(pids).build()?);
    }
    if let Some(cpu) = limits.cpu {
        let quota = (cpu * CPU_PERIOD_US as f64).round() as i64;
        builder = builder.cpu(
            LinuxCpuBuilder::default()
                .quota(quota.max(1000))
                .period(CPU_PERIOD_US)
                .build()?,
        );
    }
    Ok(Some(builder.build()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_to_the_root() {
        assert_eq!(
            inside(Path::new("/var/lib/juju/agents/unit-a-0/charm")),
            Path::new("var/lib/juju/agents/unit-a-0/charm")
        );
        assert_eq!(inside(Path::new("/")), Path::new(""));
    }

    #[test]
    fn seccomp_profile_mirrors_the_sandbox_filter() {
        let profile = seccomp_profile().unwrap();
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        let syscalls = json["syscalls"].as_array().unwrap();
        assert_eq!(syscalls.len(), 1 + seccomp::NAMESPACE_FLAGS.len() + 1);
        assert_eq!(
            syscalls[0]["names"].as_array().unwrap().len(),
            seccomp::DENIED.len()
        );
        assert_eq!(syscalls[0]["errnoRet"], libc::EPERM);
        assert!(
            syscalls[0]["names"]
                .as_array()
                .unwrap()
                .contains(&"mount".into())
        );
        assert_eq!(syscalls[1]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(
            syscalls.last().unwrap()["names"],
            serde_json::json!(["clone3"])
        );
        assert_eq!(syscalls.last().unwrap()["errnoRet"], libc::ENOSYS);
    }
}
