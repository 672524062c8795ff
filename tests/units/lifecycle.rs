//! Lifecycle fixes: no command holds an application lock while hooks run (a hook calling
//! an application-level tool would wait for its own command), failed actions, and the
//! error text of reports.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Identity, Units, write_charm};

const SH: &str = "#!/bin/sh\nset -eu\n";

/// Runs hookbox with `args`, killing it after `limit`; returns (exit code, stdout, stderr)
/// or panics naming the command that did not finish.
pub fn run_with_timeout(u: &Units, args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = u
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookbox");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hookbox {args:?} did not finish within {limit:?} (deadlock?)\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A charm whose stop and leader-elected hooks use application-level tools.
fn leader_charm(u: &Units) -> std::path::PathBuf {
    let app_tools = format!(
        "{SH}if is-leader | grep -q True; then leader-set \"by=$JUJU_UNIT_NAME-$JUJU_HOOK_NAME\"; status-set --application active \"$JUJU_HOOK_NAME by $JUJU_UNIT_NAME\"; fi\n"
    );
    write_charm(
        &u.env,
        "ldr",
        "",
        &[
            ("hooks/stop", app_tools.as_str(), 0o755),
            ("hooks/leader-elected", app_tools.as_str(), 0o755),
        ],
    )
}

fn removing_the_leader_whose_hooks_use_app_tools_finishes(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = leader_charm(&u);
    u.expect(
        &["deploy", charm.to_str().unwrap(), "ldr", "--units", "2"],
        0,
    );
    assert_eq!(u.unit_status("ldr/0")["leader"], true);
    let (code, out, err) =
        run_with_timeout(&u, &["remove-unit", "ldr/0"], Duration::from_secs(120));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let status: Value = serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap();
    let app = &status["applications"]["ldr"];
    assert!(app["units"].get("ldr/0").is_none(), "{status}");
    assert_eq!(app["units"]["ldr/1"]["leader"], true, "{status}");
    assert_eq!(app["leader"], "ldr/1", "{status}");
    let hooks: Vec<String> = u
        .history("ldr/1")
        .iter()
        .map(|r| r["hook"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        hooks.last().map(String::as_str),
        Some("leader-elected"),
        "{hooks:?}"
    );
    assert_eq!(
        app["status"]["message"], "leader-elected by ldr/1",
        "{status}"
    );

    // remove APP with the same hooks finishes too.
    let (code, out, err) = run_with_timeout(&u, &["remove", "ldr"], Duration::from_secs(120));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let status: Value = serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap();
    assert!(status["applications"].get("ldr").is_none(), "{status}");
}

#[test]
fn removing_the_leader_whose_hooks_use_app_tools_finishes_as_caller() {
    removing_the_leader_whose_hooks_use_app_tools_finishes(Identity::Caller);
}

#[test]
fn removing_the_leader_whose_hooks_use_app_tools_finishes_as_nobody() {
    removing_the_leader_whose_hooks_use_app_tools_finishes(Identity::Nobody);
}

/// remove-unit of the leader killed after the application record named the new leader,
/// before leader-elected ran on it: the next command that runs hooks runs leader-elected on
/// the new leader (the handover was posted to its inbox with the record).
fn a_killed_leader_removal_still_hands_over_leadership(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = leader_charm(&u);
    u.expect(
        &["deploy", charm.to_str().unwrap(), "ldr", "--units", "2"],
        0,
    );
    u.kill_at(&["remove-unit", "ldr/0"], "remove:after-forget");
    let status: Value = serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap();
    assert_eq!(status["applications"]["ldr"]["leader"], "ldr/1", "{status}");
    u.expect(&["run", "ldr/1", "update-status"], 0);
    let hooks: Vec<String> = u
        .history("ldr/1")
        .iter()
        .map(|r| r["hook"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        hooks.iter().filter(|h| *h == "leader-elected").count(),
        1,
        "{hooks:?}"
    );
    assert_eq!(
        hooks.last().map(String::as_str),
        Some("leader-elected"),
        "{hooks:?}"
    );
    let status: Value = serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap();
    let app = &status["applications"]["ldr"];
    assert_eq!(
        app["status"]["message"], "leader-elected by ldr/1",
        "{status}"
    );
    assert_eq!(
        app["units"]["ldr/1"]["queued"],
        serde_json::json!([]),
        "{status}"
    );
}

#[test]
fn a_killed_leader_removal_still_hands_over_leadership_as_caller() {
    a_killed_leader_removal_still_hands_over_leadership(Identity::Caller);
}

#[test]
fn a_killed_leader_removal_still_hands_over_leadership_as_nobody() {
    a_killed_leader_removal_still_hands_over_leadership(Identity::Nobody);
}

/// Rule 5 is about hooks: a failed action (non-zero exit or action-fail) is reported failed
/// (exit 1, history `failed`), its writes are discarded, and the unit is not in error.
fn failed_actions_leave_the_unit_alone(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = write_charm(
        &u.env,
        "acts",
        "",
        &[
            (
                "actions.yaml",
                "crash:\n  description: exits 1\nrefuse:\n  description: calls action-fail\n",
                0o644,
            ),
            (
                "actions/crash",
                "#!/bin/sh\necho junk > junk\nexit 1\n",
                0o755,
            ),
            (
                "actions/refuse",
                "#!/bin/sh\nset -eu\necho junk > junk2\naction-fail \"not today\"\n",
                0o755,
            ),
            (
                "hooks/update-status",
                "#!/bin/sh\necho ok > updated\n",
                0o755,
            ),
        ],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "acts"], 0);
    for (action, junk, reason) in [("crash", "junk", "exit"), ("refuse", "junk2", "not today")] {
        let (code, out, err) = u.run(&["run", "acts/0", action]);
        assert_eq!(code, 1, "{action}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("not in error"), "{err}");
        let status = u.unit_status("acts/0");
        assert_eq!(status["agent_status"], "idle", "{action}: {status}");
        assert!(status["error"].is_null(), "{action}: {status}");
        assert!(u.read("acts/0", junk).is_none(), "{action} wrote {junk}");
        let history = u.history("acts/0");
        let last = history.last().unwrap();
        assert_eq!(last["hook"], action, "{last}");
        assert_eq!(last["outcome"], "failed", "{last}");
        assert!(
            last["reason"].as_str().unwrap_or_default().contains(reason),
            "{last}"
        );
        let json: Value =
            serde_json::from_str(&u.expect(&["run", "acts/0", action, "--json"], 1)).unwrap();
        assert_eq!(json["outcome"], "failed", "{json}");
        // Not in error: the next hook runs.
        u.expect(&["run", "acts/0", "update-status"], 0);
        assert_eq!(u.read("acts/0", "updated").as_deref(), Some("ok\n"));
    }
}

#[test]
fn failed_actions_leave_the_unit_alone_as_caller() {
    failed_actions_leave_the_unit_alone(Identity::Caller);
}

#[test]
fn failed_actions_leave_the_unit_alone_as_nobody() {
    failed_actions_leave_the_unit_alone(Identity::Nobody);
}

/// After `resolved` on a unit whose upgrade still conflicts, the report names the unit's
/// real error (`upgrade failed: ...`), not an empty hook.
#[test]
fn reports_name_an_upgrade_conflict_not_an_empty_hook() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let install = "#!/bin/sh\nset -eu\necho runtime-edit >> app.conf\n";
    let charm = write_charm(
        &u.env,
        "cf",
        "",
        &[
            ("hooks/install", install, 0o755),
            ("app.conf", "v1\n", 0o644),
        ],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "cf"], 0);
    std::fs::write(charm.join("app.conf"), "v2\n").unwrap();
    u.expect(&["upgrade", "cf", charm.to_str().unwrap()], 1);
    let (code, out, err) = u.run(&["resolved", "cf/0"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("cf/0 is in error (upgrade failed: 1 conflicting paths)"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!out.contains("hook failed: \"\""), "{out}");
    let json: Value = serde_json::from_str(&u.expect(&["resolved", "cf/0", "--json"], 1)).unwrap();
    assert_eq!(json["unit_error"]["kind"], "upgrade", "{json}");
}

/// `status` shows an unforced upgrade waiting for a unit in error, and a recorded S0.
#[test]
fn status_shows_a_pending_upgrade_and_s0() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = write_charm(
        &u.env,
        "pu",
        "",
        &[
            ("hooks/update-status", "#!/bin/sh\nexit 1\n", 0o755),
            ("version.txt", "v1\n", 0o644),
        ],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "pu"], 0);
    u.expect(&["run", "pu/0", "update-status"], 1);
    let status = u.unit_status("pu/0");
    assert!(status["pending_upgrade"].is_null(), "{status}");
    assert!(status["s0"].is_null(), "{status}");
    std::fs::write(charm.join("version.txt"), "v2\n").unwrap();
    let out: Value =
        serde_json::from_str(&u.expect(&["upgrade", "pu", charm.to_str().unwrap(), "--json"], 1))
            .unwrap();
    let status = u.unit_status("pu/0");
    assert_eq!(
        status["pending_upgrade"]["digest"], out["to"]["digest"],
        "{status}"
    );
    assert_eq!(status["pending_upgrade"]["name"], "pu", "{status}");
    let text = u.expect(&["status"], 0);
    assert!(text.contains("[upgrade to pu pending]"), "{text}");
    u.expect(&["upgrade", "pu", charm.to_str().unwrap(), "--force"], 1);
    let status = u.unit_status("pu/0");
    assert_eq!(
        status["s0"]["charm"]["digest"], out["from"]["digest"],
        "{status}"
    );
    assert!(status["s0"]["layers"].is_u64(), "{status}");
    let text = u.expect(&["status", "pu"], 0);
    assert!(text.contains("[S0 recorded]"), "{text}");
}

/// Deploy, add-unit and remove-unit killed between the units and the application record:
/// the record never names a unit that does not exist, and the next command tidies up.
#[test]
fn a_killed_deploy_or_removal_never_tears_app_and_units() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let count = "#!/bin/sh\necho \"$JUJU_HOOK_NAME\" >> ran\n";
    let charm = write_charm(&u.env, "tw", "", &[("hooks/install", count, 0o755)]);
    let charm = charm.to_str().unwrap();
    let units_dir = u.env.root().join("units");
    let status = || -> Value { serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap() };

    u.kill_at(
        &["deploy", charm, "tw", "--units", "2"],
        "units:before-app-record",
    );
    assert!(status()["applications"].get("tw").is_none(), "{}", status());
    let json: Value =
        serde_json::from_str(&u.expect(&["deploy", charm, "tw", "--units", "2", "--json"], 0))
            .unwrap();
    assert_eq!(json["outcome"], "deployed", "{json}");
    for unit in ["tw/0", "tw/1"] {
        assert_eq!(u.read(unit, "ran").as_deref(), Some("install\n"), "{unit}");
    }

    u.kill_at(&["add-unit", "tw"], "units:before-app-record");
    let units = status()["applications"]["tw"]["units"].clone();
    assert_eq!(units.as_object().unwrap().len(), 2, "{units}");
    u.expect(&["add-unit", "tw"], 0);
    assert_eq!(u.read("tw/2", "ran").as_deref(), Some("install\n"));

    u.kill_at(&["remove-unit", "tw/0"], "remove:after-forget");
    let app = status()["applications"]["tw"].clone();
    assert!(app["units"].get("tw/0").is_none(), "{app}");
    assert_eq!(app["leader"], "tw/1", "{app}");
    assert!(
        units_dir.join("tw-0").exists(),
        "the killed removal left the directory"
    );
    // The next command that creates units removes the unnamed directory.
    u.expect(&["add-unit", "tw"], 0);
    assert!(
        !units_dir.join("tw-0").exists(),
        "the unnamed directory is removed"
    );

    // A named unit whose state is gone (an older hookbox killed mid-removal) is forgotten.
    std::fs::remove_file(units_dir.join("tw-3/state.json")).unwrap();
    u.expect(&["add-unit", "tw"], 0);
    let units = status()["applications"]["tw"]["units"].clone();
    let names: Vec<&String> = units.as_object().unwrap().keys().collect();
    assert_eq!(names, ["tw/1", "tw/2", "tw/4"], "{units}");
}

/// Hook runs have a pids limit by default (4096 processes and threads), so a fork bomb in
/// a hook fails the hook (the unit goes to error, rule 5) instead of taking the machine
/// down; `deploy --pids N` and `--memory BYTES` set the application's own limits.
fn hook_runs_have_default_limits(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    // A number no other process has in its command line (sleep adds up its arguments).
    let marker = format!("300.{}{}", std::process::id(), mode as u8 + 1);
    let spawn = |count: u32| {
        format!(
            "#!/bin/sh\ni=0\nwhile [ $i -lt {count} ]; do sleep {marker} & i=$((i+1)); done\necho done > spawned\n"
        )
    };
    let bomb = spawn(5000);
    let hundred = spawn(100);
    let charm = write_charm(
        &u.env,
        "bomb",
        "",
        &[
            ("hooks/update-status", bomb.as_str(), 0o755),
            ("hooks/collect-metrics", hundred.as_str(), 0o755),
            (
                "hooks/stop",
                "#!/bin/sh\nhead -c 1G /dev/zero | tail -c 1G > /dev/null && echo done > hogged\n",
                0o755,
            ),
        ],
    );
    let charm = charm.to_str().unwrap();
    let killed_by = |limit: &str, out: &str| {
        let root_with_cgroups = u.mode == Identity::Caller && crate::util::is_root();
        if root_with_cgroups {
            assert!(
                out.contains(&format!("killed by the {limit} limit")),
                "{out}"
            );
        }
    };
    u.expect(&["deploy", charm, "bomb"], 0);
    let started = Instant::now();
    let (code, out, err) = u.run(&["run", "bomb/0", "update-status"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    killed_by("pids", &format!("{out}{err}"));
    let status = u.unit_status("bomb/0");
    assert_eq!(status["error"]["hook"], "update-status", "{status}");
    let last = u.history("bomb/0").pop().unwrap();
    assert_eq!(last["outcome"], "failed", "{last}");
    killed_by("pids", last["reason"].as_str().unwrap_or_default());
    assert_eq!(u.read("bomb/0", "spawned"), None);
    // The host is unaffected: no process of the hook is left, and hooks run on.
    super::assert_no_process(&format!("sleep {marker}"));
    u.expect(&["resolved", "bomb/0"], 0);
    u.expect(&["run", "bomb/0", "collect-metrics"], 0);
    assert_eq!(u.read("bomb/0", "spawned").as_deref(), Some("done\n"));

    // Per application: --pids below what the hook spawns, --memory below what it holds.
    u.expect(
        &["deploy", charm, "tight", "--pids", "64", "--memory", "64M"],
        0,
    );
    let (code, out, err) = u.run(&["run", "tight/0", "collect-metrics"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    killed_by("pids", &format!("{out}{err}"));
    u.expect(&["resolved", "tight/0"], 0);
    let (code, out, err) = u.run(&["run", "tight/0", "stop"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    killed_by("memory", &format!("{out}{err}"));
    assert_eq!(u.read("tight/0", "hogged"), None);
    super::assert_no_process(&format!("sleep {marker}"));
    // Bad limits are refused before anything is created.
    let (code, _, err) = u.run(&["deploy", charm, "bad", "--memory", "lots"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--memory"), "{err}");
    u.expect(&["status", "bad"], 4);
}

#[test]
fn hook_runs_have_default_limits_as_caller() {
    hook_runs_have_default_limits(Identity::Caller);
}

#[test]
fn hook_runs_have_default_limits_as_nobody() {
    hook_runs_have_default_limits(Identity::Nobody);
}

/// `--verbose` streams every hook's output live on stderr, each line after its unit and
/// hook; without it nothing of the hooks' output reaches the terminal.
fn verbose_streams_hook_output_by_unit_and_hook(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let charm = write_charm(
        &u.env,
        "talk",
        "",
        &[(
            "hooks/install",
            "#!/bin/sh\necho \"out of $JUJU_UNIT_NAME\"\necho to-stderr >&2\nprintf tail\n",
            0o755,
        )],
    );
    let charm = charm.to_str().unwrap();
    let (code, out, err) = u.run(&["deploy", charm, "talk", "--units", "2", "-v"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for unit in ["talk/0", "talk/1"] {
        for line in [format!("out of {unit}"), "to-stderr".into(), "tail".into()] {
            let expected = format!("{unit} install| {line}\n");
            assert!(err.contains(&expected), "{expected:?} not in:\n{err}");
        }
    }
    assert!(!out.contains("install|"), "{out}");
    let (code, out, err) = u.run(&["add-unit", "talk"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        !err.contains("to-stderr") && !out.contains("to-stderr"),
        "{out}{err}"
    );
}

#[test]
fn verbose_streams_hook_output_by_unit_and_hook_as_caller() {
    verbose_streams_hook_output_by_unit_and_hook(Identity::Caller);
}

#[test]
fn verbose_streams_hook_output_by_unit_and_hook_as_nobody() {
    verbose_streams_hook_output_by_unit_and_hook(Identity::Nobody);
}

/// Runs `hookbox deploy CHARM APP ARGS... -v`, waits until its stderr (the hooks' live
/// output) has said `ready` `times` times, sends it SIGINT after `delay`, and returns how it
/// ended, its stdout and the stderr read so far.
fn interrupt_deploy(
    u: &Units,
    charm: &std::path::Path,
    app: &str,
    args: &[&str],
    (ready, times): (&str, usize),
    delay: Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    let mut deploy = u
        .command()
        .args(["deploy", charm.to_str().unwrap(), app, "-v"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = deploy.stderr.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    while seen.matches(ready).count() < times {
        let read = stderr.read(&mut byte).unwrap();
        assert_eq!(read, 1, "deploy ended early:\n{seen}");
        seen.push(byte[0] as char);
    }
    std::thread::sleep(delay);
    let pid = nix::unistd::Pid::from_raw(deploy.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = deploy.wait().unwrap();
    let mut out = String::new();
    let stdout = deploy.stdout.as_mut().unwrap();
    stdout.read_to_string(&mut out).unwrap();
    (status, out, seen)
}

/// Ctrl-C (SIGINT) to a deploy reaches the running hooks, which fail as killed by it; the
/// units are left in error, from which `resolved` goes on, and hookbox itself then
/// ends by SIGINT (so a shell loop around it stops too).
fn an_interrupted_deploy_leaves_units_in_error_and_ends_by_the_signal(mode: Identity) {
    use std::os::unix::process::ExitStatusExt;
    let Some(u) = Units::new(mode) else { return };
    let charm = write_charm(
        &u.env,
        "slow",
        "",
        &[(
            "hooks/install",
            // `wait` is interruptible; dash defers a SIGINT that arrives while it starts a
            // foreground command until that command ends.
            "#!/bin/sh\nsleep 30 &\necho started\nwait\necho finished\n",
            0o755,
        )],
    );
    // Both installs are running once both said so.
    let (status, out, seen) = interrupt_deploy(
        &u,
        &charm,
        "slow",
        &["--units", "2"],
        ("install| started", 2),
        Duration::ZERO,
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}\n{out}");
    assert!(
        !out.contains("finished") && !seen.contains("finished"),
        "{out}"
    );
    for unit in ["slow/0", "slow/1"] {
        assert!(
            out.contains(&format!("{unit} install: FAILED: killed by signal SIGINT")),
            "{out}"
        );
        assert_eq!(u.unit_status(unit)["agent_status"], "error", "{unit}");
    }
    let (code, out, err) = u.run(&["resolved", "slow/0"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(u.unit_status("slow/0")["agent_status"], "idle");
}

#[test]
fn an_interrupted_deploy_leaves_units_in_error_and_ends_by_the_signal_as_caller() {
    an_interrupted_deploy_leaves_units_in_error_and_ends_by_the_signal(Identity::Caller);
}

#[test]
fn an_interrupted_deploy_leaves_units_in_error_and_ends_by_the_signal_as_nobody() {
    an_interrupted_deploy_leaves_units_in_error_and_ends_by_the_signal(Identity::Nobody);
}

/// Deploy runs units on worker threads, each with its own async runtime, which end with
/// their units: a Ctrl-C after the worker of a finished unit is gone still reaches the hook
/// of another.
fn an_interrupt_reaches_a_hook_after_other_workers_ended(mode: Identity) {
    use std::os::unix::process::ExitStatusExt;
    let Some(u) = Units::new(mode) else { return };
    let charm = write_charm(
        &u.env,
        "mixed",
        "",
        &[(
            "hooks/install",
            "#!/bin/sh\n[ \"$JUJU_UNIT_NAME\" = mixed/0 ] && exit 0\nsleep 30 &\necho started\nwait\n",
            0o755,
        )],
    );
    // mixed/0's hooks take milliseconds; its worker is done well before the signal.
    let started = Instant::now();
    let (status, out, _) = interrupt_deploy(
        &u,
        &charm,
        "mixed",
        &["--units", "2", "--parallel", "2"],
        ("mixed/1 install| started", 1),
        Duration::from_millis(500),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the hook ran on: {out}"
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}\n{out}");
    assert!(
        out.contains("mixed/1 install: FAILED: killed by signal SIGINT"),
        "{out}"
    );
    assert!(out.contains("mixed/0 install: ok"), "{out}");
}

#[test]
fn an_interrupt_reaches_a_hook_after_other_workers_ended_as_caller() {
    an_interrupt_reaches_a_hook_after_other_workers_ended(Identity::Caller);
}

#[test]
fn an_interrupt_reaches_a_hook_after_other_workers_ended_as_nobody() {
    an_interrupt_reaches_a_hook_after_other_workers_ended(Identity::Nobody);
}
