//! `metadata.yaml`: the charm's name, kind and relation endpoints.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::CharmError;

/// The parsed `metadata.yaml` of a charm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
}

/// One relation endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Relation {
    /// The interface name both sides must share.
    pub interface: String,
}

impl Metadata {
    /// Parses `metadata.yaml` text; `file` names the file in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, CharmError> {
        serde_saphyr::from_str(text).map_err(|e| CharmError::Yaml {
            file: file.to_owned(),
            message: e.to_string(),
        })
    }
}
