//! The unit lifecycle through the real CLI in real sandboxes: deploy, hooks, handler
//! discovery, environment, hook tools, failures and resolution, crash recovery and
//! concurrency (DESIGN.md rules 1-7 and 14), as root and as uid 65534.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, Identity, TestEnv};

mod crash;
mod handlers;
mod lifecycle;
mod relations;
mod shell;
mod upgrade;

/// A test's world plus how hookbox is run.
pub struct Units {
    pub env: TestEnv,
    pub mode: Identity,
}

impl Units {
    /// A fresh state root; `None` (test skipped) when sandboxes cannot run here, or when
    /// `mode` is Nobody and the tests do not run as root.
    pub fn new(mode: Identity) -> Option<Self> {
        if !util::sandbox_available() {
            return None;
        }
        if mode == Identity::Nobody && !util::require_root() {
            return None;
        }
        Some(Self {
            env: TestEnv::new(),
            mode,
        })
    }

    /// `hookbox --root ROOT` as the mode's user.
    pub fn hb(&self) -> assert_cmd::Command {
        match self.mode {
            Identity::Caller => self.env.hookbox(),
            Identity::Nobody => self.env.hookbox_as_nobody(),
        }
    }

    /// The same command as a std `Command` (to spawn and kill).
    pub fn command(&self) -> Command {
        let mut cmd = match self.mode {
            Identity::Caller => Command::new(util::binary()),
            Identity::Nobody => {
                let mut cmd = util::as_nobody(self.env.nobody_binary());
                cmd.env("HOME", self.env.path());
                cmd
            }
        };
        cmd.arg("--root").arg(self.env.root());
        cmd.env_remove("HOOKBOX_ROOT").env_remove("HOOKBOX_LOG");
        cmd
    }

    /// Runs hookbox with `args`; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.hb().args(args).output().expect("run hookbox");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs hookbox and asserts the exit code.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let (got, stdout, stderr) = self.run(args);
        assert_eq!(
            got, code,
            "hookbox {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    /// Runs `hookbox ARGS` with `HOOKBOX_FAILPOINT=point` and checks that the failpoint
    /// killed it (SIGKILL).
    pub fn kill_at(&self, args: &[&str], point: &str) {
        use std::os::unix::process::ExitStatusExt;
        let status = self
            .command()
            .args(args)
            .env("HOOKBOX_FAILPOINT", point)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "hookbox {args:?}: failpoint {point} was not reached"
        );
    }

    /// `status --json` of one unit.
    pub fn unit_status(&self, unit: &str) -> Value {
        let text = self.expect(&["status", unit, "--json"], 0);
        let json: Value = serde_json::from_str(&text).unwrap();
        let app = unit.split('/').next().unwrap();
        json["applications"][app]["units"][unit].clone()
    }

    /// `history --json`.
    pub fn history(&self, unit: &str) -> Vec<Value> {
        let text = self.expect(&["history", unit, "--json"], 0);
        serde_json::from_str(&text).unwrap()
    }

    /// A full listing of the unit's charm dir as its hooks see it (names, types, modes,
    /// symlink targets, file hashes), taken inside `shell`.
    pub fn tree(&self, unit: &str) -> String {
        self.expect(
            &[
                "shell",
                unit,
                "--",
                "sh",
                "-c",
                "find . -exec stat -c '%n %F %a' {} + | LC_ALL=C sort; find . -type l -exec readlink {} + | LC_ALL=C sort; find . -type f -exec sha256sum {} + | LC_ALL=C sort",
            ],
            0,
        )
    }

    /// A file of the unit's charm dir, read inside `shell` (None when absent).
    pub fn read(&self, unit: &str, path: &str) -> Option<String> {
        let (code, out, _) = self.run(&["shell", unit, "--", "cat", path]);
        (code == 0).then_some(out)
    }
}

/// Writes a charm directory under the test dir: `metadata.yaml` naming it, then `files`
/// (path, content, mode; content starting with `->` makes a symlink to the rest).
pub fn write_charm(
    env: &TestEnv,
    name: &str,
    extra_meta: &str,
    files: &[(&str, &str, u32)],
) -> PathBuf {
    let dir = env.path().join("charms-src").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("metadata.yaml"),
        format!("name: {name}\nsummary: test\ndescription: test charm\n{extra_meta}"),
    )
    .unwrap();
    for (path, content, mode) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        if let Some(target) = content.strip_prefix("->") {
            std::os::unix::fs::symlink(target, &file).unwrap();
        } else {
            std::fs::write(&file, content).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
    }
    let mut d = dir.as_path();
    while d != env.path() {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d = d.parent().unwrap();
    }
    dir
}

/// The example charm, copied so uid 65534 can read it.
fn hello(env: &TestEnv) -> PathBuf {
    let to = env.path().join("hello");
    let status = Command::new("cp")
        .args(["-a", concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello")])
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&to)
        .status()
        .unwrap();
    to
}

/// A charm exercising the tools, failure and the charm dir: `update-status` writes,
/// deletes and chmods files, sets a status, then fails when `fail` is true unless the
/// operator created `fixed`.
pub fn tricky_charm(env: &TestEnv) -> PathBuf {
    let common = "#!/bin/sh\nset -eu\n";
    let update = format!(
        "{common}echo written > written\nrm -f doomed\nchmod 600 data.txt\nmkdir -p state\necho \"$JUJU_HOOK_NAME\" > state/last\nstatus-set active \"updated\"\nopen-port 8080/tcp\nif [ \"$(config-get fail)\" = True ] && [ ! -e fixed ]; then echo failing >&2; exit 3; fi\n"
    );
    let files: Vec<(&str, String, u32)> = vec![
        ("config.yaml", "options:\n  fail:\n    type: boolean\n    default: false\n    description: fail update-status\n".into(), 0o644),
        ("data.txt", "data\n".into(), 0o644),
        ("doomed", "doomed\n".into(), 0o644),
        ("hooks/install", format!("{common}mkdir -p state\nenv > state/env\necho \"$0\" > state/argv0\npwd > state/cwd\nhostname > state/hostname\n")
            , 0o755),
        ("hooks/start", format!("{common}status-set active started\n"), 0o755),
        ("hooks/update-status", update, 0o755),
        ("hooks/stop", "->../src/stop.py".into(), 0o755),
        ("src/stop.py", "#!/usr/bin/env python3\nimport subprocess\nsubprocess.run(['juju-log', 'stopping from python'], check=True)\nopen('stopped', 'w').write('yes')\n".into(), 0o755),
        ("actions/noexec-action", format!("{common}exit 0\n"), 0o644),
        ("actions/background", format!("{common}sh -c 'sleep 1000; true' hookbox-bg-marker >/dev/null 2>&1 &\necho started\n"), 0o755),
        ("actions.yaml", "greet:\n  description: say hi\n  params:\n    who:\n      type: string\n      default: world\nbackground:\n  description: leave a child behind\nnoexec-action:\n  description: not executable\n".into(), 0o644),
        ("actions/greet", format!("{common}action-set greeting=\"hi $(action-get who)\"\naction-log working\n"), 0o755),
    ];
    let files: Vec<(&str, &str, u32)> =
        files.iter().map(|(p, c, m)| (*p, c.as_str(), *m)).collect();
    write_charm(env, "tricky", "", &files)
}

fn deploy_hello(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = hello(&u.env);
    let out = u.expect(
        &["deploy", charm.to_str().unwrap(), "hello", "--units", "2"],
        0,
    );
    assert!(out.contains("hello/0 start: ok"), "{out}");
    for unit in ["hello/0", "hello/1"] {
        let status = u.unit_status(unit);
        assert_eq!(status["agent_status"], "idle", "{status}");
        assert_eq!(status["workload"]["status"], "active", "{status}");
        assert_eq!(status["workload"]["message"], "Hello world!", "{status}");
        assert_eq!(status["charm"]["name"], "hello");
        assert_eq!(status["charm"]["revision"], 3);
        assert!(status["error"].is_null());
    }
    assert_eq!(u.unit_status("hello/0")["leader"], true);
    assert_eq!(u.unit_status("hello/1")["leader"], false);
    let history = u.history("hello/0");
    let hooks: Vec<&str> = history
        .iter()
        .map(|r| r["hook"].as_str().unwrap())
        .collect();
    // The charm's peer relation exists from deploy: created after install, then the other
    // unit joins after start.
    assert_eq!(
        hooks,
        [
            "install",
            "cluster-relation-created",
            "leader-elected",
            "config-changed",
            "start",
            "cluster-relation-joined",
            "cluster-relation-changed"
        ]
    );
    assert_eq!(history[2]["outcome"], "missing");
    for record in &history {
        assert!(
            record["context_id"]
                .as_str()
                .unwrap()
                .starts_with("hello/0-")
        );
        assert_eq!(record["charm_revision"], 3);
    }
    let hooks1: Vec<Value> = u.history("hello/1");
    assert_eq!(hooks1.len(), 6, "only the leader runs leader-elected");
    // Rule 14: the same charm again changes nothing.
    let out = u.expect(&["deploy", charm.to_str().unwrap(), "hello"], 0);
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(u.history("hello/0").len(), 7);
    // Config: validated, stored, config-changed runs.
    u.expect(&["config", "hello", "shout=maybe"], 2);
    u.expect(&["config", "hello", "shout=true", "name=juju"], 0);
    assert_eq!(
        u.read("hello/0", "state/greeting").unwrap().trim(),
        "HELLO JUJU!"
    );
    let settings: Value =
        serde_json::from_str(&u.expect(&["config", "hello", "--json"], 0)).unwrap();
    assert_eq!(settings["name"]["value"], "juju");
    assert_eq!(settings["name"]["source"], "user");
    assert_eq!(settings["greeting"]["source"], "default");
    // Logs keep juju-log lines.
    let log = u.expect(&["log", "hello/0", "--hook", "config-changed"], 0);
    assert!(log.contains("greeting is now: HELLO JUJU!"), "{log}");
    // diff: what runtime wrote.
    let diff: Vec<Value> =
        serde_json::from_str(&u.expect(&["diff", "hello/0", "--json"], 0)).unwrap();
    assert!(
        diff.iter()
            .any(|d| d["path"] == "state/greeting" && d["status"] == "added")
    );
    // Stop (a symlinked hook) and remove.
    u.expect(&["remove-unit", "hello/1"], 0);
    u.expect(&["status", "hello/1"], 4);
    assert!(!u.env.root().join("units/hello-1").exists());
    u.expect(&["remove", "hello"], 0);
    let status: Value = serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap();
    assert!(status["applications"].as_object().unwrap().is_empty());
}

#[test]
fn deploy_hello_as_caller() {
    deploy_hello(Identity::Caller);
}

#[test]
fn deploy_hello_as_nobody() {
    deploy_hello(Identity::Nobody);
}

fn environment_and_handlers(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = tricky_charm(&u.env);
    u.expect(&["deploy", charm.to_str().unwrap(), "tricky"], 0);
    let env = u.read("tricky/0", "state/env").unwrap();
    let mut names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !["PWD", "SHLVL", "_", "OLDPWD"].contains(k))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "CHARM_DIR",
            "DEBIAN_FRONTEND",
            "JUJU_AGENT_SOCKET_ADDRESS",
            "JUJU_AGENT_SOCKET_NETWORK",
            "JUJU_CHARM_DIR",
            "JUJU_CONTEXT_ID",
            "JUJU_DISPATCH_PATH",
            "JUJU_HOOK_NAME",
            "JUJU_MODEL_NAME",
            "JUJU_MODEL_UUID",
            "JUJU_PRINCIPAL_UNIT",
            "JUJU_UNIT_NAME",
            "JUJU_VERSION",
            "LANG",
            "PATH",
            "PYTHONDONTWRITEBYTECODE",
        ],
        "{env}"
    );
    let var = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    assert_eq!(var("CHARM_DIR"), "/var/lib/juju/agents/unit-tricky-0/charm");
    assert_eq!(var("JUJU_DISPATCH_PATH"), "hooks/install");
    assert_eq!(var("JUJU_UNIT_NAME"), "tricky/0");
    assert!(var("JUJU_CONTEXT_ID").starts_with("tricky/0-install-"));
    assert!(var("PATH").starts_with("/var/lib/juju/tools/unit-tricky-0:"));
    assert_eq!(var("PYTHONDONTWRITEBYTECODE"), "1");
    assert_eq!(
        u.read("tricky/0", "state/cwd").unwrap().trim(),
        "/var/lib/juju/agents/unit-tricky-0/charm"
    );
    assert_eq!(
        u.read("tricky/0", "state/hostname").unwrap().trim(),
        "tricky-0"
    );
    // A hook without exec bit fails; a hook that does not exist is "missing".
    u.expect(&["run", "tricky/0", "collect-metrics"], 0);
    let last = u.history("tricky/0").pop().unwrap();
    assert_eq!(last["outcome"], "missing");
    assert!(last.get("layer").is_none());
    // An action: parameters, results.
    let out = u.expect(&["run", "tricky/0", "greet", "who=juju", "--json"], 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        report["action"]["results"]["greeting"], "hi juju",
        "{report}"
    );
    // A background child does not survive its hook (the pid namespace dies).
    u.expect(&["run", "tricky/0", "background"], 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_no_process("hookbox-bg-marker");
    // Python via a symlinked hook, with juju-log; no .pyc dropped in the charm dir.
    u.expect(&["run", "tricky/0", "stop"], 0);
    assert_eq!(u.read("tricky/0", "stopped").as_deref(), Some("yes"));
    let log = u.expect(&["log", "tricky/0", "--hook", "stop"], 0);
    assert!(log.contains("stopping from python"), "{log}");
    let tree = u.tree("tricky/0");
    assert!(
        !tree.contains(".pyc") && !tree.contains("__pycache__"),
        "{tree}"
    );
    // Not executable: failure.
    let (code, _, _) = u.run(&["run", "tricky/0", "noexec-action"]);
    assert_ne!(code, 0);
}

#[test]
fn environment_and_handlers_as_caller() {
    environment_and_handlers(Identity::Caller);
}

#[test]
fn environment_and_handlers_as_nobody() {
    environment_and_handlers(Identity::Nobody);
}

/// No process whose command line contains `marker` is left (the kernel kills the pid
/// namespace when its init dies, which follows the runner's death asynchronously: allowed
/// up to two seconds).
pub fn assert_no_process(marker: &str) {
    let start = Instant::now();
    loop {
        let out = Command::new("pgrep").args(["-f", marker]).output().unwrap();
        let pids = String::from_utf8_lossy(&out.stdout).into_owned();
        if pids.trim().is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "processes with {marker} survive: {pids}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn failure_and_resolution(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = tricky_charm(&u.env);
    u.expect(&["deploy", charm.to_str().unwrap(), "tricky", "-n", "2"], 0);
    u.expect(&["run", "tricky/0", "update-status"], 0);
    u.expect(&["config", "tricky", "fail=true"], 0);
    u.expect(
        &[
            "shell",
            "tricky/0",
            "--",
            "sh",
            "-c",
            "echo back > doomed; chmod 644 data.txt",
        ],
        0,
    );
    // The shell's writes outside error are thrown away.
    assert_eq!(u.read("tricky/0", "doomed"), None);
    let before = u.tree("tricky/0");
    let status_before = u.unit_status("tricky/0");
    // Rule 5: a failed hook leaves the charm dir byte-identical and drops its effects.
    let (code, _, stderr) = u.run(&["run", "tricky/0", "update-status"]);
    assert_eq!(code, 1, "{stderr}");
    let status = u.unit_status("tricky/0");
    assert_eq!(status["agent_status"], "error");
    assert_eq!(
        status["error"],
        serde_json::json!({"kind": "hook", "hook": "update-status"})
    );
    assert_eq!(status["workload"], status_before["workload"]);
    assert_eq!(status["ports"], status_before["ports"]);
    assert_eq!(u.tree("tricky/0"), before);
    let last = u.history("tricky/0").pop().unwrap();
    assert_eq!(last["outcome"], "failed");
    assert_eq!(last["exit_code"], 3);
    // What the failed hook wrote is kept for forensics.
    let failed: Vec<Value> =
        serde_json::from_str(&u.expect(&["diff", "tricky/0", "--failed", "--json"], 0)).unwrap();
    assert!(failed.iter().any(|d| d["path"] == "written"), "{failed:?}");
    // Nothing runs on a unit in error; other units are not affected.
    u.expect(&["run", "tricky/0", "start"], 1);
    assert_eq!(u.unit_status("tricky/1")["agent_status"], "idle");
    // resolved --retry: still failing stays in error.
    u.expect(&["resolved", "tricky/0", "--retry"], 1);
    assert_eq!(u.tree("tricky/0"), before);
    // Operator edits go to the operator layer; the retry runs over them.
    u.expect(
        &[
            "shell",
            "tricky/0",
            "--",
            "sh",
            "-c",
            "touch fixed; echo op > operator-note",
        ],
        0,
    );
    u.expect(&["resolved", "tricky/0", "--retry"], 0);
    let status = u.unit_status("tricky/0");
    assert_eq!(status["agent_status"], "idle");
    assert_eq!(status["workload"]["message"], "updated");
    assert_eq!(status["ports"], serde_json::json!(["8080/tcp"]));
    assert_eq!(u.read("tricky/0", "operator-note").as_deref(), Some("op\n"));
    assert_eq!(u.read("tricky/0", "written").as_deref(), Some("written\n"));
    // resolved without retry: the operator's edits are kept, the hook's writes are not.
    u.expect(&["shell", "tricky/0", "--", "rm", "fixed", "written"], 0);
    u.expect(&["run", "tricky/0", "update-status"], 0);
    let (code, _, _) = u.run(&["shell", "tricky/0", "--", "rm", "fixed"]);
    assert_eq!(code, 0);
    // (outside error the shell is a throwaway: fixed is still there)
    assert!(u.read("tricky/0", "fixed").is_some());
    u.expect(&["shell", "tricky/1", "--", "true"], 0);
    u.expect(&["run", "tricky/1", "update-status"], 1);
    let before = u.tree("tricky/1");
    u.expect(
        &[
            "shell",
            "tricky/1",
            "--",
            "sh",
            "-c",
            "echo mine > operator-only",
        ],
        0,
    );
    u.expect(&["resolved", "tricky/1"], 0);
    assert_eq!(u.unit_status("tricky/1")["agent_status"], "idle");
    assert_eq!(
        u.read("tricky/1", "operator-only").as_deref(),
        Some("mine\n")
    );
    let after = u.tree("tricky/1");
    assert_ne!(before, after);
    assert_eq!(
        u.read("tricky/1", "doomed").is_some(),
        before.contains("./doomed ")
    );
    let kinds: Vec<String> = u
        .history("tricky/1")
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.last().unwrap(), "resolved");
    // Not in error: refused with exit 4.
    u.expect(&["resolved", "tricky/1"], 4);
    // A config change while in error stays queued until resolved.
    u.expect(&["run", "tricky/1", "update-status"], 1);
    u.expect(&["config", "tricky", "fail=false"], 1);
    assert_eq!(
        u.unit_status("tricky/1")["queued"],
        serde_json::json!(["config-changed"])
    );
    u.expect(&["resolved", "tricky/1"], 0);
    assert_eq!(u.unit_status("tricky/1")["queued"], serde_json::json!([]));
    assert_eq!(
        u.history("tricky/1").last().unwrap()["hook"],
        "config-changed"
    );
}

#[test]
fn failure_and_resolution_as_caller() {
    failure_and_resolution(Identity::Caller);
}

#[test]
fn failure_and_resolution_as_nobody() {
    failure_and_resolution(Identity::Nobody);
}

#[test]
fn a_failing_install_stops_that_unit_and_resolution_continues_the_deploy() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = write_charm(
        &u.env,
        "flaky",
        "",
        &[
            (
                "hooks/install",
                "#!/bin/sh\n[ \"$JUJU_UNIT_NAME\" != flaky/1 ] || [ -e ok ] || exit 7\necho installed > installed\n",
                0o755,
            ),
            ("hooks/start", "#!/bin/sh\nstatus-set active up\n", 0o755),
        ],
    );
    let (code, out, _) = u.run(&["deploy", charm.to_str().unwrap(), "flaky", "-n", "3"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(u.unit_status("flaky/0")["workload"]["status"], "active");
    assert_eq!(u.unit_status("flaky/2")["workload"]["status"], "active");
    let failed = u.unit_status("flaky/1");
    assert_eq!(failed["error"]["hook"], "install");
    assert_eq!(
        failed["queued"],
        serde_json::json!(["install", "config-changed", "start"])
    );
    assert_eq!(u.read("flaky/1", "installed"), None);
    u.expect(&["shell", "flaky/1", "--", "touch", "ok"], 0);
    u.expect(&["resolved", "flaky/1", "--retry"], 0);
    let status = u.unit_status("flaky/1");
    assert_eq!(status["workload"]["status"], "active");
    assert_eq!(status["queued"], serde_json::json!([]));
}

#[test]
fn two_runs_on_one_unit_serialise_and_the_second_says_what_it_waits_for() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = write_charm(
        &u.env,
        "slow",
        "",
        &[(
            "hooks/update-status",
            "#!/bin/sh\necho start >> runs\nsleep 1\necho end >> runs\n",
            0o755,
        )],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "slow"], 0);
    let mut first = u.command();
    first.args(["run", "slow/0", "update-status"]);
    let mut first = first
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (code, _, stderr) = u.run(&["run", "slow/0", "update-status"]);
    assert_eq!(code, 0);
    assert!(first.wait().unwrap().success());
    assert!(stderr.contains("waiting for unit slow/0"), "{stderr}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        u.read("slow/0", "runs").unwrap(),
        "start\nend\nstart\nend\n",
        "hooks of one unit never interleave"
    );
}

#[test]
fn dispatch_wins_over_hooks_and_gets_the_dispatch_path() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = write_charm(
        &u.env,
        "ops",
        "",
        &[
            (
                "dispatch",
                "#!/bin/sh\necho \"$JUJU_DISPATCH_PATH\" >> dispatched\n",
                0o755,
            ),
            ("hooks/install", "#!/bin/sh\nexit 1\n", 0o755),
        ],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "ops"], 0);
    assert_eq!(
        u.read("ops/0", "dispatched").unwrap(),
        "hooks/install\nhooks/leader-elected\nhooks/config-changed\nhooks/start\n"
    );
    // Unknown hooks are refused before anything runs.
    u.expect(&["run", "ops/0", "no-such-hook"], 2);
    u.expect(&["run", "ops/9", "start"], 4);
}

#[test]
fn bad_input_names_what_is_wrong_and_changes_nothing() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = hello(&u.env);
    let (code, _, stderr) = u.run(&[
        "deploy",
        charm.to_str().unwrap(),
        "hello",
        "--config",
        "port=x",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("port"), "{stderr}");
    assert!(!u.env.root().join("apps/hello.json").exists());
    let (code, _, stderr) = u.run(&["deploy", "/nonexistent/charm", "x"]);
    assert_eq!(code, 3, "{stderr}");
    let (code, _, stderr) = u.run(&["deploy", charm.to_str().unwrap(), "Bad_Name"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = u.run(&["status", "nope"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
}
