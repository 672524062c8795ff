//! A unit's layer directories and the filesystem steps of the layer stack: a fresh run dir
//! per hook run, the atomic rename that commits an upper as a layer, the move of a failed
//! upper to `failed/`.
//!
//! The *order* of the stack is never inferred from these directories: it is recorded in the
//! unit's journal (`model::journal`), which calls these steps between its journal writes.
//! A directory under `layers/` that the journal does not name is an orphan of an interrupted
//! step and is removed by recovery. Layers are immutable once committed.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::exit::{ClassifyExit, ExitStatus};

use super::StoreError;
use super::atomic::sync_dir;
use super::fsops::remove_tree;
use super::squash::SquashError;

/// Errors of the layer directories' filesystem steps.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A filesystem operation on a layer path failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Removing or squashing a tree failed.
    #[error(transparent)]
    Walk(#[from] SquashError),
    /// A state-store step (an fsync) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LayerError {
    fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

impl From<super::fsops::FsError> for LayerError {
    fn from(err: super::fsops::FsError) -> Self {
        Self::Walk(err.into())
    }
}

impl ClassifyExit for LayerError {
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::State
    }
}

/// The identity of a layer (and of the hook run that produced it): a per-unit sequence
/// number and a random tag, shown as `00000042-1a2b3c4d`. Ids sort by sequence; the stack
/// order itself is what the journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerId {
    sequence: u64,
    tag: u32,
}

impl LayerId {
    /// The id with this sequence number and tag.
    pub fn new(sequence: u64, tag: u32) -> Self {
        Self { sequence, tag }
    }

    /// A new id with sequence number `sequence` and a random tag (so an id reused after a
    /// lost journal write never collides with a leftover directory).
    pub fn generate(sequence: u64) -> Self {
        Self::new(sequence, random_u32())
    }

    /// The per-unit sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Parses `<decimal sequence, at least 8 digits>-<8 lowercase hex digits>`.
    pub fn parse(text: &str) -> Option<Self> {
        let (sequence, tag) = text.split_once('-')?;
        if sequence.len() < 8 || !sequence.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if tag.len() != 8
            || !tag
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        Some(Self {
            sequence: sequence.parse().ok()?,
            tag: u32::from_str_radix(tag, 16).ok()?,
        })
    }
}

impl fmt::Display for LayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}-{:08x}", self.sequence, self.tag)
    }
}

/// Why a string is not a layer id.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a layer id (expected <sequence>-<8 hex digits>)")]
pub struct InvalidLayerId {
    /// The text that did not parse.
    pub text: String,
}

impl FromStr for LayerId {
    type Err = InvalidLayerId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| InvalidLayerId { text: s.to_owned() })
    }
}

impl serde::Serialize for LayerId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for LayerId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let from_kernel = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_err() {
        // No /dev/urandom (an odd chroot): the tag only has to differ from leftovers, so
        // time and pid are enough.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        return nanos ^ std::process::id().rotate_left(16);
    }
    u32::from_ne_bytes(bytes)
}

/// The directories of one hook run: the overlay upper the hook writes and its work dir.
///
/// Every directory a run creates and removes costs an inode allocated and freed on the
/// unit's filesystem (and on ext4 without a journal each allocation scans the inodes freed
/// in the last seconds), so a run creates one: its upper, `runs/<id>/` itself; the work dir
/// is the unit's, `work/`, reused by every run (the unit lock serialises them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDirs {
    /// The layer id this run's upper gets when committed.
    pub id: LayerId,
    /// `runs/<id>/`.
    pub dir: PathBuf,
    /// The overlay upperdir: `runs/<id>/` itself.
    pub upper: PathBuf,
    /// `work/`, the unit's overlay workdir.
    pub work: PathBuf,
}

/// The layer directories of one unit, under `units/<app>-<n>/`.
#[derive(Debug, Clone)]
pub struct LayerDirs {
    unit_dir: PathBuf,
}

/// Mode of a fresh upper: the merged charm dir's root shows the upper root's mode.
const UPPER_MODE: u32 = 0o755;

impl LayerDirs {
    /// The layer directories of the unit directory `unit_dir`.
    pub fn new(unit_dir: PathBuf) -> Self {
        Self { unit_dir }
    }

    /// The unit directory.
    pub fn unit_dir(&self) -> &Path {
        &self.unit_dir
    }

    /// `layers/`.
    pub fn layers(&self) -> PathBuf {
        self.unit_dir.join("layers")
    }

    /// `layers/<id>/`.
    pub fn layer(&self, id: &LayerId) -> PathBuf {
        self.layers().join(id.to_string())
    }

    /// `runs/`.
    pub fn runs(&self) -> PathBuf {
        self.unit_dir.join("runs")
    }

    /// `runs/<id>/` (the upper) and the unit's `work/`.
    pub fn run(&self, id: &LayerId) -> RunDirs {
        let dir = self.runs().join(id.to_string());
        RunDirs {
            id: *id,
            upper: dir.clone(),
            work: self.work(),
            dir,
        }
    }

    /// `work/`, the overlay workdir of the unit's hook runs.
    pub fn work(&self) -> PathBuf {
        self.unit_dir.join("work")
    }

    /// `spare-upper/`: the empty upper of the last run that wrote nothing, kept for the next
    /// run (a hook that writes nothing, like most `update-status` runs, then creates and
    /// frees no inode for its upper).
    pub fn spare_upper(&self) -> PathBuf {
        self.unit_dir.join("spare-upper")
    }

    /// `failed/`.
    pub fn failed_root(&self) -> PathBuf {
        self.unit_dir.join("failed")
    }

    /// `failed/<id>/`.
    pub fn failed(&self, id: &LayerId) -> PathBuf {
        self.failed_root().join(id.to_string())
    }

    /// `operator/`.
    pub fn operator(&self) -> PathBuf {
        self.unit_dir.join("operator")
    }

    /// `operator-work/`.
    pub fn operator_work(&self) -> PathBuf {
        self.unit_dir.join("operator-work")
    }

    /// `squash/`, where squashed layers are built before they are renamed into `layers/`.
    pub fn squash_root(&self) -> PathBuf {
        self.unit_dir.join("squash")
    }

    /// `squash/<id>/`.
    pub fn squash(&self, id: &LayerId) -> PathBuf {
        self.squash_root().join(id.to_string())
    }

    /// Creates `squash/` if missing.
    pub fn create_squash_root(&self) -> Result<(), LayerError> {
        create_dir(&self.squash_root(), 0o700)
    }

    /// Creates `runs/<id>/` (the upper, mode 0755), fresh: a leftover with the same id is
    /// removed first; and the unit's `work/` (mode 0700) if missing, retiring what a run that
    /// was killed left in it (overlayfs refuses a work dir whose `volatile` mount was not
    /// cleaned up).
    pub fn create_run(&self, id: &LayerId) -> Result<RunDirs, LayerError> {
        let run = self.run(id);
        create_dir(&self.runs(), 0o700)?;
        if fs::symlink_metadata(&run.dir).is_ok() {
            remove_tree(&run.dir)?;
        }
        if !self.reuse_spare_upper(&run.upper)? {
            create_dir(&run.upper, UPPER_MODE)?;
        }
        create_dir(&run.work, 0o700)?;
        retire_overlay_work(&run.work);
        // A `work/` left in place would fail this run's mount, and every later one.
        let left = run.work.join("work");
        if fs::symlink_metadata(&left).is_ok() {
            return Err(LayerError::io("retire the overlay work dir", left)(
                std::io::ErrorKind::AlreadyExists.into(),
            ));
        }
        Ok(run)
    }

    /// Creates an empty `operator/` (and `operator-work/`) if missing.
    pub fn create_operator(&self) -> Result<PathBuf, LayerError> {
        let dir = self.operator();
        if !exists(&dir)? {
            create_dir(&dir, UPPER_MODE)?;
        }
        if !exists(&self.operator_work())? {
            create_dir(&self.operator_work(), 0o700)?;
        }
        Ok(dir)
    }

    /// Commits the directory `from` (a run's upper, the operator layer or a built squash) as
    /// `layers/<id>` with one atomic rename, made durable before returning. Only the
    /// destination directory is fsync'd: a rename is one atomic metadata operation, and
    /// whether `from` is still listed at its old place after a crash does not matter (it is
    /// an orphan that recovery removes, or the rename did not happen).
    pub fn install(&self, from: &Path, id: &LayerId) -> Result<PathBuf, LayerError> {
        let layers = self.layers();
        create_dir(&layers, 0o700)?;
        let to = self.layer(id);
        fs::rename(from, &to).map_err(LayerError::io("rename layer into", &to))?;
        sync_dir(&layers)?;
        Ok(to)
    }

    /// Moves a failed run's upper to `failed/<id>` (one rename, durable), then removes every
    /// other entry of `failed/`: only the last failed layer is kept, for forensics.
    pub fn keep_failed(&self, upper: &Path, id: &LayerId) -> Result<PathBuf, LayerError> {
        let root = self.failed_root();
        create_dir(&root, 0o700)?;
        let to = self.failed(id);
        if exists(upper)? {
            if exists(&to)? {
                remove_tree(&to)?;
            }
            fs::rename(upper, &to).map_err(LayerError::io("move failed layer to", &to))?;
            sync_dir(&root)?;
        }
        for entry in list_dir(&root)? {
            if entry != to {
                remove_tree(&entry)?;
            }
        }
        Ok(to)
    }

    /// Removes a run's directory (an upper that was neither committed nor kept); an empty
    /// upper as fresh as [`LayerDirs::create_run`] makes it is kept as the spare upper.
    pub fn remove_run(&self, id: &LayerId) -> Result<(), LayerError> {
        let dir = self.run(id).dir;
        if !exists(&dir)? {
            return Ok(());
        }
        let spare = self.spare_upper();
        if is_pristine_upper(&dir) && !exists(&spare)? {
            fs::rename(&dir, &spare).map_err(LayerError::io("keep the empty upper", &dir))?;
            return Ok(());
        }
        remove_tree(&dir)?;
        Ok(())
    }

    /// Moves the spare upper to `upper` when it is still pristine; a spare that is not (or
    /// not a directory) is removed. Whether it was reused.
    fn reuse_spare_upper(&self, upper: &Path) -> Result<bool, LayerError> {
        let spare = self.spare_upper();
        if fs::symlink_metadata(&spare).is_err() {
            return Ok(false);
        }
        if is_pristine_upper(&spare) {
            fs::rename(&spare, upper).map_err(LayerError::io("reuse the spare upper", &spare))?;
            return Ok(true);
        }
        remove_tree(&spare)?;
        Ok(false)
    }

    /// The paths under `layers/`, unordered (for recovery's orphan sweep only).
    pub fn layer_dir_entries(&self) -> Result<Vec<PathBuf>, LayerError> {
        list_dir(&self.layers())
    }

    /// The paths under `runs/`, unordered.
    pub fn run_dir_entries(&self) -> Result<Vec<PathBuf>, LayerError> {
        list_dir(&self.runs())
    }

    /// The paths under `squash/`, unordered.
    pub fn squash_dir_entries(&self) -> Result<Vec<PathBuf>, LayerError> {
        list_dir(&self.squash_root())
    }
}

/// The directory of the work dir where [`retire_overlay_work`] moves what overlayfs left.
const STALE_WORK_DIR: &str = ".hookbox-stale";

/// overlayfs creates `work/` in the work dir at every mount and refuses one whose
/// `work/incompat/volatile/dirty` (left by a `volatile` mount so that a crash is noticed)
/// exists. Renaming `work/` aside makes the work dir reusable at the cost of one rename;
/// removing it would free blocks, which on a filesystem mounted with `discard` blocks for a
/// synchronous discard per directory. overlayfs ignores other entries of the work dir; the
/// sandbox helper of the next run removes the retired ones ([`retired_overlay_work`]) while
/// that run's overlay is mounted. They go one level down, into `.hookbox-stale/`, so that
/// removing them locks that directory, never the work dir itself, in which the mount creates
/// its `work/` meanwhile (a removal holds its parent's lock through each synchronous discard;
/// beside `work/`, the next mount waited for them).
/// Their directories (overlayfs creates some with mode 000) are opened up for their owner
/// first, so that any remover that does not chmod as it goes can delete them. Best effort
/// here (a warning); [`LayerDirs::create_run`] refuses to start a run over a work dir whose
/// `work/` is still there.
pub fn retire_overlay_work(work: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let inner = work.join("work");
    if !fs::symlink_metadata(&inner).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let incompat = inner.join("incompat");
    for dir in [&inner, &incompat, &incompat.join("volatile")] {
        // Only real directories (set_permissions follows a symlink).
        if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
    }
    let stale = work.join(STALE_WORK_DIR);
    let _ = fs::create_dir(&stale);
    let retired = stale.join(format!("{:08x}{:08x}", std::process::id(), random_u32()));
    // Only into a real directory (rename(2) would follow a symlink there); else removed here.
    let renamed = fs::symlink_metadata(&stale).is_ok_and(|m| m.is_dir())
        && fs::rename(&inner, &retired).is_ok();
    if !renamed && let Err(err) = remove_tree(&inner) {
        tracing::warn!(path = %inner.display(), error = %err, "overlay work dir not retired");
    }
}

/// What [`retire_overlay_work`] left in the work dir `work`.
pub fn retired_overlay_work(work: &Path) -> Vec<PathBuf> {
    let stale = work.join(STALE_WORK_DIR);
    if !fs::symlink_metadata(&stale).is_ok_and(|m| m.is_dir()) {
        return Vec::new();
    }
    let Ok(entries) = fs::read_dir(stale) else {
        return Vec::new();
    };
    entries.flatten().map(|e| e.path()).collect()
}

/// Whether `dir` is a real directory with no entry, mode [`UPPER_MODE`] and no extended
/// attribute: what a fresh upper is, so it can serve another run as one.
fn is_pristine_upper(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    meta.is_dir()
        && meta.permissions().mode() & 0o7777 == UPPER_MODE
        && is_empty_dir(dir).unwrap_or(false)
        && rustix::fs::llistxattr(dir, &mut [0u8; 0][..]).is_ok_and(|len: usize| len == 0)
}

/// Whether `dir` holds no entry at all (an upper the hook did not write to).
pub fn is_empty_dir(dir: &Path) -> Result<bool, LayerError> {
    let mut entries = fs::read_dir(dir).map_err(LayerError::io("read directory", dir))?;
    Ok(entries.next().is_none())
}

/// Whether `path` exists (as anything, a symlink included; never followed).
pub fn exists(path: &Path) -> Result<bool, LayerError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LayerError::io("stat", path)(e)),
    }
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), LayerError> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            // The umask may have narrowed the mode; the upper's mode is what the hook sees.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(LayerError::io("chmod", dir))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(LayerError::io("create directory", dir)(e)),
    }
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, LayerError> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.path())
                    .map_err(LayerError::io("read directory", dir))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LayerError::io("read directory", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_round_trip_and_sort_by_sequence() {
        let a = LayerId::new(9, 0xffff_ffff);
        let b = LayerId::new(10, 0);
        assert!(a < b);
        assert_eq!(a.to_string(), "00000009-ffffffff");
        assert_eq!(LayerId::parse("00000009-ffffffff"), Some(a));
        assert_eq!(
            LayerId::parse("123456789-0000000a"),
            Some(LayerId::new(123_456_789, 10))
        );
        for bad in [
            "",
            "1-00000000",
            "00000001",
            "00000001-0000000A",
            "0000000x-00000000",
        ] {
            assert_eq!(LayerId::parse(bad), None, "{bad}");
        }
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<LayerId>(&json).unwrap(), a);
        assert_ne!(LayerId::generate(1), LayerId::generate(1));
    }

    #[test]
    fn a_run_retires_the_overlay_work_a_killed_run_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = LayerDirs::new(tmp.path().join("u"));
        fs::create_dir(dirs.unit_dir()).unwrap();
        // What a volatile overlay mount leaves when its run is killed.
        fs::create_dir_all(dirs.work().join("work/incompat/volatile/dirty")).unwrap();
        let run = dirs.create_run(&LayerId::new(1, 1)).unwrap();
        assert_eq!(run.work, dirs.work());
        assert_eq!(run.upper, run.dir);
        assert!(!exists(&run.work.join("work")).unwrap());
        let retired = retired_overlay_work(&run.work);
        assert_eq!(retired.len(), 1, "{retired:?}");
        assert!(exists(&retired[0].join("incompat/volatile/dirty")).unwrap());
    }

    #[test]
    fn retired_work_goes_below_the_work_dir_and_never_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        fs::create_dir_all(work.join("work/incompat/volatile")).unwrap();
        retire_overlay_work(&work);
        fs::create_dir_all(work.join("work/incompat/volatile")).unwrap();
        retire_overlay_work(&work);
        // Both in .hookbox-stale/, nothing else beside the work dir's `work/`.
        let retired = retired_overlay_work(&work);
        assert_eq!(retired.len(), 2, "{retired:?}");
        assert!(
            retired
                .iter()
                .all(|r| r.parent() == Some(&*work.join(STALE_WORK_DIR)))
        );
        assert_eq!(list_dir(&work).unwrap(), vec![work.join(STALE_WORK_DIR)]);
        // A symlink in its place is not followed: `work/` is removed where it is.
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir_all(work.join(STALE_WORK_DIR)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, work.join(STALE_WORK_DIR)).unwrap();
        fs::create_dir_all(work.join("work/incompat/volatile")).unwrap();
        retire_overlay_work(&work);
        assert!(!exists(&work.join("work")).unwrap());
        assert!(list_dir(&elsewhere).unwrap().is_empty());
        assert!(retired_overlay_work(&work).is_empty());
    }

    #[test]
    fn an_empty_pristine_upper_is_kept_for_the_next_run_and_nothing_else_is() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let dirs = LayerDirs::new(tmp.path().join("u"));
        fs::create_dir(dirs.unit_dir()).unwrap();
        let run = dirs.create_run(&LayerId::new(1, 1)).unwrap();
        let ino = fs::metadata(&run.upper).unwrap().ino();
        dirs.remove_run(&run.id).unwrap();
        assert!(!exists(&run.dir).unwrap());
        assert_eq!(fs::metadata(dirs.spare_upper()).unwrap().ino(), ino);
        // The next run gets it back.
        let next = dirs.create_run(&LayerId::new(2, 2)).unwrap();
        assert_eq!(fs::metadata(&next.upper).unwrap().ino(), ino);
        assert!(!exists(&dirs.spare_upper()).unwrap());
        // An upper whose mode changed (a hook chmodded the charm dir) is not kept.
        fs::set_permissions(&next.upper, fs::Permissions::from_mode(0o700)).unwrap();
        dirs.remove_run(&next.id).unwrap();
        assert!(!exists(&dirs.spare_upper()).unwrap());
        // Nor is one with content; a spare that is not pristine is removed, not reused.
        let third = dirs.create_run(&LayerId::new(3, 3)).unwrap();
        fs::create_dir(dirs.spare_upper()).unwrap();
        fs::write(dirs.spare_upper().join("left"), "x").unwrap();
        fs::write(third.upper.join("f"), "x").unwrap();
        dirs.remove_run(&third.id).unwrap();
        assert!(exists(&dirs.spare_upper().join("left")).unwrap());
        let fourth = dirs.create_run(&LayerId::new(4, 4)).unwrap();
        assert!(is_empty_dir(&fourth.upper).unwrap());
        assert!(!exists(&dirs.spare_upper()).unwrap());
    }

    #[test]
    fn run_commit_and_failed_keep_only_the_last() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = LayerDirs::new(tmp.path().join("u"));
        fs::create_dir(dirs.unit_dir()).unwrap();
        let one = LayerId::new(1, 1);
        let run = dirs.create_run(&one).unwrap();
        assert!(is_empty_dir(&run.upper).unwrap());
        fs::write(run.upper.join("f"), "x").unwrap();
        let layer = dirs.install(&run.upper, &one).unwrap();
        assert_eq!(fs::read(layer.join("f")).unwrap(), b"x");
        dirs.remove_run(&one).unwrap();
        assert!(!exists(&run.dir).unwrap());

        for seq in 2..5 {
            let id = LayerId::new(seq, 0);
            let run = dirs.create_run(&id).unwrap();
            fs::write(run.upper.join("g"), seq.to_string()).unwrap();
            dirs.keep_failed(&run.upper, &id).unwrap();
            dirs.remove_run(&id).unwrap();
        }
        let failed = list_dir(&dirs.failed_root()).unwrap();
        assert_eq!(failed, vec![dirs.failed(&LayerId::new(4, 0))]);
        assert_eq!(fs::read(failed[0].join("g")).unwrap(), b"4");
    }
}
