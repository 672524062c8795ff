//! The charm store: `charms/sha256-<hex>/{tree/,charm.json,listing.bin}`, one immutable,
//! read-only charm base per canonical digest (with its listing cached, so an upgrade does not
//! hash it again), shared by every unit that uses it.
//!
//! A charm enters the store through a private staging directory under `staging/` (same
//! filesystem), which is renamed into place in one step once it is complete and durable; a
//! reader sees a whole entry or none.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags, RenameFlags};
use serde::{Deserialize, Serialize};

use super::digest::CharmDigest;
use super::fsops::{self, remove_tree};
use super::merge::{LISTING_CACHE_FILE, Listing, MergeError};
use super::{StateRoot, StoreError, atomic};

/// The file beside `tree/` describing a stored charm.
pub const RECORD_FILE: &str = "charm.json";

/// What `charm.json` records about a stored charm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharmRecord {
    /// The charm's name from its metadata.
    pub name: String,
    /// The `revision` file's number, if the charm has one.
    pub revision: Option<u64>,
    /// The canonical digest, also the directory name.
    pub digest: CharmDigest,
    /// When it was stored, RFC 3339 UTC.
    pub ingested_at: String,
    /// The path it was ingested from.
    pub source: String,
    /// What the source was: `directory`, `tar`, `tar.gz` or `zip`.
    pub format: String,
    /// Regular files in the tree.
    pub files: u64,
    /// Bytes of file content in the tree.
    pub bytes: u64,
}

/// Whether [`CharmStore::commit`] added the charm or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Committed {
    /// The charm is new in the store.
    Stored,
    /// The same content was stored before; nothing changed.
    AlreadyStored,
}

/// The charm store inside a state root.
#[derive(Debug, Clone)]
pub struct CharmStore {
    root: StateRoot,
}

/// A private staging directory `staging/ingest-<pid>-<random>/` holding `tree/`; removed
/// (with everything in it) when dropped unless it was committed.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    entry: OwnedFd,
    committed: bool,
}

impl Staging {
    /// The staging directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new fd for the staging directory.
    pub fn entry_fd(&self) -> Result<OwnedFd, StoreError> {
        self.entry
            .try_clone()
            .map_err(StoreError::io("duplicate fd of", &self.path))
    }

    /// A new fd for `tree/` inside the staging directory.
    pub fn tree_fd(&self) -> Result<OwnedFd, StoreError> {
        fsops::open_beneath(&self.entry, "tree", fsops::DIR_FLAGS)
            .map_err(|e| StoreError::io("open", self.path.join("tree"))(e.into()))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed
            && let Err(err) = remove_tree(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove staging directory");
        }
    }
}

impl CharmStore {
    /// The store of `root`.
    pub fn new(root: &StateRoot) -> Self {
        Self { root: root.clone() }
    }

    /// `charms/sha256-<hex>/`.
    pub fn entry_path(&self, digest: &CharmDigest) -> PathBuf {
        self.root.charms_dir().join(digest.to_string())
    }

    /// `charms/sha256-<hex>/tree/`: the charm base, read-only.
    pub fn tree_path(&self, digest: &CharmDigest) -> PathBuf {
        self.entry_path(digest).join("tree")
    }

    /// Whether a charm with this digest is stored.
    pub fn contains(&self, digest: &CharmDigest) -> bool {
        self.entry_path(digest).join(RECORD_FILE).is_file()
    }

    /// The record of a stored charm; `Ok(None)` when it is not stored.
    pub fn record(&self, digest: &CharmDigest) -> Result<Option<CharmRecord>, StoreError> {
        atomic::read_json(&self.entry_path(digest).join(RECORD_FILE))
    }

    /// `charms/sha256-<hex>/listing.bin`: the charm base's listing, written at ingest.
    pub fn listing_path(&self, digest: &CharmDigest) -> PathBuf {
        self.entry_path(digest).join(LISTING_CACHE_FILE)
    }

    /// The listing of a stored charm base: the cache ingest wrote, checked against the
    /// digest ([`Listing::load`]); when it is missing, or rejected (a warning says why), the
    /// tree is walked and hashed again ([`Listing::read_tree`]).
    pub fn listing(&self, digest: &CharmDigest) -> Result<Listing, MergeError> {
        let cache = self.listing_path(digest);
        match Listing::load(&cache, digest) {
            Ok(Some(listing)) => return Ok(listing),
            Ok(None) => {}
            Err(err @ MergeError::BadCache { .. }) => {
                tracing::warn!(path = %cache.display(), error = %err, "ignoring a cached listing");
            }
            Err(err) => return Err(err),
        }
        Listing::read_tree(&self.tree_path(digest))
    }

    /// Every stored charm, by digest.
    pub fn list(&self) -> Result<Vec<CharmRecord>, StoreError> {
        let dir = self.root.charms_dir();
        let items = match fs::read_dir(&dir) {
            Ok(items) => items,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("read directory", &dir)(e)),
        };
        let mut records = Vec::new();
        for item in items {
            let item = item.map_err(StoreError::io("read directory", &dir))?;
            let Some(digest) = item.file_name().to_str().and_then(CharmDigest::parse) else {
                continue;
            };
            if let Some(record) = self.record(&digest)? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(records)
    }

    /// Creates a private staging directory with an empty `tree/`, after removing staging
    /// directories left by ingests whose process is gone.
    pub fn begin_staging(&self) -> Result<Staging, StoreError> {
        let staging = self.root.staging_dir();
        self.root.ensure_dir(&self.root.charms_dir())?;
        self.root.ensure_dir(&staging)?;
        self.remove_stale_staging(&staging);
        let dir = tempfile::Builder::new()
            .prefix(&format!("ingest-{}-", std::process::id()))
            .tempdir_in(&staging)
            .map_err(StoreError::io("create staging directory in", &staging))?;
        let path = dir.keep();
        let entry = fsops::open_dir(&path)
            .map_err(|e| StoreError::io("open staging directory", &path)(e.into()));
        let staging = Staging {
            path: path.clone(),
            entry: match entry {
                Ok(fd) => fd,
                Err(e) => {
                    let _ = remove_tree(&path);
                    return Err(e);
                }
            },
            committed: false,
        };
        rustix::fs::mkdirat(&staging.entry, "tree", Mode::from_raw_mode(0o700))
            .map_err(|e| StoreError::io("create directory", path.join("tree"))(e.into()))?;
        Ok(staging)
    }

    /// Writes `charm.json` into the staging directory, makes everything durable with one
    /// `syncfs(2)` of the store's filesystem (cheaper than an fsync per file, and as
    /// durable), and renames the staging directory to `charms/sha256-<hex>/`. When that
    /// entry already exists the staging directory is dropped and nothing changes.
    pub fn commit(
        &self,
        mut staging: Staging,
        record: &CharmRecord,
    ) -> Result<Committed, StoreError> {
        let target = self.entry_path(&record.digest);
        if self.contains(&record.digest) {
            return Ok(Committed::AlreadyStored);
        }
        let record_path = staging.path.join(RECORD_FILE);
        let mut json = serde_json::to_vec_pretty(record).map_err(|source| StoreError::Json {
            path: record_path.clone(),
            source,
        })?;
        json.push(b'\n');
        let fd = fsops::create_exclusive(&staging.entry, RECORD_FILE, 0o444)
            .map_err(|e| StoreError::io("create", &record_path)(e.into()))?;
        fs::File::from(fd)
            .write_all(&json)
            .map_err(StoreError::io("write", &record_path))?;
        rustix::fs::syncfs(&staging.entry)
            .map_err(|e| StoreError::io("sync filesystem of", &staging.path)(e.into()))?;
        let charms = self.root.charms_dir();
        let charms_fd = rustix::fs::open(
            &charms,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| StoreError::io("open", &charms)(e.into()))?;
        let staging_dir = self.root.staging_dir();
        let staging_name = staging
            .path
            .file_name()
            .expect("staging directory has a name")
            .to_owned();
        let staging_parent = rustix::fs::open(
            &staging_dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| StoreError::io("open", &staging_dir)(e.into()))?;
        match rustix::fs::renameat_with(
            &staging_parent,
            staging_name.as_os_str(),
            &charms_fd,
            record.digest.to_string().as_str(),
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {}
            // Another ingest of the same content won the race.
            Err(rustix::io::Errno::EXIST | rustix::io::Errno::NOTEMPTY) => {
                return Ok(Committed::AlreadyStored);
            }
            Err(e) => {
                return Err(StoreError::io("rename staging directory to", &target)(
                    e.into(),
                ));
            }
        }
        staging.committed = true;
        rustix::fs::fsync(&charms_fd)
            .map_err(|e| StoreError::io("fsync directory", &charms)(e.into()))?;
        Ok(Committed::Stored)
    }

    fn remove_stale_staging(&self, staging: &Path) {
        let Ok(items) = fs::read_dir(staging) else {
            return;
        };
        for item in items.flatten() {
            let name = item.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("ingest-"))
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let path = item.path();
                match remove_tree(&path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed stale staging directory")
                    }
                    Err(err) => {
                        tracing::warn!(path = %path.display(), error = %err, "cannot remove stale staging directory")
                    }
                }
            }
        }
    }
}

/// The current time as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = super::clock::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn remove_tree_handles_read_only_dirs_and_keeps_symlink_targets() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        fs::create_dir_all(tree.join("a/b")).unwrap();
        fs::write(tree.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.join("a/out")).unwrap();
        fs::set_permissions(tree.join("a/b"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(tree.join("a"), fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert!(outside.path().join("keep").exists());
        remove_tree(&tree).unwrap();
    }

    #[test]
    fn timestamps_look_like_rfc3339() {
        let now = now_rfc3339();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }
}
