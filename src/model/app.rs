//! Application records: `apps/<app>.json`, saved atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::charm::{Role, Scope};
use crate::store::digest::CharmDigest;
use crate::store::{StateRoot, StoreError, atomic};

use super::{AppName, UnitError, UnitName};

/// The version of the application record format this build writes and reads.
pub const APP_RECORD_VERSION: u32 = 1;

/// One relation the application takes part in, seen from this application's side.
///
/// Both applications of a relation hold a record with the same `id` (a peer relation has
/// one record, whose remote application is the application itself). This is the shape the
/// rest of hookbox reads relations in (upgrade's "every relation in use must exist in the
/// new charm" check: `endpoint` must still be declared with the same `role` and
/// `interface`); it is written only by `runner::relations` (relate, unrelate, deploy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationRecord {
    /// The relation id, the `N` of `JUJU_RELATION_ID` (`<endpoint>:<N>`); unique in the state
    /// root (Juju numbers relations model-wide) and never reused.
    pub id: u64,
    /// This application's endpoint.
    pub endpoint: String,
    /// The other application (this one, for a peer relation).
    pub remote_app: AppName,
    /// The other application's endpoint (the same endpoint, for a peer relation).
    pub remote_endpoint: String,
    /// The interface both endpoints implement.
    pub interface: String,
    /// This endpoint's role: provider, requirer or peer.
    pub role: Role,
    /// `container` when either endpoint is container-scoped, else `global`.
    #[serde(default)]
    pub scope: Scope,
}

impl RelationRecord {
    /// The relation as hooks name it: `<endpoint>:<id>`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.endpoint, self.id)
    }

    /// Whether this is a peer relation (the application with itself).
    pub fn is_peer(&self) -> bool {
        self.role == Role::Peer
    }

    /// The relation id as the hook tools carry it.
    pub fn tool_id(&self) -> u32 {
        u32::try_from(self.id).unwrap_or(u32::MAX)
    }
}

/// An application: its charm, the user's settings (kept per charm, rule 12), its units, its
/// relations and its leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The record format version.
    pub version: u32,
    /// The application's name.
    pub name: AppName,
    /// The digest of the application's current charm.
    pub charm: CharmDigest,
    /// User-set values only, per charm digest (a unit that has not upgraded yet keeps seeing
    /// the settings of its charm).
    #[serde(default)]
    pub settings: BTreeMap<CharmDigest, BTreeMap<String, serde_json::Value>>,
    /// The numbers of the application's units, ascending.
    #[serde(default)]
    pub units: Vec<u32>,
    /// The number the next unit gets (numbers are never reused).
    pub next_unit: u32,
    /// The relations the application takes part in.
    #[serde(default)]
    pub relations: Vec<RelationRecord>,
    /// The leader unit's number.
    #[serde(default)]
    pub leader: Option<u32>,
}

impl AppRecord {
    /// A new application on `charm` with no units.
    pub fn new(name: AppName, charm: CharmDigest) -> Self {
        Self {
            version: APP_RECORD_VERSION,
            name,
            charm,
            settings: BTreeMap::new(),
            units: Vec::new(),
            next_unit: 0,
            relations: Vec::new(),
            leader: None,
        }
    }

    /// `apps/<name>.json`.
    pub fn path(root: &StateRoot, name: &AppName) -> PathBuf {
        root.apps_dir().join(format!("{name}.json"))
    }

    /// Loads the record of `name`; `UnitError::UnknownApp` when there is none.
    pub fn load(root: &StateRoot, name: &AppName) -> Result<Self, UnitError> {
        let path = Self::path(root, name);
        let record: Self =
            atomic::read_json(&path)?.ok_or_else(|| UnitError::UnknownApp { app: name.clone() })?;
        if record.version > APP_RECORD_VERSION {
            return Err(UnitError::JournalVersion {
                path,
                version: record.version,
                supported: APP_RECORD_VERSION,
            });
        }
        if record.name != *name {
            return Err(StoreError::Json {
                path,
                source: serde::de::Error::custom(format!(
                    "the record names application {}",
                    record.name
                )),
            }
            .into());
        }
        Ok(record)
    }

    /// Saves the record atomically (temp file, fsync, rename, fsync the directory).
    pub fn save(&self, root: &StateRoot) -> Result<(), UnitError> {
        root.ensure_dir(&root.apps_dir())?;
        atomic::write_json(&Self::path(root, &self.name), self)?;
        Ok(())
    }

    /// Creates the record; `UnitError::AppExists` if the application already exists.
    pub fn create(&self, root: &StateRoot) -> Result<(), UnitError> {
        if atomic::read_json::<serde_json::Value>(&Self::path(root, &self.name))?.is_some() {
            return Err(UnitError::AppExists {
                app: self.name.clone(),
            });
        }
        self.save(root)
    }

    /// The names of every application in the state root, sorted.
    pub fn list(root: &StateRoot) -> Result<Vec<AppName>, UnitError> {
        let dir = root.apps_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read directory", &dir)(e).into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("read directory", &dir))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Ok(name) = AppName::parse(stem) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Allocates the next unit of this application (the caller saves the record).
    pub fn add_unit(&mut self) -> UnitName {
        let number = self.next_unit;
        self.next_unit += 1;
        self.units.push(number);
        if self.leader.is_none() {
            self.leader = Some(number);
        }
        UnitName::new(self.name.clone(), number)
    }

    /// The application's units.
    pub fn unit_names(&self) -> Vec<UnitName> {
        self.units
            .iter()
            .map(|n| UnitName::new(self.name.clone(), *n))
            .collect()
    }

    /// Switches the application to charm `to` (an upgrade) with the user's settings for it,
    /// as converted from the current charm's (rule 12). The settings of other charms stay:
    /// units that have not upgraded yet keep seeing those of their charm.
    pub fn switch_charm(&mut self, to: CharmDigest, settings: BTreeMap<String, serde_json::Value>) {
        if settings.is_empty() {
            self.settings.remove(&to);
        } else {
            self.settings.insert(to.clone(), settings);
        }
        self.charm = to;
    }

    /// The relation with id `id`, when the application takes part in it.
    pub fn relation(&self, id: u64) -> Option<&RelationRecord> {
        self.relations.iter().find(|r| r.id == id)
    }

    /// The user's settings for `charm` (empty when none were set).
    pub fn settings_for(&self, charm: &CharmDigest) -> BTreeMap<String, serde_json::Value> {
        self.settings.get(charm).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> CharmDigest {
        CharmDigest::parse(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn records_save_load_and_refuse_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::at(dir.path());
        let name = AppName::parse("wp").unwrap();
        assert!(matches!(
            AppRecord::load(&root, &name),
            Err(UnitError::UnknownApp { .. })
        ));
        let mut app = AppRecord::new(name.clone(), digest('a'));
        assert_eq!(app.add_unit().to_string(), "wp/0");
        assert_eq!(app.add_unit().to_string(), "wp/1");
        app.settings
            .entry(digest('a'))
            .or_default()
            .insert("port".into(), serde_json::json!(8080));
        app.create(&root).unwrap();
        assert!(matches!(
            app.create(&root),
            Err(UnitError::AppExists { .. })
        ));
        let loaded = AppRecord::load(&root, &name).unwrap();
        assert_eq!(loaded, app);
        assert_eq!(loaded.leader, Some(0));
        assert_eq!(loaded.settings_for(&digest('a'))["port"], 8080);
        assert!(loaded.settings_for(&digest('b')).is_empty());
        assert_eq!(AppRecord::list(&root).unwrap(), vec![name]);
    }

    #[test]
    fn a_record_under_the_wrong_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::at(dir.path());
        AppRecord::new(AppName::parse("wp").unwrap(), digest('a'))
            .save(&root)
            .unwrap();
        std::fs::rename(
            root.apps_dir().join("wp.json"),
            root.apps_dir().join("db.json"),
        )
        .unwrap();
        let err = AppRecord::load(&root, &AppName::parse("db").unwrap()).unwrap_err();
        assert!(err.to_string().contains("db.json"), "{err}");
    }
}
