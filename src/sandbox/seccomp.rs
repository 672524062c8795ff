//! The seccomp filter every sandboxed command runs under: a deny list of what a hook never
//! needs (module loading, kexec, bpf, perf, userfaultfd, handle-based opens, keyrings,
//! ptrace, reboot, swap, every mount syscall, new namespaces), answered with EPERM.
//! Everything else is allowed: hooks run arbitrary distro tools.
//!
//! The program is written out directly (one compare per syscall, about 50 instructions, one
//! filter): building it takes microseconds, so the helper builds it on each run, and the
//! kernel checks and compiles it at install time in far less than the ~280 instructions of
//! the two filters seccompiler produced for the same rules.

use seccompiler::{BpfProgram, sock_filter};

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

/// `AUDIT_ARCH_*` of the architecture the filter is built for (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3;

/// x86_64's x32 ABI numbers its syscalls from this bit up, under the same `AUDIT_ARCH`; a
/// deny list that only names x86_64 numbers would let an x32 `mount` through, so every x32
/// syscall is refused (x86_64 only).
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: Option<u32> = Some(0x4000_0000);
#[cfg(not(target_arch = "x86_64"))]
const X32_SYSCALL_BIT: Option<u32> = None;

/// Refused with ENOSYS rather than EPERM: clone3(2), see [`filter`].
pub const NOT_IMPLEMENTED: &[(&str, i64)] = &[("clone3", libc::SYS_clone3)];

// Classic BPF (linux/bpf_common.h, linux/seccomp.h): the few instructions the filter uses
// and the offsets of `struct seccomp_data` it reads.
const LOAD_WORD: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const JUMP_EQUAL: u16 = 0x15; // BPF_JMP (5) | BPF_JEQ (0x10) | BPF_K (0)
const JUMP_GREATER_EQUAL: u16 = 0x35; // BPF_JMP | BPF_JGE (0x30) | BPF_K
const JUMP_ANY_BIT: u16 = 0x45; // BPF_JMP | BPF_JSET (0x40) | BPF_K
const RETURN: u16 = 0x06; // BPF_RET (6) | BPF_K
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// The low 32 bits of `args[0]` (little-endian): clone(2) and unshare(2) flags fit in them.
const FIRST_ARG_OFFSET: u32 = 16;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// The seccomp filter, as one classic BPF program: another architecture is killed; x32
/// syscalls, [`DENIED`] and [`NAMESPACE_FLAGGED`] with any of [`NAMESPACE_FLAGS`] get EPERM;
/// [`NOT_IMPLEMENTED`] gets ENOSYS (clone3(2) passes its flags in memory that seccomp
/// cannot inspect; ENOSYS makes glibc fall back to clone(2), whose flags are checked);
/// everything else is allowed. One compare per listed syscall and a single program keep
/// both its installation and its cost on every syscall of the hook small.
pub fn filter() -> BpfProgram {
    let instruction = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let listed: Vec<(u32, Verdict)> = DENIED
        .iter()
        .map(|&(_, nr)| (nr, Verdict::Deny))
        .chain(
            NAMESPACE_FLAGGED
                .iter()
                .map(|&(_, nr)| (nr, Verdict::CheckFlags)),
        )
        .chain(
            NOT_IMPLEMENTED
                .iter()
                .map(|&(_, nr)| (nr, Verdict::NotImplemented)),
        )
        .map(|(nr, verdict)| {
            (
                u32::try_from(nr).expect("syscall numbers are small"),
                verdict,
            )
        })
        .collect();
    let namespace_flags = NAMESPACE_FLAGS.iter().fold(0u32, |all, &f| all | f as u32);

    // Layout: [arch check] [load nr] [x32 check] [one compare per listed syscall] [allow]
    // [flags check: load arg, test] then the shared returns: allow, deny, ENOSYS.
    let mut program = vec![
        instruction(LOAD_WORD, 0, 0, ARCH_OFFSET),
        instruction(JUMP_EQUAL, 1, 0, AUDIT_ARCH),
        instruction(RETURN, 0, 0, RET_KILL_PROCESS),
        instruction(LOAD_WORD, 0, 0, NR_OFFSET),
    ];
    let compares_start = program.len() + usize::from(X32_SYSCALL_BIT.is_some());
    let flags_check = compares_start + listed.len() + 1;
    let ret_allow = flags_check + 2;
    let ret_deny = ret_allow + 1;
    let ret_enosys = ret_deny + 1;
    // A forward jump from the instruction at `from` to the one at `to`.
    let offset = |from: usize, to: usize| u8::try_from(to - from - 1).expect("jumps are short");
    if let Some(bit) = X32_SYSCALL_BIT {
        let at = program.len();
        program.push(instruction(
            JUMP_GREATER_EQUAL,
            offset(at, ret_deny),
            0,
            bit,
        ));
    }
    for (nr, verdict) in listed {
        let at = program.len();
        let target = match verdict {
            Verdict::Deny => ret_deny,
            Verdict::CheckFlags => flags_check,
            Verdict::NotImplemented => ret_enosys,
        };
        program.push(instruction(JUMP_EQUAL, offset(at, target), 0, nr));
    }
    program.push(instruction(RETURN, 0, 0, RET_ALLOW));
    debug_assert_eq!(program.len(), flags_check);
    program.push(instruction(LOAD_WORD, 0, 0, FIRST_ARG_OFFSET));
    program.push(instruction(JUMP_ANY_BIT, 1, 0, namespace_flags));
    program.push(instruction(RETURN, 0, 0, RET_ALLOW));
    program.push(instruction(RETURN, 0, 0, RET_ERRNO | libc::EPERM as u32));
    program.push(instruction(RETURN, 0, 0, RET_ERRNO | libc::ENOSYS as u32));
    debug_assert_eq!(program.len(), ret_enosys + 1);
    program
}

/// What the filter does with a listed syscall.
#[derive(Clone, Copy)]
enum Verdict {
    Deny,
    CheckFlags,
    NotImplemented,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the classic BPF `program` on a `struct seccomp_data` as the kernel would.
    fn evaluate(program: &[sock_filter], arch: u32, nr: u32, first_arg: u64) -> u32 {
        let word = |offset: u32| match offset {
            NR_OFFSET => nr,
            ARCH_OFFSET => arch,
            FIRST_ARG_OFFSET => first_arg as u32,
            other => panic!("unexpected load at {other}"),
        };
        let (mut pc, mut accumulator) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            pc += 1;
            match i.code {
                LOAD_WORD => accumulator = word(i.k),
                RETURN => return i.k,
                JUMP_EQUAL | JUMP_GREATER_EQUAL | JUMP_ANY_BIT => {
                    let taken = match i.code {
                        JUMP_EQUAL => accumulator == i.k,
                        JUMP_GREATER_EQUAL => accumulator >= i.k,
                        _ => accumulator & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                other => panic!("unexpected instruction {other:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_refuses_what_it_lists_and_allows_the_rest() {
        let program = filter();
        assert!(program.len() < 64, "{} instructions", program.len());
        let run = |nr: i64, arg: u64| evaluate(&program, AUDIT_ARCH, nr as u32, arg);
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for &(name, nr) in DENIED {
            assert_eq!(run(nr, 0), eperm, "{name}");
        }
        for &(name, nr) in NAMESPACE_FLAGGED {
            for &flag in NAMESPACE_FLAGS {
                assert_eq!(
                    run(nr, flag as u32 as u64 | 0x11),
                    eperm,
                    "{name} {flag:#x}"
                );
            }
            assert_eq!(
                run(nr, libc::SIGCHLD as u64),
                RET_ALLOW,
                "{name} without namespaces"
            );
        }
        assert_eq!(run(libc::SYS_clone3, 0), RET_ERRNO | libc::ENOSYS as u32);
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_execve,
            libc::SYS_openat,
        ] {
            assert_eq!(run(nr, 0), RET_ALLOW, "{nr}");
        }
        if let Some(bit) = X32_SYSCALL_BIT {
            assert_eq!(run(i64::from(bit) | libc::SYS_read, 0), eperm, "x32 read");
        }
        assert_eq!(
            evaluate(&program, 0x4000_0003, libc::SYS_read as u32, 0),
            RET_KILL_PROCESS
        );
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
