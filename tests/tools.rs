//! Hook tools end to end: a real `ToolServer` in the test process and the real hookbox
//! binary run through symlinks named after each tool, checked byte for byte.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookbox::runner::tool_server::{ToolServer, ToolServerHandle};
use hookbox::tools::context::{
    ActionContext, ConfigValue, GoalState, GoalStateStatus, HookContext, HookEffects, HookRelation,
    InterfaceAddress, InterfaceInfo, LogLevel, LogRecord, NetworkInfo, OpenedPort, PortRange,
    Protocol, RelationContext, StorageAttachment, StorageKind, WorkloadStatus,
};

use crate::util;

const CONTEXT_ID: &str = "web-0-db-relation-changed-4242";

/// A tool server for one fake hook, and symlinks to hookbox under every tool name.
struct ToolEnv {
    server: ToolServerHandle,
    dir: tempfile::TempDir,
    // Dropped last: the server's tasks run on it.
    _runtime: tokio::runtime::Runtime,
}

impl ToolEnv {
    fn new(context: HookContext) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::Builder::new()
            .prefix("hookbox-tools-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::create_dir(dir.path().join("charm")).unwrap();
        for name in hookbox::tools::TOOL_NAMES {
            std::os::unix::fs::symlink(util::binary(), dir.path().join("bin").join(name)).unwrap();
        }
        let socket = dir.path().join("agent.socket");
        let server = {
            let _guard = runtime.enter();
            ToolServer::start(&socket, context, rustix::process::getuid().as_raw()).unwrap()
        };
        Self {
            server,
            dir,
            _runtime: runtime,
        }
    }

    fn charm_dir(&self) -> PathBuf {
        self.dir.path().join("charm")
    }

    /// The tool `name` with the hook's environment, cwd = the charm dir.
    fn tool(&self, name: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(self.dir.path().join("bin").join(name));
        cmd.env_clear()
            .env("JUJU_CONTEXT_ID", CONTEXT_ID)
            .env("JUJU_AGENT_SOCKET_ADDRESS", self.server.socket_path())
            .env("JUJU_AGENT_SOCKET_NETWORK", "unix")
            .current_dir(self.charm_dir());
        cmd
    }

    /// Runs a tool and returns (exit code, stdout, stderr).
    fn run(&self, name: &str, args: &[&str]) -> (i32, String, String) {
        let output = self.tool(name).args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    fn finish(&self) -> HookEffects {
        self.server.finish()
    }
}

fn ok(stdout: &str) -> (i32, String, String) {
    (0, stdout.to_owned(), String::new())
}

fn usage(message: &str) -> (i32, String, String) {
    (2, String::new(), format!("ERROR {message}\n"))
}

fn failed(message: &str) -> (i32, String, String) {
    (1, String::new(), format!("ERROR {message}\n"))
}

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The leader `web/0` in a `db-relation-changed` hook for relation `db:1` with `mysql/0`.
fn context() -> HookContext {
    let mut config = BTreeMap::new();
    config.insert(
        "title".to_owned(),
        Some(ConfigValue::String("My Title".into())),
    );
    config.insert("spline-reticulation".to_owned(), Some(ConfigValue::Int(45)));
    config.insert("monsters".to_owned(), Some(ConfigValue::Bool(false)));
    config.insert("ratio".to_owned(), Some(ConfigValue::Float(0.5)));
    config.insert("empty".to_owned(), Some(ConfigValue::String(String::new())));
    config.insert("unset".to_owned(), None);
    let db = RelationContext {
        id: 1,
        endpoint: "db".into(),
        remote_application: "mysql".into(),
        remote_units: BTreeMap::from([
            (
                "mysql/0".to_owned(),
                settings(&[
                    ("egress-subnets", "10.0.0.5/32"),
                    ("ingress-address", "10.0.0.5"),
                    ("private-address", "10.0.0.5"),
                ]),
            ),
            (
                "mysql/1".to_owned(),
                settings(&[("private-address", "10.0.0.6")]),
            ),
        ]),
        remote_application_settings: settings(&[("database", "wordpress")]),
        local_unit_settings: settings(&[("private-address", "10.0.0.2")]),
        local_application_settings: settings(&[("secret", "x")]),
        live: true,
        ..RelationContext::default()
    };
    let db10 = RelationContext {
        id: 10,
        endpoint: "db".into(),
        remote_application: "pg".into(),
        live: true,
        ..RelationContext::default()
    };
    let peers = RelationContext {
        id: 0,
        endpoint: "cluster".into(),
        remote_application: "web".into(),
        remote_units: BTreeMap::from([("web/1".to_owned(), settings(&[]))]),
        live: true,
        ..RelationContext::default()
    };
    HookContext {
        context_id: CONTEXT_ID.into(),
        unit: "web/0".into(),
        application: "web".into(),
        is_leader: true,
        config,
        relations: vec![db, db10, peers],
        hook_relation: Some(HookRelation {
            id: 1,
            remote_unit: Some("mysql/0".into()),
            remote_application: Some("mysql".into()),
        }),
        leader_settings: settings(&[("password", "hunter2")]),
        unit_status: WorkloadStatus {
            status: "active".into(),
            message: "ready".into(),
            data: BTreeMap::new(),
        },
        application_status: WorkloadStatus {
            status: "active".into(),
            message: String::new(),
            data: BTreeMap::new(),
        },
        unit_statuses: BTreeMap::from([("web/1".to_owned(), WorkloadStatus::default())]),
        opened_ports: vec![OpenedPort {
            range: PortRange {
                protocol: Protocol::Tcp,
                from: 80,
                to: 80,
            },
            endpoint: None,
        }],
        machine_ports: BTreeMap::from([(
            "other/0".to_owned(),
            vec![PortRange {
                protocol: Protocol::Tcp,
                from: 9000,
                to: 9010,
            }],
        )]),
        private_address: Some("10.0.0.2".into()),
        public_address: None,
        networks: BTreeMap::from([(
            "db".to_owned(),
            NetworkInfo {
                bind_addresses: vec![InterfaceInfo {
                    mac_address: "00:11:22:33:44:22".into(),
                    interface_name: "eth2".into(),
                    addresses: vec![InterfaceAddress {
                        hostname: String::new(),
                        value: "10.20.1.42".into(),
                        cidr: "10.20.1.0/24".into(),
                    }],
                }],
                ingress_addresses: vec!["10.20.1.42".into()],
                egress_subnets: vec!["10.20.1.42/32".into()],
            },
        )]),
        goal_state: GoalState {
            units: BTreeMap::from([(
                "web/0".to_owned(),
                GoalStateStatus {
                    status: "active".into(),
                    since: Some("2024-05-01 10:00:00Z".into()),
                },
            )]),
            relations: BTreeMap::new(),
        },
        action: None,
        storage: BTreeMap::from([(
            "data/0".to_owned(),
            StorageAttachment {
                kind: StorageKind::Filesystem,
                location: "/srv/data".into(),
            },
        )]),
        storage_id: Some("data/0".into()),
    }
}

#[test]
fn juju_log_as_ops_and_charmhelpers_call_it() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run(
            "juju-log",
            &["--log-level", "DEBUG", "--", "-starts with dash"]
        ),
        ok("")
    );
    assert_eq!(
        env.run("juju-log", &["-l", "WARNING", "two", "words"]),
        ok("")
    );
    assert_eq!(
        env.run("juju-log", &["--debug", "-l", "ERROR", "dbg"]),
        ok("")
    );
    assert_eq!(env.run("juju-log", &["-l", "bogus", "fallback"]), ok(""));
    assert_eq!(
        env.run("juju-log", &["--format", "json", "deprecated"]),
        (
            0,
            String::new(),
            "--format flag deprecated for command \"juju-log\"".to_owned()
        )
    );
    assert_eq!(env.run("juju-log", &[]), usage("no message specified"));
    assert_eq!(
        env.run("juju-log", &["-x", "m"]),
        usage("option provided but not defined: -x")
    );
    let log = env.finish().log;
    let record = |level, message: &str| LogRecord {
        level,
        message: message.to_owned(),
    };
    assert_eq!(
        log,
        vec![
            record(LogLevel::Debug, "db:1: -starts with dash"),
            record(LogLevel::Warning, "db:1: two words"),
            record(LogLevel::Debug, "db:1: dbg"),
            record(
                LogLevel::Warning,
                "Specified log level of \"bogus\" is not valid"
            ),
            record(LogLevel::Info, "db:1: fallback"),
            record(LogLevel::Info, "db:1: deprecated"),
        ]
    );
}

#[test]
fn is_leader_and_config_get() {
    let env = ToolEnv::new(context());
    assert_eq!(env.run("is-leader", &["--format=json"]), ok("true\n"));
    assert_eq!(env.run("is-leader", &[]), ok("True\n"));
    assert_eq!(
        env.run("is-leader", &["x"]),
        usage("unrecognized args: [\"x\"]")
    );
    assert_eq!(
        env.run("config-get", &["--format=json", "--all"]),
        ok(
            "{\"empty\":\"\",\"monsters\":false,\"ratio\":0.5,\"spline-reticulation\":45,\"title\":\"My Title\",\"unset\":null}\n"
        )
    );
    assert_eq!(
        env.run("config-get", &["--format=json"]),
        ok(
            "{\"empty\":\"\",\"monsters\":false,\"ratio\":0.5,\"spline-reticulation\":45,\"title\":\"My Title\"}\n"
        )
    );
    assert_eq!(
        env.run("config-get", &[]),
        ok("empty: \"\"\nmonsters: false\nratio: 0.5\nspline-reticulation: 45\ntitle: My Title\n")
    );
    assert_eq!(env.run("config-get", &["title"]), ok("My Title\n"));
    assert_eq!(env.run("config-get", &["empty"]), ok(""));
    assert_eq!(env.run("config-get", &["monsters"]), ok("False\n"));
    assert_eq!(env.run("config-get", &["spline-reticulation"]), ok("45\n"));
    assert_eq!(
        env.run("config-get", &["--format=json", "nope"]),
        ok("null\n")
    );
    assert_eq!(env.run("config-get", &["--format=yaml", "nope"]), ok(""));
    assert_eq!(
        env.run("config-get", &["title", "--all"]),
        usage("cannot use argument --all together with key \"title\"")
    );
    assert_eq!(
        env.run("config-get", &["a", "b"]),
        usage("unrecognized args: [\"b\"]")
    );
    assert_eq!(
        env.run("config-get", &["-format=json"]),
        usage("option provided but not defined: -f")
    );
    assert_eq!(
        env.run("config-get", &["--format", "xml"]),
        usage("invalid value \"xml\" for option --format: unknown format \"xml\"")
    );
    assert_eq!(
        env.run("config-get", &["--format"]),
        usage("option needs an argument: --format")
    );
}

#[test]
fn status_set_and_get() {
    let env = ToolEnv::new(context());
    assert_eq!(env.run("status-get", &[]), ok("active\n"));
    assert_eq!(
        env.run("status-get", &["--format=json", "--include-data"]),
        ok("{\"message\":\"ready\",\"status\":\"active\",\"status-data\":{}}\n")
    );
    assert_eq!(
        env.run("status-get", &["--format=json"]),
        ok("{\"status\":\"active\"}\n")
    );
    assert_eq!(
        env.run("status-set", &["--application=True", "active", "ready"]),
        ok("")
    );
    assert_eq!(
        env.run("status-set", &["--application=False", "maintenance", ""]),
        ok("")
    );
    assert_eq!(env.run("status-set", &["blocked", "--", "need db"]), ok(""));
    assert_eq!(
        env.run(
            "status-get",
            &["--include-data", "--application=True", "--format=json"]
        ),
        ok(
            "{\"application-status\":{\"message\":\"ready\",\"status\":\"active\",\"status-data\":{},\"units\":{\"web/0\":{\"message\":\"need db\",\"status\":\"blocked\",\"status-data\":{}},\"web/1\":{\"message\":\"\",\"status\":\"unknown\",\"status-data\":{}}}}}\n"
        )
    );
    assert_eq!(env.run("status-get", &[]), ok("blocked\n"));
    assert_eq!(
        env.run("status-set", &[]),
        usage("invalid args, require <status> [message]")
    );
    assert_eq!(
        env.run("status-set", &["error"]),
        usage("invalid status \"error\", expected one of [maintenance blocked waiting active]")
    );
    assert_eq!(
        env.run("status-set", &["active", "a", "b"]),
        usage("unrecognized args: [\"b\"]")
    );
    let effects = env.finish();
    assert_eq!(effects.unit_status.unwrap().message, "need db");
    assert_eq!(effects.application_status.unwrap().status, "active");

    let mut follower = context();
    follower.is_leader = false;
    let env = ToolEnv::new(follower);
    assert_eq!(
        env.run("status-set", &["--application", "active"]),
        failed("this unit is not the leader")
    );
    assert_eq!(
        env.run("status-get", &["--application"]),
        failed("finding application status: this unit is not the leader")
    );
    assert!(!env.finish().changes_state());
}

#[test]
fn relation_ids_list_and_get() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run("relation-ids", &["--format=json", "db"]),
        ok("[\"db:1\",\"db:10\"]\n")
    );
    assert_eq!(env.run("relation-ids", &[]), ok("db:1\ndb:10\n"));
    assert_eq!(
        env.run("relation-ids", &["--format=yaml", "nothing"]),
        ok("[]\n")
    );
    assert_eq!(env.run("relation-ids", &["nothing"]), ok(""));
    assert_eq!(
        env.run("relation-list", &["--format=json", "-r", "db:1"]),
        ok("[\"mysql/0\",\"mysql/1\"]\n")
    );
    assert_eq!(
        env.run("relation-list", &["-r", "db:1", "--app", "--format=json"]),
        ok("\"mysql\"\n")
    );
    assert_eq!(env.run("relation-list", &["-r", "10"]), ok(""));
    assert_eq!(
        env.run("relation-list", &["-r", "db:9"]),
        usage("invalid value \"db:9\" for option -r: relation not found")
    );
    assert_eq!(
        env.run("relation-list", &["--relation=x"]),
        usage("invalid value \"x\" for option --relation: invalid relation id")
    );
    assert_eq!(
        env.run(
            "relation-get",
            &["--format=json", "-", "mysql/0", "-r", "db:1"]
        ),
        ok(
            "{\"egress-subnets\":\"10.0.0.5/32\",\"ingress-address\":\"10.0.0.5\",\"private-address\":\"10.0.0.5\"}\n"
        )
    );
    assert_eq!(
        env.run("relation-get", &[]),
        ok("egress-subnets: 10.0.0.5/32\ningress-address: 10.0.0.5\nprivate-address: 10.0.0.5\n")
    );
    assert_eq!(
        env.run("relation-get", &["private-address"]),
        ok("10.0.0.5\n")
    );
    assert_eq!(
        env.run("relation-get", &["--format=json", "missing"]),
        ok("null\n")
    );
    assert_eq!(env.run("relation-get", &["missing"]), ok(""));
    assert_eq!(
        env.run(
            "relation-get",
            &["-r", "db:1", "--app", "-", "mysql", "--format=json"]
        ),
        ok("{\"database\":\"wordpress\"}\n")
    );
    assert_eq!(
        env.run("relation-get", &["--app", "--format=json", "-", "mysql/1"]),
        ok("{\"database\":\"wordpress\"}\n")
    );
    assert_eq!(
        env.run("relation-get", &["-", "mysql"]),
        usage("expected unit name, got application name \"mysql\"")
    );
    assert_eq!(
        env.run("relation-get", &["-", "Bad!"]),
        usage("invalid unit name \"Bad!\"")
    );
    assert_eq!(
        env.run("relation-get", &["-", "other/3"]),
        failed("permission denied")
    );
    assert_eq!(
        env.run("relation-get", &["-", "mysql/0", "extra"]),
        usage("unrecognized args: [\"extra\"]")
    );

    // Outside a relation hook there is no default relation, unit or endpoint.
    let mut plain = context();
    plain.hook_relation = None;
    plain.is_leader = false;
    let env = ToolEnv::new(plain);
    assert_eq!(
        env.run("relation-get", &[]),
        usage("no relation id specified")
    );
    assert_eq!(
        env.run("relation-list", &[]),
        usage("no relation id specified")
    );
    assert_eq!(
        env.run("relation-ids", &[]),
        usage("no endpoint name specified")
    );
    assert_eq!(
        env.run("relation-set", &["a=b"]),
        usage("no relation id specified")
    );
    assert_eq!(
        env.run("relation-get", &["-r", "1"]),
        usage("no unit or application specified")
    );
    assert_eq!(
        env.run("relation-get", &["-r", "1", "--app", "-", "web"]),
        failed("permission denied")
    );
    assert_eq!(
        env.run(
            "relation-get",
            &["-r", "cluster:0", "--app", "--format=json", "-", "web"]
        ),
        ok("{}\n")
    );
}

#[test]
fn relation_set_reads_its_own_writes_and_returns_effects() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run(
            "relation-set",
            &["foo=bar", "private-address=", " spaced = v "]
        ),
        ok("")
    );
    assert_eq!(
        env.run("relation-get", &["--format=json", "-", "web/0"]),
        ok("{\"foo\":\"bar\",\"spaced\":\"v\"}\n")
    );
    assert_eq!(env.run("relation-set", &[]), ok(""));
    assert_eq!(
        env.run("relation-set", &["--app", "-r", "db:1", "token=t"]),
        ok("")
    );
    assert_eq!(
        env.run("relation-get", &["--app", "-", "web", "--format=json"]),
        ok("{\"secret\":\"x\",\"token\":\"t\"}\n")
    );
    assert_eq!(
        env.run("relation-set", &["foo"]),
        usage("expected \"key=value\", got \"foo\"")
    );
    assert_eq!(
        env.run("relation-set", &["=v"]),
        usage("expected \"key=value\", got \"=v\"")
    );
    assert_eq!(
        env.run("relation-set", &["a=1", "a=2"]),
        usage("key \"a\" specified more than once")
    );
    assert_eq!(
        env.run("relation-set", &["--format", "json", "x=1"]),
        (
            0,
            String::new(),
            "--format flag deprecated for command \"relation-set\"".to_owned()
        )
    );
    let effects = env.finish();
    let update = &effects.relation_settings[&1];
    assert_eq!(
        update.unit,
        Some(settings(&[("foo", "bar"), ("spaced", "v"), ("x", "1")]))
    );
    assert_eq!(
        update.application,
        Some(settings(&[("secret", "x"), ("token", "t")]))
    );

    let mut follower = context();
    follower.is_leader = false;
    let env = ToolEnv::new(follower);
    assert_eq!(
        env.run("relation-set", &["--app", "a=b"]),
        failed("cannot write relation settings")
    );
    assert!(env.finish().relation_settings.is_empty());
}

#[test]
fn relation_set_file_from_stdin_is_lazy() {
    let env = ToolEnv::new(context());
    // ops 2.x: YAML on stdin; null deletes, scalars keep their text.
    let out = env
        .tool("relation-set")
        .args(["-r", "db:1", "--file", "-", "override=cli"])
        .write_stdin("a: one\nn: 123\nprivate-address: null\noverride: file\n")
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            out.stdout.as_slice(),
            out.stderr.as_slice()
        ),
        (Some(0), &b""[..], &b""[..])
    );
    // ops 3.x: JSON on stdin.
    env.tool("relation-set")
        .args(["-r", "1", "--app", "--file", "-"])
        .write_stdin("{\"j\": \"son\", \"t\": true}")
        .assert()
        .success()
        .stdout("")
        .stderr("");
    env.tool("relation-set")
        .args(["--file", "-"])
        .write_stdin("haha")
        .assert()
        .code(1)
        .stdout("")
        .stderr("ERROR yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `haha` into map[string]string\n");
    env.tool("relation-set")
        .args(["--file", "-"])
        .write_stdin("a:\n  nested: map\n")
        .assert()
        .code(1)
        .stderr("ERROR yaml: unmarshal errors:\n  line 2: cannot unmarshal !!map into string\n");
    assert_eq!(
        env.run("relation-get", &["--format=json", "-", "web/0"]),
        ok("{\"a\":\"one\",\"n\":\"123\",\"override\":\"cli\"}\n")
    );

    // A tool that does not need stdin never reads it: an open, silent stdin must not block.
    for (tool, args) in [
        ("juju-log", vec!["hello"]),
        ("relation-set", vec!["k=v"]),
        ("config-get", vec!["title"]),
    ] {
        let mut child = Command::new(env.dir.path().join("bin").join(tool))
            .args(&args)
            .env_clear()
            .env("JUJU_CONTEXT_ID", CONTEXT_ID)
            .env("JUJU_AGENT_SOCKET_ADDRESS", env.server.socket_path())
            .env("JUJU_AGENT_SOCKET_NETWORK", "unix")
            .current_dir(env.charm_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let _stdin_kept_open = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{tool} blocked on an inherited stdin");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "{tool}: {status}");
    }
    let effects = env.finish();
    assert_eq!(
        effects.relation_settings[&1].application,
        Some(settings(&[("j", "son"), ("secret", "x"), ("t", "true")]))
    );
}

#[test]
fn relation_set_file_path_is_read_by_the_client() {
    let env = ToolEnv::new(context());
    std::fs::write(
        env.charm_dir().join("settings.yaml"),
        "from: file\nx: '1'\n",
    )
    .unwrap();
    assert_eq!(
        env.run("relation-set", &["--file", "settings.yaml", "x=2"]),
        ok("")
    );
    assert_eq!(
        env.run("relation-get", &["--format=json", "-", "web/0"]),
        ok("{\"from\":\"file\",\"private-address\":\"10.0.0.2\",\"x\":\"2\"}\n")
    );
    let missing = env.charm_dir().join("missing.yaml");
    assert_eq!(
        env.run("relation-set", &["--file=missing.yaml"]),
        failed(&format!(
            "open {}: no such file or directory",
            missing.display()
        ))
    );
    let help = env.run("relation-set", &["--help"]);
    assert_eq!(help.0, 0);
    assert!(help.1.contains("--file"), "{}", help.1);
    assert!(help.1.starts_with("Usage: relation-set [options] key=value [key=value ...]\n\nSummary:\nSet relation settings.\n\nOptions:\n--app  (= false)\n"), "{}", help.1);
}

#[test]
fn output_file_is_written_relative_to_the_cwd() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run("config-get", &["-o", "out.json", "--format=json", "title"]),
        ok("")
    );
    assert_eq!(
        std::fs::read_to_string(env.charm_dir().join("out.json")).unwrap(),
        "\"My Title\"\n"
    );
    assert_eq!(env.run("is-leader", &["--output=leader.txt"]), ok(""));
    assert_eq!(
        std::fs::read_to_string(env.charm_dir().join("leader.txt")).unwrap(),
        "True\n"
    );
    let target = env.charm_dir().join("no/such/dir.txt");
    assert_eq!(
        env.run("is-leader", &["-o", "no/such/dir.txt"]),
        failed(&format!(
            "open {}: no such file or directory",
            target.display()
        ))
    );
}

#[test]
fn stale_context_and_calls_after_the_hook_fail() {
    let env = ToolEnv::new(context());
    env.tool("is-leader")
        .env("JUJU_CONTEXT_ID", "web-0-install-1")
        .assert()
        .code(1)
        .stdout("")
        .stderr("ERROR bad request: unknown context id \"web-0-install-1\"\n");
    env.tool("juju-log")
        .env_remove("JUJU_CONTEXT_ID")
        .arg("x")
        .assert()
        .code(1)
        .stderr("ERROR JUJU_CONTEXT_ID not set\n");
    env.tool("juju-log")
        .env("JUJU_AGENT_SOCKET_ADDRESS", "")
        .arg("x")
        .assert()
        .code(1)
        .stderr("ERROR JUJU_AGENT_SOCKET_ADDRESS not set\n");
    env.tool("juju-log")
        .env_remove("JUJU_AGENT_SOCKET_NETWORK")
        .arg("x")
        .assert()
        .code(1)
        .stderr("ERROR JUJU_AGENT_SOCKET_NETWORK not set\n");
    assert_eq!(env.run("status-set", &["active", "done"]), ok(""));
    let effects = env.finish();
    assert_eq!(effects.unit_status.unwrap().message, "done");
    assert_eq!(
        env.run("status-set", &["blocked", "late"]),
        failed(&format!("bad request: unknown context id \"{CONTEXT_ID}\""))
    );
    assert_eq!(env.finish(), HookEffects::default());
    let socket = env.server.socket_path().to_owned();
    drop(env);
    assert!(!Path::new(&socket).exists());
}

#[test]
fn ports_open_close_and_list() {
    let env = ToolEnv::new(context());
    assert_eq!(env.run("opened-ports", &[]), ok("80/tcp\n"));
    assert_eq!(env.run("open-port", &["8000-8100/TCP"]), ok(""));
    assert_eq!(env.run("open-port", &["ICMP"]), ok(""));
    assert_eq!(
        env.run("open-port", &["53/udp", "--endpoints", "dns, admin"]),
        ok("")
    );
    assert_eq!(env.run("close-port", &["80/tcp"]), ok(""));
    assert_eq!(env.run("close-port", &["81"]), ok(""));
    assert_eq!(env.run("open-port", &["443"]), ok(""));
    assert_eq!(env.run("close-port", &["443/tcp"]), ok(""));
    assert_eq!(
        env.run("opened-ports", &["--format=json"]),
        ok("[\"icmp\",\"8000-8100/tcp\",\"53/udp\"]\n")
    );
    assert_eq!(
        env.run("opened-ports", &["--endpoints"]),
        ok("icmp (*)\n8000-8100/tcp (*)\n53/udp (admin, dns)\n")
    );
    assert_eq!(
        env.run("open-port", &["--format", "json", "22"]),
        (
            0,
            String::new(),
            "--format flag deprecated for command \"open-port\"".to_owned()
        )
    );
    assert_eq!(
        env.run("open-port", &[]),
        usage("no port or range specified")
    );
    assert_eq!(
        env.run("open-port", &["abc"]),
        usage("invalid port \"abc\": strconv.Atoi: parsing \"abc\": invalid syntax")
    );
    assert_eq!(
        env.run("open-port", &["1-2-3"]),
        usage("invalid port range \"1-2-3\"")
    );
    assert_eq!(
        env.run("open-port", &["80/sctp"]),
        usage("invalid protocol \"sctp\", expected \"tcp\", \"udp\", or \"icmp\"")
    );
    assert_eq!(
        env.run("open-port", &["1-70000"]),
        usage("port range bounds must be between 0 and 65535, got 1-70000")
    );
    assert_eq!(
        env.run("close-port", &["90-80"]),
        usage("invalid port range 90-80/tcp")
    );
    assert_eq!(
        env.run("open-port", &["80/icmp"]),
        usage("protocol \"icmp\" doesn't support any ports; got \"80\"")
    );
    assert_eq!(
        env.run("open-port", &["9005/tcp"]),
        failed(
            "cannot open 9005/tcp (unit \"web/0\"): port range conflicts with 9000-9010/tcp (unit \"other/0\")"
        )
    );
    let ports = env.finish().opened_ports.unwrap();
    let listed: Vec<String> = ports
        .iter()
        .map(|p| format!("{} {:?}", p.range, p.endpoint))
        .collect();
    assert_eq!(
        listed,
        [
            "icmp None",
            "22/tcp None",
            "8000-8100/tcp None",
            "53/udp Some(\"admin\")",
            "53/udp Some(\"dns\")"
        ]
    );
}

#[test]
fn unit_get_leader_settings_version_and_goal_state() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run("unit-get", &["--format=json", "private-address"]),
        ok("\"10.0.0.2\"\n")
    );
    assert_eq!(env.run("unit-get", &["private-address"]), ok("10.0.0.2\n"));
    assert_eq!(
        env.run("unit-get", &["public-address"]),
        failed("public address not found")
    );
    assert_eq!(env.run("unit-get", &[]), usage("no setting specified"));
    assert_eq!(env.run("unit-get", &["x"]), usage("unknown setting \"x\""));
    assert_eq!(
        env.run("leader-get", &["--format=json", "-"]),
        ok("{\"password\":\"hunter2\"}\n")
    );
    assert_eq!(env.run("leader-set", &["password=", "new=1"]), ok(""));
    assert_eq!(
        env.run("leader-get", &["--format=json"]),
        ok("{\"new\":\"1\"}\n")
    );
    assert_eq!(
        env.run("leader-get", &["--format=json", "password"]),
        ok("null\n")
    );
    assert_eq!(env.run("leader-get", &["new"]), ok("1\n"));
    assert_eq!(
        env.run("leader-get", &["a=b"]),
        usage("invalid key \"a=b\"")
    );
    assert_eq!(env.run("application-version-set", &["--", "1.2.3"]), ok(""));
    assert_eq!(
        env.run("application-version-set", &[]),
        usage("no version specified")
    );
    assert_eq!(
        env.run("application-version-set", &["a", "b"]),
        usage("unrecognized args: [\"b\"]")
    );
    assert_eq!(
        env.run("goal-state", &["--format=json"]),
        ok(
            "{\"units\":{\"web/0\":{\"status\":\"active\",\"since\":\"2024-05-01 10:00:00Z\"}},\"relations\":{}}\n"
        )
    );
    assert_eq!(
        env.run("goal-state", &[]),
        ok(
            "units:\n  web/0:\n    status: active\n    since: 2024-05-01 10:00:00Z\nrelations: {}\n"
        )
    );
    assert_eq!(
        env.run("goal-state", &["--format=smart"]),
        usage("invalid value \"smart\" for option --format: unknown format \"smart\"")
    );
    let effects = env.finish();
    assert_eq!(effects.leader_settings, Some(settings(&[("new", "1")])));
    assert_eq!(effects.application_version.as_deref(), Some("1.2.3"));

    let mut follower = context();
    follower.is_leader = false;
    let env = ToolEnv::new(follower);
    assert_eq!(
        env.run("leader-set", &["a=b"]),
        failed("cannot write leadership settings: cannot write settings: not the leader")
    );
    assert_eq!(env.run("leader-get", &["password"]), ok("hunter2\n"));
}

#[test]
fn network_get_formats() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run("network-get", &["db", "--format", "yaml", "-r", "db:1"]),
        ok(
            "bind-addresses:\n- mac-address: \"00:11:22:33:44:22\"\n  interface-name: eth2\n  addresses:\n  - hostname: \"\"\n    value: 10.20.1.42\n    cidr: 10.20.1.0/24\n    address: 10.20.1.42\n  macaddress: \"00:11:22:33:44:22\"\n  interfacename: eth2\negress-subnets:\n- 10.20.1.42/32\ningress-addresses:\n- 10.20.1.42\n"
        )
    );
    assert_eq!(
        env.run("network-get", &["db", "--format=json"]),
        ok(
            "{\"bind-addresses\":[{\"mac-address\":\"00:11:22:33:44:22\",\"interface-name\":\"eth2\",\"addresses\":[{\"hostname\":\"\",\"value\":\"10.20.1.42\",\"cidr\":\"10.20.1.0/24\"}]}],\"egress-subnets\":[\"10.20.1.42/32\"],\"ingress-addresses\":[\"10.20.1.42\"]}\n"
        )
    );
    assert_eq!(
        env.run("network-get", &["--primary-address", "db"]),
        ok("10.20.1.42\n")
    );
    assert_eq!(
        env.run("network-get", &["db", "--ingress-address"]),
        ok("10.20.1.42\n")
    );
    assert_eq!(
        env.run("network-get", &["db", "--egress-subnets"]),
        ok("10.20.1.42/32\n")
    );
    assert_eq!(
        env.run(
            "network-get",
            &["db", "--bind-address", "--ingress-address", "--format=json"]
        ),
        ok("{\"bind-address\":\"10.20.1.42\",\"ingress-address\":\"10.20.1.42\"}\n")
    );
    assert_eq!(
        env.run(
            "network-get",
            &["db", "--primary-address", "--bind-address"]
        ),
        failed("--primary-address must be the only flag specified")
    );
    assert_eq!(
        env.run("network-get", &["--primary-address", "juju-info"]),
        failed("no network config found for binding \"juju-info\"")
    );
    assert_eq!(env.run("network-get", &[]), usage("no arguments specified"));
    assert_eq!(
        env.run("network-get", &[""]),
        usage("no binding name specified")
    );
}

#[test]
fn action_tools() {
    let env = ToolEnv::new(context());
    assert_eq!(env.run("action-get", &[]), failed("not running an action"));
    assert_eq!(
        env.run("action-set", &["a=b"]),
        failed("not running an action")
    );
    assert_eq!(env.run("action-set", &[]), ok(""));
    assert_eq!(
        env.run("action-fail", &["x"]),
        failed("not running an action")
    );
    assert_eq!(
        env.run("action-log", &["x"]),
        failed("not running an action")
    );
    assert_eq!(env.run("action-log", &[]), usage("no message specified"));
    assert_eq!(
        env.run("action-get", &["a", "b"]),
        usage("unrecognized args: [\"b\"]")
    );

    let mut in_action = context();
    in_action.hook_relation = None;
    let params = serde_json::json!({"compression": {"kind": "gzip", "level": 5}, "filename": "out.tar", "1": "raw"});
    in_action.action = Some(ActionContext {
        name: "backup".into(),
        params: params
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    let env = ToolEnv::new(in_action);
    assert_eq!(
        env.run("action-get", &["--format=json"]),
        ok(
            "{\"1\":\"raw\",\"compression\":{\"kind\":\"gzip\",\"level\":5},\"filename\":\"out.tar\"}\n"
        )
    );
    assert_eq!(env.run("action-get", &["compression.kind"]), ok("gzip\n"));
    assert_eq!(
        env.run("action-get", &["compression"]),
        ok("kind: gzip\nlevel: 5\n")
    );
    assert_eq!(
        env.run("action-get", &["compression.nope", "--format=json"]),
        ok("null\n")
    );
    assert_eq!(env.run("action-get", &["filename.deeper"]), ok(""));
    assert_eq!(
        env.run(
            "action-set",
            &["outcome.size=10", "outcome.name=x", "done=yes"]
        ),
        ok("")
    );
    assert_eq!(env.run("action-set", &["done=again"]), ok(""));
    assert_eq!(
        env.run("action-set", &["nokey"]),
        usage("argument \"nokey\" must be of the form key...=value")
    );
    assert_eq!(
        env.run("action-set", &["Foo=1"]),
        usage(
            "key \"Foo\" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
        )
    );
    assert_eq!(
        env.run("action-set", &["stdout=1"]),
        usage("cannot set reserved action key \"stdout\"")
    );
    assert_eq!(env.run("action-log", &["50%", "done"]), ok(""));
    assert_eq!(env.run("action-fail", &[]), ok(""));
    assert_eq!(
        env.run("action-fail", &["a", "b"]),
        usage("unrecognized args: [\"b\"]")
    );
    let action = env.finish().action;
    assert_eq!(
        serde_json::to_value(&action.results).unwrap(),
        serde_json::json!({"done": "again", "outcome": {"name": "x", "size": "10"}})
    );
    assert_eq!(
        action.failure.as_deref(),
        Some("action failed without reason given, check action for errors")
    );
    assert_eq!(action.messages, ["50% done"]);
}

#[test]
fn storage_tools_and_help() {
    let env = ToolEnv::new(context());
    assert_eq!(
        env.run("storage-get", &["--format=json"]),
        ok("{\"kind\":\"filesystem\",\"location\":\"/srv/data\"}\n")
    );
    assert_eq!(
        env.run("storage-get", &["-s", "data/0", "location"]),
        ok("/srv/data\n")
    );
    assert_eq!(
        env.run("storage-get", &["size"]),
        failed("invalid storage attribute \"size\"")
    );
    assert_eq!(
        env.run("storage-get", &["-s", "x"]),
        usage("invalid value \"x\" for option -s: invalid storage ID \"x\"")
    );
    assert_eq!(
        env.run("storage-list", &["--format=json"]),
        ok("[\"data/0\"]\n")
    );
    assert_eq!(env.run("storage-list", &["logs"]), ok(""));
    let (code, help, stderr) = env.run("storage-get", &["--help"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(help.contains("\n-s  (= data/0)\n"), "{help}");
    assert!(
        help.contains("\n-o, --output (= \"\")\n    Specify an output file\n"),
        "{help}"
    );
    assert!(
        help.contains("\n--format  (= smart)\n    Specify output format (json|smart|yaml)\n"),
        "{help}"
    );

    let mut no_storage = context();
    no_storage.storage_id = None;
    let env = ToolEnv::new(no_storage);
    assert_eq!(
        env.run("storage-get", &[]),
        usage("no storage instance specified")
    );
    let (_, help, _) = env.run("juju-log", &["-h"]);
    assert_eq!(
        help,
        "Usage: juju-log [options] <message>\n\nSummary:\nWrite a message to the juju log.\n\nOptions:\n--debug  (= false)\n    log at debug level\n--format (= \"\")\n    deprecated format flag\n-l, --log-level (= \"\")\n    Send log message at the given level\n"
    );
}

#[test]
fn ops_dispatch_sequence_runs_fast() {
    // ops calls juju-log for every log record and is-leader at the end of every dispatch.
    let env = ToolEnv::new(context());
    let start = Instant::now();
    for i in 0..30 {
        env.tool("juju-log")
            .args([
                "--log-level",
                "DEBUG",
                "--",
                &format!("Emitting Juju event {i}."),
            ])
            .assert()
            .success();
    }
    env.tool("is-leader")
        .arg("--format=json")
        .assert()
        .success()
        .stdout("true\n");
    let per_call = start.elapsed() / 31;
    eprintln!("hook tool round trip: {per_call:?} per call");
    assert!(per_call < Duration::from_millis(500), "{per_call:?}");
    assert_eq!(env.finish().log.len(), 30);
}

#[test]
fn client_reports_a_missing_socket_like_go() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("is-leader");
    std::os::unix::fs::symlink(util::binary(), &link).unwrap();
    let socket = dir.path().join("gone.socket");
    let mut cmd = assert_cmd::Command::new(&link);
    cmd.env_clear()
        .env("JUJU_CONTEXT_ID", "x")
        .env("JUJU_AGENT_SOCKET_ADDRESS", &socket)
        .env("JUJU_AGENT_SOCKET_NETWORK", "unix")
        .current_dir(dir.path())
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "ERROR dial unix {}: connect: no such file or directory\n",
            socket.display()
        ));
    let _ = std::io::stderr().flush();
}

/// One raw request line to the tool server and its one answer line.
fn raw_call(socket: &Path, request: &hookbox::tools::protocol::ToolRequest) -> String {
    use std::io::BufRead;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let mut line = serde_json::to_vec(request).unwrap();
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .unwrap();
    answer
}

#[test]
fn a_refusal_never_reveals_the_context_id_and_nothing_is_valid_after_the_hook() {
    use hookbox::tools::protocol::ToolRequest;
    let env = ToolEnv::new(context());
    let socket = env.server.socket_path().to_owned();
    let request = |id: &str| ToolRequest {
        context_id: id.to_owned(),
        dir: "/".to_owned(),
        command: "is-leader".to_owned(),
        ..ToolRequest::default()
    };
    for guess in ["", "web-0", "x"] {
        let answer = raw_call(&socket, &request(guess));
        assert!(!answer.contains(CONTEXT_ID), "{answer}");
        assert_eq!(
            answer,
            format!("{{\"error\":\"bad request: unknown context id \\\"{guess}\\\"\"}}\n")
        );
    }
    assert!(raw_call(&socket, &request(CONTEXT_ID)).contains("\"done\""));
    env.finish();
    for id in ["", CONTEXT_ID] {
        assert_eq!(
            raw_call(&socket, &request(id)),
            format!("{{\"error\":\"bad request: unknown context id \\\"{id}\\\"\"}}\n")
        );
    }
}

#[test]
fn the_socket_answers_only_the_hooks_uid() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = ToolEnv::new(context());
    let socket = env.server.socket_path().to_owned();
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o777, meta.uid()),
        (0o600, rustix::process::getuid().as_raw())
    );
    if !util::require_root() {
        return;
    }
    // Open the way for uid 65534 so that only the peer check stands between it and the
    // hook's tools.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let tool = env.dir.path().join("is-leader");
    std::fs::copy(util::binary(), &tool).unwrap();
    let output = util::as_nobody(&tool)
        .env_clear()
        .env("JUJU_CONTEXT_ID", CONTEXT_ID)
        .env("JUJU_AGENT_SOCKET_ADDRESS", &socket)
        .env("JUJU_AGENT_SOCKET_NETWORK", "unix")
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned()
        ),
        (
            Some(1),
            String::new(),
            format!(
                "ERROR bad request: caller uid {} is not the hook's\n",
                util::NOBODY
            )
        )
    );
    assert_eq!(env.run("is-leader", &[]), ok("True\n"));
}

#[test]
fn a_socket_path_longer_than_a_socket_address_is_bound_through_its_directory() {
    use std::os::unix::fs::FileTypeExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    let socket = deep.join("agent.socket");
    assert!(socket.as_os_str().len() > 108);
    let _guard = runtime.enter();
    let server = ToolServer::start(&socket, context(), rustix::process::getuid().as_raw()).unwrap();
    assert!(
        std::fs::symlink_metadata(&socket)
            .unwrap()
            .file_type()
            .is_socket()
    );
    drop(server);
    assert!(!socket.exists());
}
