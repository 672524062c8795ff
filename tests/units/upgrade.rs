//! Charm upgrades through the CLI (DESIGN.md rules 8-12 and 14): clean rebases keeping
//! runtime files, each conflict the issue names, `resolved` retrying the merge,
//! `preview-upgrade` changing nothing, compatibility refusals, settings conversion seen by
//! `config-get`, forced upgrades with S0, and SIGKILL at every upgrade step.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::Units;
use crate::util::Identity;

/// Writes one version of a charm under `charms-src/<dir>`: `metadata.yaml` with `name`,
/// then `files` (path, content, mode).
fn charm(
    u: &Units,
    dir: &str,
    name: &str,
    extra_meta: &str,
    files: &[(&str, &str, u32)],
) -> PathBuf {
    let root = u.env.path().join("charms-src").join(dir);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("metadata.yaml"),
        format!("name: {name}\nsummary: test\ndescription: test charm\n{extra_meta}"),
    )
    .unwrap();
    for (path, content, mode) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, content).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(u.env.path().join("charms-src"))
        .status()
        .unwrap();
    root
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The install hook every test charm shares: runtime files the merge must keep.
const INSTALL: &str =
    "#!/bin/sh\nset -eu\necho kept > runtime.txt\nmkdir -p state\necho 1 > state/n\n";

/// upgrade-charm and config-changed record that they ran, with the settings they see.
const RECORD_HOOK: &str =
    "#!/bin/sh\nset -eu\nmkdir -p ran\nconfig-get --format=json > \"ran/$JUJU_HOOK_NAME\"\n";

fn clean_upgrade_keeps_runtime_files(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let a = charm(
        &u,
        "web-1",
        "web",
        "",
        &[
            ("revision", "1\n", 0o644),
            ("hooks/install", INSTALL, 0o755),
            ("lib/util.sh", "old\n", 0o644),
            ("doc.txt", "doc\n", 0o644),
        ],
    );
    let b = charm(
        &u,
        "web-2",
        "web",
        "",
        &[
            ("revision", "2\n", 0o644),
            ("hooks/install", INSTALL, 0o755),
            ("hooks/upgrade-charm", RECORD_HOOK, 0o755),
            ("hooks/config-changed", RECORD_HOOK, 0o755),
            ("lib/util.sh", "new\n", 0o644),
            ("added.txt", "added\n", 0o644),
        ],
    );
    u.expect(&["deploy", s(&a), "web", "-n", "2"], 0);
    // Store revision 2 first: with no argument, upgrade takes the latest revision.
    u.expect(&["ingest", s(&b)], 0);
    let out = json(&u.expect(&["upgrade", "web", "--json"], 0));
    assert_eq!(out["outcome"], "upgraded");
    assert_eq!(out["to"]["revision"], 2);
    for unit in ["web/0", "web/1"] {
        assert_eq!(u.read(unit, "runtime.txt").as_deref(), Some("kept\n"));
        assert_eq!(u.read(unit, "state/n").as_deref(), Some("1\n"));
        assert_eq!(u.read(unit, "lib/util.sh").as_deref(), Some("new\n"));
        assert_eq!(u.read(unit, "added.txt").as_deref(), Some("added\n"));
        assert_eq!(u.read(unit, "doc.txt"), None, "the charm's delete applies");
        assert!(u.read(unit, "ran/upgrade-charm").is_some());
        assert!(u.read(unit, "ran/config-changed").is_some());
        let status = u.unit_status(unit);
        assert_eq!(status["agent_status"], "idle");
        assert_eq!(status["charm"]["revision"], 2);
        let hooks: Vec<String> = u
            .history(unit)
            .iter()
            .filter_map(|h| h["hook"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            hooks[hooks.len() - 2..],
            ["upgrade-charm".to_owned(), "config-changed".to_owned()]
        );
    }
    // Rule 14: the same charm again is a no-op (no hook runs).
    let runs = u.history("web/0").len();
    let out = json(&u.expect(&["upgrade", "web", s(&b), "--json"], 0));
    assert_eq!(out["outcome"], "unchanged");
    assert_eq!(u.history("web/0").len(), runs);
    // --revision 1 goes back (an unforced downgrade is a merge like any other).
    let out = json(&u.expect(&["upgrade", "web", "--revision", "1", "--json"], 0));
    assert_eq!(out["units"][0]["outcome"], "upgraded");
    assert_eq!(u.read("web/0", "doc.txt").as_deref(), Some("doc\n"));
    assert_eq!(u.read("web/0", "runtime.txt").as_deref(), Some("kept\n"));
    let err = u.run(&["upgrade", "web", "--revision", "7"]);
    assert_eq!(err.0, 4, "{err:?}");
    assert!(err.2.contains("no revision 7"), "{}", err.2);
}

#[test]
fn a_clean_upgrade_keeps_runtime_files() {
    clean_upgrade_keeps_runtime_files(Identity::Caller);
}

#[test]
fn a_clean_upgrade_keeps_runtime_files_as_nobody() {
    clean_upgrade_keeps_runtime_files(Identity::Nobody);
}

/// Charm pair for the conflict tests: v1 ships `conf/app.conf`, `lib/` (a dir) and `pkg/`
/// (a dir); install edits the conf, writes `lib/extra.txt` and Python bytecode under
/// `pkg/__pycache__/`; v2 changes the conf and, as asked, turns `lib` or `pkg` into files.
fn conflict_pair(u: &Units, turn_into_files: &[&str]) -> (PathBuf, PathBuf) {
    let install = "#!/bin/sh\nset -eu\necho kept > runtime.txt\necho runtime-edit >> conf/app.conf\necho extra > lib/extra.txt\nmkdir -p pkg/__pycache__\necho bytecode > pkg/__pycache__/mod.cpython-311.pyc\n";
    let a = charm(
        u,
        "app-1",
        "app",
        "",
        &[
            ("hooks/install", install, 0o755),
            ("conf/app.conf", "v1\n", 0o644),
            ("lib/a.sh", "a\n", 0o644),
            ("pkg/mod.py", "x = 1\n", 0o644),
        ],
    );
    let mut files: Vec<(&str, &str, u32)> = vec![
        ("hooks/install", install, 0o755),
        ("hooks/upgrade-charm", RECORD_HOOK, 0o755),
        ("conf/app.conf", "v2\n", 0o644),
    ];
    for (dir, path, content) in [("lib", "lib/a.sh", "a\n"), ("pkg", "pkg/mod.py", "x = 1\n")] {
        if turn_into_files.contains(&dir) {
            files.push((dir, "now a file\n", 0o644));
        } else {
            files.push((path, content, 0o644));
        }
    }
    let b = charm(u, "app-2", "app", "", &files);
    (a, b)
}

fn conflicts_of(status: &Value) -> Vec<(String, String, bool)> {
    assert_eq!(status["agent_status"], "error", "{status}");
    assert_eq!(status["error"]["kind"], "upgrade", "{status}");
    status["error"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["likely_bytecode"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn modify_modify_conflict_then_fix_and_resolve(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let (a, b) = conflict_pair(&u, &[]);
    u.expect(&["deploy", s(&a), "app"], 0);
    let before = u.tree("app/0");
    let out = json(&u.expect(&["upgrade", "app", s(&b), "--json"], 1));
    assert_eq!(out["units"][0]["outcome"], "conflicts");
    let status = u.unit_status("app/0");
    assert_eq!(
        conflicts_of(&status),
        vec![(
            "conf/app.conf".to_owned(),
            "modify/modify".to_owned(),
            false
        )]
    );
    assert_eq!(
        u.tree("app/0"),
        before,
        "the charm dir stays at its pre-upgrade tree"
    );
    assert_eq!(status["charm"]["digest"], out["from"]["digest"]);
    // Still conflicting: resolved stays in error.
    u.expect(&["resolved", "app/0"], 1);
    assert_eq!(conflicts_of(&u.unit_status("app/0")).len(), 1);
    // The operator puts the runtime side back to the old charm's content.
    u.expect(
        &[
            "shell",
            "app/0",
            "--",
            "sh",
            "-c",
            "printf 'v1\\n' > conf/app.conf",
        ],
        0,
    );
    u.expect(&["resolved", "app/0"], 0);
    let status = u.unit_status("app/0");
    assert_eq!(status["agent_status"], "idle", "{status}");
    assert_eq!(status["charm"]["digest"], out["to"]["digest"]);
    assert_eq!(u.read("app/0", "conf/app.conf").as_deref(), Some("v2\n"));
    assert_eq!(u.read("app/0", "runtime.txt").as_deref(), Some("kept\n"));
    assert!(u.read("app/0", "ran/upgrade-charm").is_some());
}

#[test]
fn a_runtime_edit_the_new_charm_also_changes_conflicts_until_fixed() {
    modify_modify_conflict_then_fix_and_resolve(Identity::Caller);
}

#[test]
fn a_runtime_edit_the_new_charm_also_changes_conflicts_until_fixed_as_nobody() {
    modify_modify_conflict_then_fix_and_resolve(Identity::Nobody);
}

#[test]
fn a_runtime_file_under_a_directory_the_new_charm_makes_a_file_conflicts() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (a, b) = conflict_pair(&u, &["lib"]);
    u.expect(&["deploy", s(&a), "app"], 0);
    // The conf edit is fixed beforehand so only the directory/file conflict remains.
    u.expect(&["upgrade", "app", s(&b)], 1);
    let conflicts = conflicts_of(&u.unit_status("app/0"));
    assert!(
        conflicts.contains(&("lib".to_owned(), "directory/file".to_owned(), false)),
        "{conflicts:?}"
    );
    assert!(conflicts.contains(&(
        "conf/app.conf".to_owned(),
        "modify/modify".to_owned(),
        false
    )));
}

#[test]
fn runtime_bytecode_under_a_directory_the_new_charm_makes_a_file_is_flagged() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (a, b) = conflict_pair(&u, &["pkg"]);
    u.expect(&["deploy", s(&a), "app"], 0);
    let preview = json(&u.expect(&["preview-upgrade", "app", s(&b), "--json"], 1));
    let unit = &preview["units"][0];
    assert_eq!(unit["outcome"], "conflicts");
    let pkg = unit["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "pkg")
        .expect("a conflict at pkg");
    assert_eq!(pkg["kind"], "directory/file");
    assert_eq!(pkg["likely_bytecode"], true);
    let text = u.expect(&["preview-upgrade", "app", s(&b)], 1);
    assert!(
        text.contains("likely cause: runtime-written Python bytecode"),
        "{text}"
    );
    u.expect(&["upgrade", "app", s(&b)], 1);
    let conflicts = conflicts_of(&u.unit_status("app/0"));
    assert!(conflicts.contains(&("pkg".to_owned(), "directory/file".to_owned(), true)));
    // diff flags the runtime bytecode as the likely cause.
    let diff = json(&u.expect(&["diff", "app/0", "--json"], 0));
    let pyc = diff
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"] == "pkg/__pycache__/mod.cpython-311.pyc")
        .expect("the bytecode in diff");
    assert_eq!(pyc["conflict"], "directory/file");
    assert_eq!(pyc["likely_bytecode"], true);
    let text = u.expect(&["diff", "app/0"], 0);
    assert!(
        text.contains("likely cause: runtime-written Python bytecode"),
        "{text}"
    );
    // Deleting the bytecode and restoring the conf settles it.
    u.expect(
        &[
            "shell",
            "app/0",
            "--",
            "sh",
            "-c",
            "rm -r pkg/__pycache__ && printf 'v1\\n' > conf/app.conf",
        ],
        0,
    );
    u.expect(&["resolved", "app/0"], 0);
    assert_eq!(u.read("app/0", "pkg").as_deref(), Some("now a file\n"));
}

/// A full digest of the state root: every path, type, mode, size, mtime and file hash.
fn state_digest(root: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && find . -exec stat -c '%n %F %a %s %Y' {} + | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort")
        .arg("sh")
        .arg(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn preview_upgrade_reports_everything_and_changes_nothing() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (a, b) = conflict_pair(&u, &[]);
    let a_cfg = a.join("config.yaml");
    std::fs::write(&a_cfg, "options:\n  port: {type: int, default: 80}\n  gone: {type: string, default: x}\n  name: {type: string, default: n}\n").unwrap();
    std::fs::write(b.join("config.yaml"), "options:\n  port: {type: string, default: '80'}\n  name: {type: string, default: n}\n  fresh: {type: boolean, default: true}\n").unwrap();
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&b)
        .status()
        .unwrap();
    u.expect(
        &[
            "deploy",
            s(&a),
            "app",
            "-n",
            "2",
            "--config",
            "port=8080",
            "--config",
            "gone=y",
            "--config",
            "name=me",
        ],
        0,
    );
    let before = state_digest(&u.env.root());
    let preview = json(&u.expect(&["preview-upgrade", "app", s(&b), "--json"], 1));
    assert_eq!(
        state_digest(&u.env.root()),
        before,
        "preview-upgrade changed the state root"
    );
    assert_eq!(preview["compatible"], true);
    assert_eq!(
        preview["settings"]["kept"],
        serde_json::json!({"name": "me"})
    );
    let dropped: Vec<(String, String)> = preview["settings"]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["option"].as_str().unwrap().into(),
                d["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        dropped,
        vec![
            ("gone".to_owned(), "option removed".to_owned()),
            (
                "port".to_owned(),
                "type changed from int to string".to_owned()
            )
        ]
    );
    assert_eq!(
        preview["settings"]["defaulted"],
        serde_json::json!({"fresh": true, "port": "80"})
    );
    assert_eq!(preview["units"].as_array().unwrap().len(), 2);
    assert_eq!(preview["units"][1]["conflicts"][0]["path"], "conf/app.conf");
    // The text form too, and the charm never reached the store.
    let text = u.expect(&["preview-upgrade", "app", s(&b)], 1);
    assert!(
        text.contains("settings dropped: gone=\"y\" (option removed)"),
        "{text}"
    );
    assert_eq!(state_digest(&u.env.root()), before);
}

#[test]
fn incompatible_upgrades_are_refused_and_change_nothing() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let hook = ("hooks/install", INSTALL, 0o755);
    let wp = charm(
        &u,
        "wp-1",
        "wp",
        "requires:\n  db: {interface: mysql}\npeers:\n  cluster: {interface: wp-peer}\n",
        &[hook],
    );
    let db = charm(
        &u,
        "mysql-1",
        "mysql",
        "provides:\n  db: {interface: mysql}\n",
        &[hook],
    );
    u.expect(&["deploy", s(&wp), "wp"], 0);
    u.expect(&["deploy", s(&db), "mysql"], 0);
    u.expect(&["relate", "wp", "mysql"], 0);
    let before = state_digest(&u.env.root());
    let in_store = |l: &str| l.contains("./charms") || l.contains("./staging");
    let refused = |dir: &str, meta: &str, args: &[&str], needle: &str| {
        let path = charm(
            &u,
            dir,
            if dir.starts_with("other") {
                "other"
            } else {
                "wp"
            },
            meta,
            &[hook],
        );
        let mut full = vec!["upgrade", "wp"];
        full.extend_from_slice(args);
        full.push(s(&path));
        let (code, _, err) = u.run(&full);
        assert_eq!(code, 4, "{dir}: {err}");
        assert!(err.contains(needle), "{dir}: {err}");
        // Nothing changed but the charm store (the new charm was ingested).
        let now: String = state_digest(&u.env.root())
            .lines()
            .filter(|l| !in_store(l))
            .collect();
        let was: String = before.lines().filter(|l| !in_store(l)).collect();
        assert_eq!(now, was, "{dir}");
        let preview = json(
            &u.run(&["preview-upgrade", "wp", s(&path), "--switch", "--json"])
                .1,
        );
        if !dir.starts_with("other") {
            assert_eq!(preview["compatible"], false, "{dir}");
        }
    };
    refused(
        "wp-no-db",
        "peers:\n  cluster: {interface: wp-peer}\n",
        &[],
        r#"would break relation "wp:db mysql:db""#,
    );
    refused(
        "wp-other-iface",
        "requires:\n  db: {interface: pgsql}\npeers:\n  cluster: {interface: wp-peer}\n",
        &[],
        r#"would break relation "wp:db mysql:db""#,
    );
    refused(
        "wp-db-provided",
        "provides:\n  db: {interface: mysql}\npeers:\n  cluster: {interface: wp-peer}\n",
        &[],
        "is under provides, the relation uses it under requires",
    );
    refused(
        "wp-no-peer",
        "requires:\n  db: {interface: mysql}\n",
        &[],
        r#"would break relation "wp:cluster""#,
    );
    refused(
        "wp-subordinate",
        "subordinate: true\nrequires:\n  db: {interface: mysql}\n  host: {interface: juju-info, scope: container}\npeers:\n  cluster: {interface: wp-peer}\n",
        &[],
        "a principal charm must be replaced by a principal charm",
    );
    refused(
        "other-name",
        "requires:\n  db: {interface: mysql}\npeers:\n  cluster: {interface: wp-peer}\n",
        &[],
        "the name changes only with --switch",
    );
    // With --switch the same charm of another name goes through.
    let other = u.env.path().join("charms-src/other-name");
    u.expect(&["upgrade", "wp", "--switch", s(&other)], 0);
    assert_eq!(u.unit_status("wp/0")["charm"]["name"], "other");
}

#[test]
fn a_peer_relation_is_never_removed_and_subordinates_stay_subordinates() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let hook = ("hooks/install", INSTALL, 0o755);
    let a = charm(
        &u,
        "p-1",
        "p",
        "peers:\n  ring: {interface: ring}\n",
        &[hook],
    );
    let b = charm(
        &u,
        "p-2",
        "p",
        "requires:\n  ring: {interface: ring}\n",
        &[hook],
    );
    u.expect(&["deploy", s(&a), "p", "-n", "2"], 0);
    let before = u.unit_status("p/0");
    let (code, _, err) = u.run(&["upgrade", "p", s(&b)]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains(r#"would break relation "p:ring""#), "{err}");
    assert_eq!(u.unit_status("p/0")["charm"], before["charm"]);
    let preview = json(&u.run(&["preview-upgrade", "p", s(&b), "--json"]).1);
    assert_eq!(preview["compatible"], false);
    // A subordinate replaced by a principal.
    let sub = charm(
        &u,
        "s-1",
        "s",
        "subordinate: true\nrequires:\n  host: {interface: juju-info, scope: container}\n",
        &[hook],
    );
    let principal = charm(&u, "s-2", "s", "", &[hook]);
    u.expect(&["deploy", s(&sub), "s"], 0);
    let (code, _, err) = u.run(&["upgrade", "s", s(&principal)]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("a subordinate charm must be replaced by a subordinate charm"),
        "{err}"
    );
    assert_eq!(u.unit_status("s/0")["charm"]["name"], "s");
}

/// Settings (rule 12) through config-get in hooks: unit 1 is in error when the upgrade
/// comes, keeps seeing its charm's settings (also after a later `config` for the new
/// charm) and sees the new ones once resolved and upgraded.
#[test]
fn settings_follow_each_units_charm() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let update = "#!/bin/sh\nset -eu\nconfig-get --format=json > seen-by-update-status\nif [ \"$JUJU_UNIT_NAME\" = s/1 ] && [ ! -e fixed ]; then exit 1; fi\n";
    let a = charm(
        &u,
        "s-1",
        "s",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("hooks/update-status", update, 0o755),
            (
                "config.yaml",
                "options:\n  port: {type: int, default: 80}\n  gone: {type: string, default: x}\n  name: {type: string, default: n}\n",
                0o644,
            ),
        ],
    );
    let b = charm(
        &u,
        "s-2",
        "s",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("hooks/upgrade-charm", RECORD_HOOK, 0o755),
            ("hooks/config-changed", RECORD_HOOK, 0o755),
            (
                "config.yaml",
                "options:\n  port: {type: string, default: '80'}\n  name: {type: string, default: n}\n  fresh: {type: boolean, default: true}\n",
                0o644,
            ),
        ],
    );
    u.expect(
        &[
            "deploy",
            s(&a),
            "s",
            "-n",
            "2",
            "--config",
            "port=8080",
            "--config",
            "gone=y",
            "--config",
            "name=me",
        ],
        0,
    );
    u.expect(&["run", "s/1", "update-status"], 1);
    let out = json(&u.expect(&["upgrade", "s", s(&b), "--json"], 1));
    assert_eq!(out["units"][0]["outcome"], "upgraded");
    assert_eq!(out["units"][1]["outcome"], "deferred");
    let new_settings = serde_json::json!({"fresh": true, "name": "me", "port": "80"});
    assert_eq!(
        json(&u.read("s/0", "ran/upgrade-charm").unwrap()),
        new_settings
    );
    // A config change for the new charm reaches the upgraded unit only.
    u.expect(&["config", "s", "name=later"], 0);
    let later = serde_json::json!({"fresh": true, "name": "later", "port": "80"});
    assert_eq!(json(&u.read("s/0", "ran/config-changed").unwrap()), later);
    assert_eq!(
        u.unit_status("s/1")["charm"]["digest"],
        out["from"]["digest"]
    );
    // Unit 1, retried on its own charm, sees its own charm's settings.
    u.expect(&["shell", "s/1", "--", "touch", "fixed"], 0);
    u.expect(&["resolved", "s/1", "--retry"], 0);
    assert_eq!(
        json(&u.read("s/1", "seen-by-update-status").unwrap()),
        serde_json::json!({"gone": "y", "name": "me", "port": 8080})
    );
    // ... and then the deferred upgrade applied (rule 10), with the new charm's settings.
    let status = u.unit_status("s/1");
    assert_eq!(status["charm"]["digest"], out["to"]["digest"]);
    assert_eq!(json(&u.read("s/1", "ran/upgrade-charm").unwrap()), later);
    assert_eq!(u.read("s/1", "runtime.txt").as_deref(), Some("kept\n"));
}

/// Forced upgrades of a unit in hook error: S0 recorded once, rebuilt from for every
/// forced charm, restored byte for byte when forced back; `resolved --retry` runs the
/// failed hook with the new charm's code, then config-changed.
fn forced_in_hook_error(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let failing = "#!/bin/sh\necho from-v1 > attempt\nexit 1\n";
    let fixed = "#!/bin/sh\nset -eu\necho from-v$(cat version) > attempt\n";
    let a = charm(
        &u,
        "f-1",
        "f",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("hooks/update-status", failing, 0o755),
            ("version", "1\n", 0o644),
            ("shared", "one\n", 0o644),
        ],
    );
    let b = charm(
        &u,
        "f-2",
        "f",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("hooks/update-status", fixed, 0o755),
            ("hooks/config-changed", RECORD_HOOK, 0o755),
            ("hooks/upgrade-charm", RECORD_HOOK, 0o755),
            ("version", "2\n", 0o644),
            ("shared", "two\n", 0o644),
        ],
    );
    let c = charm(
        &u,
        "f-3",
        "f",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("hooks/update-status", fixed, 0o755),
            ("hooks/config-changed", RECORD_HOOK, 0o755),
            ("version", "3\n", 0o644),
        ],
    );
    u.expect(&["deploy", s(&a), "f"], 0);
    // A runtime edit the forced charms also change: a conflict the forced charm wins.
    u.expect(&["run", "f/0", "update-status"], 1);
    u.expect(
        &[
            "shell",
            "f/0",
            "--",
            "sh",
            "-c",
            "echo operator > shared; echo op > op.txt",
        ],
        0,
    );
    let s0 = u.tree("f/0");
    // Unforced: left alone.
    let out = json(&u.expect(&["upgrade", "f", s(&b), "--json"], 1));
    assert_eq!(out["units"][0]["outcome"], "deferred");
    assert_eq!(u.tree("f/0"), s0);
    // Forced to v2: stays in hook error, no upgrade-charm ran.
    let out = json(&u.expect(&["upgrade", "f", s(&b), "--force", "--json"], 1));
    assert_eq!(out["units"][0]["outcome"], "forced");
    assert_eq!(out["units"][0]["overridden"][0]["path"], "shared");
    let status = u.unit_status("f/0");
    assert_eq!(status["error"]["kind"], "hook");
    assert_eq!(status["charm"]["digest"], out["to"]["digest"]);
    assert_eq!(u.read("f/0", "version").as_deref(), Some("2\n"));
    assert_eq!(u.read("f/0", "shared").as_deref(), Some("two\n"));
    assert_eq!(u.read("f/0", "op.txt").as_deref(), Some("op\n"));
    assert_eq!(u.read("f/0", "ran/upgrade-charm"), None);
    // Forced to v3, then back to v1: S0 byte for byte.
    u.expect(&["upgrade", "f", s(&c), "--force"], 1);
    assert_eq!(u.read("f/0", "version").as_deref(), Some("3\n"));
    assert_eq!(u.read("f/0", "op.txt").as_deref(), Some("op\n"));
    let out = json(&u.expect(&["upgrade", "f", s(&a), "--force", "--json"], 1));
    assert_eq!(out["units"][0]["outcome"], "restored");
    assert_eq!(u.tree("f/0"), s0, "forcing back restores S0 byte for byte");
    // Forced to v2 again; the retry runs v2's update-status, then config-changed.
    u.expect(&["upgrade", "f", s(&b), "--force"], 1);
    u.expect(&["resolved", "f/0", "--retry"], 0);
    assert_eq!(u.read("f/0", "attempt").as_deref(), Some("from-v2\n"));
    assert!(u.read("f/0", "ran/config-changed").is_some());
    assert_eq!(u.unit_status("f/0")["agent_status"], "idle");
}

#[test]
fn forced_upgrades_in_hook_error_rebuild_from_s0() {
    forced_in_hook_error(Identity::Caller);
}

#[test]
fn forced_upgrades_in_hook_error_rebuild_from_s0_as_nobody() {
    forced_in_hook_error(Identity::Nobody);
}

/// From an upgrade conflict, --force reverts to the pre-upgrade tree and upgrades; forcing
/// back to the original charm restores that tree.
fn forced_from_a_conflict(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let (a, b) = conflict_pair(&u, &["lib"]);
    u.expect(&["deploy", s(&a), "app"], 0);
    let before = u.tree("app/0");
    u.expect(&["upgrade", "app", s(&b)], 1);
    // The operator's half-done fix is dropped by the forced upgrade.
    u.expect(
        &["shell", "app/0", "--", "sh", "-c", "echo half > half-fix"],
        0,
    );
    let out = json(&u.expect(&["upgrade", "app", s(&b), "--force", "--json"], 0));
    assert_eq!(out["units"][0]["outcome"], "forced");
    let status = u.unit_status("app/0");
    assert_eq!(status["agent_status"], "idle", "{status}");
    assert_eq!(status["charm"]["digest"], out["to"]["digest"]);
    assert_eq!(u.read("app/0", "lib").as_deref(), Some("now a file\n"));
    assert_eq!(u.read("app/0", "conf/app.conf").as_deref(), Some("v2\n"));
    assert_eq!(u.read("app/0", "runtime.txt").as_deref(), Some("kept\n"));
    assert_eq!(u.read("app/0", "half-fix"), None);
    assert!(u.read("app/0", "ran/upgrade-charm").is_some());
    let out = json(&u.expect(&["upgrade", "app", s(&a), "--force", "--json"], 0));
    assert_eq!(out["units"][0]["outcome"], "restored");
    assert_eq!(u.tree("app/0"), before);
    // Back at S0 and clean: an unforced upgrade conflicts again, exactly as the first time.
    u.expect(&["upgrade", "app", s(&b)], 1);
    assert_eq!(u.tree("app/0"), before);
}

#[test]
fn a_forced_upgrade_from_a_conflict_reverts_then_upgrades() {
    forced_from_a_conflict(Identity::Caller);
}

#[test]
fn a_forced_upgrade_from_a_conflict_reverts_then_upgrades_as_nobody() {
    forced_from_a_conflict(Identity::Nobody);
}

/// SIGKILL at each step of an upgrade: the next command rolls back (before the journal
/// swap) or completes it (after); the charm dir is exactly the pre- or post-upgrade tree.
#[test]
fn a_killed_upgrade_rolls_back_or_completes() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let a = charm(
        &u,
        "k-1",
        "k",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("lib/x", "1\n", 0o644),
            ("gone", "g\n", 0o644),
        ],
    );
    let b = charm(
        &u,
        "k-2",
        "k",
        "",
        &[
            ("hooks/install", INSTALL, 0o755),
            ("lib/x", "2\n", 0o644),
            ("new", "n\n", 0o644),
        ],
    );
    // The reference: the post-upgrade tree (no upgrade hook writes anything).
    u.expect(&["deploy", s(&a), "ref"], 0);
    let pre = u.tree("ref/0");
    u.expect(&["upgrade", "ref", s(&b)], 0);
    let post = u.tree("ref/0");
    assert_ne!(pre, post);
    for (n, (point, completes)) in [
        ("upgrade:before-merge", false),
        ("upgrade:after-materialize", false),
        ("upgrade:mid-swap", false),
        ("upgrade:after-swap", true),
        ("upgrade:before-upgrade-charm", true),
    ]
    .into_iter()
    .enumerate()
    {
        let app = format!("k{}", ["a", "b", "c", "d", "e"][n]);
        let unit = format!("{app}/0");
        u.expect(&["deploy", s(&a), &app], 0);
        assert_eq!(u.tree(&unit), pre);
        let status = u
            .hb()
            .args(["upgrade", &app, s(&b)])
            .env("HOOKBOX_FAILPOINT", point)
            .output()
            .unwrap()
            .status;
        assert_eq!(status.signal(), Some(9), "{point}: killed");
        // Any next command recovers the unit.
        let st = u.unit_status(&unit);
        assert_eq!(st["agent_status"], "idle", "{point}: {st}");
        let tree = u.tree(&unit);
        if completes {
            assert_eq!(tree, post, "{point}: completed");
            assert_eq!(st["charm"]["name"], "k");
            assert_eq!(
                st["queued"],
                serde_json::json!(["upgrade-charm", "config-changed"])
            );
        } else {
            assert_eq!(tree, pre, "{point}: rolled back");
        }
        // The next upgrade finishes the job (runs the queued hooks, or rebases again).
        u.expect(&["upgrade", &app, s(&b)], 0);
        assert_eq!(u.tree(&unit), post, "{point}: after the next upgrade");
        let st = u.unit_status(&unit);
        assert_eq!(st["queued"], serde_json::json!([]), "{point}");
        let layers = std::fs::read_dir(u.env.root().join(format!("units/{app}-0/layers")))
            .unwrap()
            .count();
        assert_eq!(
            st["layers"].as_u64().unwrap() as usize,
            layers,
            "{point}: no orphan layer"
        );
    }
}
