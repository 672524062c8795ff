//! `hookbox export-bundle`: the bundle's configuration, refusals that change nothing, and
//! real runs under Debian's crun and runc, as root and rootless (uid 65534).
//!
//! This host's cgroup layout is hybrid and its cgroup2 mount carries the hugetlb controller,
//! which Debian's crun 1.8.1 refuses even with `--cgroup-manager=disabled`. crun is therefore
//! run in a private mount namespace with a tmpfs over /sys/fs/cgroup/unified. Rootless, that
//! mount namespace needs a user namespace (`unshare -Urm`), where uid 65534 is root and crun
//! creates the container's user namespace from there: the bundle is exported inside it with
//! `--uid-map 0:0:1 --gid-map 0:0:1` (container 0 = that namespace's 0 = host 65534). runc
//! needs none of this and runs the bundle exactly as exported.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{self, NOBODY, TestEnv};

/// The script the bundles run: each line is one observation the tests assert on.
const SCRIPT: &str = r#"
cat greeting
echo written > new
rm doomed
echo "hostname=$(hostname)"
echo "uid=$(id -u)"
echo "cwd=$(pwd)"
if echo x > /etc/hookbox-bundle-probe 2>/dev/null; then echo etc=writable; else echo etc=refused; fi
if unshare -U true 2>/dev/null; then echo unshare=allowed; else echo unshare=refused; fi
if [ -e /root ] || [ -e /home ] || [ -e /run ]; then echo host-dirs=visible; else echo host-dirs=hidden; fi
echo "shell-pid=$$"
echo "net=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
"#;

/// Whether `runtime` (crun or runc) is installed; under HOOKBOX_REQUIRE_SANDBOX=1 it must be.
fn runtime_available(runtime: &str) -> bool {
    let ok = Command::new(runtime)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let reason = format!("{runtime} is not installed (scripts/test.sh installs crun)");
        if std::env::var_os("HOOKBOX_REQUIRE_SANDBOX").is_some_and(|v| v == "1") {
            panic!("HOOKBOX_REQUIRE_SANDBOX=1 but {reason}");
        }
        eprintln!("skipping: {reason}");
    }
    ok
}

/// A lower layer with `greeting` and `doomed`, an empty upper dir, both owned by `owner`.
fn layers(env: &TestEnv, owner: u32) -> (PathBuf, PathBuf) {
    let lower = env.path().join("lower");
    let upper = env.path().join("upper");
    std::fs::create_dir(&lower).unwrap();
    std::fs::create_dir(&upper).unwrap();
    std::fs::write(lower.join("greeting"), "hello from the lower layer\n").unwrap();
    std::fs::write(lower.join("doomed"), "to be deleted\n").unwrap();
    for path in [&lower, &upper] {
        std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
    }
    for file in ["greeting", "doomed"] {
        std::os::unix::fs::chown(lower.join(file), Some(owner), Some(owner)).unwrap();
    }
    (lower, upper)
}

fn read_config(bundle: &Path) -> Value {
    let text = std::fs::read(bundle.join("config.json")).expect("config.json written");
    serde_json::from_slice(&text).expect("config.json is JSON")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "runtime failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The run saw the sandbox's world, and its writes landed in the upper dir only.
fn assert_sandboxed_run(text: &str, lower: &Path, upper: &Path, upper_owner: u32) {
    for line in [
        "hello from the lower layer",
        "hostname=sandbox-0",
        "uid=0",
        "cwd=/var/lib/juju/agents/unit-sandbox-0/charm",
        "etc=refused",
        "unshare=refused",
        "host-dirs=hidden",
        "shell-pid=1",
        "net=lo ",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let new = upper.join("new");
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "written\n");
    assert_eq!(std::fs::metadata(&new).unwrap().uid(), upper_owner);
    let whiteout = std::fs::symlink_metadata(upper.join("doomed")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type()),
        "the deletion is a whiteout in the upper dir"
    );
    assert!(
        lower.join("doomed").exists(),
        "the lower layer is untouched"
    );
    assert!(!lower.join("new").exists());
    assert!(!Path::new("/etc/hookbox-bundle-probe").exists());
}

/// `export-bundle --lower L --upper U [EXTRA...] BUNDLE -- sh -c SCRIPT`.
fn export_args(lower: &Path, upper: &Path, bundle: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "export-bundle".into(),
        "--lower".into(),
        lower.display().to_string(),
        "--upper".into(),
        upper.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend([
        bundle.display().to_string(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
    ]);
    args
}

/// `sh -c` text that runs crun in a private mount namespace with the cgroup2 mount hidden.
fn crun_in_private_cgroupfs(state: &Path, bundle: &Path, id: &str) -> String {
    format!(
        "mount -t tmpfs none /sys/fs/cgroup/unified && exec crun --root {} \
         --cgroup-manager=disabled run -b {} {id}",
        state.display(),
        bundle.display()
    )
}

fn container_id(name: &str) -> String {
    format!("hookbox-test-{name}-{}", std::process::id())
}

#[test]
fn bundle_config_mirrors_the_sandbox() {
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, rustix::process::geteuid().as_raw());
    let bundle = env.path().join("bundle");
    env.hookbox()
        .args(export_args(
            &lower,
            &upper,
            &bundle,
            &["--memory", "256M", "--pids", "64", "--timeout", "2.5"],
        ))
        .assert()
        .success();
    let config = read_config(&bundle);
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["root"]["readonly"], true);
    assert_eq!(config["hostname"], "sandbox-0");
    assert_eq!(config["annotations"]["org.hookbox.timeout"], "2.5");
    let process = &config["process"];
    assert_eq!(process["args"][0], "sh");
    assert_eq!(process["noNewPrivileges"], true);
    assert_eq!(process["cwd"], "/var/lib/juju/agents/unit-sandbox-0/charm");
    assert!(
        process["env"]
            .as_array()
            .unwrap()
            .contains(&"LANG=C.UTF-8".into())
    );
    let bounding = process["capabilities"]["bounding"].as_array().unwrap();
    assert!(bounding.contains(&"CAP_CHOWN".into()));
    assert!(!bounding.contains(&"CAP_SYS_ADMIN".into()));
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        ["user", "mount", "pid", "ipc", "uts", "network"]
    );
    let overlay = config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "overlay")
        .expect("an overlay mount");
    assert_eq!(
        overlay["destination"],
        "/var/lib/juju/agents/unit-sandbox-0/charm"
    );
    let options: Vec<&str> = overlay["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(options.contains(&format!("lowerdir={}", lower.display()).as_str()));
    assert!(options.contains(&format!("upperdir={}", upper.display()).as_str()));
    assert!(options.contains(&"userxattr"));
    let seccomp = &config["linux"]["seccomp"];
    assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
    // The sandbox's deny list, each refused with an errno.
    let denied: Vec<&str> = seccomp["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == "SCMP_ACT_ERRNO")
        .flat_map(|rule| rule["names"].as_array().unwrap())
        .map(|name| name.as_str().unwrap())
        .collect();
    for name in [
        "kexec_load",
        "init_module",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "open_by_handle_at",
        "keyctl",
        "ptrace",
        "reboot",
        "swapon",
        "mount",
        "setns",
        "io_uring_setup",
    ] {
        assert!(denied.contains(&name), "{name} not denied in {seccomp}");
    }
    let usr = config["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/usr")
        .expect("/usr is bound");
    assert!(usr["options"].as_array().unwrap().contains(&"ro".into()));
    assert!(
        bundle
            .join("rootfs/var/lib/juju/agents/unit-sandbox-0/charm")
            .is_dir()
    );
    assert!(bundle.join("work").is_dir());
    if util::is_root() {
        // As root: the hookbox id range, cgroup limits, and the layers handed to its root.
        let mapping = &config["linux"]["uidMappings"][0];
        assert_eq!(mapping["containerID"], 0);
        assert_ne!(mapping["hostID"], 0);
        assert_eq!(
            config["linux"]["resources"]["memory"]["limit"],
            256 * 1024 * 1024
        );
        assert_eq!(config["linux"]["resources"]["pids"]["limit"], 64);
        let host_root = mapping["hostID"].as_u64().unwrap() as u32;
        assert_eq!(std::fs::metadata(&upper).unwrap().uid(), host_root);
    }

    // --network host keeps the host's network namespace.
    let host_net = env.path().join("bundle-host-net");
    env.hookbox()
        .args(export_args(
            &lower,
            &upper,
            &host_net,
            &["--network", "host"],
        ))
        .assert()
        .success();
    let namespaces = read_config(&host_net)["linux"]["namespaces"].clone();
    assert!(
        !namespaces
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"type": "network"}))
    );
}

#[test]
fn rootless_bundle_maps_the_caller_to_root_with_rlimits() {
    if !util::require_root() {
        return;
    }
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, NOBODY);
    let bundle = env.path().join("bundle");
    env.hookbox_as_nobody()
        .args(export_args(
            &lower,
            &upper,
            &bundle,
            &["--memory", "256M", "--pids", "64"],
        ))
        .assert()
        .success();
    let config = read_config(&bundle);
    for key in ["uidMappings", "gidMappings"] {
        assert_eq!(
            config["linux"][key],
            serde_json::json!([{"containerID": 0, "hostID": NOBODY, "size": 1}])
        );
    }
    assert!(config["linux"]["resources"].is_null());
    let rlimits = config["process"]["rlimits"].as_array().unwrap();
    let rlimit = |name: &str| rlimits.iter().find(|r| r["type"] == name).cloned();
    assert_eq!(rlimit("RLIMIT_NPROC").unwrap()["hard"], 64);
    assert_eq!(rlimit("RLIMIT_AS").unwrap()["hard"], 256 * 1024 * 1024);
    assert_eq!(rlimit("RLIMIT_CORE").unwrap()["hard"], 0);
    assert_eq!(std::fs::metadata(&upper).unwrap().uid(), NOBODY);
}

#[test]
fn export_refuses_a_non_empty_output_and_bad_layers() {
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, rustix::process::geteuid().as_raw());
    let out = env.path().join("taken");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), "mine\n").unwrap();
    env.hookbox()
        .args(export_args(&lower, &upper, &out, &[]))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "bundle directory {} already exists and is not empty",
            out.display()
        )));
    let entries: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "the output directory is untouched");
    assert_eq!(std::fs::read_to_string(out.join("keep")).unwrap(), "mine\n");

    // A missing lower layer: refused before anything is created.
    let fresh = env.path().join("fresh");
    env.hookbox()
        .args(export_args(
            &env.path().join("no-such-layer"),
            &upper,
            &fresh,
            &[],
        ))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("lower layer"))
        .stderr(predicates::str::contains(
            "no-such-layer is not a directory",
        ));
    assert!(!fresh.exists());

    // A layer path the overlay option string cannot carry.
    let odd = env.path().join("a,b");
    std::fs::create_dir(&odd).unwrap();
    env.hookbox()
        .args(export_args(&odd, &upper, &fresh, &[]))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("contains ','"));
    assert!(!fresh.exists());

    // An empty existing directory is accepted.
    let empty = env.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = env
        .hookbox()
        .args(export_args(&lower, &upper, &empty, &["--json"]))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(written["path"], empty.display().to_string());
    assert_eq!(
        written["config"],
        empty.join("config.json").display().to_string()
    );
    assert_eq!(
        written["rootfs"],
        empty.join("rootfs").display().to_string()
    );
    assert_eq!(written["work"], empty.join("work").display().to_string());
    assert!(empty.join("config.json").is_file());
}

#[test]
fn crun_runs_the_bundle_as_root() {
    if !util::require_root() {
        return;
    }
    if !util::sandbox_available() || !runtime_available("crun") {
        return;
    }
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, 0);
    let bundle = env.path().join("bundle");
    env.hookbox()
        .args(export_args(&lower, &upper, &bundle, &[]))
        .assert()
        .success();
    let host_root = read_config(&bundle)["linux"]["uidMappings"][0]["hostID"]
        .as_u64()
        .unwrap() as u32;
    let state = env.path().join("crun-state");
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(crun_in_private_cgroupfs(
            &state,
            &bundle,
            &container_id("crun-root"),
        ))
        .output()
        .unwrap();
    assert_sandboxed_run(&stdout(&output), &lower, &upper, host_root);
}

#[test]
fn crun_runs_the_bundle_rootless() {
    if !util::require_root() {
        return;
    }
    if !util::sandbox_available() || !runtime_available("crun") {
        return;
    }
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, NOBODY);
    let bundle = env.path().join("bundle");
    let state = env.path().join("crun-state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    // hookbox_as_nobody puts a copy of the binary where uid 65534 can run it.
    let _ = env.hookbox_as_nobody();
    let hookbox = env.path().join("bin/hookbox");
    // Exported inside the runtime's user namespace, with the id maps of that namespace.
    let export = export_args(
        &lower,
        &upper,
        &bundle,
        &["--uid-map", "0:0:1", "--gid-map", "0:0:1"],
    );
    let quoted: Vec<String> = std::iter::once(hookbox.display().to_string())
        .chain(export)
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let script = format!(
        "{} >/dev/null && {}",
        quoted.join(" "),
        crun_in_private_cgroupfs(&state, &bundle, &container_id("crun-rootless"))
    );
    let output = util::as_nobody("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(&script)
        .env("HOME", env.path())
        .output()
        .unwrap();
    assert_sandboxed_run(&stdout(&output), &lower, &upper, NOBODY);
}

#[test]
fn runc_runs_the_bundle_as_root() {
    if !util::require_root() {
        return;
    }
    if !util::sandbox_available() || !runtime_available("runc") {
        return;
    }
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, 0);
    let bundle = env.path().join("bundle");
    env.hookbox()
        .args(export_args(&lower, &upper, &bundle, &[]))
        .assert()
        .success();
    let host_root = read_config(&bundle)["linux"]["uidMappings"][0]["hostID"]
        .as_u64()
        .unwrap() as u32;
    let output = Command::new("runc")
        .arg("--root")
        .arg(env.path().join("runc-state"))
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(container_id("runc-root"))
        .output()
        .unwrap();
    assert_sandboxed_run(&stdout(&output), &lower, &upper, host_root);
}

#[test]
fn runc_runs_the_bundle_rootless_unchanged() {
    if !util::require_root() {
        return;
    }
    if !util::sandbox_available() || !runtime_available("runc") {
        return;
    }
    let env = TestEnv::new();
    let (lower, upper) = layers(&env, NOBODY);
    let bundle = env.path().join("bundle");
    env.hookbox_as_nobody()
        .args(export_args(&lower, &upper, &bundle, &[]))
        .assert()
        .success();
    let output = util::as_nobody("runc")
        .arg("--root")
        .arg(env.path().join("runc-state"))
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(container_id("runc-rootless"))
        .env("HOME", env.path())
        .env("XDG_RUNTIME_DIR", env.path().join("xdg"))
        .output()
        .unwrap();
    assert_sandboxed_run(&stdout(&output), &lower, &upper, NOBODY);
}
