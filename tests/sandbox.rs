//! `hookbox sandbox-run` through the real binary: the overlay, the namespaces, the identity,
//! the environment, setup failures, timeouts and teardown. Every test runs as root and, when
//! the tests run as root, again as uid 65534 (rootless).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{self, TestEnv};

pub use crate::util::{Identity, identities};

/// A test's sandbox: one lower layer with a few files, an empty upper dir.
pub struct Fixture {
    pub env: TestEnv,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub identity: Identity,
}

impl Fixture {
    pub fn new(identity: Identity) -> Self {
        let env = TestEnv::new();
        let lower = env.path().join("lower");
        let upper = env.path().join("upper");
        std::fs::create_dir_all(lower.join("hooks")).unwrap();
        std::fs::create_dir(&upper).unwrap();
        std::fs::write(lower.join("metadata.yaml"), "name: test\n").unwrap();
        std::fs::write(lower.join("hooks/install"), "#!/bin/sh\necho installed\n").unwrap();
        std::fs::set_permissions(
            lower.join("hooks/install"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", lower.join("passwd-link")).unwrap();
        let fixture = Self {
            env,
            lower,
            upper,
            identity,
        };
        match identity {
            Identity::Nobody => {
                fixture.give_to_nobody(&fixture.lower);
                fixture.give_to_nobody(&fixture.upper);
            }
            // As root the lower stays owned by host root, as a charm base in the store is:
            // sandbox-run idmaps it onto the id range.
            Identity::Caller => {}
        }
        fixture
    }

    /// Makes `path` (recursively) belong to uid/gid 65534, for the rootless runs.
    pub fn give_to_nobody(&self, path: &Path) {
        let status = std::process::Command::new("chown")
            .args(["-R", "-h", "65534:65534"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `hookbox sandbox-run --lower L --upper U [flags] -- CMD...` as this fixture's identity.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> assert_cmd::Command {
        self.run_layers(&[self.lower.as_path()], flags, command)
    }

    pub fn run_layers(
        &self,
        lowers: &[&Path],
        flags: &[&str],
        command: &[&str],
    ) -> assert_cmd::Command {
        let mut cmd = match self.identity {
            Identity::Caller => self.env.hookbox(),
            Identity::Nobody => self.env.hookbox_as_nobody(),
        };
        cmd.arg("sandbox-run");
        for lower in lowers {
            cmd.arg("--lower").arg(lower);
        }
        cmd.arg("--upper").arg(&self.upper);
        cmd.args(flags).arg("--").args(command);
        cmd.timeout(Duration::from_secs(60));
        cmd
    }

    /// `hookbox sandbox-run` as [`Fixture::run`] builds it, started with its stdout piped.
    pub fn spawn(&self, flags: &[&str], command: &[&str]) -> std::process::Child {
        let mut cmd = match self.identity {
            Identity::Caller => std::process::Command::new(util::binary()),
            Identity::Nobody => util::as_nobody(self.env.nobody_binary()),
        };
        cmd.arg("sandbox-run")
            .arg("--lower")
            .arg(&self.lower)
            .arg("--upper")
            .arg(&self.upper)
            .args(flags)
            .arg("--")
            .args(command)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The default work dirs (`.hookbox-work-*` beside the upper) that are still there.
    pub fn work_dirs_left(&self) -> Vec<String> {
        std::fs::read_dir(self.env.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".hookbox-work-"))
            .collect()
    }

    /// Runs `sh -c SCRIPT` and returns (exit code, stdout, stderr).
    pub fn sh(&self, flags: &[&str], script: &str) -> (i32, String, String) {
        let output = self
            .run(flags, &["/bin/sh", "-c", script])
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Every test's body runs once per identity, after the probe.
pub fn for_each_identity(test: impl Fn(Identity)) {
    if !util::sandbox_available() {
        return;
    }
    for identity in identities() {
        test(identity);
    }
}

/// The command lines of every host process, to look for a marker.
pub fn host_processes_matching(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(cmdline);
            }
        }
    }
    found
}

#[test]
fn writes_land_in_the_upper_dir_and_lowers_are_untouched() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(
            &[],
            "cat metadata.yaml && echo new > created && echo changed >> metadata.yaml \
             && rm hooks/install && mkdir d && echo ok",
        );
        assert_eq!(code, 0, "{identity:?}: {err}");
        assert_eq!(out, "name: test\nok\n");
        assert_eq!(
            std::fs::read_to_string(f.lower.join("metadata.yaml")).unwrap(),
            "name: test\n"
        );
        assert!(f.lower.join("hooks/install").exists());
        assert!(!f.lower.join("created").exists());
        assert_eq!(
            std::fs::read_to_string(f.upper.join("created")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_to_string(f.upper.join("metadata.yaml")).unwrap(),
            "name: test\nchanged\n"
        );
        // A deleted lower file becomes a whiteout: a 0/0 character device.
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let whiteout = std::fs::symlink_metadata(f.upper.join("hooks/install")).unwrap();
        assert!(whiteout.file_type().is_char_device(), "{identity:?}");
        assert_eq!(whiteout.rdev(), 0);
        assert!(f.upper.join("d").is_dir());
    });
}

/// As root: a charm base owned by host root is idmapped onto the id range, so the hook (root
/// of the range) creates, modifies, chmods and deletes in the charm dir; the upper gets the
/// range's root as owner and the lower is untouched. A second run over that upper committed
/// as an unshifted lower, above the idmapped base, can still write what the first one wrote.
#[test]
fn root_mode_hooks_own_a_root_owned_charm_base() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !util::sandbox_available() || !util::require_root() {
        return;
    }
    let f = Fixture::new(Identity::Caller);
    // A read-only charm root, as charms are often shipped.
    std::fs::write(f.lower.join("config.yaml"), "options: {}\n").unwrap();
    std::fs::set_permissions(&f.lower, std::fs::Permissions::from_mode(0o555)).unwrap();
    let lower_before = tree_listing(&f.lower);
    let (code, out, err) = f.sh(
        &[],
        "id -u && stat -c '%u %g' . metadata.yaml && echo new > created \
         && echo changed >> metadata.yaml && chmod 600 metadata.yaml && rm config.yaml \
         && mkdir state && echo ok",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n0 0\n0 0\nok\n");

    let (range_uid, range_gid) = hookbox::sandbox::IdMapping::for_current_user().host_root();
    let owner = |path: &Path| {
        let meta = std::fs::symlink_metadata(path).unwrap();
        (meta.uid(), meta.gid())
    };
    for entry in ["created", "metadata.yaml", "config.yaml", "state"] {
        assert_eq!(
            owner(&f.upper.join(entry)),
            (range_uid, range_gid),
            "{entry}"
        );
    }
    let metadata = std::fs::metadata(f.upper.join("metadata.yaml")).unwrap();
    assert_eq!(metadata.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(f.upper.join("metadata.yaml")).unwrap(),
        "name: test\nchanged\n"
    );
    let whiteout = std::fs::symlink_metadata(f.upper.join("config.yaml")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    // The lower tree: same files, contents, modes and owner (host root).
    assert_eq!(tree_listing(&f.lower), lower_before);
    assert_eq!(owner(&f.lower), (0, 0));

    // Second run: the first upper as a committed (unshifted) layer over the idmapped base.
    let upper2 = f.env.path().join("upper2");
    std::fs::create_dir(&upper2).unwrap();
    let output = f
        .env
        .hookbox()
        .arg("sandbox-run")
        .arg("--lower")
        .arg(&f.upper)
        .arg("--lower")
        .arg(&f.lower)
        .arg("--upper")
        .arg(&upper2)
        .args(["--", "/bin/sh", "-c"])
        .arg(
            "stat -c '%u' created && stat -c '%u %a' metadata.yaml && test ! -e config.yaml \
             && echo again >> created && echo again >> metadata.yaml && chmod 644 metadata.yaml \
             && touch state/file hooks/new && cat metadata.yaml",
        )
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0\n0 600\nname: test\nchanged\nagain\n"
    );
    assert_eq!(
        std::fs::read_to_string(upper2.join("created")).unwrap(),
        "new\nagain\n"
    );
    for entry in ["created", "metadata.yaml", "state/file", "hooks/new"] {
        assert_eq!(
            owner(&upper2.join(entry)),
            (range_uid, range_gid),
            "{entry}"
        );
    }
    assert_eq!(tree_listing(&f.lower), lower_before);
    std::fs::set_permissions(&f.lower, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every entry under `root` with its type, mode, owner and (for files) contents, sorted.
fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut entries = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_file() {
                std::fs::read_to_string(&path).unwrap_or_default()
            } else {
                String::new()
            };
            if meta.is_dir() {
                pending.push(path.clone());
            }
            entries.push(format!(
                "{} {:o} {}:{} {content:?}",
                path.strip_prefix(root).unwrap().display(),
                meta.mode(),
                meta.uid(),
                meta.gid()
            ));
        }
    }
    entries.sort();
    entries
}

#[test]
fn fifty_layers_stack_top_first() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let mut layers = Vec::new();
        for i in 0..50 {
            let layer = f.env.path().join(format!("layer-{i:02}"));
            std::fs::create_dir(&layer).unwrap();
            std::fs::write(layer.join(format!("only-{i}")), format!("{i}\n")).unwrap();
            std::fs::write(layer.join("shared"), format!("{i}\n")).unwrap();
            if identity == Identity::Nobody {
                f.give_to_nobody(&layer);
            }
            layers.push(layer);
        }
        let lowers: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
        let output = f
            .run_layers(
                &lowers,
                &[],
                &["/bin/sh", "-c", "cat shared only-0 only-49; ls | wc -l"],
            )
            .output()
            .unwrap();
        assert!(output.status.success(), "{identity:?}: {output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "0\n0\n49\n51\n");
    });
}

#[test]
fn namespaces_are_separate() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}", std::process::id());
        let mut host_child = std::process::Command::new("sh")
            .args(["-c", &format!("exec {marker}")])
            .spawn()
            .unwrap();
        // A pattern that does not match the script's own command line.
        let pattern = format!("sleep 30[0].{}", std::process::id());
        let script = format!(
            "hostname; echo $$; readlink /proc/1/exe 2>/dev/null || echo init-hidden; \
             cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c '{pattern}'; \
             ls /proc | grep -c '^[0-9]'"
        );
        let (code, out, err) = f.sh(&["--hostname", "unit-7"], &script);
        host_child.kill().unwrap();
        host_child.wait().unwrap();
        assert_eq!(code, 0, "{identity:?}: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "unit-7");
        // The shell is pid 3 of a fresh pid namespace: pid 1 is the sandbox's init, pid 2
        // was its child that made the network namespace (reaped before the shell started).
        assert_eq!(lines[1], "3");
        // The init is non-dumpable: its /proc entries are not readable.
        assert_eq!(lines[2], "init-hidden");
        assert_eq!(lines[3], "0", "a host process is visible");
        let visible: u32 = lines[4].parse().unwrap();
        assert!(visible <= 6, "{visible} processes visible");
        assert_ne!(
            nix::unistd::gethostname().unwrap().to_string_lossy(),
            "unit-7"
        );
    });
}

#[test]
fn mountinfo_does_not_name_where_the_layers_live_on_the_host() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(&[], "cat /proc/self/mountinfo");
        assert_eq!(code, 0, "{identity:?}: {err}");
        let overlay = out
            .lines()
            .find(|line| line.contains(" - overlay "))
            .unwrap_or_else(|| panic!("{identity:?}: no overlay in\n{out}"));
        // The layers are named from the directory that holds them all.
        assert!(
            overlay.contains(",upperdir=/upper,"),
            "{identity:?}: {overlay}"
        );
        let host = f.env.path().to_str().unwrap();
        assert!(!out.contains(host), "{identity:?}: {host} named in\n{out}");
    });
}

#[test]
fn output_is_kept_up_to_its_limit_and_the_rest_counted() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        // 3,000,000 bytes without a newline, then a newline and one more line.
        let script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after";
        let output = f
            .run(&["--json"], &["/bin/sh", "-c", script])
            .output()
            .unwrap();
        assert!(output.status.success(), "{identity:?}: {output:?}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let lines = report["stdout"].as_array().unwrap();
        // The first MiB, cut where it ends; nothing after it.
        assert_eq!(lines.len(), 1, "{identity:?}");
        let text = lines[0]["text"].as_str().unwrap();
        assert_eq!(text.len(), 1 << 20);
        assert!(text.bytes().all(|b| b == b'x'));
        assert_eq!(report["dropped_bytes"], 3_000_007 - (1 << 20));
    });
}

#[test]
fn no_network_with_network_none() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
        let bash = |flags: &[&str]| {
            f.run(flags, &["/bin/bash", "-c", &script])
                .output()
                .unwrap()
        };
        let isolated = bash(&["--network", "none"]);
        assert!(!isolated.status.success(), "{identity:?}: {isolated:?}");
        assert!(!String::from_utf8_lossy(&isolated.stdout).contains("connected"));
        // The same attempt with the host's network does connect: the test is real.
        let shared = bash(&["--network", "host"]);
        assert!(shared.status.success(), "{identity:?}: {shared:?}");
        // Loopback inside the private namespace is up.
        let loopback = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); \
                        socket.create_connection(s.getsockname()); print('ok')";
        let output = f
            .run(&[], &["/usr/bin/python3", "-c", loopback])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "ok\n",
            "{output:?}"
        );
    });
}

#[test]
fn identity_is_root_inside_and_never_host_root() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(
            &[],
            "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
        );
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(&lines[..2], &["0", "0"]);
        for map in &lines[2..] {
            let fields: Vec<u64> = map.split_whitespace().map(|n| n.parse().unwrap()).collect();
            assert_eq!(fields[0], 0, "{map}");
            assert_ne!(fields[1], 0, "hook root is host root: {map}");
            if identity == Identity::Nobody {
                assert_eq!(fields[1..], [65534, 1], "{map}");
            }
        }
    });
}

#[test]
fn environment_is_exactly_the_spec() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let output = f
            .run(&["--env", "JUJU_UNIT_NAME=app/0"], &["/usr/bin/env"])
            .env("LEAKED_FROM_HOST", "1")
            .output()
            .unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
             LANG=C.UTF-8\nJUJU_UNIT_NAME=app/0\n"
        );
        let (_, out, _) = f.sh(&[], "pwd");
        assert_eq!(out, "/var/lib/juju/agents/unit-sandbox-0/charm\n");
    });
}

#[test]
fn exit_code_and_output_pass_through() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(&[], "echo out; echo err >&2; exit 7");
        assert_eq!((code, out.as_str(), err.as_str()), (7, "out\n", "err\n"));
        let output = f
            .run(
                &["--json"],
                &["/bin/sh", "-c", "echo one; echo two; exit 3"],
            )
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["outcome"]["kind"], "exited");
        assert_eq!(report["outcome"]["code"], 3);
        assert_eq!(report["stdout"][1]["text"], "two");
        assert!(report["stdout"][0]["at_ms"].as_f64().unwrap() > 0.0);
    });
}

#[test]
fn setup_failure_exits_5_naming_the_step() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let missing = f.env.path().join("no-such-layer");
        let output = f
            .run_layers(&[missing.as_path()], &[], &["/bin/true"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(5), "{output:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            err.contains("sandbox setup failed: mount overlay at /var/lib/juju/agents/unit-sandbox-0/charm: lower layer")
                && err.contains("ENOENT"),
            "{err}"
        );
        // With --json the failure is also a JSON object on stdout.
        let output = f
            .run_layers(&[missing.as_path()], &["--json"], &["/bin/true"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(5), "{output:?}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["exit_code"], 5);
        let error = report["error"].as_str().unwrap();
        assert!(
            error.contains("lower layer") && error.contains("ENOENT"),
            "{error}"
        );
    });
}

#[test]
fn the_charm_path_is_where_the_overlay_appears_and_must_be_its_own() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, out, err) = f.sh(
            &["--charm-path", "/opt/charm"],
            "pwd; cat metadata.yaml; ls /var/lib/juju 2>&1 | grep -c 'No such'",
        );
        assert_eq!(code, 0, "{identity:?}: {err}");
        assert_eq!(out, "/opt/charm\nname: test\n1\n");
        // Not the root, not over the image or the sandbox's own /proc and /dev: refused as
        // usage (exit 2) naming the path, before anything runs.
        for (path, says) in [
            ("/", "would cover the whole sandbox"),
            ("/usr/charm", "inside the sandbox's /usr"),
            ("/proc", "inside the sandbox's /proc"),
        ] {
            let output = f
                .run(&["--charm-path", path], &["/bin/true"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{identity:?} {path}: {err}");
            assert!(err.contains(says), "{identity:?} {path}: {err}");
        }
    });
}

#[test]
fn orphans_are_reaped() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        // Five background children whose parent exits at once: the sandbox's init inherits
        // them and must reap them when they exit.
        let script = "sh -c 'for i in 1 2 3 4 5; do sleep 0.1 & done'; sleep 0.6; \
                      cat /proc/[0-9]*/stat | cut -d' ' -f3 | grep -c Z";
        let (_, out, err) = f.sh(&[], script);
        assert_eq!(out, "0\n", "{identity:?}: zombies left: {err}");
    });
}

#[test]
fn the_cpu_limit_is_a_cgroup_quota_or_a_warning() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let runner = f.spawn(&["--cpu", "0.25", "--json"], &["/bin/sh", "-c", "sleep 1"]);
        // As root, the run's cpu cgroup (v1 here) carries the quota while it runs.
        let as_root = identity == Identity::Caller && util::is_root();
        if as_root {
            let deadline = Instant::now() + Duration::from_secs(10);
            let quota = loop {
                let dirs: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/cpu/hookbox")
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                let quota = dirs.iter().find_map(|dir| {
                    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
                    let pid = runner.id().to_string();
                    let ours = procs.lines().any(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/status"))
                            .is_ok_and(|s| s.lines().any(|l| l == format!("PPid:\t{pid}")))
                    });
                    ours.then(|| std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok())?
                });
                if let Some(quota) = quota {
                    break quota;
                }
                assert!(
                    Instant::now() < deadline,
                    "no cpu cgroup of the run appeared"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(quota.trim(), "25000");
        }
        let output = runner.wait_with_output().unwrap();
        assert!(output.status.success(), "{identity:?}: {output:?}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let warnings = report["warnings"].as_array().unwrap();
        if as_root {
            assert!(warnings.is_empty(), "{warnings:?}");
        } else {
            assert!(
                warnings
                    .iter()
                    .any(|w| w.as_str().unwrap().contains("cpu limit is not enforced")),
                "{identity:?}: {warnings:?}"
            );
        }
    });
}

#[test]
fn a_fallback_warning_is_said_once_in_plain_text() {
    for_each_identity(|identity| {
        if identity == Identity::Caller && util::is_root() {
            return; // as root here every limit has a cgroup: nothing to warn about
        }
        let f = Fixture::new(identity);
        for verbose in [false, true] {
            let flags: &[&str] = if verbose {
                &["--cpu", "0.5", "-v"]
            } else {
                &["--cpu", "0.5"]
            };
            let output = f.run(flags, &["/bin/true"]).output().unwrap();
            assert!(output.status.success(), "{output:?}");
            let err = String::from_utf8_lossy(&output.stderr);
            assert_eq!(err.matches("cpu limit is not enforced").count(), 1, "{err}");
            assert!(!err.contains('\x1b'), "escape codes in {err:?}");
        }
    });
}

#[test]
fn missing_command_is_a_failed_command() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let output = f.run(&[], &["no-such-command"]).output().unwrap();
        assert_eq!(output.status.code(), Some(127));
        assert!(String::from_utf8_lossy(&output.stderr).contains("not found in PATH"));
    });
}

#[test]
fn timeout_kills_the_tree() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}1", std::process::id());
        let started = Instant::now();
        let (code, _, err) = f.sh(&["--timeout", "1"], &format!("{marker} & {marker}"));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(code, 124, "{err}");
        assert!(err.contains("timed out after 1s"), "{err}");
        assert_eq!(host_processes_matching(&marker), Vec::<String>::new());
    });
}

#[test]
fn background_child_holding_stdout_does_not_hang_and_does_not_survive() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let marker = format!("sleep 300.{}2", std::process::id());
        let started = Instant::now();
        let (code, out, err) = f.sh(&[], &format!("setsid {marker} & echo started"));
        assert!(started.elapsed() < Duration::from_secs(10), "the run hung");
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, "started\n");
        assert_eq!(host_processes_matching(&marker), Vec::<String>::new());
    });
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    if !util::sandbox_available() {
        return;
    }
    let f = Fixture::new(Identity::Caller);
    let mut child = std::process::Command::new(util::binary())
        .arg("sandbox-run")
        .arg("--lower")
        .arg(&f.lower)
        .arg("--upper")
        .arg(&f.upper)
        .args([
            "--",
            "/bin/sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut ready).unwrap();
    // The sandbox's init is the runner's child (the helper that forked it has exited and been
    // reaped); send SIGTERM to it.
    let init =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .unwrap();
    let init: i32 = init.split_whitespace().last().unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn sigint_and_sigterm_to_the_runner_reach_the_command() {
    for_each_identity(|identity| {
        for (signal, name) in [
            (nix::sys::signal::Signal::SIGINT, "INT"),
            (nix::sys::signal::Signal::SIGTERM, "TERM"),
        ] {
            let f = Fixture::new(identity);
            let script = format!(
                "trap 'echo got-{name}; exit 42' {name}; echo ready; while :; do sleep 0.05; done"
            );
            let mut runner = f.spawn(&[], &["/bin/sh", "-c", &script]);
            let mut stdout = runner.stdout.take().unwrap();
            let mut ready = [0u8; 6];
            std::io::Read::read_exact(&mut stdout, &mut ready).unwrap();
            let pid = nix::unistd::Pid::from_raw(runner.id() as i32);
            nix::sys::signal::kill(pid, signal).unwrap();
            let status = runner.wait().unwrap();
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
            // The command's trap ran, its status is the run's, and the run was cleaned up.
            assert_eq!(rest, format!("got-{name}\n"), "{identity:?} {name}");
            assert_eq!(status.code(), Some(42), "{identity:?} {name}");
            assert_eq!(
                f.work_dirs_left(),
                Vec::<String>::new(),
                "{identity:?} {name}"
            );
        }
    });
}

#[test]
fn a_work_dir_is_reusable_after_its_runner_was_killed() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let work = f.env.path().join("work");
        std::fs::create_dir(&work).unwrap();
        if identity == Identity::Nobody {
            f.give_to_nobody(&work);
        }
        let work_flag = ["--work", work.to_str().unwrap()];
        let mut runner = f.spawn(&work_flag, &["/bin/sh", "-c", "echo ready; sleep 60"]);
        let mut ready = [0u8; 6];
        std::io::Read::read_exact(runner.stdout.as_mut().unwrap(), &mut ready).unwrap();
        runner.kill().unwrap();
        runner.wait().unwrap();
        // The killed run's overlay left `work/` (with overlayfs's volatile marker) behind.
        assert!(work.join("work").exists(), "{identity:?}");
        let (code, out, err) = {
            let output = f
                .run(&work_flag, &["/bin/sh", "-c", "echo again"])
                .output()
                .unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        assert_eq!(code, Some(0), "{identity:?}: {err}");
        assert_eq!(out, "again\n");
    });
}

/// The overlay's work dir (beside the upper, with overlayfs's mode-000 `work/` in it) is
/// removed when the run ends.
#[test]
fn the_work_dir_is_removed_after_the_run() {
    for_each_identity(|identity| {
        let f = Fixture::new(identity);
        let (code, _, err) = f.sh(&[], "echo x > written && mkdir -p d/e && rm -r d");
        assert_eq!(code, 0, "{identity:?}: {err}");
        assert_eq!(f.work_dirs_left(), Vec::<String>::new(), "{identity:?}");
    });
}
