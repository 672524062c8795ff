//! The only unsafe code in hookbox: thin wrappers over the few syscalls that nix and rustix
//! expose as `unsafe` or not at all. Each wrapper states the invariant it relies on.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// The result of [`fork`], seen from each side.
#[derive(Debug, Clone, Copy)]
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(rustix::process::Pid),
    /// In the child.
    Child,
}

/// `fork(2)`. Only for the sandbox helper, which is single-threaded: it is the freshly
/// executed `__sandbox-init` process, which never starts a thread (no tokio, no logging
/// thread), so the child cannot inherit a lock held by another thread.
pub fn fork_single_threaded() -> io::Result<Forked> {
    ensure_single_threaded()?;
    // SAFETY: the process has one thread (checked just above), so after fork the child's
    // memory holds no lock or allocator state owned by a thread that does not exist in it.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(
            rustix::process::Pid::from_raw(child.as_raw()).expect("fork returns a positive pid"),
        )),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// `CLONE_INTO_CGROUP` (linux/sched.h): libc declares it as a C int, which it overflows.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` (linux/sched.h), version 2 (88 bytes, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3(2)` with `CLONE_PARENT`, nothing shared and the `CLONE_NEW*` flags in
/// `namespaces`: a fork whose child is our parent's child, not ours, so our parent waits for
/// it (and its `PR_SET_PDEATHSIG` follows our parent) while we may exit at once; with
/// `CLONE_NEWPID` the child is pid 1 of its pid namespace. With `cgroup`, a cgroup v2
/// directory, the child starts in that cgroup (`CLONE_INTO_CGROUP`): moving it there by pid
/// afterwards would wait for the global cgroup lock's RCU grace period, 8-16 ms after the
/// lock was idle. Only for the sandbox helper, single-threaded as for
/// [`fork_single_threaded`].
pub fn fork_as_sibling(namespaces: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let ns_only = (libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP) as u64;
    if namespaces & !ns_only != 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    ensure_single_threaded()?;
    let into_cgroup = match cgroup {
        Some(_) => CLONE_INTO_CGROUP,
        None => 0,
    };
    let args = CloneArgs {
        flags: libc::CLONE_PARENT as u64 | into_cgroup | namespaces,
        // With CLONE_PARENT the child's exit signal is ours; clone3 requires 0 here.
        exit_signal: 0,
        cgroup: cgroup.map_or(0, |dir| dir.as_raw_fd() as u64),
        ..CloneArgs::default()
    };
    // SAFETY: without CLONE_VM (only CLONE_NEW* flags are added, checked above) the child runs
    // on a private copy of our memory and stack, so returning into Rust code in both
    // processes is a fork; the process is single-threaded
    // (checked above), so the child inherits no lock held by another thread.
    // glibc's cached thread id is stale in the child, which only pthread functions the helper
    // never calls read (raise(3) asks the kernel with gettid(2)). `args` is a live, initialised
    // `struct clone_args` whose size is passed alongside; the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(
            rustix::process::Pid::from_raw(pid as i32).expect("clone3 returns a positive pid"),
        )),
    }
}

/// Refuses, with an error, to go on in a process that has more than one thread: a fork
/// there could leave the child holding a lock (malloc, stdio) owned by a thread that does
/// not exist in it. Checked in every build: one stat(2) of /proc/self/task.
fn ensure_single_threaded() -> io::Result<()> {
    match thread_count() {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "refusing to fork a process with {n} threads"
        ))),
        None => Err(io::Error::other(
            "refusing to fork: the thread count of /proc/self/task is unreadable",
        )),
    }
}

/// The number of threads of this process: the link count of `/proc/self/task` is two plus
/// one per thread (proc(5) lists them as its subdirectories; procfs counts them in its
/// getattr without formatting `/proc/self/status`, which costs a tenth of a millisecond).
pub fn thread_count() -> Option<usize> {
    let task = rustix::fs::stat("/proc/self/task").ok()?;
    (task.st_nlink as usize).checked_sub(2).filter(|n| *n > 0)
}

/// How many runs [`forward_to`] can forward to at once (one slot per running sandbox).
const FORWARD_SLOTS: usize = 256;
/// The pidfds the handler of [`forward_signals`] passes its signal to; -1 marks a free slot.
/// Atomics, so the handler reads them without a lock.
static FORWARD_TO: [AtomicI32; FORWARD_SLOTS] = [const { AtomicI32::new(-1) }; FORWARD_SLOTS];
/// The last signal [`forward_signals`]'s handler took, 0 if none.
static FORWARDED: AtomicI32 = AtomicI32::new(0);

/// Installs, for each of `signals` not ignored, a handler that sends the signal on to every
/// pidfd registered with [`forward_to`]; with none registered, the signal takes its default
/// action. The handler makes only async-signal-safe calls (raw syscalls, atomics).
pub fn forward_signals(signals: &[nix::sys::signal::Signal]) -> io::Result<()> {
    for &signal in signals {
        if signal_ignored(signal) {
            continue;
        }
        // SAFETY: struct sigaction is plain data for which all zeroes is a valid value
        // (SIG_DFL, no flags, an empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = forward_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: `action` is a zeroed struct sigaction with a handler that is
        // async-signal-safe (see forward_signal) and an empty mask; the old action is not
        // asked for.
        let rc = unsafe { libc::sigaction(signal as libc::c_int, &action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn forward_signal(signal: libc::c_int) {
    // SAFETY: errno of this thread, saved and restored around the syscalls below so the
    // interrupted code does not see it change.
    let errno = unsafe { *libc::__errno_location() };
    FORWARDED.store(signal, Ordering::SeqCst);
    let mut sent = false;
    for slot in &FORWARD_TO {
        let pidfd = slot.load(Ordering::SeqCst);
        if pidfd >= 0 {
            // SAFETY: pidfd_send_signal(2) with no siginfo; an fd that stopped being a pidfd
            // in the meantime only makes it fail.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd,
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            sent = true;
        }
    }
    if !sent {
        // SAFETY: signal(2) and raise(3) are async-signal-safe; the raised signal stays
        // pending until this handler returns, then takes its default action.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Registers `pidfd` with the handler of [`forward_signals`] until [`stop_forwarding`] of
/// the slot returned; `None` when every slot is taken.
pub fn forward_to(pidfd: BorrowedFd<'_>) -> Option<usize> {
    let fd = pidfd.as_raw_fd();
    FORWARD_TO.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    })
}

/// Frees a slot of [`forward_to`] (before its pidfd is closed).
pub fn stop_forwarding(slot: usize) {
    FORWARD_TO[slot].store(-1, Ordering::SeqCst);
}

/// The last signal the handler of [`forward_signals`] took.
pub fn forwarded_signal() -> Option<nix::sys::signal::Signal> {
    nix::sys::signal::Signal::try_from(FORWARDED.load(Ordering::SeqCst)).ok()
}

/// Whether `signal`'s disposition is to be ignored (as a shell leaves SIGINT for a job it
/// starts in the background, or `nohup` SIGHUP).
pub fn signal_ignored(signal: nix::sys::signal::Signal) -> bool {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action sigaction(2) only reads the current one into `old`, a
    // zeroed (valid) struct sigaction of the right type.
    let rc = unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled in by the kernel when rc == 0.
    rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Every signal's disposition back to the default (what a program expects at its start;
/// exec(2) keeps a signal that is ignored ignored).
pub fn reset_signal_dispositions() -> io::Result<()> {
    use nix::sys::signal::{SigHandler, Signal};
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler of ours, so there is no handler to make safe.
        unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Ends the process as `signal` does by default, whatever handler was installed for it: the
/// default action restored, the signal unblocked in this thread and raised (`_exit(128 +
/// signal)` should that not end the process).
pub fn die_by_signal(signal: nix::sys::signal::Signal) -> ! {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow};
    // SAFETY: SIG_DFL runs no code of ours when the signal arrives, so there is no handler
    // whose safety to uphold; the previous handler is never called again.
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(signal);
    exit_immediately(128 + signal as i32)
}

/// `_exit(2)`: ends the process at once, without running atexit handlers or flushing stdio
/// buffers that a forked child shares with its parent.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it never returns and touches no Rust-owned state.
    unsafe { libc::_exit(code) }
}

/// Closes every file descriptor from `first` upwards (`close_range(2)`).
///
/// Only called right before `execve` in the sandboxed command, where nothing in the process
/// owns those descriptors any more: Rust objects that wrap them are never used again.
pub fn close_fds_from(first: u32) -> io::Result<()> {
    // SAFETY: closing descriptors cannot violate memory safety; the invariant the caller keeps
    // is that no live `OwnedFd` above `first` is used afterwards (the next call is execve).
    let rc = unsafe { libc::close_range(first, u32::MAX, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `IFF_UP` on the interface `name` (e.g. `lo`) through `SIOCSIFFLAGS` on `socket`.
pub fn set_interface_up(socket: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut request: libc::ifreq = zeroed_ifreq();
    let bytes = name.as_bytes();
    if bytes.len() >= request.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (dst, src) in request.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `request` is a fully initialised `ifreq` living for the whole call, and
    // SIOCGIFFLAGS writes only its `ifru_flags` member.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialised the `ifru_flags` member of the union.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the request.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn zeroed_ifreq() -> libc::ifreq {
    // SAFETY: `ifreq` is a plain C struct of byte arrays and integer unions, for which the
    // all-zero bit pattern is a valid value (an empty name and zero flags).
    unsafe { std::mem::zeroed() }
}

/// `MOUNT_ATTR_*` bits for [`set_mount_attributes`] (linux/mount.h).
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x0000_0001;
    /// Ignore set-user-id and set-group-id bits.
    pub const NOSUID: u64 = 0x0000_0002;
    /// No device files.
    pub const NODEV: u64 = 0x0000_0004;
    /// No execution.
    pub const NOEXEC: u64 = 0x0000_0008;
    /// Idmap the mount with the user namespace `userns_fd` names.
    pub const IDMAP: u64 = 0x0010_0000;
}

/// The kernel's `struct mount_attr` (linux/mount.h), version 0 (32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` on the mount `fd` refers to (an `open_tree` or `fsmount` result), with
/// `AT_RECURSIVE` when `recursive`: sets the `MOUNT_ATTR_*` bits in `set`.
pub fn set_mount_attributes(fd: BorrowedFd<'_>, set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(fd, set, 0, recursive)
}

/// `mount_setattr(2)` with `MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY`: the detached mount `fd`
/// (an `open_tree(OPEN_TREE_CLONE)` result, not yet attached and not idmapped) shows its
/// files' ids through the id map of the user namespace `userns` (a `/proc/<pid>/ns/user`
/// descriptor). The caller needs `CAP_SYS_ADMIN` over that namespace.
pub fn idmap_mount(fd: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let userns = u64::try_from(userns.as_raw_fd()).expect("descriptors are non-negative");
    mount_setattr(
        fd,
        mount_attr::IDMAP | mount_attr::RDONLY,
        userns,
        recursive,
    )
}

fn mount_setattr(fd: BorrowedFd<'_>, set: u64, userns_fd: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a NUL-terminated empty string and `attr` a live, initialised
    // `struct mount_attr` whose size is passed alongside; the kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The most descriptors one `SCM_RIGHTS` message carries (the kernel's `SCM_MAX_FD` is 253).
pub const MAX_RIGHTS_PER_MESSAGE: usize = 250;

/// `sendmsg(2)` of `bytes` on the Unix socket `socket` with `fds` attached as `SCM_RIGHTS`
/// (at most [`MAX_RIGHTS_PER_MESSAGE`]). Returns the bytes sent, which may be fewer on a
/// non-blocking socket; the descriptors travel with the first byte.
pub fn send_with_rights(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    assert!(fds.len() <= MAX_RIGHTS_PER_MESSAGE, "too many descriptors");
    let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let control = [ControlMessage::ScmRights(&raw)];
    let control: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &control };
    let iov = [io::IoSlice::new(bytes)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(io::Error::from)
}

/// `recvmsg(2)` into `buf` on the Unix socket `socket`, taking ownership of the descriptors
/// that arrive as `SCM_RIGHTS` (received close-on-exec). Returns the bytes read (0 at end of
/// stream) and the descriptors.
pub fn receive_with_rights(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; MAX_RIGHTS_PER_MESSAGE]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    let mut truncated = message.flags.contains(MsgFlags::MSG_CTRUNC);
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = control {
            for fd in raw {
                // SAFETY: the kernel has just installed `fd` in our descriptor table for this
                // message; nothing else in the process knows or owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        } else {
            truncated = true;
        }
    }
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected or truncated control message",
        ));
    }
    Ok((message.bytes, fds))
}

/// Registers `fd` with the current tokio reactor for readability (the runner's pidfds).
/// Panics outside a tokio runtime.
pub fn watch_readable(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: tokio requires the descriptor to stay open and to be the same one for the life
    // of the `AsyncFd`: the `OwnedFd` moved into it is closed only when the `AsyncFd` drops
    // it, and its `as_raw_fd` never changes.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sibling_fork_takes_only_namespace_flags() {
        let err = fork_as_sibling(libc::CLONE_VM as u64, None).expect_err("CLONE_VM is refused");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn forks_are_refused_in_a_multi_threaded_process() {
        let (stop, parked) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || parked.recv());
        for result in [fork_single_threaded(), fork_as_sibling(0, None)] {
            let err = result.expect_err("a fork with two threads is refused");
            assert!(err.to_string().contains("refusing to fork"), "{err}");
        }
        stop.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
