//! Charms: `metadata.yaml` / `config.yaml` types, hook names and handler lookup, archive ingest.

pub mod config;
pub mod hook;
pub mod metadata;
pub mod revision;
pub mod yaml;

use std::path::PathBuf;

use crate::exit::{ClassifyExit, ExitStatus};

pub use config::{ConfigOption, ConfigSpec, ConfigValue, OptionType};
pub use hook::{
    Handler, HookKind, HookName, Probe, RelationEvent, StorageEvent, WorkloadEvent, find_handler,
};
pub use metadata::{ActionSpec, CharmFiles, Metadata, Relation, Role, Scope};
pub use revision::parse_revision;
pub use yaml::YamlLimits;

/// Errors about a charm's content: its YAML, its files, its names, and settings checked
/// against its config schema.
#[derive(Debug, thiserror::Error)]
pub enum CharmError {
    /// A YAML file of the charm does not parse, or breaks a structural limit at a known place.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Yaml {
        /// The file inside the charm, e.g. `metadata.yaml`.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A YAML file is larger than the limit it is read under.
    #[error("{}: file is {size} bytes, over the {limit} byte limit", file.display())]
    YamlTooLarge {
        /// The file.
        file: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A YAML file exceeds serde-saphyr's parse budget (events, nodes, anchors, ...).
    #[error("{}: refused: {reason}", file.display())]
    YamlBudget {
        /// The file.
        file: PathBuf,
        /// Which budget was exceeded.
        reason: String,
    },
    /// A YAML value does not fit the charm file's schema.
    #[error("{}:{line}:{column}: {field}: {reason}", file.display())]
    Schema {
        /// The file.
        file: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// The dotted path of the field, e.g. `provides.website.scope`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A charm, endpoint, interface, storage, container, option or action name breaks the
    /// naming rules.
    #[error("{}:{line}:{column}: invalid {kind} name {name:?}: {rule}", file.display())]
    InvalidName {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the name names: `charm`, `endpoint`, `interface`, ...
        kind: &'static str,
        /// The name as written.
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The same endpoint name appears twice across provides, requires and peers.
    #[error("{}: endpoint {name:?} is declared in both {first} and {second}", file.display())]
    DuplicateEndpoint {
        /// The file.
        file: PathBuf,
        /// The endpoint name.
        name: String,
        /// The section of its first declaration.
        first: &'static str,
        /// The section of its second declaration.
        second: &'static str,
    },
    /// An endpoint uses a name reserved by Juju (`juju`, `juju-*`).
    #[error("{}: endpoint {name:?} uses a reserved name (\"juju\" and \"juju-*\" belong to juju)", file.display())]
    ReservedEndpoint {
        /// The file.
        file: PathBuf,
        /// The endpoint name.
        name: String,
    },
    /// A provided or peer endpoint uses an interface name reserved by Juju.
    #[error("{}: endpoint {endpoint:?} uses the reserved interface {interface:?}", file.display())]
    ReservedInterface {
        /// The file.
        file: PathBuf,
        /// The endpoint name.
        endpoint: String,
        /// The interface name.
        interface: String,
    },
    /// A subordinate charm without a container-scoped `requires` endpoint.
    #[error("{}: subordinate charm {charm:?} has no requires endpoint with scope: container", file.display())]
    SubordinateWithoutContainer {
        /// The file.
        file: PathBuf,
        /// The charm name.
        charm: String,
    },
    /// A config option's declaration (type or default) is invalid.
    #[error("{}:{line}:{column}: option {option:?}: {reason}", file.display())]
    BadOption {
        /// The file (`config.yaml` or `charmcraft.yaml`).
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The option name.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting names an option the charm does not have.
    #[error("charm has no config option {option:?}")]
    UnknownOption {
        /// The option name given.
        option: String,
    },
    /// A setting's value does not fit the option's type.
    #[error("option {option:?} is of type {kind}; {value:?} is not a valid {kind}")]
    BadSetting {
        /// The option name.
        option: String,
        /// The option's type.
        kind: OptionType,
        /// The value given.
        value: String,
    },
    /// The charm has neither `metadata.yaml` nor `charmcraft.yaml`.
    #[error("{}: charm has no metadata.yaml (nor charmcraft.yaml)", dir.display())]
    MissingMetadata {
        /// The charm directory.
        dir: PathBuf,
    },
    /// A charm file is a symlink; charm files are opened without following links.
    #[error("{}: is a symlink, which hookbox never follows for charm files", file.display())]
    SymlinkedFile {
        /// The file.
        file: PathBuf,
    },
    /// A charm file is not a regular file (a directory, fifo, device...).
    #[error("{}: not a regular file", file.display())]
    NotRegularFile {
        /// The file.
        file: PathBuf,
    },
    /// A charm file could not be opened or read.
    #[error("reading {}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A charm text file is not UTF-8.
    #[error("{}: not valid UTF-8", file.display())]
    NotUtf8 {
        /// The file.
        file: PathBuf,
    },
    /// The `revision` file does not hold a non-negative integer.
    #[error("{}: expected a non-negative integer revision, found {content:?}", file.display())]
    BadRevision {
        /// The file.
        file: PathBuf,
        /// Its content (shortened).
        content: String,
    },
    /// A hook name that can never be valid (path separators, `..`, NUL, leading `-`...).
    #[error("invalid hook name {name:?}: {reason}")]
    InvalidHookName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A well-formed hook name that this charm does not have.
    #[error("charm {charm:?} has no hook or action {name:?}")]
    UnknownHook {
        /// The name given.
        name: String,
        /// The charm name.
        charm: String,
    },
    /// A relation, storage or workload hook whose endpoint, storage or container the charm
    /// does not declare.
    #[error("hook {hook:?} needs {kind} {name:?}, which charm {charm:?} does not declare")]
    Undeclared {
        /// The hook name.
        hook: String,
        /// `endpoint`, `storage` or `container`.
        kind: &'static str,
        /// The undeclared name.
        name: String,
        /// The charm name.
        charm: String,
    },
}

impl ClassifyExit for CharmError {
    fn exit_status(&self) -> ExitStatus {
        match self {
            // What the operator typed on the command line, checked against the charm.
            CharmError::UnknownOption { .. }
            | CharmError::BadSetting { .. }
            | CharmError::InvalidHookName { .. }
            | CharmError::UnknownHook { .. }
            | CharmError::Undeclared { .. } => ExitStatus::Usage,
            _ => ExitStatus::InvalidCharm,
        }
    }
}
