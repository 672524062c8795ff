//! Relations through the real CLI in real sandboxes: relate with endpoint inference, the
//! relation hooks in Juju's order with their environment and data, unrelate, peer relations
//! from deploy, every refusal, and a failed relation hook held in error until resolved.

use serde_json::Value;

use super::{Identity, Units, write_charm};

const SH: &str = "#!/bin/sh\nset -eu\n";

/// wordpress requires db (mysql) and records what its relation hooks see; mysql provides
/// db and sets a password when a unit joins.
fn pair(u: &Units) -> (std::path::PathBuf, std::path::PathBuf) {
    let joined = format!(
        "{SH}echo \"$JUJU_RELATION $JUJU_RELATION_ID $JUJU_REMOTE_UNIT $JUJU_REMOTE_APP\" > joined-env\n"
    );
    let changed = format!("{SH}relation-get password \"$JUJU_REMOTE_UNIT\" > db-password\n");
    let departed = format!(
        "{SH}echo \"$JUJU_DEPARTING_UNIT $JUJU_REMOTE_UNIT list=[$(relation-list)] pw=$(relation-get password \"$JUJU_DEPARTING_UNIT\")\" > departed\n"
    );
    let broken = format!(
        "{SH}echo \"ids=[$(relation-ids db)] remote=[$JUJU_REMOTE_UNIT] app=$JUJU_REMOTE_APP\" > broken\n"
    );
    let wordpress = write_charm(
        &u.env,
        "wordpress",
        "requires:\n  db:\n    interface: mysql\n",
        &[
            ("hooks/db-relation-joined", joined.as_str(), 0o755),
            ("hooks/db-relation-changed", changed.as_str(), 0o755),
            ("hooks/db-relation-departed", departed.as_str(), 0o755),
            ("hooks/db-relation-broken", broken.as_str(), 0o755),
        ],
    );
    let created = format!("{SH}relation-ids db > created-ids\n");
    let mysql_joined = format!("{SH}relation-set password=s3cret\n");
    let mysql = write_charm(
        &u.env,
        "mysql",
        "provides:\n  db:\n    interface: mysql\n",
        &[
            ("hooks/db-relation-created", created.as_str(), 0o755),
            ("hooks/db-relation-joined", mysql_joined.as_str(), 0o755),
        ],
    );
    (wordpress, mysql)
}

/// The hook names of a unit's history, from the first relation hook on.
fn relation_hooks(u: &Units, unit: &str) -> Vec<String> {
    u.history(unit)
        .iter()
        .map(|r| r["hook"].as_str().unwrap_or_default().to_owned())
        .skip_while(|h| !h.contains("-relation-"))
        .collect()
}

fn status(u: &Units) -> Value {
    serde_json::from_str(&u.expect(&["status", "--json"], 0)).unwrap()
}

fn relate_and_unrelate(mode: Identity) {
    let Some(u) = Units::new(mode) else { return };
    let (wordpress, mysql) = pair(&u);
    u.expect(&["deploy", wordpress.to_str().unwrap(), "wordpress"], 0);
    u.expect(&["deploy", mysql.to_str().unwrap(), "mysql"], 0);
    let out = u.expect(&["relate", "wordpress", "mysql"], 0);
    assert!(out.contains("related mysql:db wordpress:db"), "{out}");

    let json = status(&u);
    let relation = &json["applications"]["wordpress"]["relations"][0];
    let id = relation["id"].as_u64().unwrap();
    assert_eq!(relation["relation_id"], format!("db:{id}"));
    assert_eq!(relation["role"], "requirer");
    assert_eq!(relation["related"], "mysql:db");
    assert_eq!(relation["interface"], "mysql");
    assert_eq!(
        json["applications"]["mysql"]["relations"][0]["role"],
        "provider"
    );
    let mysql_unit = &json["applications"]["mysql"]["units"]["mysql/0"]["relations"][0];
    assert_eq!(mysql_unit["settings"]["password"], "s3cret");
    assert_eq!(mysql_unit["settings"]["private-address"], "127.0.0.1");
    assert_eq!(mysql_unit["members"], serde_json::json!(["wordpress/0"]));

    // The data went across, and the hooks saw Juju's environment.
    assert_eq!(
        u.read("wordpress/0", "db-password").as_deref(),
        Some("s3cret\n")
    );
    assert_eq!(
        u.read("wordpress/0", "joined-env").unwrap(),
        format!("db db:{id} mysql/0 mysql\n")
    );
    assert_eq!(
        u.read("mysql/0", "created-ids").unwrap(),
        format!("db:{id}\n")
    );
    // Juju's order: created, then joined and changed for the remote unit.
    assert_eq!(
        relation_hooks(&u, "mysql/0")[..3],
        [
            "db-relation-created",
            "db-relation-joined",
            "db-relation-changed"
        ]
    );
    let wp = relation_hooks(&u, "wordpress/0");
    assert_eq!(
        wp[..3],
        [
            "db-relation-created",
            "db-relation-joined",
            "db-relation-changed"
        ]
    );
    assert!(wp.iter().all(|h| h.starts_with("db-relation-")), "{wp:?}");

    // unrelate: departed for the remote unit, then broken, on both sides.
    let out = u.expect(&["unrelate", "wordpress", "mysql"], 0);
    assert!(out.contains("removed relation"), "{out}");
    assert_eq!(
        u.read("wordpress/0", "departed").unwrap(),
        "mysql/0 mysql/0 list=[] pw=s3cret\n"
    );
    assert_eq!(
        u.read("wordpress/0", "broken").unwrap(),
        "ids=[] remote=[] app=mysql\n"
    );
    for unit in ["wordpress/0", "mysql/0"] {
        let hooks = relation_hooks(&u, unit);
        assert_eq!(
            hooks[hooks.len() - 2..],
            ["db-relation-departed", "db-relation-broken"],
            "{unit}: {hooks:?}"
        );
    }
    let json = status(&u);
    for app in ["wordpress", "mysql"] {
        assert_eq!(
            json["applications"][app]["relations"],
            serde_json::json!([])
        );
    }
    assert_eq!(
        json["applications"]["wordpress"]["units"]["wordpress/0"]["relations"],
        serde_json::json!([])
    );
    // A new relation gets a new id.
    u.expect(&["relate", "wordpress:db", "mysql:db"], 0);
    let again = status(&u)["applications"]["wordpress"]["relations"][0]["id"]
        .as_u64()
        .unwrap();
    assert!(again > id, "{again} after {id}");
}

#[test]
fn relate_and_unrelate_as_caller() {
    relate_and_unrelate(Identity::Caller);
}

#[test]
fn relate_and_unrelate_as_nobody() {
    relate_and_unrelate(Identity::Nobody);
}

#[test]
fn peers_join_every_other_unit_from_deploy_and_add_unit() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let changed = format!("{SH}relation-list | tr '\\n' ' ' > peers\n");
    let departed =
        format!("{SH}echo \"$JUJU_DEPARTING_UNIT [$(relation-list | tr '\\n' ' ')]\" > departed\n");
    let charm = write_charm(
        &u.env,
        "cluster",
        "peers:\n  ring:\n    interface: ring\n",
        &[
            ("hooks/ring-relation-changed", changed.as_str(), 0o755),
            ("hooks/ring-relation-departed", departed.as_str(), 0o755),
        ],
    );
    u.expect(
        &["deploy", charm.to_str().unwrap(), "ring", "--units", "3"],
        0,
    );
    assert_eq!(u.read("ring/0", "peers").unwrap(), "ring/1 ring/2 ");
    assert_eq!(u.read("ring/1", "peers").unwrap(), "ring/0 ring/2 ");
    assert_eq!(u.read("ring/2", "peers").unwrap(), "ring/0 ring/1 ");
    let hooks = relation_hooks(&u, "ring/1");
    assert_eq!(hooks[0], "ring-relation-created");
    let json = status(&u);
    let relation = &json["applications"]["ring"]["relations"][0];
    assert_eq!(relation["role"], "peer");
    assert_eq!(relation["related"], "ring:ring");
    // Created runs after install and before leader-elected, joined after start.
    let all: Vec<String> = u
        .history("ring/0")
        .iter()
        .map(|r| r["hook"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        all[..6],
        [
            "install",
            "ring-relation-created",
            "leader-elected",
            "config-changed",
            "start",
            "ring-relation-joined"
        ]
    );

    u.expect(&["add-unit", "ring"], 0);
    assert_eq!(u.read("ring/3", "peers").unwrap(), "ring/0 ring/1 ring/2 ");
    assert_eq!(u.read("ring/0", "peers").unwrap(), "ring/1 ring/2 ring/3 ");

    u.expect(&["remove-unit", "ring/3"], 0);
    assert_eq!(
        u.read("ring/0", "departed").unwrap(),
        "ring/3 [ring/1 ring/2 ]\n"
    );
    let members = &status(&u)["applications"]["ring"]["units"]["ring/0"]["relations"][0]["members"];
    assert_eq!(*members, serde_json::json!(["ring/1", "ring/2"]));
    // Peer relations cannot be removed.
    let (code, _, err) = u.run(&["unrelate", "ring", "ring"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("peer relation"), "{err}");
}

#[test]
fn refusals_change_nothing() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (wordpress, mysql) = pair(&u);
    let charms = [
        (wordpress, "wordpress"),
        (mysql, "mysql"),
        (
            write_charm(
                &u.env,
                "pg",
                "provides:\n  db:\n    interface: pgsql\n",
                &[],
            ),
            "pg",
        ),
        (
            write_charm(
                &u.env,
                "other",
                "requires:\n  db:\n    interface: mysql\npeers:\n  ring:\n    interface: ring\n",
                &[],
            ),
            "other",
        ),
        (
            write_charm(
                &u.env,
                "twin",
                "provides:\n  db:\n    interface: mysql\n  db-admin:\n    interface: mysql\n",
                &[],
            ),
            "twin",
        ),
        (
            write_charm(
                &u.env,
                "single",
                "provides:\n  db:\n    interface: mysql\n    limit: 1\n",
                &[],
            ),
            "single",
        ),
        (
            write_charm(
                &u.env,
                "logger",
                "provides:\n  logs:\n    interface: logging\n    scope: container\n",
                &[],
            ),
            "logger",
        ),
        (
            write_charm(
                &u.env,
                "shipper",
                "requires:\n  logs:\n    interface: logging\n",
                &[],
            ),
            "shipper",
        ),
    ];
    for (path, app) in &charms {
        u.expect(&["deploy", path.to_str().unwrap(), app], 0);
    }
    u.expect(&["relate", "wordpress", "mysql"], 0);
    u.expect(&["relate", "other", "single"], 0);
    let before = status(&u);
    let history_before = u.history("wordpress/0").len();

    let cases: [(&[&str], &str); 11] = [
        (&["relate", "wordpress", "nope"], "unknown application nope"),
        (
            &["relate", "wordpress:nope", "mysql"],
            "has no endpoint \"nope\"",
        ),
        (
            &["relate", "wordpress:db", "pg:db"],
            "implements interface \"mysql\"",
        ),
        (
            &["relate", "wordpress:db", "other:db"],
            "one side must provide",
        ),
        (&["relate", "other:ring", "mysql"], "peer endpoint"),
        (&["relate", "wordpress", "twin"], "twin:db"),
        (&["relate", "wordpress", "mysql"], "already exists"),
        (&["relate", "wordpress", "single"], "at most 1 relation"),
        (&["relate", "logger", "shipper"], "needs a subordinate"),
        (&["relate", "wordpress", "pg"], "no matching endpoints"),
        (&["unrelate", "wordpress", "pg"], "no relation between"),
    ];
    for (args, message) in cases {
        let (code, out, err) = u.run(args);
        assert_eq!(code, 4, "{args:?}\n{out}\n{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let (_, _, err) = u.run(&["relate", "wordpress", "twin"]);
    assert!(
        err.contains("wordpress:db twin:db") && err.contains("wordpress:db twin:db-admin"),
        "the candidates are listed: {err}"
    );
    assert_eq!(status(&u)["applications"], before["applications"]);
    assert_eq!(u.history("wordpress/0").len(), history_before);
    // Named endpoints settle the ambiguity.
    u.expect(&["relate", "wordpress", "twin:db-admin"], 0);
}

#[test]
fn a_failed_relation_hook_drops_its_settings_and_holds_the_queue_until_resolved() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (_, mysql) = pair(&u);
    let changed = format!(
        "{SH}relation-set seen=\"$(relation-get password \"$JUJU_REMOTE_UNIT\")\"\n[ -e fixed ] || exit 1\n"
    );
    let wordpress = write_charm(
        &u.env,
        "fragile",
        "requires:\n  db:\n    interface: mysql\n",
        &[("hooks/db-relation-changed", changed.as_str(), 0o755)],
    );
    u.expect(&["deploy", wordpress.to_str().unwrap(), "wordpress"], 0);
    u.expect(&["deploy", mysql.to_str().unwrap(), "mysql"], 0);
    u.expect(&["relate", "wordpress", "mysql"], 1);

    let unit = u.unit_status("wordpress/0");
    assert_eq!(unit["agent_status"], "error");
    assert_eq!(unit["error"]["hook"], "db-relation-changed");
    assert!(
        unit["relations"][0]["settings"].get("seen").is_none(),
        "{unit}"
    );
    let mysql_changed = |u: &Units| {
        relation_hooks(u, "mysql/0")
            .iter()
            .filter(|h| *h == "db-relation-changed")
            .count()
    };
    assert_eq!(
        mysql_changed(&u),
        1,
        "the dropped relation-set announced nothing"
    );

    // New remote units queue behind the failed hook.
    u.expect(&["add-unit", "mysql"], 0);
    // (A relation-changed for mysql/0's password may sit between them, depending on whether
    // wordpress/0 had joined mysql/0 before the password was set.)
    let unit = u.unit_status("wordpress/0");
    let queued: Vec<&str> = unit["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(queued[0], "db-relation-changed", "{queued:?}");
    assert_eq!(
        queued[queued.len() - 2..],
        ["db-relation-joined", "db-relation-changed"],
        "{queued:?}"
    );
    u.expect(&["shell", "wordpress/0", "--", "touch", "fixed"], 0);
    u.expect(&["resolved", "wordpress/0", "--retry"], 0);
    let unit = u.unit_status("wordpress/0");
    assert_eq!(unit["agent_status"], "idle");
    assert_eq!(unit["queued"], serde_json::json!([]));
    assert_eq!(unit["relations"][0]["settings"]["seen"], "s3cret");
    assert_eq!(
        unit["relations"][0]["members"],
        serde_json::json!(["mysql/0", "mysql/1"])
    );
    // Both mysql units heard about wordpress/0's new settings.
    assert_eq!(mysql_changed(&u), 2);
    assert!(relation_hooks(&u, "mysql/1").contains(&"db-relation-changed".to_owned()));
}

#[test]
fn a_relation_change_survives_a_kill_while_its_effects_are_applied() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (wordpress, _) = pair(&u);
    let set = format!("{SH}relation-set password=s3cret\n");
    let rotate = format!("{SH}relation-set -r \"$(relation-ids db)\" password=n3w\n");
    let mysql = write_charm(
        &u.env,
        "mysql",
        "provides:\n  db:\n    interface: mysql\n",
        &[
            ("hooks/db-relation-joined", set.as_str(), 0o755),
            ("hooks/update-status", rotate.as_str(), 0o755),
        ],
    );
    u.expect(&["deploy", wordpress.to_str().unwrap(), "wordpress"], 0);
    u.expect(&["deploy", mysql.to_str().unwrap(), "mysql"], 0);
    u.expect(&["relate", "wordpress", "mysql"], 0);
    assert_eq!(
        u.read("wordpress/0", "db-password").as_deref(),
        Some("s3cret\n")
    );

    // Killed after the hook committed, in the middle of applying its relation-set.
    u.kill_at(&["run", "mysql/0", "update-status"], "effects:mid-apply");

    // The next command replays the effects; wordpress/0 must still hear of the change.
    u.expect(&["run", "mysql/0", "update-status"], 0);
    assert_eq!(
        u.read("wordpress/0", "db-password").as_deref(),
        Some("n3w\n")
    );
}

/// A command reports every hook it causes: mysql's config-changed rotates the password with
/// `relation-set`, which runs db-relation-changed on wordpress/0; `config` lists that unit's
/// run beside mysql's, `run --json` under `also`, and the text output names it.
#[test]
fn commands_report_the_relation_hooks_they_cause_on_other_units() {
    let Some(u) = Units::new(Identity::Caller) else {
        return;
    };
    let (wordpress, _) = pair(&u);
    let rotate = format!(
        "{SH}ids=$(relation-ids db)\n[ -z \"$ids\" ] || relation-set -r \"$ids\" password=\"$(config-get password)\" rotation=\"$JUJU_CONTEXT_ID\"\n"
    );
    let mysql = write_charm(
        &u.env,
        "mysql-rotating",
        "provides:\n  db:\n    interface: mysql\n",
        &[
            (
                "config.yaml",
                "options:\n  password:\n    type: string\n    default: s3cret\n",
                0o644,
            ),
            ("hooks/config-changed", rotate.as_str(), 0o755),
        ],
    );
    u.expect(&["deploy", wordpress.to_str().unwrap(), "wordpress"], 0);
    u.expect(&["deploy", mysql.to_str().unwrap(), "mysql"], 0);
    u.expect(&["relate", "wordpress", "mysql"], 0);

    let out = u.expect(&["config", "mysql", "password=n3w", "--json"], 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    let ran = |unit: &str| -> Vec<String> {
        json["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["unit"] == unit)
            .flat_map(|r| r["runs"].as_array().unwrap().iter())
            .map(|run| run["hook"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ran("mysql/0"), ["config-changed"], "{json}");
    assert_eq!(ran("wordpress/0"), ["db-relation-changed"], "{json}");
    assert_eq!(
        u.read("wordpress/0", "db-password").as_deref(),
        Some("n3w\n")
    );

    let out = u.expect(&["run", "mysql/0", "config-changed", "--json"], 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["hook"], "config-changed", "{json}");
    assert_eq!(json["also"][0]["unit"], "wordpress/0", "{json}");
    assert_eq!(
        json["also"][0]["runs"][0]["hook"], "db-relation-changed",
        "{json}"
    );

    let (code, stdout, stderr) = u.run(&["run", "mysql/0", "config-changed"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("wordpress/0") && stdout.contains("db-relation-changed"),
        "{stdout}"
    );
}
