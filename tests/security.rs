//! The security tests of issue 3: each is a real attempt made from inside the sandbox that
//! must fail, with the host checked unchanged afterwards. Each runs as root and as uid 65534.

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::sandbox::{Fixture, Identity, for_each_identity, host_processes_matching};
use crate::util;

fn digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Runs `script` and asserts it failed; returns its stderr.
fn attempt_fails(f: &Fixture, flags: &[&str], script: &str) -> String {
    let (code, out, err) = f.sh(flags, script);
    assert_ne!(
        code, 0,
        "{:?}: `{script}` succeeded inside the sandbox: {out}",
        f.identity
    );
    assert!(!out.contains("ESCAPED"), "{script}: {out}");
    err
}

#[test]
fn cannot_write_etc_usr_or_the_host_tmp() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("hookbox-escape-{}", std::process::id());
        attempt_fails(&f, &[], &format!("echo x > /etc/{marker} && echo ESCAPED"));
        attempt_fails(&f, &[], &format!("echo x > /usr/{marker} && echo ESCAPED"));
        attempt_fails(&f, &[], "echo x >> /etc/passwd && echo ESCAPED");
        assert!(!Path::new(&format!("/etc/{marker}")).exists());
        assert!(!Path::new(&format!("/usr/{marker}")).exists());
        // The sandbox's /tmp is private: a file written there never reaches the host's.
        let (code, _, err) = f.sh(&[], &format!("echo x > /tmp/{marker} && ls /tmp"));
        assert_eq!(code, 0, "{err}");
        assert!(!Path::new(&format!("/tmp/{marker}")).exists());
        // The test's own directory lives in the host's /tmp and is not there.
        let host_dir = f.env.path().display().to_string();
        attempt_fails(&f, &[], &format!("ls {host_dir} && echo ESCAPED"));
    });
}

#[test]
fn cannot_reach_other_layers_or_the_store() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let other_layer = f.env.path().join("root/units/other-0/layers/1");
        std::fs::create_dir_all(&other_layer).unwrap();
        std::fs::write(other_layer.join("file"), "theirs\n").unwrap();
        if identity == Identity::Nobody {
            f.give_to_nobody(&f.env.root());
        }
        let store = f.env.root().display().to_string();
        attempt_fails(
            &f,
            &[],
            &format!("echo mine > {}/file && echo ESCAPED", other_layer.display()),
        );
        // The store is not even visible (the sandbox's /tmp is its own tmpfs).
        attempt_fails(&f, &[], &format!("test -e {store} && echo ESCAPED"));
        let (code, _, err) = f.sh(&[], &format!("mkdir -p {store}/charms"));
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            std::fs::read_to_string(other_layer.join("file")).unwrap(),
            "theirs\n"
        );
        assert!(!f.env.root().join("charms").exists());
    });
}

#[test]
fn cannot_read_root_home_or_shadow() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        attempt_fails(&f, &[], "cat /etc/shadow && echo ESCAPED");
        attempt_fails(&f, &[], "ls /root && echo ESCAPED");
        attempt_fails(&f, &[], "ls /home/* && echo ESCAPED");
        attempt_fails(&f, &[], "ls /run/* && echo ESCAPED");
    });
}

#[test]
fn cannot_see_or_signal_host_processes() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}3", std::process::id());
        let mut victim = std::process::Command::new("sh")
            .args(["-c", &format!("exec {marker}")])
            .spawn()
            .unwrap();
        let pid = victim.id();
        // By number, and by signalling everything the sandbox can see.
        let err = attempt_fails(&f, &[], &format!("kill -9 {pid} && echo ESCAPED"));
        assert!(!err.is_empty());
        // Everything it can see, its init (pid 1) included: the runner lives on and reports
        // the command's own exit.
        let (code, out, err) = f.sh(&[], "kill -9 -1; kill -9 1; sleep 0.2; echo alive");
        assert_eq!((code, out.as_str()), (0, "alive\n"), "{identity:?}: {err}");
        assert!(
            victim.try_wait().unwrap().is_none(),
            "{identity:?}: a host process was killed from inside"
        );
        // The runner itself (hookbox sandbox-run) is never visible either.
        let (code, out, _) = f.sh(&[], "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
        assert_eq!(code, 0);
        assert!(!out.contains("sandbox-run"), "{out}");
        assert!(!out.contains(&marker), "{out}");
        victim.kill().unwrap();
        victim.wait().unwrap();
    });
}

#[test]
fn cannot_reach_host_loopback_with_network_none() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let output = f
            .run(
                &["--network", "none"],
                &[
                    "/bin/bash",
                    "-c",
                    &format!("echo hi >/dev/tcp/127.0.0.1/{port} && echo ESCAPED"),
                ],
            )
            .output()
            .unwrap();
        assert!(!output.status.success(), "{identity:?}: {output:?}");
        assert!(
            listener.accept().is_err(),
            "the host listener saw a connection"
        );
    });
}

#[test]
fn cannot_mount_unshare_ptrace_load_modules_or_set_the_hostname() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let host_name = nix::unistd::gethostname().unwrap();
        attempt_fails(&f, &[], "mount -t tmpfs none /tmp && echo ESCAPED");
        attempt_fails(&f, &[], "mount --bind / /tmp && echo ESCAPED");
        // A new user namespace would hand back a full capability set.
        attempt_fails(&f, &[], "unshare -Ur id && echo ESCAPED");
        attempt_fails(&f, &[], "unshare -m true && echo ESCAPED");
        attempt_fails(&f, &[], "strace -o /dev/null true && echo ESCAPED");
        // ptrace(PTRACE_ATTACH, 1) straight from perl, in case strace is missing.
        attempt_fails(
            &f,
            &[],
            "perl -e 'syscall(101, 16, 1, 0, 0) == -1 and die \"ptrace: $!\\n\"' && echo ESCAPED",
        );
        // init_module and finit_module: refused (EPERM), not merely given a bad argument.
        let err = attempt_fails(
            &f,
            &[],
            "perl -e 'syscall(175, 0, 0, 0) == -1 and die \"init_module: $!\\n\"' && echo ESCAPED",
        );
        assert!(err.contains("Operation not permitted"), "{err}");
        let err = attempt_fails(
            &f,
            &[],
            "perl -e 'syscall(313, -1, 0, 0) == -1 and die \"finit_module: $!\\n\"' && echo ESCAPED",
        );
        assert!(err.contains("Operation not permitted"), "{err}");
        attempt_fails(&f, &[], "hostname evil && echo ESCAPED");
        assert_eq!(nix::unistd::gethostname().unwrap(), host_name);
    });
}

#[test]
fn cannot_overwrite_the_runner_binary() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let binary = match identity {
            Identity::Caller => util::binary(),
            Identity::Nobody => f.env.nobody_binary(),
        };
        let before = digest(&binary);
        let bind = format!("{}:/hookbox/bin/hookbox", binary.display());
        let flags = ["--ro-bind", bind.as_str()];
        // Through the bind mount the hook tools use.
        attempt_fails(&f, &flags, "echo x >> /hookbox/bin/hookbox && echo ESCAPED");
        attempt_fails(&f, &flags, "chmod 777 /hookbox/bin/hookbox && echo ESCAPED");
        attempt_fails(
            &f,
            &flags,
            "cp /bin/true /hookbox/bin/hookbox && echo ESCAPED",
        );
        // Through /proc/self/exe of a hook-tool process (the binary itself running).
        attempt_fails(
            &f,
            &flags,
            "/hookbox/bin/hookbox --help >/dev/null; echo x >> /proc/self/exe && echo ESCAPED",
        );
        // Through the sandbox's init: non-dumpable, so /proc/1/exe cannot even be opened.
        attempt_fails(&f, &flags, "cat /proc/1/exe > /dev/null && echo ESCAPED");
        attempt_fails(&f, &flags, "echo x >> /proc/1/exe && echo ESCAPED");
        attempt_fails(&f, &flags, "readlink /proc/1/exe && echo ESCAPED");
        attempt_fails(&f, &flags, "ls /proc/1/fd/ && echo ESCAPED");
        assert_eq!(digest(&binary), before, "{identity:?}: the binary changed");
    });
}

#[test]
fn no_runner_descriptor_is_inherited() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        // ls lists its own descriptors: stdio plus the directory it is reading.
        let output = f
            .run(&[], &["/bin/ls", "-l", "/proc/self/fd/"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let out = String::from_utf8_lossy(&output.stdout);
        let fds: Vec<(&str, &str)> = out
            .lines()
            .filter_map(|l| l.split_once(" -> "))
            .map(|(left, target)| (left.rsplit(' ').next().unwrap(), target))
            .collect();
        assert_eq!(fds.len(), 4, "{identity:?}: {out}");
        assert_eq!(fds[0], ("0", "/dev/null"), "{out}");
        assert!(fds[1].0 == "1" && fds[1].1.starts_with("pipe:"), "{out}");
        assert!(fds[2].0 == "2" && fds[2].1.starts_with("pipe:"), "{out}");
        assert!(
            fds[3].1.starts_with("/proc/") && fds[3].1.ends_with("/fd"),
            "{out}"
        );
    });
}

#[test]
fn a_charm_symlink_to_etc_passwd_resolves_inside() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let before = digest(Path::new("/etc/passwd"));
        attempt_fails(
            &f,
            &[],
            "echo 'evil:x:0:0::/:/bin/sh' >> passwd-link && echo ESCAPED",
        );
        attempt_fails(&f, &[], "cp /dev/null passwd-link && echo ESCAPED");
        assert_eq!(digest(Path::new("/etc/passwd")), before);
        // Replacing the link itself only touches the upper layer.
        let (code, _, err) = f.sh(&[], "rm passwd-link && echo mine > passwd-link");
        assert_eq!(code, 0, "{err}");
        assert_eq!(digest(Path::new("/etc/passwd")), before);
        assert_eq!(
            std::fs::read_to_string(f.upper.join("passwd-link")).unwrap(),
            "mine\n"
        );
    });
}

#[test]
fn the_pids_limit_ends_a_fork_bomb() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}4", std::process::id());
        let started = Instant::now();
        let (code, _, err) = f.sh(
            &["--pids", "32", "--timeout", "20"],
            &format!("i=0; while [ $i -lt 2000 ]; do {marker} & i=$((i+1)); done; echo ESCAPED"),
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_ne!(code, 0, "{identity:?}: {err}");
        if identity == Identity::Caller && util::is_root() {
            assert_eq!(code, 137, "{err}");
            assert!(err.contains("killed by the pids limit"), "{err}");
        }
        assert_eq!(host_processes_matching(&marker), Vec::<String>::new());
    });
}

#[test]
fn the_memory_limit_ends_a_memory_hog() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        // tail keeps the whole (newline-free) input in memory.
        let (code, _, err) = f.sh(
            &["--memory", "64M", "--timeout", "30"],
            "head -c 1G /dev/zero | tail -c 1G > /dev/null && echo ESCAPED",
        );
        assert_ne!(code, 0, "{identity:?}: {err}");
        if identity == Identity::Caller && util::is_root() {
            assert_eq!(code, 137, "{err}");
            assert!(err.contains("killed by the memory limit"), "{err}");
        }
    });
}

#[test]
fn no_process_is_left_behind() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}5", std::process::id());
        let (code, _, err) = f.sh(
            &[],
            &format!(
                "(setsid sh -c '{marker} & {marker}' &) ; nohup {marker} >/dev/null 2>&1 & exit 0"
            ),
        );
        assert_eq!(code, 0, "{err}");
        assert_eq!(host_processes_matching(&marker), Vec::<String>::new());
    });
}

/// io_uring does a syscall's work out of the seccomp filter's sight: io_uring_setup(2) is
/// refused (EPERM) inside, though it works on this host. (The x32 ABI, numbers from
/// 0x40000000 up, is off on this kernel: the filter's decision for it is tested on the BPF
/// program itself, in src/sandbox/seccomp.rs.)
#[test]
fn cannot_set_up_io_uring() {
    let probe =
        "$p = \"\\0\" x 120; $r = syscall(425, 1, $p); print $r < 0 ? \"refused $!\" : \"set up\"";
    let host = std::process::Command::new("perl")
        .args(["-e", probe])
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    if host != "set up" {
        eprintln!(
            "note: io_uring is unavailable on this host ({host}); the check below still runs"
        );
    }
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(&[], &format!("perl -e '{probe}'"));
        assert_eq!(code, 0, "{identity:?}: {err}");
        assert_eq!(out, "refused Operation not permitted", "{identity:?}");
    });
}
