//! The state root and the paths inside it (DESIGN.md, "State root").

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The directory that holds all of hookbox's state.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Chooses the state root: the explicit flag, else `$HOOKBOX_ROOT`, else
    /// `$XDG_DATA_HOME/hookbox`, else `/var/lib/hookbox` for root and
    /// `~/.local/share/hookbox` for everyone else.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, StoreError> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let path = if let Some(p) = explicit {
            p.to_owned()
        } else if let Some(p) = from_env("HOOKBOX_ROOT") {
            p
        } else if let Some(p) = from_env("XDG_DATA_HOME") {
            p.join("hookbox")
        } else if rustix::process::geteuid().is_root() {
            PathBuf::from("/var/lib/hookbox")
        } else if let Some(home) = from_env("HOME") {
            home.join(".local/share/hookbox")
        } else {
            return Err(StoreError::NoRoot);
        };
        // Sandboxes mount paths under the root from other working directories: make it
        // absolute once, here (lexically: no symlink in it is resolved).
        let path =
            std::path::absolute(&path).map_err(StoreError::io("resolve state root", &path))?;
        Ok(Self { path })
    }

    /// A state root at exactly this path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `charms/`: immutable charm bases keyed by digest.
    pub fn charms_dir(&self) -> PathBuf {
        self.path.join("charms")
    }

    /// `apps/`: one JSON record per application.
    pub fn apps_dir(&self) -> PathBuf {
        self.path.join("apps")
    }

    /// `units/`: one directory per unit.
    pub fn units_dir(&self) -> PathBuf {
        self.path.join("units")
    }

    /// `staging/`: private scratch space for ingest and squash, on the same filesystem as the
    /// store so that finished work can be renamed into place.
    pub fn staging_dir(&self) -> PathBuf {
        self.path.join("staging")
    }

    /// Creates `dir` (and parents) with mode 0700 if missing.
    pub fn ensure_dir(&self, dir: &Path) -> Result<(), StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(StoreError::io("create directory", dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_root_wins() {
        let root = StateRoot::locate(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(root.path(), Path::new("/x/y"));
        assert_eq!(root.charms_dir(), Path::new("/x/y/charms"));
        assert_eq!(root.units_dir(), Path::new("/x/y/units"));
    }

    #[test]
    fn a_relative_root_becomes_absolute() {
        let root = StateRoot::locate(Some(Path::new("state"))).unwrap();
        assert!(root.path().is_absolute());
        assert!(root.path().ends_with("state"));
    }
}
