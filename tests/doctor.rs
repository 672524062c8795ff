//! `hookbox doctor`: the probes that must pass on a machine that runs sandboxes, the JSON
//! shape, and a real failure (user namespaces switched off) reported with exit 5.

use serde_json::Value;

use crate::util::{self, TestEnv};

/// Every check the report must carry, in order.
const CHECKS: [&str; 17] = [
    "user-namespace",
    "kernel.unprivileged_userns_clone",
    "user.max_user_namespaces",
    "kernel.apparmor_restrict_unprivileged_userns",
    "mount-namespace",
    "overlay-userxattr",
    "pid-namespace",
    "net-namespace",
    "ipc-namespace",
    "uts-namespace",
    "seccomp",
    "cgroup-v1:memory",
    "cgroup-v1:pids",
    "cgroup-v1:cpu",
    "cgroup-v2:controllers",
    "cgroup-v2:delegation",
    "subuid",
];

/// Probes a machine that runs hook sandboxes must pass, as root and rootless.
const MUST_PASS: [&str; 8] = [
    "user-namespace",
    "mount-namespace",
    "overlay-userxattr",
    "pid-namespace",
    "net-namespace",
    "ipc-namespace",
    "uts-namespace",
    "seccomp",
];

fn report(output: &std::process::Output) -> Vec<Value> {
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    json.as_array().expect("a JSON array").clone()
}

fn check<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#?}"))
}

fn assert_shape(report: &[Value]) {
    let names: Vec<&str> = report
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for line in report {
        let object = line.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{line}");
        assert!(
            line["ok"].is_boolean() && line["required"].is_boolean(),
            "{line}"
        );
        assert!(!line["detail"].as_str().unwrap().is_empty(), "{line}");
        // A failed check always says what to do; a passing one has nothing to fix.
        assert_eq!(line["ok"] == true, line["fix"].is_null(), "{line}");
    }
}

fn assert_ready(report: &[Value]) {
    for name in MUST_PASS {
        let line = check(report, name);
        assert_eq!(line["ok"], true, "{name} failed: {line}");
    }
}

#[test]
fn doctor_as_root_passes_the_sandbox_probes() {
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    // With a state root present, the filesystem probes run in it (where layers will live).
    std::fs::create_dir(env.root()).unwrap();
    let output = env.hookbox().args(["doctor", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = report(&output);
    assert_shape(&report);
    assert_ready(&report);
    if util::is_root() {
        // This machine's cgroup v1 tree is writable by root: hookbox can set limits there.
        for controller in ["memory", "pids", "cpu"] {
            let line = check(&report, &format!("cgroup-v1:{controller}"));
            assert_eq!(line["ok"], true, "{line}");
        }
    }
    let overlay = check(&report, "overlay-userxattr");
    let root = env.root().display().to_string();
    assert!(
        overlay["detail"].as_str().unwrap().contains(&root),
        "{overlay}"
    );
    // The probes leave no scratch directories behind.
    let leftovers: Vec<_> = std::fs::read_dir(env.root()).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn doctor_rootless_passes_the_sandbox_probes() {
    if !util::require_root() {
        return;
    }
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    let output = env
        .hookbox_as_nobody()
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = report(&output);
    assert_shape(&report);
    assert_ready(&report);
    // Rootless, the root-owned cgroup v1 tree is not ours: reported, with what to do.
    let memory = check(&report, "cgroup-v1:memory");
    assert_eq!(memory["ok"], false, "{memory}");
    assert!(
        memory["fix"].as_str().unwrap().contains("rlimits"),
        "{memory}"
    );
    assert_eq!(check(&report, "subuid")["ok"], true);
}

#[test]
fn doctor_text_output_names_every_check() {
    if !util::sandbox_available() {
        return;
    }
    let env = TestEnv::new();
    let output = env.hookbox().arg("doctor").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    for name in CHECKS {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(text.contains("ok    overlay-userxattr"), "{text}");
    assert!(text.contains("hook sandboxes can run here"), "{text}");
}

#[test]
fn doctor_reports_disabled_user_namespaces_with_exit_5() {
    if !util::sandbox_available() {
        return;
    }
    // Inside a user namespace we own, user.max_user_namespaces=0 forbids nested ones: the
    // doctor must see every namespace probe fail, name the knob, and exit 5.
    let env = TestEnv::new();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} --root {} doctor --json",
        util::binary().display(),
        env.root().display()
    );
    let output = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let report = report(&output);
    assert_shape(&report);
    let userns = check(&report, "user-namespace");
    assert_eq!(userns["ok"], false);
    assert!(
        userns["fix"]
            .as_str()
            .unwrap()
            .contains("user.max_user_namespaces"),
        "{userns}"
    );
    assert_eq!(check(&report, "user.max_user_namespaces")["ok"], false);
    assert_eq!(check(&report, "overlay-userxattr")["ok"], false);

    let text = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            &script.replace(" --json", ""),
        ])
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(5));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("FAIL  user-namespace"), "{text}");
    assert!(text.contains("hook sandboxes cannot run here"), "{text}");
}

#[test]
fn doctor_probe_refuses_an_unknown_check() {
    let env = TestEnv::new();
    env.hookbox()
        .args(["__doctor-probe", "no-such-check"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("unknown probe \"no-such-check\""));
}
