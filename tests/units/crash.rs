//! Rule 7: hookbox SIGKILLed at every step of a hook run (failpoints) and at random
//! moments (a sweep of 200 kills). After each kill the next command recovers the unit: it is
//! consistent (idle, or in error for the interrupted hook), its charm dir is exactly the
//! pre- or the post-hook tree, and no process of the hook survives.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Identity, Units, assert_no_process, write_charm};

/// A charm whose update-status increments `state/n` and `state/m` together (so a torn run
/// shows as n != m); the hook collect-metrics and the action `failing` write then fail, the
/// hook stop and the action `long` write then sleep, the action `writes` writes.
fn counter_charm(u: &Units, marker: &str) -> std::path::PathBuf {
    let update = format!(
        "#!/bin/sh\nset -eu\nmkdir -p state\nn=$(cat state/n 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > state/n\nsh -c 'sleep 0.02; true' {marker}\necho $n > state/m\n"
    );
    let long = format!(
        "#!/bin/sh\necho partial > partial\ntouch {marker}-started-flag-unused\nsh -c 'sleep 30; true' {marker}\n"
    );
    write_charm(
        &u.env,
        "counter",
        "",
        &[
            ("hooks/update-status", update.as_str(), 0o755),
            ("hooks/leader-settings-changed", FAILS_UNTIL_FIXED, 0o755),
            ("hooks/upgrade-charm", FAILS_UNTIL_FIXED, 0o755),
            (
                "hooks/collect-metrics",
                "#!/bin/sh\necho junk > junk\nexit 1\n",
                0o755,
            ),
            ("hooks/stop", long.as_str(), 0o755),
            (
                "actions.yaml",
                "failing:\n  description: fails\nlong:\n  description: sleeps\nwrites:\n  description: writes\n",
                0o644,
            ),
            (
                "actions/writes",
                "#!/bin/sh\necho written > written\n",
                0o755,
            ),
            (
                "actions/failing",
                "#!/bin/sh\necho junk > junk\nexit 1\n",
                0o755,
            ),
            ("actions/long", long.as_str(), 0o755),
        ],
    )
}

/// Writes `junk` and fails, unless the operator created `fixed-<hook>`.
const FAILS_UNTIL_FIXED: &str =
    "#!/bin/sh\n[ -e \"fixed-$JUJU_HOOK_NAME\" ] && exit 0\necho junk > junk\nexit 1\n";

/// `(n, m)` of the unit's charm dir.
fn counters(u: &Units) -> (u64, u64) {
    let text = u.expect(
        &[
            "shell",
            "counter/0",
            "--",
            "sh",
            "-c",
            "cat state/n 2>/dev/null || echo 0; cat state/m 2>/dev/null || echo 0",
        ],
        0,
    );
    let mut numbers = text.lines().map(|l| l.trim().parse::<u64>().unwrap());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Brings the unit back to idle (recovery happens in `status`); returns whether it was in
/// error.
fn recover(u: &Units) -> bool {
    let status = u.unit_status("counter/0");
    let agent = status["agent_status"].as_str().unwrap().to_owned();
    assert!(
        agent == "idle" || agent == "error",
        "after recovery: {status}"
    );
    if agent == "error" {
        u.expect(&["resolved", "counter/0"], 0);
        return true;
    }
    false
}

/// The tree without the counter files (what must not change at all).
fn stable_tree(u: &Units) -> String {
    u.tree("counter/0")
        .lines()
        .filter(|l| !l.contains("state/n") && !l.contains("state/m"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn marker(u: &Units) -> String {
    format!(
        "hookbox-crash-{}",
        u.env
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "")
    )
}

fn failpoints(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let marker = marker(&u);
    let charm = counter_charm(&u, &marker);
    u.expect(&["deploy", charm.to_str().unwrap(), "counter"], 0);
    u.expect(&["run", "counter/0", "update-status"], 0);
    let baseline = stable_tree(&u);
    let points = [
        "journal:written",
        "begin:before-journal",
        "begin:after-journal",
        "hook:after-exit",
        "commit:after-journal",
        "commit:after-rename",
        "commit:after-idle",
        "squash:after-record",
        "squash:after-rename",
        "squash:after-swap",
        "squash:mid-remove",
    ];
    for point in points {
        if point.starts_with("squash") {
            // Grow the stack past the squash threshold so the next run squashes.
            while u.unit_status("counter/0")["layers"].as_u64().unwrap() <= 16 {
                u.expect(&["run", "counter/0", "update-status"], 0);
            }
        }
        let (before, _) = counters(&u);
        u.kill_at(&["run", "counter/0", "update-status"], point);
        std::thread::sleep(Duration::from_millis(50));
        assert_no_process(&marker);
        let was_error = recover(&u);
        let (n, m) = counters(&u);
        assert_eq!(n, m, "failpoint {point}: a half-applied hook");
        assert!(
            n == before || n == before + 1,
            "failpoint {point}: n={n}, before={before}"
        );
        if was_error {
            assert_eq!(
                n, before,
                "failpoint {point}: an interrupted hook left its writes"
            );
        }
        assert_eq!(stable_tree(&u), baseline, "failpoint {point}");
        // The unit works afterwards.
        u.expect(&["run", "counter/0", "update-status"], 0);
    }
    // Resolutions killed mid-way: `resolved --retry` in the commit of the operator layer,
    // `resolved` right after its journal step. Either way the unit comes back consistent
    // with the operator's edit and without the failed hook's writes.
    for (point, args, hook) in [
        (
            "commit:after-operator-rename",
            &["resolved", "counter/0", "--retry"][..],
            "leader-settings-changed",
        ),
        (
            "resolve:after-journal",
            &["resolved", "counter/0"][..],
            "upgrade-charm",
        ),
    ] {
        u.expect(&["run", "counter/0", hook], 1);
        assert_eq!(u.unit_status("counter/0")["error"]["hook"], hook);
        let fixed = format!("fixed-{hook}");
        u.expect(
            &[
                "shell",
                "counter/0",
                "--",
                "sh",
                "-c",
                &format!("echo op > {fixed}"),
            ],
            0,
        );
        let before = stable_tree(&u);
        u.kill_at(args, point);
        assert_no_process(&marker);
        let status = u.unit_status("counter/0");
        assert_eq!(
            status["agent_status"], "idle",
            "failpoint {point}: {status}"
        );
        assert_eq!(
            stable_tree(&u),
            before,
            "failpoint {point}: the operator's edit"
        );
        assert_eq!(u.read("counter/0", &fixed).as_deref(), Some("op\n"));
        assert_eq!(u.read("counter/0", "junk"), None, "failpoint {point}");
        u.expect(&["run", "counter/0", "update-status"], 0);
    }
    // A failing hook killed between moving its layer away and recording the error.
    let before = u.tree("counter/0");
    u.kill_at(
        &["run", "counter/0", "collect-metrics"],
        "discard:after-move",
    );
    assert_eq!(
        u.unit_status("counter/0")["error"]["hook"],
        "collect-metrics"
    );
    assert_eq!(u.tree("counter/0"), before);
    u.expect(&["resolved", "counter/0"], 0);
    // Killed while the hook runs: the unit is in error for it, its writes are gone, and the
    // hook's processes died with the sandbox.
    let before = u.tree("counter/0");
    kill_while_running(&u, "stop", &marker);
    // A killed run's v2 cgroup is listed in the unit's directory (it lives under the killed
    // runner's own cgroup); recovery removes it and the list. With no v2 controllers (this
    // machine, v1 only) there is no list, and the v1 cgroups are found by the run's name.
    let records = || {
        let out = std::process::Command::new("find")
            .arg(u.env.root())
            .args(["-name", "run-cgroups.json"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let status = u.unit_status("counter/0");
    assert_eq!(records(), "", "the cgroup list is left");
    assert_eq!(status["error"]["hook"], "stop", "{status}");
    // The killed run's cgroup (root: a pids cgroup per run, named after its context id) is
    // removed by the recovery.
    let context_id = u.history("counter/0").pop().unwrap()["context_id"]
        .as_str()
        .unwrap()
        .replace('/', "-");
    let cgroup = std::path::Path::new("/sys/fs/cgroup/pids/hookbox").join(&context_id);
    assert!(!cgroup.exists(), "{} is left", cgroup.display());
    assert_eq!(u.tree("counter/0"), before);
    let last = u.history("counter/0").pop().unwrap();
    assert_eq!(last["outcome"], "failed");
    assert!(
        last["reason"].as_str().unwrap().contains("killed"),
        "{last}"
    );
}

/// Starts `run counter/0 <hook>` and SIGKILLs hookbox once the hook's `marker` process
/// runs; returns when no process of the hook is left.
fn kill_while_running(u: &Units, hook: &str, marker: &str) {
    let mut child = u
        .command()
        .args(["run", "counter/0", hook])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let out = std::process::Command::new("pgrep")
            .args(["-f", marker])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{hook} never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_no_process(marker);
}

#[test]
fn every_failpoint_leaves_a_consistent_unit_as_caller() {
    failpoints(Identity::Caller);
}

#[test]
fn every_failpoint_leaves_a_consistent_unit_as_nobody() {
    failpoints(Identity::Nobody);
}

#[test]
fn two_hundred_random_kills_never_tear_a_hook() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let marker = marker(&u);
    let charm = counter_charm(&u, &marker);
    u.expect(&["deploy", charm.to_str().unwrap(), "counter"], 0);
    u.expect(&["run", "counter/0", "update-status"], 0);
    let baseline = stable_tree(&u);
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    // Kills land anywhere within a run: delays are spread over the time an uninterrupted run
    // takes on this machine, measured here, so the sweep does not depend on the machine's speed.
    let run_time = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            u.expect(&["run", "counter/0", "update-status"], 0);
            start.elapsed()
        })
        .min()
        .unwrap();
    let window = (run_time.as_micros() as u64 * 9 / 10).max(1);
    eprintln!("kill sweep seed {seed}, run time {run_time:?}");
    let mut interrupted = 0;
    let mut completed = 0;
    let (mut expected, _) = counters(&u);
    for round in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % window);
        let mut child = u
            .command()
            .args(["run", "counter/0", "update-status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            completed += 1;
        } else {
            interrupted += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_no_process(&marker);
        recover(&u);
        let (n, m) = counters(&u);
        assert_eq!(n, m, "round {round} (delay {delay:?}): a torn hook");
        assert!(
            n == expected || n == expected + 1,
            "round {round}: n={n}, expected {expected} or {}",
            expected + 1
        );
        if status.success() {
            assert_eq!(n, expected + 1, "round {round}: a completed run was lost");
        }
        expected = n;
        if round % 25 == 0 {
            assert_eq!(stable_tree(&u), baseline, "round {round}");
        }
    }
    eprintln!("{interrupted} interrupted, {completed} completed");
    assert!(
        interrupted >= 100,
        "most kills should land mid-run ({interrupted})"
    );
}

/// Killed between a queued hook's commit and its removal from the queue: the next command
/// (here the same deploy again, which resumes the units' queues) does not run it twice.
#[test]
fn a_committed_queued_hook_never_runs_twice() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let count = "#!/bin/sh\necho \"$JUJU_HOOK_NAME\" >> ran\n";
    let charm = write_charm(
        &u.env,
        "once",
        "",
        &[
            ("hooks/install", count, 0o755),
            ("hooks/config-changed", count, 0o755),
            ("hooks/start", count, 0o755),
        ],
    );
    u.kill_at(
        &["deploy", charm.to_str().unwrap(), "once"],
        "queue:before-pop",
    );
    let unit = u.unit_status("once/0");
    assert_eq!(unit["agent_status"], "idle", "{unit}");
    let out = u.expect(&["deploy", charm.to_str().unwrap(), "once", "--json"], 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["outcome"], "resumed", "{json}");
    assert_eq!(
        u.read("once/0", "ran").as_deref(),
        Some("install\nconfig-changed\nstart\n")
    );
    let hooks: Vec<String> = u
        .history("once/0")
        .iter()
        .map(|r| r["hook"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        hooks,
        ["install", "leader-elected", "config-changed", "start"],
        "{hooks:?}"
    );
    let unit = u.unit_status("once/0");
    assert_eq!(unit["queued"], serde_json::json!([]), "{unit}");
    // Nothing left: the same deploy again changes nothing.
    let out = u.expect(&["deploy", charm.to_str().unwrap(), "once", "--json"], 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["outcome"], "unchanged", "{json}");
}

/// `resolved` (no retry) killed after its commit, before the failed hook left the queue:
/// the next command does not run the resolved hook again; it runs the rest of the queue,
/// and the history shows the resolution once.
fn a_killed_resolution_never_reruns_the_resolved_hook(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let count = "#!/bin/sh\necho \"$JUJU_HOOK_NAME\" >> ran\n";
    let charm = write_charm(
        &u.env,
        "rs",
        "",
        &[
            ("hooks/install", count, 0o755),
            ("hooks/config-changed", "#!/bin/sh\nexit 1\n", 0o755),
            ("hooks/start", count, 0o755),
        ],
    );
    let charm = charm.to_str().unwrap();
    u.expect(&["deploy", charm, "rs"], 1);
    let unit = u.unit_status("rs/0");
    assert_eq!(unit["error"]["hook"], "config-changed", "{unit}");
    assert_eq!(
        unit["queued"],
        serde_json::json!(["config-changed", "start"]),
        "{unit}"
    );
    // The operator's fix, in the operator layer the resolution commits.
    u.expect(
        &["shell", "rs/0", "--", "sh", "-c", "echo fixed > fixed"],
        0,
    );
    u.kill_at(&["resolved", "rs/0"], "resolve:before-pop");
    let unit = u.unit_status("rs/0");
    assert_eq!(unit["agent_status"], "idle", "{unit}");
    // The same deploy again resumes the queue: start, not config-changed.
    let out = u.expect(&["deploy", charm, "rs", "--json"], 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["outcome"], "resumed", "{json}");
    let unit = u.unit_status("rs/0");
    assert_eq!(unit["agent_status"], "idle", "{unit}");
    assert_eq!(unit["queued"], serde_json::json!([]), "{unit}");
    assert_eq!(u.read("rs/0", "ran").as_deref(), Some("install\nstart\n"));
    let lines: Vec<(String, String)> = u
        .history("rs/0")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["hook"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lines: Vec<(&str, &str)> = lines
        .iter()
        .map(|(k, h)| (k.as_str(), h.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("hook", "install"),
            ("hook", "leader-elected"),
            ("hook", "config-changed"),
            ("resolved", "config-changed"),
            ("hook", "start"),
        ],
        "{lines:?}"
    );
    // The line written after the kill names the operator layer the resolution committed.
    let resolution = u
        .history("rs/0")
        .into_iter()
        .find(|r| r["kind"] == "resolved")
        .unwrap();
    let layer = resolution["layer"]
        .as_str()
        .expect("the resolution's layer");
    assert!(
        u.env.root().join("units/rs-0/layers").join(layer).is_dir(),
        "{resolution}"
    );
    assert_eq!(u.read("rs/0", "fixed").as_deref(), Some("fixed\n"));
}

#[test]
fn a_killed_resolution_never_reruns_the_resolved_hook_as_caller() {
    a_killed_resolution_never_reruns_the_resolved_hook(Identity::Caller);
}

#[test]
fn a_killed_resolution_never_reruns_the_resolved_hook_as_nobody() {
    a_killed_resolution_never_reruns_the_resolved_hook(Identity::Nobody);
}

/// An action interrupted by a killed hookbox (while it runs, or after it exited and before
/// its outcome was recorded) is a failed action: its writes are discarded, the unit stays
/// idle (not in error, unlike a hook: rule 5 is about hooks), and the history says it was
/// interrupted.
fn a_killed_action_leaves_the_unit_idle(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let marker = marker(&u);
    let charm = counter_charm(&u, &marker);
    u.expect(&["deploy", charm.to_str().unwrap(), "counter"], 0);
    let check = |action: &str, before: &str, how: &str| {
        let status = u.unit_status("counter/0");
        assert_eq!(status["agent_status"], "idle", "{action} {how}: {status}");
        assert!(status["error"].is_null(), "{action} {how}: {status}");
        assert_eq!(u.tree("counter/0"), before, "{action} {how}");
        let last = u.history("counter/0").pop().unwrap();
        assert_eq!(last["hook"], action, "{how}: {last}");
        assert_eq!(last["outcome"], "failed", "{action} {how}: {last}");
        assert!(
            last["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("interrupted"),
            "{action} {how}: {last}"
        );
        // Not in error: the next hook runs.
        u.expect(&["run", "counter/0", "update-status"], 0);
    };
    for (point, action) in [
        ("begin:after-journal", "writes"),
        ("hook:after-exit", "writes"),
        ("hook:after-exit", "failing"),
        ("discard:after-move", "failing"),
    ] {
        let before = u.tree("counter/0");
        u.kill_at(&["run", "counter/0", action], point);
        check(action, &before, point);
    }
    let before = u.tree("counter/0");
    kill_while_running(&u, "long", &marker);
    check("long", &before, "killed while it ran");
    assert_eq!(u.read("counter/0", "partial"), None);
}

#[test]
fn a_killed_action_leaves_the_unit_idle_as_caller() {
    a_killed_action_leaves_the_unit_idle(Identity::Caller);
}

#[test]
fn a_killed_action_leaves_the_unit_idle_as_nobody() {
    a_killed_action_leaves_the_unit_idle(Identity::Nobody);
}
