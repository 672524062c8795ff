//! Handler discovery, DESIGN.md rule 1: a handler that cannot be executed (bad shebang, no
//! interpreter line and not a binary, no exec bit) is a failed hook that leaves the charm
//! dir as it was; a `dispatch` without an exec bit does not win over the hook.

use std::path::Path;
use std::process::Command;

use super::{Identity, Units, write_charm};

/// The listing [`Units::tree`] takes inside the sandbox, taken of `dir` on the host.
fn host_tree(dir: &Path) -> String {
    let output = Command::new("sh")
        .args([
            "-c",
            "find . -exec stat -c '%n %F %a' {} + | LC_ALL=C sort; find . -type l -exec readlink {} + | LC_ALL=C sort; find . -type f -exec sha256sum {} + | LC_ALL=C sort",
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// Deploys a charm whose `hooks/install` is `content` with `mode`: install fails, the unit
/// is in error for it, and its charm dir is the charm's, untouched.
fn install_cannot_run(u: &Units, name: &str, content: &str, mode: u32) {
    let charm = write_charm(
        &u.env,
        name,
        "",
        &[
            ("hooks/install", content, mode),
            ("hooks/start", "#!/bin/sh\necho started > started\n", 0o755),
        ],
    );
    let ingested: serde_json::Value =
        serde_json::from_str(&u.expect(&["ingest", "--json", charm.to_str().unwrap()], 0)).unwrap();
    let (code, out, err) = u.run(&["deploy", charm.to_str().unwrap(), name]);
    assert_eq!(code, 1, "{name}: {out}{err}");
    let unit = format!("{name}/0");

    let history = u.history(&unit);
    let install: Vec<_> = history.iter().filter(|r| r["hook"] == "install").collect();
    assert_eq!(install.len(), 1, "{name}: {history:?}");
    assert_eq!(install[0]["outcome"], "failed", "{name}: {history:?}");
    assert!(
        history.iter().all(|r| r["hook"] != "start"),
        "{name}: no hook runs after the failure: {history:?}"
    );

    let status = u.unit_status(&unit);
    assert_eq!(status["error"]["hook"], "install", "{name}: {status}");
    let text = u.expect(&["status", &unit], 0);
    assert!(text.contains("hook failed: \"install\""), "{name}: {text}");

    // Everything but the root's own mode (the upper's, 0755, where the store's is 0555).
    let without_root = |listing: String| -> Vec<String> {
        listing
            .lines()
            .filter(|line| !line.starts_with(". directory "))
            .map(str::to_owned)
            .collect()
    };
    let tree = Path::new(ingested["tree"].as_str().unwrap());
    assert_eq!(
        without_root(u.tree(&unit)),
        without_root(host_tree(tree)),
        "{name}: the charm dir changed"
    );
}

fn unrunnable_handlers_fail(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    install_cannot_run(
        &u,
        "badshebang",
        "#!/nonexistent/interp\necho installed > installed\n",
        0o755,
    );
    install_cannot_run(
        &u,
        "nointerp",
        "echo installed > installed\ntouch also-this\n",
        0o755,
    );
    install_cannot_run(
        &u,
        "noexec",
        "#!/bin/sh\necho installed > installed\n",
        0o644,
    );
}

#[test]
fn unrunnable_handlers_fail_as_caller() {
    unrunnable_handlers_fail(Identity::Caller);
}

#[test]
fn unrunnable_handlers_fail_as_nobody() {
    unrunnable_handlers_fail(Identity::Nobody);
}

#[test]
fn a_dispatch_without_an_exec_bit_leaves_the_hook_to_run() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let charm = write_charm(
        &u.env,
        "lazy",
        "",
        &[
            (
                "dispatch",
                "#!/bin/sh\necho \"$JUJU_DISPATCH_PATH\" >> dispatched\n",
                0o644,
            ),
            (
                "hooks/install",
                "#!/bin/sh\necho \"$JUJU_DISPATCH_PATH\" > installed\n",
                0o755,
            ),
        ],
    );
    u.expect(&["deploy", charm.to_str().unwrap(), "lazy"], 0);
    assert_eq!(
        u.read("lazy/0", "installed").as_deref(),
        Some("hooks/install\n")
    );
    assert_eq!(u.read("lazy/0", "dispatched"), None);
    let history = u.history("lazy/0");
    let install: Vec<_> = history.iter().filter(|r| r["hook"] == "install").collect();
    assert_eq!(install.len(), 1, "{history:?}");
    assert_eq!(install[0]["outcome"], "ok", "{history:?}");
    // The unit's hook-tool socket directory is empty once its hooks have run.
    let agent_dirs = u.env.root().join("units/lazy-0/run");
    let left: Vec<_> = walk_entries(&agent_dirs);
    assert_eq!(left, vec![agent_dirs.join("agent")], "{left:?}");
}

/// Every path under `dir`, depth first (nothing when it does not exist).
fn walk_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.clone());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk_entries(&path));
        }
    }
    found
}
