//! Identities of applications and units, and where a unit lives in the state root.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::store::StateRoot;
use crate::store::layers::{LayerDirs, LayerId, RunDirs};

use super::UnitError;

/// The longest application name accepted (Juju allows the same for DNS labels).
pub const MAX_APP_NAME: usize = 63;

/// An application name: lowercase letters and digits in hyphen-separated segments, starting
/// with a letter, where every segment after the first contains a letter (Juju's rule; it
/// keeps `<app>-<n>` directory names unambiguous).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

impl AppName {
    /// Validates `text` as an application name.
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let invalid = |reason: &'static str| UnitError::InvalidAppName {
            name: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > MAX_APP_NAME {
            return Err(invalid("it is longer than 63 characters"));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "only lowercase letters, digits and hyphens are allowed",
            ));
        }
        let mut segments = text.split('-');
        let first = segments.next().unwrap_or_default();
        if !first.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it must start with a letter"));
        }
        for segment in segments {
            if segment.is_empty() {
                return Err(invalid(
                    "hyphens must separate non-empty segments (no leading, trailing or double hyphen)",
                ));
            }
            if !segment.bytes().any(|b| b.is_ascii_lowercase()) {
                return Err(invalid(
                    "every segment after a hyphen must contain a letter",
                ));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AppName {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A unit name, `<app>/<n>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitName {
    app: AppName,
    number: u32,
}

impl UnitName {
    /// The unit `number` of `app`.
    pub fn new(app: AppName, number: u32) -> Self {
        Self { app, number }
    }

    /// Parses `app/N` (N decimal, no sign, no leading zeros).
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let invalid = |reason: &'static str| UnitError::InvalidUnitName {
            name: text.to_owned(),
            reason,
        };
        let (app, number) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected <application>/<number>, e.g. wordpress/0"))?;
        let app = AppName::parse(app).map_err(|_| invalid("the application name is not valid"))?;
        if number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
            || (number.len() > 1 && number.starts_with('0'))
        {
            return Err(invalid(
                "the unit number must be a decimal number without leading zeros",
            ));
        }
        let number = number
            .parse()
            .map_err(|_| invalid("the unit number is too large"))?;
        Ok(Self { app, number })
    }

    /// The application this unit belongs to.
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// The unit's number within its application.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The unit's directory name under `units/`: `<app>-<n>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.app, self.number)
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.number)
    }
}

impl FromStr for UnitName {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

macro_rules! serde_as_string {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(AppName);
serde_as_string!(UnitName);

/// Where one unit's state lives: `units/<app>-<n>/`.
///
/// ```text
/// state.json          the journal (model::journal)
/// lock                the flock that serialises hookbox processes on this unit
/// history.jsonl       one line per hook run and per resolution
/// layers/<id>/        committed runtime layers
/// operator/           the operator layer (edits made while in error); operator-work/ is its
///                     overlay work dir
/// failed/<id>/        the discarded upper of the last failed hook
/// runs/<id>/          the run in progress (its overlay upper)
/// work/               the overlay work dir every run reuses
/// spare-upper/        the empty upper of the last run that wrote nothing, for the next
/// squash/<id>/        a squash being built (removed by recovery if interrupted)
/// ```
#[derive(Debug, Clone)]
pub struct UnitPaths {
    unit: UnitName,
    dirs: LayerDirs,
}

impl UnitPaths {
    /// The paths of `unit` under `root`.
    pub fn new(root: &StateRoot, unit: &UnitName) -> Self {
        Self {
            unit: unit.clone(),
            dirs: LayerDirs::new(root.units_dir().join(unit.dir_name())),
        }
    }

    /// The unit these paths belong to.
    pub fn unit(&self) -> &UnitName {
        &self.unit
    }

    /// `units/<app>-<n>/`.
    pub fn dir(&self) -> &Path {
        self.dirs.unit_dir()
    }

    /// `state.json`, the unit's journal.
    pub fn state_file(&self) -> PathBuf {
        self.dir().join("state.json")
    }

    /// `lock`, flocked while a command works on the unit.
    pub fn lock_file(&self) -> PathBuf {
        self.dir().join("lock")
    }

    /// `history.jsonl`.
    pub fn history_file(&self) -> PathBuf {
        self.dir().join("history.jsonl")
    }

    /// The layer directories of the unit (`layers/`, `runs/`, `failed/`, `operator/`, ...).
    pub fn layer_dirs(&self) -> &LayerDirs {
        &self.dirs
    }

    /// `layers/<id>/`.
    pub fn layer(&self, id: &LayerId) -> PathBuf {
        self.dirs.layer(id)
    }

    /// `operator/`.
    pub fn operator_dir(&self) -> PathBuf {
        self.dirs.operator()
    }

    /// `operator-work/`, the overlay work dir used while `operator/` is the upper.
    pub fn operator_work_dir(&self) -> PathBuf {
        self.dirs.operator_work()
    }

    /// `failed/<id>/`.
    pub fn failed(&self, id: &LayerId) -> PathBuf {
        self.dirs.failed(id)
    }

    /// `runs/<id>/` (the run's upper) and the unit's `work/`.
    pub fn run(&self, id: &LayerId) -> RunDirs {
        self.dirs.run(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_follow_juju_rules() {
        for good in [
            "wp",
            "wordpress",
            "my-app",
            "a1",
            "mysql-k8s",
            "x-1a",
            "a-b-c",
        ] {
            assert!(AppName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "1wp", "-wp", "wp-", "wp--x", "wp-1", "WP", "w_p", "w/p", "wp.", "a-12",
        ] {
            let err = AppName::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(AppName::parse(&"a".repeat(63)).is_ok());
        assert!(AppName::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn unit_names_parse_display_and_map_to_dirs() {
        let unit = UnitName::parse("wp/12").unwrap();
        assert_eq!(unit.app().as_str(), "wp");
        assert_eq!(unit.number(), 12);
        assert_eq!(unit.to_string(), "wp/12");
        assert_eq!(unit.dir_name(), "wp-12");
        assert_eq!(UnitName::parse("my-app/0").unwrap().dir_name(), "my-app-0");
        for bad in [
            "wp", "wp/", "/0", "wp/01", "wp/-1", "wp/+1", "wp/1/2", "wp/x", "Wp/0",
        ] {
            assert!(UnitName::parse(bad).is_err(), "{bad}");
        }
        assert!(UnitName::parse("wp/99999999999").is_err());
        let json = serde_json::to_string(&unit).unwrap();
        assert_eq!(json, "\"wp/12\"");
        assert_eq!(serde_json::from_str::<UnitName>(&json).unwrap(), unit);
        assert!(serde_json::from_str::<UnitName>("\"wp/x\"").is_err());
    }

    #[test]
    fn paths_sit_under_the_unit_dir() {
        let root = StateRoot::at("/r");
        let paths = UnitPaths::new(&root, &UnitName::parse("wp/3").unwrap());
        assert_eq!(paths.dir(), Path::new("/r/units/wp-3"));
        assert_eq!(paths.state_file(), Path::new("/r/units/wp-3/state.json"));
        assert_eq!(
            paths.history_file(),
            Path::new("/r/units/wp-3/history.jsonl")
        );
        let id = LayerId::new(7, 0xabcd);
        assert_eq!(
            paths.layer(&id),
            Path::new("/r/units/wp-3/layers/00000007-0000abcd")
        );
        let run = paths.run(&id);
        assert_eq!(run.upper, Path::new("/r/units/wp-3/runs/00000007-0000abcd"));
        assert_eq!(run.work, Path::new("/r/units/wp-3/work"));
        assert_eq!(
            paths.failed(&id),
            Path::new("/r/units/wp-3/failed/00000007-0000abcd")
        );
        assert_eq!(paths.operator_dir(), Path::new("/r/units/wp-3/operator"));
    }
}
