//! The sandbox helper: `hookbox __sandbox-init`, re-executed by [`super::run`], single
//! threaded. Three stages, each a recipe read top to bottom:
//!
//! 1. [`helper`]: in the runner's namespaces; forks the init in new namespaces (and in the
//!    run's v2 cgroup) as the runner's child, writes the init's id maps, sends it the
//!    idmapped lower layers, removes what earlier runs retired from the work dir and exits.
//! 2. [`container_init`]: pid 1 of the new pid namespace; forks a child that makes the
//!    network namespace meanwhile ([`NetworkChild`]), builds the root filesystem and pivots
//!    into it, enters the network namespace, forks the command, reaps zombies, forwards
//!    SIGTERM/SIGINT and exits with the command's status (the kernel then kills whatever is
//!    left).
//! 3. [`exec_command`]: drops privileges and execs the command.
//!
//! A failing step is reported to the runner as a [`HelperMessage::SetupFailed`] naming the
//! step and its errno, over the control socket, which is close-on-exec.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid as NixPid;
use rustix::fs::{CWD, Mode, OFlags};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};
use rustix::thread::{CapabilitySet, CapabilitySets};

use super::protocol::{self, HelperMessage, HookStatus, NetworkReply, Proceed, Start};
use super::seccomp;
use super::spec::{HandlerLookup, IdMapping, IdRange, Network, SandboxSpec};
use crate::sys;

/// The lowest descriptor the control socket moves to when it leaves stdin.
const CONTROL_FD: i32 = 3;

/// Where the new root tmpfs is assembled before `pivot_root`. Every host path the sandbox
/// needs is captured as a detached mount before this tmpfs covers the directory. A detached
/// clone of a path *under* the covered directory can no longer be attached (move_mount(2)
/// fails with EINVAL, Linux 6.18), so the covered directory must not be where bind sources
/// live: `/mnt` (FHS: for temporary mounts by the administrator) when it exists, `/tmp`
/// (where per-run sockets and test state usually are) only as the fallback.
fn new_root() -> &'static str {
    if Path::new("/mnt").is_dir() {
        "/mnt"
    } else {
        "/tmp"
    }
}

/// Capabilities the command keeps (in its user namespace only): Docker's default set minus
/// `NET_RAW` and `MKNOD`. Never `SYS_ADMIN`, `SYS_PTRACE`, `SYS_MODULE`, `DAC_READ_SEARCH`.
const KEPT_CAPABILITIES: CapabilitySet = CapabilitySet::CHOWN
    .union(CapabilitySet::DAC_OVERRIDE)
    .union(CapabilitySet::FOWNER)
    .union(CapabilitySet::FSETID)
    .union(CapabilitySet::KILL)
    .union(CapabilitySet::SETGID)
    .union(CapabilitySet::SETUID)
    .union(CapabilitySet::SETPCAP)
    .union(CapabilitySet::NET_BIND_SERVICE)
    .union(CapabilitySet::SYS_CHROOT)
    .union(CapabilitySet::AUDIT_WRITE)
    .union(CapabilitySet::SETFCAP);

/// The host device nodes bound into the sandbox's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The signals the helper and the init wait for synchronously.
const HANDLED_SIGNALS: &[Signal] = &[
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// A failed step: what was being done and the errno.
struct Failure {
    step: String,
    errno: i32,
}

/// Errors that carry an errno.
trait Errno {
    fn errno(&self) -> i32;
}

impl Errno for io::Error {
    fn errno(&self) -> i32 {
        self.raw_os_error().unwrap_or(libc::EIO)
    }
}

impl Errno for rustix::io::Errno {
    fn errno(&self) -> i32 {
        self.raw_os_error()
    }
}

impl Errno for nix::errno::Errno {
    fn errno(&self) -> i32 {
        *self as i32
    }
}

/// Names the step a syscall result belongs to.
trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T, E: Errno> Step<T> for Result<T, E> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            step: what(),
            errno: e.errno(),
        })
    }
}

/// Entry point of `hookbox __sandbox-init`. Never returns.
pub fn main() -> ! {
    let control = match take_control_socket() {
        Ok(control) => control,
        Err(_) => sys::exit_immediately(ExitCode::SETUP),
    };
    let start: Start = match protocol::receive(&control) {
        Ok(start) => start,
        Err(_) => sys::exit_immediately(ExitCode::SETUP),
    };
    helper(control, &start)
}

/// Exit codes of the helper processes themselves.
struct ExitCode;

impl ExitCode {
    const SETUP: i32 = 5;
}

/// Sends the failure to the runner and exits with the setup exit code.
fn report_failure(control: &UnixStream, failure: Failure) -> ! {
    let _ = protocol::send(
        control,
        &HelperMessage::SetupFailed {
            step: failure.step,
            errno: failure.errno,
        },
    );
    sys::exit_immediately(ExitCode::SETUP)
}

/// Moves the control socket from stdin to a close-on-exec descriptor and puts `/dev/null`
/// on stdin.
fn take_control_socket() -> io::Result<UnixStream> {
    let control = rustix::io::fcntl_dupfd_cloexec(std::io::stdin().as_fd(), CONTROL_FD)?;
    let null = rustix::fs::open("/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
    nix::unistd::dup2_stdin(&null)?;
    Ok(UnixStream::from(control))
}

/// Stage 1: the helper, in the runner's namespaces.
fn helper(control: UnixStream, start: &Start) -> ! {
    let init = match fork_init(&control, start) {
        Ok(InitFork::Child(wait_here)) => container_init(&control, start, wait_here),
        Ok(InitFork::Parent(init)) => init,
        Err(failure) => report_failure(&control, failure),
    };
    // From the host side, which holds the privilege the init lacks: its id maps and, as
    // root, the host-owned lower layers as mounts idmapped with its user namespace. A
    // failure is reported; the init sees its socket close and exits.
    if let Err(failure) = release_init(start, init) {
        report_failure(&control, failure)
    }
    // Our copy of the control socket closes first: the runner reads it to its end, and must
    // not wait for what follows. Then remove what earlier runs retired from the work dir
    // (each removal may wait on a synchronous discard), and exit.
    drop(control);
    super::run::remove_retired_work(&start.spec.work);
    sys::exit_immediately(0)
}

/// What [`fork_init`] returns in each process.
enum InitFork {
    /// In the helper: the init and the socket that releases it.
    Parent((rustix::process::Pid, UnixStream)),
    /// In the init: the socket its release arrives on.
    Child(UnixStream),
}

/// Forks pid 1 in new user, mount, pid, ipc and uts namespaces (the net namespace is its
/// [`NetworkChild`]'s), as the runner's child (CLONE_PARENT): the runner waits for it directly.
fn fork_init(control: &UnixStream, start: &Start) -> Result<InitFork, Failure> {
    // Die with the runner (prctl(2) PR_SET_PDEATHSIG), and if it already died, now.
    die_with_parent(Some(start.runner_pid)).step(|| "set the parent death signal".into())?;
    // Every signal's default disposition, for the init and the command: a signal the
    // runner was started with ignored would be discarded before the init's sigwait(2) could
    // take it, and the command must not inherit it either.
    sys::reset_signal_dispositions().step(|| "restore the signal dispositions".into())?;
    // Block the signals the helper and the init wait for with sigwait(2).
    block_handled_signals().step(|| "block signals".into())?;
    // The init waits on this socket until its id maps are written.
    let (go_ahead, wait_here) = UnixStream::pair().step(|| "create the setup socket".into())?;
    // The run's v2 cgroup, which the init starts in.
    let cgroup = match &start.cgroup {
        Some(dir) => Some(
            rustix::fs::open(
                dir,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .step(|| format!("open the cgroup {}", dir.display()))?,
        ),
        None => None,
    };
    match sys::fork_as_sibling(
        namespace_flags().bits() as u64,
        cgroup.as_ref().map(|dir| dir.as_fd()),
    )
    .step(|| match &start.cgroup {
        Some(dir) => format!(
            "create the namespaces and fork the sandbox init into the cgroup {}",
            dir.display()
        ),
        None => "create the namespaces and fork the sandbox init".into(),
    })? {
        sys::Forked::Child => Ok(InitFork::Child(wait_here)),
        sys::Forked::Parent(init) => {
            drop(wait_here);
            // The runner adopts the init by this message; without it nothing would watch it.
            let pid = init.as_raw_nonzero().get();
            protocol::send(control, &HelperMessage::InitStarted { pid })
                .step(|| "report the sandbox init to the runner".into())?;
            Ok(InitFork::Parent((init, go_ahead)))
        }
    }
}

/// Prepares the init from the host side and sends it the go-ahead.
fn release_init(
    start: &Start,
    (init, go_ahead): (rustix::process::Pid, UnixStream),
) -> Result<(), Failure> {
    let idmapped = prepare_init(start, init.as_raw_nonzero().get())?;
    let proceed = Proceed {
        idmapped_lowers: idmapped.len(),
    };
    protocol::send_with_rights(&go_ahead, &proceed, &idmapped)
        .step(|| "send the go-ahead to the sandbox init".into())
}

/// Writes the init's id maps and returns the idmapped lowers.
fn prepare_init(start: &Start, pid: i32) -> Result<Vec<OwnedFd>, Failure> {
    write_id_maps(pid, &start.spec.ids)?;
    idmap_lowers(pid, &start.spec)
}

/// Writes `/proc/<pid>/{setgroups,uid_map,gid_map}` of the init (user_namespaces(7)): we are
/// in the parent user namespace, as root (a mapped range) or as the caller (one line mapping
/// our own ids, setgroups denied first).
fn write_id_maps(pid: i32, ids: &IdMapping) -> Result<(), Failure> {
    let proc = Path::new("/proc").join(pid.to_string());
    let lines = |ranges: Vec<IdRange>| {
        ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
            .collect::<String>()
    };
    let write = |file: &str, text: String| {
        let path = proc.join(file);
        std::fs::write(&path, text).step(|| format!("write {}", path.display()))
    };
    if let IdMapping::Rootless { .. } = ids {
        write("setgroups", "deny".to_owned())?;
    }
    write("uid_map", lines(ids.uid_ranges()))?;
    write("gid_map", lines(ids.gid_ranges()))
}

/// As root, the lower layers owned by host ids as detached mounts idmapped with the init's
/// user namespace, one per [`SandboxSpec::idmap_groups`] (a directory holding several such
/// layers is cloned once): open_tree(2) `OPEN_TREE_CLONE`, then mount_setattr(2)
/// `MOUNT_ATTR_IDMAP`. The init attaches them and opens the layers beneath. Rootless, none
/// are needed.
fn idmap_lowers(pid: i32, spec: &SandboxSpec) -> Result<Vec<OwnedFd>, Failure> {
    let groups = spec.idmap_groups();
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let namespace = format!("/proc/{pid}/ns/user");
    let userns = rustix::fs::open(&namespace, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .step(|| format!("open {namespace}"))?;
    groups
        .iter()
        .map(|group| {
            let clone = rustix::mount::open_tree(
                CWD,
                &group.mount,
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE,
            )
            .step(|| format!("clone the mount of lower layer {}", group.mount.display()))?;
            sys::idmap_mount(clone.as_fd(), userns.as_fd(), true)
                .step(|| format!("idmap lower layer {}", group.mount.display()))?;
            Ok(clone)
        })
        .collect()
}

/// Stage 2: pid 1 of the sandbox.
fn container_init(control: &UnixStream, start: &Start, wait_here: UnixStream) -> ! {
    // Die with the runner, our parent.
    if die_with_runner(control).is_err() {
        sys::exit_immediately(ExitCode::SETUP);
    }
    // While the helper prepares us: the network namespace, made by a child of ours, and the
    // host's directories and mounts the sandbox is built from. A failure here is reported
    // only after the go-ahead, so that it is the one failure the runner hears of: the helper,
    // still working on us, would otherwise fail too once we are gone, and say so.
    let network = match start.spec.network {
        Network::None => NetworkChild::spawn().map(Some),
        Network::Host => Ok(None),
    };
    let host = capture_host(&start.spec);
    // The helper's go-ahead: our id maps are written. Without it the helper failed and
    // has said why.
    let idmapped = match protocol::receive_with_rights(&wait_here, |p: &Proceed| p.idmapped_lowers)
    {
        Ok((_, idmapped)) => idmapped,
        // The helper closed the socket: it failed and has said why.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            sys::exit_immediately(ExitCode::SETUP)
        }
        Err(e) => report_failure(
            control,
            Failure {
                step: "receive the go-ahead from the helper".into(),
                errno: e.errno(),
            },
        ),
    };
    drop(wait_here);
    let (network, host) = match (network, host) {
        (Ok(network), Ok(host)) => (network, host),
        (Err(failure), _) | (_, Err(failure)) => report_failure(control, failure),
    };
    // Into the run's v1 cgroups, as host uid 0 still: `0` in `tasks` moves the calling
    // thread without the global lock a move by pid takes (cgroup-v1 docs, "tasks").
    for tasks in &start.join_cgroups {
        if let Err(e) = std::fs::write(tasks, "0") {
            report_failure(
                control,
                Failure {
                    step: format!("join the cgroup {}", tasks.display()),
                    errno: e.errno(),
                },
            )
        }
    }
    if let Err(failure) = become_init(start) {
        report_failure(control, failure)
    }
    // Changing credentials cleared the parent death signal (prctl(2): "cleared ... when
    // the process's credentials change"; as root the ids change to the mapped range): set it
    // again, and exit now if the runner died meanwhile.
    if die_with_runner(control).is_err() {
        sys::exit_immediately(ExitCode::SETUP);
    }
    match build_sandbox(start, host, idmapped, network) {
        Ok(()) => {}
        Err(failure) => report_failure(control, failure),
    }
    // Handler discovery, inside the new root (DESIGN rule 1).
    let program = match &start.spec.handler {
        None => None,
        Some(lookup) => match find_handler(lookup) {
            Some(path) => Some(path),
            None => {
                let _ = protocol::send(control, &HelperMessage::HandlerMissing);
                sys::exit_immediately(0)
            }
        },
    };
    let command = match sys::fork_single_threaded().step(|| "fork the command".into()) {
        Ok(sys::Forked::Child) => exec_command(&start.spec, start, program),
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(failure) => report_failure(control, failure),
    };
    // pid 1 keeps no capability and gains none (capabilities(7), prctl(2)).
    let _ = drop_all_capabilities();
    let status = reap_until_exit(command);
    let _ = protocol::send(control, &HelperMessage::Finished(status));
    sys::exit_immediately(match status {
        HookStatus::Exited(code) => code,
        HookStatus::Signaled(signal) => 128 + signal,
    })
}

/// The init's identity, once the helper wrote its id maps.
fn become_init(start: &Start) -> Result<(), Failure> {
    // A cgroup namespace rooted at the run's cgroup.
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
        .step(|| "create the cgroup namespace".into())?;
    // Become uid and gid 0 of the user namespace.
    become_root(&start.spec.ids).step(|| "become root of the user namespace".into())
}

/// What the init takes from the host before its id maps are written (none of it needs
/// them, so it overlaps with the helper's work): held open, or cloned as detached mounts,
/// before the new root covers the host's `/tmp`.
struct HostMounts {
    /// The overlay's directories.
    layers: Layers,
    /// Read-only copies of the image's host directories.
    image: Vec<ImageEntry>,
    /// The device nodes.
    devices: Vec<(&'static str, OwnedFd)>,
    /// The extra binds.
    binds: Vec<OwnedFd>,
}

/// Makes the mount tree private and takes [`HostMounts`] from it.
fn capture_host(spec: &SandboxSpec) -> Result<HostMounts, Failure> {
    // Nothing mounted here propagates to the host (mount_namespaces(7)).
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .step(|| "make the mount tree private".into())?;
    Ok(HostMounts {
        layers: open_layers(spec)?,
        image: capture_image(spec)?,
        devices: capture_devices()?,
        binds: capture_binds(spec)?,
    })
}

/// The mounts and identity of the sandbox, as pid 1, before the command is forked.
fn build_sandbox(
    start: &Start,
    host: HostMounts,
    idmapped: Vec<OwnedFd>,
    network: Option<NetworkChild>,
) -> Result<(), Failure> {
    let spec = &start.spec;
    let root = Path::new(new_root());
    let HostMounts {
        layers,
        image,
        devices,
        binds,
    } = host;
    // Non-dumpable: /proc/1 is then unreadable without CAP_SYS_PTRACE, so the command cannot
    // open /proc/1/exe and overwrite the hookbox binary (CVE-2019-5736). After the last change
    // of credentials, which resets it (prctl(2), PR_SET_DUMPABLE).
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .step(|| "make the init non-dumpable".into())?;
    // The idmapped mounts the helper made for the host-owned lower layers.
    let layers = layers.with_idmapped(spec, idmapped)?;
    // As root, the idmapped lower layers, attached on a tmpfs that the new root then covers.
    let lowers = stage_lowers(spec, root, layers.lowers, layers.mounts)?;
    // The new root: a tmpfs.
    mount_tmpfs(root, "mode=0755")
        .step(|| format!("mount the root tmpfs at {}", root.display()))?;
    let root_dir = open_dir(root).step(|| "open the new root".into())?;
    // The charm overlay, detached until the root is built.
    let overlay = create_overlay(spec, lowers, layers.upper, layers.work)?;
    // The image: the host's /usr, /bin, /lib*, /etc read-only (or symlinks where the host
    // has symlinks, as with merged /usr).
    attach_image(&root_dir, image)?;
    // A fresh /proc for the new pid namespace.
    mount_proc(&root_dir, root)?;
    // A minimal /dev: device binds, a private devpts, /dev/shm.
    build_dev(&root_dir, root, devices)?;
    // A private /tmp.
    create_dirs(&root_dir, Path::new("tmp")).step(|| "create /tmp".into())?;
    mount_tmpfs(&root.join("tmp"), "mode=1777").step(|| "mount /tmp".into())?;
    // The charm overlay at the charm path.
    attach(&root_dir, overlay, &spec.charm_path, true)
        .step(|| format!("mount overlay at {}", spec.charm_path.display()))?;
    // The extra binds (hook tools, their socket).
    for (bind, mount) in spec.binds.iter().zip(binds) {
        let is_dir = bind.source.is_dir();
        attach(&root_dir, mount, &bind.target, is_dir).step(|| {
            format!(
                "bind {} at {}",
                bind.source.display(),
                bind.target.display()
            )
        })?;
    }
    // The root itself read-only.
    rustix::mount::mount_remount(
        root,
        MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .step(|| "make the root read-only".into())?;
    // Switch to the new root and detach the old one (pivot_root(2), "pivot_root(".", ".")").
    pivot_into(root).step(|| "pivot_root".into())?;
    // The hostname (uts namespace).
    nix::unistd::sethostname(&spec.hostname).step(|| format!("set hostname {}", spec.hostname))?;
    // The new network namespace, its loopback up.
    if let Some(network) = network {
        network.enter()?;
    }
    Ok(())
}

/// The child of the init that creates the sandbox's network namespace (`--network none`)
/// while the init builds the mounts: a fresh network namespace costs about as much as all
/// the mounts together (every per-namespace subsystem, sysctl tables and the loopback
/// device are set up in it), and on two or more CPUs the two proceed side by side. The
/// child has the init's capabilities in the sandbox's user namespace, which owns the new
/// network namespace as if the init had made it.
struct NetworkChild {
    pid: rustix::process::Pid,
    reply: UnixStream,
}

impl NetworkChild {
    /// Forks the child, which unshares the network namespace, brings its loopback up,
    /// sends it back as a descriptor and exits.
    fn spawn() -> Result<Self, Failure> {
        let (reply, child_end) =
            UnixStream::pair().step(|| "create the network setup socket".into())?;
        match sys::fork_single_threaded().step(|| "fork the network namespace child".into())? {
            sys::Forked::Child => {
                drop(reply);
                let reply = match Self::make_namespace() {
                    Ok(netns) => {
                        protocol::send_with_rights(&child_end, &NetworkReply::Ready, &[netns])
                    }
                    Err(failure) => protocol::send(
                        &child_end,
                        &NetworkReply::Failed {
                            step: failure.step,
                            errno: failure.errno,
                        },
                    ),
                };
                sys::exit_immediately(if reply.is_ok() { 0 } else { ExitCode::SETUP })
            }
            sys::Forked::Parent(pid) => Ok(Self { pid, reply }),
        }
    }

    /// In the child: the namespace, its loopback up, as a descriptor.
    fn make_namespace() -> Result<OwnedFd, Failure> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .step(|| "create the network namespace".into())?;
        bring_up_loopback().step(|| "bring up the loopback interface".into())?;
        let path = "/proc/self/ns/net";
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .step(|| format!("open {path}"))
    }

    /// In the init: waits for the namespace, enters it (setns(2)) and reaps the child.
    fn enter(self) -> Result<(), Failure> {
        let received = protocol::receive_with_rights(&self.reply, |reply: &NetworkReply| {
            usize::from(matches!(reply, NetworkReply::Ready))
        });
        let _ = waitpid(NixPid::from_raw(self.pid.as_raw_nonzero().get()), None);
        match received.step(|| "receive the network namespace".into())? {
            (NetworkReply::Failed { step, errno }, _) => Err(Failure { step, errno }),
            (NetworkReply::Ready, mut fds) => {
                let netns = fds.pop().expect("receive_with_rights checked the count");
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)
                    .step(|| "enter the network namespace".into())
            }
        }
    }
}

/// The handler to exec: an executable regular `dispatch` (stat(2) inside the sandbox, so a
/// symlink resolves in the hook's world), else whatever exists at the hook path (lstat(2):
/// a dangling symlink or a file without exec bit is still "there" and fails at exec).
fn find_handler(lookup: &HandlerLookup) -> Option<&Path> {
    let dispatch_is_executable = rustix::fs::stat(&lookup.dispatch).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            && st.st_mode & 0o111 != 0
    });
    if dispatch_is_executable {
        return Some(&lookup.dispatch);
    }
    rustix::fs::lstat(&lookup.hook)
        .is_ok()
        .then_some(lookup.hook.as_path())
}

/// Stage 3: the command, forked from pid 1 (`program` replaces `argv` when handler lookup
/// chose it).
fn exec_command(spec: &SandboxSpec, start: &Start, program: Option<&Path>) -> ! {
    match prepare_and_exec(spec, start, program) {
        Err(failure) => {
            // The command could not start: report it on its stderr and exit as a shell would
            // (126 not executable, 127 not found), so it is a failed command, not a broken
            // sandbox.
            let message = format!(
                "hookbox: {}: {}\n",
                failure.step,
                nix::errno::Errno::from_raw(failure.errno)
            );
            let _ = rustix::io::write(std::io::stderr().as_fd(), message.as_bytes());
            sys::exit_immediately(if failure.errno == libc::ENOENT {
                127
            } else {
                126
            })
        }
    }
}

fn prepare_and_exec(
    spec: &SandboxSpec,
    start: &Start,
    program: Option<&Path>,
) -> Result<std::convert::Infallible, Failure> {
    // Default signal mask; a session of its own so only the init's forwarding reaches it.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .step(|| "restore the signal mask".into())?;
    rustix::process::setsid().step(|| "create a session".into())?;
    // The working directory.
    rustix::process::chdir(&spec.cwd).step(|| format!("enter {}", spec.cwd.display()))?;
    // Resource limits (setrlimit(2)); cgroups enforce the rest.
    set_rlimits(spec, start).step(|| "set resource limits".into())?;
    // The command's path and arguments, resolved before the filter is installed.
    let (path, argv, env) = match program {
        None => command_line(spec)?,
        Some(program) => {
            let mut spec = spec.clone();
            spec.argv = vec![program.to_string_lossy().into_owned()];
            command_line(&spec)?
        }
    };
    // Capabilities: the bounding set and the permitted/effective/inheritable sets.
    drop_capabilities().step(|| "drop capabilities".into())?;
    // No privilege gain through exec (setuid binaries, file capabilities).
    rustix::thread::set_no_new_privs(true).step(|| "set no_new_privs".into())?;
    // The seccomp filters (seccomp(2)).
    install_seccomp().step(|| "install the seccomp filter".into())?;
    // Every descriptor but stdin, stdout and stderr closed.
    sys::close_fds_from(3).step(|| "close inherited descriptors".into())?;
    // Exec.
    let err = nix::unistd::execve(&path, &argv, &env).unwrap_err();
    Err(err).step(|| format!("exec {}", path.to_string_lossy()))
}

/// The namespaces the init is forked in; the network namespace follows from
/// [`NetworkChild`].
fn namespace_flags() -> CloneFlags {
    CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
}

fn die_with_parent(expected_parent: Option<i32>) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    if let Some(expected) = expected_parent
        && rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(expected)
    {
        sys::exit_immediately(ExitCode::SETUP);
    }
    Ok(())
}

/// `PR_SET_PDEATHSIG` for the init, whose parent is the runner; if the runner died before,
/// exits now. pid 1 cannot ask getppid(2) (0 across pid namespaces), but the runner alone
/// holds the other end of the control socket: end of stream means it is gone.
fn die_with_runner(control: &UnixStream) -> io::Result<()> {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let mut byte = [0u8; 1];
    if let Ok(0) = recv(
        control.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        sys::exit_immediately(ExitCode::SETUP);
    }
    Ok(())
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in HANDLED_SIGNALS {
        set.add(*signal);
    }
    set
}

fn block_handled_signals() -> nix::Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled_signals()), None)
}

fn become_root(ids: &IdMapping) -> nix::Result<()> {
    let root_uid = nix::unistd::Uid::from_raw(0);
    let root_gid = nix::unistd::Gid::from_raw(0);
    if matches!(ids, IdMapping::Range { .. }) {
        // Drop the host's supplementary groups (allowed: the helper did not deny setgroups).
        nix::unistd::setgroups(&[])?;
    }
    nix::unistd::setresgid(root_gid, root_gid, root_gid)?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
}

/// pid 1's loop: reaps every child, forwards termination signals to the command's process
/// group, and returns once the command itself has exited.
fn reap_until_exit(command: rustix::process::Pid) -> HookStatus {
    let command = NixPid::from_raw(command.as_raw_nonzero().get());
    let signals = handled_signals();
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(NixPid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == command => {
                        return HookStatus::Exited(code);
                    }
                    Ok(WaitStatus::Signaled(pid, signal, _)) if pid == command => {
                        return HookStatus::Signaled(signal as i32);
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            },
            Ok(signal) => {
                let _ = nix::sys::signal::killpg(command, signal);
            }
            Err(_) => {}
        }
    }
}

fn bring_up_loopback() -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    sys::set_interface_up(socket.as_fd(), "lo")
}

/// The overlay's directories, held open before the new root covers the host's `/tmp`.
struct Layers {
    /// The lower layers, top first.
    lowers: Vec<LowerSource>,
    /// The idmapped mounts of [`SandboxSpec::idmap_groups`], each taken when attached.
    mounts: Vec<Option<OwnedFd>>,
    /// The upper dir (`O_PATH`).
    upper: OwnedFd,
    /// The work dir (`O_PATH`).
    work: OwnedFd,
}

/// Where a lower layer comes from.
enum LowerSource {
    /// A host directory (`O_PATH`).
    Host(OwnedFd),
    /// Beneath the idmapped mount `mount` (an index in [`Layers::mounts`]), at `relative`.
    Idmapped { mount: usize, relative: PathBuf },
}

/// Opens the overlay's host directories; the layers beneath idmapped mounts are found once
/// the helper's mounts arrive ([`Layers::with_idmapped`]).
fn open_layers(spec: &SandboxSpec) -> Result<Layers, Failure> {
    let at = || format!("mount overlay at {}", spec.charm_path.display());
    let open_path = |path: &Path| {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let groups = spec.idmap_groups();
    let beneath = |index: usize| {
        groups.iter().enumerate().find_map(|(mount, group)| {
            group
                .members
                .iter()
                .find(|(member, _)| *member == index)
                .map(|(_, relative)| LowerSource::Idmapped {
                    mount,
                    relative: relative.clone(),
                })
        })
    };
    let lowers = spec
        .lowers
        .iter()
        .enumerate()
        .map(|(index, lower)| match beneath(index) {
            Some(source) => Ok(source),
            None => open_path(&lower.path)
                .map(LowerSource::Host)
                .step(|| format!("{}: lower layer {}", at(), lower.path.display())),
        })
        .collect::<Result<_, _>>()?;
    Ok(Layers {
        lowers,
        mounts: Vec::new(),
        upper: open_path(&spec.upper)
            .step(|| format!("{}: upper dir {}", at(), spec.upper.display()))?,
        work: open_path(&spec.work)
            .step(|| format!("{}: work dir {}", at(), spec.work.display()))?,
    })
}

impl Layers {
    /// Pairs the helper's idmapped mounts, one per [`SandboxSpec::idmap_groups`] in order,
    /// with the layers beneath them (every group has a layer, so the groups are counted from
    /// the layers' mount indices).
    fn with_idmapped(
        mut self,
        spec: &SandboxSpec,
        idmapped: Vec<OwnedFd>,
    ) -> Result<Self, Failure> {
        let groups = self
            .lowers
            .iter()
            .filter_map(|lower| match lower {
                LowerSource::Idmapped { mount, .. } => Some(mount + 1),
                LowerSource::Host(_) => None,
            })
            .max()
            .unwrap_or(0);
        if groups != idmapped.len() {
            return Err(rustix::io::Errno::BADF).step(|| {
                format!(
                    "mount overlay at {}: {} idmapped mounts from the helper for {groups} groups \
                     of layers",
                    spec.charm_path.display(),
                    idmapped.len(),
                )
            });
        }
        self.mounts = idmapped.into_iter().map(Some).collect();
        Ok(self)
    }
}

/// The lower layers as directories the overlay can take. overlayfs clones only mounts of
/// our own mount namespace, so the idmapped mounts from the helper are attached first, each
/// once, on a staging tmpfs mounted where the new root will be (`root`): the new root's
/// tmpfs then covers it, and `pivot_root` detaches it with the old root, in the one unmount
/// that happens anyway (each unmount waits for an RCU grace period, ~0.2 ms here). Each
/// layer beneath its mount is opened by one path component (or `.`), never a symlink.
fn stage_lowers(
    spec: &SandboxSpec,
    root: &Path,
    lowers: Vec<LowerSource>,
    mut mounts: Vec<Option<OwnedFd>>,
) -> Result<Vec<OwnedFd>, Failure> {
    let at = || format!("mount overlay at {}", spec.charm_path.display());
    let mut staging: Option<OwnedFd> = None;
    spec.lowers
        .iter()
        .zip(lowers)
        .map(|(lower, source)| {
            let layer = || format!("{}: lower layer {}", at(), lower.path.display());
            let (mount, relative) = match source {
                LowerSource::Host(dir) => return Ok(dir),
                LowerSource::Idmapped { mount, relative } => (mount, relative),
            };
            let staging_dir = match &staging {
                Some(dir) => dir,
                None => {
                    mount_tmpfs(root, "mode=0700")
                        .step(|| format!("{}: mount the staging tmpfs", at()))?;
                    staging.insert(
                        open_dir(root).step(|| format!("{}: open the staging tmpfs", at()))?,
                    )
                }
            };
            let target = PathBuf::from(mount.to_string());
            if let Some(detached) = mounts.get_mut(mount).and_then(Option::take) {
                attach(staging_dir, detached, &target, true)
                    .step(|| format!("{}: attach the idmapped mount", layer()))?;
            }
            rustix::fs::openat(
                staging_dir,
                target.join(&relative),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .step(layer)
        })
        .collect()
}

/// The overlay: `lowerdir+` once per layer (so 50+ layers never hit the page-size limit of
/// a `lowerdir=` string), `upperdir`, `workdir`, `userxattr` (overlayfs in a user namespace),
/// `volatile`; every directory given by descriptor (`FSCONFIG_SET_FD`, Linux 6.13).
fn create_overlay(
    spec: &SandboxSpec,
    lowers: Vec<OwnedFd>,
    upper: OwnedFd,
    work: OwnedFd,
) -> Result<OwnedFd, Failure> {
    let at = || format!("mount overlay at {}", spec.charm_path.display());
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).step(at)?;
    // overlayfs names each directory by its path from our root at the time it is given, and
    // shows that name in mountinfo: given from the layers' own root, the names say nothing of
    // where the state lives on the host ([`SandboxSpec::layers_root`]).
    within_root(&spec.layers_root(), || {
        for (lower, dir) in spec.lowers.iter().zip(lowers) {
            rustix::mount::fsconfig_set_fd(&fs, "lowerdir+", dir.as_fd())
                .step(|| format!("{}: lower layer {}", at(), lower.path.display()))?;
        }
        rustix::mount::fsconfig_set_fd(&fs, "upperdir", upper.as_fd())
            .step(|| format!("{}: upper dir {}", at(), spec.upper.display()))?;
        rustix::mount::fsconfig_set_fd(&fs, "workdir", work.as_fd())
            .step(|| format!("{}: work dir {}", at(), spec.work.display()))
    })?;
    rustix::mount::fsconfig_set_flag(&fs, "userxattr").step(at)?;
    // No sync of the whole upper filesystem at unmount (it costs ~10 ms on ext4): a failed
    // run's layer is discarded anyway, and the runner syncs a layer when it commits it.
    rustix::mount::fsconfig_set_flag(&fs, "volatile").step(at)?;
    rustix::mount::fsconfig_create(&fs).step(at)?;
    rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .step(at)
}

/// Runs `f` chrooted into `dir`, then returns to the root we had (through a descriptor of
/// it: `dir` is beneath it). Nothing in `f` resolves a path.
fn within_root<T>(dir: &Path, f: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    if dir == Path::new("/") {
        return f();
    }
    let at = || format!("enter {} to hand the layers to overlayfs", dir.display());
    let old_root = open_dir(Path::new("/")).step(at)?;
    rustix::process::chroot(dir).step(at)?;
    let result = f();
    rustix::process::fchdir(&old_root)
        .and_then(|()| rustix::process::chroot("."))
        .step(|| format!("return from {} to the root", dir.display()))?;
    result
}

/// One entry of the image: a read-only bind of a host directory, or a symlink to recreate.
enum ImageEntry {
    Bind(&'static str, OwnedFd),
    Symlink(&'static str, CString),
}

fn capture_image(spec: &SandboxSpec) -> Result<Vec<ImageEntry>, Failure> {
    let mut entries = Vec::new();
    for &dir in spec.image.host_directories() {
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = rustix::fs::readlink(dir, Vec::new())
                .step(|| format!("read the host symlink {dir}"))?;
            entries.push(ImageEntry::Symlink(dir, target));
        } else {
            let mount = clone_read_only(Path::new(dir), true)
                .step(|| format!("bind the host {dir} read-only"))?;
            entries.push(ImageEntry::Bind(dir, mount));
        }
    }
    Ok(entries)
}

fn capture_devices() -> Result<Vec<(&'static str, OwnedFd)>, Failure> {
    DEVICES
        .iter()
        .map(|&name| {
            let path = format!("/dev/{name}");
            clone_tree(Path::new(&path))
                .map(|fd| (name, fd))
                .step(|| format!("bind the host {path}"))
        })
        .collect()
}

fn capture_binds(spec: &SandboxSpec) -> Result<Vec<OwnedFd>, Failure> {
    spec.binds
        .iter()
        .map(|bind| {
            let mount = if bind.writable {
                clone_tree(&bind.source).map_err(io::Error::from)
            } else {
                clone_read_only(&bind.source, false)
            };
            mount.step(|| format!("bind {}", bind.source.display()))
        })
        .collect()
}

/// A detached recursive copy of the mount tree at `path` (open_tree(2) OPEN_TREE_CLONE).
fn clone_tree(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::mount::open_tree(
        CWD,
        path,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// [`clone_tree`], then read-only, nosuid and nodev on every mount of the copy.
fn clone_read_only(path: &Path, nodev: bool) -> io::Result<OwnedFd> {
    let mount = clone_tree(path)?;
    let mut attributes = sys::mount_attr::RDONLY | sys::mount_attr::NOSUID;
    if nodev {
        attributes |= sys::mount_attr::NODEV;
    }
    sys::set_mount_attributes(mount.as_fd(), attributes, true)?;
    Ok(mount)
}

fn attach_image(root_dir: &OwnedFd, image: Vec<ImageEntry>) -> Result<(), Failure> {
    for entry in image {
        match entry {
            ImageEntry::Bind(dir, mount) => attach(root_dir, mount, Path::new(dir), true)
                .step(|| format!("bind the host {dir} read-only"))?,
            ImageEntry::Symlink(link, target) => {
                rustix::fs::symlinkat(target.as_c_str(), root_dir, relative(Path::new(link)))
                    .step(|| format!("create the symlink {link}"))?
            }
        }
    }
    Ok(())
}

fn mount_proc(root_dir: &OwnedFd, root: &Path) -> Result<(), Failure> {
    create_dirs(root_dir, Path::new("proc")).step(|| "create /proc".into())?;
    rustix::mount::mount(
        "proc",
        root.join("proc"),
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .step(|| "mount /proc".into())
}

fn build_dev(
    root_dir: &OwnedFd,
    root: &Path,
    devices: Vec<(&'static str, OwnedFd)>,
) -> Result<(), Failure> {
    create_dirs(root_dir, Path::new("dev")).step(|| "create /dev".into())?;
    rustix::mount::mount(
        "tmpfs",
        root.join("dev"),
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"mode=0755"),
    )
    .step(|| "mount /dev".into())?;
    for (name, mount) in devices {
        let target = Path::new("/dev").join(name);
        attach(root_dir, mount, &target, false).step(|| format!("bind {}", target.display()))?;
    }
    create_dirs(root_dir, Path::new("dev/pts")).step(|| "create /dev/pts".into())?;
    rustix::mount::mount(
        "devpts",
        root.join("dev/pts"),
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620"),
    )
    .step(|| "mount /dev/pts".into())?;
    create_dirs(root_dir, Path::new("dev/shm")).step(|| "create /dev/shm".into())?;
    rustix::mount::mount(
        "tmpfs",
        root.join("dev/shm"),
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(c"mode=1777"),
    )
    .step(|| "mount /dev/shm".into())?;
    for (link, target) in [
        ("dev/ptmx", "pts/ptmx"),
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        rustix::fs::symlinkat(target, root_dir, link).step(|| format!("create /{link}"))?;
    }
    Ok(())
}

fn mount_tmpfs(target: &Path, options: &str) -> io::Result<()> {
    let options = CString::new(options).expect("static options have no NUL");
    rustix::mount::mount(
        "tmpfs",
        target,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(options.as_c_str()),
    )?;
    Ok(())
}

fn open_dir(path: &Path) -> rustix::io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `path` without its leading `/`, relative to the new root.
fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Creates the mount point `target` (a directory, or an empty file when `!directory`) under
/// the new root and moves the detached `mount` onto it (move_mount(2)).
fn attach(root_dir: &OwnedFd, mount: OwnedFd, target: &Path, directory: bool) -> io::Result<()> {
    let target = relative(target);
    if directory {
        create_dirs(root_dir, target)?;
    } else {
        if let Some(parent) = target.parent() {
            create_dirs(root_dir, parent)?;
        }
        rustix::fs::openat(
            root_dir,
            target,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o644),
        )?;
    }
    rustix::mount::move_mount(
        &mount,
        "",
        root_dir,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(())
}

/// `mkdir -p` of `path` under `root_dir`, one component at a time.
fn create_dirs(root_dir: &OwnedFd, path: &Path) -> io::Result<()> {
    let mut current = std::path::PathBuf::new();
    for component in relative(path).components() {
        let Component::Normal(name) = component else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        current.push(name);
        match rustix::fs::mkdirat(root_dir, &current, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn pivot_into(root: &Path) -> rustix::io::Result<()> {
    rustix::process::chdir(root)?;
    rustix::process::pivot_root(".", ".")?;
    rustix::mount::unmount(".", UnmountFlags::DETACH)?;
    rustix::process::chdir("/")
}

fn set_rlimits(spec: &SandboxSpec, start: &Start) -> nix::Result<()> {
    use nix::sys::resource::{Resource, setrlimit};
    // No core dumps of hook processes into the charm dir.
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    if start.rlimit_pids
        && let Some(pids) = spec.limits.pids
    {
        setrlimit(Resource::RLIMIT_NPROC, pids, pids)?;
    }
    if start.rlimit_memory
        && let Some(bytes) = spec.limits.memory_bytes
    {
        setrlimit(Resource::RLIMIT_AS, bytes, bytes)?;
    }
    Ok(())
}

/// The executable, argv and envp of the command. A bare name is looked up in the spec's
/// `PATH` (not the helper's).
fn command_line(spec: &SandboxSpec) -> Result<(CString, Vec<CString>, Vec<CString>), Failure> {
    let to_cstring = |s: &[u8]| {
        CString::new(s).map_err(|_| Failure {
            step: format!("argument {:?} contains NUL", String::from_utf8_lossy(s)),
            errno: libc::EINVAL,
        })
    };
    let argv = spec
        .argv
        .iter()
        .map(|a| to_cstring(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| to_cstring(format!("{k}={v}").as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    let program = &spec.argv[0];
    let path = if program.contains('/') {
        to_cstring(program.as_bytes())?
    } else {
        let search = spec
            .env_var("PATH")
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let found = search.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
            let candidate = Path::new(dir).join(program);
            rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK)
                .ok()
                .filter(|_| candidate.is_file())
                .map(|_| candidate)
        });
        match found {
            Some(path) => to_cstring(path.as_os_str().as_bytes())?,
            None => {
                return Err(Failure {
                    step: format!("{program}: not found in PATH"),
                    errno: libc::ENOENT,
                });
            }
        }
    };
    Ok((path, argv, env))
}

fn drop_capabilities() -> rustix::io::Result<()> {
    for bit in 0..64u32 {
        let capability = CapabilitySet::from_bits_retain(1u64 << bit);
        if KEPT_CAPABILITIES.contains(capability) {
            continue;
        }
        match rustix::thread::remove_capability_from_bounding_set(capability) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e),
        }
    }
    rustix::thread::clear_ambient_capability_set()?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: KEPT_CAPABILITIES,
            permitted: KEPT_CAPABILITIES,
            inheritable: CapabilitySet::empty(),
        },
    )
}

fn drop_all_capabilities() -> rustix::io::Result<()> {
    rustix::thread::set_no_new_privs(true)?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
}

fn install_seccomp() -> io::Result<()> {
    seccompiler::apply_filter(&seccomp::filter()).map_err(|e| match e {
        seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
        other => io::Error::other(other),
    })
}
