//! Hook names (`install`, `db-relation-joined`, `data-storage-attached`,
//! `workload-pebble-ready`, actions) and handler lookup (DESIGN rule 1).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CharmError;
use super::metadata::{Metadata, is_valid_endpoint_name};

/// Hooks every charm may have, whatever its metadata declares.
pub const STANDARD_HOOKS: &[&str] = &[
    "install",
    "start",
    "stop",
    "remove",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "leader-deposed",
    "leader-settings-changed",
    "pre-series-upgrade",
    "post-series-upgrade",
    "collect-metrics",
    "meter-status-changed",
    "secret-changed",
    "secret-expired",
    "secret-remove",
    "secret-rotate",
];

/// The event of a relation hook (`<endpoint>-relation-<event>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationEvent {
    /// `-relation-created`
    Created,
    /// `-relation-joined`
    Joined,
    /// `-relation-changed`
    Changed,
    /// `-relation-departed`
    Departed,
    /// `-relation-broken`
    Broken,
}

impl RelationEvent {
    const ALL: [(RelationEvent, &'static str); 5] = [
        (RelationEvent::Created, "-relation-created"),
        (RelationEvent::Joined, "-relation-joined"),
        (RelationEvent::Changed, "-relation-changed"),
        (RelationEvent::Departed, "-relation-departed"),
        (RelationEvent::Broken, "-relation-broken"),
    ];
}

/// The event of a storage hook (`<storage>-storage-<event>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEvent {
    /// `-storage-attached`
    Attached,
    /// `-storage-detaching`
    Detaching,
}

impl StorageEvent {
    const ALL: [(StorageEvent, &'static str); 2] = [
        (StorageEvent::Attached, "-storage-attached"),
        (StorageEvent::Detaching, "-storage-detaching"),
    ];
}

/// The event of a workload container hook (`<container>-pebble-<event>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadEvent {
    /// `-pebble-ready`
    PebbleReady,
    /// `-pebble-custom-notice`
    PebbleCustomNotice,
    /// `-pebble-check-failed`
    PebbleCheckFailed,
    /// `-pebble-check-recovered`
    PebbleCheckRecovered,
}

impl WorkloadEvent {
    const ALL: [(WorkloadEvent, &'static str); 4] = [
        (WorkloadEvent::PebbleReady, "-pebble-ready"),
        (WorkloadEvent::PebbleCustomNotice, "-pebble-custom-notice"),
        (WorkloadEvent::PebbleCheckFailed, "-pebble-check-failed"),
        (
            WorkloadEvent::PebbleCheckRecovered,
            "-pebble-check-recovered",
        ),
    ];
}

/// What kind of event a hook name stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// One of [`STANDARD_HOOKS`].
    Standard,
    /// A relation hook on a declared endpoint.
    Relation {
        /// The endpoint name.
        endpoint: String,
        /// Which relation event.
        event: RelationEvent,
    },
    /// A storage hook on declared storage.
    Storage {
        /// The storage name.
        storage: String,
        /// Which storage event.
        event: StorageEvent,
    },
    /// A workload hook on a declared container.
    Workload {
        /// The container name.
        container: String,
        /// Which pebble event.
        event: WorkloadEvent,
    },
    /// A declared action (run from `actions/<name>`).
    Action,
}

/// A hook (or action) name, checked to be safe as a path component and, through
/// [`HookName::parse`], valid for one charm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HookName {
    name: String,
    kind: HookKind,
}

impl HookName {
    /// Parses `name` as a hook or action of the charm described by `metadata`: relation,
    /// storage and workload hooks need their endpoint, storage or container declared,
    /// actions must be declared; names that could escape `hooks/` are always refused.
    pub fn parse(name: &str, metadata: &Metadata) -> Result<Self, CharmError> {
        check_safe(name)?;
        let kind = match classify(name) {
            Some(HookKind::Standard) => HookKind::Standard,
            Some(kind) => {
                let declared = match &kind {
                    HookKind::Relation { endpoint, .. } => metadata
                        .endpoint(endpoint)
                        .is_some()
                        .then_some(())
                        .ok_or(("endpoint", endpoint)),
                    HookKind::Storage { storage, .. } => metadata
                        .storage
                        .contains(storage)
                        .then_some(())
                        .ok_or(("storage", storage)),
                    HookKind::Workload { container, .. } => metadata
                        .containers
                        .contains(container)
                        .then_some(())
                        .ok_or(("container", container)),
                    HookKind::Standard | HookKind::Action => Ok(()),
                };
                match declared {
                    Ok(()) => kind,
                    Err(_) if metadata.actions.contains_key(name) => HookKind::Action,
                    Err((what, missing)) => {
                        return Err(CharmError::Undeclared {
                            hook: name.to_owned(),
                            kind: what,
                            name: missing.clone(),
                            charm: metadata.name.clone(),
                        });
                    }
                }
            }
            None if metadata.actions.contains_key(name) => HookKind::Action,
            None => {
                return Err(CharmError::UnknownHook {
                    name: name.to_owned(),
                    charm: metadata.name.clone(),
                });
            }
        };
        Ok(Self {
            name: name.to_owned(),
            kind,
        })
    }

    /// Reads back a name recorded earlier (journal, history) without a charm at hand:
    /// safety checks and classification by shape; anything unrecognised is an action.
    pub fn parse_recorded(name: &str) -> Result<Self, CharmError> {
        check_safe(name)?;
        Ok(Self {
            name: name.to_owned(),
            kind: classify(name).unwrap_or(HookKind::Action),
        })
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// What kind of event this is.
    pub fn kind(&self) -> &HookKind {
        &self.kind
    }

    /// The handler path relative to the charm root, and `JUJU_DISPATCH_PATH`:
    /// `hooks/<name>`, or `actions/<name>` for actions.
    pub fn dispatch_path(&self) -> PathBuf {
        let dir = if self.kind == HookKind::Action {
            "actions"
        } else {
            "hooks"
        };
        Path::new(dir).join(&self.name)
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for HookName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for HookName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        HookName::parse_recorded(&name).map_err(serde::de::Error::custom)
    }
}

/// Refuses names that could be anything but one file name under `hooks/` or `actions/`.
fn check_safe(name: &str) -> Result<(), CharmError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.contains('\0') {
        Some("contains NUL")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains("..") {
        Some("contains '..'")
    } else if name.starts_with('-') {
        Some("starts with '-'")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        Some("only lowercase letters, digits, '-' and '_', starting with a letter")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CharmError::InvalidHookName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Classifies a name by its shape alone; `None` when it is neither standard nor suffixed.
fn classify(name: &str) -> Option<HookKind> {
    if STANDARD_HOOKS.contains(&name) {
        return Some(HookKind::Standard);
    }
    let prefix_of = |suffix: &str| {
        name.strip_suffix(suffix)
            .filter(|prefix| is_valid_endpoint_name(prefix))
            .map(str::to_owned)
    };
    for (event, suffix) in RelationEvent::ALL {
        if let Some(endpoint) = prefix_of(suffix) {
            return Some(HookKind::Relation { endpoint, event });
        }
    }
    for (event, suffix) in StorageEvent::ALL {
        if let Some(storage) = prefix_of(suffix) {
            return Some(HookKind::Storage { storage, event });
        }
    }
    for (event, suffix) in WorkloadEvent::ALL {
        if let Some(container) = prefix_of(suffix) {
            return Some(HookKind::Workload { container, event });
        }
    }
    None
}

/// What a probe found at a path inside the charm tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Nothing there.
    Absent,
    /// Something there, but not an executable file.
    NotExecutable,
    /// An executable file.
    Executable,
}

/// What will run for a hook (DESIGN rule 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handler {
    /// The charm root's executable `dispatch`, run with `JUJU_DISPATCH_PATH=dispatch_path`.
    Dispatch {
        /// `hooks/<name>` (or `actions/<name>`).
        dispatch_path: PathBuf,
    },
    /// `hooks/<name>` (or `actions/<name>`) itself; if it is not executable the run fails.
    Hook {
        /// The path relative to the charm root.
        path: PathBuf,
    },
    /// No handler: the hook succeeds and is logged as missing.
    Missing,
}

/// Finds the handler for `hook`, asking `probe` about paths relative to the charm root:
/// an executable `dispatch` wins; else whatever is at `hooks/<name>`; else nothing.
pub fn find_handler(hook: &HookName, probe: impl Fn(&Path) -> Probe) -> Handler {
    let path = hook.dispatch_path();
    if probe(Path::new("dispatch")) == Probe::Executable {
        return Handler::Dispatch {
            dispatch_path: path,
        };
    }
    match probe(&path) {
        Probe::Absent => Handler::Missing,
        Probe::NotExecutable | Probe::Executable => Handler::Hook { path },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn charm() -> Metadata {
        let mut m = Metadata::parse(
            "name: shop\nprovides:\n  website: http\nrequires:\n  db: mysql\n  shared_cache: memcache\npeers:\n  cluster: shop-peers\nstorage:\n  data: {type: filesystem}\ncontainers:\n  app: {}\n",
            Path::new("metadata.yaml"),
        )
        .unwrap();
        m.actions = BTreeMap::from([
            ("backup".to_owned(), Default::default()),
            ("restart-db".to_owned(), Default::default()),
        ]);
        m
    }

    #[test]
    fn standard_hooks_for_any_charm() {
        let m = charm();
        for name in STANDARD_HOOKS {
            let hook = HookName::parse(name, &m).unwrap();
            assert_eq!(hook.kind(), &HookKind::Standard);
            assert_eq!(hook.dispatch_path(), Path::new("hooks").join(name));
        }
    }

    #[test]
    fn relation_hooks_need_a_declared_endpoint() {
        let m = charm();
        let hook = HookName::parse("db-relation-joined", &m).unwrap();
        assert_eq!(
            hook.kind(),
            &HookKind::Relation {
                endpoint: "db".into(),
                event: RelationEvent::Joined
            }
        );
        for name in [
            "website-relation-changed",
            "cluster-relation-departed",
            "shared_cache-relation-broken",
            "db-relation-created",
            "juju-info-relation-joined",
        ] {
            assert!(
                matches!(
                    HookName::parse(name, &m).unwrap().kind(),
                    HookKind::Relation { .. }
                ),
                "{name}"
            );
        }
        let err = HookName::parse("ldap-relation-joined", &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hook \"ldap-relation-joined\" needs endpoint \"ldap\", which charm \"shop\" does not declare"
        );
        assert!(matches!(
            HookName::parse("db-relation-exploded", &m),
            Err(CharmError::UnknownHook { .. })
        ));
        assert!(matches!(
            HookName::parse("-relation-joined", &m),
            Err(CharmError::InvalidHookName { .. })
        ));
    }

    #[test]
    fn storage_and_workload_hooks() {
        let m = charm();
        assert_eq!(
            HookName::parse("data-storage-attached", &m).unwrap().kind(),
            &HookKind::Storage {
                storage: "data".into(),
                event: StorageEvent::Attached
            }
        );
        assert!(matches!(
            HookName::parse("data-storage-detaching", &m)
                .unwrap()
                .kind(),
            HookKind::Storage {
                event: StorageEvent::Detaching,
                ..
            }
        ));
        assert!(matches!(
            HookName::parse("logs-storage-attached", &m),
            Err(CharmError::Undeclared {
                kind: "storage",
                ..
            })
        ));
        assert_eq!(
            HookName::parse("app-pebble-ready", &m).unwrap().kind(),
            &HookKind::Workload {
                container: "app".into(),
                event: WorkloadEvent::PebbleReady
            }
        );
        assert!(matches!(
            HookName::parse("app-pebble-check-failed", &m)
                .unwrap()
                .kind(),
            HookKind::Workload {
                event: WorkloadEvent::PebbleCheckFailed,
                ..
            }
        ));
        assert!(matches!(
            HookName::parse("db-pebble-ready", &m),
            Err(CharmError::Undeclared {
                kind: "container",
                ..
            })
        ));
    }

    #[test]
    fn actions_are_declared_and_live_under_actions() {
        let m = charm();
        let hook = HookName::parse("backup", &m).unwrap();
        assert_eq!(hook.kind(), &HookKind::Action);
        assert_eq!(hook.dispatch_path(), Path::new("actions/backup"));
        assert_eq!(
            HookName::parse("restart-db", &m).unwrap().kind(),
            &HookKind::Action
        );
        let err = HookName::parse("restore", &m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "charm \"shop\" has no hook or action \"restore\""
        );
    }

    #[test]
    fn unsafe_names_always_refused() {
        let m = charm();
        for name in [
            "",
            "../install",
            "hooks/install",
            "a..b",
            "..",
            "in\0stall",
            "-install",
            "Install",
            "in stall",
            ".hidden",
        ] {
            let err = HookName::parse(name, &m).unwrap_err();
            assert!(
                matches!(err, CharmError::InvalidHookName { .. }),
                "{name:?}: {err}"
            );
            assert!(HookName::parse_recorded(name).is_err(), "{name:?}");
        }
        let long = "a".repeat(256);
        assert!(matches!(
            HookName::parse(&long, &m),
            Err(CharmError::InvalidHookName { .. })
        ));
        assert_eq!(
            HookName::parse("../x", &m).unwrap_err().to_string(),
            "invalid hook name \"../x\": contains '/'"
        );
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_are_single_safe_components(name in "[-a-z0-9_./\\x00]{0,40}") {
            if let Ok(hook) = HookName::parse_recorded(&name) {
                let path = hook.dispatch_path();
                proptest::prop_assert_eq!(path.components().count(), 2);
                proptest::prop_assert!(!name.contains(['/', '\0']) && !name.contains(".."));
                proptest::prop_assert!(!name.starts_with('-'));
            }
        }
    }

    #[test]
    fn recorded_names_round_trip_through_json() {
        let m = charm();
        for name in [
            "install",
            "db-relation-changed",
            "backup",
            "app-pebble-ready",
        ] {
            let hook = HookName::parse(name, &m).unwrap();
            let json = serde_json::to_string(&hook).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<HookName>(&json).unwrap(), hook);
        }
        assert!(serde_json::from_str::<HookName>("\"../etc\"").is_err());
    }

    fn probe_from(entries: &[(&str, Probe)]) -> impl Fn(&Path) -> Probe {
        let entries: Vec<(PathBuf, Probe)> = entries
            .iter()
            .map(|(p, k)| (PathBuf::from(p), *k))
            .collect();
        move |path: &Path| {
            entries
                .iter()
                .find(|(p, _)| p == path)
                .map_or(Probe::Absent, |(_, k)| *k)
        }
    }

    #[test]
    fn executable_dispatch_wins() {
        let hook = HookName::parse("install", &charm()).unwrap();
        let found = find_handler(
            &hook,
            probe_from(&[
                ("dispatch", Probe::Executable),
                ("hooks/install", Probe::Executable),
            ]),
        );
        assert_eq!(
            found,
            Handler::Dispatch {
                dispatch_path: "hooks/install".into()
            }
        );
        let action = HookName::parse("backup", &charm()).unwrap();
        assert_eq!(
            find_handler(&action, probe_from(&[("dispatch", Probe::Executable)])),
            Handler::Dispatch {
                dispatch_path: "actions/backup".into()
            }
        );
    }

    #[test]
    fn non_executable_dispatch_falls_back_to_hook() {
        let hook = HookName::parse("start", &charm()).unwrap();
        let found = find_handler(
            &hook,
            probe_from(&[
                ("dispatch", Probe::NotExecutable),
                ("hooks/start", Probe::Executable),
            ]),
        );
        assert_eq!(
            found,
            Handler::Hook {
                path: "hooks/start".into()
            }
        );
        let found = find_handler(&hook, probe_from(&[("dispatch", Probe::NotExecutable)]));
        assert_eq!(found, Handler::Missing);
    }

    #[test]
    fn non_executable_hook_is_still_the_handler() {
        let hook = HookName::parse("config-changed", &charm()).unwrap();
        let found = find_handler(
            &hook,
            probe_from(&[("hooks/config-changed", Probe::NotExecutable)]),
        );
        assert_eq!(
            found,
            Handler::Hook {
                path: "hooks/config-changed".into()
            }
        );
    }

    #[test]
    fn nothing_is_missing() {
        let hook = HookName::parse("update-status", &charm()).unwrap();
        assert_eq!(find_handler(&hook, |_| Probe::Absent), Handler::Missing);
    }
}
