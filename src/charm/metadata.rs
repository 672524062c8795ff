//! `metadata.yaml` (or the metadata part of `charmcraft.yaml`): the charm's name, kind,
//! relation endpoints, storage, containers and actions; and reading all of a charm
//! directory's YAML files without following symlinks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::CharmError;
use super::config::ConfigSpec;
use super::revision::parse_revision;
use super::yaml::{self, Entry, Node, Value, YamlLimits};

/// The parsed metadata of a charm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    /// The charm's name.
    pub name: String,
    /// One-line summary.
    #[serde(default)]
    pub summary: String,
    /// Longer description.
    #[serde(default)]
    pub description: String,
    /// Whether the charm is a subordinate.
    #[serde(default)]
    pub subordinate: bool,
    /// Endpoints this charm provides.
    #[serde(default)]
    pub provides: BTreeMap<String, Relation>,
    /// Endpoints this charm requires.
    #[serde(default)]
    pub requires: BTreeMap<String, Relation>,
    /// Peer endpoints.
    #[serde(default)]
    pub peers: BTreeMap<String, Relation>,
    /// Series the charm declares support for (legacy charms).
    #[serde(default)]
    pub series: Vec<String>,
    /// The oldest Juju the charm claims to work with.
    #[serde(default)]
    pub min_juju_version: Option<String>,
    /// Names of declared storage.
    #[serde(default)]
    pub storage: BTreeSet<String>,
    /// Names of extra bindings.
    #[serde(default)]
    pub extra_bindings: BTreeSet<String>,
    /// Names of declared workload containers (for `<container>-pebble-*` hooks).
    #[serde(default)]
    pub containers: BTreeSet<String>,
    /// Names of declared resources.
    #[serde(default)]
    pub resources: BTreeSet<String>,
    /// Actions, from `actions.yaml` or the `actions:` section of `charmcraft.yaml`.
    #[serde(default)]
    pub actions: BTreeMap<String, ActionSpec>,
}

/// One relation endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relation {
    /// The interface name both sides must share.
    pub interface: String,
    /// Whether the relation spans the model or one machine's container.
    #[serde(default)]
    pub scope: Scope,
    /// The most relations this endpoint accepts, when limited.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Whether the charm works without this relation.
    #[serde(default)]
    pub optional: bool,
}

/// The scope of a relation endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Between all units of the related applications.
    #[default]
    Global,
    /// Between a subordinate unit and its principal on the same machine.
    Container,
}

/// Which side of a relation an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Declared under `provides:`.
    Provider,
    /// Declared under `requires:`.
    Requirer,
    /// Declared under `peers:`.
    Peer,
}

impl Role {
    /// The metadata section the role is declared in.
    pub fn section(self) -> &'static str {
        match self {
            Role::Provider => "provides",
            Role::Requirer => "requires",
            Role::Peer => "peers",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Provider => "provider",
            Role::Requirer => "requirer",
            Role::Peer => "peer",
        })
    }
}

/// One declared action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// Human description.
    #[serde(default)]
    pub description: String,
    /// The JSON-schema `params` as declared (kept loosely, for `action-get` defaults).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// Every endpoint implicitly provides `juju-info` (Juju adds it to every charm).
static JUJU_INFO: LazyLock<Relation> = LazyLock::new(|| Relation {
    interface: "juju-info".to_owned(),
    scope: Scope::Global,
    limit: None,
    optional: false,
});

/// Everything read from a charm directory's YAML and revision files.
#[derive(Debug, Clone, PartialEq)]
pub struct CharmFiles {
    /// The metadata, including actions.
    pub metadata: Metadata,
    /// The config options (empty when the charm declares none).
    pub config: ConfigSpec,
    /// The `revision` file's value, when present.
    pub revision: Option<u64>,
    /// The file the metadata came from: `metadata.yaml` or `charmcraft.yaml`.
    pub metadata_file: PathBuf,
}

impl Metadata {
    /// Parses `metadata.yaml` text (or `charmcraft.yaml`, whose metadata fields are the
    /// same) under the default limits; `file` names the file in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, CharmError> {
        Self::parse_with_limits(text, file, &YamlLimits::default())
    }

    /// [`Metadata::parse`] under explicit limits.
    pub fn parse_with_limits(
        text: &str,
        file: &Path,
        limits: &YamlLimits,
    ) -> Result<Self, CharmError> {
        let root = yaml::parse_document(text, file, limits)?;
        Self::from_node(&root, file)
    }

    /// Parses `actions.yaml` text: a mapping of action name to description and params.
    pub fn parse_actions(
        text: &str,
        file: &Path,
        limits: &YamlLimits,
    ) -> Result<BTreeMap<String, ActionSpec>, CharmError> {
        let root = yaml::parse_document(text, file, limits)?;
        actions_from_node(&root, file, "")
    }

    /// Reads a charm directory: `metadata.yaml` (else `charmcraft.yaml`), `config.yaml`
    /// (else charmcraft's `config:`), `actions.yaml` (else charmcraft's `actions:`) and
    /// `revision`. No file is opened through a symlink.
    pub fn load(dir: &Path, limits: &YamlLimits) -> Result<CharmFiles, CharmError> {
        let (metadata_file, mut metadata, craft_config) =
            if let Some(text) = read_charm_file(dir, "metadata.yaml", limits)? {
                let file = PathBuf::from("metadata.yaml");
                (
                    file.clone(),
                    Self::parse_with_limits(&text, &file, limits)?,
                    None,
                )
            } else if let Some(text) = read_charm_file(dir, "charmcraft.yaml", limits)? {
                let file = PathBuf::from("charmcraft.yaml");
                let root = yaml::parse_document(&text, &file, limits)?;
                let metadata = Self::from_node(&root, &file)?;
                let config = match root.get("config") {
                    Some(node) => Some(ConfigSpec::from_node(node, &file)?),
                    None => None,
                };
                (file, metadata, config)
            } else {
                return Err(CharmError::MissingMetadata {
                    dir: dir.to_owned(),
                });
            };
        let config = match read_charm_file(dir, "config.yaml", limits)? {
            Some(text) => {
                if craft_config.is_some() {
                    tracing::warn!(
                        dir = %dir.display(),
                        "both config.yaml and charmcraft.yaml declare config, using config.yaml"
                    );
                }
                ConfigSpec::parse(&text, Path::new("config.yaml"), limits)?
            }
            None => craft_config.unwrap_or_default(),
        };
        if let Some(text) = read_charm_file(dir, "actions.yaml", limits)? {
            if !metadata.actions.is_empty() {
                tracing::warn!(
                    dir = %dir.display(),
                    "both actions.yaml and charmcraft.yaml declare actions, using actions.yaml"
                );
            }
            metadata.actions = Self::parse_actions(&text, Path::new("actions.yaml"), limits)?;
        }
        let revision = match read_charm_file(dir, "revision", limits)? {
            Some(text) => Some(parse_revision(&text, Path::new("revision"))?),
            None => None,
        };
        Ok(CharmFiles {
            metadata,
            config,
            revision,
            metadata_file,
        })
    }

    /// The endpoint called `name`, with its role; includes the implicit `juju-info`.
    pub fn endpoint(&self, name: &str) -> Option<(Role, &Relation)> {
        if let Some(r) = self.provides.get(name) {
            return Some((Role::Provider, r));
        }
        if let Some(r) = self.requires.get(name) {
            return Some((Role::Requirer, r));
        }
        if let Some(r) = self.peers.get(name) {
            return Some((Role::Peer, r));
        }
        (name == "juju-info").then(|| (Role::Provider, &*JUJU_INFO))
    }

    /// All declared endpoints with their roles (not the implicit `juju-info`).
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, Role, &Relation)> {
        fn section(
            map: &BTreeMap<String, Relation>,
            role: Role,
        ) -> impl Iterator<Item = (&str, Role, &Relation)> {
            map.iter().map(move |(name, r)| (name.as_str(), role, r))
        }
        section(&self.provides, Role::Provider)
            .chain(section(&self.requires, Role::Requirer))
            .chain(section(&self.peers, Role::Peer))
    }

    /// Reads the metadata fields from a parsed document and checks Juju's rules.
    pub(crate) fn from_node(root: &Node, file: &Path) -> Result<Self, CharmError> {
        root.entries(file, "metadata")?;
        if !matches!(root.value, Value::Mapping(_)) {
            return Err(root.schema_error(file, "name", "is required".to_owned()));
        }
        let name_node = root
            .get("name")
            .ok_or_else(|| root.schema_error(file, "name", "is required".to_owned()))?;
        let name = name_node.text(file, "name")?.to_owned();
        check_name(&name, CHARM_NAME)
            .map_err(|rule| invalid_name(file, name_node, "charm", &name, rule))?;
        let text_field = |key: &str| -> Result<String, CharmError> {
            match root.get(key) {
                Some(node) => Ok(node.optional_text(file, key)?.unwrap_or("").to_owned()),
                None => Ok(String::new()),
            }
        };
        let subordinate = match root.get("subordinate") {
            Some(node) if !node.is_null() => node.boolean(file, "subordinate")?,
            _ => false,
        };
        let mut metadata = Metadata {
            summary: text_field("summary")?,
            description: text_field("description")?,
            subordinate,
            provides: BTreeMap::new(),
            requires: BTreeMap::new(),
            peers: BTreeMap::new(),
            series: match root.get("series") {
                Some(node) => node.string_list(file, "series")?,
                None => Vec::new(),
            },
            min_juju_version: match root.get("min-juju-version") {
                Some(node) => node
                    .optional_text(file, "min-juju-version")?
                    .map(str::to_owned),
                None => None,
            },
            storage: names_of(root, file, "storage", "storage")?,
            extra_bindings: names_of(root, file, "extra-bindings", "extra-binding")?,
            containers: names_of(root, file, "containers", "container")?,
            resources: names_of(root, file, "resources", "resource")?,
            actions: actions_from_node(root, file, "actions")?,
            name,
        };
        let mut seen: BTreeMap<String, Role> = BTreeMap::new();
        for role in [Role::Provider, Role::Requirer, Role::Peer] {
            let section = role.section();
            let Some(node) = root.get(section) else {
                continue;
            };
            for entry in node.entries(file, section)? {
                let relation = relation_from_entry(entry, file, section)?;
                check_endpoint(&metadata, entry, &relation, role, file)?;
                if let Some(first) = seen.insert(entry.key.clone(), role) {
                    return Err(CharmError::DuplicateEndpoint {
                        file: file.to_owned(),
                        name: entry.key.clone(),
                        first: first.section(),
                        second: section,
                    });
                }
                let map = match role {
                    Role::Provider => &mut metadata.provides,
                    Role::Requirer => &mut metadata.requires,
                    Role::Peer => &mut metadata.peers,
                };
                map.insert(entry.key.clone(), relation);
            }
        }
        if metadata.subordinate
            && !metadata
                .requires
                .values()
                .any(|r| r.scope == Scope::Container)
        {
            return Err(CharmError::SubordinateWithoutContainer {
                file: file.to_owned(),
                charm: metadata.name,
            });
        }
        Ok(metadata)
    }
}

/// Juju's charm name rule: lowercase letters and digits in hyphen-separated words, starting
/// with a letter, no word made only of digits (so `app/0` and `app-0` never clash).
const CHARM_NAME: NameRule = NameRule {
    separators: &['-'],
    digits_only_words: false,
    rule: "lowercase letters, digits and single hyphens, starting with a letter, no all-digit word",
};

/// Endpoint, interface, storage, container and action names.
const ENDPOINT_NAME: NameRule = NameRule {
    separators: &['-', '_'],
    digits_only_words: true,
    rule: "lowercase letters, digits and single hyphens or underscores, starting with a letter",
};

/// A naming rule: words of `[a-z0-9]+` joined by single separators, starting with a letter.
struct NameRule {
    separators: &'static [char],
    digits_only_words: bool,
    rule: &'static str,
}

fn check_name(name: &str, rule: NameRule) -> Result<(), &'static str> {
    let starts_with_letter = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let mut words = name.split(|c| rule.separators.contains(&c));
    let words_ok = words.all(|w| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && (rule.digits_only_words || w.chars().any(|c| c.is_ascii_lowercase()))
    });
    if starts_with_letter && words_ok {
        Ok(())
    } else {
        Err(rule.rule)
    }
}

/// Whether a hook-facing name (endpoint, storage, container, action) is well formed.
pub(crate) fn is_valid_endpoint_name(name: &str) -> bool {
    check_name(name, ENDPOINT_NAME).is_ok()
}

fn invalid_name(
    file: &Path,
    node: &Node,
    kind: &'static str,
    name: &str,
    rule: &'static str,
) -> CharmError {
    CharmError::InvalidName {
        file: file.to_owned(),
        line: node.line,
        column: node.column,
        kind,
        name: name.to_owned(),
        rule,
    }
}

fn invalid_key(file: &Path, entry: &Entry, kind: &'static str, rule: &'static str) -> CharmError {
    CharmError::InvalidName {
        file: file.to_owned(),
        line: entry.key_line,
        column: entry.key_column,
        kind,
        name: entry.key.clone(),
        rule,
    }
}

/// The keys of a mapping section (`storage:`, `containers:`...), each checked as a name.
fn names_of(
    root: &Node,
    file: &Path,
    section: &str,
    kind: &'static str,
) -> Result<BTreeSet<String>, CharmError> {
    let Some(node) = root.get(section) else {
        return Ok(BTreeSet::new());
    };
    node.entries(file, section)?
        .iter()
        .map(|entry| {
            check_name(&entry.key, ENDPOINT_NAME)
                .map_err(|rule| invalid_key(file, entry, kind, rule))?;
            Ok(entry.key.clone())
        })
        .collect()
}

/// `name: interface` shorthand or a mapping with `interface`, `scope`, `limit`, `optional`.
fn relation_from_entry(entry: &Entry, file: &Path, section: &str) -> Result<Relation, CharmError> {
    let field = format!("{section}.{}", entry.key);
    let body = &entry.value;
    let interface_node;
    let mut relation = Relation {
        interface: String::new(),
        scope: Scope::Global,
        limit: None,
        optional: false,
    };
    match &body.value {
        Value::Scalar(_) if !body.is_null() => interface_node = body,
        Value::Mapping(_) => {
            interface_node = body
                .get("interface")
                .filter(|n| !n.is_null())
                .ok_or_else(|| {
                    body.schema_error(file, &field, "interface is required".to_owned())
                })?;
            if let Some(node) = body.get("scope").filter(|n| !n.is_null()) {
                relation.scope = match node.text(file, &format!("{field}.scope"))? {
                    "global" => Scope::Global,
                    "container" => Scope::Container,
                    other => {
                        return Err(node.schema_error(
                            file,
                            &format!("{field}.scope"),
                            format!("expected global or container, found {other:?}"),
                        ));
                    }
                };
            }
            if let Some(node) = body.get("limit").filter(|n| !n.is_null()) {
                let text = node.text(file, &format!("{field}.limit"))?;
                relation.limit = Some(text.parse().map_err(|_| {
                    node.schema_error(
                        file,
                        &format!("{field}.limit"),
                        format!("expected a non-negative integer, found {text:?}"),
                    )
                })?);
            }
            if let Some(node) = body.get("optional").filter(|n| !n.is_null()) {
                relation.optional = node.boolean(file, &format!("{field}.optional"))?;
            }
        }
        _ => return Err(body.schema_error(file, &field, "interface is required".to_owned())),
    }
    let interface = interface_node.text(file, &format!("{field}.interface"))?;
    check_name(interface, ENDPOINT_NAME)
        .map_err(|rule| invalid_name(file, interface_node, "interface", interface, rule))?;
    relation.interface = interface.to_owned();
    Ok(relation)
}

/// Juju's endpoint rules: well-formed name; `juju`/`juju-*` reserved (except container-scoped
/// requirers of a subordinate, and charms themselves named `juju-*`); a provider or peer may
/// not use a reserved interface.
fn check_endpoint(
    metadata: &Metadata,
    entry: &Entry,
    relation: &Relation,
    role: Role,
    file: &Path,
) -> Result<(), CharmError> {
    check_name(&entry.key, ENDPOINT_NAME)
        .map_err(|rule| invalid_key(file, entry, "endpoint", rule))?;
    let charm_exempt = metadata.name.starts_with("juju-");
    let reserved = |name: &str| !charm_exempt && (name == "juju" || name.starts_with("juju-"));
    let subordinate_attachment =
        metadata.subordinate && role == Role::Requirer && relation.scope == Scope::Container;
    if reserved(&entry.key) && !subordinate_attachment {
        return Err(CharmError::ReservedEndpoint {
            file: file.to_owned(),
            name: entry.key.clone(),
        });
    }
    if role != Role::Requirer && reserved(&relation.interface) {
        return Err(CharmError::ReservedInterface {
            file: file.to_owned(),
            endpoint: entry.key.clone(),
            interface: relation.interface.clone(),
        });
    }
    Ok(())
}

/// The `actions` mapping at `section` of `root` (the whole document when `section` is empty).
fn actions_from_node(
    root: &Node,
    file: &Path,
    section: &str,
) -> Result<BTreeMap<String, ActionSpec>, CharmError> {
    let node = if section.is_empty() {
        root
    } else {
        match root.get(section) {
            Some(node) => node,
            None => return Ok(BTreeMap::new()),
        }
    };
    let label = if section.is_empty() {
        "actions"
    } else {
        section
    };
    let mut actions = BTreeMap::new();
    for entry in node.entries(file, label)? {
        check_name(&entry.key, ENDPOINT_NAME)
            .map_err(|rule| invalid_key(file, entry, "action", rule))?;
        let field = format!("{label}.{}", entry.key);
        let body = &entry.value;
        body.entries(file, &field)?;
        let description = match body.get("description") {
            Some(node) => node
                .optional_text(file, &format!("{field}.description"))?
                .unwrap_or("")
                .to_owned(),
            None => String::new(),
        };
        let params = match body.get("params") {
            Some(node) => node
                .entries(file, &format!("{field}.params"))?
                .iter()
                .map(|p| (p.key.clone(), to_json(&p.value)))
                .collect(),
            None => BTreeMap::new(),
        };
        actions.insert(
            entry.key.clone(),
            ActionSpec {
                description,
                params,
            },
        );
    }
    Ok(actions)
}

/// A loose JSON reading of a YAML node (plain scalars resolved to null, booleans and numbers).
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as Json;
    match &node.value {
        Value::Scalar(s) if s.is_null() => Json::Null,
        Value::Scalar(s) if s.style == yaml::Style::Plain => {
            let lower = s.text.to_ascii_lowercase();
            if ["true", "yes", "on"].contains(&lower.as_str()) {
                Json::Bool(true)
            } else if ["false", "no", "off"].contains(&lower.as_str()) {
                Json::Bool(false)
            } else if let Ok(i) = s.text.parse::<i64>() {
                Json::from(i)
            } else if let Some(x) = s.text.parse::<f64>().ok().filter(|x| x.is_finite())
                && s.text.chars().any(|c| c.is_ascii_digit())
            {
                Json::from(x)
            } else {
                Json::String(s.text.clone())
            }
        }
        Value::Scalar(s) => Json::String(s.text.clone()),
        Value::Sequence(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Mapping(entries) => Json::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}

/// Reads `dir/name` as UTF-8 text, refusing symlinks (O_NOFOLLOW) and non-regular files and
/// never reading more than the byte limit; `Ok(None)` when the file does not exist.
pub(crate) fn read_charm_file(
    dir: &Path,
    name: &str,
    limits: &YamlLimits,
) -> Result<Option<String>, CharmError> {
    let path = dir.join(name);
    let file = PathBuf::from(name);
    // O_NOFOLLOW: a charm's metadata.yaml -> /etc/shadow must not be read (CWE-59).
    // O_NONBLOCK: opening a fifo planted as config.yaml must not hang.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path);
    let handle = match opened {
        Ok(handle) => handle,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(CharmError::SymlinkedFile { file });
        }
        Err(source) => return Err(CharmError::Read { file, source }),
    };
    let meta = handle.metadata().map_err(|source| CharmError::Read {
        file: file.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(CharmError::NotRegularFile { file });
    }
    let mut bytes = Vec::new();
    handle
        .take(limits.max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| CharmError::Read {
            file: file.clone(),
            source,
        })?;
    if bytes.len() > limits.max_bytes {
        return Err(CharmError::YamlTooLarge {
            file,
            size: meta.len().max(bytes.len() as u64),
            limit: limits.max_bytes as u64,
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| CharmError::NotUtf8 { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDPRESS: &str = r#"name: wordpress
summary: "Blog engine"
description: |
  This will install and setup WordPress optimized to run in the cloud.
maintainers:
  - Jane Doe <jane@example.com>
series: [focal, jammy]
min-juju-version: "2.9.0"
tags: [applications, blog]
provides:
  website:
    interface: http
  nrpe-external-master:
    interface: nrpe-external-master
    scope: container
    optional: true
requires:
  db:
    interface: mysql
    limit: 1
  cache: memcache
peers:
  loadbalancer:
    interface: reversenginx
storage:
  uploads:
    type: filesystem
    location: /var/www/uploads
extra-bindings:
  admin-api:
resources:
  theme:
    type: file
    filename: theme.zip
"#;

    fn parse(text: &str) -> Result<Metadata, CharmError> {
        Metadata::parse(text, Path::new("metadata.yaml"))
    }

    #[test]
    fn wordpress_metadata() {
        let m = parse(WORDPRESS).unwrap();
        assert_eq!(m.name, "wordpress");
        assert_eq!(m.summary, "Blog engine");
        assert!(m.description.starts_with("This will install"));
        assert!(!m.subordinate);
        assert_eq!(m.series, ["focal", "jammy"]);
        assert_eq!(m.min_juju_version.as_deref(), Some("2.9.0"));
        assert_eq!(m.provides["website"].interface, "http");
        assert_eq!(m.provides["website"].scope, Scope::Global);
        let nrpe = &m.provides["nrpe-external-master"];
        assert_eq!((nrpe.scope, nrpe.optional), (Scope::Container, true));
        assert_eq!(m.requires["db"].limit, Some(1));
        assert_eq!(m.requires["cache"].interface, "memcache");
        assert_eq!(m.peers["loadbalancer"].interface, "reversenginx");
        assert_eq!(m.storage, BTreeSet::from(["uploads".to_owned()]));
        assert_eq!(m.extra_bindings, BTreeSet::from(["admin-api".to_owned()]));
        assert_eq!(m.resources, BTreeSet::from(["theme".to_owned()]));
        assert_eq!(
            m.endpoint("db").map(|(r, rel)| (r, rel.interface.as_str())),
            Some((Role::Requirer, "mysql"))
        );
        assert_eq!(m.endpoint("website").unwrap().0, Role::Provider);
        assert_eq!(m.endpoint("loadbalancer").unwrap().0, Role::Peer);
        assert_eq!(m.endpoint("juju-info").unwrap().1.interface, "juju-info");
        assert!(m.endpoint("nope").is_none());
        assert_eq!(m.endpoints().count(), 5);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Metadata>(&json).unwrap(), m);
    }

    #[test]
    fn mysql_subordinate_and_containers() {
        let m = parse(
            "name: mysql-router\nsubordinate: yes\nrequires:\n  juju-info:\n    interface: juju-info\n    scope: container\n  db-router: {interface: mysql-router}\ncontainers:\n  router: {resource: image}\n",
        )
        .unwrap();
        assert!(m.subordinate);
        assert_eq!(m.requires["juju-info"].scope, Scope::Container);
        assert_eq!(m.containers, BTreeSet::from(["router".to_owned()]));
    }

    #[test]
    fn subordinate_needs_container_scoped_requires() {
        let err =
            parse("name: sub\nsubordinate: true\nrequires:\n  host: {interface: juju-info}\n")
                .unwrap_err();
        assert!(
            matches!(err, CharmError::SubordinateWithoutContainer { .. }),
            "{err}"
        );
    }

    #[test]
    fn name_is_required_and_checked() {
        let err = parse("summary: x\n").unwrap_err();
        assert_eq!(err.to_string(), "metadata.yaml:1:1: name: is required");
        let err = parse("").unwrap_err();
        assert!(matches!(err, CharmError::Schema { .. }), "{err}");
        for bad in [
            "Wordpress",
            "1password",
            "word_press",
            "word--press",
            "wordpress-",
            "app-1",
            "a b",
            "../x",
            "-x",
        ] {
            let err = parse(&format!("name: '{bad}'\n")).unwrap_err();
            assert!(
                matches!(&err, CharmError::InvalidName { kind: "charm", .. }),
                "{bad}: {err}"
            );
        }
        for good in ["a", "wordpress", "mysql-router", "k8s-app", "app-v2"] {
            assert_eq!(parse(&format!("name: {good}\n")).unwrap().name, good);
        }
        let err = parse("name: Bad\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("metadata.yaml:1:7: invalid charm name \"Bad\""),
            "{err}"
        );
    }

    #[test]
    fn endpoint_names_unique_across_sections() {
        let err = parse(
            "name: x\nprovides:\n  db: {interface: mysql}\npeers:\n  db: {interface: mysql-peer}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.yaml: endpoint \"db\" is declared in both provides and peers"
        );
    }

    #[test]
    fn reserved_endpoint_names_refused() {
        for name in ["juju", "juju-info", "juju-anything"] {
            let err = parse(&format!(
                "name: x\nprovides:\n  {name}: {{interface: foo}}\n"
            ))
            .unwrap_err();
            assert!(
                matches!(&err, CharmError::ReservedEndpoint { name: n, .. } if n == name),
                "{err}"
            );
            let err = parse(&format!(
                "name: x\nrequires:\n  {name}: {{interface: foo}}\n"
            ))
            .unwrap_err();
            assert!(matches!(err, CharmError::ReservedEndpoint { .. }), "{err}");
        }
        // A charm itself named juju-* may use them.
        assert!(parse("name: juju-tools\nprovides:\n  juju-x: {interface: juju-y}\n").is_ok());
        let err = parse("name: x\nprovides:\n  info: {interface: juju-info}\n").unwrap_err();
        assert!(matches!(err, CharmError::ReservedInterface { .. }), "{err}");
        // Requirers may use the juju-info interface.
        assert!(parse("name: x\nrequires:\n  host: {interface: juju-info}\n").is_ok());
    }

    #[test]
    fn interface_required_and_scope_checked() {
        let err = parse("name: x\nrequires:\n  db:\n    scope: global\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.yaml:4:5: requires.db: interface is required"
        );
        let err = parse("name: x\nrequires:\n  db:\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("requires.db: interface is required"),
            "{err}"
        );
        let err =
            parse("name: x\nrequires:\n  db: {interface: mysql, scope: machine}\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("requires.db.scope: expected global or container"),
            "{err}"
        );
        let err = parse("name: x\nrequires:\n  db: {interface: mysql, limit: -1}\n").unwrap_err();
        assert!(err.to_string().contains("requires.db.limit"), "{err}");
        let err = parse("name: x\nrequires:\n  db: {interface: My/SQL}\n").unwrap_err();
        assert!(
            matches!(
                err,
                CharmError::InvalidName {
                    kind: "interface",
                    ..
                }
            ),
            "{err}"
        );
        let err = parse("name: x\nrequires:\n  Db: mysql\n").unwrap_err();
        assert!(
            matches!(
                err,
                CharmError::InvalidName {
                    kind: "endpoint",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn wrong_shapes_are_located() {
        let err = parse("name: x\nprovides: [a, b]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.yaml:2:11: provides: expected a mapping, found a sequence"
        );
        let err = parse("name: [x]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.yaml:1:7: name: expected a string, found a sequence"
        );
        let err = parse("name: x\nsubordinate: perhaps\n").unwrap_err();
        assert!(
            err.to_string().contains("subordinate: expected a boolean"),
            "{err}"
        );
        let err = parse("- a\n- b\n").unwrap_err();
        assert!(err.to_string().contains("expected a mapping"), "{err}");
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let m = parse("name: first\nsummary: a\nname: second\n").unwrap();
        assert_eq!(m.name, "second");
    }

    #[test]
    fn alias_bomb_in_metadata_is_refused() {
        let text = "name: x\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
        let err = parse(text).unwrap_err();
        assert!(err.to_string().starts_with("metadata.yaml:"), "{err}");
    }

    #[test]
    fn charmcraft_yaml_fields() {
        let text = r#"type: charm
name: hello-kubecon
summary: A demo charm
description: Demo.
bases:
  - build-on: [{name: ubuntu, channel: "22.04"}]
containers:
  gosherve:
    resource: gosherve-image
resources:
  gosherve-image:
    type: oci-image
requires:
  ingress:
    interface: ingress
    limit: 1
config:
  options:
    redirect-map:
      type: string
      default: https://jnsgr.uk/demo-routes
actions:
  pull-site:
    description: Pull the site.
    params:
      force:
        type: boolean
        default: false
"#;
        let m = Metadata::parse(text, Path::new("charmcraft.yaml")).unwrap();
        assert_eq!(m.name, "hello-kubecon");
        assert_eq!(m.containers, BTreeSet::from(["gosherve".to_owned()]));
        assert_eq!(m.actions["pull-site"].description, "Pull the site.");
        assert_eq!(
            m.actions["pull-site"].params["force"],
            serde_json::json!({"type": "boolean", "default": false})
        );
    }

    fn charm_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    #[test]
    fn load_reads_all_files() {
        let dir = charm_dir(&[
            ("metadata.yaml", WORDPRESS),
            (
                "config.yaml",
                "options:\n  blog-title: {type: string, default: '0.10'}\n",
            ),
            (
                "actions.yaml",
                "backup:\n  description: Back up the database.\n",
            ),
            ("revision", " 42\n"),
        ]);
        let files = Metadata::load(dir.path(), &YamlLimits::default()).unwrap();
        assert_eq!(files.metadata.name, "wordpress");
        assert_eq!(files.metadata_file, Path::new("metadata.yaml"));
        assert!(files.config.options.contains_key("blog-title"));
        assert_eq!(
            files.metadata.actions["backup"].description,
            "Back up the database."
        );
        assert_eq!(files.revision, Some(42));
    }

    #[test]
    fn load_charmcraft_only() {
        let dir = charm_dir(&[(
            "charmcraft.yaml",
            "name: crafty\ntype: charm\nconfig:\n  options:\n    port: {type: int, default: 8080}\nactions:\n  restart: {}\n",
        )]);
        let files = Metadata::load(dir.path(), &YamlLimits::default()).unwrap();
        assert_eq!(files.metadata.name, "crafty");
        assert_eq!(files.metadata_file, Path::new("charmcraft.yaml"));
        assert_eq!(
            files.config.options["port"].default,
            Some(super::super::ConfigValue::Int(8080))
        );
        assert!(files.metadata.actions.contains_key("restart"));
        assert_eq!(files.revision, None);
    }

    #[test]
    fn load_prefers_metadata_yaml_and_config_yaml() {
        let dir = charm_dir(&[
            ("metadata.yaml", "name: real\n"),
            (
                "charmcraft.yaml",
                "name: ignored\nconfig:\n  options:\n    a: {type: int}\n",
            ),
        ]);
        let files = Metadata::load(dir.path(), &YamlLimits::default()).unwrap();
        assert_eq!(files.metadata.name, "real");
        assert!(files.config.options.is_empty());
        let dir = charm_dir(&[
            (
                "charmcraft.yaml",
                "name: crafty\nconfig:\n  options:\n    a: {type: int}\n",
            ),
            ("config.yaml", "options:\n  b: {type: string}\n"),
        ]);
        let files = Metadata::load(dir.path(), &YamlLimits::default()).unwrap();
        assert!(files.config.options.contains_key("b") && !files.config.options.contains_key("a"));
    }

    #[test]
    fn load_without_metadata_is_refused() {
        let dir = charm_dir(&[("config.yaml", "options: {}\n")]);
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::MissingMetadata { .. }), "{err}");
    }

    #[test]
    fn load_refuses_symlinked_files() {
        let outside = charm_dir(&[("secret.yaml", "name: stolen\n")]);
        for name in ["metadata.yaml", "config.yaml", "actions.yaml", "revision"] {
            let dir = charm_dir(&[("metadata.yaml", "name: x\n")]);
            let link = dir.path().join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(outside.path().join("secret.yaml"), &link).unwrap();
            let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
            assert!(
                matches!(&err, CharmError::SymlinkedFile { file } if file == Path::new(name)),
                "{name}: {err}"
            );
            assert_eq!(
                err.to_string(),
                format!("{name}: is a symlink, which hookbox never follows for charm files")
            );
        }
        // A dangling symlink is refused the same way, not treated as absent.
        let dir = charm_dir(&[]);
        std::os::unix::fs::symlink("/nonexistent", dir.path().join("metadata.yaml")).unwrap();
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::SymlinkedFile { .. }), "{err}");
    }

    #[test]
    fn load_refuses_directories_fifos_oversize_and_non_utf8() {
        let dir = charm_dir(&[]);
        std::fs::create_dir(dir.path().join("metadata.yaml")).unwrap();
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::NotRegularFile { .. }), "{err}");

        let dir = charm_dir(&[("metadata.yaml", "name: x\n")]);
        nix::unistd::mkfifo(
            &dir.path().join("config.yaml"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::NotRegularFile { .. }), "{err}");

        let dir = charm_dir(&[(
            "metadata.yaml",
            "name: x\ndescription: aaaaaaaaaaaaaaaaaaaa\n",
        )]);
        let limits = YamlLimits {
            max_bytes: 16,
            ..YamlLimits::default()
        };
        let err = Metadata::load(dir.path(), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                CharmError::YamlTooLarge {
                    size: 42,
                    limit: 16,
                    ..
                }
            ),
            "{err}"
        );

        let dir = charm_dir(&[]);
        std::fs::write(dir.path().join("metadata.yaml"), b"name: \xff\n").unwrap();
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::NotUtf8 { .. }), "{err}");
    }

    #[test]
    fn load_reports_bad_revision_and_bad_config() {
        let dir = charm_dir(&[("metadata.yaml", "name: x\n"), ("revision", "seven\n")]);
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(matches!(err, CharmError::BadRevision { .. }), "{err}");
        let dir = charm_dir(&[
            ("metadata.yaml", "name: x\n"),
            ("config.yaml", "options:\n  n: {type: int, default: 1.0}\n"),
        ]);
        let err = Metadata::load(dir.path(), &YamlLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("config.yaml:2:"), "{err}");
    }
}
