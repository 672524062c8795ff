//! The hook tools themselves, run on the server side against a [`HookSession`]: each parses
//! its arguments as gnuflag does (usage errors exit 2), runs (failures exit 1) and prints in
//! the requested format. Texts are Juju's (see HOOK-TOOLS.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::context::{
    ConfigValue, LogLevel, LogRecord, OpenedPort, PortRange, Protocol, RelationContext, Settings,
    WorkloadStatus,
};
use super::flags::{
    self, FlagKind, FlagSpec, HelpInfo, ParseOutcome, Parsed, go_quote, go_quote_list,
};
use super::format::{Field, Format, Value};
use super::protocol::{FileRead, ToolRequest, ToolResponse};
use super::session::HookSession;
use super::yaml_read;

/// Every hook tool hookbox implements, by the name charms call it.
pub const TOOL_NAMES: &[&str] = &[
    "action-fail",
    "action-get",
    "action-log",
    "action-set",
    "application-version-set",
    "close-port",
    "config-get",
    "goal-state",
    "is-leader",
    "juju-log",
    "leader-get",
    "leader-set",
    "network-get",
    "open-port",
    "opened-ports",
    "relation-get",
    "relation-ids",
    "relation-list",
    "relation-set",
    "status-get",
    "status-set",
    "storage-get",
    "storage-list",
    "unit-get",
];

/// Why a tool stopped before printing its result.
enum Stop {
    /// Bad arguments: `ERROR <text>`, exit 2.
    Usage(String),
    /// The run step failed: `ERROR <text>`, exit 1.
    Failed(String),
    /// `-h`/`--help`: this text on stdout, exit 0.
    Help(String),
    /// The command reads stdin and the call came without it.
    NeedStdin,
    /// The command reads this file (absolute path) and the call came without it.
    NeedFile(String),
}

/// What a successful tool prints.
#[derive(Default)]
struct Printed {
    stdout: String,
    output_file: Option<String>,
}

type ToolResult = Result<Printed, Stop>;

/// One call in progress.
struct Call<'a> {
    session: &'a mut HookSession,
    request: &'a ToolRequest,
    info: HelpInfo,
    stderr: String,
}

const FORMAT: FlagSpec = FlagSpec {
    names: &["format"],
    kind: FlagKind::Value,
    usage: "Specify output format (json|smart|yaml)",
};
const FORMAT_YAML_JSON: FlagSpec = FlagSpec {
    names: &["format"],
    kind: FlagKind::Value,
    usage: "Specify output format (json|yaml)",
};
const OUTPUT: FlagSpec = FlagSpec {
    names: &["output", "o"],
    kind: FlagKind::Str,
    usage: "Specify an output file",
};
const RELATION: FlagSpec = FlagSpec {
    names: &["relation", "r"],
    kind: FlagKind::Value,
    usage: "Specify a relation by id",
};
const DEPRECATED_FORMAT: FlagSpec = FlagSpec {
    names: &["format"],
    kind: FlagKind::Str,
    usage: "deprecated format flag",
};

/// Runs one request against the session. Context id and transport checks happen before.
pub fn execute(session: &mut HookSession, request: &ToolRequest) -> ToolResponse {
    let Some(info) = help_info(&request.command) else {
        return ToolResponse::Error(format!("bad request: unknown command: {}", request.command));
    };
    let mut call = Call {
        session,
        request,
        info,
        stderr: String::new(),
    };
    let args = request.args.clone();
    let result = match request.command.as_str() {
        "action-fail" => call.action_fail(&args),
        "action-get" => call.action_get(&args),
        "action-log" => call.action_log(&args),
        "action-set" => call.action_set(&args),
        "application-version-set" => call.application_version_set(&args),
        "close-port" => call.port(&args, false),
        "config-get" => call.config_get(&args),
        "goal-state" => call.goal_state(&args),
        "is-leader" => call.is_leader(&args),
        "juju-log" => call.juju_log(&args),
        "leader-get" => call.leader_get(&args),
        "leader-set" => call.leader_set(&args),
        "network-get" => call.network_get(&args),
        "open-port" => call.port(&args, true),
        "opened-ports" => call.opened_ports(&args),
        "relation-get" => call.relation_get(&args),
        "relation-ids" => call.relation_ids(&args),
        "relation-list" => call.relation_list(&args),
        "relation-set" => call.relation_set(&args),
        "status-get" => call.status_get(&args),
        "status-set" => call.status_set(&args),
        "storage-get" => call.storage_get(&args),
        "storage-list" => call.storage_list(&args),
        "unit-get" => call.unit_get(&args),
        other => Err(Stop::Failed(format!(
            "bad request: unknown command: {other}"
        ))),
    };
    let stderr = call.stderr;
    match result {
        Ok(printed) => ToolResponse::Done {
            code: 0,
            stdout: printed.stdout,
            stderr,
            output_file: printed.output_file,
        },
        Err(Stop::Help(text)) => ToolResponse::Done {
            code: 0,
            stdout: text,
            stderr: String::new(),
            output_file: None,
        },
        Err(Stop::Usage(message)) => ToolResponse::Done {
            code: 2,
            stdout: String::new(),
            stderr: format!("ERROR {message}\n"),
            output_file: None,
        },
        Err(Stop::Failed(message)) => ToolResponse::Done {
            code: 1,
            stdout: String::new(),
            stderr: format!("{stderr}ERROR {message}\n"),
            output_file: None,
        },
        Err(Stop::NeedStdin) => ToolResponse::NeedStdin,
        Err(Stop::NeedFile(path)) => ToolResponse::NeedFile(path),
    }
}

fn help_info(command: &str) -> Option<HelpInfo> {
    let (name, args, purpose, doc) = match command {
        "action-fail" => (
            "action-fail",
            "[\"<failure message>\"]",
            "Set action fail status with message.",
            "action-fail sets the fail state of the action with a given error message.  Using\naction-fail without a failure message will set a default message indicating a\nproblem with the action.",
        ),
        "action-get" => (
            "action-get",
            "[<key>[.<key>.<key>...]]",
            "Get action parameters.",
            "action-get will print the value of the parameter at the given key, serialized\nas YAML.  If multiple keys are passed, action-get will recurse into the param\nmap as needed.",
        ),
        "action-log" => (
            "action-log",
            "<message>",
            "Record a progress message for the current action.",
            "",
        ),
        "action-set" => (
            "action-set",
            "<key>=<value> [<key>=<value> ...]",
            "Set action results.",
            "action-set adds the given values to the results map of the Action. This map\nis returned to the user after the completion of the Action. Keys must start\nand end with lowercase alphanumeric, and contain only lowercase alphanumeric,\nhyphens and periods.  The following special keys are reserved for internal use:\n\"stdout\", \"stdout-encoding\", \"stderr\", \"stderr-encoding\".",
        ),
        "application-version-set" => (
            "application-version-set",
            "<new-version>",
            "Specify which version of the application is deployed.",
            "application-version-set tells Juju which version of the application software is\nrunning. This could be a package version number or some other useful identifier,\nsuch as a Git hash, that indicates the version of the deployed software.",
        ),
        "close-port" => (
            "close-port",
            "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
            "Register a request to close a port or port range.",
            "close-port registers a request to close the specified port or port range.\n\nBy default, the specified port or port range will be closed for all defined\napplication endpoints. The --endpoints option can be used to constrain the\nclose request to a comma-delimited list of endpoints.",
        ),
        "config-get" => (
            "config-get",
            "[<key>]",
            "Print application configuration setting.",
            "When no <key> is supplied, all keys with values or defaults are printed. If\n--all is set, all known keys are printed; those without defaults or values are\nreported as null. <key> and --all are mutually exclusive.",
        ),
        "goal-state" => (
            "goal-state",
            "",
            "Print the status of the charm's peers and related units.",
            "'goal-state' command will list the charm units and relations, specifying their\nstatus and their relations to other units in different charms.",
        ),
        "is-leader" => (
            "is-leader",
            "",
            "Print application leadership status.",
            "is-leader prints a boolean indicating whether the local unit is guaranteed to\nbe application leader for at least 30 seconds. If it fails, you should assume that\nthere is no such guarantee.",
        ),
        "juju-log" => (
            "juju-log",
            "<message>",
            "Write a message to the juju log.",
            "",
        ),
        "leader-get" => (
            "leader-get",
            "[<key>]",
            "Print application leadership settings.",
            "leader-get prints the value of a leadership setting specified by key. If no key\nis given, or if the key is \"-\", all keys and values will be printed.",
        ),
        "leader-set" => (
            "leader-set",
            "<key>=<value> [...]",
            "Write application leadership settings.",
            "leader-set immediate writes the supplied key/value pairs to the controller,\nwhich will then inform non-leader units of the change. It will fail if called\nwithout arguments, or if called by a unit that is not currently application leader.",
        ),
        "network-get" => (
            "network-get",
            "<binding-name> [--ingress-address] [--bind-address] [--egress-subnets]",
            "Get network config.",
            "network-get returns the network config for a given binding name. By default\nit returns the list of interfaces and associated addresses in the space for\nthe binding, as well as the ingress address for the binding. If defined, any\negress subnets are also returned.\nIf one of the following flags are specified, just that value is returned.\nIf more than one flag is specified, a map of values is returned.\n    --bind-address: the address the local unit should listen on to serve connections, as well\n                    as the address that should be advertised to its peers.\n    --ingress-address: the address the local unit should advertise as being used for incoming connections.\n    --egress-subnets: subnets (in CIDR notation) from which traffic on this relation will originate.",
        ),
        "open-port" => (
            "open-port",
            "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp",
            "Register a request to open a port or port range.",
            "open-port registers a request to open the specified port or port range.\n\nBy default, the specified port or port range will be opened for all defined\napplication endpoints. The --endpoints option can be used to constrain the\nopen request to a comma-delimited list of endpoints.",
        ),
        "opened-ports" => (
            "opened-ports",
            "",
            "List all ports or port ranges opened by the unit.",
            "opened-ports lists all ports or port ranges opened by a unit.\n\nBy default, the port range listing does not include information about the \napplication endpoints that each port range applies to. Each list entry is\nformatted as <port>/<protocol> (e.g. \"80/tcp\") or <from>-<to>/<protocol> \n(e.g. \"8080-8088/udp\").\n\nIf the --endpoints option is specified, each entry in the port list will be\naugmented with a comma-delimited list of endpoints that the port range \napplies to (e.g. \"80/tcp (endpoint1, endpoint2)\"). If a port range applies to\nall endpoints, this will be indicated by the presence of a '*' character\n(e.g. \"80/tcp (*)\").",
        ),
        "relation-get" => (
            "relation-get",
            "<key> <unit id>",
            "Get relation settings.",
            "relation-get prints the value of a unit's relation setting, specified by key.\nIf no key is given, or if the key is \"-\", all keys and values will be printed.\n\nA unit can see its own settings by calling \"relation-get - MYUNIT\", this will include\nany changes that have been made with \"relation-set\".\n\nWhen reading remote relation data, a charm can call relation-get --app - to get\nthe data for the application data bag that is set by the remote applications\nleader.",
        ),
        "relation-ids" => (
            "relation-ids",
            "<name>",
            "List all relation IDs with the given relation name.",
            "Only relation ids for relations which are not broken are included.",
        ),
        "relation-list" => (
            "relation-list",
            "",
            "List relation units.",
            "-r must be specified when not in a relation hook\n\nrelation-list outputs a list of all the related units. The order is\nirrelevant and does not need to be sorted.",
        ),
        "relation-set" => (
            "relation-set",
            "key=value [key=value ...]",
            "Set relation settings.",
            "\"relation-set\" writes the local unit's settings for some relation.\nIf no relation is specified then the current relation is used. The\nsetting values are not inspected and are stored as strings. Setting\nan empty string causes the setting to be removed. Duplicate settings\nare not allowed.\n\nIf the unit is the leader, it can set the application settings using\n\"--app\". These are visible to related applications via 'relation-get --app'\nor by supplying the application name to 'relation-get' in place of\na unit name.\n\nThe --file option should be used when one or more key-value pairs are\ntoo long to fit within the command length limit of the shell or\noperating system. The file will contain a YAML map containing the\nsettings.  Settings in the file will be overridden by any duplicate\nkey-value arguments. A value of \"-\" for the filename means <stdin>.",
        ),
        "status-get" => (
            "status-get",
            "[--include-data] [--application]",
            "Print status information.",
            "By default, only the status value is printed.\nIf the --include-data flag is passed, the associated data are printed also.",
        ),
        "status-set" => (
            "status-set",
            "<maintenance | blocked | waiting | active> [message]",
            "Set status information.",
            "Sets the workload status of the charm. Message is optional.\nThe \"last updated\" attribute of the status is set, even if the\nstatus and message are the same as what's already set.",
        ),
        "storage-get" => (
            "storage-get",
            "[<key>]",
            "Print information for the storage instance with the specified ID.",
            "When no <key> is supplied, all keys values are printed.",
        ),
        "storage-list" => (
            "storage-list",
            "[<storage-name>]",
            "List storage attached to the unit.",
            "storage-list will list the names of all storage instances\nattached to the unit. These names can be passed to storage-get\nvia the \"-s\" flag to query the storage attributes.\n\nA storage name may be specified, in which case only storage\ninstances for that named storage will be returned.",
        ),
        "unit-get" => (
            "unit-get",
            "<setting>",
            "Print public-address or private-address.",
            "",
        ),
        _ => return None,
    };
    Some(HelpInfo {
        name,
        args,
        purpose,
        doc,
    })
}

/// `cmd.CheckEmpty`.
fn check_empty(args: &[String]) -> Result<(), Stop> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(Stop::Usage(format!(
            "unrecognized args: {}",
            go_quote_list(args)
        )))
    }
}

/// `keyvalues.Parse(args, true)`.
fn parse_key_values(args: &[String]) -> Result<BTreeMap<String, String>, Stop> {
    let mut result = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(Stop::Usage(format!(
                "expected \"key=value\", got {}",
                go_quote(arg)
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(Stop::Usage(format!(
                "expected \"key=value\", got \"{key}={value}\""
            )));
        }
        if result.contains_key(key) {
            return Err(Stop::Usage(format!(
                "key {} specified more than once",
                go_quote(key)
            )));
        }
        result.insert(key.to_owned(), value.to_owned());
    }
    Ok(result)
}

/// `names.IsValidApplication`.
fn is_valid_application(name: &str) -> bool {
    let mut segments = name.split('-');
    let Some(first) = segments.next() else {
        return false;
    };
    let first_ok = first.starts_with(|c: char| c.is_ascii_lowercase())
        && first
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && segments.all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && s.chars().any(|c| c.is_ascii_lowercase())
        })
}

/// `names.IsValidUnit`.
fn is_valid_unit(name: &str) -> bool {
    match name.split_once('/') {
        Some((app, number)) => {
            is_valid_application(app)
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `names.IsValidStorage`: `<name>/<n>`.
fn is_valid_storage_id(id: &str) -> bool {
    match id.split_once('/') {
        Some((name, number)) => {
            name.starts_with(|c: char| c.is_ascii_lowercase())
                && !name.ends_with('-')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
                && (number == "0" || !number.starts_with('0'))
        }
        None => false,
    }
}

/// `action-set` key segments: `^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`.
fn is_valid_action_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !key.starts_with('-')
        && !key.ends_with('-')
}

/// Go's `strconv.Atoi` with its error text.
fn atoi(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            go_quote(text)
        ));
    }
    text.parse::<i64>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            go_quote(text)
        )
    })
}

/// `network.ParsePortRange` after open-port's lowercasing.
fn parse_port_range(spec: &str) -> Result<PortRange, String> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, protocol)) => (ports, protocol),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = ports.split('-').collect();
    let (from, to, icmp) = match parts.as_slice() {
        ["icmp"] => (-1, -1, true),
        [single] => {
            let port =
                atoi(single).map_err(|e| format!("invalid port {}: {e}", go_quote(ports)))?;
            (port, port, false)
        }
        [a, b] => {
            let from = atoi(a).map_err(|e| format!("invalid port {}: {e}", go_quote(a)))?;
            let to = atoi(b).map_err(|e| format!("invalid port {}: {e}", go_quote(b)))?;
            (from, to, false)
        }
        _ => return Err(format!("invalid port range {}", go_quote(ports))),
    };
    let protocol = if icmp && !spec.contains('/') {
        "icmp".to_owned()
    } else {
        protocol.to_lowercase()
    };
    let protocol = match protocol.as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => {
            if from == -1 && to == -1 {
                return Ok(PortRange {
                    protocol: Protocol::Icmp,
                    from: -1,
                    to: -1,
                });
            }
            return Err(format!(
                "protocol \"icmp\" doesn't support any ports; got \"{from}\""
            ));
        }
        other => {
            return Err(format!(
                "invalid protocol {}, expected \"tcp\", \"udp\", or \"icmp\"",
                go_quote(other)
            ));
        }
    };
    let range_text = |f: i64, t: i64| {
        if f == t {
            format!("{f}/{}", protocol_name(protocol))
        } else {
            format!("{f}-{t}/{}", protocol_name(protocol))
        }
    };
    if from > to {
        return Err(format!("invalid port range {}", range_text(from, to)));
    }
    if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) {
        return Err(format!(
            "port range bounds must be between 0 and 65535, got {from}-{to}"
        ));
    }
    Ok(PortRange {
        protocol,
        from: from as i32,
        to: to as i32,
    })
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Icmp => "icmp",
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn config_value(value: &Option<ConfigValue>) -> Value {
    match value {
        None => Value::Null,
        Some(ConfigValue::Bool(b)) => Value::Bool(*b),
        Some(ConfigValue::Int(i)) => Value::Int(*i),
        Some(ConfigValue::Float(f)) => Value::Float(*f),
        Some(ConfigValue::String(s)) => Value::String(s.clone()),
    }
}

fn status_details(status: &WorkloadStatus, include_data: bool) -> BTreeMap<String, Value> {
    let mut details = BTreeMap::new();
    details.insert("status".to_owned(), Value::String(status.status.clone()));
    if include_data {
        details.insert("message".to_owned(), Value::String(status.message.clone()));
        details.insert(
            "status-data".to_owned(),
            Value::Map(
                status
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
        );
    }
    details
}

/// Sets `value` at the dotted `keys` path in a nested result map, replacing non-maps.
fn insert_nested(map: &mut BTreeMap<String, serde_json::Value>, keys: &[String], value: &str) {
    let Some((first, rest)) = keys.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.insert(first.clone(), serde_json::Value::String(value.to_owned()));
        return;
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    insert_into_object(entry, rest, value);
}

fn insert_into_object(node: &mut serde_json::Value, keys: &[String], value: &str) {
    if !node.is_object() {
        *node = serde_json::Value::Object(serde_json::Map::new());
    }
    let (Some((first, rest)), serde_json::Value::Object(object)) = (keys.split_first(), node)
    else {
        return;
    };
    if rest.is_empty() {
        object.insert(first.clone(), serde_json::Value::String(value.to_owned()));
        return;
    }
    let entry = object
        .entry(first.clone())
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    insert_into_object(entry, rest, value);
}

impl Call<'_> {
    /// Parses flags; `formats` is (default, choices) for tools with an output format.
    fn parse(
        &self,
        specs: &[FlagSpec],
        args: &[String],
        formats: Option<(&'static str, &'static [&'static str])>,
    ) -> Result<Parsed, Stop> {
        let session = &*self.session;
        let mut set = |key: &'static str, value: &str| -> Result<String, String> {
            match key {
                "format" => match formats {
                    Some((_, choices)) if !choices.contains(&value) => {
                        Err(format!("unknown format {}", go_quote(value)))
                    }
                    _ => Ok(value.to_owned()),
                },
                "relation" => {
                    let id_text = value.rsplit_once(':').map_or(value, |(_, id)| id);
                    let id: i64 = id_text
                        .parse()
                        .map_err(|_| "invalid relation id".to_owned())?;
                    match u32::try_from(id).ok().and_then(|id| session.relation(id)) {
                        Some(relation) => Ok(relation.id.to_string()),
                        None => Err("relation not found".to_owned()),
                    }
                }
                "s" => {
                    if !is_valid_storage_id(value) {
                        return Err(format!("invalid storage ID {}", go_quote(value)));
                    }
                    if !session.context.storage.contains_key(value) {
                        return Err(format!("storage attachment {} not found", go_quote(value)));
                    }
                    Ok(value.to_owned())
                }
                _ => Ok(value.to_owned()),
            }
        };
        flags::parse(specs, args, &mut set).map_err(|outcome| match outcome {
            ParseOutcome::Error(message) => Stop::Usage(message),
            ParseOutcome::Help => {
                let default = |key: &str| -> String {
                    match key {
                        "format" => formats.map(|(d, _)| d.to_owned()).unwrap_or_default(),
                        "relation" => session
                            .hook_relation()
                            .map(RelationContext::key)
                            .unwrap_or_default(),
                        "s" => session.context.storage_id.clone().unwrap_or_default(),
                        _ => match specs.iter().find(|s| s.names[0] == key).map(|s| s.kind) {
                            Some(FlagKind::Bool) => "false".to_owned(),
                            _ => String::new(),
                        },
                    }
                };
                Stop::Help(flags::help_text(&self.info, specs, &default))
            }
        })
    }

    /// The format the caller asked for.
    fn format(parsed: &Parsed, default: Format) -> Format {
        parsed
            .value("format")
            .and_then(Format::parse)
            .unwrap_or(default)
    }

    /// Renders `value` for stdout or the `-o` file.
    fn print(&self, parsed: &Parsed, default: Format, value: &Value) -> Printed {
        let stdout = Self::format(parsed, default).render(value);
        let output_file = parsed
            .value("output")
            .filter(|p| !p.is_empty())
            .map(|p| self.absolute(p));
        Printed {
            stdout,
            output_file,
        }
    }

    fn absolute(&self, path: &str) -> String {
        Path::new(&self.request.dir)
            .join(path)
            .to_string_lossy()
            .into_owned()
    }

    /// The `-r` relation, or the hook's.
    fn relation_id(&self, parsed: &Parsed) -> Option<u32> {
        match parsed.value("relation") {
            Some(id) => id.parse().ok(),
            None => self.session.context.hook_relation.as_ref().map(|h| h.id),
        }
    }

    fn relation(&self, id: u32) -> Result<RelationContext, Stop> {
        self.session
            .relation(id)
            .cloned()
            .ok_or_else(|| Stop::Failed("relation not found".to_owned()))
    }

    fn deprecated_format_notice(&mut self, parsed: &Parsed) {
        if parsed.value("format").is_some() {
            self.stderr.push_str(&format!(
                "--format flag deprecated for command {}",
                go_quote(self.info.name)
            ));
        }
    }

    fn require_action(&self) -> Result<(), Stop> {
        if self.session.context.action.is_some() {
            Ok(())
        } else {
            Err(Stop::Failed("not running an action".to_owned()))
        }
    }

    fn juju_log(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FlagSpec {
                names: &["debug"],
                kind: FlagKind::Bool,
                usage: "log at debug level",
            },
            FlagSpec {
                names: &["log-level", "l"],
                kind: FlagKind::Str,
                usage: "Send log message at the given level",
            },
            DEPRECATED_FORMAT,
        ];
        let parsed = self.parse(&specs, args, None)?;
        if parsed.args.is_empty() {
            return Err(Stop::Usage("no message specified".to_owned()));
        }
        let message = parsed.args.join(" ");
        self.deprecated_format_notice(&parsed);
        let level = if parsed.flag("debug") {
            LogLevel::Debug
        } else {
            match parsed.value("log-level").filter(|l| !l.is_empty()) {
                None => LogLevel::Info,
                Some(text) => LogLevel::parse(text).unwrap_or_else(|| {
                    self.session.effects.log.push(LogRecord {
                        level: LogLevel::Warning,
                        message: format!("Specified log level of {} is not valid", go_quote(text)),
                    });
                    LogLevel::Info
                }),
            }
        };
        let prefix = self
            .session
            .hook_relation()
            .map(|r| format!("{}: ", r.key()))
            .unwrap_or_default();
        self.session.effects.log.push(LogRecord {
            level,
            message: format!("{prefix}{message}"),
        });
        Ok(Printed::default())
    }

    fn is_leader(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        check_empty(&parsed.args)?;
        Ok(self.print(
            &parsed,
            Format::Smart,
            &Value::Bool(self.session.context.is_leader),
        ))
    }

    fn config_get(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            FlagSpec {
                names: &["all", "a"],
                kind: FlagKind::Bool,
                usage: "print all keys",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        let key = parsed.args.first().cloned().unwrap_or_default();
        if !key.is_empty() && parsed.flag("all") {
            return Err(Stop::Usage(format!(
                "cannot use argument --all together with key {}",
                go_quote(&key)
            )));
        }
        if !parsed.args.is_empty() {
            check_empty(&parsed.args[1..])?;
        }
        let config = &self.session.context.config;
        let value = if key.is_empty() {
            Value::Map(
                config
                    .iter()
                    .filter(|(_, v)| parsed.flag("all") || v.is_some())
                    .map(|(k, v)| (k.clone(), config_value(v)))
                    .collect(),
            )
        } else {
            config.get(&key).map_or(Value::Null, config_value)
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn status_set(&mut self, args: &[String]) -> ToolResult {
        let specs = [FlagSpec {
            names: &["application"],
            kind: FlagKind::Bool,
            usage: "set this status for the application to which the unit belongs if the unit is the leader",
        }];
        let parsed = self.parse(&specs, args, None)?;
        const VALID: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];
        let Some(status) = parsed.args.first() else {
            return Err(Stop::Usage(
                "invalid args, require <status> [message]".to_owned(),
            ));
        };
        if !VALID.contains(&status.as_str()) {
            return Err(Stop::Usage(format!(
                "invalid status {}, expected one of [{}]",
                go_quote(status),
                VALID.join(" ")
            )));
        }
        let message = parsed.args.get(1).cloned().unwrap_or_default();
        if parsed.args.len() > 2 {
            check_empty(&parsed.args[2..])?;
        }
        let new = WorkloadStatus {
            status: status.clone(),
            message,
            data: BTreeMap::new(),
        };
        if parsed.flag("application") {
            if !self.session.context.is_leader {
                return Err(Stop::Failed("this unit is not the leader".to_owned()));
            }
            self.session.effects.application_status = Some(new);
        } else {
            self.session.effects.unit_status = Some(new);
        }
        Ok(Printed::default())
    }

    fn status_get(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            FlagSpec {
                names: &["include-data"],
                kind: FlagKind::Bool,
                usage: "print all status data",
            },
            FlagSpec {
                names: &["application"],
                kind: FlagKind::Bool,
                usage: "print status for all units of this application if this unit is the leader",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        check_empty(&parsed.args)?;
        let include_data = parsed.flag("include-data");
        let smart = Self::format(&parsed, Format::Smart) == Format::Smart;
        let value = if parsed.flag("application") {
            if !self.session.context.is_leader {
                return Err(Stop::Failed(
                    "finding application status: this unit is not the leader".to_owned(),
                ));
            }
            let application = self.session.application_status();
            if !include_data && smart {
                Value::String(application.status)
            } else {
                let mut details = status_details(&application, include_data);
                let mut units: BTreeMap<String, WorkloadStatus> =
                    self.session.context.unit_statuses.clone();
                units.insert(
                    self.session.context.unit.clone(),
                    self.session.unit_status(),
                );
                details.insert(
                    "units".to_owned(),
                    Value::Map(
                        units
                            .iter()
                            .map(|(name, status)| {
                                (
                                    name.clone(),
                                    Value::Map(status_details(status, include_data)),
                                )
                            })
                            .collect(),
                    ),
                );
                Value::Map(BTreeMap::from([(
                    "application-status".to_owned(),
                    Value::Map(details),
                )]))
            }
        } else {
            let status = self.session.unit_status();
            if !include_data && smart {
                Value::String(status.status)
            } else {
                Value::Map(status_details(&status, include_data))
            }
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn relation_ids(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        let mut rest = parsed.args.as_slice();
        let endpoint = match rest.split_first() {
            Some((first, others)) => {
                rest = others;
                first.clone()
            }
            None => match self.session.hook_relation() {
                Some(relation) => relation.endpoint.clone(),
                None => return Err(Stop::Usage("no endpoint name specified".to_owned())),
            },
        };
        check_empty(rest)?;
        let mut ids: Vec<String> = self
            .session
            .context
            .relations
            .iter()
            .filter(|r| r.live && r.endpoint == endpoint)
            .map(RelationContext::key)
            .collect();
        ids.sort();
        Ok(self.print(&parsed, Format::Smart, &Value::Strings(ids)))
    }

    fn relation_list(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            RELATION,
            FlagSpec {
                names: &["app"],
                kind: FlagKind::Bool,
                usage: "List remote application instead of participating units",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        let Some(id) = self.relation_id(&parsed) else {
            return Err(Stop::Usage("no relation id specified".to_owned()));
        };
        check_empty(&parsed.args)?;
        let relation = self.relation(id)?;
        let value = if parsed.flag("app") {
            Value::String(relation.remote_application.clone())
        } else {
            Value::Strings(relation.remote_units.keys().cloned().collect())
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn relation_get(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            RELATION,
            FlagSpec {
                names: &["app"],
                kind: FlagKind::Bool,
                usage: "Get the relation data for the overall application, not just a unit",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        let Some(id) = self.relation_id(&parsed) else {
            return Err(Stop::Usage("no relation id specified".to_owned()));
        };
        let mut app = parsed.flag("app");
        let mut rest = parsed.args.as_slice();
        let mut key = String::new();
        if let Some((first, others)) = rest.split_first() {
            if first != "-" {
                key = first.clone();
            }
            rest = others;
        }
        let hook = self
            .session
            .context
            .hook_relation
            .clone()
            .unwrap_or_default();
        let name = if let Some((explicit, others)) = rest.split_first() {
            if !app && !is_valid_unit(explicit) {
                return Err(Stop::Usage(if is_valid_application(explicit) {
                    format!(
                        "expected unit name, got application name {}",
                        go_quote(explicit)
                    )
                } else {
                    format!("invalid unit name {}", go_quote(explicit))
                }));
            }
            rest = others;
            explicit.clone()
        } else if app {
            hook.remote_application.clone().unwrap_or_default()
        } else if let Some(unit) = hook.remote_unit.clone().filter(|u| !u.is_empty()) {
            unit
        } else if let Some(remote_app) = hook.remote_application.clone().filter(|a| !a.is_empty()) {
            app = true;
            remote_app
        } else {
            String::new()
        };
        if name.is_empty() {
            return Err(Stop::Usage("no unit or application specified".to_owned()));
        }
        check_empty(rest)?;
        let relation = self.relation(id)?;
        let context = &self.session.context;
        let denied = || Stop::Failed("permission denied".to_owned());
        let settings: Settings = if app {
            let app_name = name.split_once('/').map_or(name.as_str(), |(a, _)| a);
            if app_name == context.application {
                let peer = relation.remote_application == context.application;
                if !context.is_leader && !peer {
                    return Err(denied());
                }
                self.session.local_application_settings(&relation)
            } else if app_name == relation.remote_application {
                relation.remote_application_settings.clone()
            } else {
                return Err(denied());
            }
        } else if name == context.unit {
            self.session.local_unit_settings(&relation)
        } else if let Some(settings) = relation
            .remote_units
            .get(&name)
            .or_else(|| relation.departed_units.get(&name))
        {
            settings.clone()
        } else {
            return Err(denied());
        };
        let value = if key.is_empty() {
            Value::from(&settings)
        } else {
            settings
                .get(&key)
                .map_or(Value::Null, |v| Value::String(v.clone()))
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn relation_set(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            RELATION,
            FlagSpec {
                names: &["app"],
                kind: FlagKind::Bool,
                usage: "pick whether you are setting \"application\" settings or \"unit\" settings",
            },
            FlagSpec {
                names: &["file"],
                kind: FlagKind::Value,
                usage: "file containing key-value pairs",
            },
            DEPRECATED_FORMAT,
        ];
        let parsed = self.parse(&specs, args, None)?;
        let Some(id) = self.relation_id(&parsed) else {
            return Err(Stop::Usage("no relation id specified".to_owned()));
        };
        let overrides = parse_key_values(&parsed.args)?;
        self.deprecated_format_notice(&parsed);
        let mut settings = match parsed.value("file").filter(|f| !f.is_empty()) {
            None => BTreeMap::new(),
            Some("-") => {
                let Some(stdin) = self.request.stdin.as_deref() else {
                    return Err(Stop::NeedStdin);
                };
                yaml_read::parse_settings(stdin).map_err(Stop::Failed)?
            }
            Some(path) => {
                let path = self.absolute(path);
                match self.request.files.get(&path) {
                    None => return Err(Stop::NeedFile(path)),
                    Some(FileRead::Error(message)) => return Err(Stop::Failed(message.clone())),
                    Some(FileRead::Content(text)) => {
                        yaml_read::parse_settings(text).map_err(Stop::Failed)?
                    }
                }
            }
        };
        settings.extend(overrides);
        let relation = self.relation(id)?;
        let application = parsed.flag("app");
        if application && !self.session.context.is_leader {
            return Err(Stop::Failed("cannot write relation settings".to_owned()));
        }
        if settings.is_empty() {
            return Ok(Printed::default());
        }
        let mut current = if application {
            self.session.local_application_settings(&relation)
        } else {
            self.session.local_unit_settings(&relation)
        };
        for (key, value) in settings {
            if value.is_empty() {
                current.remove(&key);
            } else {
                current.insert(key, value);
            }
        }
        let update = self
            .session
            .effects
            .relation_settings
            .entry(id)
            .or_default();
        if application {
            update.application = Some(current);
        } else {
            update.unit = Some(current);
        }
        Ok(Printed::default())
    }

    fn application_version_set(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(&[], args, None)?;
        let Some((version, rest)) = parsed.args.split_first() else {
            return Err(Stop::Usage("no version specified".to_owned()));
        };
        check_empty(rest)?;
        self.session.effects.application_version = Some(version.clone());
        Ok(Printed::default())
    }

    fn port(&mut self, args: &[String], open: bool) -> ToolResult {
        let specs = [
            FlagSpec {
                names: &["endpoints"],
                kind: FlagKind::Str,
                usage: "a comma-delimited list of application endpoints to target with this operation",
            },
            DEPRECATED_FORMAT,
        ];
        let parsed = self.parse(&specs, args, None)?;
        let Some((spec, rest)) = parsed.args.split_first() else {
            return Err(Stop::Usage("no port or range specified".to_owned()));
        };
        let range = parse_port_range(&spec.to_lowercase()).map_err(Stop::Usage)?;
        let endpoints: Vec<Option<String>> = match parsed.value("endpoints") {
            Some(list) if !list.trim().is_empty() => list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| Some(e.to_owned()))
                .collect(),
            _ => vec![None],
        };
        check_empty(rest)?;
        self.deprecated_format_notice(&parsed);
        let mut ports = self.session.opened_ports();
        for endpoint in endpoints {
            if open {
                for (unit, ranges) in &self.session.context.machine_ports {
                    if let Some(other) = ranges.iter().find(|r| r.conflicts_with(&range)) {
                        return Err(Stop::Failed(format!(
                            "cannot open {range} (unit {}): port range conflicts with {other} (unit {})",
                            go_quote(&self.session.context.unit),
                            go_quote(unit)
                        )));
                    }
                }
                ports.insert(OpenedPort { range, endpoint });
            } else if endpoint.is_none() {
                ports.retain(|p| p.range != range);
            } else {
                ports.remove(&OpenedPort { range, endpoint });
            }
        }
        self.session.effects.opened_ports = Some(ports);
        Ok(Printed::default())
    }

    fn opened_ports(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            FlagSpec {
                names: &["endpoints"],
                kind: FlagKind::Bool,
                usage: "display the list of target application endpoints for each port range",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        check_empty(&parsed.args)?;
        let mut by_range: BTreeMap<PortRange, BTreeSet<String>> = BTreeMap::new();
        for port in self.session.opened_ports() {
            by_range
                .entry(port.range)
                .or_default()
                .insert(port.endpoint.unwrap_or_else(|| "*".to_owned()));
        }
        let items: Vec<String> = by_range
            .into_iter()
            .map(|(range, endpoints)| {
                if parsed.flag("endpoints") {
                    let names: Vec<String> = endpoints.into_iter().collect();
                    format!("{range} ({})", names.join(", "))
                } else {
                    range.to_string()
                }
            })
            .collect();
        Ok(self.print(&parsed, Format::Smart, &Value::Strings(items)))
    }

    fn unit_get(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        let Some((key, rest)) = parsed.args.split_first() else {
            return Err(Stop::Usage("no setting specified".to_owned()));
        };
        if key != "private-address" && key != "public-address" {
            return Err(Stop::Usage(format!("unknown setting {}", go_quote(key))));
        }
        check_empty(rest)?;
        let context = &self.session.context;
        let address = if key == "private-address" {
            context
                .private_address
                .clone()
                .ok_or("private address not found")
        } else {
            context
                .public_address
                .clone()
                .ok_or("public address not found")
        };
        let address = address.map_err(|m| Stop::Failed(m.to_owned()))?;
        Ok(self.print(&parsed, Format::Smart, &Value::String(address)))
    }

    fn leader_get(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        let mut key = String::new();
        let mut rest = parsed.args.as_slice();
        if let Some((first, others)) = rest.split_first() {
            if first != "-" {
                if first.contains('=') {
                    return Err(Stop::Usage(format!("invalid key {}", go_quote(first))));
                }
                key = first.clone();
            }
            rest = others;
        }
        check_empty(rest)?;
        let settings = self.session.leader_settings();
        let value = if key.is_empty() {
            Value::from(&settings)
        } else {
            settings
                .get(&key)
                .map_or(Value::Null, |v| Value::String(v.clone()))
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn leader_set(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(&[], args, None)?;
        let pairs = parse_key_values(&parsed.args)?;
        if !self.session.context.is_leader {
            return Err(Stop::Failed(
                "cannot write leadership settings: cannot write settings: not the leader"
                    .to_owned(),
            ));
        }
        let mut settings = self.session.leader_settings();
        for (key, value) in pairs {
            if value.is_empty() {
                settings.remove(&key);
            } else {
                settings.insert(key, value);
            }
        }
        self.session.effects.leader_settings = Some(settings);
        Ok(Printed::default())
    }

    fn network_get(&mut self, args: &[String]) -> ToolResult {
        let bool_flag = |name: &'static [&'static str], usage: &'static str| FlagSpec {
            names: name,
            kind: FlagKind::Bool,
            usage,
        };
        let specs = [
            FORMAT,
            OUTPUT,
            RELATION,
            bool_flag(
                &["bind-address"],
                "get the address for the binding on which the unit should listen",
            ),
            bool_flag(
                &["ingress-address"],
                "get the ingress-address for the binding",
            ),
            bool_flag(
                &["egress-subnets"],
                "get the egress subnets for the binding",
            ),
            bool_flag(
                &["primary-address"],
                "(deprecated) get the primary address for the binding",
            ),
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        let Some((binding, rest)) = parsed.args.split_first() else {
            return Err(Stop::Usage("no arguments specified".to_owned()));
        };
        if binding.is_empty() {
            return Err(Stop::Usage("no binding name specified".to_owned()));
        }
        check_empty(rest)?;
        let keys: Vec<&str> = ["bind-address", "ingress-address", "egress-subnets"]
            .into_iter()
            .filter(|k| parsed.flag(k))
            .collect();
        let not_found = || {
            Stop::Failed(format!(
                "no network config found for binding {}",
                go_quote(binding)
            ))
        };
        let info = self
            .session
            .context
            .networks
            .get(binding)
            .filter(|i| !i.bind_addresses.is_empty())
            .ok_or_else(not_found)?;
        let no_addresses = || {
            Stop::Failed(format!(
                "no addresses attached to space for binding {}",
                go_quote(binding)
            ))
        };
        let first_address = || {
            info.bind_addresses[0]
                .addresses
                .first()
                .map(|a| a.value.clone())
                .ok_or_else(no_addresses)
        };
        if parsed.flag("primary-address") {
            if !keys.is_empty() {
                return Err(Stop::Failed(
                    "--primary-address must be the only flag specified".to_owned(),
                ));
            }
            return Ok(self.print(&parsed, Format::Smart, &Value::String(first_address()?)));
        }
        if keys.is_empty() {
            let mut fields = Vec::new();
            if !info.bind_addresses.is_empty() {
                let binds = info
                    .bind_addresses
                    .iter()
                    .map(|interface| {
                        let addresses = interface
                            .addresses
                            .iter()
                            .map(|a| {
                                Value::Struct(vec![
                                    Field::new("hostname", a.hostname.as_str().into()),
                                    Field::new("value", a.value.as_str().into()),
                                    Field::new("cidr", a.cidr.as_str().into()),
                                    Field::yaml_only("address", a.value.as_str().into()),
                                ])
                            })
                            .collect();
                        Value::Struct(vec![
                            Field::new("mac-address", interface.mac_address.as_str().into()),
                            Field::new("interface-name", interface.interface_name.as_str().into()),
                            Field::new("addresses", Value::List(addresses)),
                            Field::yaml_only("macaddress", interface.mac_address.as_str().into()),
                            Field::yaml_only(
                                "interfacename",
                                interface.interface_name.as_str().into(),
                            ),
                        ])
                    })
                    .collect();
                fields.push(Field::new("bind-addresses", Value::List(binds)));
            }
            if !info.egress_subnets.is_empty() {
                fields.push(Field::new(
                    "egress-subnets",
                    Value::Strings(info.egress_subnets.clone()),
                ));
            }
            if !info.ingress_addresses.is_empty() {
                fields.push(Field::new(
                    "ingress-addresses",
                    Value::Strings(info.ingress_addresses.clone()),
                ));
            }
            return Ok(self.print(&parsed, Format::Smart, &Value::Struct(fields)));
        }
        let mut values = BTreeMap::new();
        for key in &keys {
            let value = match *key {
                "bind-address" => Value::String(first_address()?),
                "ingress-address" => match info.ingress_addresses.first() {
                    Some(address) => Value::String(address.clone()),
                    None => Value::String(first_address()?),
                },
                _ => Value::Strings(info.egress_subnets.clone()),
            };
            values.insert((*key).to_owned(), value);
        }
        let value = if keys.len() == 1 {
            values.remove(keys[0]).unwrap_or(Value::Null)
        } else {
            Value::Map(values)
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn goal_state(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT_YAML_JSON, OUTPUT],
            args,
            Some(("yaml", &["json", "yaml"])),
        )?;
        check_empty(&parsed.args)?;
        let entry = |status: &super::context::GoalStateStatus| {
            let mut fields = vec![Field::new("status", status.status.as_str().into())];
            if let Some(since) = &status.since {
                fields.push(Field::new("since", since.as_str().into()));
            }
            Value::Struct(fields)
        };
        let goal = &self.session.context.goal_state;
        let units = Value::Map(
            goal.units
                .iter()
                .map(|(k, v)| (k.clone(), entry(v)))
                .collect(),
        );
        let relations = Value::Map(
            goal.relations
                .iter()
                .map(|(endpoint, members)| {
                    (
                        endpoint.clone(),
                        Value::Map(members.iter().map(|(k, v)| (k.clone(), entry(v))).collect()),
                    )
                })
                .collect(),
        );
        let value = Value::Struct(vec![
            Field::new("units", units),
            Field::new("relations", relations),
        ]);
        Ok(self.print(&parsed, Format::Yaml, &value))
    }

    fn action_get(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        if parsed.args.len() > 1 {
            check_empty(&parsed.args[1..])?;
        }
        self.require_action()?;
        let params = self
            .session
            .context
            .action
            .as_ref()
            .map(|a| a.params.clone())
            .unwrap_or_default();
        let value = match parsed.args.first() {
            None => Value::Map(
                params
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v)))
                    .collect(),
            ),
            Some(path) => {
                let mut keys = path.split('.');
                let first = keys.next().unwrap_or_default();
                let mut current = params.get(first);
                for key in keys {
                    current = current.and_then(|v| v.as_object()).and_then(|m| m.get(key));
                }
                current.map_or(Value::Null, Value::from)
            }
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn action_set(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(&[], args, None)?;
        const RESERVED: [&str; 4] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding"];
        let mut updates = Vec::new();
        for arg in &parsed.args {
            let Some((path, value)) = arg.split_once('=') else {
                return Err(Stop::Usage(format!(
                    "argument {} must be of the form key...=value",
                    go_quote(arg)
                )));
            };
            let keys: Vec<String> = path.split('.').map(str::to_owned).collect();
            for key in &keys {
                if !is_valid_action_key(key) {
                    return Err(Stop::Usage(format!(
                        "key {} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods",
                        go_quote(key)
                    )));
                }
                if RESERVED.contains(&key.as_str()) {
                    return Err(Stop::Usage(format!(
                        "cannot set reserved action key {}",
                        go_quote(key)
                    )));
                }
            }
            updates.push((keys, value.to_owned()));
        }
        if updates.is_empty() {
            return Ok(Printed::default());
        }
        self.require_action()?;
        for (keys, value) in updates {
            insert_nested(&mut self.session.effects.action.results, &keys, &value);
        }
        Ok(Printed::default())
    }

    fn action_fail(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(&[], args, None)?;
        let message = match parsed.args.split_first() {
            Some((message, rest)) => {
                check_empty(rest)?;
                message.clone()
            }
            None => "action failed without reason given, check action for errors".to_owned(),
        };
        self.require_action()?;
        self.session.effects.action.failure = Some(message);
        Ok(Printed::default())
    }

    fn action_log(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(&[], args, None)?;
        if parsed.args.is_empty() {
            return Err(Stop::Usage("no message specified".to_owned()));
        }
        self.require_action()?;
        self.session
            .effects
            .action
            .messages
            .push(parsed.args.join(" "));
        Ok(Printed::default())
    }

    fn storage_get(&mut self, args: &[String]) -> ToolResult {
        let specs = [
            FORMAT,
            OUTPUT,
            FlagSpec {
                names: &["s"],
                kind: FlagKind::Value,
                usage: "specify a storage instance by id",
            },
        ];
        let parsed = self.parse(&specs, args, Some(("smart", &["json", "smart", "yaml"])))?;
        let Some(id) = parsed
            .value("s")
            .map(str::to_owned)
            .or_else(|| self.session.context.storage_id.clone())
        else {
            return Err(Stop::Usage("no storage instance specified".to_owned()));
        };
        if parsed.args.len() > 1 {
            check_empty(&parsed.args[1..])?;
        }
        let attachment = self.session.context.storage.get(&id).ok_or_else(|| {
            Stop::Failed(format!("storage attachment {} not found", go_quote(&id)))
        })?;
        let mut values = BTreeMap::from([
            ("kind".to_owned(), Value::from(attachment.kind.as_str())),
            (
                "location".to_owned(),
                Value::from(attachment.location.as_str()),
            ),
        ]);
        let value = match parsed.args.first() {
            None => Value::Map(values),
            Some(key) => values.remove(key.as_str()).ok_or_else(|| {
                Stop::Failed(format!("invalid storage attribute {}", go_quote(key)))
            })?,
        };
        Ok(self.print(&parsed, Format::Smart, &value))
    }

    fn storage_list(&mut self, args: &[String]) -> ToolResult {
        let parsed = self.parse(
            &[FORMAT, OUTPUT],
            args,
            Some(("smart", &["json", "smart", "yaml"])),
        )?;
        let filter = parsed.args.first().cloned();
        if parsed.args.len() > 1 {
            check_empty(&parsed.args[1..])?;
        }
        let ids: Vec<String> = self
            .session
            .context
            .storage
            .keys()
            .filter(|id| match &filter {
                Some(name) => id.split_once('/').is_some_and(|(n, _)| n == name),
                None => true,
            })
            .cloned()
            .collect();
        Ok(self.print(&parsed, Format::Smart, &Value::Strings(ids)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn port_specs() {
        let tcp = |from, to| PortRange {
            protocol: Protocol::Tcp,
            from,
            to,
        };
        assert_eq!(parse_port_range("80"), Ok(tcp(80, 80)));
        assert_eq!(parse_port_range("8000-8100/tcp"), Ok(tcp(8000, 8100)));
        assert_eq!(
            parse_port_range("icmp").map(|r| r.protocol),
            Ok(Protocol::Icmp)
        );
        assert_eq!(
            parse_port_range("-5"),
            Err("invalid port \"\": strconv.Atoi: parsing \"\": invalid syntax".into())
        );
        assert_eq!(
            parse_port_range("99999999999999999999"),
            Err("invalid port \"99999999999999999999\": strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
        );
        assert_eq!(
            parse_port_range("80-x/udp"),
            Err("invalid port \"x\": strconv.Atoi: parsing \"x\": invalid syntax".into())
        );
    }

    #[test]
    fn key_value_arguments() {
        let parsed = parse_key_values(&strings(&["a=b=c", " k = v ", "empty="])).ok();
        assert_eq!(
            parsed,
            Some(BTreeMap::from([
                ("a".to_owned(), "b=c".to_owned()),
                ("empty".to_owned(), String::new()),
                ("k".to_owned(), "v".to_owned()),
            ]))
        );
    }

    #[test]
    fn names() {
        assert!(is_valid_unit("mysql/0"));
        assert!(is_valid_unit("my-sql2/10"));
        assert!(!is_valid_unit("mysql"));
        assert!(!is_valid_unit("my-2/0"));
        assert!(!is_valid_unit("Bad/0"));
        assert!(is_valid_application("wordpress-k8s"));
        assert!(!is_valid_application("2fast"));
        assert!(is_valid_storage_id("data/0"));
        assert!(!is_valid_storage_id("data"));
        assert!(!is_valid_storage_id("data/01"));
        assert!(is_valid_action_key("a-b1"));
        assert!(!is_valid_action_key("-a"));
        assert!(!is_valid_action_key("A"));
        assert!(!is_valid_action_key(""));
    }

    #[test]
    fn unknown_command_is_a_bad_request() {
        let mut session = HookSession::new(Default::default());
        let request = ToolRequest {
            command: "secret-get".into(),
            dir: "/".into(),
            ..Default::default()
        };
        assert_eq!(
            execute(&mut session, &request),
            ToolResponse::Error("bad request: unknown command: secret-get".into())
        );
    }
}
