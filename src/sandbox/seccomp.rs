//! The seccomp filter every sandboxed command runs under: a deny list of what a hook never
//! needs (module loading, kexec, bpf, perf, userfaultfd, handle-based opens, keyrings,
//! ptrace, reboot, swap, every mount syscall, new namespaces), answered with EPERM.
//! Everything else is allowed: hooks run arbitrary distro tools.
//!
//! Compiling it with seccompiler takes microseconds (it is a small jump table, not
//! libseccomp's optimiser), so the helper builds it on each run.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Syscalls refused outright with EPERM, by name (as OCI seccomp profiles name them) and
/// number. `export-bundle` writes the same list into its profile.
pub const DENIED: &[(&str, i64)] = &[
    // Loading code into the kernel (init_module(2), kexec_load(2)).
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("bpf", libc::SYS_bpf),
    // Kernel attack surface a hook has no use for (perf_event_open(2), userfaultfd(2)).
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    // open_by_handle_at(2) escapes a bind mount (the "shocker" exploit).
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    // Kernel keyrings are not namespaced (keyctl(2)).
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    // Tracing other processes (ptrace(2), process_vm_*).
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    // Machine state.
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("syslog", libc::SYS_syslog),
    // Changing the mount tree (mount(2), the new mount API, pivot_root(2)).
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("pivot_root", libc::SYS_pivot_root),
    // Joining other namespaces (setns(2)).
    ("setns", libc::SYS_setns),
    // io_uring performs syscalls' work without syscalls, out of this filter's sight, and
    // has been a steady source of kernel privilege escalations (io_uring_setup(2)).
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
];

/// Syscalls refused with EPERM when their first argument (the flags) asks for a new
/// namespace.
pub const NAMESPACE_FLAGGED: &[(&str, i64)] =
    &[("clone", libc::SYS_clone), ("unshare", libc::SYS_unshare)];

/// The namespace flags of clone(2) and unshare(2) that [`NAMESPACE_FLAGGED`] refuses.
pub const NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const ARCH: TargetArch = TargetArch::riscv64;

/// Refused with ENOSYS rather than EPERM: clone3(2), see [`filters`].
pub const NOT_IMPLEMENTED: &[(&str, i64)] = &[("clone3", libc::SYS_clone3)];

/// The two filters to install, in order: the deny list (EPERM), then clone3 → ENOSYS.
/// clone3(2) passes its flags in memory that seccomp cannot inspect, so it is refused with
/// ENOSYS, which makes glibc fall back to clone(2), where the flags are checked.
pub fn filters() -> Result<[BpfProgram; 2], seccompiler::BackendError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&(_, nr)| (nr, Vec::new())).collect();
    for &(_, nr) in NAMESPACE_FLAGGED {
        let per_flag = NAMESPACE_FLAGS
            .iter()
            .map(|&flag| {
                let flag = flag as u32 as u64;
                let cond = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )?;
                SeccompRule::new(vec![cond])
            })
            .collect::<Result<Vec<_>, _>>()?;
        rules.insert(nr, per_flag);
    }
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )?;
    let clone3 = SeccompFilter::new(
        NOT_IMPLEMENTED
            .iter()
            .map(|&(_, nr)| (nr, Vec::new()))
            .collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    Ok([deny.try_into()?, clone3.try_into()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_quickly() {
        let start = std::time::Instant::now();
        let [deny, clone3] = filters().unwrap();
        assert!(deny.len() > 40 && !clone3.is_empty());
        assert!(start.elapsed() < std::time::Duration::from_millis(5));
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = DENIED
            .iter()
            .chain(NAMESPACE_FLAGGED)
            .chain(NOT_IMPLEMENTED)
            .map(|&(name, _)| name)
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
