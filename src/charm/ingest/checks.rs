//! What is checked once every member is in: the metadata, the revision, and the warnings a
//! charm author should see (hooks that will not run, flattened symlinks, files a charm should
//! not ship).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{IngestError, show};
use super::limits::Limits;
use super::sink::{Extracted, Node, split};
use crate::charm::{CharmFiles, ConfigSpec, Metadata, YamlLimits, parse_revision};

/// Warnings are capped per kind so a charm with a vendored tree does not drown the report.
const MAX_WARNINGS_PER_KIND: usize = 20;

/// Something about a charm that does not refuse it but that its author should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The path inside the charm it is about.
    pub path: String,
    /// What kind of problem it is.
    pub kind: WarningKind,
    /// A sentence for people.
    pub message: String,
}

/// The kinds of [`Warning`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// A hook or `dispatch` without an exec bit: it fails when it runs.
    NotExecutable,
    /// A hook without `#!` (and not an ELF binary): exec fails with ENOEXEC.
    NoShebang,
    /// Hook files with identical content: symlinks flattened by a copy (`scp -r`).
    IdenticalHooks,
    /// `.pyc`, `__pycache__/`, `.git/`: build or VCS leftovers.
    ShouldNotShip,
    /// The charm sat inside a single top-level directory, which was stripped.
    WrapperStripped,
    /// The file name says one format, the content another.
    FormatMismatch,
    /// More warnings of one kind than are listed.
    More,
}

/// The charm's identity as read from the extracted listing.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Metadata, config schema, actions and revision, parsed by the charm model.
    pub files: CharmFiles,
    /// Author-facing warnings.
    pub warnings: Vec<Warning>,
}

/// Parses the charm's files from the captured content, the way [`Metadata::load`] reads a
/// directory: `metadata.yaml` (else `charmcraft.yaml`), `config.yaml` (else charmcraft's
/// `config:`), `actions.yaml` (else charmcraft's `actions:`), `revision`. Also collects the
/// warnings.
pub fn inspect(
    extracted: &Extracted,
    source: &Path,
    limits: &Limits,
) -> Result<Inspection, IngestError> {
    let yaml_limits = YamlLimits {
        max_bytes: usize::try_from(limits.max_yaml_bytes).unwrap_or(usize::MAX),
        ..YamlLimits::default()
    };
    let invalid = |name: &str| {
        let member = name.to_owned();
        move |source| IngestError::Yaml { member, source }
    };
    let (metadata_file, mut metadata, craft_config) =
        if let Some(text) = charm_text(extracted, "metadata.yaml", limits)? {
            let file = PathBuf::from("metadata.yaml");
            let metadata = Metadata::parse_with_limits(&text, &file, &yaml_limits)
                .map_err(invalid("metadata.yaml"))?;
            (file, metadata, None)
        } else if let Some(text) = charm_text(extracted, "charmcraft.yaml", limits)? {
            let file = PathBuf::from("charmcraft.yaml");
            let metadata = Metadata::parse_with_limits(&text, &file, &yaml_limits)
                .map_err(invalid("charmcraft.yaml"))?;
            let config = ConfigSpec::parse_charmcraft(&text, &file, &yaml_limits)
                .map_err(invalid("charmcraft.yaml"))?;
            (file, metadata, Some(config))
        } else {
            return Err(IngestError::MissingMetadata {
                source_path: source.to_owned(),
                hint: missing_metadata_hint(extracted),
            });
        };
    let config = match charm_text(extracted, "config.yaml", limits)? {
        Some(text) => ConfigSpec::parse(&text, Path::new("config.yaml"), &yaml_limits)
            .map_err(invalid("config.yaml"))?,
        None => craft_config.unwrap_or_default(),
    };
    if let Some(text) = charm_text(extracted, "actions.yaml", limits)? {
        metadata.actions = Metadata::parse_actions(&text, Path::new("actions.yaml"), &yaml_limits)
            .map_err(invalid("actions.yaml"))?;
    }
    let revision = match charm_text(extracted, "revision", limits)? {
        Some(text) => {
            Some(parse_revision(&text, Path::new("revision")).map_err(invalid("revision"))?)
        }
        None => None,
    };
    let mut warnings = Vec::new();
    if let Some(wrapper) = &extracted.stripped {
        warnings.push(Warning {
            path: wrapper.clone(),
            kind: WarningKind::WrapperStripped,
            message: format!(
                "the charm is inside the top-level directory {wrapper}/; stored without it"
            ),
        });
    }
    warnings.extend(integrity_warnings(extracted));
    Ok(Inspection {
        files: CharmFiles {
            metadata,
            config,
            revision,
            metadata_file,
        },
        warnings,
    })
}

fn missing_metadata_hint(extracted: &Extracted) -> String {
    let mut found: Vec<&Vec<u8>> = extracted
        .nodes
        .keys()
        .filter(|p| split(p).1 == b"metadata.yaml")
        .collect();
    found.sort();
    match found.first() {
        Some(p) => format!(" (found {}: point hookbox at that directory)", show(p)),
        None => String::new(),
    }
}

/// The text of a charm file at the root; `None` when it does not exist.
fn charm_text(
    extracted: &Extracted,
    name: &str,
    limits: &Limits,
) -> Result<Option<String>, IngestError> {
    let member = name.to_owned();
    match extracted.nodes.get(name.as_bytes()) {
        None => Ok(None),
        Some(Node::File { size, .. }) => {
            if *size > limits.max_yaml_bytes {
                return Err(IngestError::YamlTooLarge {
                    member,
                    size: *size,
                    limit: limits.max_yaml_bytes,
                });
            }
            let bytes = extracted
                .captured
                .content
                .get(name.as_bytes())
                .expect("charm files within the limit are captured");
            String::from_utf8(bytes.clone())
                .map(Some)
                .map_err(|_| IngestError::NotText { member })
        }
        Some(_) => Err(IngestError::NotRegular { member }),
    }
}

/// Warnings about hooks and leftovers.
pub fn integrity_warnings(extracted: &Extracted) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut sorted: Vec<(&Vec<u8>, &Node)> = extracted.nodes.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut identical: BTreeMap<[u8; 32], Vec<String>> = BTreeMap::new();
    for (path, node) in &sorted {
        let (parent, name) = split(path);
        let shown = show(path);
        let is_handler = parent == b"hooks" || path.as_slice() == b"dispatch";
        if let (true, Node::File { mode, sha256, size }) = (is_handler, node) {
            if mode & 0o111 == 0 {
                warnings.push(Warning {
                    path: shown.clone(),
                    kind: WarningKind::NotExecutable,
                    message: format!("{shown} is not executable; it will fail when it runs"),
                });
            }
            let head = extracted
                .captured
                .heads
                .get(path.as_slice())
                .map(Vec::as_slice)
                .unwrap_or_default();
            if !head.starts_with(b"#!") && !head.starts_with(b"\x7fELF") {
                warnings.push(Warning {
                    path: shown.clone(),
                    kind: WarningKind::NoShebang,
                    message: format!(
                        "{shown} has no #! line and is not an ELF binary; exec will fail"
                    ),
                });
            }
            if parent == b"hooks" && *size > 0 {
                identical.entry(*sha256).or_default().push(shown.clone());
            }
        }
        let leftover = match node {
            Node::Dir { .. } if name == b"__pycache__" || name == b".git" => true,
            Node::File { .. } if name.ends_with(b".pyc") => !path
                .split(|&b| b == b'/')
                .any(|c| c == b"__pycache__" || c == b".git"),
            _ => false,
        };
        let inside_reported = parent
            .split(|&b| b == b'/')
            .any(|c| c == b"__pycache__" || c == b".git");
        if leftover && !inside_reported {
            warnings.push(Warning {
                path: shown.clone(),
                kind: WarningKind::ShouldNotShip,
                message: format!("{shown} is a build or VCS leftover a charm should not ship"),
            });
        }
    }
    for (_, group) in identical {
        if group.len() > 1 {
            warnings.push(Warning {
                path: group[0].clone(),
                kind: WarningKind::IdenticalHooks,
                message: format!(
                    "{} have identical content: symlinks flattened by a copy (scp -r)? \
                     keep one file and symlink the others to it",
                    group.join(", ")
                ),
            });
        }
    }
    cap(warnings)
}

fn cap(warnings: Vec<Warning>) -> Vec<Warning> {
    let mut counts: BTreeMap<WarningKind, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for warning in warnings {
        let count = counts.entry(warning.kind).or_default();
        *count += 1;
        if *count <= MAX_WARNINGS_PER_KIND {
            out.push(warning);
        }
    }
    for (kind, count) in counts {
        if count > MAX_WARNINGS_PER_KIND {
            out.push(Warning {
                path: String::new(),
                kind: WarningKind::More,
                message: format!(
                    "{} more warnings of kind {kind:?} not listed",
                    count - MAX_WARNINGS_PER_KIND
                ),
            });
        }
    }
    out
}
